"""Known label errors planted in the demo corpus's train split (``corpus.label_noise``).

Whether the review queue finds real label errors can only be measured where the errors are
known. The demo corpus speaks every sentence correctly, so the errors are planted in the
written labels, after the audio is made from the true sentence, in the four ways
crowd-sourced labels go wrong:

- ``swap``: two clips' labels exchanged (a clip filed under another sentence);
- ``drop_words``: one or two words missing from the label (the speaker skipped words, or the
  text was edited after recording);
- ``truncate``: only the first half of the label (a recording cut short, labelled in full
  the other way round);
- ``substitute_word``: one word replaced by a word of another sentence that the label does
  not hold (a misheard or mistyped word): the hardest kind, one word among eight moves a
  clip's mean loss and WER little.

Only train clips are touched: dev and test labels stay true, so WER still measures the
models. The planted clips are listed in a file beside the corpus, never in it
(:func:`write_planted`), which the ranking does not read: the benchmark compares the review
queue against it. Everything is drawn from ``random.Random(seed)``; with ``fraction: 0`` the
corpus is byte-identical to one made without this module.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

from swedish_transcriber.atomic import atomic_file

KINDS = ("swap", "drop_words", "truncate", "substitute_word")
PLANTED_COLUMNS = ("path", "kind", "spoken", "label")


@dataclass(frozen=True)
class LabelNoiseParams:
    """``corpus.label_noise``: the share of train clips whose label is made wrong, and how."""

    fraction: float  # of the train clips; 0 = off
    kinds: list[str]  # which errors, assigned in turn (see KINDS)
    seed: int

    def __post_init__(self) -> None:
        if not 0 <= self.fraction <= 0.5:
            raise ValueError(f"label_noise.fraction must be in [0, 0.5], got {self.fraction}")
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown or not self.kinds or len(set(self.kinds)) != len(self.kinds):
            raise ValueError(
                f"label_noise.kinds must name each of {', '.join(KINDS)} at most once, "
                f"got {self.kinds}"
            )


@dataclass(frozen=True)
class PlantedError:
    """One train clip whose label no longer says what is spoken."""

    path: str
    kind: str
    spoken: str  # the sentence in the audio
    label: str  # the sentence the corpus writes for it


def _drop_words(words: list[str], rng: random.Random) -> list[str]:
    drop = 1 if len(words) < 6 else 2
    start = rng.randrange(1, len(words) - drop + 1)  # keep the first word: a plausible label
    return words[:start] + words[start + drop :]


def _truncate(words: list[str]) -> list[str]:
    return words[: max(1, len(words) // 2)]


PUNCTUATION = ".,!?;:\"'()-–—…"  # stripped from a word's ends before comparing


def _bare(word: str) -> str:
    """A word without the punctuation around it, lower-cased: how two words are compared."""
    return word.strip(PUNCTUATION).casefold()


def _substitute_word(
    words: list[str], clips: list[tuple[str, str]], own: int, rng: random.Random
) -> list[str] | None:
    """``words`` with one word (not the first) replaced by a word of another clip's sentence
    that ``words`` does not hold; its punctuation kept. None when no sentence offers one."""
    held = {_bare(w) for w in words}
    start = rng.randrange(len(clips))
    for step in range(len(clips)):  # the first other sentence, from a random start, with a word
        other = (start + step) % len(clips)
        if other == own:
            continue
        # Not its first word: a sentence's capital would give the replacement away.
        donors = [w.strip(PUNCTUATION) for w in clips[other][1].split()[1:]]
        donors = [w for w in donors if w and _bare(w) not in held]
        if donors:
            break
    else:
        return None
    position = rng.randrange(1, len(words))
    old, new = words[position], rng.choice(donors)
    core = old.strip(PUNCTUATION)
    if core:  # keep what surrounds the word ("sju." -> "båt.")
        at = old.index(core)
        new = f"{old[:at]}{new}{old[at + len(core) :]}"
    return [*words[:position], new, *words[position + 1 :]]


def plant(
    clips: list[tuple[str, str]], params: LabelNoiseParams
) -> tuple[dict[str, str], list[PlantedError]]:
    """Wrong labels for ``round(fraction * len(clips))`` of ``clips`` (``(path, sentence)``).

    Returns path -> wrong label, and the planted errors in path order. Clips whose sentence
    has fewer than three words are not used for ``drop_words``/``truncate`` (the result would
    be empty or not wrong enough to see); a swap needs two clips with different sentences;
    ``substitute_word`` takes its word from another clip's sentence (:func:`_substitute_word`).
    """
    target = round(params.fraction * len(clips))
    if target == 0:
        return {}, []
    rng = random.Random(params.seed)
    order = list(range(len(clips)))
    rng.shuffle(order)
    labels: dict[str, str] = {}
    planted: list[PlantedError] = []
    kinds = list(params.kinds)
    turn = 0
    pending_swap: int | None = None
    for index in order:
        if len(planted) >= target:
            break
        path, sentence = clips[index]
        words = sentence.split()
        kind = kinds[turn % len(kinds)]
        if kind == "swap" and target - len(planted) < 2 and len(kinds) > 1:
            turn += 1  # one error left: a swap would plant two
            kind = kinds[turn % len(kinds)]
        if kind == "swap":
            if pending_swap is None:
                pending_swap = index
                continue
            other_path, other_sentence = clips[pending_swap]
            if other_sentence == sentence:
                continue  # the same text: swapping changes nothing; wait for another clip
            for p, spoken, label in (
                (other_path, other_sentence, sentence),
                (path, sentence, other_sentence),
            ):
                labels[p] = label
                planted.append(PlantedError(p, "swap", spoken, label))
            pending_swap = None
        elif len(words) < 3:
            continue
        else:
            if kind == "substitute_word":
                wrong = _substitute_word(words, clips, index, rng)
                if wrong is None:
                    continue
            else:
                wrong = _drop_words(words, rng) if kind == "drop_words" else _truncate(words)
            labels[path] = " ".join(wrong)
            planted.append(PlantedError(path, kind, sentence, labels[path]))
        turn += 1
    return labels, sorted(planted, key=lambda e: e.path)


def write_planted(path: str | Path, planted: list[PlantedError]) -> None:
    """The planted errors as a TSV (atomic): what the benchmark scores the queue against."""
    with atomic_file(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", quoting=csv.QUOTE_NONE, lineterminator="\n")
        writer.writerow(PLANTED_COLUMNS)
        for error in planted:
            writer.writerow([error.path, error.kind, error.spoken, error.label])


def read_planted(path: str | Path) -> list[PlantedError]:
    """The planted errors written by :func:`write_planted`."""
    with Path(path).open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None or tuple(header) != PLANTED_COLUMNS:
            expected = " ".join(PLANTED_COLUMNS)
            raise ValueError(f"{path}: line 1: expected the tab-separated header {expected}")
        return [PlantedError(*row) for row in reader]
