"""One reader per test-set layout: the rows of a set, ready for the featurizer.

Each reader returns the set's rows in the manifest's vocabulary (the columns the feature
tables keep: ``split``, ``path`` = the clip id, ``sentence``, ``client_id``, ``gender``,
``age``, ``accent``, ``duration`` = NaN when the layout does not say) plus ``audio_file``
(where the clip is) and ``source`` (the TSV line it came from, for messages; empty for a
pair, whose audio file is the row), and every fault it found. Faults are collected, not
raised one at a time, so one run lists them all.

Only what a reader can see without decoding is checked here (missing files, empty or
malformed transcripts, duplicate clips); audio that does not decode is found by the featurizer.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from swedish_transcriber.data import commonvoice
from swedish_transcriber.data.features import KEEP_COLUMNS
from swedish_transcriber.data.testsets import TestSet, TestSetError
from swedish_transcriber.whisper import SAMPLE_RATE

# The rows a reader returns: the feature tables' columns, the audio and where a row came from.
ROW_COLUMNS: tuple[str, ...] = (*KEEP_COLUMNS, "audio_file", "source")
# Audio a pairs folder may hold (what soundfile decodes); <id>.wav is the documented one.
AUDIO_SUFFIXES: tuple[str, ...] = (".wav", ".flac", ".mp3", ".ogg")
TRANSCRIPT_SUFFIX = ".txt"
# FLEURS: <split>.tsv has no header and these 7 tab-separated fields; its audio is 16 kHz.
FLEURS_FIELDS: tuple[str, ...] = (
    "id",
    "file_name",
    "raw_transcription",
    "transcription",
    "words",
    "num_samples",
    "gender",
)
FLEURS_AUDIO_DIR = "audio"
FLEURS_GENDER = {"MALE": "male", "FEMALE": "female", "OTHER": "other"}

Reader = Callable[[Path, str], tuple[pd.DataFrame, list[str]]]


def one_line(text: str) -> str:
    """A transcript as the manifest stores it: runs of whitespace are one space."""
    return " ".join(text.split())


def rows_frame(records: list[dict[str, object]]) -> pd.DataFrame:
    """Records -> a frame with exactly ``ROW_COLUMNS`` (strings, duration float)."""
    frame = pd.DataFrame(records, columns=list(ROW_COLUMNS))
    for column in ROW_COLUMNS:
        if column == "duration":
            frame[column] = pd.to_numeric(frame[column]).astype("float64")
        else:
            frame[column] = frame[column].astype(object).fillna("").astype(str)
    return frame


def decode_utf8(path: Path) -> tuple[str | None, str | None]:
    """The text of ``path``, or the fault that names the line where it is not UTF-8."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, f"{path}: line {line}: not valid UTF-8 ({exc.reason}); save it as UTF-8"


# --------------------------------------------------------------------------------------------
# pairs: <id>.wav + <id>.txt


