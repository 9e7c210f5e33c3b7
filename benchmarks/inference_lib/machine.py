"""What the machine did during a measurement: peak memory, own and others' CPU, versions."""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
from pathlib import Path


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6


def own_cpu_seconds() -> float:
    """CPU seconds this process has used so far, all its threads together."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_busy_seconds(stat_file: Path = Path("/proc/stat")) -> float | None:
    """CPU seconds the whole machine has been busy since boot (Linux ``/proc/stat``), or None.

    Minus this process's own CPU time over a timed run, it shows how much other work ran at
    the same time: a benchmark sharing 2 cores with a test suite measures the test suite.
    """
    try:
        fields = stat_file.read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def versions() -> dict[str, str]:
    """Library versions and the machine, so a number can be traced to what produced it."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "machine": platform.platform()}
    for package in ("torch", "transformers", "ctranslate2", "numpy"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    out["cpu_count"] = str(os.cpu_count())
    return out


def write_report(out: str | Path, report: dict) -> None:
    """The benchmark's results as JSON at ``out`` (its folder made), and where they went."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nresults: {out}")
