"""Stage ``featurize``: manifests -> Whisper log-mel features and labels (datasets Arrow).

``python -m stages.featurize models/base data/augmented data/validated data/features
data/quarantine/featurize``: train comes from the augment stage's manifest, dev and test
straight from the validated manifests: evaluation data is never augmented.
"""

from __future__ import annotations

from pathlib import Path

import datasets

from swedish_transcriber import stage
from swedish_transcriber.atomic import atomic_dir, scratch_dir
from swedish_transcriber.data.features import FeatureSettings, featurize_split, load_processor
from swedish_transcriber.data.manifest import SPLITS, read_split, write_quarantine
from swedish_transcriber.model.source import ModelLanguage
from swedish_transcriber.params import section


def run(
    model_dir: Path, train_dir: Path, eval_dir: Path, out_dir: Path, quarantine_dir: Path
) -> None:
    """Featurize train, dev and test into ``out_dir/<split>/``."""
    settings = section("features", FeatureSettings)
    model = section("model", ModelLanguage, subset=True)
    processor = load_processor(model_dir, model.language, model.task)
    inputs = {split: eval_dir for split in SPLITS} | {"train": train_dir}
    datasets.disable_caching()  # outputs go to the out dir only, not to ~/.cache
    quarantined = []
    with atomic_dir(quarantine_dir) as qtmp, atomic_dir(out_dir) as tmp:
        for split in SPLITS:
            # map's rows stream to a scratch folder (not RAM); it goes once the split is saved.
            with scratch_dir(out_dir) as scratch:
                manifest = read_split(inputs[split], split)
                table, bad = featurize_split(manifest, processor, settings, scratch)
                table.save_to_disk(str(tmp / split))
            quarantined.append(bad)
            print(f"featurize: {split} {len(table)} rows, {len(bad)} quarantined")
        write_quarantine(quarantined, qtmp)


if __name__ == "__main__":
    stage.main(run)