def read_transcript(path: Path) -> tuple[str, str | None]:
    """The one line of a ``<id>.txt``, or the fault (empty, several lines, not UTF-8)."""
    text, fault = decode_utf8(path)
    if text is None:
        return "", fault
    lines = [(i, line) for i, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        return "", f"{path}: line 1: empty transcript"
    if len(lines) > 1:
        return "", (
            f"{path}: line {lines[1][0]}: a second line of text; a transcript is one line "
            f"(the exact words of the clip)"
        )
    return one_line(lines[0][1]), None


def read_pairs(folder: Path, split: str = "") -> tuple[pd.DataFrame, list[str]]:
    """A folder of ``<id>.wav`` + ``<id>.txt``; the clip id is the audio file's name.

    Other files (a README) and subfolders are left alone. A transcript without audio, audio
    without a transcript, and two audio files for one id are faults.
    """
    audio: dict[str, list[Path]] = {}
    transcripts: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        suffix = path.suffix.lower()
        if suffix in AUDIO_SUFFIXES:
            audio.setdefault(path.stem, []).append(path)
        elif suffix == TRANSCRIPT_SUFFIX:
            transcripts[path.stem] = path
    problems: list[str] = []
    records: list[dict[str, object]] = []
    for stem in sorted(set(audio) | set(transcripts)):
        files = audio.get(stem, [])
        transcript = transcripts.get(stem)
        if transcript is None:
            problems.append(f"{files[0]}: no transcript {stem}{TRANSCRIPT_SUFFIX} beside it")
            continue
        if not files:
            problems.append(
                f"{transcript}: no audio beside it ({stem}.wav, or "
                f"{', '.join(stem + s for s in AUDIO_SUFFIXES[1:])})"
            )
            continue
        if len(files) > 1:
            problems.append(
                f"{transcript}: more than one audio file for it "
                f"({', '.join(f.name for f in files)}); keep one"
            )
            continue
        sentence, fault = read_transcript(transcript)
        if fault:
            problems.append(fault)
            continue
        records.append(
            {
                "split": split,
                "path": files[0].name,
                "sentence": sentence,
                "duration": np.nan,
                "audio_file": str(files[0]),
                "source": "",  # the audio file is the row: messages name it
            }
        )
    if not records and not problems:
        problems.append(f"{folder}: no <id>.wav + <id>.txt pairs in it")
    return rows_frame(records), problems


# --------------------------------------------------------------------------------------------
# commonvoice: <release>/<split>.tsv + clips/


def read_commonvoice(release: Path, split: str) -> tuple[pd.DataFrame, list[str]]:
    """A Common Voice release's ``<split>.tsv`` (via the pipeline's own TSV reader) + clips/.

    Malformed lines, empty paths or sentences, clips listed twice and clips missing from
    ``clips/`` are faults, each naming the TSV line.
    """
    tsv = release / f"{split}.tsv"
    if not tsv.is_file():
        return rows_frame([]), [
            f"{tsv}: not found; a Common Voice release has <split>.tsv files and "
            f"{commonvoice.CLIPS_DIR}/ (evaluate.sets.<name>.split names the TSV)"
        ]
    try:
        table = commonvoice.read_tsv(tsv)
    except commonvoice.ReleaseError as exc:
        return rows_frame([]), [str(exc)]
    problems = [str(reason) for reason in table.malformed.get("reason", [])]
    clips = release / commonvoice.CLIPS_DIR
    if not clips.is_dir() and len(table.rows):
        return rows_frame([]), [*problems, f"{clips}: not found (the release's audio folder)"]
    records: list[dict[str, object]] = []
    first_line: dict[str, int] = {}
    for row in table.rows.itertuples(index=False):
        where = f"{tsv}: line {row.tsv_row}"
        if not row.path:
            problems.append(f"{where}: empty path")
            continue
        if not row.sentence:
            problems.append(f"{where}: empty sentence (clip {row.path})")
            continue
        if row.path in first_line:
            problems.append(f"{where}: clip {row.path} is also on line {first_line[row.path]}")
            continue
        first_line[row.path] = int(row.tsv_row)
        audio_file = clips / row.path
        if not audio_file.is_file():
            problems.append(f"{where}: clip {audio_file} not found")
            continue
        records.append(
            {
                "split": split,
                "path": row.path,
                "sentence": row.sentence,
                "client_id": row.client_id,
                "gender": row.gender,
                "age": row.age,
                "accent": row.accent,
                "duration": np.nan,
                "audio_file": str(audio_file),
                "source": where,
            }
        )
    if not records and not problems:
        problems.append(f"{tsv}: no clips in it")
    return rows_frame(records), problems


# --------------------------------------------------------------------------------------------
# fleurs: <lang>/<split>.tsv + audio/<split>/


def read_fleurs(folder: Path, split: str) -> tuple[pd.DataFrame, list[str]]:
    """A FLEURS language folder (e.g. ``.../data/sv_se``): ``<split>.tsv`` + ``audio/<split>/``.

    The TSV has no header; its fields are ``FLEURS_FIELDS`` (as the dataset's loading
    script reads them). The sentence is the raw transcription (cased, punctuated, like
    Common Voice's); the duration is ``num_samples`` at 16 kHz. FLEURS ships each split's audio
    as ``audio/<split>.tar.gz``: extract it in ``audio/`` first.
    """
    tsv = folder / f"{split}.tsv"
    if not tsv.is_file():
        return rows_frame([]), [
            f"{tsv}: not found; a FLEURS language folder has <split>.tsv and "
            f"{FLEURS_AUDIO_DIR}/<split>/"
        ]
    audio_dir = folder / FLEURS_AUDIO_DIR / split
    if not audio_dir.is_dir():
        archive = folder / FLEURS_AUDIO_DIR / f"{split}.tar.gz"
        hint = f" (extract {archive} there)" if archive.is_file() else ""
        return rows_frame([]), [f"{audio_dir}: not found, the split's audio folder{hint}"]
    text, fault = decode_utf8(tsv)
    if text is None:
        return rows_frame([]), [str(fault)]
    problems: list[str] = []
    records: list[dict[str, object]] = []
    first_line: dict[str, int] = {}
    reader = csv.reader(text.splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE)
    for line_no, fields in enumerate(reader, start=1):
        where = f"{tsv}: line {line_no}"
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue
        if len(fields) != len(FLEURS_FIELDS):
            problems.append(
                f"{where}: expected {len(FLEURS_FIELDS)} tab-separated fields "
                f"({', '.join(FLEURS_FIELDS)}), found {len(fields)}"
            )
            continue
        row = dict(zip(FLEURS_FIELDS, fields, strict=True))
        name = row["file_name"].strip()
        sentence = one_line(row["raw_transcription"])
        if not name:
            problems.append(f"{where}: empty file name")
            continue
        if not sentence:
            problems.append(f"{where}: empty raw transcription (clip {name})")
            continue
        if not row["num_samples"].strip().isdigit():
            problems.append(f"{where}: num_samples is not a whole number ({row['num_samples']!r})")
            continue
        if name in first_line:
            problems.append(f"{where}: clip {name} is also on line {first_line[name]}")
            continue
        first_line[name] = line_no
        audio_file = audio_dir / name
        if not audio_file.is_file():
            problems.append(f"{where}: clip {audio_file} not found")
            continue
        records.append(
            {
                "split": split,
                "path": name,
                "sentence": sentence,
                "gender": FLEURS_GENDER.get(row["gender"].strip().upper(), "other"),
                "duration": int(row["num_samples"]) / SAMPLE_RATE,
                "audio_file": str(audio_file),
                "source": where,
            }
        )
    if not records and not problems:
        problems.append(f"{tsv}: no clips in it")
    return rows_frame(records), problems


READERS: dict[str, Reader] = {
    "pairs": read_pairs,
    "commonvoice": read_commonvoice,
    "fleurs": read_fleurs,
}


def read_testset(name: str, test_set: TestSet) -> pd.DataFrame:
    """The rows of set ``name``; a :class:`TestSetError` listing every fault if it has any."""
    if test_set.format not in READERS:
        raise ValueError(
            f"test set {name!r}: format {test_set.format} has no rows to read (it is copied)"
        )
    folder = Path(test_set.path)
    if not folder.is_dir():
        problem = "not found" if not folder.exists() else "not a directory"
        raise TestSetError(name, test_set, [f"{folder}: {problem} (evaluate.sets.{name}.path)"])
    rows, problems = READERS[test_set.format](folder, test_set.split)
    if problems:
        raise TestSetError(name, test_set, problems)
    return rows
