"""The review loop's automatic mode: which train clips the retrain stage leaves out.

``curation.auto_exclude_top_fraction`` turns the top of the review queue into exclusions
nobody reviewed, so "does dropping the 5 % most suspicious clips help?" is one
``dvc exp run -S curation.auto_exclude_top_fraction=0.05``. The fraction is of the clips
that train (the queue also ranks dev clips, which are never dropped from evaluation), and a
reviewer's decision about a clip wins over the ranking
(:func:`swedish_transcriber.data.curation.auto_exclude`).

The exclusions are not written to the decisions file: they are a function of the queue and
the param, so they are an output (``reports/auto_excluded.csv``), re-made on every run, and
never mistaken for a person's judgement.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from swedish_transcriber.atomic import atomic_file
from swedish_transcriber.data.curation import Decision, auto_exclude

COLUMNS = ("rank", "path", "split", "suspicion", "reason")


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
