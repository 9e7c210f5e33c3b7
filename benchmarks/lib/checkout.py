"""The checkout a benchmark measures: its root, scratch copies of it, its commit."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def copy_paths(names: Iterable[str], dest: Path) -> None:
    """Copy the checkout's files and folders ``names`` (relative) into ``dest``.

    A folder already at ``dest`` is replaced, ``__pycache__`` stays behind, and a name the
    checkout lacks (an optional file such as ``.dvcignore``) is passed over.
    """
    for name in names:
        source, target = REPO / name, dest / name
        if not source.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if not source.is_dir():
            shutil.copy2(source, target)
            continue
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))


def copy_tracked(dest: Path, **cache: str) -> Path:
    """A DVC repo at ``dest`` (emptied first) of this checkout's git-tracked files, no git.

    The files are as in the working tree (uncommitted edits included), so a run measures the
    code as it is. ``cache`` goes to ``.dvc/config.local``'s ``[cache]`` section (``dir``,
    ``type``) for this copy alone.
    """
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True)
    for name in filter(None, listed.stdout.decode().split("\0")):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    local = "[core]\n    no_scm = true\n"
    if cache:
        local += "[cache]\n" + "".join(f'    {k} = "{v}"\n' for k, v in cache.items())
    (dest / ".dvc").mkdir(exist_ok=True)
    (dest / ".dvc/config.local").write_text(local, encoding="utf-8")
    return dest


def commit_id(short: bool = False, dirty: bool = True) -> str:
    """The checkout's commit (``short``: abbreviated), ``+dirty`` when ``dirty`` is asked for and
    tracked files have changes; ``unknown`` without git."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()

    try:
        head = git("rev-parse", *(["--short"] if short else []), "HEAD")
        changed = dirty and git("status", "--porcelain", "--untracked-files=no")
    except OSError:
        return "unknown"
    return head + ("+dirty" if changed else "")
