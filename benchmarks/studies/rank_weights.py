"""Which review-queue components find label errors: planted errors simulated on a clean run.

Usage (repo root, .venv active, after `dvc repro rank`):

    python benchmarks/studies/rank_weights.py [--seeds 1 2 3] [--noise 0.05] [--top 0.10] \
        [--out benchmarks/studies/results/rank_weights.json]

benchmarks/label_noise.py answers the issue's question end to end, but one run of it costs
the whole pipeline; choosing ``review.rank.weights`` needs many rankings. Only some of a
clip's components depend on its label: the fine-tuned model's teacher-forced loss (mean and
worst token), the WER/CER of the transcripts against the label, and the reading speed. The
transcripts, audio measures and encoder outputs do not. So, for each seed, this plants label
errors into the clean run's train clips with the corpus's own function
(:func:`swedish_transcriber.data.label_noise.plant`), recomputes those components for the
planted clips only (losses on the train stage's stored encoder outputs, error rates against
the queue's stored transcripts), and ranks the queue with each weighting of ``WEIGHTINGS``:
recall and precision of the planted clips among the top ``--top`` of the train clips.

Seeds other than the corpus's (1234) keep benchmarks/label_noise.py's planted set out of
the choice. One difference from a real noisy run: here models/trained learnt the clean
labels; trained on noisy ones it may have learnt some of the errors.
"""

from __future__ import annotations

import argparse
import datetime
import math
import sys
from pathlib import Path

import pandas as pd
import torch

from benchmarks.lib.checkout import REPO, commit_id
from benchmarks.lib.machine import versions
from benchmarks.lib.report import write_report
from swedish_transcriber.data.features import load_split
from swedish_transcriber.data.label_noise import KINDS, LabelNoiseParams, plant
from swedish_transcriber.evaluation.transcription import load_model
from swedish_transcriber.model.source import ModelLanguage
from swedish_transcriber.params import section
from swedish_transcriber.review import stored_states
from swedish_transcriber.review.model_passes import token_losses
from swedish_transcriber.review.params import COMPONENTS, RankParams
from swedish_transcriber.review.queue import error_rates
from swedish_transcriber.review.suspicion import rank_clips

# Candidate weightings: each component alone, the repo's, and label-centred mixes.
WEIGHTINGS: dict[str, dict[str, float]] = {
    **{f"{c} alone": {c: 1.0} for c in COMPONENTS},
    "loss + worst token": {"ft_loss": 1.0, "ft_loss_max": 1.0},
    "loss + worst token + reading speed": {
        "ft_loss": 1.0,
        "ft_loss_max": 1.0,
        "chars_per_second": 0.5,
    },
    "loss + worst token + ft_wer": {"ft_loss": 1.0, "ft_loss_max": 1.0, "ft_wer": 0.5},
    "loss + worst token + ft_cer + reading speed": {
        "ft_loss": 1.0,
        "ft_loss_max": 1.0,
        "ft_cer": 0.5,
        "chars_per_second": 0.5,
    },
}


