"""``metrics/tradeoff.json``: synthetic-speech WER against real-speech WER, for ``dvc plots``.

Fine-tuning on the demo corpus's synthetic voices can lower WER on them and raise it on real
speech (Whisper fine-tunes forget). One scatter point per model and experiment makes that
visible: ``dvc plots diff <exp1> <exp2> ...`` draws each experiment's fine-tuned model at
(WER on the first ``synthetic`` set, WER on the first ``real`` set), beside the zero-shot
model that training does not move.

A side that no set covers is ``null``, not left out: dvc plots refuses a plot whose field is
missing from a revision's data (FieldNotFoundError, that revision dropped), while Vega-Lite
simply does not draw a point with a null coordinate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from swedish_transcriber.data.testsets import TestSet
from swedish_transcriber.evaluation.report import BASELINE, FINETUNED

# The rows, in this order, for those of them that were scored (every model when neither was).
MODELS = (FINETUNED, BASELINE)
X, Y = "synthetic_wer_norm", "real_wer_norm"  # the plot's axes (dvc.yaml's top-level plots)


def first_set(sets: Mapping[str, TestSet], speech: str) -> str | None:
    """The first set (in params order) of ``speech`` ``real`` or ``synthetic``, if any."""
    return next((name for name, spec in sets.items() if spec.speech == speech), None)


def tradeoff(
    results: Mapping[str, Mapping[str, object]],
    sets: Mapping[str, TestSet],
    models: Sequence[str],
) -> list[dict[str, object]]:
    """One row per scored model of ``MODELS``: its ``wer_norm`` on each side (or ``null``).

    ``results`` is eval.json's content (set -> model -> rates). The set names are columns
    too, so the plot's tooltip says what each axis was measured on.
    """
    synthetic, real = first_set(sets, "synthetic"), first_set(sets, "real")
    rows: list[dict[str, object]] = []
    chosen = [m for m in MODELS if m in models] or list(models)
    for model in chosen:
        row: dict[str, object] = {"model": model}
        for axis, name in ((X, synthetic), (Y, real)):
            entry = results[name][model] if name is not None else None
            row[axis] = entry["wer_norm"] if entry is not None else None  # type: ignore[index]
        row["synthetic_set"] = synthetic or ""
        row["real_set"] = real or ""
        rows.append(row)
    return rows
