"""Named test sets: what every model is scored on (params ``evaluate.sets``).

One test set is rarely enough: a model fine-tuned on one corpus can get better on it and
worse on everything else (Whisper fine-tunes notoriously forget). So ``evaluate.sets`` names
several, each read by its own layout reader and featurized by the same audio path as the
training data (decode, resample, log-mel), so no set is scored with different features.

Layouts (``format``):

* ``features``: a split this pipeline featurized itself (``path`` = ``data/features``,
  ``split`` = ``test``): the demo's default set.
* ``commonvoice``: an extracted Common Voice release (``path`` = ``.../sv-SE``) and the TSV
  ``split`` to read (``test``, ``dev``, ...).
* ``pairs``: a folder of ``<id>.wav`` + ``<id>.txt`` (one UTF-8 line, the exact transcript).
* ``fleurs``: a FLEURS language folder (``path`` = ``.../sv_se``) and its ``split``.

``speech`` says whether the set is real human speech or synthetic: the demo page's default
model is the one that is best on a real-speech set, when one was scored.

A test set is scored whole: a clip that cannot be read is not quarantined (a model would
then be scored on fewer clips than the set has, and two runs on different subsets would look
comparable). Every fault is collected, then the stage fails once with all of them
(:class:`TestSetError`), each naming the file and, where there is one, the line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

FORMATS = ("features", "commonvoice", "pairs", "fleurs")
SPEECH = ("real", "synthetic")
NAME = re.compile(r"^[a-z][a-z0-9_]*$")  # a DVC stage key, a file name and a metrics key


@dataclass(frozen=True)
class TestSet:
    """One entry of params ``evaluate.sets`` (its name is the mapping's key)."""

    __test__ = False  # not a pytest test class, whatever its name

    format: str  # one of FORMATS
    path: str  # relative to the repo root, or absolute (outside the repo is fine)
    split: str  # the split to read (features, commonvoice, fleurs); "" for pairs
    speech: str  # "real" or "synthetic"

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.speech not in SPEECH:
            raise ValueError(f"speech must be one of {', '.join(SPEECH)}, got {self.speech!r}")
        if not self.path.strip():
            raise ValueError("path must name a directory")
        if self.format == "pairs" and self.split:
            raise ValueError(f"a pairs folder has no splits; set split: '' (got {self.split!r})")
        if self.format != "pairs" and not self.split:
            raise ValueError(f"format {self.format} needs a split (e.g. test)")


@dataclass(frozen=True)
class TestSetParams:
    """The ``sets`` key of params section ``evaluate``, for stages that read only that."""

    __test__ = False

    sets: dict[str, TestSet]

    def __post_init__(self) -> None:
        check_names(self.sets)


class TestSetError(ValueError):
    """A test set that cannot be scored whole; the message names the set and every fault."""

    __test__ = False

    def __init__(self, name: str, test_set: TestSet, problems: list[str]) -> None:
        self.problems = list(problems)
        where = f"{test_set.format} at {test_set.path}"
        if test_set.split:
            where += f", split {test_set.split}"
        head = f"test set {name!r} ({where})"
        if len(self.problems) == 1:
            message = f"{head}: {self.problems[0]}"
        else:
            message = (
                f"{head}: {len(self.problems)} faults; a test set is scored whole, so none is "
                f"skipped: fix or remove each of these\n  " + "\n  ".join(self.problems)
            )
        super().__init__(message)


def source_key(test_set: TestSet) -> tuple[str, str, str]:
    """What a set reads: two names for the same clips would score them twice."""
    return (test_set.format, os.path.normpath(test_set.path), test_set.split)


def check_names(sets: dict[str, TestSet]) -> None:
    """Set names become stage keys, folders and metrics keys: lower snake case, unique.

    Two names for the same clips (format, path and split) clash too: each would be scored
    and reported as if it were another set.
    """
    if not sets:
        raise ValueError("evaluate.sets is empty: name at least one test set")
    seen: dict[str, str] = {}
    for name in sets:
        if not NAME.match(name):
            raise ValueError(
                f"test set name {name!r}: use lower case letters, digits and _ (a DVC stage "
                f"key, a folder name and a metrics key)"
            )
        folded = name.casefold()
        if folded in seen:
            raise ValueError(f"test set name {name!r} clashes with {seen[folded]!r}")
        seen[folded] = name
    sources: dict[tuple[str, str, str], str] = {}
    for name, test_set in sets.items():
        key = source_key(test_set)
        if key in sources:
            raise ValueError(
                f"test sets {sources[key]!r} and {name!r} both read {test_set.format} "
                f"{test_set.path}"
                + (f" split {test_set.split}" if test_set.split else "")
                + ": the same clips under two names; keep one"
            )
        sources[key] = name
