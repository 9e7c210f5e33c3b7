"""Turn a Common Voice release into per-role manifests with audio measurements.

The downstream stages know three roles, train, dev and test; which split TSVs of the release
fill each is params ``data.train_splits`` and ``data.eval_split`` (:func:`source.split_roles`).
Each row keeps its ``release_split``. What the release says about a clip besides its split TSV
(a reported sentence, the duration Common Voice measured) is added to the row here and judged
by validation, so that every rule lives in the one suite.

Each clip is decoded once here to measure it (duration, peak, RMS, silence and clipping
ratios); the validation suite then decides on those numbers. A clip that cannot be decoded
(missing, empty, corrupt) is quarantined with the reason, naming the TSV line it came from.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from swedish_transcriber.audio import AudioError, measure, read_audio
from swedish_transcriber.data import commonvoice
from swedish_transcriber.data.manifest import (
    conform_with_release,
    empty_manifest,
    quarantine_rows,
)
from swedish_transcriber.data.source import split_roles

STAGE = "ingest"
RELEASE_FILE = "release.json"  # beside the manifests: roles and the release's side files


@dataclass(frozen=True)
class MeasureSettings:
    """How silence and clipping are measured (params ``ingest.measure``).

    The augment stage measures its copies with the same settings, so that validation's
    thresholds mean the same for originals and copies.
    """

    silence_threshold_db: float  # a 20 ms frame quieter than this counts as silence
    clipping_threshold: float  # |sample| at or above this counts as clipped

    def __post_init__(self) -> None:
        if not 0 < self.clipping_threshold <= 1:
            raise ValueError(f"clipping_threshold must be in (0, 1], got {self.clipping_threshold}")


@dataclass(frozen=True)
class IngestParams:
    """Params section ``ingest``."""

    num_proc: int  # processes that decode and measure clips
    measure: MeasureSettings

    def __post_init__(self) -> None:
        if self.num_proc < 1:
            raise ValueError(f"num_proc must be >= 1, got {self.num_proc}")


@dataclass
class IngestResult:
    """Manifests per role, the rows set aside with reasons, and what the release holds.

    ``release``: the roles' release splits and the optional files' row counts (``release.json``
    beside the manifests; validation copies it into its report under ``release``).
    """

    splits: dict[str, pd.DataFrame]
    quarantine: list[pd.DataFrame]
    release: dict[str, Any] = field(default_factory=dict)


def _measure_one(args: tuple[str, MeasureSettings]) -> dict[str, float | int] | str:
    """Measure one clip; return the reason instead when it cannot be decoded."""
    audio_file, settings = args
    try:
        audio, sr = read_audio(audio_file)
    except AudioError as exc:
        return str(exc)
    return asdict(measure(audio, sr, settings.silence_threshold_db, settings.clipping_threshold))


def measure_clips(
    audio_files: list[str], settings: MeasureSettings, num_proc: int = 1
) -> list[dict[str, float | int] | str]:
    """Measure many clips, in ``num_proc`` processes, keeping the input order."""
    jobs = [(f, settings) for f in audio_files]
    if num_proc <= 1 or len(jobs) < 2 * num_proc:
        return [_measure_one(j) for j in jobs]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(num_proc) as pool:
        return pool.map(_measure_one, jobs, chunksize=max(1, len(jobs) // (num_proc * 8)))


def _read_role(
    release_dir: Path, role: str, release_splits: Sequence[str]
) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """The rows of a role's split TSVs, in order, each with its ``release_split``."""
    frames: list[pd.DataFrame] = []
    quarantined: list[pd.DataFrame] = []
    for split in release_splits:
        table = commonvoice.read_tsv(commonvoice.split_tsv(release_dir, split))
        if len(table.malformed):
            bad = table.malformed.copy()
            bad["split"] = role
            bad["release_split"] = split
            bad["stage"] = STAGE
            quarantined.append(bad)
        rows = table.rows.copy()
        rows["release_split"] = split
        frames.append(rows)
    rows = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    return rows, quarantined