def simulate(
    queue: pd.DataFrame, seed: int, noise: float, model, tokenizer, stored, table
) -> tuple[pd.DataFrame, set[str]]:
    """The queue's clips with planted labels on train clips (label-dependent parts redone)."""
    clips = queue.copy()
    train = clips[clips["split"] == "train"]
    params = LabelNoiseParams(fraction=noise, kinds=list(KINDS), seed=seed)
    wrong, planted = plant(list(zip(train["path"], train["sentence"], strict=True)), params)
    row_of = {str(p): i for i, p in enumerate(table["path"])}
    paths = sorted(wrong)
    rows = [row_of[p] for p in paths]
    labels = [tokenizer(wrong[p]).input_ids for p in paths]
    for path, row in zip(paths, rows, strict=True):  # the tokenizer makes the stored labels
        sentence = str(clips.loc[clips["path"] == path, "sentence"].iloc[0])
        assert tokenizer(sentence).input_ids == list(table[row]["labels"]), path
    have = stored.get(rows)
    hidden = torch.stack([have[r] for r in rows])
    losses, peaks = token_losses(model, hidden, labels)
    for i, path in enumerate(paths):
        at = clips.index[clips["path"] == path]
        row = clips.loc[at[0]]
        ft_wer, ft_cer = error_rates(wrong[path], str(row["transcript"]))
        clips.loc[at, "sentence"] = wrong[path]
        clips.loc[at, ["ft_loss", "ft_loss_max", "ft_wer", "ft_cer"]] = [
            float(losses[i]),
            float(peaks[i]),
            ft_wer,
            ft_cer,
        ]
        clips.loc[at, "zs_wer"] = error_rates(wrong[path], str(row["zero_shot_transcript"]))[0]
        clips.loc[at, "chars_per_second"] = len(wrong[path]) / float(row["duration"])
    return clips, {e.path for e in planted}


def recall_at(clips: pd.DataFrame, weights: dict[str, float], planted: set[str], top: float):
    ranked = rank_clips(clips, weights)
    train = ranked[ranked["split"] == "train"]
    k = math.ceil(round(top * len(train), 9))
    hits = len(set(train["path"].head(k)) & planted)
    return hits / len(planted), hits / k


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--noise", type=float, default=0.05)
    parser.add_argument("--top", type=float, default=0.10)
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks/studies/results/rank_weights.json"
    )
    parser.add_argument("--queue", type=Path, default=REPO / "reports/review_queue.parquet")
    args = parser.parse_args()
    lang = section("model", ModelLanguage, REPO / "params.yaml", subset=True)
    repo_weights = section("review.rank", RankParams, REPO / "params.yaml").weights
    queue = pd.read_parquet(args.queue)
    raw = queue[[c for c in queue.columns if not c.startswith("score_")]].drop(
        columns=["rank", "suspicion"]
    )
    model, processor = load_model(REPO / "models/trained", lang.language, lang.task)
    table = load_split(REPO / "data/features", "train")
    labels = {"train": [list(x) for x in table["labels"]]}
    stored = stored_states.find(
        REPO / "checkpoints",
        REPO / "models/base",
        REPO / "data/features",
        REPO / "models/trained",
        labels,
    )["train"]
    if stored.table is None:
        raise SystemExit(f"no stored encoder outputs: {stored.note} (run `dvc repro train`)")
    weightings = {"repo params (review.rank.weights)": repo_weights, **WEIGHTINGS}
    per_seed: dict[str, dict] = {name: {} for name in weightings}
    for seed in args.seeds:
        clips, planted = simulate(raw, seed, args.noise, model, processor.tokenizer, stored, table)
        for name, weights in weightings.items():
            recall, precision = recall_at(clips, weights, planted, args.top)
            per_seed[name][seed] = {"recall": round(recall, 4), "precision": round(precision, 4)}
        print(f"seed {seed}: {len(planted)} planted", flush=True)
    summary = {
        name: {
            "weights": weightings[name],
            "mean_recall": round(sum(r["recall"] for r in seeds.values()) / len(seeds), 4),
            "mean_precision": round(sum(r["precision"] for r in seeds.values()) / len(seeds), 4),
            "seeds": seeds,
        }
        for name, seeds in per_seed.items()
    }
    for name, row in sorted(summary.items(), key=lambda kv: -kv[1]["mean_recall"]):
        print(f"{row['mean_recall']:.3f} recall, {row['mean_precision']:.3f} precision: {name}")
    write_report(
        args.out,
        {
            "benchmark": "rank_weights",
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "commit": commit_id(dirty=False),
            "command": " ".join(["python", "benchmarks/studies/rank_weights.py", *sys.argv[1:]]),
            "versions": versions(),
            "noise_fraction": args.noise,
            "top_fraction": args.top,
            "weightings": summary,
        },
    )


if __name__ == "__main__":
    main()
