"""All-or-nothing outputs, and the temporaries a killed stage leaves behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from swedish_transcriber.atomic import atomic_dir, atomic_file, remove_stale_temps
from tests.messages import assert_a_line_names
from tests.repo_params import REPO

# Starts writing ``target`` with atomic_dir or atomic_file, says so, then waits to be killed.
WRITER = r"""
import sys, time
from pathlib import Path
from swedish_transcriber.atomic import atomic_dir, atomic_file

kind, target = sys.argv[1], Path(sys.argv[2])
if kind == "dir":
    with atomic_dir(target) as tmp:
        (tmp / "part.bin").write_bytes(b"half" * 1000)
        print("writing", flush=True)
        time.sleep(120)
else:
    with atomic_file(target, "w") as fh:
        fh.write("half")
        fh.flush()
        print("writing", flush=True)
        time.sleep(120)
"""


def start_writer(kind: str, target: Path) -> subprocess.Popen:
    """A process in the middle of writing ``target``."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, kind, str(target)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    return proc


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)  # reaped: no zombie left to look alive


def temps(target: Path) -> list[str]:
    return sorted(p.name for p in target.parent.glob(f".{target.name}.tmp-*"))


@pytest.mark.parametrize("kind", ["dir", "file"])
def test_a_killed_writers_temporary_is_removed_by_the_next_run(tmp_path, kind, capsys):
    target = tmp_path / "data" / ("features" if kind == "dir" else "metrics.json")
    writer = start_writer(kind, target)
    kill(writer)
    left = temps(target)
    assert len(left) == 1 and left[0].startswith(f".{target.name}.tmp-{writer.pid}-")
    assert not target.exists()

    if kind == "dir":
        with atomic_dir(target) as tmp:
            (tmp / "done.txt").write_text("ok")
        assert (target / "done.txt").read_text() == "ok"
    else:
        with atomic_file(target) as fh:
            fh.write("ok")
        assert target.read_text() == "ok"
    assert temps(target) == []
    said = capsys.readouterr().err
    assert_a_line_names(said, left[0], writer.pid)  # the temporary removed, its writer


def test_a_live_writers_temporary_is_kept(tmp_path):
    target = tmp_path / "features"
    writer = start_writer("dir", target)
    try:
        live = temps(target)
        with atomic_dir(target) as tmp:
            (tmp / "done.txt").write_text("ok")
        assert temps(target) == live and len(live) == 1
        assert (target.parent / live[0] / "part.bin").exists()
    finally:
        kill(writer)
    assert remove_stale_temps(target) == [target.parent / live[0]]
    assert temps(target) == []


def test_only_the_targets_own_temporaries_are_touched(tmp_path, capsys):
    # The id of a process that has ended (and been reaped).
    dead_pid = int(subprocess.check_output([sys.executable, "-c", "import os; print(os.getpid())"]))
    (tmp_path / f".features.tmp-{dead_pid}-abc").mkdir()
    (tmp_path / ".features.tmp-q1w2e3r4").mkdir()  # named before ids were put in names
    (tmp_path / f".features.old-{dead_pid}").mkdir()
    (tmp_path / f".featurize.tmp-{dead_pid}-abc").mkdir()  # another target's
    (tmp_path / f".features.json.tmp-{dead_pid}-abc").write_text("x")  # another target's
    removed = remove_stale_temps(tmp_path / "features")
    assert sorted(p.name for p in removed) == sorted(
        [f".features.tmp-{dead_pid}-abc", ".features.tmp-q1w2e3r4", f".features.old-{dead_pid}"]
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f".featurize.tmp-{dead_pid}-abc", f".features.json.tmp-{dead_pid}-abc"]
    )
    err = capsys.readouterr().err  # a line per temporary removed: the target, its name, its pid
    assert_a_line_names(err, tmp_path / "features", f".features.tmp-{dead_pid}-abc", dead_pid)
    assert_a_line_names(err, tmp_path / "features", ".features.tmp-q1w2e3r4")


def test_a_failed_block_leaves_the_old_output_and_no_temporary(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("first")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("second")
        raise RuntimeError("stage failed")
    assert (target / "a.txt").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
