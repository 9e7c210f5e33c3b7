"""Stage ``merge``: interpolate the trained weights with the base model's (params ``merge``).

``python -m stages.merge models/base models/trained models/finetuned``. Writes
``(1 - alpha) * base + alpha * trained`` for every floating tensor (WiSE-FT), with the
trained model's config, generation config and processor files and a ``merge_info.json``.
``merge.alpha: 1.0`` publishes the trained model unchanged; a new alpha re-runs only this
stage and those after it, never training.
"""

from __future__ import annotations

from pathlib import Path

from swedish_transcriber import stage
from swedish_transcriber.model.merge import MergeParams, merge
from swedish_transcriber.params import section


def run(base_model: Path, trained: Path, output: Path) -> None:
    """Read params ``merge`` and write the interpolated model."""
    params = section("merge", MergeParams)
    info = merge(base_model, trained, output, params)
    print(
        f"merge: {output} = {1 - params.alpha:g} * {base_model} + {params.alpha:g} * {trained} "
        f"({info['interpolated_tensors']} tensors)"
    )


if __name__ == "__main__":
    stage.main(run)
