"""CTranslate2 Whisper checkpoint -> Hugging Face ``WhisperForConditionalGeneration`` + processor.

The weights are :mod:`~swedish_transcriber.model.ct2.weights`' (every variable used, every
parameter set), the processor and configs :mod:`~swedish_transcriber.model.ct2.processor`'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from swedish_transcriber.model.ct2.processor import (
    SpecialIds,
    build_processor,
    generation_config,
    whisper_config,
)
from swedish_transcriber.model.ct2.reader import Ct2Checkpoint
from swedish_transcriber.model.ct2.weights import build_model, ct2_to_hf_state_dict


def import_checkpoint(
    ckpt: Ct2Checkpoint, out_dir: str | Path, language: str = "sv", task: str = "transcribe"
) -> dict[str, Any]:
    """Write model (float32 safetensors), processor and generation config into ``out_dir``.

    Returns the facts for ``import_info.json``. ``out_dir`` is written in place: callers make
    it atomic (``swedish_transcriber.atomic.atomic_dir``).
    """
    out_dir = Path(out_dir)
    state_dict, dims = ct2_to_hf_state_dict(ckpt.model)
    special = SpecialIds.from_checkpoint(ckpt)
    processor = build_processor(ckpt, dims, language, task)
    config = whisper_config(dims, special)
    model = build_model(state_dict, config)
    model.generation_config = generation_config(dims, special, ckpt.config, language, task)
    model.save_pretrained(out_dir, safe_serialization=True)
    processor.save_pretrained(out_dir)
    return {
        "format": "ctranslate2",
        "sha256": ckpt.model.sha256,
        "model_bin_bytes": ckpt.model.num_bytes,
        "binary_version": ckpt.model.binary_version,
        "spec": ckpt.model.spec_name,
        "spec_revision": ckpt.model.spec_revision,
        "stored_dtypes": sorted(
            {t.dtype for t in ckpt.model.variables.values() if not t.is_scalar}
        ),
        "dims": dims.as_dict(),
        "files": ckpt.files,
    }
