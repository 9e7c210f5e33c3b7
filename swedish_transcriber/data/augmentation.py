"""Offline data augmentation of the train split with audiomentations.

Each train clip keeps its original row and gains ``copies`` augmented copies: the clip is
decoded at ``augment.sample_rate``, sent through an audiomentations chain built from params
``augment`` and written as ``data/augmented/clips/<stem>.aug<k>.flac``. The manifest row of a
copy is the original row with the new ``path``/``audio_file``, re-measured audio statistics, the
transforms that were actually applied with their sampled values (``augmentation``, JSON) and
the clip it came from (``source_path``). dev and test are never augmented.

Determinism: the randomness of clip ``path``, copy ``k`` is seeded from ``(seed, path, k)``
alone. audiomentations draws from Python's ``random`` and NumPy's global generator; room
simulation also draws from pyroomacoustics' own NumPy generator and its C++ generator
(libroom). All of them are reseeded before each copy, so the output does not depend on how
the rows are spread over processes: ``num_proc: 1`` and ``num_proc: 2`` give the same bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import math
import multiprocessing
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from swedish_transcriber.atomic import atomic_dir
from swedish_transcriber.audio import AudioError, load_audio, measure, read_audio, write_audio
from swedish_transcriber.data.ingest import MeasureSettings
from swedish_transcriber.data.manifest import (
    COLUMNS,
    conform,
    empty_manifest,
    quarantine_rows,
    write_quarantine,
    write_split,
)
from swedish_transcriber.params import ParamsError

STAGE = "augment"
SPLIT = "train"
EXTRA_COLUMNS: tuple[str, ...] = ("augmentation", "source_path")
CLIPS_DIR = "clips"
# A transform that pushes the peak above this is followed by a rescale to it, so that no
# copy is hard-clipped when written (and the clipping measurement stays meaningful).
PEAK_LIMIT = 0.99
ROOM_MAX_ORDER = 3  # image-source order of the hybrid ISM / ray-tracing room simulation


# --------------------------------------------------------------------------- params


def _check_p(where: str, p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ParamsError(f"params.yaml: augment.{where}.p must be in [0, 1], got {p}")


def _check_range(where: str, low_name: str, low: float, high_name: str, high: float) -> None:
    if low > high:
        raise ParamsError(
            f"params.yaml: augment.{where}.{low_name} ({low}) must not be greater than "
            f"augment.{where}.{high_name} ({high})"
        )


@dataclass(frozen=True)
class GaussianNoiseParams:
    """``augment.gaussian_noise``: white noise at a random SNR (AddGaussianSNR)."""

    p: float = 0.5
    min_snr_db: float = 15.0
    max_snr_db: float = 40.0

    def __post_init__(self) -> None:
        _check_p("gaussian_noise", self.p)
        _check_range("gaussian_noise", "min_snr_db", self.min_snr_db, "max_snr_db", self.max_snr_db)


@dataclass(frozen=True)
class GainParams:
    """``augment.gain``: a random volume change (Gain)."""

    p: float = 0.5
    min_gain_db: float = -6.0
    max_gain_db: float = 6.0

    def __post_init__(self) -> None:
        _check_p("gain", self.p)
        _check_range("gain", "min_gain_db", self.min_gain_db, "max_gain_db", self.max_gain_db)


@dataclass(frozen=True)
class TimeStretchParams:
    """``augment.time_stretch``: faster or slower speech at the same pitch (TimeStretch)."""

    p: float = 0.3
    min_rate: float = 0.9
    max_rate: float = 1.1

    def __post_init__(self) -> None:
        _check_p("time_stretch", self.p)
        _check_range("time_stretch", "min_rate", self.min_rate, "max_rate", self.max_rate)
        if self.min_rate < 0.1 or self.max_rate > 10.0:
            raise ParamsError("params.yaml: augment.time_stretch rates must lie in [0.1, 10]")


@dataclass(frozen=True)
class PitchShiftParams:
    """``augment.pitch_shift``: a higher or lower voice at the same tempo (PitchShift)."""

    p: float = 0.3
    min_semitones: float = -2.0
    max_semitones: float = 2.0

    def __post_init__(self) -> None:
        _check_p("pitch_shift", self.p)
        _check_range(
            "pitch_shift", "min_semitones", self.min_semitones, "max_semitones", self.max_semitones
        )
        if self.min_semitones < -24 or self.max_semitones > 24:
            raise ParamsError("params.yaml: augment.pitch_shift semitones must lie in [-24, 24]")


@dataclass(frozen=True)
class RoomParams:
    """``augment.room``: reverberation of a simulated room with a random RT60 (RoomSimulator)."""

    p: float = 0.2
    min_rt60: float = 0.2
    max_rt60: float = 0.6

    def __post_init__(self) -> None:
        _check_p("room", self.p)
        _check_range("room", "min_rt60", self.min_rt60, "max_rt60", self.max_rt60)
        if self.min_rt60 <= 0:
            raise ParamsError("params.yaml: augment.room.min_rt60 must be > 0 seconds")


@dataclass(frozen=True)
class BackgroundNoiseParams:
    """``augment.background_noise``: sounds from a folder mixed in (AddBackgroundNoise).

    Active only when ``sounds_path`` is non-empty and ``p > 0``.
    """

    p: float = 0.0
    sounds_path: str = ""
    min_snr_db: float = 10.0
    max_snr_db: float = 30.0

    def __post_init__(self) -> None:
        _check_p("background_noise", self.p)
        _check_range(
            "background_noise", "min_snr_db", self.min_snr_db, "max_snr_db", self.max_snr_db
        )

    @property
    def active(self) -> bool:
        return self.p > 0 and self.sounds_path != ""


@dataclass(frozen=True)
class Mp3CompressionParams:
    """``augment.mp3_compression``: an MP3 encode/decode round trip (Mp3Compression)."""

    p: float = 0.2
    min_bitrate: int = 32
    max_bitrate: int = 96

    def __post_init__(self) -> None:
        _check_p("mp3_compression", self.p)
        _check_range(
            "mp3_compression", "min_bitrate", self.min_bitrate, "max_bitrate", self.max_bitrate
        )


@dataclass(frozen=True)
class AugmentParams:
    """Params section ``augment``."""

    enabled: bool = True
    copies: int = 1
    seed: int = 1234
    num_proc: int = 2
    sample_rate: int = 16000
    gaussian_noise: GaussianNoiseParams = field(default_factory=GaussianNoiseParams)
    gain: GainParams = field(default_factory=GainParams)
    time_stretch: TimeStretchParams = field(default_factory=TimeStretchParams)
    pitch_shift: PitchShiftParams = field(default_factory=PitchShiftParams)
    room: RoomParams = field(default_factory=RoomParams)
    background_noise: BackgroundNoiseParams = field(default_factory=BackgroundNoiseParams)
    mp3_compression: Mp3CompressionParams = field(default_factory=Mp3CompressionParams)

    def __post_init__(self) -> None:
        if self.copies < 0:
            raise ParamsError(f"params.yaml: augment.copies must be >= 0, got {self.copies}")
        if self.num_proc < 1:
            raise ParamsError(f"params.yaml: augment.num_proc must be >= 1, got {self.num_proc}")
        if self.sample_rate <= 0:
            raise ParamsError(
                f"params.yaml: augment.sample_rate must be > 0, got {self.sample_rate}"
            )


# --------------------------------------------------------------------------- the chain


def _require(module: str, package: str, what: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ParamsError(
            f"params.yaml: augment.{what}.p > 0 needs the Python package {package!r}, which is "
            f"not installed (pip install {package}), or set augment.{what}.p: 0"
        )


def _round(value: float) -> float:
    return round(float(value), 6)


def _gaussian_snr_class() -> type:
    from audiomentations import AddGaussianSNR
    from audiomentations.core.utils import calculate_desired_noise_rms, calculate_rms

    class GaussianSNR(AddGaussianSNR):
        """AddGaussianSNR that also keeps the SNR it drew (the library keeps only the std)."""

        def randomize_parameters(self, samples: np.ndarray, sample_rate: int) -> None:
            self.parameters["should_apply"] = random.random() < self.p
            if self.parameters["should_apply"]:
                snr = random.uniform(self.min_snr_db, self.max_snr_db)
                self.parameters["snr_db"] = snr
                self.parameters["noise_std"] = float(
                    calculate_desired_noise_rms(clean_rms=calculate_rms(samples), snr=snr)
                )

    return GaussianSNR


@dataclass
class Step:
    """One transform of the chain and how to describe the values it drew."""

    name: str
    transform: Any
    describe: Callable[[dict[str, Any]], dict[str, Any]]


def _room_record(prm: dict[str, Any]) -> dict[str, Any]:
    return {
        "rt60": _round(prm["target_rt60"]),
        "room_size": [_round(prm["size_x"]), _round(prm["size_y"]), _round(prm["size_z"])],
        "absorption": _round(prm["absorption_coefficient"]),
        "mic_distance": _round(prm["mic_radius"]),
    }


def _background_files(params: BackgroundNoiseParams) -> list[str]:
    from audiomentations.core.utils import find_audio_files_in_paths

    folder = Path(params.sounds_path)
    if not folder.is_dir():
        raise ParamsError(
            f"params.yaml: augment.background_noise.sounds_path: {folder} is not a directory "
            f'(point it at a folder of noise recordings, or set sounds_path: "")'
        )
    files = sorted(str(p) for p in find_audio_files_in_paths(folder))
    if not files:
        raise ParamsError(
            f"params.yaml: augment.background_noise.sounds_path: {folder} holds no audio files"
        )
    return files


class Chain:
    """The augmentation chain of params ``augment``; call ``apply`` once per copy."""

    def __init__(self, params: AugmentParams) -> None:
        import audiomentations as am

        self.params = params
        self.uses_room = params.room.p > 0
        self.steps: list[Step] = []
        ts, ps, room, bg = (
            params.time_stretch,
            params.pitch_shift,
            params.room,
            params.background_noise,
        )
        if ts.p > 0:
            self.steps.append(
                Step(
                    "TimeStretch",
                    # The whole utterance must survive: a slower copy is longer, not truncated.
                    am.TimeStretch(
                        min_rate=ts.min_rate,
                        max_rate=ts.max_rate,
                        leave_length_unchanged=False,
                        p=ts.p,
                    ),
                    lambda prm: {"rate": _round(prm["rate"])},
                )
            )
        if ps.p > 0:
            self.steps.append(
                Step(
                    "PitchShift",
                    am.PitchShift(
                        min_semitones=ps.min_semitones, max_semitones=ps.max_semitones, p=ps.p
                    ),
                    lambda prm: {"semitones": _round(prm["num_semitones"])},
                )
            )
        if room.p > 0:
            _require("pyroomacoustics", "pyroomacoustics", "room")
            import pyroomacoustics as pra

            # One thread: the RIR is summed per thread block, so the thread count would
            # otherwise change the last bits with the machine's core count.
            pra.constants.set("num_threads", 1)
            self.steps.append(
                Step(
                    "RoomSimulator",
                    am.RoomSimulator(
                        min_target_rt60=room.min_rt60,
                        max_target_rt60=room.max_rt60,
                        calculation_mode="rt60",
                        use_ray_tracing=True,
                        max_order=ROOM_MAX_ORDER,
                        leave_length_unchanged=True,
                        p=room.p,
                    ),
                    _room_record,
                )
            )
        if bg.active:
            files = _background_files(bg)
            root = Path(bg.sounds_path).resolve()
            self.steps.append(
                Step(
                    "AddBackgroundNoise",
                    am.AddBackgroundNoise(
                        sounds_path=files,
                        min_snr_db=bg.min_snr_db,
                        max_snr_db=bg.max_snr_db,
                        p=bg.p,
                    ),
                    lambda prm: {
                        "snr_db": _round(prm["snr_db"]),
                        "noise_file": Path(prm["noise_file_path"]).relative_to(root).as_posix(),
                        "offset": _round(prm["offset"]),
                    },
                )
            )
        gn = params.gaussian_noise
        if gn.p > 0:
            self.steps.append(
                Step(
                    "AddGaussianSNR",
                    _gaussian_snr_class()(
                        min_snr_db=gn.min_snr_db, max_snr_db=gn.max_snr_db, p=gn.p
                    ),
                    lambda prm: {"snr_db": _round(prm["snr_db"])},
                )
            )
        gain = params.gain
        if gain.p > 0:
            self.steps.append(
                Step(
                    "Gain",
                    am.Gain(min_gain_db=gain.min_gain_db, max_gain_db=gain.max_gain_db, p=gain.p),
                    lambda prm: {"gain_db": _round(20.0 * math.log10(prm["amplitude_ratio"]))},
                )
            )
        mp3 = params.mp3_compression
        if mp3.p > 0:
            _require("fast_mp3_augment", "fast-mp3-augment", "mp3_compression")
            self.steps.append(
                Step(
                    "Mp3Compression",
                    am.Mp3Compression(
                        min_bitrate=mp3.min_bitrate,
                        max_bitrate=mp3.max_bitrate,
                        backend="fast-mp3-augment",
                        p=mp3.p,
                    ),
                    lambda prm: {"bitrate": int(prm["bitrate"])},
                )
            )

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.steps]

    def seed(self, seed: int, path: str, copy: int) -> None:
        """Seed every generator the transforms draw from, from ``(seed, path, copy)`` only."""
        digest = hashlib.sha256(f"{seed}\x00{path}\x00{copy}".encode()).digest()
        random.seed(int.from_bytes(digest[0:8], "big"))
        np.random.seed(int.from_bytes(digest[8:12], "big"))
        if self.uses_room:
            import pyroomacoustics as pra

            pra.random.seed(
                numpy=int.from_bytes(digest[12:20], "big"),
                libroom=int.from_bytes(digest[20:28], "big"),
            )

    def apply(
        self, audio: np.ndarray, sample_rate: int, path: str, copy: int
    ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Augment one copy; return the audio and the transforms applied, with their values."""
        self.seed(self.params.seed, path, copy)
        samples = np.ascontiguousarray(audio, dtype=np.float32)
        applied: list[dict[str, Any]] = []
        for step in self.steps:
            samples = step.transform(samples, sample_rate)
            if not step.transform.parameters.get("should_apply"):
                continue
            samples = np.ascontiguousarray(samples, dtype=np.float32)
            applied.append(
                {"transform": step.name, "params": step.describe(step.transform.parameters)}
            )
            peak = float(np.max(np.abs(samples))) if samples.size else 0.0
            if peak > PEAK_LIMIT:
                scale = PEAK_LIMIT / peak
                samples = (samples * np.float32(scale)).astype(np.float32)
                gain_db = _round(20.0 * math.log10(scale))
                applied.append({"transform": "PeakNormalize", "params": {"gain_db": gain_db}})
        if samples.ndim != 1 or samples.size == 0:
            raise ValueError(f"the chain returned no audio (shape {samples.shape})")
        if not np.isfinite(samples).all():
            raise ValueError("the chain returned NaN or infinite samples")
        return samples, applied


