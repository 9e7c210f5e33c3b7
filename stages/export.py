"""Stage ``export``: the fine-tuned model -> CTranslate2 (params ``export``).

``python -m stages.export models/finetuned models/ct2``. The demo page offers the export as
its fast CPU engine (README, "The demo page").
"""

from __future__ import annotations

import argparse
from pathlib import Path

from swedish_transcriber.model.export import ExportParams, export_ct2
from swedish_transcriber.params import section
from swedish_transcriber.stage import run_stage


def run(model_dir: Path, out_dir: Path) -> None:
    """Convert the fine-tuned checkpoint with the quantization params ask for."""
    params = section("export", ExportParams)
    info = export_ct2(model_dir, out_dir, params.quantization)
    print(
        f"export: {model_dir} -> {out_dir} ({info['quantization']}, "
        f"{info['model_bytes'] / 1e6:.1f} MB)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path, help="the fine-tuned transformers checkpoint")
    parser.add_argument("out_dir", type=Path, help="the CTranslate2 model to write")
    args = parser.parse_args(argv)
    run_stage("export", lambda: run(args.model_dir, args.out_dir))


if __name__ == "__main__":
    main()