def ingest_role(
    release_dir: str | Path,
    role: str,
    release_splits: Sequence[str],
    files: commonvoice.ReleaseFiles,
    max_clips: int,
    seed: int,
    settings: MeasureSettings,
    num_proc: int = 1,
) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """Read, annotate and measure one role; return its manifest and its quarantined rows.

    ``max_clips`` applies to the role (all its release splits together): it bounds what the
    role costs downstream, whichever splits fill it.
    """
    release_dir = Path(release_dir)
    rows, quarantined = _read_role(release_dir, role, release_splits)
    rows = commonvoice.take_subset(rows, max_clips, seed).reset_index(drop=True)
    if rows.empty:
        return conform_with_release(empty_manifest()), quarantined
    rows["split"] = role
    no_path = rows["path"] == ""
    if no_path.any():
        reasons = [
            f"{f}: line {r}: empty path"
            for f, r in zip(
                rows.loc[no_path, "tsv_file"], rows.loc[no_path, "tsv_row"], strict=True
            )
        ]
        quarantined.append(quarantine_rows(rows[no_path], STAGE, reasons))
        rows = rows[~no_path].reset_index(drop=True)
    rows = files.annotate(rows)
    rows["audio_file"] = [str(release_dir / commonvoice.CLIPS_DIR / p) for p in rows["path"]]
    results = measure_clips(rows["audio_file"].tolist(), settings, num_proc)
    failed = [isinstance(r, str) for r in results]
    if any(failed):
        mask = pd.Series(failed, index=rows.index)
        reasons = [
            f"{f}: line {line}: {r}"
            for f, line, r in zip(
                rows.loc[mask, "tsv_file"],
                rows.loc[mask, "tsv_row"],
                [r for r in results if isinstance(r, str)],
                strict=True,
            )
        ]
        quarantined.append(quarantine_rows(rows[mask], STAGE, reasons))
    good = [r for r in results if not isinstance(r, str)]
    ok = rows[[not f for f in failed]].reset_index(drop=True)
    stats = pd.DataFrame(good)
    for column in stats.columns:
        ok[column] = stats[column].to_numpy()
    if ok.empty:
        return conform_with_release(empty_manifest()), quarantined
    return conform_with_release(ok), quarantined


def ingest_split(
    release_dir: str | Path,
    split: str,
    max_clips: int,
    seed: int,
    settings: MeasureSettings,
    num_proc: int = 1,
) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """Read and measure one split of the release as the role of the same name."""
    files = commonvoice.read_release_files(release_dir)
    return ingest_role(release_dir, split, [split], files, max_clips, seed, settings, num_proc)


def ingest_release(
    release_dir: str | Path,
    max_clips: int,
    seed: int,
    settings: MeasureSettings,
    num_proc: int = 1,
    train_splits: Sequence[str] = ("train",),
    eval_split: str = "test",
) -> IngestResult:
    """Ingest the train, dev and test roles of a release directory.

    A role filled by the same release splits as an earlier one (dev when it is the eval split)
    is the same manifest under its own role name, measured once and quarantined once.
    Nothing reads ``invalidated.tsv`` or ``other.tsv`` into a role: they are only counted.
    """
    release_dir = Path(release_dir)
    if not release_dir.is_dir():
        raise commonvoice.ReleaseError(
            f"{release_dir}: data.raw_dir is not a directory. Point it at an extracted Common "
            f"Voice release (e.g. data/raw/cv-corpus-17.0-2024-03-15/sv-SE) or set "
            f"data.source: demo and data.raw_dir: data/raw/demo"
        )
    roles = split_roles(list(train_splits), eval_split)
    files = commonvoice.read_release_files(release_dir)
    done: dict[tuple[str, ...], pd.DataFrame] = {}
    splits: dict[str, pd.DataFrame] = {}
    quarantine: dict[str, list[pd.DataFrame]] = {}
    # test before dev: a dev role that is the eval split reuses the test role's manifest.
    for role in ("train", "test", "dev"):
        key = tuple(roles[role])
        if key in done:
            manifest = done[key].copy()
            manifest["split"] = pd.Series([role] * len(manifest), dtype="string")
            quarantine[role] = []
        else:
            manifest, quarantine[role] = ingest_role(
                release_dir, role, key, files, max_clips, seed, settings, num_proc
            )
            done[key] = manifest
        splits[role] = manifest
    release: dict[str, Any] = {
        "train_splits": roles["train"],
        "dev_split": roles["dev"][0],
        "eval_split": roles["test"][0],
        **files.summary(),
    }
    order = ("train", "dev", "test")
    return IngestResult(
        splits={role: splits[role] for role in order},
        quarantine=[q for role in order for q in quarantine[role]],
        release=release,
    )
