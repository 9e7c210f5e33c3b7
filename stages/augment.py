"""Stage ``augment``: the validated train manifest -> train plus augmented copies.

``python -m stages.augment data/validated data/augmented data/quarantine/augment`` reads the
train manifest of the first directory and writes the second: originals plus
``augment.copies`` augmented copies per clip, the copies' audio under its ``clips/``. dev and
test are not augmented; later stages read them from the validated manifests. Clips that
cannot be decoded or augmented go to the quarantine directory.
"""

from __future__ import annotations

from pathlib import Path

from swedish_transcriber import stage
from swedish_transcriber.data.augmentation import SPLIT, augment_train, read_augment_params
from swedish_transcriber.data.ingest import MeasureSettings
from swedish_transcriber.data.manifest import read_split
from swedish_transcriber.params import section


def run(in_dir: Path, out_dir: Path, quarantine_dir: Path) -> None:
    """Augment the train split of ``in_dir`` into ``out_dir``."""
    params = read_augment_params()
    # Copies are measured like ingest measured the originals, so validation thresholds agree.
    settings = section("ingest.measure", MeasureSettings)
    train = read_split(in_dir, SPLIT)
    result = augment_train(train, params, out_dir, quarantine_dir, settings)
    quarantined = sum(len(q) for q in result.quarantine)
    if not params.enabled:
        detail = "augmentation disabled, train passed through"
    else:
        detail = (
            f"{result.clips_written} augmented copies, "
            f"{result.seconds_per_clip:.3f} s per copy on one core"
        )
    print(
        f"augment: {len(train)} train rows -> {len(result.manifest)} rows ({detail}) -> "
        f"{out_dir}; {quarantined} quarantined -> {quarantine_dir}"
    )


if __name__ == "__main__":
    stage.main(run)
