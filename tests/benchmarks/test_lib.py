"""What the benchmark scripts share (``benchmarks/lib/``): the checkout's copies and commit,
``--set``, a worker in a fresh interpreter, a process tree's memory, CPU time, versions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from benchmarks.lib import checkout, machine, memory, params, workers

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]


@pytest.fixture
def checkout_dir(tmp_path: Path, monkeypatch) -> Path:
    """A small git checkout standing in for the repo: tracked, untracked and cached files."""
    src = tmp_path / "src"
    (src / "pkg" / "__pycache__").mkdir(parents=True)
    (src / "pkg" / "mod.py").write_text("x = 1\n")
    (src / "pkg" / "__pycache__" / "mod.pyc").write_bytes(b"\0")
    (src / ".dvc").mkdir()
    (src / ".dvc" / "config").write_text("[core]\n")
    (src / "params.yaml").write_text("a: 1\n")
    subprocess.run(["git", "init", "-q"], cwd=src, check=True)
    subprocess.run(["git", "add", "pkg/mod.py", ".dvc/config", "params.yaml"], cwd=src, check=True)
    subprocess.run([*GIT, "commit", "-qm", "one"], cwd=src, check=True)
    (src / "untracked.txt").write_text("not in git\n")
    monkeypatch.setattr(checkout, "REPO", src)
    return src


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_copy_tracked_is_a_dvc_repo_of_the_tracked_files_as_they_are(checkout_dir, tmp_path):
    (checkout_dir / "params.yaml").write_text("a: 2\n")  # an uncommitted edit travels
    dest = tmp_path / "copy"
    (dest / "stale").mkdir(parents=True)
    checkout.copy_tracked(dest)
    assert files(dest) == [".dvc/config", ".dvc/config.local", "params.yaml", "pkg/mod.py"]
    assert (dest / "params.yaml").read_text() == "a: 2\n"
    assert (dest / ".dvc/config.local").read_text() == "[core]\n    no_scm = true\n"
    checkout.copy_tracked(dest, dir="/cache", type="hardlink,copy")
    assert (dest / ".dvc/config.local").read_text() == (
        '[core]\n    no_scm = true\n[cache]\n    dir = "/cache"\n    type = "hardlink,copy"\n'
    )


def test_copy_paths_replaces_folders_and_leaves_caches_and_missing_names(checkout_dir, tmp_path):
    dest = tmp_path / "copy"
    (dest / "pkg").mkdir(parents=True)
    (dest / "pkg" / "old.py").write_text("gone\n")
    checkout.copy_paths(("pkg", ".dvc/config", "params.yaml", ".dvcignore"), dest)
    assert files(dest) == [".dvc/config", "params.yaml", "pkg/mod.py"]


def test_commit_id_marks_changes_to_tracked_files_only(checkout_dir):
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=checkout_dir, capture_output=True, text=True
    ).stdout.strip()
    assert checkout.commit_id() == head  # the untracked file is no change
    assert head.startswith(checkout.commit_id(short=True))
    (checkout_dir / "params.yaml").write_text("a: 3\n")
    assert checkout.commit_id() == head + "+dirty"
    assert checkout.commit_id(dirty=False) == head


def test_sets_are_yaml_values_at_dotted_keys_params_has():
    changes = params.parse_sets(["train.steps=3", "train.parts=[a,b]", "x.y=a=b"])
    assert changes == {"train.steps": 3, "train.parts": ["a", "b"], "x.y": "a=b"}
    tree = {"train": {"steps": 1, "parts": []}}
    params.set_dotted(tree, "train.steps", 3)
    assert tree["train"]["steps"] == 3
    with pytest.raises(KeyError, match="train.stpes"):
        params.set_dotted(tree, "train.stpes", 3)


def test_a_worker_runs_the_script_again_with_its_threads_and_what_prepare_made(tmp_path):
    script = tmp_path / "bench.py"
    script.write_text(
        textwrap.dedent(
            """
            import json, os, sys
            out = sys.argv[sys.argv.index("--worker-out") + 1]
            record = {"argv": sys.argv[1:], "threads": os.environ["OMP_NUM_THREADS"]}
            open(out, "w").write(json.dumps(record))
            """
        )
    )

    def prepare(scratch: Path) -> list[str]:
        (scratch / "model").mkdir()
        return ["--model-dir", str(scratch / "model")]

    result = workers.spawn_worker(script, "one", ["--repeats", "1"], 3, prepare=prepare)
    argv = result["argv"]
    assert argv[:4] == ["--repeats", "1", "--worker", "one"]
    assert argv[5].endswith("one.json") and argv[6] == "--model-dir"
    assert result["threads"] == "3"
    assert not Path(argv[7]).exists()  # the scratch folder goes with the worker


def test_a_tree_sampler_counts_children_and_their_memory():
    psutil = pytest.importorskip("psutil")
    # A child that holds 64 MB and starts a grandchild; both wait to be killed.
    code = (
        "import subprocess, sys, time; held = b'x' * (64 * 2**20);"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
    )
    proc = psutil.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 30
        while len(proc.children()) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        sampler = memory.TreeSampler(proc, interval=0.02, pss=True).start()
        time.sleep(0.3)
        sampler.stop()
        now = memory.tree_memory(proc)
    finally:
        for p in [*proc.children(recursive=True), proc]:
            p.kill()
        proc.wait()
    assert now.processes == 2 and now.rss > 64 * 2**20
    assert sampler.peak.processes == 2 and sampler.peak.rss > 64 * 2**20
    assert sampler.largest_rss > 64 * 2**20 and sampler.peak_pss > 0
    assert sampler.timeline and sampler.timeline[0][0] == 0
    assert memory.tree_memory(proc).processes == 0  # gone: nothing, and no error


def test_own_peak_rss_is_at_least_the_memory_held_now():
    psutil = pytest.importorskip("psutil")
    assert memory.peak_rss_mb() * 1e6 >= psutil.Process().memory_info().rss * 0.99


def test_machine_busy_seconds_counts_all_but_idle_and_iowait(tmp_path):
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal guest guest_nice
    stat.write_text("cpu  100 5 50 1000 20 3 7 2 40 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
    ticks = os.sysconf("SC_CLK_TCK")
    assert machine.machine_busy_seconds(stat) == pytest.approx((100 + 5 + 50 + 3 + 7 + 2) / ticks)
    assert machine.machine_busy_seconds(tmp_path / "missing") is None


def test_cpu_during_counts_the_work_s_own_cpu_seconds():
    def spin() -> float:
        clock = time.process_time()
        while time.process_time() - clock < 0.2:  # CPU time, whatever else runs
            pass
        return time.process_time() - clock

    spent, own, other = machine.cpu_during(spin)
    assert own == pytest.approx(spent, abs=0.03)
    assert other is None or other >= 0
    assert machine.cpu_note(1.23, None) == "own CPU 1.2 s"
    assert machine.cpu_note(1.0, 0.25) == "own CPU 1.0 s, other processes' CPU 0.2 s"


def test_versions_name_each_package_or_say_it_is_missing():
    found = machine.versions()
    assert list(found)[:2] == ["python", "machine"] and list(found)[-1] == "cpu_count"
    assert set(machine.PACKAGES) <= set(found)
    missing = machine.package_versions(["no-such-distribution-here"])
    assert missing == {"no-such-distribution-here": "not installed"}


def test_a_report_is_indented_utf8_json_in_a_made_folder(tmp_path, capsys):
    from benchmarks.lib.report import write_report

    out = tmp_path / "sub" / "r.json"
    write_report(out, {"ord": "Göteborg"})
    assert out.read_text(encoding="utf-8") == '{\n  "ord": "Göteborg"\n}\n'
    assert json.loads(out.read_text(encoding="utf-8")) == {"ord": "Göteborg"}
    assert capsys.readouterr().out == f"\nresults: {out}\n"
