"""The row policy: from GX's unexpected rows to pass or quarantine, the reasons, the report.

A row that fails several expectations is quarantined once with every reason; of duplicated
paths the first clean occurrence is kept (see the package docstring for the policies); the
fail-rate gate stops the stage when the thresholds or the input are wrong rather than a few
clips bad.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from swedish_transcriber.data.manifest import (
    COLUMNS,
    RELEASE_COLUMNS,
    SPLITS,
    conform_with_release,
    quarantine_rows,
    read_split,
)
from swedish_transcriber.data.validation.docs import add_offline_index, make_docs_deterministic
from swedish_transcriber.data.validation.suite import (
    ROW_ID,
    build_checks,
    combine_splits,
    ordered_splits,
    run_suite,
)

if TYPE_CHECKING:
    from swedish_transcriber.data.validation.settings import ValidationSettings

STAGE = "validate"
RELEASE_FILE = "release.json"  # written by ingest beside the manifests (data.ingest)
# A reviewer's decisions applied to the manifests before the suite: (splits, the validate
# stage's sentence check) -> (splits, the excluded rows as quarantine rows, the counts). The
# stage passes swedish_transcriber.review.apply.apply_decisions_file (the review layer, above).
ApplyDecisions = Callable[
    [dict[str, pd.DataFrame], Callable[[str], str | None]],
    tuple[dict[str, pd.DataFrame], pd.DataFrame, dict[str, Any]],
]


@dataclass
class ValidationResult:
    """What one run of the suite decided.

    ``passed``: split -> the rows that passed, exactly as given (same columns and values).
    ``quarantined``: every failed row with the manifest and release columns plus ``stage`` and
    ``reason``.
    ``report``: numbers for DVC metrics (``reports/validation.json``), flat except ``release``
    (what the release holds, when the manifests came with ``release.json``) and ``curation``
    (a reviewer's decisions applied, when a decisions file was given).
    ``docs_index``: the Data Docs ``index.html``, when a docs directory was given.
    """

    passed: dict[str, pd.DataFrame]
    quarantined: pd.DataFrame
    report: dict[str, Any]
    failed_by_check: dict[str, int]
    labels: dict[str, str]
    docs_index: Path | None = None

    @property
    def fail_rate(self) -> float:
        """Fraction of all rows quarantined (0 for an empty manifest)."""
        return float(self.report["fail_rate"])


class ValidationGateError(ValueError):
    """More rows failed than ``validate.max_fail_rate`` allows: the stage must stop.

    A ``ValueError`` so that ``cli.run_stage`` prints the message as one clear error.
    """

    def __init__(self, message: str, result: ValidationResult) -> None:
        super().__init__(message)
        self.result = result


def _dedupe(
    frame: pd.DataFrame, flagged: list[int], failed_elsewhere: set[int], label: str
) -> dict[int, str]:
    """Row id -> reason for the duplicates to quarantine among the rows GX flagged.

    Per path, the first occurrence that passes every other expectation is kept (or, when none
    does, the first occurrence is the reference); all others are quarantined.
    """
    reasons: dict[int, str] = {}
    if not flagged:
        return reasons
    rows = frame.loc[frame[ROW_ID].isin(flagged)].sort_values(ROW_ID)
    for path, group in rows.groupby("path", sort=False):
        ids = group[ROW_ID].tolist()
        clean = [i for i in ids if i not in failed_elsewhere]
        keep = clean[0] if clean else ids[0]
        ref = frame.iloc[keep]  # row_id is the position in frame
        fate = "kept" if clean else "quarantined too"
        where = f"{ref['split']} {ref['tsv_file']} line {ref['tsv_row']}"
        for i in ids:
            if i != keep:
                reasons[i] = f"{label}: {path!r} is also at {where} (that occurrence is {fate})"
    return reasons


def _report(
    frame: pd.DataFrame,
    split_names: list[str],
    failed_ids: set[int],
    failed_by_check: dict[str, int],
    duplicate_groups: int,
) -> dict[str, int | float]:
    """Flat numbers for ``dvc metrics``: totals, per expectation, per split."""
    total = len(frame)
    failed = len(failed_ids)
    report: dict[str, int | float] = {
        "total": total,
        "passed": total - failed,
        "failed": failed,
        "fail_rate": round(failed / total, 6) if total else 0.0,
    }
    for key, count in failed_by_check.items():
        report[f"failed_{key}"] = int(count)
    report["duplicate_paths"] = int(duplicate_groups)
    failed_mask = frame[ROW_ID].isin(failed_ids)
    for split in split_names:
        in_split = (frame["split"] == split).fillna(False)
        report[f"{split}_total"] = int(in_split.sum())
        report[f"{split}_passed"] = int((in_split & ~failed_mask).sum())
        report[f"{split}_failed"] = int((in_split & failed_mask).sum())
    return report


def validate_manifests(
    splits: Mapping[str, pd.DataFrame],
    settings: ValidationSettings,
    docs_dir: str | Path | None = None,
) -> ValidationResult:
    """Validate all splits at once and decide, per row, pass or quarantine.

    ``splits``: split name -> manifest (columns of ``manifest.COLUMNS``). ``docs_dir``: where
    to build the GX Data Docs (``index.html`` there), or ``None`` for none. Does not apply
    ``max_fail_rate``: see :func:`enforce_max_fail_rate`, so that a caller can write the
    report and the docs first.
    """
    frame = combine_splits(splits)
    checks = build_checks(settings)
    unexpected = run_suite(frame, checks, docs_dir)

    labels = {c.key: c.label for c in checks}
    # The rows GX listed, once, as plain dicts (row_id is the position in ``frame``).
    listed = sorted({int(e[ROW_ID]) for rows in unexpected.values() for e in rows})
    records = dict(zip(listed, frame.iloc[listed].to_dict("records"), strict=True))
    # row id -> {check key: reason}; every failure GX listed for that row.
    reasons: dict[int, dict[str, str]] = {}
    for c in checks:
        if c.explain is None:
            continue
        for entry in unexpected[c.key]:
            row_id = int(entry[ROW_ID])
            text = c.explain(entry, records[row_id])
            reasons.setdefault(row_id, {})[c.key] = f"{labels[c.key]}: {text}"
    flagged = [int(e[ROW_ID]) for e in unexpected["path_unique"]]
    for row_id, text in _dedupe(frame, flagged, set(reasons), labels["path_unique"]).items():
        reasons.setdefault(row_id, {})["path_unique"] = text
    duplicate_groups = frame.loc[frame[ROW_ID].isin(flagged), "path"].nunique()

    order = [c.key for c in checks]
    failed_ids = set(reasons)
    failed_by_check = {k: sum(k in r for r in reasons.values()) for k in order}

    passed: dict[str, pd.DataFrame] = {}
    quarantined: list[pd.DataFrame] = []
    offset = 0
    for split in ordered_splits(splits):
        original = splits[split].reset_index(drop=True)
        ids = np.arange(offset, offset + len(original))
        offset += len(original)
        bad = np.array([i in failed_ids for i in ids], dtype=bool)
        passed[split] = original.loc[~bad].reset_index(drop=True)
        if bad.any():
            rows = original.loc[bad].copy()
            rows["split"] = split
            rows = conform_with_release(rows)
            texts = [
                "; ".join(reasons[int(i)][k] for k in order if k in reasons[int(i)])
                for i in ids[bad]
            ]
            quarantined.append(quarantine_rows(rows, STAGE, texts))
    quarantine = (
        pd.concat(quarantined, ignore_index=True)
        if quarantined
        else quarantine_rows(frame.loc[[], [*COLUMNS, *RELEASE_COLUMNS]], STAGE, [])
    )

    report = _report(frame, ordered_splits(splits), failed_ids, failed_by_check, duplicate_groups)
    index = None
    if docs_dir is not None:
        index = Path(docs_dir) / "index.html"
        add_offline_index(index, report, labels)
        make_docs_deterministic(Path(docs_dir))
    return ValidationResult(passed, quarantine, report, failed_by_check, labels, index)


def failure_summary(result: ValidationResult) -> str:
    """One line per expectation that failed rows: ``label: count``."""
    lines = [f"  {result.labels[k]}: {n} row(s)" for k, n in result.failed_by_check.items() if n]
    return "\n".join(lines) if lines else "  (none)"


def enforce_max_fail_rate(result: ValidationResult, max_fail_rate: float, where: str = "") -> None:
    """Raise :class:`ValidationGateError` when more than ``max_fail_rate`` of rows failed.

    A high failure rate means the thresholds or the input are wrong (wrong release, broken
    ingest), not that a few clips are bad: quarantining a quarter of the corpus silently would
    train on whatever is left. ``where`` tells the user where the details are.
    """
    report = result.report
    if result.fail_rate <= max_fail_rate:
        return
    message = (
        f"{report['failed']} of {report['total']} rows failed validation: fail rate "
        f"{result.fail_rate:.1%} > validate.max_fail_rate {max_fail_rate:.1%}.\n"
        f"Failed rows per expectation (a row may fail several):\n{failure_summary(result)}"
    )
    if where:
        message += f"\n{where}"
    raise ValidationGateError(message, result)


def read_release(manifest_dir: str | Path) -> dict[str, Any] | None:
    """``release.json`` beside the manifests (ingest writes it), or ``None`` when there is none.

    Manifests made elsewhere (tests, benchmarks) have none: their roles are their splits.
    """
    path = Path(manifest_dir) / RELEASE_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def validate_manifest_dir(
    manifest_dir: str | Path,
    settings: ValidationSettings,
    docs_dir: str | Path | None = None,
    apply_decisions: ApplyDecisions | None = None,
) -> ValidationResult:
    """Validate the train, dev and test manifests of ``manifest_dir`` as the stage does.

    ``apply_decisions``: a reviewer's decisions (``data/review/decisions.tsv``), applied to
    the manifests before the suite runs (``review.apply.apply_decisions_file``): an
    excluded clip is quarantined ("excluded by review: <reason>"), a fixed sentence replaces
    the label (the original is kept in ``original_sentence``) and is then validated like any
    other. A faulty file raises ``DecisionsError`` naming its line; nothing is applied. The
    report gets ``curation``: the decisions' counts.

    When ``release.json`` says the dev role is the eval split, the dev manifest holds the test
    rows again: they are validated once (as test; a second copy would be quarantined as a
    duplicate path), the validated dev role is the validated test rows, and the report's
    ``dev_*`` counts are test's (``total`` counts each row once). The report gets ``release``:
    the roles' release splits and the optional files' row counts (null: file absent).
    """
    release = read_release(manifest_dir)
    splits = {split: read_split(manifest_dir, split) for split in SPLITS}
    excluded, curation = None, None
    if apply_decisions is not None:
        splits, excluded, curation = apply_decisions(splits, settings.sentence_problem)
    dev_is_eval = release is not None and release["dev_split"] == release["eval_split"]
    if dev_is_eval:
        dev, test = (set(splits[s]["path"].astype(str)) for s in ("dev", "test"))
        if dev != test:
            raise ValueError(
                f"{Path(manifest_dir) / RELEASE_FILE}: the dev role is the eval split "
                f"{release['eval_split']!r}, but dev.parquet and test.parquet hold different "
                f"clips; re-run the ingest stage"
            )
        del splits["dev"]
    result = validate_manifests(splits, settings, docs_dir)
    if dev_is_eval:
        dev = result.passed["test"].copy()
        dev["split"] = pd.Series(["dev"] * len(dev), dtype="string")
        result.passed = {"train": result.passed["train"], "dev": dev, "test": result.passed["test"]}
        for part in ("total", "passed", "failed"):
            result.report[f"dev_{part}"] = result.report[f"test_{part}"]
    if release is not None:
        result.report["release"] = release
    if curation is not None:
        result.quarantined = pd.concat([excluded, result.quarantined], ignore_index=True)
        result.report["curation"] = curation
    return result
