"""Stage ``retrain``: the review loop's automatic mode (``review.auto_exclude_top_fraction``).

``python -m stages.retrain models/base data/features models/trained
reports/review_queue.parquet data/review/decisions.tsv checkpoints models/curated
checkpoints-curated reports/auto_excluded.csv``.
Leaves out the top fraction of the train clips in the review queue (their augmented copies
with them; a reviewer's decision wins), lists them in the CSV, and trains again on the rest
with the same params ``train``, reusing the train stage's stored encoder outputs. At fraction
0 (the default) nothing is left out and models/trained is passed on as models/curated, hard
linked, so the pipeline costs no second training. The merge stage reads models/curated.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from swedish_transcriber import stage
from swedish_transcriber.atomic import atomic_dir
from swedish_transcriber.data.features import load_split
from swedish_transcriber.model.source import ModelLanguage
from swedish_transcriber.model.training.fine_tune import TrainPaths, train
from swedish_transcriber.model.training.params import TrainParams
from swedish_transcriber.params import section
from swedish_transcriber.review.auto import excluded_train_clips, read_queue, write_excluded
from swedish_transcriber.review.decisions import read_decisions
from swedish_transcriber.review.params import ReviewParams
from swedish_transcriber.whisper import EncoderContext


def copy_tree(source: Path, target: Path) -> None:
    """Make ``target`` a copy of the folder ``source``, atomically; files are hard links
    where the filesystem allows (a model passed on unchanged costs no disk), else copies."""
    with atomic_dir(target) as tmp:
        for file in sorted(p for p in source.rglob("*") if p.is_file()):
            out = tmp / file.relative_to(source)
            out.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(file, out)
            except OSError:
                shutil.copy2(file, out)


def run(
    base_model: Path,
    features: Path,
    trained: Path,
    queue: Path,
    decisions: Path,
    checkpoints: Path,
    output: Path,
    own_checkpoints: Path,
    excluded_csv: Path,
) -> None:
    """Choose the excluded clips, then train without them (or pass models/trained on)."""
    fraction = section("review", ReviewParams).auto_exclude_top_fraction
    params = section("train", TrainParams)
    model = section("model", ModelLanguage, subset=True)
    context = section("whisper", EncoderContext)
    ranked = read_queue(queue)
    if fraction > 0 and ranked.empty:
        raise ValueError(
            f"{queue}: the review queue is empty, but review.auto_exclude_top_fraction is "
            f"{fraction:g}; run `dvc repro rank` (it ranks whenever the fraction is above 0)"
        )
    train_paths = load_split(features, "train")["path"]
    human = read_decisions(decisions) if decisions.is_file() else []
    excluded = excluded_train_clips(ranked, train_paths, fraction, human)
    first = int(os.environ.get("RANK", "0")) == 0  # under torchrun, one process writes
    if first:
        write_excluded(excluded, excluded_csv)
    if excluded.empty:
        if not first:
            return
        copy_tree(trained, output)
        with atomic_dir(own_checkpoints) as tmp:  # an out of the stage: say why it is empty
            note = {"auto_exclude_top_fraction": fraction, "excluded": 0, "trained": str(trained)}
            (tmp / "retrain.json").write_text(json.dumps(note, indent=2) + "\n", encoding="utf-8")
        print(f"retrain: nothing excluded (fraction {fraction:g}); {output} = {trained}")
        return
    (own_checkpoints / "retrain.json").unlink(missing_ok=True)  # a pass-on run's note
    print(f"retrain: leaving out {len(excluded)} train clips (fraction {fraction:g}):")
    for row in excluded.head(5).itertuples():
        print(f"  {row.rank}. {row.path} ({row.suspicion:.3f})")
    paths = TrainPaths(
        base_model,
        features,
        output,
        own_checkpoints,
        own_checkpoints / "dvclive",
        exclude=frozenset(excluded["path"]),
        shared_encoder_cache=checkpoints / "encoder_cache",
    )
    final = train(params, model.language, model.task, paths, context=context)
    print("retrain: final dev metrics " + ", ".join(f"{k}={v}" for k, v in sorted(final.items())))


if __name__ == "__main__":
    stage.main(run)
