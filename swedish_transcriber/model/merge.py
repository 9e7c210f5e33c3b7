"""Weight interpolation between the base and the trained model (WiSE-FT, params ``merge``).

Fine-tuning moves the weights from a model that is good at everything towards one that is
good at the training data. Wortsman et al. ("Robust fine-tuning of zero-shot models",
WiSE-FT) found that the straight line between the two often holds models that keep most of
the gain and most of the old robustness: ``(1 - alpha) * base + alpha * trained`` for every
floating tensor. It costs one pass over the weights (seconds), so it is its own stage: a new
``merge.alpha`` re-runs only this and what follows, never training.

Both checkpoints must be the same architecture (same tensor names and shapes); integer
tensors, the config, the generation config and the processor files are the trained model's.
``alpha`` 1.0 copies the trained tensors bit for bit and 0.0 the base's.
"""

from __future__ import annotations

import json
import shutil
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import torch

from swedish_transcriber.atomic import atomic_dir

WEIGHTS = "model.safetensors"
INDEX = "model.safetensors.index.json"
INFO_FILE = "merge_info.json"


@dataclass(frozen=True)
class MergeParams:
    """Params section ``merge``."""

    alpha: float  # 1.0: the trained model; 0.0: the base; between: the line between them

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")


def weight_files(model_dir: Path) -> dict[str, Path]:
    """Tensor name -> the safetensors file holding it (one file, or a sharded index)."""
    from safetensors import safe_open

    index = model_dir / INDEX
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        return {name: model_dir / file for name, file in weight_map.items()}
    single = model_dir / WEIGHTS
    if not single.is_file():
        raise FileNotFoundError(f"{model_dir}: no {WEIGHTS} (is it a transformers checkpoint?)")
    with safe_open(str(single), framework="pt") as fh:
        return {name: single for name in fh.keys()}  # noqa: SIM118 (safe_open is no dict)


def interpolate(base: torch.Tensor, trained: torch.Tensor, alpha: float) -> torch.Tensor:
    """``(1 - alpha) * base + alpha * trained`` in float32, stored as the trained dtype."""
    if not trained.is_floating_point():
        return trained
    if alpha == 1.0:
        return trained
    if alpha == 0.0:
        return base.to(trained.dtype)
    mixed = (1.0 - alpha) * base.to(torch.float32) + alpha * trained.to(torch.float32)
    return mixed.to(trained.dtype)


def merge(base_dir: Path, trained_dir: Path, out_dir: Path, params: MergeParams) -> dict:
    """Write ``out_dir``: the interpolated weights with the trained model's other files."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    base_files = weight_files(base_dir)
    trained_files = weight_files(trained_dir)
    if set(base_files) != set(trained_files):
        only_base = sorted(set(base_files) - set(trained_files))[:3]
        only_trained = sorted(set(trained_files) - set(base_files))[:3]
        raise ValueError(
            f"{trained_dir} and {base_dir} hold different tensors (only in base: {only_base}, "
            f"only in trained: {only_trained}): not the same architecture"
        )
    mixed_count = 0
    with atomic_dir(out_dir) as tmp:
        for item in sorted(trained_dir.iterdir()):  # config, generation config, processor
            if item.is_file() and not item.name.endswith(".safetensors"):
                shutil.copy2(item, tmp / item.name)
        with ExitStack() as stack:
            opened: dict[Path, object] = {}

            def handle(path: Path):
                if path not in opened:
                    opened[path] = stack.enter_context(safe_open(str(path), framework="pt"))
                return opened[path]

            by_file: dict[Path, list[str]] = {}
            for name, path in trained_files.items():
                by_file.setdefault(path, []).append(name)
            for path, names in sorted(by_file.items()):
                metadata = handle(path).metadata() or {"format": "pt"}
                tensors = {}
                for name in sorted(names):
                    trained = handle(path).get_tensor(name)
                    base = handle(base_files[name]).get_tensor(name)
                    if base.shape != trained.shape:
                        raise ValueError(
                            f"{name}: shape {tuple(base.shape)} in {base_dir} but "
                            f"{tuple(trained.shape)} in {trained_dir}: not the same architecture"
                        )
                    tensors[name] = interpolate(base, trained, params.alpha).contiguous()
                    mixed_count += int(trained.is_floating_point())
                save_file(tensors, str(tmp / path.name), metadata=metadata)
        info = {
            "alpha": params.alpha,
            "base": str(base_dir),
            "trained": str(trained_dir),
            "interpolated_tensors": mixed_count,
        }
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info
