"""A test set's feature table: the featurize stage's own code on a set's rows.

The table is the one ``featurize_split`` makes for the dev and test splits (the same decode,
16 kHz resampling, log-mel frames of the base model's processor, label tokens and schema),
so ``load_split`` reads it and no set is scored on features computed another way. What the
featurizer would quarantine (audio that does not decode, a clip over Whisper's window, a
label over its decoder length) fails the set instead: a test set is scored whole.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import datasets
import numpy as np
import pandas as pd

from swedish_transcriber.data.features import FeatureSettings, featurize_split, load_split
from swedish_transcriber.data.testset_readers import ROW_COLUMNS
from swedish_transcriber.data.testsets import TestSet, TestSetError
from swedish_transcriber.whisper import SAMPLE_RATE


def featurize_testset(
    name: str,
    test_set: TestSet,
    rows: pd.DataFrame,
    processor,
    settings: FeatureSettings,
    scratch_dir: Path | None = None,
) -> datasets.Dataset:
    """Featurize a set's rows (``testset_readers``); fail naming every clip that cannot be.

    ``scratch_dir``: as for ``featurize_split`` (a large set streams to disk, not RAM).
    """
    missing = [c for c in ROW_COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(f"test set {name!r}: rows lack column(s) {', '.join(missing)}")
    table, quarantined = featurize_split(
        rows.reset_index(drop=True), processor, settings, scratch_dir
    )
    if len(quarantined):
        raise TestSetError(
            name,
            test_set,
            [
                f"{source}: {reason}" if source else str(reason)
                for source, reason in zip(quarantined["source"], quarantined["reason"], strict=True)
            ],
        )
    return fill_durations(table)


def fill_durations(table: datasets.Dataset) -> datasets.Dataset:
    """Durations a layout does not state: the decoded clip's length at 16 kHz.

    The column is swapped in the Arrow table, not rewritten by ``map``: the log-mel frames
    (~50 KB for a 3 s clip) are then written once, by ``save_to_disk``.
    """
    duration = np.asarray(table["duration"], dtype=np.float64)
    unknown = np.isnan(duration)
    if not unknown.any():
        return table
    length = np.asarray(table["input_length"], dtype=np.float64)
    duration[unknown] = length[unknown] / SAMPLE_RATE
    order = list(table.column_names)
    feature = table.features["duration"]
    table = table.remove_columns("duration").add_column(
        "duration", duration.tolist(), feature=feature
    )
    return table.select_columns(order)


def copy_featurized(name: str, test_set: TestSet, out: Path) -> datasets.Dataset:
    """A split this pipeline featurized already (``features`` format), copied as it is."""
    folder = Path(test_set.path)
    try:
        table = load_split(folder, test_set.split)
    except (FileNotFoundError, ValueError) as exc:
        raise TestSetError(name, test_set, [str(exc)]) from None
    shutil.copytree(
        folder / test_set.split,
        out,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("cache-*.arrow", "tmp*"),
    )
    return table
