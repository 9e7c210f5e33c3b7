"""The pull-request report's first table: every WER with its interval and its change.

``scripts/metrics_report.sh`` posts it at the top of the PR comment, so a reviewer sees at
once which differences are more than noise. One row per test set and model (zero-shot,
fine-tuned, the export): WER_norm with its 95 % interval (from this branch's
``metrics/eval.json``), the base branch's WER_norm, and the change with the paired bootstrap
interval of the difference, computed here from both branches' ``metrics/clip_errors.csv``
on the clips they share, resampled as the evaluate stage resamples (``evaluate.bootstrap``).
A change whose interval excludes 0 is marked. Where the base has no such set or model, or
scored other clips (a changed test set), the change is given without an interval.

``python -m swedish_transcriber.evaluation.pr_report <head eval.json> <head clip_errors.csv>
[<base eval.json> <base clip_errors.csv>]`` prints the table (Markdown); a missing base file
(a first run, or a base from before the intervals) is an empty path.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from swedish_transcriber.evaluation.intervals import BootstrapParams, interval, units
from swedish_transcriber.evaluation.report import DIFFERENCES

MARK = "**≠ 0**"  # the change's interval excludes 0
NO_BASE = "–"


def _models(result: dict) -> list[str]:
    return [k for k, v in result.items() if k != DIFFERENCES and isinstance(v, dict)]


def _rate(value: float) -> str:
    return f"{value:.3f}"


def _paired_change(
    head: pd.DataFrame, base: pd.DataFrame, model: str, params: BootstrapParams
) -> tuple[float, float, float] | None:
    """(change, low, high) of ``model``'s WER on one set, or None when the clips differ."""
    column = f"{model}_errors"
    if column not in base or len(head) != len(base):
        return None
    joined = head.merge(base, on="path", suffixes=("", "_base"), validate="one_to_one")
    if len(joined) != len(head) or not np.array_equal(joined["words"], joined["words_base"]):
        return None  # other clips, or other references: not a paired comparison
    unit = units(joined["client_id"].fillna(""), params)
    errors = (joined[column].to_numpy(), joined[f"{column}_base"].to_numpy())
    return interval(unit, joined["words"].to_numpy(), params, *errors)


def first_table(
    head: dict,
    head_clips: pd.DataFrame,
    base: dict | None,
    base_clips: pd.DataFrame | None,
    params: BootstrapParams,
) -> str:
    """The Markdown table: every set of ``head`` (eval.json) by every model."""
    lines = [
        "| set | model | WER_norm [95 % CI] | base | change [95 % CI, paired] | |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for set_name, result in head.items():
        clips = head_clips[head_clips["set"] == set_name]
        old = (base or {}).get(set_name, {})
        old_clips = None if base_clips is None else base_clips[base_clips["set"] == set_name]
        for model in _models(result):
            now = result[model]
            cell = f"{_rate(now['wer_norm'])} [{_rate(now['wer_norm_low'])}, "
            cell += f"{_rate(now['wer_norm_high'])}]"
            before = old.get(model, {}).get("wer_norm") if isinstance(old, dict) else None
            if before is None:
                lines.append(f"| {set_name} | {model} | {cell} | {NO_BASE} | {NO_BASE} | |")
                continue
            paired = None if old_clips is None else _paired_change(clips, old_clips, model, params)
            if paired is None:
                why = "no per-clip errors in base" if old_clips is None else "other clips"
                change, mark = f"{now['wer_norm'] - before:+.3f} ({why}: unpaired)", ""
            else:
                diff, low, high = paired
                change = f"{diff:+.3f} [{low:+.3f}, {high:+.3f}]"
                mark = MARK if low > 0 or high < 0 else ""
            lines.append(f"| {set_name} | {model} | {cell} | {_rate(before)} | {change} | {mark} |")
    return "\n".join(lines) + "\n"


def _read(eval_file: str, clips_file: str) -> tuple[dict | None, pd.DataFrame | None]:
    if not eval_file or not Path(eval_file).is_file() or not Path(eval_file).stat().st_size:
        return None, None
    result = json.loads(Path(eval_file).read_text(encoding="utf-8"))
    if not clips_file or not Path(clips_file).is_file() or not Path(clips_file).stat().st_size:
        return result, None
    return result, pd.read_csv(clips_file, dtype={"path": str, "client_id": str})


def main(argv: Sequence[str] | None = None) -> None:
    """Print the first table; the bootstrap params come from ``params.yaml``."""
    from swedish_transcriber.evaluation.transcription import EvaluateParams
    from swedish_transcriber.params import section

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) not in (2, 4):
        raise SystemExit(__doc__)
    head, head_clips = _read(*args[:2])
    if head is None or head_clips is None:
        raise SystemExit(f"{args[0]} or {args[1]}: missing; run `dvc repro evaluate` first")
    base, base_clips = _read(*args[2:]) if len(args) == 4 else (None, None)
    params = section("evaluate", EvaluateParams).bootstrap
    print(first_table(head, head_clips, base, base_clips, params), end="")


if __name__ == "__main__":
    main()
