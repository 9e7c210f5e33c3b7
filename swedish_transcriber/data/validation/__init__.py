"""The data validation suite: Great Expectations over the ingest manifest, rows in or out.

Why Great Expectations rather than a few pandas filters: the suite is declarative (each rule is
one expectation with its thresholds from ``params.yaml``), GX renders it and every run's
results as HTML Data Docs that a reviewer can read without running code, and each failed row
is named by GX's own per-row result (``unexpected_index_list`` with ``result_format`` COMPLETE)
instead of by a second, possibly diverging, implementation of the same rule.

The suite runs once over all splits together (one DataFrame with a ``split`` column) so that
cross-split rules (unique ``path``, no speaker in both train and test) see everything. Three
columns are derived in pandas before GX runs, because GX has no expectation for them on a
pandas batch: ``chars_per_second``, ``duration_mismatch`` (against ``clip_durations.tsv``) and
``train_speaker_in_test``. A ``row_id`` column (the
position in the combined frame) is GX's ``unexpected_index_column_names`` and maps each
unexpected value back to its row.

Policies worth knowing:

* A row that fails several expectations is quarantined once, with every failure in its
  ``reason`` (joined with ``"; "``), in the order of the suite.
* Duplicate ``path``: GX flags every occurrence of a duplicated path. Of each such group, the
  first occurrence (train, dev, test order, then TSV order) that passes every other
  expectation is kept and the others are quarantined, naming the occurrence that was kept.
  So one copy of a clip survives, and a bad first copy does not take a good second one down.
  (The Data Docs therefore count all occurrences; ``reports/validation.json`` counts the rows
  quarantined.)
* Speaker in both train and test: the TRAIN rows of such a speaker are quarantined, the test
  set is kept intact (so WER stays comparable across runs).
* What the release says about a clip besides its split TSV (ingest adds it to the row): a
  clip whose sentence ``reported.tsv`` lists is quarantined with the report lines and reasons;
  a clip whose measured duration is more than ``max_duration_mismatch`` seconds from the one
  ``clip_durations.tsv`` lists is quarantined with both numbers. A clip the file does not list
  is not checked (GX skips the null difference).
* Roles: when the dev role is the eval split (``release.json``: ``dev_split`` equals
  ``eval_split``, e.g. trained on train+dev), the suite checks those rows once, as test, and
  the validated dev role is the validated test rows (:func:`validate_manifest_dir`).
* Nulls: GX's column-map expectations skip nulls, so ``sentence``, ``duration`` and
  ``silence_ratio`` also have a not-null expectation; otherwise a missing value would pass.

Modules: ``suite`` (the expectations and the GX run), ``reasons`` (a failed row's reason in
words), ``policy`` (pass or quarantine, the report, the fail-rate gate), ``docs`` (Data Docs
made deterministic and readable offline). This file holds the params (``ValidationSettings``)
and the names the stage, tests and benchmarks import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from swedish_transcriber.data.validation.docs import add_offline_index, make_docs_deterministic
from swedish_transcriber.data.validation.policy import (
    ValidationGateError,
    ValidationResult,
    enforce_max_fail_rate,
    failure_summary,
    validate_manifest_dir,
    validate_manifests,
)
from swedish_transcriber.data.validation.suite import build_checks, combine_splits, run_suite
from swedish_transcriber.params import ParamsError

__all__ = [
    "ValidationGateError",
    "ValidationResult",
    "ValidationSettings",
    "add_offline_index",
    "build_checks",
    "combine_splits",
    "enforce_max_fail_rate",
    "failure_summary",
    "make_docs_deterministic",
    "run_suite",
    "validate_manifest_dir",
    "validate_manifests",
]


@dataclass(frozen=True)
class ValidationSettings:
    """Params section ``validate`` (exactly its keys).

    ``allowed_characters`` is the body of a regex character class: a sentence may only contain
    characters it matches.
    """

    min_duration: float  # seconds
    max_duration: float
    allowed_characters: str
    min_chars_per_second: float
    max_chars_per_second: float
    max_silence_ratio: float
    max_fail_rate: float  # the stage fails when more than this share of rows is quarantined
    max_duration_mismatch: float  # seconds between measured and clip_durations.tsv's duration

    def __post_init__(self) -> None:
        """Reject inconsistent thresholds now, with the key's name, not deep inside GX."""
        where = "params.yaml validate"
        if not 0 <= self.min_duration < self.max_duration:
            raise ParamsError(
                f"{where}: need 0 <= min_duration < max_duration, got "
                f"{self.min_duration} and {self.max_duration}"
            )
        if not 0 <= self.min_chars_per_second < self.max_chars_per_second:
            raise ParamsError(
                f"{where}: need 0 <= min_chars_per_second < max_chars_per_second, got "
                f"{self.min_chars_per_second} and {self.max_chars_per_second}"
            )
        if not 0 <= self.max_silence_ratio <= 1:
            raise ParamsError(
                f"{where}.max_silence_ratio: must be in [0, 1], got {self.max_silence_ratio}"
            )
        if not 0 <= self.max_fail_rate <= 1:
            raise ParamsError(f"{where}.max_fail_rate: must be in [0, 1], got {self.max_fail_rate}")
        if not self.max_duration_mismatch > 0:
            raise ParamsError(
                f"{where}.max_duration_mismatch: must be > 0 seconds (MP3 decoders disagree by "
                f"tens of ms), got {self.max_duration_mismatch}"
            )
        if not self.allowed_characters:
            raise ParamsError(f"{where}.allowed_characters: must not be empty")
        if _closes_class_early(self.allowed_characters):
            # "a-]" would compile as "[^a-]" followed by a literal "]": a different rule.
            raise ParamsError(
                f"{where}.allowed_characters: {self.allowed_characters!r} has an unescaped ']' "
                f"that would end the character class early; write it as '\\]'"
            )
        try:
            re.compile(self.disallowed_regex)
        except re.error as exc:
            raise ParamsError(
                f"{where}.allowed_characters: {self.allowed_characters!r} is not a valid regex "
                f"character-class body ([^...] does not compile: {exc})"
            ) from None

    def sentence_problem(self, sentence: str) -> str | None:
        """Why a sentence typed by a reviewer (a fix) would fail the suite's text rules, or None.

        The same rules as the expectations on ``sentence`` (not blank, only allowed
        characters), checked before a fix is applied, so a bad fix is an error naming its line
        in the decisions file rather than a quarantined clip.
        """
        if not sentence.strip():
            return "the sentence is blank"
        bad = sorted(set(re.findall(self.disallowed_regex, sentence)))
        if bad:
            return f"characters outside validate.allowed_characters: {', '.join(map(repr, bad))}"
        return None

    @property
    def disallowed_regex(self) -> str:
        """A regex that matches any one character outside ``allowed_characters``.

        "No disallowed character anywhere" (not-match) rather than "^[allowed]*$" (match):
        ``$`` also matches before a trailing newline, so a sentence ending in "\\n" would pass.
        """
        return f"[^{self.allowed_characters}]"


def _closes_class_early(body: str) -> bool:
    """Whether ``body`` has an unescaped ``]`` past its first character (``[]...]`` is literal)."""
    i = 0
    while i < len(body):
        if body[i] == "\\":
            i += 2
            continue
        if body[i] == "]" and i > 0:
            return True
        i += 1
    return False
