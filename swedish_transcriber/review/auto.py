"""The review loop's automatic mode: which train clips the retrain stage leaves out.

``review.auto_exclude_top_fraction`` turns the top of the review queue into exclusions
nobody reviewed, so "does dropping the 5 % most suspicious clips help?" is one
``dvc exp run -S review.auto_exclude_top_fraction=0.05``. The fraction is of the clips
that train (the queue also ranks dev clips, which are never dropped from evaluation), and a
reviewer's decision about a clip wins over the ranking (:func:`auto_exclude`).

The exclusions are not written to the decisions file: they are a function of the queue and
the param, so they are an output (``reports/auto_excluded.csv``), re-made on every run, and
never mistaken for a person's judgement.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from swedish_transcriber.atomic import atomic_file
from swedish_transcriber.review.decisions import Decision

COLUMNS = ("rank", "path", "split", "suspicion", "reason")
AUTO_PREFIX = "auto:"  # how an automatic decision's reason starts
# The time of automatic decisions. They are derived (from the queue and params) on every run,
# not recorded, so a fixed time keeps the stage's output identical from run to run.
AUTO_TIME = "1970-01-01T00:00:00Z"


def read_queue(path: str | Path) -> pd.DataFrame:
    """The rank stage's queue, with a clear error when it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the review queue is missing; run `dvc repro rank`")
    queue = pd.read_parquet(path)
    missing = [c for c in ("rank", "path", "split", "suspicion") if c not in queue.columns]
    if missing:
        raise ValueError(f"{path}: lacks column(s) {', '.join(missing)} (re-run the rank stage)")
    return queue


def auto_exclude(
    queue: pd.DataFrame,
    fraction: float,
    decisions: Iterable[Decision] = (),
    time: str = AUTO_TIME,
) -> list[Decision]:
    """Exclude decisions for the top ``ceil(fraction * len(queue))`` rows of a review queue.

    ``queue`` is ranked, most suspicious first (columns ``path`` and ``suspicion``, sorted
    descending; checked, not re-sorted, so the ranker's tie order is kept). Clips among those
    top rows that ``decisions`` (the human ones) already cover are skipped: a human decision
    wins, and the band is not widened to make up for them, so ``fraction`` stays the share of
    the ranking that is trusted to be wrong. Deterministic: same queue, same decisions.
    """
    if not 0 <= fraction <= 1:
        raise ValueError(f"auto-exclude fraction must be in [0, 1], got {fraction}")
    missing = [c for c in ("path", "suspicion") if c not in queue.columns]
    if missing:
        raise ValueError(f"review queue lacks column(s) {', '.join(missing)}")
    scores = pd.to_numeric(queue["suspicion"], errors="coerce").to_numpy(dtype=float)
    paths = queue["path"].astype(str).tolist()
    if len(scores) and not all(math.isfinite(s) for s in scores):
        bad = next(i for i, s in enumerate(scores) if not math.isfinite(s))
        value = queue["suspicion"].tolist()[bad]
        raise ValueError(f"review queue row {bad}: suspicion {value!r} is not a finite number")
    for i in range(1, len(scores)):
        if scores[i] > scores[i - 1]:
            raise ValueError(
                f"review queue is not sorted by suspicion, descending: row {i} ({paths[i]}, "
                f"{scores[i]}) > row {i - 1} ({scores[i - 1]})"
            )
    if len(set(paths)) != len(paths):
        raise ValueError("review queue lists a clip more than once")
    # round() first: 0.1 * 30 is 3.0000000000000004 in floating point, and ceil would say 4.
    count = math.ceil(round(fraction * len(queue), 9))
    covered = {d.path for d in decisions}
    return [
        Decision(
            path=path,
            action="exclude",
            reason=f"{AUTO_PREFIX} top {fraction:g} of the review queue (suspicion {score:.4g})",
            time=time,
        )
        for path, score in zip(paths[:count], scores[:count], strict=True)
        if path not in covered
    ]


def excluded_train_clips(
    queue: pd.DataFrame,
    train_paths: Iterable[str],
    fraction: float,
    decisions: Iterable[Decision] = (),
) -> pd.DataFrame:
    """The queue's rows (columns :data:`COLUMNS`) that the retrain stage leaves out.

    ``train_paths``: the paths of the train table's rows; only queue clips among them count,
    and ``fraction`` is of those clips (ceil, as :func:`auto_exclude` rounds).
    """
    training = set(map(str, train_paths))
    trains = queue[queue["path"].astype(str).isin(training)].reset_index(drop=True)
    chosen = {d.path: d.reason for d in auto_exclude(trains, fraction, decisions)}
    rows = trains[trains["path"].isin(chosen)].copy()
    rows["reason"] = rows["path"].map(chosen)
    return rows[list(COLUMNS)].reset_index(drop=True)


def write_excluded(rows: pd.DataFrame, path: str | Path) -> None:
    """The auto-excluded clips as CSV (header only when none), atomically."""
    with atomic_file(path, newline="", encoding="utf-8") as handle:
        rows[list(COLUMNS)].to_csv(handle, index=False, float_format="%.6f")
