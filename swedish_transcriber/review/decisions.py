"""A reviewer's decisions on clips, kept in one small TSV that git tracks.

The review page ranks clips by how likely their label is wrong; a person then decides, per
clip, to keep it, exclude it or fix its sentence. Those decisions are data the pipeline
depends on, so they live in a plain text file (``data/review/decisions.tsv``) that git
versions, a reviewer can read and a diff can show: one row per clip, sorted by clip, columns
``path action sentence reason time``, tab-separated and unquoted (a sentence may contain
``"``, as in Common Voice's own TSVs).

The file is written by the page's server, where two browser tabs are two threads (or, behind
several workers, two processes) that may decide at the same moment. :func:`record_decision`
therefore holds an exclusive ``flock`` on a sidecar lock file around its read-modify-write,
and replaces the file atomically, so no decision is lost and a reader never sees half a file.
The reader is strict: every fault is a :class:`DecisionsError` naming the file and line,
because a decision silently dropped is a wrong label silently trained on.

Reader and writer accept exactly the same rows, because both go through :class:`Decision`:
no field longer than :data:`MAX_TEXT_CHARS` (a 140,000-character reason once made the file
unreadable for good: Python's csv field limit is 131,072), no control character (NUL and ANSI
escapes would sit verbatim in a git-tracked file), and free text in the one-line form the
writer gives it. Rows are split on tabs by hand, with no csv field limit to trip over.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from swedish_transcriber.atomic import atomic_file
from swedish_transcriber.data.commonvoice import where_not_utf8

ACTIONS: tuple[str, ...] = ("keep", "exclude", "fix")
HEADER: tuple[str, ...] = ("path", "action", "sentence", "reason", "time")
LOCK_SUFFIX = ".lock"
MAX_SHOWN = 20  # faults listed in one error; the rest are counted
# The longest sentence or reason the file holds. The page's own caps (params review.page) are
# lower; this one bounds what a hand-edited file may hold, for the reader and writer alike.
MAX_TEXT_CHARS = 2_000
MAX_PATH_CHARS = 1_024  # a clip path (Common Voice's are ~40 characters)
MAX_TIME_CHARS = 40  # an ISO-8601 time is 20
# Format characters that reorder or hide text (bidi overrides and isolates): a reason could
# otherwise read differently in a diff than in the file (CVE-2021-42574, "Trojan Source").
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class DecisionsError(ValueError):
    """A decisions file (or a decision) that cannot be used; the message names file and line."""


class InvalidDecision(DecisionsError):
    """A decision whose fields are wrong; ``problem`` says how, without naming the clip."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"decision for {path!r}: {problem}")
        self.problem = problem


