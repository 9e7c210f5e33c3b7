"""What the review page (``app/pages/review.py``) does, apart from drawing widgets.

The rank stage writes a review queue (``reports/review_queue.parquet``): train and dev clips
ranked by how likely their label is wrong. A person listens to each clip, reads its label
beside the fine-tuned model's transcript, and keeps the clip, excludes it or fixes its text;
each decision goes to the git-tracked decisions file through
:func:`~swedish_transcriber.review.decisions.record_decision` (locked and atomic, so two tabs
may decide at once). This module reads the queue, joins the decisions already made, picks
the clip to show and turns the form into a :class:`Decision`, so all of that is tested
without Streamlit; the page script only draws.
"""

from __future__ import annotations

import math
import mimetypes
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from swedish_transcriber.review.decisions import Decision, DecisionsError, InvalidDecision
from swedish_transcriber.review.params import COMPONENTS, TEXT_COLUMNS, ReviewPageParams
from swedish_transcriber.serving.page import shown_path

# The columns the page cannot do without (the rank stage writes these and more), and the raw
# signals behind the suspicion, shown when the queue has them (each with its score_<name>).
REQUIRED_COLUMNS = TEXT_COLUMNS
SCORE_PREFIX = "score_"
RUN_FIRST = "dvc repro rank"  # what writes the queue (it needs a trained model: stage train)
RUN_ENABLED = "dvc exp run -S review.rank.enabled=true"  # what fills an empty one


class QueueError(ValueError):
    """The review queue cannot be shown; the message says why and what to do."""


class NoQueue(QueueError):
    """No review queue has been written yet."""


@dataclass(frozen=True)
class Clip:
    """One row of the review queue, as the page shows it."""

    rank: int
    path: str  # the manifest's clip id: the key of its decision
    split: str
    audio_file: Path  # resolved against the repo root
    sentence: str  # the label under review
    transcript: str  # the fine-tuned model's greedy transcript
    zero_shot_transcript: str
    suspicion: float
    components: tuple[tuple[str, float], ...]  # (name, raw value) in COMPONENTS order
    scores: tuple[tuple[str, float], ...]  # (name, score in [0, 1]) for score_<name> columns
    # The label word a model that did not train on the clip doubts most (cross-fitting), and
    # its index in ``sentence.split()``; "" and -1 in a queue without cross-fitting.
    suspect_word: str = ""
    suspect_word_index: int = -1


# How the suspect word is marked in the label (the review page's only HTML besides the diff).
SUSPECT_STYLE = "background-color: #ffe08a; border-radius: 3px; padding: 0 2px"


def _literal(word: str) -> str:
    """``word`` for markdown with raw HTML, shown as written: every character but letters and
    digits as a numeric character reference, which neither HTML nor markdown reads as markup
    (html.escape alone leaves ``[x](http://...)`` a link)."""
    return "".join(c if c.isalnum() else f"&#{ord(c)};" for c in word)


def marked_label(clip: Clip) -> str | None:
    """The label as HTML with its suspect word marked (every word escaped), or None when the
    queue names no suspect word or the index does not point at it (a label fixed since)."""
    words = clip.sentence.split()
    i = clip.suspect_word_index
    if not clip.suspect_word or not 0 <= i < len(words) or words[i] != clip.suspect_word:
        return None
    parts = [_literal(w) for w in words]
    parts[i] = (
        f'<mark class="suspect-word" style="{SUSPECT_STYLE}" '
        f'title="the word a model that did not train on this clip doubts most">{parts[i]}</mark>'
    )
    return " ".join(parts)


def resolve(path: str | Path, root: Path) -> Path:
    """``path`` relative to ``root`` unless absolute (params and queue paths are repo-relative)."""
    path = Path(path)
    return path if path.is_absolute() else root / path


