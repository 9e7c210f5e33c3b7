"""A benchmark's results as JSON (indented, non-ASCII kept) and a line that says where."""

from __future__ import annotations

import json
from pathlib import Path


def write_report(out: str | Path, report: dict) -> None:
    """The benchmark's results as JSON at ``out`` (its folder made), and where they went."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nresults: {out}")
