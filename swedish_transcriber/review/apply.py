"""Decisions -> manifests: excluded clips quarantined, fixed sentences in place of the label.

All or nothing: every decision is checked first (its clip is in a manifest, a fixed sentence
passes the validate stage's sentence checks, no clip is decided twice) and only then is any
applied, so a faulty decisions file changes no manifest. Each fault names the decisions file
and line; a decision about a clip that is in no manifest is a fault too (the release may have
dropped the clip), never silently ignored.

:func:`apply_decisions_file` is what the validate stage runs: the decisions file read and
applied, the excluded rows made quarantine rows (the stage hands it to
:func:`swedish_transcriber.data.validation.validate_manifest_dir`, a layer below).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from swedish_transcriber.data.manifest import conform_with_release, empty_manifest, quarantine_rows
from swedish_transcriber.review.auto import AUTO_PREFIX
from swedish_transcriber.review.decisions import Decision, fail, read_decisions

STAGE = "curate"
ORIGINAL_COLUMN = "original_sentence"
EXCLUDED_PREFIX = "excluded by review"


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


def apply_decisions_file(
    decisions_file: str | Path,
    manifests: Mapping[str, pd.DataFrame],
    validate_sentence: Callable[[str], str | None],
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, dict[str, Any]]:
    """:func:`apply_decisions` with the decisions of ``decisions_file``, as the validate stage
    applies them: the excluded rows come back as its quarantine rows (the manifest and release
    columns, stage ``curate``, the reason), the manifests and the report as they are.
    """
    out, excluded, report = apply_decisions(
        manifests, read_decisions(decisions_file), decisions_file, validate_sentence
    )
    rows = conform_with_release(excluded.drop(columns=["stage", "reason"]))
    return out, quarantine_rows(rows, STAGE, list(excluded["reason"])), report
