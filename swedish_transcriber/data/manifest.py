"""The manifest: one typed table per split that every data stage reads and writes.

Like lhotse's recordings and supervisions, the manifest is the data model of the corpus: a
row is one utterance with where its audio lives, what is said, who says it, and measurements
of the audio. Stages pass manifests along (Parquet, one file per split) instead of
re-reading Common Voice's TSVs, and every row keeps ``tsv_file`` and ``tsv_row`` so that any
later error or quarantine entry can name the exact line of the release it came from.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

SPLITS: tuple[str, ...] = ("train", "dev", "test")

# Column -> pandas dtype. Strings are plain Python ``str`` objects.
COLUMNS: dict[str, str] = {
    "split": "string",
    "path": "string",  # Common Voice's clip name, always with its extension
    "audio_file": "string",  # where the audio is, relative to the repo root (or absolute)
    "sentence": "string",
    "client_id": "string",
    "gender": "string",  # one vocabulary: male, female, other, "" (see commonvoice.GENDER_MAP)
    "age": "string",
    "accent": "string",
    "locale": "string",
    "up_votes": "int64",
    "down_votes": "int64",
    "duration": "float64",  # seconds
    "sample_rate": "int64",  # of the file as stored
    "peak": "float64",  # max |sample|, full scale = 1.0
    "rms": "float64",  # root mean square, full scale = 1.0
    "silence_ratio": "float64",  # fraction of 20 ms frames below the silence threshold
    "clipping_ratio": "float64",  # fraction of samples at or above full scale
    "tsv_file": "string",  # the release file the row came from
    "tsv_row": "int64",  # its 1-based line number in that file (the header is line 1)
}

# What the release says about a row besides its split TSV (ingest fills them; validation
# checks them). Optional: a manifest made elsewhere (tests, benchmarks) may lack them, and
# :func:`with_release_columns` then fills the "nothing known" value.
RELEASE_COLUMNS: dict[str, str] = {
    "release_split": "string",  # the release's split TSV the row came from (train, dev, test)
    "sentence_id": "string",  # the release's sentence id; "" when the release has none
    "reported": "string",  # the reported.tsv lines that report the sentence; "" = none
    "listed_duration": "float64",  # seconds, from clip_durations.tsv; NaN = not listed there
    "listed_duration_row": "int64",  # the line of clip_durations.tsv; 0 = not listed there
}

QUARANTINE_COLUMNS: tuple[str, ...] = ("stage", "reason")


def empty_manifest() -> pd.DataFrame:
    """A manifest with no rows but every column and dtype."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in COLUMNS.items()})


def conform(df: pd.DataFrame, extra_ok: bool = True) -> pd.DataFrame:
    """Order and type the manifest columns; extra columns (e.g. augmentation) are kept last."""
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"manifest is missing column(s): {', '.join(missing)}")
    out = df[list(COLUMNS)].astype(COLUMNS)
    if extra_ok:
        extra = [c for c in df.columns if c not in COLUMNS]
        for c in extra:
            out[c] = df[c].values
    return out.reset_index(drop=True)


def with_release_columns(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every :data:`RELEASE_COLUMNS` column typed, missing ones (or values) filled.

    A missing ``release_split`` is the row's ``split`` (roles and release splits were the same
    before they could differ); the others say "nothing known": no id, not reported, not listed.
    """
    out = df.copy()
    defaults: dict[str, object] = {
        "sentence_id": "",
        "reported": "",
        "listed_duration": float("nan"),
        "listed_duration_row": 0,
    }
    for column, dtype in RELEASE_COLUMNS.items():
        fill = out["split"] if column == "release_split" else defaults[column]
        if column not in out.columns:
            out[column] = fill
        elif column != "listed_duration":  # NaN is its "not listed"
            out[column] = out[column].where(out[column].notna(), fill)
        out[column] = out[column].astype(dtype)
    return out


def conform_with_release(df: pd.DataFrame) -> pd.DataFrame:
    """:data:`COLUMNS` then :data:`RELEASE_COLUMNS`, typed (missing release columns filled)."""
    full = with_release_columns(df)
    return conform(full[[*COLUMNS, *RELEASE_COLUMNS]])


def split_file(directory: str | Path, split: str) -> Path:
    """Where split ``split`` of a manifest directory is stored."""
    return Path(directory) / f"{split}.parquet"


def write_split(df: pd.DataFrame, directory: str | Path, split: str) -> Path:
    """Write one split (into a directory that ``atomic_dir`` is building)."""
    path = split_file(directory, split)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path, index=False)
    return path


def read_split(directory: str | Path, split: str) -> pd.DataFrame:
    """Read one split of a manifest directory, with a clear error when it is not there."""
    path = split_file(directory, split)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: manifest split not found; run the stage that writes {directory} first "
            f"(dvc repro)"
        )
    return pd.read_parquet(path)


def quarantine_rows(df: pd.DataFrame, stage: str, reasons: list[str]) -> pd.DataFrame:
    """Rows set aside by ``stage``, each with the reason it was set aside."""
    out = df.copy().reset_index(drop=True)
    out["stage"] = stage
    out["reason"] = list(reasons)
    return out


def write_quarantine(frames: list[pd.DataFrame], directory: str | Path) -> Path:
    """Write all quarantined rows of a stage as one Parquet table plus a readable TSV.

    The TSV is there so that the quarantine review loop works with a text editor or a
    spreadsheet: the reason column says why each row was set aside.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    frames = [f for f in frames if len(f)]
    if frames:
        table = pd.concat(frames, ignore_index=True)
    else:
        table = pd.DataFrame(
            {c: pd.Series(dtype="string") for c in ("split", "path", "stage", "reason")}
        )
    table.to_parquet(directory / "quarantine.parquet", index=False)
    readable = [
        c
        for c in ("split", "tsv_file", "tsv_row", "path", "sentence", "reason")
        if c in table.columns
    ]
    table[readable].to_csv(directory / "quarantine.tsv", sep="\t", index=False)
    return directory / "quarantine.parquet"
