"""Stage ``validate``: the ingest manifest -> validated manifests, quarantine, report, Data Docs.

Runs the Great Expectations suite of ``swedish_transcriber.data.validation`` over all splits
with the thresholds of params ``validate``. The report and the Data Docs describe every run,
so they are written first (atomically); the data outputs are written only when the fail rate
is within ``validate.max_fail_rate``. Above it the stage exits 1 with the counts per expectation and
writes neither ``data/validated`` nor ``data/quarantine/validate`` (no half state).
"""

from __future__ import annotations

import json
from pathlib import Path

from swedish_transcriber.atomic import atomic_dir, write_text
from swedish_transcriber.data.manifest import SPLITS, read_split, write_quarantine, write_split
from swedish_transcriber.data.validation import (
    ValidationSettings,
    enforce_max_fail_rate,
    validate_manifests,
)
from swedish_transcriber.params import section
from swedish_transcriber.stage import run_stage

IN_DIR = Path("data/manifest")
OUT_DIR = Path("data/validated")
QUARANTINE_DIR = Path("data/quarantine/validate")
REPORT_FILE = Path("reports/validation.json")
DOCS_DIR = Path("reports/data_docs")

# params.yaml ``validate`` is exactly ValidationSettings' fields (checked strictly).
ValidateParams = ValidationSettings


def run() -> None:
    """Validate ``data/manifest`` and write the outputs (see the module docstring)."""
    params = section("validate", ValidateParams)
    splits = {split: read_split(IN_DIR, split) for split in SPLITS}
    with atomic_dir(DOCS_DIR) as docs_tmp:
        result = validate_manifests(splits, params, docs_tmp)
    write_text(REPORT_FILE, json.dumps(result.report, indent=2) + "\n")
    enforce_max_fail_rate(
        result,
        params.max_fail_rate,
        where=(
            f"Details: {REPORT_FILE} and {DOCS_DIR / 'index.html'}. Nothing was written to "
            f"{OUT_DIR} or {QUARANTINE_DIR}. Fix the input, or loosen the thresholds "
            f"(e.g. dvc exp run -S validate.max_fail_rate=0.5) to get the quarantine for review."
        ),
    )
    with atomic_dir(QUARANTINE_DIR) as qtmp, atomic_dir(OUT_DIR) as tmp:
        for split, manifest in result.passed.items():
            write_split(manifest, tmp, split)
        write_quarantine([result.quarantined], qtmp)
    report = result.report
    summary = ", ".join(f"{s} {report[f'{s}_passed']}/{report[f'{s}_total']}" for s in SPLITS)
    print(
        f"validate: {summary} rows passed -> {OUT_DIR}; {report['failed']} quarantined "
        f"({result.fail_rate:.1%}) -> {QUARANTINE_DIR}; report {REPORT_FILE}, "
        f"Data Docs {DOCS_DIR / 'index.html'}"
    )


def main() -> None:
    run_stage("validate", run)


if __name__ == "__main__":
    main()
