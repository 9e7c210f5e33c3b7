"""Stage ``export``: the fine-tuned model -> CTranslate2 (params ``export``).

``python -m stages.export models/finetuned models/ct2``. The demo page offers the export as
its fast CPU engine (docs/demo-page.md); the page's decoding (params ``app.decode``) and the
encoder context the fine-tuned model recorded (``whisper.model_context(models/finetuned)``:
``padded`` or ``clip`` with its minimum) are written beside it as ``decode_options.json``,
so the page serves the export with the context it was trained for.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from swedish_transcriber import stage
from swedish_transcriber.model.export import ExportParams, export_ct2
from swedish_transcriber.params import section
from swedish_transcriber.whisper import CONTEXT_KEY, DecodeOptions, EncoderContext


def run(model_dir: Path, out_dir: Path) -> None:
    """Convert the fine-tuned checkpoint with the quantization params ask for."""
    params = section("export", ExportParams)
    decode = dataclasses.asdict(section("app.decode", DecodeOptions))
    info = export_ct2(model_dir, out_dir, params.quantization, decode)
    context = EncoderContext.from_record(info[CONTEXT_KEY], model_dir)
    shown = f"clip, at least {context.min_context_seconds:g} s" if context.is_clip else "padded"
    print(
        f"export: {model_dir} -> {out_dir} ({info['quantization']}, "
        f"{info['model_bytes'] / 1e6:.1f} MB, encoder context {shown})"
    )


if __name__ == "__main__":
    stage.main(run)
