"""Stage ``featurize``: manifests -> Whisper log-mel features and labels (datasets Arrow).

train comes from the augment stage (``data/augmented``), dev and test straight from the
validated manifests: evaluation data is never augmented.
"""

from __future__ import annotations

from pathlib import Path

import datasets

from swedish_transcriber.atomic import atomic_dir
from swedish_transcriber.data.features import FeatureSettings, featurize_split, load_processor
from swedish_transcriber.data.manifest import SPLITS, read_split, write_quarantine
from swedish_transcriber.model.source import ModelLanguage
from swedish_transcriber.params import section
from swedish_transcriber.stage import run_stage

MODEL_DIR = Path("models/base")
INPUTS = {
    "train": Path("data/augmented"),
    "dev": Path("data/validated"),
    "test": Path("data/validated"),
}
OUT_DIR = Path("data/features")
QUARANTINE_DIR = Path("data/quarantine/featurize")


def run() -> None:
    """Featurize train, dev and test into ``data/features/<split>/``."""
    settings = section("features", FeatureSettings)
    model = section("model", ModelLanguage, subset=True)
    processor = load_processor(MODEL_DIR, model.language, model.task)
    datasets.disable_caching()  # outputs go to data/features only, not to ~/.cache
    quarantined = []
    with atomic_dir(QUARANTINE_DIR) as qtmp, atomic_dir(OUT_DIR) as tmp:
        for split in SPLITS:
            table, bad = featurize_split(read_split(INPUTS[split], split), processor, settings)
            table.save_to_disk(str(tmp / split))
            quarantined.append(bad)
            print(f"featurize: {split} {len(table)} rows, {len(bad)} quarantined")
        write_quarantine(quarantined, qtmp)


def main() -> None:
    run_stage("featurize", run)


if __name__ == "__main__":
    main()
