"""WER and CER, raw and normalised, with jiwer (the backend of evaluate's ``wer``/``cer``).

``evaluate.load("wer")`` fetches its script from the Hugging Face Hub, which is not always
reachable; jiwer gives the same numbers offline. Scores are fractions (0.25, not 25 %),
computed over the whole corpus (total errors / total reference words), not averaged per
utterance, so long sentences weigh more, as in every published WER.
"""

from __future__ import annotations

from collections.abc import Sequence

import jiwer

from swedish_transcriber.evaluation.normalizer import normalize


def _pairs(references: Sequence[str], hypotheses: Sequence[str]) -> tuple[list[str], list[str]]:
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    if not references:
        raise ValueError("no utterances to score")
    refs, hyps = [], []
    for ref, hyp in zip(references, hypotheses, strict=True):
        if not ref.strip():
            # jiwer cannot score an empty reference; validation keeps them out of the splits.
            raise ValueError(f"empty reference (hypothesis {hyp!r}); it cannot be scored")
        refs.append(ref)
        hyps.append(hyp)
    return refs, hyps


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
    normed = [(normalize(r), normalize(h)) for r, h in zip(refs, hyps, strict=True)]
    normed = [(r, h) for r, h in normed if r]
    norm_refs = [r for r, _ in normed]
    norm_hyps = [h for _, h in normed]
    return {
        "wer": wer(refs, hyps),
        "cer": cer(refs, hyps),
        "wer_norm": wer(norm_refs, norm_hyps),
        "cer_norm": cer(norm_refs, norm_hyps),
    }
