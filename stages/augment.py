"""Stage ``augment``: the validated train manifest -> train plus augmented copies.

Reads ``data/validated/train.parquet`` and writes ``data/augmented/train.parquet`` (originals
plus ``augment.copies`` augmented copies per clip) with the copies' audio under
``data/augmented/clips/``. dev and test are not augmented; later stages read them from
``data/validated``. Clips that cannot be decoded or augmented go to
``data/quarantine/augment/``.
"""

from __future__ import annotations

from pathlib import Path

from swedish_transcriber.data.augmentation import SPLIT, augment_train, read_augment_params
from swedish_transcriber.data.ingest import IngestParams
from swedish_transcriber.data.manifest import read_split
from swedish_transcriber.params import section
from swedish_transcriber.stage import run_stage

IN_DIR = Path("data/validated")
OUT_DIR = Path("data/augmented")
QUARANTINE_DIR = Path("data/quarantine/augment")


def run() -> None:
    """Augment the train split into ``data/augmented/``."""
    params = read_augment_params()
    # Copies are measured like ingest measured the originals, so validation thresholds agree.
    settings = section("ingest", IngestParams).measure
    train = read_split(IN_DIR, SPLIT)
    result = augment_train(train, params, OUT_DIR, QUARANTINE_DIR, settings)
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
        f"{OUT_DIR}; {quarantined} quarantined -> {QUARANTINE_DIR}"
    )


def main() -> None:
    run_stage("augment", run)


if __name__ == "__main__":
    main()
