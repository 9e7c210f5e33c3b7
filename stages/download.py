"""Stage ``download``: fetch Common Voice from the Mozilla Data Collective (``data.source: mdc``).

``python -m stages.download data/raw/mdc data/downloads/mdc``. The release is extracted into the
first path, the stage's out: DVC tracks it, so a teammate ``dvc pull``s it instead of
downloading, and ``data.raw_dir`` (``data/raw/mdc/<release>/<locale>``) must lie in it. The
archive stays in the second path, which is not an out (git-ignored): there an interrupted
download is resumed and a finished one is reused. The API key comes from ``MDC_API_KEY`` or a
``.env`` file, never from params. With another ``data.source`` the stage writes a placeholder,
so the DAG stays the same whichever source is chosen.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from swedish_transcriber import stage
from swedish_transcriber.atomic import atomic_dir
from swedish_transcriber.data.mdc import MdcParams, extract_release, fetch_archive, release_subdir
from swedish_transcriber.data.source import DataParams
from swedish_transcriber.params import section

SOURCE_FILE = "mdc_source.json"  # beside the release: which dataset and archive it came from


def run(out_dir: Path, download_dir: Path) -> None:
    """Download, verify and extract params ``mdc.dataset`` into ``out_dir``."""
    data = section("data", DataParams)
    params = section("mdc", MdcParams)
    if data.source != "mdc":
        with atomic_dir(out_dir) as tmp:
            (tmp / "README.txt").write_text(
                f"Nothing downloaded: data.source is {data.source!r}; the pipeline reads "
                f"{data.raw_dir}. Set data.source: mdc to download mdc.dataset here.\n",
                encoding="utf-8",
            )
        print(f"download: data.source={data.source}, MDC download skipped")
        return
    release = release_subdir(data.raw_dir, out_dir)  # before any network: a params mistake
    archive = fetch_archive(params.dataset, download_dir, show_progress=sys.stdout.isatty())
    print(f"download: {archive.path} ({archive.size_bytes} bytes), SHA-256 {archive.sha256} ok")
    with atomic_dir(out_dir) as tmp:  # a failed extraction leaves the old out_dir as it was
        extract_release(archive.path, tmp, release, out_dir)
        source = {
            "dataset": params.dataset,
            "id": archive.dataset_id,
            "archive": archive.path.name,
            "size_bytes": archive.size_bytes,
            "sha256": archive.sha256,
        }
        (tmp / SOURCE_FILE).write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")
    print(f"download: extracted {archive.path.name} -> {out_dir}; data.raw_dir {data.raw_dir}")


if __name__ == "__main__":
    stage.main(run)