def utc_now() -> str:
    """The current time as ISO-8601 UTC to the second (``2026-11-28T15:30:00Z``)."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def control_problem(name: str, text: str) -> str | None:
    """Why ``text`` (field ``name``) holds a character the file refuses, or None.

    Refused: every control character (C0, DEL, C1: NUL, ESC of ANSI sequences, CR...), lone
    surrogates (not UTF-8) and bidi controls. Each is named by code point and position.
    """
    for position, char in enumerate(text, start=1):
        category = unicodedata.category(char)
        if category in ("Cc", "Cs") or char in _BIDI:
            what = "a control character" if category == "Cc" else "a character"
            return (
                f"the {name} holds {what} the decisions file refuses (U+{ord(char):04X} at "
                f"character {position}); remove it"
            )
    return None


def _one_line(text: str) -> str:
    """Whitespace runs (tabs and newlines too) -> one space, ends stripped.

    The same rule as ``commonvoice.normalise_sentence``, so a fixed sentence is stored the way
    the manifest stores every sentence, and a reason typed into a text area fits on one row.
    """
    return " ".join(str(text).split())


@dataclass(frozen=True)
class Decision:
    """One reviewer decision on one clip (immutable: derive copies, lhotse style).

    ``path`` is the clip as in the manifest's ``path`` column. ``sentence`` is the corrected
    text of a ``fix`` and empty otherwise; ``sentence`` and ``reason`` are normalised to one
    line (whitespace runs -> one space). ``time`` is ISO-8601 UTC. ``line`` is the line of the
    decisions file the decision was read from (0: not read from a file, e.g. an automatic
    one); it is not part of the decision (not compared, not written).
    """

    path: str
    action: str
    sentence: str = ""
    reason: str = ""
    time: str = field(default_factory=utc_now)
    line: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        """Normalise the free text, then reject what would break the file or the pipeline."""
        object.__setattr__(self, "sentence", _one_line(self.sentence))
        object.__setattr__(self, "reason", _one_line(self.reason))
        problem = self.problem()
        if problem:
            raise InvalidDecision(self.path, problem)

    def problem(self) -> str | None:
        """What is wrong with this decision, or None."""
        if not isinstance(self.path, str) or not self.path.strip():
            return "empty clip path"
        limits = (
            ("clip path", self.path, MAX_PATH_CHARS),
            ("sentence", self.sentence, MAX_TEXT_CHARS),
            ("reason", self.reason, MAX_TEXT_CHARS),
            ("time", str(self.time), MAX_TIME_CHARS),
        )
        for name, text, most in limits:
            if len(text) > most:
                return f"the {name} is {len(text)} characters long; at most {most} are allowed"
            if problem := control_problem(name, text):
                return problem
        if self.path != self.path.strip() or any(c in self.path for c in "\t\r\n"):
            return f"clip path {self.path!r} has surrounding whitespace, a tab or a newline"
        if self.action not in ACTIONS:
            return f"unknown action {self.action!r}; expected one of {', '.join(ACTIONS)}"
        if self.action == "fix" and not self.sentence:
            return "a fix needs the corrected sentence (it is empty)"
        if self.action != "fix" and self.sentence:
            article = "an" if self.action == "exclude" else "a"
            return f"{article} {self.action} decision carries no sentence, got {self.sentence!r}"
        return _time_problem(self.time)

    def row(self) -> tuple[str, ...]:
        """The decision as one row of the file, in :data:`HEADER` order."""
        return (self.path, self.action, self.sentence, self.reason, self.time)


def _time_problem(time: str) -> str | None:
    try:
        parsed = datetime.fromisoformat(str(time))
    except ValueError:
        return f"time {time!r} is not ISO-8601 (e.g. 2026-11-28T15:30:00Z)"
    if parsed.utcoffset() is None or parsed.utcoffset().total_seconds() != 0:
        return f"time {time!r} is not UTC (end it in Z or +00:00)"
    return None


def fail(source: str | Path, problems: list[str]) -> DecisionsError:
    """One error listing every problem (a reviewer fixes them all in one go), each on a line."""
    shown = problems[:MAX_SHOWN]
    more = len(problems) - len(shown)
    tail = [f"... and {more} more"] if more else []
    return DecisionsError("\n".join(f"{source}: {p}" for p in [*shown, *tail]))


def _decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecisionsError(
            f"{path}: {where_not_utf8(raw, exc)}; the decisions file is UTF-8 (re-encode it, "
            f"e.g. iconv -f latin1 -t utf-8)"
        ) from exc


def _lines(text: str) -> list[str]:
    """The file's lines. Only ``\\n`` ends a line (``str.splitlines`` would also split on
    U+2028 and other characters a sentence may hold); a ``\\r`` before it is dropped, so a
    checkout with CRLF line endings still reads."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last row
    return [line.removesuffix("\r") for line in lines]


