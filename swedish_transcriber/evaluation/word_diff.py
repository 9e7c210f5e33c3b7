"""Which words a transcript got wrong: the word alignment behind WER, for the demo page.

The page colours substituted, inserted and missing words against a reference the user types;
the alignment is jiwer's (the backend of evaluate's ``wer``) on the normalised text, so the
rate shown is the one ``scoring.scores`` reports as ``wer_norm``.
"""

from __future__ import annotations

from dataclasses import dataclass

import jiwer

from swedish_transcriber.evaluation.normalizer import normalize


@dataclass(frozen=True)
class WordOp:
    """One step of the word alignment: ``equal``, ``substitute``, ``insert`` or ``delete``."""

    kind: str
    reference: tuple[str, ...]
    hypothesis: tuple[str, ...]


@dataclass(frozen=True)
class WordDiff:
    """A transcript against a reference, normalised: WER and the aligned words."""

    wer: float
    ops: tuple[WordOp, ...]


def word_diff(reference: str, hypothesis: str) -> WordDiff:
    """Align the normalised words of ``hypothesis`` to ``reference`` (jiwer's alignment).

    The WER is the number ``scoring.scores`` gives as ``wer_norm`` for this one utterance.
    """
    ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref:
        raise ValueError("the reference text has no words to compare with")
    out = jiwer.process_words(ref, hyp)
    ref_words, hyp_words = out.references[0], out.hypotheses[0]
    ops = tuple(
        WordOp(
            kind=chunk.type,
            reference=tuple(ref_words[chunk.ref_start_idx : chunk.ref_end_idx]),
            hypothesis=tuple(hyp_words[chunk.hyp_start_idx : chunk.hyp_end_idx]),
        )
        for chunk in out.alignments[0]
    )
    return WordDiff(wer=float(out.wer), ops=ops)
