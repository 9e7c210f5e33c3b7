"""Stage ``featurize``: manifests -> Whisper log-mel features and labels (datasets Arrow).

``python -m stages.featurize models/base data/augmented data/validated data/features
data/quarantine/featurize``: train comes from the augment stage's manifest, dev and test
straight from the validated manifests: evaluation data is never augmented.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import datasets

from swedish_transcriber.atomic import atomic_dir
from swedish_transcriber.data.features import FeatureSettings, featurize_split, load_processor
from swedish_transcriber.data.manifest import SPLITS, read_split, write_quarantine
from swedish_transcriber.model.source import ModelLanguage
from swedish_transcriber.params import section
from swedish_transcriber.stage import run_stage


def run(args: argparse.Namespace) -> None:
    """Featurize train, dev and test into ``args.out_dir/<split>/``."""
    settings = section("features", FeatureSettings)
    model = section("model", ModelLanguage, subset=True)
    processor = load_processor(args.model_dir, model.language, model.task)
    inputs = {split: args.eval_dir for split in SPLITS} | {"train": args.train_dir}
    datasets.disable_caching()  # outputs go to the out dir only, not to ~/.cache
    quarantined = []
    with atomic_dir(args.quarantine_dir) as qtmp, atomic_dir(args.out_dir) as tmp:
        for split in SPLITS:
            table, bad = featurize_split(read_split(inputs[split], split), processor, settings)
            table.save_to_disk(str(tmp / split))
            quarantined.append(bad)
            print(f"featurize: {split} {len(table)} rows, {len(bad)} quarantined")
        write_quarantine(quarantined, qtmp)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path, help="the base model (its processor)")
    parser.add_argument("train_dir", type=Path, help="the train manifest's directory")
    parser.add_argument("eval_dir", type=Path, help="the dev and test manifests' directory")
    parser.add_argument("out_dir", type=Path, help="feature tables, one per split")
    parser.add_argument("quarantine_dir", type=Path, help="rows set aside, with reasons")
    args = parser.parse_args(argv)
    run_stage("featurize", lambda: run(args))


if __name__ == "__main__":
    main()
