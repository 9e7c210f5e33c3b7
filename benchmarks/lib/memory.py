"""Peak memory: a process's own (``ru_maxrss``), or a process tree's, sampled while it runs.

A stage or a server fans out to worker processes, so the figure that matters for a machine's
memory is the tree's sum, not one process's peak. ``psutil`` (a ``dev`` extra) is imported
only by what samples a tree.
"""

from __future__ import annotations

import resource
import sys
import threading
import time
from dataclasses import dataclass, field


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6


@dataclass(frozen=True)
class TreeMemory:
    """One sample of a process tree (bytes)."""

    rss: int  # summed over the tree
    processes: int  # processes that answered
    largest_rss: int  # the largest one process
    pss: int  # proportional set sizes summed (shared pages split); RSS where not asked for


def tree_memory(process, pss: bool = False) -> TreeMemory:
    """``process`` (a ``psutil.Process``) and all its descendants now; one that is gone or
    closed to us is left out. ``pss`` reads ``memory_full_info`` (slower: smaps)."""
    import psutil

    try:
        tree = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        tree = []
    rss, count, largest, proportional = 0, 0, 0, 0
    for p in tree:
        try:
            mem = p.memory_full_info() if pss else p.memory_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        rss += mem.rss
        count += 1
        largest = max(largest, mem.rss)
        proportional += getattr(mem, "pss", mem.rss)
    return TreeMemory(rss, count, largest, proportional)


@dataclass
class TreeSampler:
    """Samples a process tree every ``interval`` s in a thread, from ``start()`` to ``stop()``.

    ``peak`` is the sample of the highest summed RSS; ``largest_rss`` and ``peak_pss`` are
    maxima over all samples; ``timeline`` holds (second, RSS MiB) once a second.
    """

    process: object  # a psutil.Process (psutil.Popen is one)
    interval: float = 0.1
    pss: bool = False
    peak: TreeMemory = TreeMemory(0, 0, 0, 0)
    largest_rss: int = 0
    peak_pss: int = 0
    timeline: list[tuple[int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> TreeSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        began = time.monotonic()
        while not self._done.is_set():
            now = tree_memory(self.process, self.pss)
            if not now.processes:  # gone (or not ours to read): nothing measured
                self._done.wait(self.interval)
                continue
            if now.rss > self.peak.rss:
                self.peak = now
            self.largest_rss = max(self.largest_rss, now.largest_rss)
            self.peak_pss = max(self.peak_pss, now.pss)
            second = int(time.monotonic() - began)
            if not self.timeline or self.timeline[-1][0] < second:
                self.timeline.append((second, round(now.rss / 2**20)))
            self._done.wait(self.interval)
