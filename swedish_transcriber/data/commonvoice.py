"""Reading a Common Voice release directory (``cv-corpus-*/<locale>``) into manifests.

Real releases have quirks this module absorbs, so that the rest of the pipeline sees one
schema whatever the release:

* TSVs are tab-separated with no quoting: a sentence may contain ``"`` that must stay as it
  is, so ``csv.QUOTE_NONE`` is used (pandas' default quoting would merge lines);
* columns differ between releases: ``accent`` (old) vs ``accents`` (new), extra columns such
  as ``sentence_id``, ``sentence_domain`` or ``variant``, optional columns missing;
* gender labels changed from ``male/female/other`` to ``male_masculine/female_feminine/...``
  and are mapped onto one vocabulary;
* ``path`` values may or may not carry the ``.mp3`` extension;
* a current release ships files beside the split TSVs that older ones lack (see
  :func:`read_release_files`): ``reported.tsv`` (sentences users reported, with the reason),
  ``clip_durations.tsv`` (each clip's length as Common Voice measured it), ``invalidated.tsv``
  and ``other.tsv`` (rejected and not yet reviewed clips, never trained on: only counted).

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

REPORTED_FILE = "reported.tsv"
CLIP_DURATIONS_FILE = "clip_durations.tsv"
# Clips no role ever reads: rejected by reviewers, or not reviewed yet. Only their rows are
# counted (reports/validation.json), so a release's size is visible.
COUNTED_FILES: tuple[str, ...] = ("invalidated.tsv", "other.tsv")
OPTIONAL_FILES: tuple[str, ...] = (REPORTED_FILE, *COUNTED_FILES, CLIP_DURATIONS_FILE)


class ReleaseError(ValueError):
    """A Common Voice release directory or TSV cannot be read; the message names the file."""


@dataclass
class SplitTable:
    """One split's rows (normalised columns) and the lines that could not be parsed."""

    rows: pd.DataFrame
    malformed: pd.DataFrame


def where_not_utf8(raw: bytes, exc: UnicodeDecodeError) -> str:
    """Where and why ``raw`` is not UTF-8, for an error message: ``line N, byte C: ...``.

    A text file a person edits (a release TSV, the review decisions) is fixed at a line, so
    the message names the line and the byte in it rather than an offset into the file.
    """
    line = raw[: exc.start].count(b"\n") + 1
    col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
    return f"line {line}, byte {col}: not valid UTF-8 ({exc.reason}, byte 0x{raw[exc.start]:02x})"


def _check_utf8(path: Path) -> str:
    """Read a TSV as text, turning a decoding error into one that names the line."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReleaseError(
            f"{path}: {where_not_utf8(raw, exc)}. Common Voice TSVs are UTF-8; re-encode the "
            f"file, e.g. iconv -f latin1 -t utf-8"
        ) from exc


def _header(path: Path, lines: list[str], required: tuple[str, ...]) -> list[str]:
    """The header line's columns; an empty file or a missing required column is an error."""
    if not lines or not lines[0].strip():
        raise ReleaseError(f"{path}: empty file, expected a header line")
    header = lines[0].split("\t")
    missing = [c for c in required if c not in header]
    if missing:
        raise ReleaseError(
            f"{path}: missing required column(s) {', '.join(missing)}; header is "
            f"{', '.join(header)}"
        )
    return header


def read_tsv(path: str | Path) -> SplitTable:
    """Parse one Common Voice TSV into normalised columns plus its malformed lines.

    Every returned row carries ``tsv_file`` and ``tsv_row`` (the 1-based line number).
    """
    path = Path(path)
    text = _check_utf8(path)
    lines = text.splitlines()
    header = _header(path, lines, REQUIRED_COLUMNS)
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
    out["sentence"] = out["sentence"].fillna("").map(normalise_sentence)
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


def normalise_sentence(text: str) -> str:
    """Whitespace runs -> one space, ends stripped: how sentences are compared and stored."""
    return " ".join(str(text).split())


def _read_table(path: Path, required: tuple[str, ...]) -> tuple[list[str], list[tuple]]:
    """A strict TSV reader for the release's side files: (header, [(line, fields), ...]).

    These files feed a decision about other rows (a clip is reported, a duration disagrees),
    so a line that cannot be parsed is an error naming it rather than a silent skip.
    """
    lines = _check_utf8(path).splitlines()
    header = _header(path, lines, required)
    records = []
    reader = csv.reader(lines[1:], delimiter="\t", quoting=csv.QUOTE_NONE)
    for offset, fields in enumerate(reader):
        line_no = offset + 2
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue
        if len(fields) != len(header):
            raise ReleaseError(
                f"{path}: line {line_no}: expected {len(header)} tab-separated fields, found "
                f"{len(fields)}"
            )
        records.append((line_no, fields))
    return header, records


@dataclass(frozen=True)
class SentenceReports:
    """``reported.tsv``: which sentences users reported, and why, by line.

    A clip matches a report line by ``sentence_id`` where both have one, else by the sentence
    text (whitespace normalised): older releases have no ids on either side.
    """

    path: Path
    by_id: dict[str, list[tuple[int, str]]]  # sentence_id -> (line, reason) of lines with an id
    by_text_no_id: dict[str, list[tuple[int, str]]]  # text -> lines without an id
    by_text: dict[str, list[tuple[int, str]]]  # text -> every line
    rows: int

    def lookup(self, sentence_id: str, sentence: str) -> str:
        """The reports of one clip's sentence as ``<file>: line 3: reason, line 9: reason``."""
        text = normalise_sentence(sentence)
        if sentence_id:
            found = self.by_id.get(sentence_id, []) + self.by_text_no_id.get(text, [])
        else:
            found = self.by_text.get(text, [])
        if not found:
            return ""
        return f"{self.path}: " + ", ".join(f"line {n}: {r}" for n, r in sorted(set(found)))


