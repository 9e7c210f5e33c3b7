"""What the machine did during a measurement, and what it is: CPU time (own, others'), versions."""

from __future__ import annotations

import os
import platform
import resource
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
PACKAGES = ("torch", "transformers", "ctranslate2", "numpy")


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


def cpu_during(work: Callable[[], T]) -> tuple[T, float, float | None]:
    """``work()``, this process's CPU seconds in it, and other processes' (None off Linux)."""
    own, busy = own_cpu_seconds(), machine_busy_seconds()
    result = work()
    own = own_cpu_seconds() - own
    other = None if busy is None else max(0.0, machine_busy_seconds() - busy - own)
    return result, own, other


def cpu_note(own: float, other: float | None) -> str:
    """``own CPU 1.2 s, other processes' CPU 0.3 s``: a timed run's log line's CPU part."""
    others = "" if other is None else f", other processes' CPU {other:.1f} s"
    return f"own CPU {own:.1f} s{others}"


def package_versions(packages: Iterable[str]) -> dict[str, str]:
    """Each installed distribution's version, or ``not installed``."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in packages:
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    return out


def versions() -> dict[str, str]:
    """Library versions and the machine, so a number can be traced to what produced it."""
    out = {"python": platform.python_version(), "machine": platform.platform()}
    return out | package_versions(PACKAGES) | {"cpu_count": str(os.cpu_count())}
