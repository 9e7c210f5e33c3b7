"""Choose ``review.rank.weights`` on finished label-noise runs that are not the reported one.

Usage (repo root, .venv active), after benchmarks/label_noise.py ran at other seeds/fractions:

    python benchmarks/studies/queue_weights.py benchmarks/out/label_noise_tuning/repo [...] \
        [--top 0.10] [--out benchmarks/studies/results/queue_weights.json]

A label-noise run's queue (``reports/review_queue.parquet``) keeps every component's raw
value, in sample and out of sample, so ranking it again with other weights is the rank
stage's last step (:func:`swedish_transcriber.review.suspicion.rank_clips`) without its
model passes: seconds instead of a pipeline run. Each weighting of ``WEIGHTINGS`` (declared
here before any run was read) is scored as benchmarks/label_noise.py scores the queue:
recall of the planted clips among the top ``--top`` of the train clips, overall and per
kind, averaged over the runs given. The choice rule, also fixed in advance: the highest
mean overall recall, then the highest mean ``substitute_word`` recall. Never pass the
reported run (corpus.label_noise seed 1234, fraction 0.05): its figures would then be tuned.
"""

from __future__ import annotations

import argparse
import datetime
import math
from pathlib import Path

import pandas as pd

from benchmarks.lib.checkout import REPO, commit_id
from benchmarks.lib.machine import versions
from benchmarks.lib.report import write_report
from swedish_transcriber.review.params import COMPONENTS
from swedish_transcriber.review.suspicion import rank_clips

REPO_WEIGHTS = {
    "ft_loss": 1.0,
    "ft_wer": 1.0,
    "zs_wer": 0.5,
    "chars_per_second": 0.25,
    "silence_ratio": 0.25,
}
WORD = {"oos_loss": 1.0, "oos_wer": 1.0, "oos_word": 1.0}
# Each component alone, the a priori weights, and variations with a reason each: the
# in-sample scores dropped (the model memorised part of the noise), the word evidence
# doubled (one wrong word barely moves a clip's mean), the worst token instead of the mean.
WEIGHTINGS: dict[str, dict[str, float]] = {
    **{f"{c} alone": {c: 1.0} for c in COMPONENTS},
    "a priori (the repo's)": {**REPO_WEIGHTS, **WORD},
    "out of sample only": {
        **{c: w for c, w in REPO_WEIGHTS.items() if not c.startswith("ft_")},
        **WORD,
    },
    "a priori, word x2": {**REPO_WEIGHTS, **WORD, "oos_word": 2.0},
    "out of sample only, word x2": {
        **{c: w for c, w in REPO_WEIGHTS.items() if not c.startswith("ft_")},
        **WORD,
        "oos_word": 2.0,
    },
    "a priori + oos_loss_max": {**REPO_WEIGHTS, **WORD, "oos_loss_max": 1.0},
    "a priori, oos_cer for oos_wer": {
        **REPO_WEIGHTS,
        "oos_loss": 1.0,
        "oos_cer": 1.0,
        "oos_word": 1.0,
    },
    "out-of-sample losses and word": {"oos_loss": 1.0, "oos_loss_max": 1.0, "oos_word": 1.0},
}


def recall(top: set[str], planted: set[str]) -> float | None:
    return len(top & planted) / len(planted) if planted else None


def score_run(repo: Path, weights: dict[str, float], top_fraction: float) -> dict[str, object]:
    """Recall overall and per kind in the top of the train clips, the queue ranked again."""
    queue = pd.read_parquet(repo / "reports/review_queue.parquet")
    planted = pd.read_csv(repo / "data/label_noise/planted.tsv", sep="\t", dtype=str)
    ranked = rank_clips(queue.drop(columns=["rank", "suspicion"]), weights)
    train = ranked[ranked["split"] == "train"]
    k = math.ceil(round(top_fraction * len(train), 9))
    top = set(train["path"].head(k))
    in_queue = set(planted["path"]) & set(train["path"])
    return {
        "overall": recall(top, in_queue),
        **{
            kind: recall(top, set(rows["path"]) & in_queue)
            for kind, rows in planted.groupby("kind")
        },
    }


def mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(sum(present) / len(present), 4) if present else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="label-noise run repos (not 1234)")
    parser.add_argument("--top", type=float, default=0.10)
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks/studies/results/queue_weights.json"
    )
    args = parser.parse_args()
    runs = {}
    for repo in args.runs:
        noise = pd.read_csv(repo / "data/label_noise/planted.tsv", sep="\t", dtype=str)
        runs[str(repo)] = {"planted": len(noise), "by_kind": noise["kind"].value_counts().to_dict()}
    table = {}
    for name, weights in WEIGHTINGS.items():
        per_run = [score_run(repo, weights, args.top) for repo in args.runs]
        kinds = sorted({k for r in per_run for k in r})
        table[name] = {
            "weights": weights,
            **{k: mean([r.get(k) for r in per_run]) for k in kinds},
        }
    mixes = {n: t for n, t in table.items() if not n.endswith(" alone")}
    chosen = max(
        mixes,
        key=lambda n: (mixes[n]["overall"] or 0.0, mixes[n].get("substitute_word") or 0.0),
    )
    report = {
        "date": datetime.date.today().isoformat(),
        "commit": commit_id(),
        "versions": versions(),
        "top_fraction": args.top,
        "runs": runs,
        "rule": "highest mean overall recall, then highest mean substitute_word recall",
        "chosen": chosen,
        "table": table,
    }
    write_report(args.out, report)
    width = max(map(len, table))
    for name, row in sorted(table.items(), key=lambda kv: -(kv[1]["overall"] or 0.0)):
        kinds = "  ".join(f"{k} {v}" for k, v in row.items() if k not in ("weights", "overall"))
        print(f"{name:<{width}}  overall {row['overall']}  {kinds}")
    print(f"\nchosen: {chosen}  {table[chosen]['weights']}")


if __name__ == "__main__":
    main()
