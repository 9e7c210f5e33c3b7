"""All-or-nothing outputs.

A stage that dies half-way (bad input, Ctrl-C, OOM) must not leave a half-written output that
a later stage, or DVC's cache, would take for a good one. Outputs are therefore built in a
temporary sibling and moved into place with one ``os.replace`` at the very end.

A process killed outright (SIGKILL, the OOM killer, a power cut) cannot remove its temporary,
so each temporary's name carries the id of the process that made it
(``.<name>.tmp-<pid>-<random>``), and the next writer of the same target removes those whose
process is gone. A temporary of a live process is kept: it may be writing right now. (When
the id has been reused by a new process, the temporary waits for a later run.)
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temp_prefix(target: Path) -> str:
    return f".{target.name}.tmp-{os.getpid()}-"


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and has not ended (a zombie has ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): kill(0) is all there is
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def remove_stale_temps(target: str | Path) -> list[Path]:
    """Remove the temporaries of ``target`` left by processes that are gone; say so.

    Only ``target``'s own siblings (``.<name>.tmp-*``, ``.<name>.old-*``) are looked at.
    A name without a process id comes from before ids were put in names and is stale too.
    """
    target = Path(target)
    if not target.parent.is_dir():
        return []
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(?:tmp|old)-(?:(\d+)(?:-|$))?")
    removed = []
    for path in sorted(target.parent.iterdir()):
        match = pattern.match(path.name)
        if match is None:
            continue
        pid = int(match.group(1)) if match.group(1) else None
        if pid is not None and (pid == os.getpid() or _alive(pid)):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        left_by = f"process {pid}, which is gone" if pid else "an earlier run"
        print(f"{target}: removed stale temporary {path.name} (left by {left_by})", file=sys.stderr)
        removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary directory that replaces ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(target), dir=target.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # mkdtemp makes the directory private (0700); outputs should have the usual permissions.
    tmp.chmod(0o777 & ~_umask())
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(target: str | Path, mode: str = "w", **kwargs) -> Iterator:
    """Open a temporary file that replaces ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    fd, tmp_name = tempfile.mkstemp(prefix=_temp_prefix(target), dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with tmp.open(mode, **kwargs) as fh:
            yield fh
        tmp.chmod(0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(target: str | Path, text: str) -> None:
    """Atomically write a UTF-8 text file."""
    with atomic_file(target, "w", encoding="utf-8") as fh:
        fh.write(text)


@contextlib.contextmanager
def scratch_dir(target: str | Path) -> Iterator[Path]:
    """A working folder beside ``target``, removed when the block ends, however it ends.

    For intermediate files too large for memory (``datasets.map`` output at release scale).
    It is named like ``target``'s temporaries, so one left by a killed process is removed by
    the next writer of ``target`` (``remove_stale_temps``), as an unfinished output would be.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(target), dir=target.parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
