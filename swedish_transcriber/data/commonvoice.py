"""Reading a Common Voice release directory (``cv-corpus-*/<locale>``) into manifests.

Real releases have quirks this module absorbs, so that the rest of the pipeline sees one
schema whatever the release:

* TSVs are tab-separated with no quoting: a sentence may contain ``"`` that must stay as it
  is, so ``csv.QUOTE_NONE`` is used (pandas' default quoting would merge lines);
* columns differ between releases: ``accent`` (old) vs ``accents`` (new), extra columns such
  as ``sentence_id``, ``sentence_domain`` or ``variant``, optional columns missing;
* gender labels changed from ``male/female/other`` to ``male_masculine/female_feminine/...``
  and are mapped onto one vocabulary;
* ``path`` values may or may not carry the ``.mp3`` extension.

Malformed lines (the wrong number of fields) are not dropped: they are returned as
quarantine rows naming the file and line. A file that is not UTF-8 or lacks a required
column is an error naming the file (and the line, for encoding errors).
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from swedish_transcriber.data.manifest import SPLITS

REQUIRED_COLUMNS: tuple[str, ...] = ("client_id", "path", "sentence")
OPTIONAL_COLUMNS: dict[str, str] = {
    "up_votes": "0",
    "down_votes": "0",
    "age": "",
    "gender": "",
    "accent": "",
    "locale": "",
    "segment": "",
}

# Old and new Common Voice gender labels -> one vocabulary.
GENDER_MAP: dict[str, str] = {
    "": "",
    "male": "male",
    "male_masculine": "male",
    "female": "female",
    "female_feminine": "female",
    "other": "other",
    "intersex": "other",
    "transgender": "other",
    "non-binary": "other",
    "non_binary": "other",
    "do_not_wish_to_say": "",
}

CLIPS_DIR = "clips"


class ReleaseError(ValueError):
    """A Common Voice release directory or TSV cannot be read; the message names the file."""


@dataclass
class SplitTable:
    """One split's rows (normalised columns) and the lines that could not be parsed."""

    rows: pd.DataFrame
    malformed: pd.DataFrame


def _check_utf8(path: Path) -> str:
    """Read a TSV as text, turning a decoding error into one that names the line."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ReleaseError(
            f"{path}: line {line}, byte {col}: not valid UTF-8 ({exc.reason}, byte "
            f"0x{raw[exc.start]:02x}). Common Voice TSVs are UTF-8; re-encode the file, e.g. "
            f"iconv -f latin1 -t utf-8"
        ) from exc


def read_tsv(path: str | Path) -> SplitTable:
    """Parse one Common Voice TSV into normalised columns plus its malformed lines.

    Every returned row carries ``tsv_file`` and ``tsv_row`` (the 1-based line number).
    """
    path = Path(path)
    text = _check_utf8(path)
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise ReleaseError(f"{path}: empty file, expected a header line")
    header = lines[0].split("\t")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ReleaseError(
            f"{path}: missing required column(s) {', '.join(missing)}; header is "
            f"{', '.join(header)}"
        )
    records: list[list[str]] = []
    line_numbers: list[int] = []
    malformed: list[dict[str, object]] = []
    reader = csv.reader(lines[1:], delimiter="\t", quoting=csv.QUOTE_NONE)
    for offset, fields in enumerate(reader):
        line_no = offset + 2
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # blank line, e.g. a trailing newline
        if len(fields) != len(header):
            malformed.append(
                {
                    "tsv_file": str(path),
                    "tsv_row": line_no,
                    "path": fields[header.index("path")]
                    if len(fields) > header.index("path")
                    else "",
                    "reason": f"{path}: line {line_no}: expected {len(header)} tab-separated "
                    f"fields, found {len(fields)}",
                }
            )
            continue
        records.append(fields)
        line_numbers.append(line_no)
    df = pd.DataFrame(records, columns=header, dtype="string")
    if "accents" in df.columns and "accent" not in df.columns:
        df = df.rename(columns={"accents": "accent"})
    for column, default in OPTIONAL_COLUMNS.items():
        if column not in df.columns:
            df[column] = default
    df["tsv_file"] = str(path)
    df["tsv_row"] = pd.Series(line_numbers, dtype="int64")
    df = normalise_columns(df, path)
    return SplitTable(rows=df, malformed=pd.DataFrame(malformed))


def normalise_columns(df: pd.DataFrame, source: Path) -> pd.DataFrame:
    """Map values onto the manifest's vocabulary (gender, votes, clip file names)."""
    out = df.copy()
    out["path"] = out["path"].fillna("").map(clip_name)
    out["sentence"] = out["sentence"].fillna("").map(lambda s: " ".join(str(s).split()))
    gender = out["gender"].fillna("").str.strip().str.lower()
    out["gender"] = gender.map(lambda g: GENDER_MAP.get(g, "other"))
    for column in ("up_votes", "down_votes"):
        raw = out[column].fillna("").str.strip().replace("", "0")
        numbers = pd.to_numeric(raw, errors="coerce")
        bad = numbers.isna()
        if bad.any():
            first = out.loc[bad, "tsv_row"].iloc[0]
            raise ReleaseError(
                f"{source}: line {first}: column {column} is not a whole number "
                f"({out.loc[bad, column].iloc[0]!r})"
            )
        out[column] = numbers.astype("int64")
    for column in ("age", "accent", "locale", "client_id", "segment"):
        out[column] = out[column].fillna("").astype("string")
    return out


def clip_name(path: str) -> str:
    """Common Voice ``path`` values with or without the extension -> the clip's file name."""
    name = str(path).strip()
    if not name:
        return name
    return name if Path(name).suffix else f"{name}.mp3"


def subset_key(seed: int, path: str) -> str:
    """A stable, order-independent sort key for the deterministic ``max_clips`` subset."""
    return hashlib.sha1(f"{seed}:{path}".encode()).hexdigest()


def take_subset(df: pd.DataFrame, max_clips: int, seed: int) -> pd.DataFrame:
    """Keep ``max_clips`` rows chosen by seed (all rows when ``max_clips`` is 0).

    Hashing (seed, path) instead of sampling keeps the choice stable when the release gains
    or loses rows, and independent of the TSV's row order.
    """
    if max_clips <= 0 or len(df) <= max_clips:
        return df
    keys = df["path"].map(lambda p: subset_key(seed, p))
    chosen = keys.sort_values(kind="stable").index[:max_clips]
    return df.loc[sorted(chosen)]


def split_tsv(release_dir: str | Path, split: str) -> Path:
    """The TSV of a split; a missing one is an error that says what a release contains."""
    path = Path(release_dir) / f"{split}.tsv"
    if not path.is_file():
        raise ReleaseError(
            f"{path}: not found. data.raw_dir must be an extracted Common Voice release "
            f"(e.g. cv-corpus-17.0-2024-03-15/sv-SE) with {', '.join(s + '.tsv' for s in SPLITS)} "
            f"and {CLIPS_DIR}/"
        )
    return path
