"""``swedish_wer``: an ``evaluate`` metric giving WER and CER, as written and normalised.

Loaded by path (``evaluate.load(<this folder>)``), so it needs no Hugging Face Hub: the
Hub's ``wer``/``cer`` metrics would be downloaded on first use, which fails offline. It
computes with jiwer (their backend too) and normalises with the project's Swedish normaliser
(Whisper's BasicTextNormalizer keeping å, ä, ö).

Scores are fractions (0.25, not 25 %), computed over the whole corpus (total errors / total
reference words or characters), not averaged per utterance, so long sentences weigh more, as
in every published WER. ``wer_norm``/``cer_norm`` leave out an utterance whose reference
normalises to nothing (only punctuation); such references are scored as written only.
"""

import datasets
import evaluate
import jiwer

from swedish_transcriber.evaluation.normalizer import normalize

_DESCRIPTION = __doc__
_CITATION = ""
_KWARGS_DESCRIPTION = """
Args:
    predictions: transcripts to score, one string per utterance.
    references: the reference transcripts, none empty (jiwer refuses those).
Returns:
    wer, cer: on the text as written; wer_norm, cer_norm: on the normalised text.
Examples:
    >>> metric = evaluate.load("swedish_transcriber/evaluation/metrics/swedish_wer")
    >>> metric.compute(predictions=["hej hur mår du"], references=["Hej, hur mår du?"])
    {'wer': 0.5, 'cer': 0.1875, 'wer_norm': 0.0, 'cer_norm': 0.0}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SwedishWER(evaluate.Metric):
    """Corpus WER/CER of Swedish transcripts, raw and normalised."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Value("string", id="sequence"),
                    "references": datasets.Value("string", id="sequence"),
                }
            ),
            codebase_urls=["https://github.com/jitsi/jiwer/"],
        )

    def _compute(self, predictions: list[str], references: list[str]) -> dict[str, float]:
        # jiwer refuses empty references (scoring.scores checks for them with a clearer error).
        pairs = zip(references, predictions, strict=True)
        normed = [(r, h) for r, h in ((normalize(r), normalize(h)) for r, h in pairs) if r]
        norm_refs = [r for r, _ in normed]
        norm_hyps = [h for _, h in normed]
        return {
            "wer": float(jiwer.wer(references, predictions)),
            "cer": float(jiwer.cer(references, predictions)),
            "wer_norm": float(jiwer.wer(norm_refs, norm_hyps)),
            "cer_norm": float(jiwer.cer(norm_refs, norm_hyps)),
        }
