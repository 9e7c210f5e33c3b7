"""Params section ``validate``: the suite's thresholds, checked when they are read.

The suite (:mod:`.suite`), the policy (:mod:`.policy`) and the curation of reviewer fixes
(``sentence_problem``) all read these.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from swedish_transcriber.params import ParamsError


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
