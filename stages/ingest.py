"""Stage ``ingest``: a Common Voice release directory -> measured manifests per split."""

from __future__ import annotations

from pathlib import Path

from swedish_transcriber.atomic import atomic_dir
from swedish_transcriber.data.ingest import IngestParams, ingest_release
from swedish_transcriber.data.manifest import write_quarantine, write_split
from swedish_transcriber.data.source import DataParams
from swedish_transcriber.params import section
from swedish_transcriber.stage import run_stage

OUT_DIR = Path("data/manifest")
QUARANTINE_DIR = Path("data/quarantine/ingest")


def run() -> None:
    """Read ``data.raw_dir`` and write ``data/manifest/`` and ``data/quarantine/ingest/``."""
    data = section("data", DataParams)
    params = section("ingest", IngestParams)
    result = ingest_release(
        data.raw_dir,
        data.max_clips,
        data.seed,
        params.measure,
        params.num_proc,
    )
    with atomic_dir(QUARANTINE_DIR) as qtmp, atomic_dir(OUT_DIR) as tmp:
        for split, manifest in result.splits.items():
            write_split(manifest, tmp, split)
        write_quarantine(result.quarantine, qtmp)
    quarantined = sum(len(q) for q in result.quarantine)
    summary = ", ".join(f"{s} {len(m)}" for s, m in result.splits.items())
    print(f"ingest: {summary} rows -> {OUT_DIR}; {quarantined} quarantined -> {QUARANTINE_DIR}")


def main() -> None:
    run_stage("ingest", run)


if __name__ == "__main__":
    main()
