"""Stage ``export``: ``models/finetuned`` -> ``models/ct2`` (CTranslate2, params ``export``).

The demo page offers the export as its fast CPU engine (README, "The demo page").
"""

from __future__ import annotations

from pathlib import Path

from swedish_transcriber.model.export import ExportParams, export_ct2
from swedish_transcriber.params import section
from swedish_transcriber.stage import run_stage

MODEL_DIR = Path("models/finetuned")
OUT_DIR = Path("models/ct2")


def run() -> None:
    """Convert the fine-tuned checkpoint with the quantization params ask for."""
    params = section("export", ExportParams)
    info = export_ct2(MODEL_DIR, OUT_DIR, params.quantization)
    print(
        f"export: {MODEL_DIR} -> {OUT_DIR} ({info['quantization']}, "
        f"{info['model_bytes'] / 1e6:.1f} MB)"
    )


def main() -> None:
    run_stage("export", run)


if __name__ == "__main__":
    main()
