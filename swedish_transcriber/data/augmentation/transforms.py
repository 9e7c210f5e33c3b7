"""Params ``augment`` -> an ``audiomentations.Compose`` and the record of what it applied.

The section holds the stage's settings (``enabled``, ``copies``, ``seed``, ``num_proc``)
beside the transforms, each written as ``ClassName: {keyword: value}`` with
an audiomentations class name and the keyword arguments of its constructor, in the order
they are applied::

    Gain: {p: 0.5, min_gain_db: -6.0, max_gain_db: 6.0}

``p`` (the chance that a copy gets the transform) must be given; ``p: 0`` leaves the
transform out, so its inputs (a noise folder, say) need not exist. Values are checked by
constructing the transform: audiomentations' own checks decide, and a refusal is reported as
a ParamsError naming ``params.yaml: augment.<Transform>.<key>``.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from swedish_transcriber.params import PARAMS_FILE, ParamsError, load_params, section

SECTION = "augment"
WHERE = f"{PARAMS_FILE}: {SECTION}"
# Keyword arguments naming a folder of audio files: expanded to a sorted file list, because
# the library lists sub-folders in file-system order, which differs between machines.
AUDIO_FOLDER_KEYS = ("sounds_path", "ir_path")
# A copy whose peak ends above this is scaled down to it, so that no copy is hard-clipped
# when written (and the clipping measurement of the copies stays meaningful).
PEAK_LIMIT = 0.99


@dataclass(frozen=True)
class AugmentSettings:
    """The keys of params ``augment`` that are not transforms."""

    enabled: bool
    copies: int  # augmented copies per train clip, beside the original
    seed: int
    num_proc: int

    def __post_init__(self) -> None:
        if self.copies < 0:
            raise ParamsError(f"{WHERE}.copies must be >= 0, got {self.copies}")
        if self.num_proc < 1:
            raise ParamsError(f"{WHERE}.num_proc must be >= 1, got {self.num_proc}")


@dataclass(frozen=True)
class AugmentParams(AugmentSettings):
    """Params section ``augment``: the settings and ``{Transform: kwargs}`` in chain order."""

    transforms: dict[str, dict[str, Any]]

    def __post_init__(self) -> None:
        super().__post_init__()
        for name, kwargs in self.transforms.items():
            _check_names(name, kwargs)

    def active(self) -> dict[str, dict[str, Any]]:
        """The transforms with ``p`` other than 0, in chain order."""
        return {name: kw for name, kw in self.transforms.items() if kw["p"] != 0}


def read_augment_params(path: str | Path = PARAMS_FILE) -> AugmentParams:
    """Section ``augment`` of ``path``: the settings checked strictly, the rest transforms."""
    settings = section(SECTION, AugmentSettings, path, subset=True)
    raw = load_params(path)[SECTION]
    names = {f.name for f in dataclasses.fields(AugmentSettings)}
    transforms = {k: v for k, v in raw.items() if k not in names}
    return AugmentParams(**dataclasses.asdict(settings), transforms=transforms)


def _transform_class(name: str) -> type:
    import audiomentations
    from audiomentations.core.transforms_interface import BaseWaveformTransform

    cls = getattr(audiomentations, name, None)
    if not (isinstance(cls, type) and issubclass(cls, BaseWaveformTransform)):
        settings = ", ".join(f.name for f in dataclasses.fields(AugmentSettings))
        raise ParamsError(
            f"{WHERE}: unknown key {name!r}; a key is one of {settings} or an audiomentations "
            f"waveform transform (AddGaussianSNR, Gain, TimeStretch, ...)"
        )
    return cls


def _check_names(name: str, kwargs: Any) -> None:
    """The transform exists, its kwargs are a mapping with ``p`` and name its parameters."""
    cls = _transform_class(name)
    if not isinstance(kwargs, dict):
        raise ParamsError(
            f"{WHERE}.{name}: expected a mapping of keyword arguments, got {kwargs!r}"
        )
    if "p" not in kwargs:
        raise ParamsError(f"{WHERE}.{name}: missing key 'p' (the chance a copy gets it; 0: off)")
    signature = inspect.signature(cls)
    for key in kwargs:
        if key not in signature.parameters:
            known = ", ".join(signature.parameters)
            raise ParamsError(
                f"{WHERE}.{name}.{key}: not a parameter of audiomentations.{name} "
                f"(its parameters: {known})"
            )
    try:
        signature.bind(**kwargs)
    except TypeError as exc:
        raise ParamsError(f"{WHERE}.{name}: {exc}") from None


def _expand_folders(kwargs: dict[str, Any]) -> dict[str, Any]:
    from audiomentations.core.utils import find_audio_files_in_paths

    out = dict(kwargs)
    for key in AUDIO_FOLDER_KEYS:
        if isinstance(out.get(key), str) and Path(out[key]).is_dir():
            out[key] = sorted(str(p) for p in find_audio_files_in_paths(out[key]))
    return out


def _culprit(cls: type, kwargs: dict[str, Any], exc: Exception) -> str | None:
    """The key a constructor refused: one its message names, or one whose default it takes."""
    message = str(exc)
    for key in kwargs:
        if re.search(rf"\b{re.escape(key)}\b", message):
            return key
    parameters = inspect.signature(cls).parameters
    for key in kwargs:
        default = parameters[key].default
        if default is inspect.Parameter.empty:
            continue
        try:
            cls(**{**kwargs, key: default})
        except Exception:  # noqa: BLE001, S112 - still refused: not this key
            continue
        return key
    required = [k for k in kwargs if parameters[k].default is inspect.Parameter.empty]
    return required[0] if required else None


def build_transform(name: str, kwargs: dict[str, Any]) -> Any:
    """``audiomentations.<name>(**kwargs)``; a refusal becomes a ParamsError naming the key."""
    _check_names(name, kwargs)
    cls = _transform_class(name)
    expanded = _expand_folders(kwargs)
    try:
        return cls(**expanded)
    except Exception as exc:  # noqa: BLE001 - the library raises ValueError, AssertionError, ...
        key = _culprit(cls, expanded, exc)
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if key is None:
            raise ParamsError(f"{WHERE}.{name}: refused by audiomentations ({reason})") from None
        if key in AUDIO_FOLDER_KEYS:
            reason += "; it must name audio files or a folder that holds some"
        raise ParamsError(
            f"{WHERE}.{name}.{key}: {kwargs[key]!r} is refused by audiomentations.{name} ({reason})"
        ) from None


def build_compose(params: AugmentParams) -> Any:
    """The chain of params ``augment`` as an ``audiomentations.Compose`` (always applied)."""
    from audiomentations import Compose, RoomSimulator

    transforms = [build_transform(name, kw) for name, kw in params.active().items()]
    if any(isinstance(t, RoomSimulator) for t in transforms):
        import pyroomacoustics as pra

        # One thread: the RIR is summed per thread block, so the thread count would
        # otherwise change the last bits with the machine's core count.
        pra.constants.set("num_threads", 1)
    return Compose(transforms, p=1.0, shuffle=False)


def _jsonable(value: Any) -> Any:
    """A parameter value as JSON: floats rounded, paths under the working folder relative."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return round(float(value), 6)
    if isinstance(value, str | Path) and Path(value).is_absolute():
        path = Path(value)
        return (
            path.relative_to(Path.cwd()).as_posix()
            if path.is_relative_to(Path.cwd())
            else str(path)
        )
    if isinstance(value, list | tuple | np.ndarray):
        return [_jsonable(v) for v in value]
    return value if value is None or isinstance(value, str) else str(value)


def applied_transforms(compose: Any) -> list[dict[str, Any]]:
    """The transforms the last call applied, each with the values it drew (``.parameters``)."""
    return [
        {
            "transform": type(t).__name__,
            "params": {k: _jsonable(v) for k, v in t.parameters.items() if k != "should_apply"},
        }
        for t in compose.transforms
        if t.parameters.get("should_apply")
    ]


def limit_peak(samples: np.ndarray) -> tuple[np.ndarray, dict[str, Any] | None]:
    """Scale ``samples`` down to a peak of PEAK_LIMIT if above it; the record of doing so."""
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if peak <= PEAK_LIMIT:
        return samples, None
    scale = PEAK_LIMIT / peak
    record = {"transform": "PeakNormalize", "params": {"gain_db": round(20 * math.log10(scale), 6)}}
    return (samples * np.float32(scale)).astype(np.float32), record
