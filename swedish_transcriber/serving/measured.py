"""What the page says about its models: their measured WER, and which one it offers first.

A visitor choosing a model should see how well each one did, not a claim in its label. The
``evaluate`` stage writes ``metrics/eval.json`` (``{"<set>": {"clips": N, "<model key>":
{"wer_norm": ..., ...}}}``) for the test sets of params ``evaluate.sets``, scoring the model
directories of ``evaluate.models``. A model on the page (params ``app.models``) is matched
to a scored one by its directory (both resolved), so the same weights show the same figure
whatever their labels. A model that was not scored is "not measured"; a missing metrics
file means nothing was measured; an unreadable one is a warning, never a crash.

The page's default model is the best (lowest normalised WER) on a real-speech test set when
one was scored: synthetic speech (the demo corpus) flatters a model fine-tuned on it. With
no real-speech score the default is the fine-tuned export (``models/ct2``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swedish_transcriber.data.testsets import TestSet
from swedish_transcriber.params import load_params, section

EVAL_FILE = "metrics/eval.json"  # relative to the params file's directory
FINETUNED_EXPORT = "models/ct2"  # the export stage's output: the default without real speech
NOT_MEASURED = "not measured"


@dataclass(frozen=True)
class ScoredParams:
    """The part of params ``evaluate`` the page reads: what was scored, and which directories."""

    sets: dict[str, TestSet]  # set name -> format, path, split, speech
    models: dict[str, str]  # metrics key -> model directory


@dataclass(frozen=True)
class Score:
    """One model's normalised WER on one test set."""

    set_name: str
    speech: str | None  # "real" or "synthetic"; None for a set params no longer list
    clips: int | None
    wer_norm: float
    # The bootstrap interval (evaluate.bootstrap, 95 % by default): on a hundred clips a few
    # words move WER by a point, so a visitor sees how far apart two models really are.
    interval: tuple[float, float] | None = None

    def describe(self) -> str:
        kind = f"{self.speech} speech" if self.speech else "speech of unknown kind"
        clips = f", {self.clips} clips" if self.clips is not None else ""
        spread = f" ({self.interval[0]:.1%}–{self.interval[1]:.1%})" if self.interval else ""
        return f"WER {self.wer_norm:.1%}{spread} on {self.set_name} ({kind}{clips})"


@dataclass(frozen=True)
class Measurements:
    """Scores by resolved model directory, and why some could not be read (for the page)."""

    by_dir: dict[Path, tuple[Score, ...]]
    set_order: tuple[str, ...]  # the scored sets, in the metrics file's order
    warnings: tuple[str, ...]

    def of(self, path: Path | None) -> tuple[Score, ...]:
        return self.by_dir.get(path, ()) if path is not None else ()

    def caption(self, path: Path | None) -> str:
        """``WER 12.3% on demo_test (synthetic speech, 94 clips); ...`` or "not measured"."""
        return "; ".join(s.describe() for s in self.of(path)) or NOT_MEASURED


def read_eval(path: Path) -> tuple[dict[str, Any], str]:
    """The metrics file as a mapping, and a warning when it cannot be read ({} when absent)."""
    if not path.is_file():
        return {}, ""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return {}, f"{EVAL_FILE} cannot be read ({type(exc).__name__}); WER is not shown"
    if not isinstance(data, dict):
        return {}, f"{EVAL_FILE} is not a JSON object; WER is not shown"
    return data, ""


def _wer(value: Any) -> float | None:
    """A model entry's ``wer_norm`` when it is a finite number >= 0, else None."""
    wer = value.get("wer_norm") if isinstance(value, dict) else None
    if isinstance(wer, bool) or not isinstance(wer, int | float) or not math.isfinite(wer):
        return None
    return float(wer) if wer >= 0 else None


def _interval(value: Any) -> tuple[float, float] | None:
    """A model entry's ``(wer_norm_low, wer_norm_high)`` when both are numbers, else None."""
    bounds = [
        value.get(k) if isinstance(value, dict) else None for k in ("wer_norm_low", "wer_norm_high")
    ]
    if all(
        isinstance(b, int | float) and not isinstance(b, bool) and math.isfinite(b) for b in bounds
    ):
        return float(bounds[0]), float(bounds[1])
    return None


def scores_by_dir(
    metrics: dict[str, Any], scored: ScoredParams, root: Path
) -> tuple[dict[Path, tuple[Score, ...]], list[str]]:
    """Each scored directory's scores (sets in the file's order), and what was skipped."""
    dirs: dict[str, Path] = {}
    for key, directory in scored.models.items():
        try:
            dirs[key] = (root / directory).resolve()
        except (OSError, RuntimeError, ValueError):
            continue  # an unresolvable directory matches no page model
    found: dict[Path, list[Score]] = {}
    skipped: list[str] = []
    for set_name, entry in metrics.items():
        if not isinstance(entry, dict):
            continue  # a summary figure beside the sets
        clips = entry.get("clips")
        clips = clips if isinstance(clips, int) and not isinstance(clips, bool) else None
        test_set = scored.sets.get(set_name)
        for key, value in entry.items():
            if key == "clips" or key not in dirs:
                continue
            wer = _wer(value)
            if wer is None:
                skipped.append(f"{set_name}/{key}")
                continue
            speech = test_set.speech if test_set else None
            score = Score(set_name, speech, clips, wer, _interval(value))
            found.setdefault(dirs[key], []).append(score)
    return {d: tuple(s) for d, s in found.items()}, skipped


def load_measurements(params_file: Path, root: Path) -> Measurements:
    """What ``root/metrics/eval.json`` says about the directories of params ``evaluate``."""
    try:
        has_evaluate = "evaluate" in load_params(params_file)
        scored = (
            section("evaluate", ScoredParams, params_file, subset=True) if has_evaluate else None
        )
    except (ValueError, TypeError) as exc:
        return Measurements({}, (), (f"params evaluate cannot be read ({exc}); WER is not shown",))
    if scored is None:
        return Measurements({}, (), ())
    metrics, warning = read_eval(root / EVAL_FILE)
    by_dir, skipped = scores_by_dir(metrics, scored, root)
    warnings = [warning] if warning else []
    if skipped:
        warnings.append(f"{EVAL_FILE}: no wer_norm for {', '.join(skipped)}")
    order = tuple(name for name, entry in metrics.items() if isinstance(entry, dict))
    return Measurements(by_dir, order, tuple(warnings))


def default_index(paths: Sequence[Path | None], measurements: Measurements, root: Path) -> int:
    """Which of the offered models (their resolved directories) the page selects first.

    The lowest WER on the first real-speech set (in the file's order) that scored any of
    them; else the fine-tuned export when offered; else the first.
    """
    real = {
        s.set_name for scores in measurements.by_dir.values() for s in scores if s.speech == "real"
    }
    for set_name in (name for name in measurements.set_order if name in real):
        ranked = [
            (s.wer_norm, i)
            for i, path in enumerate(paths)
            for s in measurements.of(path)
            if s.set_name == set_name
        ]
        if ranked:
            return min(ranked)[1]
    export = (root / FINETUNED_EXPORT).resolve()
    return next((i for i, path in enumerate(paths) if path == export), 0)
