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
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FORMATS = ("features", "commonvoice", "pairs", "fleurs")
SPEECH = ("real", "synthetic")
NAME = re.compile(r"^[a-z][a-z0-9_]*$")  # a DVC stage key, a file name and a metrics key


@dataclass(frozen=True)
class TestSet:
    """One entry of params ``evaluate.sets`` (its name is the mapping's key)."""

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


def check_names(sets: dict[str, TestSet]) -> None:
    """Set names become stage keys, folders and metrics keys: lower snake case, unique."""
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
