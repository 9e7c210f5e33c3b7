"""Stage ``validate``: the ingest manifest -> validated manifests, quarantine, report, Data Docs.

``python -m stages.validate data/manifest data/review/decisions.tsv data/validated
data/quarantine/validate reports/validation.json reports/data_docs`` applies a reviewer's
decisions (clips excluded, labels fixed: the review page writes the file;
``swedish_transcriber.review.apply``) and runs the Great
Expectations suite with params ``validate``. The report and Data Docs describe every run, so
they are written first; the data outputs only when the fail rate is within
``validate.max_fail_rate``. Above it the stage exits 1 with the counts per expectation and
writes no data (no half state). The report's ``release`` key is ``release.json`` of
``in_dir`` (which splits fill the roles, the row counts of the release's optional files, which
of them are absent); its ``curation`` key counts the decisions applied.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

from swedish_transcriber import stage
from swedish_transcriber.atomic import atomic_dir, write_text
from swedish_transcriber.data.manifest import SPLITS, write_quarantine, write_split
from swedish_transcriber.data.validation import (
    ValidationSettings,
    enforce_max_fail_rate,
    validate_manifest_dir,
)
from swedish_transcriber.params import section
from swedish_transcriber.review.apply import apply_decisions_file


def run(
    in_dir: Path,
    decisions: Path,
    out_dir: Path,
    quarantine_dir: Path,
    report: Path,
    docs_dir: Path,
) -> None:
    """Validate ``in_dir`` and write the outputs (see the module docstring)."""
    params = section("validate", ValidationSettings)
    with atomic_dir(docs_dir) as docs_tmp:
        decide = partial(apply_decisions_file, decisions)
        result = validate_manifest_dir(in_dir, params, docs_tmp, decide)
    write_text(report, json.dumps(result.report, indent=2) + "\n")
    enforce_max_fail_rate(
        result,
        params.max_fail_rate,
        where=(
            f"Details: {report} and {docs_dir / 'index.html'}. Nothing was written to "
            f"{out_dir} or {quarantine_dir}. Fix the input, or loosen the thresholds "
            f"(e.g. dvc exp run -S validate.max_fail_rate=0.5) to get the quarantine for review."
        ),
    )
    with atomic_dir(quarantine_dir) as qtmp, atomic_dir(out_dir) as tmp:
        for split, manifest in result.passed.items():
            write_split(manifest, tmp, split)
        write_quarantine([result.quarantined], qtmp)
    numbers = result.report
    summary = ", ".join(f"{s} {numbers[f'{s}_passed']}/{numbers[f'{s}_total']}" for s in SPLITS)
    print(
        f"validate: {summary} rows passed -> {out_dir}; {numbers['failed']} quarantined "
        f"({result.fail_rate:.1%}) -> {quarantine_dir}; report {report}, "
        f"Data Docs {docs_dir / 'index.html'}"
    )


if __name__ == "__main__":
    stage.main(run)
