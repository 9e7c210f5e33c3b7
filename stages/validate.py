"""Stage ``validate``: the ingest manifest -> validated manifests, quarantine, report, Data Docs.

``python -m stages.validate data/manifest data/validated data/quarantine/validate
reports/validation.json reports/data_docs`` runs the Great Expectations suite with params
``validate``. The report and Data Docs describe every run, so they are written first; the
data outputs only when the fail rate is within ``validate.max_fail_rate``. Above it the stage
exits 1 with the counts per expectation and writes no data (no half state).
"""

from __future__ import annotations

import argparse
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


def run(args: argparse.Namespace) -> None:
    """Validate ``args.in_dir`` and write the outputs (see the module docstring)."""
    params = section("validate", ValidationSettings)
    splits = {split: read_split(args.in_dir, split) for split in SPLITS}
    with atomic_dir(args.docs_dir) as docs_tmp:
        result = validate_manifests(splits, params, docs_tmp)
    write_text(args.report, json.dumps(result.report, indent=2) + "\n")
    enforce_max_fail_rate(
        result,
        params.max_fail_rate,
        where=(
            f"Details: {args.report} and {args.docs_dir / 'index.html'}. Nothing was written to "
            f"{args.out_dir} or {args.quarantine_dir}. Fix the input, or loosen the thresholds "
            f"(e.g. dvc exp run -S validate.max_fail_rate=0.5) to get the quarantine for review."
        ),
    )
    with atomic_dir(args.quarantine_dir) as qtmp, atomic_dir(args.out_dir) as tmp:
        for split, manifest in result.passed.items():
            write_split(manifest, tmp, split)
        write_quarantine([result.quarantined], qtmp)
    report = result.report
    summary = ", ".join(f"{s} {report[f'{s}_passed']}/{report[f'{s}_total']}" for s in SPLITS)
    print(
        f"validate: {summary} rows passed -> {args.out_dir}; {report['failed']} quarantined "
        f"({result.fail_rate:.1%}) -> {args.quarantine_dir}; report {args.report}, "
        f"Data Docs {args.docs_dir / 'index.html'}"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The stage's paths, from its command line (dvc.yaml)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("in_dir", type=Path, help="the ingest stage's manifests")
    parser.add_argument("out_dir", type=Path, help="the manifests of the rows that pass")
    parser.add_argument("quarantine_dir", type=Path, help="rows that fail, with reasons")
    parser.add_argument("report", type=Path, help="counts per expectation (JSON, DVC metrics)")
    parser.add_argument("docs_dir", type=Path, help="Great Expectations' Data Docs (HTML)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    run_stage("validate", lambda: run(args))


if __name__ == "__main__":
    main()
