"""Augmenting the train split: per-copy seeding, per-row work and the process pool.

Each train clip keeps its original row and gains ``copies`` augmented copies: the clip is
decoded at Whisper's 16 kHz (``whisper.SAMPLE_RATE``), sent through the
``audiomentations.Compose`` built from params ``augment`` (transforms.py) and written as
``data/augmented/clips/<stem>.aug<k>.flac``.
The manifest row of a copy is the original row with the new ``path``/``audio_file``,
re-measured audio statistics, the transforms that were actually applied with the values they
drew (``augmentation``, JSON, read from each transform's ``parameters``) and the clip it came
from (``source_path``). dev and test are never augmented.

Determinism: the randomness of clip ``path``, copy ``k`` is seeded from ``(seed, path, k)``
alone. audiomentations draws from Python's ``random`` and NumPy's global generator; room
simulation also draws from pyroomacoustics' own NumPy generator and its C++ generator
(libroom). All of them are reseeded before each copy, so the output does not depend on how
the rows are spread over processes: ``num_proc: 1`` and ``num_proc: 2`` give the same bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import multiprocessing
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from swedish_transcriber.atomic import atomic_dir
from swedish_transcriber.audio import AudioError, load_audio, measure, read_audio, write_audio
from swedish_transcriber.data.augmentation.transforms import (
    AugmentParams,
    applied_transforms,
    build_compose,
    limit_peak,
)
from swedish_transcriber.data.ingest import MeasureSettings
from swedish_transcriber.data.manifest import (
    COLUMNS,
    conform,
    empty_manifest,
    quarantine_rows,
    write_quarantine,
    write_split,
)
from swedish_transcriber.whisper import SAMPLE_RATE

STAGE = "augment"
SPLIT = "train"
EXTRA_COLUMNS: tuple[str, ...] = ("augmentation", "source_path")
CLIPS_DIR = "clips"


# --------------------------------------------------------------------------- one copy


def seed_generators(seed: int, path: str, copy: int, compose: Any) -> None:
    """Seed every generator the transforms draw from, from ``(seed, path, copy)`` only."""
    from audiomentations import RoomSimulator

    digest = hashlib.sha256(f"{seed}\x00{path}\x00{copy}".encode()).digest()
    random.seed(int.from_bytes(digest[0:8], "big"))
    np.random.seed(int.from_bytes(digest[8:12], "big"))
    if any(isinstance(t, RoomSimulator) for t in compose.transforms):
        import pyroomacoustics as pra

        pra.random.seed(
            numpy=int.from_bytes(digest[12:20], "big"),
            libroom=int.from_bytes(digest[20:28], "big"),
        )


def augment_copy(
    compose: Any, audio: np.ndarray, params: AugmentParams, path: str, copy: int
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Copy ``copy`` of clip ``path``: the audio and the transforms applied, with their values."""
    seed_generators(params.seed, path, copy, compose)
    samples = compose(np.ascontiguousarray(audio, dtype=np.float32), SAMPLE_RATE)
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    applied = applied_transforms(compose)
    samples, limited = limit_peak(samples)
    if limited:
        applied.append(limited)
    if samples.ndim != 1 or samples.size == 0:
        raise ValueError(f"the chain returned no audio (shape {samples.shape})")
    if not np.isfinite(samples).all():
        raise ValueError("the chain returned NaN or infinite samples")
    return samples, applied


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
    params: AugmentParams,
    compose: Any,
    work_clips_dir: Path,
    final_clips_dir: Path,
    settings: MeasureSettings,
) -> RowResult:
    """The original row plus its augmented copies (audio written into ``work_clips_dir``)."""
    started = time.perf_counter()
    source = str(row["audio_file"])
    try:
        audio = load_audio(source, SAMPLE_RATE)
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
            augmented, applied = augment_copy(compose, audio, params, str(row["path"]), k)
            target = work_clips_dir / name
            write_audio(target, augmented, SAMPLE_RATE)
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
        params=params,
        compose=build_compose(params),
        work=work_clips_dir,
        final=final_clips_dir,
        settings=settings,
    )


def _run_chunk(chunk: list[dict[str, Any]]) -> list[RowResult]:
    return [
        augment_row(
            r,
            _WORKER["params"],
            _WORKER["compose"],
            _WORKER["work"],
            _WORKER["final"],
            _WORKER["settings"],
        )
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
    compose = build_compose(params)  # params errors surface here, before any worker starts
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
        results = [augment_row(r, params, compose, work, final, settings) for r in records]
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
