"""Stage ``ingest``: a Common Voice release directory -> measured manifests per role.

``python -m stages.ingest data/manifest data/quarantine/ingest``: the release is params
``data.raw_dir`` (a knob of the experiment, so dvc.yaml names it as ``${data.raw_dir}``);
``data.train_splits`` and ``data.eval_split`` say which of its splits fill the train, dev and
test roles. Beside the manifests, ``release.json`` records the roles and the row counts of the
release's optional files, which the validate stage reports.
"""

from __future__ import annotations

import json
from pathlib import Path

from swedish_transcriber import stage
from swedish_transcriber.atomic import atomic_dir
from swedish_transcriber.data.ingest import RELEASE_FILE, IngestParams, ingest_release
from swedish_transcriber.data.manifest import write_quarantine, write_split
from swedish_transcriber.data.source import DataParams
from swedish_transcriber.params import section


def run(out_dir: Path, quarantine_dir: Path) -> None:
    """Read ``data.raw_dir``; write the manifests, ``release.json`` and the quarantined rows."""
    data = section("data", DataParams)
    params = section("ingest", IngestParams)
    result = ingest_release(
        data.raw_dir,
        data.max_clips,
        data.seed,
        params.measure,
        params.num_proc,
        train_splits=data.train_splits,
        eval_split=data.eval_split,
    )
    with atomic_dir(quarantine_dir) as qtmp, atomic_dir(out_dir) as tmp:
        for split, manifest in result.splits.items():
            write_split(manifest, tmp, split)
        (tmp / RELEASE_FILE).write_text(json.dumps(result.release, indent=2) + "\n", "utf-8")
        write_quarantine(result.quarantine, qtmp)
    quarantined = sum(len(q) for q in result.quarantine)
    release = result.release
    summary = ", ".join(f"{s} {len(m)}" for s, m in result.splits.items())
    roles = (
        f"train = {'+'.join(release['train_splits'])}, dev = {release['dev_split']}, "
        f"test = {release['eval_split']}"
    )
    absent = ", ".join(release["absent_files"]) or "none"
    print(
        f"ingest: {summary} rows ({roles}) -> {out_dir}; {quarantined} quarantined -> "
        f"{quarantine_dir}; optional files absent: {absent}"
    )


if __name__ == "__main__":
    stage.main(run)
