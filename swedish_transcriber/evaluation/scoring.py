"""WER and CER, raw and normalised: the repo's ``evaluate`` metric ``swedish_wer``.

:func:`scores` is what the Trainer's dev metrics and the evaluate stage report. It runs the
metric script in ``metrics/swedish_wer`` through ``evaluate.load`` by path, so it works
offline (the Hub's ``wer``/``cer`` metrics are fetched from the Hugging Face Hub on first
use). The metric keeps its inputs in memory: no cache files, so parallel training processes
cannot collide on them.

:func:`wer` and :func:`cer` score text as given with jiwer (the metric's backend), for the
per-utterance and per-slice figures: one ``evaluate`` compute costs milliseconds of
bookkeeping, too much a thousand times over, and gives the same number.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jiwer

METRIC_PATH = Path(__file__).resolve().parent / "metrics" / "swedish_wer"


@functools.cache
def metric() -> Any:
    """The ``swedish_wer`` metric, loaded once per process from its folder (no Hub)."""
    import evaluate

    return evaluate.load(str(METRIC_PATH), keep_in_memory=True)


def _pairs(references: Sequence[str], hypotheses: Sequence[str]) -> tuple[list[str], list[str]]:
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    if not references:
        raise ValueError("no utterances to score")
    for ref, hyp in zip(references, hypotheses, strict=True):
        if not ref.strip():
            # jiwer cannot score an empty reference; validation keeps them out of the splits.
            raise ValueError(f"empty reference (hypothesis {hyp!r}); it cannot be scored")
    return list(references), list(hypotheses)


def wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Word error rate over the corpus (a fraction, can exceed 1 with insertions)."""
    refs, hyps = _pairs(references, hypotheses)
    return float(jiwer.wer(refs, hyps))


def cer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Character error rate over the corpus (a fraction)."""
    refs, hyps = _pairs(references, hypotheses)
    return float(jiwer.cer(refs, hyps))


def scores(references: Sequence[str], hypotheses: Sequence[str]) -> dict[str, float]:
    """``wer``, ``cer`` on the text as written and ``wer_norm``, ``cer_norm`` normalised.

    A reference that normalises to nothing (only punctuation) is scored as written only.
    """
    refs, hyps = _pairs(references, hypotheses)
    return metric().compute(predictions=hyps, references=refs)