def _text(value: object) -> str:
    """A text cell; a missing one (None, NaN) is empty: a model may have heard no words."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _index(value: object) -> int:
    """A word index cell; -1 when missing or not a whole number."""
    number = _number(value)
    return int(number) if math.isfinite(number) and number == int(number) else -1


def load_queue(path: str | Path, root: Path) -> list[Clip]:
    """The clips of review queue ``path``, in rank order (most suspicious first).

    :class:`NoQueue` when the file does not exist (say which stage writes it);
    :class:`QueueError` naming the file when it cannot be read or lacks a required column,
    naming the row when a rank is not a whole number or a clip appears twice. Messages name
    the file relative to ``root``: the page shows them to visitors.
    """
    path = Path(path)
    name = shown_path(path, root)
    if not path.exists():
        raise NoQueue(
            f"There is no review queue yet ({name}). Run `{RUN_FIRST}` first: it ranks the "
            f"train and dev clips with the fine-tuned model, so it needs stage `train` "
            f"(dvc runs it too when it is not up to date)."
        )
    try:
        table = pd.read_parquet(path)
    except Exception as exc:  # pyarrow's errors are many; any of them: the file is unusable
        reason = str(exc).replace(str(path), name)
        raise QueueError(f"{name}: the review queue cannot be read ({reason})") from None
    if table.empty:
        raise NoQueue(
            f"The review queue ({name}) is empty: stage rank ranks the clips only when params "
            f"review.rank.enabled is true (or auto-exclusion is on). Run `{RUN_ENABLED}`."
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise QueueError(
            f"{name}: the review queue lacks column(s) {', '.join(missing)}; "
            f"run `{RUN_FIRST}` again to rewrite it"
        )
    components = [c for c in COMPONENTS if c in table.columns]
    scored = [c[len(SCORE_PREFIX) :] for c in table.columns if c.startswith(SCORE_PREFIX)]
    clips: list[Clip] = []
    seen: dict[str, int] = {}
    for row_number, row in enumerate(table.to_dict("records"), start=1):
        rank = _number(row["rank"])
        if not math.isfinite(rank) or rank != int(rank):
            raise QueueError(f"{name}: row {row_number}: rank {row['rank']!r} is not a number")
        clip_path = _text(row["path"])
        if not clip_path:
            raise QueueError(f"{name}: row {row_number}: empty clip path")
        if clip_path in seen:
            raise QueueError(
                f"{name}: rows {seen[clip_path]} and {row_number} are both clip {clip_path!r}"
            )
        seen[clip_path] = row_number
        clips.append(
            Clip(
                rank=int(rank),
                path=clip_path,
                split=_text(row["split"]),
                audio_file=resolve(_text(row["audio_file"]), root),
                sentence=_text(row["sentence"]),
                transcript=_text(row["transcript"]),
                zero_shot_transcript=_text(row["zero_shot_transcript"]),
                suspicion=_number(row["suspicion"]),
                components=tuple((c, _number(row[c])) for c in components),
                scores=tuple((c, _number(row[SCORE_PREFIX + c])) for c in scored),
                suspect_word=_text(row.get("suspect_word")),
                suspect_word_index=_index(row.get("suspect_word_index")),
            )
        )
    return sorted(clips, key=lambda c: c.rank)


def by_clip(decisions: Sequence[Decision]) -> dict[str, Decision]:
    """The decisions keyed by clip (the file holds one row per clip)."""
    return {d.path: d for d in decisions}


@dataclass(frozen=True)
class Progress:
    """How far the review of this queue is: decisions on its clips, and clips left."""

    decided: int
    total: int

    @property
    def left(self) -> int:
        return self.total - self.decided

    def line(self) -> str:
        return f"{self.decided} of {self.total} clips decided, {self.left} left"


def progress(clips: Sequence[Clip], decided: Mapping[str, Decision]) -> Progress:
    """Decisions that concern this queue's clips (the file may hold others, e.g. older queues)."""
    return Progress(sum(c.path in decided for c in clips), len(clips))


def visible(
    clips: Sequence[Clip], decided: Mapping[str, Decision], show_decided: bool
) -> list[Clip]:
    """The clips the page steps through, in queue order: by default only undecided ones."""
    return [c for c in clips if show_decided or c.path not in decided]


