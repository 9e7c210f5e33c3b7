"""Bootstrap confidence intervals of corpus WER, and of the paired difference of two models.

On a test set of a hundred clips a few words move WER by a point, so every WER the pipeline
reports carries a 95 % interval, and every comparison of two models on the same clips the
interval of their difference. Corpus WER is ``sum(errors) / sum(reference words)``; the
interval resamples clips with replacement (``scipy.stats.bootstrap``, percentile method) and
recomputes that ratio. Where a set names its speakers and has at least
``evaluate.bootstrap.min_speakers`` of them, whole speakers are resampled instead (a cluster
bootstrap): a speaker's clips share a voice, so they are not independent draws, and resampling
clips would make the interval too narrow. With fewer speakers a cluster bootstrap has too few
distinct resamples to mean anything (two speakers: three), so clips are resampled.

A paired difference resamples the same units for both models, so what the two share (a
hard clip is hard for both) cancels: a model compared with itself differs by exactly 0 in every
resample, an interval of zero width.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jiwer
import numpy as np
from scipy import stats

from swedish_transcriber.evaluation.normalizer import normalize


@dataclass(frozen=True)
class BootstrapParams:
    """Params section ``evaluate.bootstrap``."""

    resamples: int  # bootstrap resamples per interval
    seed: int  # every interval draws from its own generator seeded with this
    confidence: float  # e.g. 0.95
    # Sets with at least this many distinct speakers (client_id) resample speakers, not clips.
    min_speakers: int

    def __post_init__(self) -> None:
        if self.resamples < 100:
            raise ValueError(f"resamples must be >= 100, got {self.resamples}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")
        if self.min_speakers < 2:
            raise ValueError(f"min_speakers must be >= 2, got {self.min_speakers}")


def clip_errors(references: Sequence[str], hypotheses: Sequence[str]) -> tuple[np.ndarray, ...]:
    """Per clip: normalised word errors (S + D + I) and normalised reference words.

    Summed, they give exactly the corpus ``wer_norm`` of :mod:`.scoring` (jiwer aligns each
    pair on its own); a reference that normalises to nothing counts 0 and 0, as it is left
    out there.
    """
    errors = np.zeros(len(references), dtype=np.int64)
    words = np.zeros(len(references), dtype=np.int64)
    for i, (ref, hyp) in enumerate(zip(references, hypotheses, strict=True)):
        ref = normalize(ref)
        if not ref:
            continue
        out = jiwer.process_words(ref, normalize(hyp))
        errors[i] = out.substitutions + out.deletions + out.insertions
        words[i] = out.substitutions + out.deletions + out.hits
    return errors, words


def units(groups: Sequence[str], params: BootstrapParams) -> np.ndarray:
    """The resampling unit of each clip: its speaker where the set has enough, else itself."""
    names = np.asarray([str(g) for g in groups], dtype=object)
    speakers = set(names)
    if "" not in speakers and len(speakers) >= params.min_speakers:
        return np.unique(names, return_inverse=True)[1]
    return np.arange(len(names))


def _per_unit(unit: np.ndarray, *columns: np.ndarray) -> list[np.ndarray]:
    n = int(unit.max()) + 1 if len(unit) else 0
    return [np.bincount(unit, weights=c, minlength=n) for c in columns]


def _ratio(*arrays: np.ndarray, axis: int = -1) -> np.ndarray:
    """(sum of the first arrays' differences) / sum of the last: WER or a WER difference."""
    *errors, words = arrays
    total = errors[0].sum(axis=axis) - (errors[1].sum(axis=axis) if len(errors) > 1 else 0)
    return total / words.sum(axis=axis)


def interval(
    unit: np.ndarray, words: np.ndarray, params: BootstrapParams, *errors: np.ndarray
) -> tuple[float, float, float]:
    """(estimate, low, high): WER of one model's ``errors``, or of ``errors[0] - errors[1]``.

    ``unit`` is :func:`units`' resampling unit of each clip. With fewer than two units there
    is nothing to resample, and the interval is the estimate alone.
    """
    data = _per_unit(unit, *errors, words)
    estimate = float(_ratio(*data))
    if len(data[0]) < 2:
        return estimate, estimate, estimate
    result = stats.bootstrap(
        data,
        _ratio,
        n_resamples=params.resamples,
        # At most about 10 million resampled values in memory at once (a 10k-clip set).
        batch=max(1, min(params.resamples, 10_000_000 // len(data[0]))),
        paired=True,
        vectorized=True,
        confidence_level=params.confidence,
        method="percentile",
        rng=np.random.default_rng(params.seed),
    )
    low, high = result.confidence_interval
    return estimate, float(low), float(high)