def build_chain(params: AugmentParams) -> Chain:
    """Build the chain; configuration errors (a missing noise folder, ...) raise ParamsError."""
    return Chain(params)


# --------------------------------------------------------------------------- per row


def copy_name(path: str, copy: int) -> str:
    """File name of augmented copy ``copy`` (1-based) of clip ``path``."""
    return f"{Path(path).stem}.aug{copy}.flac"


@dataclass
class RowResult:
    """What one train row became: output rows and (row, reason) pairs set aside."""

    rows: list[dict[str, Any]]
    quarantined: list[tuple[dict[str, Any], str]]
    seconds: float = 0.0


def _original(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["augmentation"] = "[]"
    out["source_path"] = ""
    return out


def augment_row(
    row: dict[str, Any],
    chain: Chain,
    work_clips_dir: Path,
    final_clips_dir: Path,
    settings: MeasureSettings,
) -> RowResult:
    """The original row plus its augmented copies (audio written into ``work_clips_dir``)."""
    started = time.perf_counter()
    params = chain.params
    source = str(row["audio_file"])
    try:
        audio = load_audio(source, params.sample_rate)
    except AudioError as exc:
        return RowResult([], [(_original(row), str(exc))], time.perf_counter() - started)
    rows = [_original(row)]
    quarantined: list[tuple[dict[str, Any], str]] = []
    for k in range(1, params.copies + 1):
        name = copy_name(str(row["path"]), k)
        out = dict(row)
        out.update(
            path=name,
            audio_file=(final_clips_dir / name).as_posix(),
            source_path=str(row["path"]),
            augmentation="[]",
        )
        try:
            augmented, applied = chain.apply(audio, params.sample_rate, str(row["path"]), k)
            target = work_clips_dir / name
            write_audio(target, augmented, params.sample_rate)
            stored, sr = read_audio(target)
        except Exception as exc:  # noqa: BLE001 - any failure of one copy quarantines it
            quarantined.append(
                (out, f"{source}: augmented copy {k} failed: {type(exc).__name__}: {exc}")
            )
            (work_clips_dir / name).unlink(missing_ok=True)
            continue
        stats = measure(stored, sr, settings.silence_threshold_db, settings.clipping_threshold)
        out.update(dataclasses.asdict(stats))
        out["augmentation"] = json.dumps(applied)
        rows.append(out)
    return RowResult(rows, quarantined, time.perf_counter() - started)


# --------------------------------------------------------------------------- parallel driver

_WORKER: dict[str, Any] = {}


def _init_worker(
    params: AugmentParams, work_clips_dir: Path, final_clips_dir: Path, settings: MeasureSettings
) -> None:
    _WORKER.update(
        chain=build_chain(params), work=work_clips_dir, final=final_clips_dir, settings=settings
    )


def _run_chunk(chunk: list[dict[str, Any]]) -> list[RowResult]:
    return [
        augment_row(r, _WORKER["chain"], _WORKER["work"], _WORKER["final"], _WORKER["settings"])
        for r in chunk
    ]


def _chunks(items: list[dict[str, Any]], size: int) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass
class AugmentResult:
    """The augmented train manifest, the rows set aside, and timing.

    ``seconds_per_clip`` is single-core seconds (decode, augment, write, re-measure) per
    augmented copy written.
    """

    manifest: pd.DataFrame
    quarantine: list[pd.DataFrame]
    clips_written: int = 0
    seconds_per_clip: float = 0.0


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    if not rows:
        out = empty_manifest()
        for c in columns:
            if c not in out.columns:
                out[c] = pd.Series(dtype="string")
        return out[columns]
    out = conform(pd.DataFrame(rows, columns=columns))
    for c in EXTRA_COLUMNS:
        out[c] = out[c].astype("string")
    return out


def _columns(df: pd.DataFrame) -> list[str]:
    """Manifest columns, then any extra input columns, then ``augmentation``, ``source_path``."""
    extra = [c for c in df.columns if c not in EXTRA_COLUMNS and c not in COLUMNS]
    return [*COLUMNS, *extra, *EXTRA_COLUMNS]


def passthrough(df: pd.DataFrame) -> pd.DataFrame:
    """The train manifest unchanged, plus ``augmentation`` ("[]") and ``source_path`` ("")."""
    return _frame([_original(r) for r in df.to_dict("records")], _columns(df))


def augment_manifest(
    df: pd.DataFrame,
    params: AugmentParams,
    work_clips_dir: str | Path,
    final_clips_dir: str | Path,
    settings: MeasureSettings,
) -> AugmentResult:
    """Augment every row of ``df``; write the copies' audio into ``work_clips_dir``.

    ``final_clips_dir`` is where ``work_clips_dir`` will live once the output is moved into
    place; the manifest's ``audio_file`` points there. Output rows keep the input order, each
    original followed by its copies.
    """
    if not params.enabled or params.copies == 0:
        return AugmentResult(passthrough(df), [])
    chain = build_chain(params)  # configuration errors surface here, before any worker starts
    work, final = Path(work_clips_dir), Path(final_clips_dir)
    work.mkdir(parents=True, exist_ok=True)
    paths = [str(p) for p in df["path"]]
    stems = pd.Series([Path(p).stem for p in paths])
    duplicated = sorted(
        {p for p, dup in zip(paths, stems.duplicated(keep=False), strict=True) if dup}
    )
    if duplicated:
        raise ValueError(
            f"train manifest: clips whose names differ only in extension or repeat would "
            f"overwrite each other's augmented copies: {', '.join(duplicated[:10])}"
        )
    records = df.to_dict("records")
    if params.num_proc <= 1 or len(records) < 2:
        results = [augment_row(r, chain, work, final, settings) for r in records]
    else:
        size = max(1, math.ceil(len(records) / (params.num_proc * 8)))
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(
            params.num_proc, initializer=_init_worker, initargs=(params, work, final, settings)
        ) as pool:
            results = [r for chunk in pool.imap(_run_chunk, _chunks(records, size)) for r in chunk]
    columns = _columns(df)
    rows = [r for res in results for r in res.rows]
    bad = [q for res in results for q in res.quarantined]
    quarantine = []
    if bad:
        quarantine.append(
            quarantine_rows(
                _frame([r for r, _ in bad], columns), STAGE, [reason for _, reason in bad]
            )
        )
    written = sum(1 for r in rows if r["source_path"])
    decoded = sum(1 for r in rows if not r["source_path"])
    if decoded and not written:
        # Not one copy of a decodable clip came out: a broken setup, not a few bad clips.
        raise ValueError(f"augment: every augmented copy failed; the first: {bad[0][1]}")
    busy = sum(res.seconds for res in results)  # decode + augment + write + measure, 1 core
    return AugmentResult(
        manifest=_frame(rows, columns),
        quarantine=quarantine,
        clips_written=written,
        seconds_per_clip=busy / written if written else 0.0,
    )


def augment_train(
    train: pd.DataFrame,
    params: AugmentParams,
    out_dir: str | Path,
    quarantine_dir: str | Path,
    settings: MeasureSettings,
) -> AugmentResult:
    """Write ``out_dir/train.parquet`` and ``out_dir/clips/`` and the quarantine, atomically."""
    out_dir, quarantine_dir = Path(out_dir), Path(quarantine_dir)
    with atomic_dir(quarantine_dir) as qtmp, atomic_dir(out_dir) as tmp:
        result = augment_manifest(train, params, tmp / CLIPS_DIR, out_dir / CLIPS_DIR, settings)
        write_split(result.manifest, tmp, SPLIT)
        write_quarantine(result.quarantine, qtmp)
    return result
