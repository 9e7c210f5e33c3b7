"""Great Expectations' Data Docs made deterministic and readable offline.

Identical data must give byte-identical docs (DVC tracks them as an output), and the index
must show something without the CDN scripts GX's pages load.
"""

from __future__ import annotations

import datetime
import html
import re
from collections.abc import Mapping
from pathlib import Path

# The run time GX stamps on results and pages: fixed, because the docs are about the data.
FIXED_RUN_TIME = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_CACHE_BUSTER = re.compile(r"\?d=\d{8}T\d{6}\.\d+Z")
_STAMP = re.compile(r"\d{8}T\d{6}\.\d+Z")


def _renumber_ids(text: str) -> str:
    """Random uuid4 element ids -> ids numbered in order of first appearance."""
    ids: dict[str, str] = {}

    def number(match: re.Match[str]) -> str:
        return ids.setdefault(match.group(0), f"00000000-0000-4000-8000-{len(ids):012d}")

    return _UUID.sub(number, text)


def make_docs_deterministic(docs_dir: Path) -> None:
    """Remove the randomness and wall-clock stamps GX puts into its HTML.

    Identical data must give identical Data Docs, or DVC would see a changed output on every
    run. Element ids are renumbered within each page (its collapse/expand links keep working)
    and render/validation times become the fixed run time: the docs describe the data, and
    DVC's lock file records when and from what they were made.
    """
    fixed = FIXED_RUN_TIME.strftime("%Y%m%dT%H%M%S.%fZ")
    for page in sorted(docs_dir.rglob("*.html")):
        text = _CACHE_BUSTER.sub("", page.read_text(encoding="utf-8"))
        text = _STAMP.sub(fixed, _renumber_ids(text))
        page.write_text(text, encoding="utf-8")


def add_offline_index(index: Path, report: Mapping[str, int | float], labels: Mapping) -> None:
    """Make ``index.html`` useful offline: plain links to every page, and the counts.

    GX's index lists its pages in a table drawn by jQuery/bootstrap-table loaded from CDNs, so
    offline it is empty. This adds a static block at the top, the summary of the run and plain
    links to the expectation suite and validation result pages (those are plain HTML and open
    offline, unstyled).
    """
    index = Path(index)
    if not index.is_file():
        return
    root = index.parent
    pages = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.html") if p != index)

    def links(prefix: str) -> str:
        items = [
            f'<li><a href="{html.escape(p)}">{html.escape(p[len(prefix) :])}</a></li>'
            for p in pages
            if p.startswith(prefix)
        ]
        return "<ul>" + "".join(items) + "</ul>" if items else "<p>(none)</p>"

    rows = "".join(
        f"<tr><td>{html.escape(str(label))}</td><td>{report.get(f'failed_{key}', 0)}</td></tr>"
        for key, label in labels.items()
    )
    block = (
        '<div id="offline-index" style="padding:1em 3em;font-family:sans-serif">'
        "<h2>Manifest validation</h2>"
        f"<p>{report['total']} rows: {report['passed']} passed, {report['failed']} quarantined "
        f"(fail rate {float(report['fail_rate']):.2%}).</p>"
        "<table border=1 cellpadding=4><tr><th>expectation</th><th>rows quarantined</th></tr>"
        f"{rows}</table>"
        f"<h3>Validation results</h3>{links('validations/')}"
        f"<h3>Expectation suites</h3>{links('expectations/')}"
        "</div>"
    )
    text = index.read_text(encoding="utf-8")
    marker = re.search(r"<body[^>]*>", text)
    at = marker.end() if marker else 0
    index.write_text(text[:at] + block + text[at:], encoding="utf-8")
