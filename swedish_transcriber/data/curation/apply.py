"""Decisions -> manifests: excluded clips quarantined, fixed sentences in place of the label.

All or nothing: every decision is checked first (its clip is in a manifest, a fixed sentence
passes the validate stage's sentence checks, no clip is decided twice) and only then is any
applied, so a faulty decisions file changes no manifest. Each fault names the decisions file
and line; a decision about a clip that is in no manifest is a fault too (the release may have
dropped the clip), never silently ignored.

:func:`auto_exclude` turns the top of a ranked review queue into exclude decisions for the
clips nobody has reviewed yet (a human decision always wins).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from swedish_transcriber.data.curation.decisions import Decision, fail
from swedish_transcriber.data.manifest import empty_manifest, quarantine_rows

STAGE = "curate"
ORIGINAL_COLUMN = "original_sentence"
EXCLUDED_PREFIX = "excluded by review"
AUTO_PREFIX = "auto:"
# The time of automatic decisions. They are derived (from the queue and params) on every run,
# not recorded, so a fixed time keeps the stage's output identical from run to run.
AUTO_TIME = "1970-01-01T00:00:00Z"


def _where(decision: Decision) -> str:
    return f"line {decision.line}" if decision.line else "automatic decision (not in the file)"


def check_decisions(
    manifests: Mapping[str, pd.DataFrame],
    decisions: Sequence[Decision],
    decisions_file: str | Path,
    validate_sentence: Callable[[str], str | None],
) -> None:
    """Raise one :class:`DecisionsError` listing every decision that cannot be applied."""
    present = {split: set(df["path"].astype(str)) for split, df in manifests.items()}
    problems: list[str] = []
    first: dict[str, Decision] = {}
    for decision in decisions:
        at = _where(decision)
        if decision.path in first:
            problems.append(
                f"{at}: clip {decision.path!r} is decided twice ({_where(first[decision.path])} "
                f"and {at})"
            )
            continue
        first[decision.path] = decision
        if not any(decision.path in paths for paths in present.values()):
            splits = ", ".join(manifests) or "none"
            problems.append(
                f"{at}: clip {decision.path!r} ({decision.action}) is in no manifest (splits: "
                f"{splits}); clip no longer in the release? Remove the row or fix its path"
            )
        if decision.action == "fix":
            reason = validate_sentence(decision.sentence)
            if reason:
                problems.append(
                    f"{at}: the fixed sentence {decision.sentence!r} of clip {decision.path!r} "
                    f"fails validation: {reason}"
                )
    if problems:
        raise fail(decisions_file, problems)


def _exclusion_reason(decision: Decision) -> str:
    return f"{EXCLUDED_PREFIX}: {decision.reason}" if decision.reason else EXCLUDED_PREFIX


def apply_decisions(
    manifests: Mapping[str, pd.DataFrame],
    decisions: Sequence[Decision],
    decisions_file: str | Path,
    validate_sentence: Callable[[str], str | None],
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, dict[str, Any]]:
    """Apply ``decisions`` to the per-split ``manifests``; return (manifests, quarantine, report).

    * exclude: the row leaves its manifest for the quarantine (stage ``curate``, reason
      ``excluded by review: <reason>``);
    * fix: ``sentence`` becomes the decision's sentence; the release's sentence is kept in
      ``original_sentence``. That column is in every returned manifest (empty for rows not
      fixed), so the schema does not depend on whether a fix exists yet;
    * keep: nothing changes (the decision only tells the review page the clip is reviewed).

    ``validate_sentence(text)`` returns why a sentence is not acceptable, or None (the caller
    passes the validate stage's sentence checks). ``decisions_file`` is only named in errors.
    Any fault raises :class:`DecisionsError` and nothing is applied; the inputs are never
    modified. The report counts rows kept, excluded and fixed, in all and per split.
    """
    for split, df in manifests.items():
        if ORIGINAL_COLUMN in df.columns:
            raise ValueError(
                f"manifest split {split!r} already has a {ORIGINAL_COLUMN!r} column: "
                f"decisions were applied to it before (apply them to the validated manifests)"
            )
    check_decisions(manifests, decisions, decisions_file, validate_sentence)
    by_path = {d.path: d for d in decisions}
    action_of = {d.path: d.action for d in decisions}
    out: dict[str, pd.DataFrame] = {}
    quarantined: list[pd.DataFrame] = []
    per_split: dict[str, dict[str, int]] = {}
    for split, df in manifests.items():
        df = df.reset_index(drop=True)
        actions = df["path"].astype(str).map(lambda p: action_of.get(p, ""))
        excluded = (actions == "exclude").to_numpy()
        gone = df[excluded]
        quarantined.append(
            quarantine_rows(gone, STAGE, [_exclusion_reason(by_path[p]) for p in gone["path"]])
        )
        kept = df[~excluded].reset_index(drop=True)
        fixed = (actions[~excluded] == "fix").to_numpy()
        original = pd.Series("", index=kept.index, dtype="string")
        original[fixed] = kept.loc[fixed, "sentence"].astype("string")
        new = kept.loc[fixed, "path"].astype(str).map(lambda p: by_path[p].sentence)
        kept["sentence"] = kept["sentence"].astype("string")
        kept.loc[fixed, "sentence"] = new.astype("string")
        kept[ORIGINAL_COLUMN] = original
        out[split] = kept
        per_split[split] = {
            "rows_in": len(df),
            "kept": int((actions == "keep").sum()),
            "excluded": int(excluded.sum()),
            "fixed": int(fixed.sum()),
            "rows_out": len(kept),
        }
    frames = [q for q in quarantined if len(q)]
    if frames:
        quarantine = pd.concat(frames, ignore_index=True)
    else:
        template = next(iter(manifests.values())).iloc[:0] if manifests else empty_manifest()
        quarantine = quarantine_rows(template, STAGE, [])
    report: dict[str, Any] = {
        "decisions": len(decisions),
        **{k: sum(s[k] for s in per_split.values()) for k in ("kept", "excluded", "fixed")},
        "excluded_auto": sum(
            1 for d in decisions if d.action == "exclude" and d.reason.startswith(AUTO_PREFIX)
        ),
        "splits": per_split,
    }
    return out, quarantine, report


def auto_exclude(
    queue: pd.DataFrame,
    fraction: float,
    decisions: Iterable[Decision] = (),
    time: str = AUTO_TIME,
) -> list[Decision]:
    """Exclude decisions for the top ``ceil(fraction * len(queue))`` rows of a review queue.

    ``queue`` is ranked, most suspicious first (columns ``path`` and ``suspicion``, sorted
    descending; checked, not re-sorted, so the ranker's tie order is kept). Clips among those
    top rows that ``decisions`` (the human ones) already cover are skipped: a human decision
    wins, and the band is not widened to make up for them, so ``fraction`` stays the share of
    the ranking that is trusted to be wrong. Deterministic: same queue, same decisions.
    """
    if not 0 <= fraction <= 1:
        raise ValueError(f"auto-exclude fraction must be in [0, 1], got {fraction}")
    missing = [c for c in ("path", "suspicion") if c not in queue.columns]
    if missing:
        raise ValueError(f"review queue lacks column(s) {', '.join(missing)}")
    scores = pd.to_numeric(queue["suspicion"], errors="coerce").to_numpy(dtype=float)
    paths = queue["path"].astype(str).tolist()
    if len(scores) and not all(math.isfinite(s) for s in scores):
        bad = next(i for i, s in enumerate(scores) if not math.isfinite(s))
        value = queue["suspicion"].tolist()[bad]
        raise ValueError(f"review queue row {bad}: suspicion {value!r} is not a finite number")
    for i in range(1, len(scores)):
        if scores[i] > scores[i - 1]:
            raise ValueError(
                f"review queue is not sorted by suspicion, descending: row {i} ({paths[i]}, "
                f"{scores[i]}) > row {i - 1} ({scores[i - 1]})"
            )
    if len(set(paths)) != len(paths):
        raise ValueError("review queue lists a clip more than once")
    # round() first: 0.1 * 30 is 3.0000000000000004 in floating point, and ceil would say 4.
    count = math.ceil(round(fraction * len(queue), 9))
    covered = {d.path for d in decisions}
    return [
        Decision(
            path=path,
            action="exclude",
            reason=f"{AUTO_PREFIX} top {fraction:g} of the review queue (suspicion {score:.4g})",
            time=time,
        )
        for path, score in zip(paths[:count], scores[:count], strict=True)
        if path not in covered
    ]
