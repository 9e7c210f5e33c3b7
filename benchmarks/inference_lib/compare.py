"""Engines against the baseline: word agreement, speed-up and the table.

Pure arithmetic over the workers' results (no model), so that it is tested on made-up numbers.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from swedish_transcriber.evaluation.normalizer import normalize

BASELINE = "transformers"
PAGE_ENGINE = "ct2-int8"  # what the page runs: models/ct2, int8
CONTENTION_LIMIT = 0.10  # other processes' share of the CPUs during timed runs worth a warning


def words(text: str) -> list[str]:
    """The normalized word sequence that agreement and WER_norm compare."""
    return normalize(text).split()


def word_edits(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Word-level Levenshtein distance (substitutions + deletions + insertions), by jiwer."""
    import jiwer

    if not reference:  # jiwer cannot align against an empty reference
        return len(hypothesis)
    out = jiwer.process_words(" ".join(reference), " ".join(hypothesis))
    return out.substitutions + out.deletions + out.insertions


@dataclass(frozen=True)
class Agreement:
    """How often an engine writes the same normalized words as the baseline, clip by clip."""

    clips: int
    same: int
    differing: tuple[int, ...]  # clip indices whose words differ
    word_edits: int  # total word edits from the baseline's words to the engine's
    baseline_words: int

    @property
    def fraction(self) -> float:
        return self.same / self.clips if self.clips else float("nan")

    @property
    def word_difference_rate(self) -> float:
        """Word edits per baseline word: a WER of the engine against the baseline."""
        return self.word_edits / self.baseline_words if self.baseline_words else float("nan")


def agreement(baseline: Sequence[str], other: Sequence[str]) -> Agreement:
    """Compare two engines' transcripts of the same clips, in the same order."""
    if len(baseline) != len(other):
        raise ValueError(f"{len(baseline)} baseline transcripts but {len(other)} to compare")
    differing: list[int] = []
    edits = total = 0
    for i, (a, b) in enumerate(zip(baseline, other, strict=True)):
        wa, wb = words(a), words(b)
        if wa != wb:
            differing.append(i)
        edits += word_edits(wa, wb)
        total += len(wa)
    return Agreement(len(baseline), len(baseline) - len(differing), tuple(differing), edits, total)


@dataclass
class Summary:
    """The table's rows, one engine each, compared with the baseline."""

    rows: list[dict[str, Any]]


def summarize(
    results: dict[str, dict[str, Any]],
    baseline: str = BASELINE,
) -> Summary:
    """Rows of the table from the workers' results, compared with the ``baseline`` engine.

    A worker result holds ``load_seconds``, ``run_seconds`` (timed runs of the 60 s
    recording), ``recording_seconds``, ``peak_rss_mb``, ``test_transcripts`` and
    ``test_wer_norm``. Without the baseline there is nothing to compare with: speed-up and
    agreement are None.
    """
    base = results.get(baseline)
    rows: list[dict[str, Any]] = []
    for name, r in results.items():
        wall = statistics.median(r["run_seconds"])
        row: dict[str, Any] = {
            "engine": name,
            "load_seconds": r["load_seconds"],
            "wall_seconds": wall,
            "rtf": r["recording_seconds"] / wall,
            "speedup": None,
            "peak_rss_mb": r["peak_rss_mb"],
            "same_words": None,
            "test_wer_norm": r.get("test_wer_norm"),
        }
        if base is not None:
            row["speedup"] = statistics.median(base["run_seconds"]) / wall
            agree = agreement(base["test_transcripts"], r["test_transcripts"])
            row["same_words"] = agree.fraction
            row["differing_clips"] = list(agree.differing)
            row["word_difference_rate"] = agree.word_difference_rate
            row["long_form_same_words"] = words(base["long_form_text"]) == words(
                r["long_form_text"]
            )
        rows.append(row)
    return Summary(rows)


def _cell(value: Any, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def markdown_table(rows: Sequence[dict[str, Any]], clips: int) -> str:
    """The results as a markdown table, one engine a row."""
    header = (
        "| engine | load s | wall s for 60 s | RTF | speed-up vs transformers | peak RSS MB "
        f"| same words as transformers (% of {clips} test clips) | test WER_norm |"
    )
    lines = [header, "|" + "---|" * 8]
    for row in rows:
        same = None if row["same_words"] is None else 100 * row["same_words"]
        speedup = _cell(row["speedup"], ".2f")
        lines.append(
            f"| {row['engine']} | {row['load_seconds']:.2f} | {row['wall_seconds']:.2f} "
            f"| {row['rtf']:.2f} | {speedup if speedup == 'n/a' else speedup + 'x'} "
            f"| {row['peak_rss_mb']:.0f} | {_cell(same, '.1f')} "
            f"| {_cell(row['test_wer_norm'], '.4f')} |"
        )
    return "\n".join(lines)


def contention(
    results: dict[str, dict[str, Any]], cpus: int, limit: float = CONTENTION_LIMIT
) -> list[str]:
    """Warnings for engines whose timed runs shared the machine with other busy processes.

    The share is other processes' CPU seconds over the CPU seconds the machine had during
    the runs (wall seconds x ``cpus``); above ``limit`` the timings are not to be trusted.
    """
    warnings = []
    for name, r in results.items():
        other = r.get("run_other_cpu_seconds") or []
        if not other or any(o is None for o in other):
            continue
        share = sum(other) / (sum(r["run_seconds"]) * max(1, cpus))
        if share > limit:
            warnings.append(
                f"WARNING: {name}'s timed runs shared the machine: other processes used "
                f"{100 * share:.0f}% of its {cpus} CPUs; rerun on an idle machine"
            )
    return warnings
