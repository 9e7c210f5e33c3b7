"""Turn a Common Voice release into per-split manifests with audio measurements.

Each clip is decoded once here to measure it (duration, peak, RMS, silence and clipping
ratios); the validation suite then decides on those numbers. A clip that cannot be decoded
(missing, empty, corrupt) is quarantined with the reason, naming the TSV line it came from.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from swedish_transcriber.audio import AudioError, measure, read_audio
from swedish_transcriber.data import commonvoice
from swedish_transcriber.data.manifest import SPLITS, conform, empty_manifest, quarantine_rows

STAGE = "ingest"


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
    """Manifests per split and the rows set aside, with reasons."""

    splits: dict[str, pd.DataFrame]
    quarantine: list[pd.DataFrame]


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


def ingest_split(
    release_dir: str | Path,
    split: str,
    max_clips: int,
    seed: int,
    settings: MeasureSettings,
    num_proc: int = 1,
) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """Read and measure one split; return its manifest and its quarantined rows."""
    release_dir = Path(release_dir)
    table = commonvoice.read_tsv(commonvoice.split_tsv(release_dir, split))
    rows = commonvoice.take_subset(table.rows, max_clips, seed).reset_index(drop=True)
    quarantined: list[pd.DataFrame] = []
    if len(table.malformed):
        bad = table.malformed.copy()
        bad["split"] = split
        bad["stage"] = STAGE
        quarantined.append(bad)
    if rows.empty:
        return empty_manifest(), quarantined
    rows["split"] = split
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
        return empty_manifest(), quarantined
    return conform(ok, extra_ok=False), quarantined


def ingest_release(
    release_dir: str | Path,
    max_clips: int,
    seed: int,
    settings: MeasureSettings,
    num_proc: int = 1,
) -> IngestResult:
    """Ingest train, dev and test of a release directory."""
    release_dir = Path(release_dir)
    if not release_dir.is_dir():
        raise commonvoice.ReleaseError(
            f"{release_dir}: data.raw_dir is not a directory. Point it at an extracted Common "
            f"Voice release (e.g. data/raw/cv-corpus-17.0-2024-03-15/sv-SE) or set "
            f"data.source: demo and data.raw_dir: data/raw/demo"
        )
    splits: dict[str, pd.DataFrame] = {}
    quarantine: list[pd.DataFrame] = []
    for split in SPLITS:
        manifest, bad = ingest_split(release_dir, split, max_clips, seed, settings, num_proc)
        splits[split] = manifest
        quarantine.extend(bad)
    return IngestResult(splits=splits, quarantine=quarantine)