def current(shown: Sequence[Clip], clips: Sequence[Clip], wanted: str | None) -> Clip | None:
    """The clip to show: ``wanted`` when it is shown, else the next shown clip after it.

    After a decision, ``wanted`` (the clip just decided) drops out of ``shown``; the review
    goes on with the next clip in queue order, not back at the top. Past the end, the last
    shown clip before it; with no ``wanted`` yet, the first. None when nothing is shown.
    """
    if not shown:
        return None
    paths = [c.path for c in shown]
    if wanted in paths:
        return shown[paths.index(wanted)]
    order = {c.path: i for i, c in enumerate(clips)}
    if wanted not in order:
        return shown[0]
    position = order[wanted]
    after = [c for c in shown if order[c.path] > position]
    return after[0] if after else shown[-1]


def neighbour(shown: Sequence[Clip], clip: Clip, step: int) -> Clip:
    """The shown clip ``step`` places from ``clip`` (previous: -1, next: +1), clamped."""
    paths = [c.path for c in shown]
    index = paths.index(clip.path) if clip.path in paths else 0
    return shown[min(max(index + step, 0), len(shown) - 1)]


def after_decision(shown_before: Sequence[Clip], clip: Clip) -> str | None:
    """The clip to show once ``clip`` is decided: the next one in the list it was shown in."""
    paths = [c.path for c in shown_before]
    if clip.path not in paths:
        return clip.path
    index = paths.index(clip.path)
    return paths[index + 1] if index + 1 < len(paths) else clip.path


def make_decision(
    clip: Clip, action: str, fixed_text: str, reason: str, limits: ReviewPageParams
) -> Decision:
    """The :class:`Decision` the page's form describes, or :class:`DecisionsError` saying
    what to change on the form.

    A fix needs a text that differs from the label (an unchanged one is a keep); keep and
    exclude ignore the text field (it is prefilled with the label). A reason or fix over
    ``limits`` (params ``review.page``), or holding a control character, is refused: the
    decisions file must stay one readable line per clip.
    """
    fixed = " ".join(fixed_text.split()) if action == "fix" else ""
    reason = " ".join(reason.split())
    for what, text, most in (
        ("reason", reason, limits.max_reason_chars),
        ("corrected sentence", fixed, limits.max_fix_chars),
    ):
        if len(text) > most:
            raise DecisionsError(
                f"The {what} is {len(text)} characters long; at most {most} are kept with a "
                f"decision. Shorten it."
            )
    if action == "fix":
        if not fixed:
            raise DecisionsError("Type the corrected sentence to fix the label (it is empty).")
        if fixed == " ".join(clip.sentence.split()):
            raise DecisionsError(
                "The corrected sentence is the label as it is: press Keep to keep it, "
                "or change the text to fix it."
            )
    try:
        return Decision(clip.path, action, fixed, reason)
    except InvalidDecision as exc:
        raise DecisionsError(exc.problem) from None


def audio_problem(clip: Clip, root: Path) -> str | None:
    """Why the clip's audio cannot be played, or None (the file named relative to ``root``)."""
    if not clip.audio_file.is_file():
        return (
            f"The audio of clip {clip.path} is missing: {shown_path(clip.audio_file, root)} "
            f"does not exist (is the data pulled? `dvc pull` or `dvc repro ingest`)"
        )
    return None


def audio_format(clip: Clip) -> str:
    """The clip's MIME type for the player, from its suffix (Common Voice: audio/mpeg)."""
    guessed, _ = mimetypes.guess_type(clip.audio_file.name)
    return guessed or "audio/wav"


def _figure(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.3g}"


def score_line(clip: Clip) -> str:
    """The clip's signals in one line: each raw value, with its [0, 1] score in brackets."""
    scores = dict(clip.scores)
    parts = []
    for name, value in clip.components:
        score = f" ({scores[name]:.2f})" if name in scores and not math.isnan(scores[name]) else ""
        parts.append(f"{name} {_figure(value)}{score}")
    parts += [f"{n} score {s:.2f}" for n, s in clip.scores if n not in dict(clip.components)]
    return " · ".join(parts)


def describe(decision: Decision) -> str:
    """A decision already made, in a line for the page (plain text: the page escapes it)."""
    what = {"keep": "kept", "exclude": "excluded", "fix": f"fixed to “{decision.sentence}”"}
    why = f" ({decision.reason})" if decision.reason else ""
    return f"Decided: {what[decision.action]}{why}, {decision.time}"
