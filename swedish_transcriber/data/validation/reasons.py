"""The human part of a quarantine reason: what was wrong with the row, with its values.

GX says *that* a row failed an expectation and gives the offending value(s); these turn that
into a reason a reviewer can act on (the number with its unit and the bound it broke, the
characters that are not allowed by name and code point). One explainer per expectation;
``suite.build_checks`` pairs each expectation with its explainer.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

CHARS_PER_SECOND = "chars_per_second"
SPEAKER_IN_TEST = "train_speaker_in_test"
DURATION_MISMATCH = "duration_mismatch"


def num(value: Any, *bounds: float) -> str:
    """A short number that does not round onto a threshold (30.0001 must not print as 30)."""
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    text = f"{value:.2f}"
    if float(text) in bounds and value not in bounds:
        text = repr(value)
    return text


def between(column: str, unit: str, low: float | None, high: float | None) -> Callable:
    """Explain a value outside [low, high]."""

    def explain(entry: dict[str, Any], row: Mapping[str, Any]) -> str:
        value = entry[column]
        bounds = tuple(b for b in (low, high) if b is not None)
        shown = f"{num(value, *bounds)}{unit}"
        if low is None:
            return f"{shown} > {high}"
        if high is None:
            return f"{shown} < {low}"
        return f"{shown} not in [{low}, {high}]"

    return explain


def missing(column: str) -> Callable:
    def explain(entry: dict[str, Any], row: Mapping[str, Any]) -> str:
        return f"{column} is missing (null)"

    return explain


def blank(entry: dict[str, Any], row: Mapping[str, Any]) -> str:
    return f"sentence {str(entry['sentence'])!r} is empty or only whitespace"


def characters(pattern: str) -> Callable:
    regex = re.compile(pattern)

    def explain(entry: dict[str, Any], row: Mapping[str, Any]) -> str:
        # GX said the value matches; naming the characters only makes the reason actionable.
        found = list(dict.fromkeys(regex.findall(str(entry["sentence"]))))
        shown = ", ".join(
            f"{c!r} (U+{ord(c):04X} {unicodedata.name(c, 'unnamed')})" for c in found[:5]
        )
        more = f" and {len(found) - 5} more" if len(found) > 5 else ""
        return f"characters outside validate.allowed_characters: {shown}{more}"

    return explain


def votes(entry: dict[str, Any], row: Mapping[str, Any]) -> str:
    return f"up_votes {entry['up_votes']} < down_votes {entry['down_votes']}"


def chars_per_second(low: float, high: float) -> Callable:
    inner = between(CHARS_PER_SECOND, " chars/s", low, high)

    def explain(entry: dict[str, Any], row: Mapping[str, Any]) -> str:
        chars = len(str(row["sentence"]).strip())
        return f"{inner(entry, row)} ({chars} chars in {num(row['duration'])} s)"

    return explain


def speaker(entry: dict[str, Any], row: Mapping[str, Any]) -> str:
    speaker = str(row["client_id"])
    short = speaker if len(speaker) <= 16 else speaker[:12] + "..."
    return (
        f"speaker {short} also speaks in test; this TRAIN row is quarantined so that the test "
        f"set stays intact"
    )


def duration_mismatch(tolerance: float) -> Callable:
    """Explain a measured duration far from the one clip_durations.tsv lists."""

    def explain(entry: dict[str, Any], row: Mapping[str, Any]) -> str:
        listed = Path(str(row["tsv_file"])).parent / "clip_durations.tsv"
        return (
            f"measured {num(row['duration'])} s, {listed} line {row['listed_duration_row']} "
            f"lists {num(row['listed_duration'])} s: off by "
            f"{num(entry[DURATION_MISMATCH], tolerance)} s > {tolerance} s"
        )

    return explain


def reported(entry: dict[str, Any], row: Mapping[str, Any]) -> str:
    return f"the sentence was reported: {row['reported']}"
