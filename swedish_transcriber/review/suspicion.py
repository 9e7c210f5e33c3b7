"""From per-clip measurements to one ranked ``suspicion`` score (pure pandas, no models).

The components live on different scales (a loss in nats, a WER that can pass 1, a ratio in
[0, 1], characters per second), and their spread depends on the corpus and the model. Each
is therefore turned into its percentile rank within the queue, a score in [0, 1] that says
"more suspicious than this share of the clips", whatever the units: outliers count no more
than the top rank, and one broken component cannot drown the others. A component whose both
ends are suspicious (reading speed) scores by distance from the median rank. The suspicion
is the weighted mean of the scores, so it stays in [0, 1] and a weight is a plain share.

Ties: equal values share their average rank (equal scores); equal suspicions are ordered by
``path`` then ``split``, so the queue is the same on every run.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from swedish_transcriber.review.params import DIRECTIONS


def percentile(values: pd.Series) -> pd.Series:
    """Each value's rank in [0, 1]: 0 for the smallest, 1 for the largest, ties averaged.

    A missing value (NaN) scores 0.5, as the median clip: no evidence either way. In a
    queue of one clip, or when every value is equal, every clip scores 0.5 too.
    """
    values = pd.to_numeric(values, errors="coerce").astype(float)
    present = values.notna()
    out = pd.Series(0.5, index=values.index, dtype=float)
    n = int(present.sum())
    if n > 1:
        ranks = values[present].rank(method="average")
        out[present] = (ranks - 1.0) / (n - 1.0)
    return out


def component_score(values: pd.Series, direction: str) -> pd.Series:
    """A component's score in [0, 1], higher = more suspicious (``direction``: high/low/both)."""
    pct = percentile(values)
    if direction == "high":
        return pct
    if direction == "low":
        return 1.0 - pct
    if direction == "both":
        return (2.0 * pct - 1.0).abs()
    raise ValueError(f"unknown direction {direction!r} (high, low or both)")


def rank_clips(clips: pd.DataFrame, weights: Mapping[str, float]) -> pd.DataFrame:
    """``clips`` with ``score_<c>`` per weighted component, ``suspicion`` and 1-based ``rank``.

    Sorted by suspicion, descending; ties by ``path`` then ``split``. ``clips`` needs the
    columns ``path``, ``split`` and every component named in ``weights``.
    """
    missing = [c for c in ("path", "split", *weights) if c not in clips.columns]
    if missing:
        raise ValueError(f"clips lack column(s) {', '.join(missing)}")
    if not weights or sum(weights.values()) <= 0:
        raise ValueError("weights: at least one component needs a weight > 0")
    out = clips.reset_index(drop=True).copy()
    total = np.zeros(len(out))
    for name, weight in weights.items():
        score = component_score(out[name], DIRECTIONS[name])
        out[f"score_{name}"] = score.to_numpy()
        total += weight * score.to_numpy()
    out["suspicion"] = total / sum(weights.values())
    out = out.sort_values(
        ["suspicion", "path", "split"], ascending=[False, True, True], kind="mergesort"
    ).reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1, dtype=np.int64))
    return out
