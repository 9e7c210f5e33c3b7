"""Checks on an error message's facts, not its prose: the file, the line, the key, the value,
the command it tells the user to run.

A test that pins a whole sentence breaks on every rewording; one that checks only the error
type passes when the message says nothing. ``assert_names`` sits between: each fact must be in
the message, as a whole token (``learning_rat`` is not found inside ``learning_rate``, ``3`` not
inside ``13``, ``18.3`` or ``pytest-3/``), and the wording around the facts is free.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePath

import pytest

Fact = str | int | float | PurePath


def _pattern(fact: Fact) -> re.Pattern[str]:
    """``fact`` as a regex that matches it whole: not part of a longer word or number."""
    text = fact.as_posix() if isinstance(fact, PurePath) else str(fact)
    if not text:
        raise ValueError("an empty fact names nothing")
    pattern = re.escape(text)
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        # A number, not part of a longer one (3 in 13 or 18.3) nor of a path (pytest-3/).
        return re.compile(r"(?<![\w/])(?<!\d\.)" + pattern + r"(?![\w/])(?!\.\d)")
    if re.match(r"\w", text):
        pattern = r"(?<!\w)" + pattern
    if re.search(r"\w$", text):
        pattern += r"(?!\w)"
    return re.compile(pattern)


def assert_names(message: str | BaseException, *facts: Fact) -> None:
    """Assert that ``message`` (or an exception's text) names every one of ``facts``.

    A path is looked for as written by ``as_posix()``; a number as a whole number.
    """
    if not facts:
        raise ValueError("assert_names needs at least one fact to look for")
    text = str(message)
    missing = [fact for fact in facts if not _pattern(fact).search(text)]
    assert not missing, f"the message does not name {missing!r}:\n{text}"


def assert_a_line_names(message: str | BaseException, *facts: Fact) -> None:
    """Assert that one line of ``message`` names all of ``facts`` together.

    For a report of many faults, one a line: the line number must sit beside its own file and
    clip, not somewhere else in the report.
    """
    if not facts:
        raise ValueError("assert_a_line_names needs at least one fact to look for")
    patterns = [_pattern(fact) for fact in facts]
    lines = str(message).splitlines()
    assert any(all(p.search(line) for p in patterns) for line in lines), (
        f"no line of the message names all of {list(facts)!r}:\n{message}"
    )


@contextmanager
def raises_naming(
    error: type[BaseException] | tuple[type[BaseException], ...], *facts: Fact
) -> Iterator[pytest.ExceptionInfo[BaseException]]:
    """``pytest.raises(error)`` that also asserts the raised message names every one of
    ``facts`` (see :func:`assert_names`)."""
    with pytest.raises(error) as info:
        yield info
    assert_names(info.value, *facts)
