"""One measurement per fresh interpreter, so that no other measurement's memory counts in it.

Linux carries a process's peak RSS across fork and exec: a worker started from a parent that
had loaded a model would report the parent's peak. So the parent loads nothing, and each
worker is the same script run again with ``--worker NAME --worker-out FILE``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def spawn_worker(
    script: str | Path,
    name: str,
    argv: list[str],
    threads: int,
    cwd: Path | None = None,
    prepare: Callable[[Path], list[str]] | None = None,
) -> dict[str, Any]:
    """Run ``script argv --worker name --worker-out FILE`` at ``threads`` threads; FILE's JSON.

    ``prepare(scratch)`` may make something in the worker's scratch folder first (in a process
    of its own, for the same reason) and returns more arguments for the worker.
    """
    env = dict(os.environ) | {var: str(threads) for var in THREAD_VARS}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{name}.json"
        cmd = [sys.executable, str(Path(script).resolve()), *argv]
        cmd += ["--worker", name, "--worker-out", str(out)]
        cmd += prepare(Path(tmp)) if prepare else []
        subprocess.run(cmd, check=True, env=env, cwd=cwd)
        return json.loads(out.read_text(encoding="utf-8"))
