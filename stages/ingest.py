"""Stage ``ingest``: a Common Voice release directory -> measured manifests per split.

``python -m stages.ingest data/manifest data/quarantine/ingest``: the release is params
``data.raw_dir`` (a knob of the experiment, so dvc.yaml names it as ``${data.raw_dir}``).
"""

from __future__ import annotations

from pathlib import Path

from swedish_transcriber import stage
from swedish_transcriber.atomic import atomic_dir
from swedish_transcriber.data.ingest import IngestParams, ingest_release
from swedish_transcriber.data.manifest import write_quarantine, write_split
from swedish_transcriber.data.source import DataParams
from swedish_transcriber.params import section


def run(out_dir: Path, quarantine_dir: Path) -> None:
    """Read ``data.raw_dir``; write the manifests and the quarantined rows."""
    data = section("data", DataParams)
    params = section("ingest", IngestParams)
    result = ingest_release(
        data.raw_dir, data.max_clips, data.seed, params.measure, params.num_proc
    )
    with atomic_dir(quarantine_dir) as qtmp, atomic_dir(out_dir) as tmp:
        for split, manifest in result.splits.items():
            write_split(manifest, tmp, split)
        write_quarantine(result.quarantine, qtmp)
    quarantined = sum(len(q) for q in result.quarantine)
    summary = ", ".join(f"{s} {len(m)}" for s, m in result.splits.items())
    print(f"ingest: {summary} rows -> {out_dir}; {quarantined} quarantined -> {quarantine_dir}")


if __name__ == "__main__":
    stage.main(run)
