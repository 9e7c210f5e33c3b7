"""Stage ``export``: the fine-tuned model -> CTranslate2 (params ``export``).

``python -m stages.export models/finetuned models/ct2``. The demo page offers the export as
its fast CPU engine (docs/demo-page.md); the page's decoding (params ``app.decode``) is
written beside it as ``decode_options.json``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from swedish_transcriber import stage
from swedish_transcriber.model.export import ExportParams, export_ct2
from swedish_transcriber.params import section
from swedish_transcriber.whisper import DecodeOptions


def run(model_dir: Path, out_dir: Path) -> None:
    """Convert the fine-tuned checkpoint with the quantization params ask for."""
    params = section("export", ExportParams)
    decode = dataclasses.asdict(section("app.decode", DecodeOptions))
    info = export_ct2(model_dir, out_dir, params.quantization, decode)
    print(
        f"export: {model_dir} -> {out_dir} ({info['quantization']}, "
        f"{info['model_bytes'] / 1e6:.1f} MB)"
    )


if __name__ == "__main__":
    stage.main(run)
