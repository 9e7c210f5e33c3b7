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

Modules: ``settings`` (the params, ``ValidationSettings``), ``suite`` (the expectations and
the GX run), ``reasons`` (a failed row's reason in words), ``policy`` (pass or quarantine, the
report, the fail-rate gate), ``docs`` (Data Docs made deterministic and readable offline).
This file re-exports the names the stage, tests and benchmarks import.
"""

from __future__ import annotations

from swedish_transcriber.data.validation.docs import add_offline_index, make_docs_deterministic
from swedish_transcriber.data.validation.policy import (
    ValidationGateError,
    ValidationResult,
    enforce_max_fail_rate,
    failure_summary,
    validate_manifest_dir,
    validate_manifests,
)
from swedish_transcriber.data.validation.settings import ValidationSettings
from swedish_transcriber.data.validation.suite import build_checks, combine_splits, run_suite

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