def read_reported(path: str | Path) -> SentenceReports:
    """Parse ``reported.tsv`` (sentence_id, sentence, locale, reason; older: no sentence_id)."""
    path = Path(path)
    header, records = _read_table(path, ("sentence",))
    col = {name: header.index(name) for name in header}
    by_id: dict[str, list[tuple[int, str]]] = {}
    by_text_no_id: dict[str, list[tuple[int, str]]] = {}
    by_text: dict[str, list[tuple[int, str]]] = {}
    for line_no, fields in records:
        reason = fields[col["reason"]].strip() if "reason" in col else ""
        entry = (line_no, reason or "no reason given")
        text = normalise_sentence(fields[col["sentence"]])
        sentence_id = fields[col["sentence_id"]].strip() if "sentence_id" in col else ""
        if sentence_id:
            by_id.setdefault(sentence_id, []).append(entry)
        else:
            by_text_no_id.setdefault(text, []).append(entry)
        by_text.setdefault(text, []).append(entry)
    return SentenceReports(path, by_id, by_text_no_id, by_text, len(records))


def read_clip_durations(path: str | Path) -> dict[str, tuple[float, int]]:
    """Parse ``clip_durations.tsv`` (clip, duration[ms]) into clip name -> (seconds, line)."""
    path = Path(path)
    header, records = _read_table(path, ("clip", "duration[ms]"))
    clip_col, ms_col = header.index("clip"), header.index("duration[ms]")
    durations: dict[str, tuple[float, int]] = {}
    for line_no, fields in records:
        clip = clip_name(fields[clip_col])
        try:
            seconds = float(fields[ms_col]) / 1000.0
        except ValueError:
            raise ReleaseError(
                f"{path}: line {line_no}: duration[ms] is not a number ({fields[ms_col]!r})"
            ) from None
        if clip in durations and durations[clip][0] != seconds:
            first_seconds, first_line = durations[clip]
            raise ReleaseError(
                f"{path}: line {line_no}: {clip} listed again with another duration "
                f"({seconds} s; line {first_line} says {first_seconds} s)"
            )
        durations.setdefault(clip, (seconds, line_no))
    return durations


def count_rows(path: str | Path) -> int:
    """Data lines of a TSV (blank lines and the header not counted); it must be UTF-8."""
    lines = _check_utf8(Path(path)).splitlines()
    return sum(1 for line in lines[1:] if line.strip())


@dataclass(frozen=True)
class ReleaseFiles:
    """What a release ships besides its split TSVs; ``None`` for a file it does not have."""

    release_dir: Path
    reports: SentenceReports | None
    durations: dict[str, tuple[float, int]] | None
    row_counts: dict[str, int | None]  # optional file -> its data rows (None: absent)

    @property
    def absent(self) -> list[str]:
        """The optional files this release does not ship, in :data:`OPTIONAL_FILES` order."""
        return [name for name in OPTIONAL_FILES if self.row_counts[name] is None]

    def annotate(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Add ``sentence_id``, ``reported``, ``listed_duration(_row)`` to split rows.

        Validation decides on them (``sentence_not_reported``, ``duration_matches_listed``); a
        clip clip_durations.tsv does not list gets NaN and is not checked.
        """
        out = rows.copy()
        ids = (
            out["sentence_id"].fillna("").astype(str).str.strip()
            if "sentence_id" in out.columns
            else pd.Series([""] * len(out), index=out.index, dtype=object)
        )
        out["sentence_id"] = ids.astype("string")
        if self.reports is None:
            out["reported"] = ""
        else:
            out["reported"] = [
                self.reports.lookup(i, s) for i, s in zip(ids, out["sentence"], strict=True)
            ]
        listed = [(self.durations or {}).get(p, (float("nan"), 0)) for p in out["path"].astype(str)]
        out["listed_duration"] = pd.Series([d for d, _ in listed], index=out.index, dtype="float64")
        out["listed_duration_row"] = pd.Series(
            [n for _, n in listed], index=out.index, dtype="int64"
        )
        out["reported"] = out["reported"].astype("string")
        return out

    def summary(self) -> dict[str, object]:
        """Counts for ``reports/validation.json``: rows per optional file (null when absent)."""
        counts = {
            f"{name.removesuffix('.tsv')}_rows": self.row_counts[name] for name in OPTIONAL_FILES
        }
        return {**counts, "absent_files": self.absent}


def read_release_files(release_dir: str | Path) -> ReleaseFiles:
    """Read a release's optional files (those it has); each is an error naming its line."""
    release_dir = Path(release_dir)
    present = {name: (release_dir / name).is_file() for name in OPTIONAL_FILES}
    reports = read_reported(release_dir / REPORTED_FILE) if present[REPORTED_FILE] else None
    durations = (
        read_clip_durations(release_dir / CLIP_DURATIONS_FILE)
        if present[CLIP_DURATIONS_FILE]
        else None
    )
    counts: dict[str, int | None] = {}
    for name in OPTIONAL_FILES:
        if not present[name]:
            counts[name] = None
        elif reports is not None and name == REPORTED_FILE:
            counts[name] = reports.rows
        else:
            counts[name] = count_rows(release_dir / name)
    return ReleaseFiles(release_dir, reports, durations, counts)