def read_decisions(path: str | Path) -> list[Decision]:
    """Every decision of ``path``, in file order; a missing file means none yet.

    Strict: a wrong header, a row with the wrong number of fields (a blank line included), an
    unknown action, an empty path, a fix without a sentence, a keep or exclude with one, a bad
    time or a clip decided twice is a :class:`DecisionsError` naming the file and every faulty
    line (both lines for a duplicate).
    """
    path = Path(path)
    if not path.exists():
        return []
    lines = _lines(_decode(path, path.read_bytes()))
    expected = "\t".join(HEADER)
    if not lines or lines[0] != expected:
        found = repr(lines[0]) if lines else "an empty file"
        raise fail(path, [f"line 1: expected the header {expected!r}, found {found}"])
    problems: list[str] = []
    decisions: list[Decision] = []
    first_line: dict[str, int] = {}
    for number, text in enumerate(lines[1:], start=2):
        fields = text.split("\t") if text else []
        if len(fields) != len(HEADER):
            problems.append(
                f"line {number}: expected {len(HEADER)} tab-separated fields "
                f"({', '.join(HEADER)}), found {len(fields)}"
            )
            continue
        values = dict(zip(HEADER, fields, strict=True))
        try:
            decision = Decision(**values, line=number)
        except InvalidDecision as exc:
            problems.append(f"line {number}: {exc.problem}")
            continue
        if problem := _unwritten(values, decision):
            problems.append(f"line {number}: {problem}")
            continue
        if decision.path in first_line:
            problems.append(
                f"line {number}: clip {decision.path!r} is decided twice (lines "
                f"{first_line[decision.path]} and {number}); keep one row per clip"
            )
            continue
        first_line[decision.path] = number
        decisions.append(decision)
    if problems:
        raise fail(path, problems)
    return decisions


def _unwritten(values: dict[str, str], decision: Decision) -> str | None:
    """Why the row's raw text is not what the writer would write for ``decision``, or None.

    :class:`Decision` folds whitespace runs into one space; a row the writer never writes
    (a carriage return inside a field, doubled or surrounding spaces) is a hand edit that
    must be made again the way the page writes it, not read as something else.
    """
    for name in ("sentence", "reason"):
        raw, stored = values[name], getattr(decision, name)
        if raw != stored:
            if problem := control_problem(name, raw):
                return problem
            return (
                f"the {name} {raw!r} has surrounding or repeated whitespace; the decisions "
                f"file holds it as {stored!r}"
            )
    return None


def lock_file(path: str | Path) -> Path:
    """The sidecar file whose ``flock`` serialises writers of ``path`` (git-ignored)."""
    path = Path(path)
    return path.with_name(path.name + LOCK_SUFFIX)


@contextlib.contextmanager
def locked(path: str | Path) -> Iterator[None]:
    """Hold the exclusive lock of decisions file ``path`` for the block.

    ``flock`` belongs to an open file description, so each call opens the lock file anew:
    two threads of one process then exclude each other exactly as two processes do. The lock
    file is never removed (removing it would let a waiter lock an unlinked inode).
    """
    target = lock_file(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def write_decisions(path: str | Path, decisions: list[Decision]) -> None:
    """Write ``decisions`` (one per clip) atomically, sorted by clip so git diffs are stable.

    Call it under :func:`locked` when others may write the same file.
    """
    by_path: dict[str, Decision] = {}
    for decision in decisions:
        if decision.path in by_path:
            raise DecisionsError(f"{path}: clip {decision.path!r} is decided twice")
        by_path[decision.path] = decision
    for decision in by_path.values():  # frozen but not sealed: check what is written
        if problem := decision.problem():
            raise InvalidDecision(decision.path, problem)
    with atomic_file(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("\t".join(HEADER) + "\n")
        for key in sorted(by_path):
            fh.write("\t".join(by_path[key].row()) + "\n")


def record_decision(path: str | Path, decision: Decision) -> Decision | None:
    """Record ``decision`` in decisions file ``path``; return the one it replaced, if any.

    One row per clip: a new decision on a clip replaces its earlier row. Safe for concurrent
    writers (threads or processes): the read-modify-write runs under :func:`locked`, and the
    file is replaced atomically. A decisions file that does not parse is left as it is (the
    :class:`DecisionsError` says where it is wrong).
    """
    decision = dataclasses.replace(decision, line=0)
    with locked(path):
        decisions = read_decisions(path)
        previous = next((d for d in decisions if d.path == decision.path), None)
        kept = [d for d in decisions if d.path != decision.path]
        write_decisions(path, [*kept, decision])
    return None if previous is None else dataclasses.replace(previous, line=0)
