"""Ingest -> validate -> featurize at release scale: time, memory and disk per stage vs N.

Usage (repo root, .venv active; needs models/base/ from `dvc repro base_model`):

    python benchmarks/scale.py --n 1000 20000 [--workdir /tmp/scale] \
        [--out benchmarks/results/scale.json]

For each N it makes (or reuses, cached by (N, seed) under the workdir) a synthetic Common
Voice release (benchmarks/scale_release.py), copies the repo's git-tracked files into a
fresh DVC repo under the workdir (params: data.source commonvoice, data.raw_dir the release,
data.max_clips 0; models/base a symlink, not counted), and runs the stages ingest, validate,
augment (off by default: it passes train through) and featurize with their dvc.yaml
commands, each followed by `dvc commit` so that the outputs are in the DVC cache as after
`dvc repro`. Per stage: wall time, clips/s, peak RSS of the process tree (sampled, summed
over the stage and its worker processes; PSS beside it, shared pages split), and afterwards
the disk used by the workspace outputs and by the DVC cache, hardlinked inodes counted once:
as the stages and `dvc commit` leave it, and again after `dvc checkout --relink`. (With
cache.type "reflink,hardlink,copy" on a filesystem without reflinks, `dvc repro` and `dvc
commit` keep the workspace's own copy: DVC cannot tell a reflink from a copy, so it does not
relink; "hardlink,copy" links at once. --cache-type overrides the repo's for a run.)

Targets (PASS/MISS): time per clip at the largest N within 1.2x of the smallest (each
stage and the total); peak RSS <= 4 GB at the largest N; features <= 120 kB per 5 s clip;
every listed clip validated or quarantined; the DVC cache holds no second copy.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import psutil
import yaml

from benchmarks.lib.checkout import REPO, commit_id, copy_tracked
from benchmarks.lib.memory import TreeSampler
from benchmarks.lib.report import write_report
from benchmarks.scale_release import cached_release

STAGES = ("ingest", "validate", "augment", "featurize")
TARGET_STAGES = ("ingest", "validate", "featurize")
SPLIT_TSVS = ("train", "dev", "test")
TIME_RATIO = 1.2
MAX_RSS_BYTES = 4 * 10**9
MAX_FEATURE_BYTES_PER_5S = 120_000
MAX_CACHE_EXTRA = 0.05  # the cache may add this fraction of the workspace (.dir listings)


@dataclass
class Measured:
    """One command's wall time and the peak summed RSS of its process tree."""

    wall_s: float
    peak_rss_bytes: int  # sum over the tree at the sampled peak
    peak_processes: int  # processes in the tree at that sample
    largest_process_rss_bytes: int
    peak_pss_bytes: int  # the same sum of proportional set sizes (shared pages split)


def run_measured(
    argv: list[str], cwd: Path, env: dict, log: Path, interval: float = 0.1
) -> Measured:
    """Run ``argv``, sampling the RSS of it and all its descendants every ``interval`` s.

    The stages fan out to worker processes (multiprocessing, datasets.map num_proc), so the
    figure that matters for a machine's memory is the tree's sum, not one process's peak.
    """
    start = time.perf_counter()
    with log.open("ab") as out:
        out.write(f"$ {shlex.join(argv)}\n".encode())
        out.flush()
        proc = psutil.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        sampler = TreeSampler(proc, interval, pss=True).start()
        proc.wait()
        wall = time.perf_counter() - start
        sampler.stop()
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{shlex.join(argv)} failed ({proc.returncode}); log {log}:\n{tail}")
    peak = sampler.peak
    return Measured(wall, peak.rss, peak.processes, sampler.largest_rss, sampler.peak_pss)


def make_repo(dest: Path, release: Path, models_base: Path, cache_type: str | None) -> Path:
    """A fresh DVC repo at ``dest``: this checkout's git-tracked files (as in the working
    tree, so .dvc/config's cache.type too, unless ``cache_type`` overrides it), params
    pointed at ``release``, models/base a symlink (not counted), no SCM."""
    copy_tracked(dest, **({"type": cache_type} if cache_type else {}))
    (dest / "dvc.lock").unlink(missing_ok=True)  # hashes of the demo run, not this one
    (dest / "models").mkdir(exist_ok=True)
    (dest / "models/base").symlink_to(models_base.resolve())
    params_file = dest / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    params["data"].update(source="commonvoice", raw_dir=str(release), max_clips=0)
    params_file.write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True))
    return dest


def stage_spec(repo: Path, name: str) -> dict:
    return yaml.safe_load((repo / "dvc.yaml").read_text())["stages"][name]


def stage_argv(repo: Path, name: str) -> list[str]:
    """The stage's dvc.yaml command (these stages use no ${...} in theirs)."""
    cmd = stage_spec(repo, name)["cmd"]
    if "${" in cmd:
        raise ValueError(f"dvc.yaml stage {name}: command {cmd!r} is templated; not supported")
    return shlex.split(cmd)


def stage_outs(repo: Path, name: str) -> list[str]:
    spec = stage_spec(repo, name)
    outs = []
    for key in ("outs", "metrics", "plots"):
        for item in spec.get(key, []):
            outs.append(item if isinstance(item, str) else next(iter(item)))
    return outs


def disk_usage(paths: list[Path], seen: set[tuple[int, int]] | None = None) -> tuple[int, int]:
    """(bytes on disk, apparent bytes) under ``paths``, each inode counted once.

    ``seen`` is shared between calls to count the union of several trees; DVC's hardlink
    cache makes a workspace file and its cache entry one inode.
    """
    seen = set() if seen is None else seen
    blocks, apparent = 0, 0
    for root in paths:
        if not root.exists():
            continue
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for f in files:
            st = f.lstat()
            key = (st.st_dev, st.st_ino)
            if key in seen:
                continue
            seen.add(key)
            blocks += st.st_blocks * 512
            apparent += st.st_size
    return blocks, apparent


def _tsv_keys(tsv: Path) -> list[str]:
    """The clip keys of a release TSV's rows: the clip name, or file:line when it has none."""
    with tsv.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader)
        col = header.index("path")
        keys = []
        for line, fields in enumerate(reader, start=2):
            if not fields or fields == [""]:
                continue
            path = fields[col].strip() if len(fields) > col else ""
            if path and not Path(path).suffix:
                path += ".mp3"
            keys.append(path or f"{tsv.name}:{line}")
    return keys


def _frame_keys(df: pd.DataFrame) -> list[str]:
    paths = df["path"].fillna("").astype(str) if "path" in df else pd.Series([""] * len(df))
    files = df["tsv_file"].fillna("").astype(str) if "tsv_file" in df else None
    rows = df.get("tsv_row")
    keys = []
    for i, p in enumerate(paths):
        if p:
            keys.append(p)
        elif files is not None and rows is not None:
            keys.append(f"{Path(files.iloc[i]).name}:{rows.iloc[i]}")
        else:
            keys.append(f"?{i}")
    return keys


def read_quarantine(stage_dir: Path) -> pd.DataFrame:
    """Every quarantine table a stage wrote: its Parquet files, else its TSVs."""
    tables = sorted(stage_dir.glob("*.parquet"))
    if tables:
        return pd.concat([pd.read_parquet(t) for t in tables], ignore_index=True)
    tsvs = sorted(stage_dir.glob("*.tsv"))
    frames = [pd.read_csv(t, sep="\t", dtype=str, keep_default_na=False) for t in tsvs]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def read_tsv_names(params: dict) -> list[str]:
    """The split TSVs the ingest reads: train/dev/test, and any that data.train_splits /
    data.eval_split name (params another branch adds)."""
    names = list(SPLIT_TSVS)
    data = params.get("data", {})
    for key in ("train_splits", "eval_split"):
        value = data.get(key)
        for v in [value] if isinstance(value, str) else value or []:
            if v and v not in names:
                names.append(v)
    return names


def account(repo: Path, release: Path, tsv_names: list[str]) -> dict:
    """Where every listed clip went: validated, or quarantined by some stage; nothing lost.

    Keys are clip names (unique per release). ``lost`` = read but neither in a validated
    manifest nor in the ingest/validate quarantine; ``not_featurized`` = validated but neither
    featurized nor in the featurize quarantine. Counts are rows; sets are clips.
    """
    read: list[str] = []
    for name in tsv_names:
        read += _tsv_keys(release / f"{name}.tsv")
    validated = pd.concat(
        [pd.read_parquet(p) for p in sorted((repo / "data/validated").glob("*.parquet"))],
        ignore_index=True,
    )
    quarantine: dict[str, list[str]] = {}
    for stage_dir in sorted(p for p in (repo / "data/quarantine").glob("*") if p.is_dir()):
        quarantine[stage_dir.name] = _frame_keys(read_quarantine(stage_dir))
    featurized = feature_rows(repo / "data/features")
    before_features = set().union(*(set(v) for k, v in quarantine.items() if k != "featurize"))
    validated_keys = set(_frame_keys(validated))
    lost = set(read) - validated_keys - before_features
    not_featurized = validated_keys - set(featurized["path"]) - set(quarantine.get("featurize", []))
    unknown = (validated_keys | before_features) - set(read)
    return {
        "tsvs_read": tsv_names,
        "rows_read": len(read),
        "clips_read": len(set(read)),
        "validated_rows": len(validated),
        "quarantined_rows": {k: len(v) for k, v in quarantine.items()},
        "featurized_rows": len(featurized),
        "lost": sorted(lost)[:20],
        "lost_count": len(lost),
        "not_featurized": sorted(not_featurized)[:20],
        "not_featurized_count": len(not_featurized),
        "unknown_count": len(unknown),
        "ok": not lost and not not_featurized,
    }


def feature_rows(features_dir: Path) -> pd.DataFrame:
    """The path and duration of every featurized row (all splits)."""
    import datasets

    frames = []
    for split_dir in sorted(p for p in features_dir.glob("*") if p.is_dir()):
        table = datasets.load_from_disk(str(split_dir))
        frames.append(table.select_columns(["path", "duration"]).to_pandas())
    return (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["path", "duration"])
    )


def disk_figures(repo: Path) -> dict:
    """Workspace outputs of the measured stages and the DVC cache, alone and together."""
    outs = [repo / o for name in STAGES for o in stage_outs(repo, name)]
    seen: set[tuple[int, int]] = set()
    ws_disk, ws_apparent = disk_usage(outs, seen)
    cache_only, _ = disk_usage([repo / ".dvc/cache"], seen)  # what the cache adds
    cache_disk, _ = disk_usage([repo / ".dvc/cache"])
    return {
        "workspace_bytes": ws_disk,
        "workspace_apparent_bytes": ws_apparent,
        "cache_bytes": cache_disk,
        "cache_not_in_workspace_bytes": cache_only,
        "combined_bytes": ws_disk + cache_only,
    }


def fault_outcomes(repo: Path, faults: dict[str, str]) -> dict[str, str]:
    """Where each planted fault's clip ended: the stage that quarantined it, or validated."""
    where = {path: "validated (not caught)" for path in faults.values()}
    for stage_dir in sorted(p for p in (repo / "data/quarantine").glob("*") if p.is_dir()):
        for key in _frame_keys(read_quarantine(stage_dir)):
            if key in where:
                where[key] = f"quarantined by {stage_dir.name}"
    return {fault: where[path] for fault, path in faults.items()}


def run_one(
    n: int,
    seed: int,
    workdir: Path,
    demo_dir: Path,
    models_base: Path,
    cache_type: str | None = None,
    keep_repo: bool = False,
) -> dict:
    """Make/reuse the release of ``n`` clips, run the stages in a fresh repo, measure."""
    t0 = time.perf_counter()
    release, summary = cached_release(n, seed, workdir / "releases", demo_dir)
    made_s = time.perf_counter() - t0
    print(f"N={n}: release {release} ({made_s:.0f} s, {summary['rows']})", flush=True)
    repo = make_repo(workdir / f"repo-n{n}", release, models_base, cache_type)
    env = os.environ | {"PYTHONPATH": str(repo)}
    log = workdir / f"repo-n{n}.log"
    log.unlink(missing_ok=True)
    stages: dict[str, dict] = {}
    for name in STAGES:
        run = run_measured(stage_argv(repo, name), repo, env, log)
        commit = run_measured(["dvc", "commit", "-f", "-q", name], repo, env, log)
        stages[name] = {
            "wall_s": round(run.wall_s, 2),
            "s_per_clip": run.wall_s / n,
            "clips_per_s": round(n / run.wall_s, 1),
            "peak_rss_bytes": run.peak_rss_bytes,
            "peak_processes": run.peak_processes,
            "largest_process_rss_bytes": run.largest_process_rss_bytes,
            "dvc_commit_s": round(commit.wall_s, 2),
            "dvc_commit_peak_rss_bytes": commit.peak_rss_bytes,
            "peak_pss_bytes": run.peak_pss_bytes,
        }
        print(
            f"  {name:9s} {run.wall_s:7.1f} s  {n / run.wall_s:7.1f} clips/s  peak RSS "
            f"{run.peak_rss_bytes / 1e9:.2f} GB ({run.peak_processes} proc, PSS "
            f"{run.peak_pss_bytes / 1e9:.2f} GB)  "
            f"dvc commit {commit.wall_s:.1f} s",
            flush=True,
        )
    total = sum(s["wall_s"] + s["dvc_commit_s"] for s in stages.values())
    disk = disk_figures(repo)  # as `dvc repro` / `dvc commit` leave it
    # DVC cannot tell a reflink from a copy, so with cache.type reflink,... it leaves the
    # workspace's copies as they are (treeverse/dvc#10549); --relink links them.
    relink = run_measured(["dvc", "checkout", "--relink", "-f", "-q", *STAGES], repo, env, log)
    relinked = disk_figures(repo) | {"relink_s": round(relink.wall_s, 2)}
    cache_type_used = subprocess.run(
        ["dvc", "config", "cache.type"], cwd=repo, env=env, capture_output=True, text=True
    ).stdout.strip()
    features_disk, features_bytes = disk_usage([repo / "data/features"])
    featurized = feature_rows(repo / "data/features")
    mean_dur = float(featurized["duration"].mean()) if len(featurized) else float("nan")
    per_clip = features_bytes / max(1, len(featurized))
    params = yaml.safe_load((repo / "params.yaml").read_text())
    accounting = account(repo, release, read_tsv_names(params))
    faults = fault_outcomes(repo, summary["faults"])
    if not keep_repo:  # features and cache are GBs at 20,000 clips; the next N needs the room
        shutil.rmtree(repo)
    print(
        f"  disk: workspace {disk['workspace_bytes'] / 1e6:.1f} MB, cache "
        f"{disk['cache_bytes'] / 1e6:.1f} MB, combined {disk['combined_bytes'] / 1e6:.1f} MB; "
        f"after relink combined {relinked['combined_bytes'] / 1e6:.1f} MB",
        flush=True,
    )
    return {
        "n": n,
        "release": str(release),
        "release_rows": summary["rows"],
        "planted_faults": summary["faults"],
        "release_made_s": round(made_s, 1),
        "stages": stages,
        "total_s": round(total, 2),
        "total_s_per_clip": total / n,
        "peak_rss_bytes": max(
            max(s["peak_rss_bytes"], s["dvc_commit_peak_rss_bytes"]) for s in stages.values()
        ),
        "cache_type": cache_type_used,
        "disk": disk,
        "disk_after_relink": relinked,
        "features": {
            "rows": len(featurized),
            "bytes": features_bytes,
            "disk_bytes": features_disk,
            "bytes_per_clip": round(per_clip),
            "mean_clip_s": round(mean_dur, 3),
            "bytes_per_5s_clip": round(per_clip * 5.0 / mean_dur) if mean_dur > 0 else None,
        },
        "accounting": accounting,
        "fault_outcomes": faults,
    }


def targets(runs: list[dict]) -> list[dict]:
    """PASS/MISS of each target; time scaling compares the largest N with the smallest."""
    small, large = min(runs, key=lambda r: r["n"]), max(runs, key=lambda r: r["n"])
    out = []

    def check(name: str, ok: bool, detail: str) -> None:
        out.append({"target": name, "result": "PASS" if ok else "MISS", "detail": detail})

    if large["n"] > small["n"]:
        pairs = [
            (s, small["stages"][s]["s_per_clip"], large["stages"][s]["s_per_clip"])
            for s in TARGET_STAGES
        ]
        pairs.append(("total", small["total_s_per_clip"], large["total_s_per_clip"]))
        for name, a, b in pairs:
            check(
                f"time per clip {name}: N={large['n']} <= {TIME_RATIO}x N={small['n']}",
                b <= TIME_RATIO * a,
                f"{b * 1e3:.2f} ms vs {a * 1e3:.2f} ms ({b / a:.2f}x)",
            )
    check(
        f"peak RSS <= {MAX_RSS_BYTES / 1e9:.0f} GB at N={large['n']}",
        large["peak_rss_bytes"] <= MAX_RSS_BYTES,
        f"{large['peak_rss_bytes'] / 1e9:.2f} GB",
    )
    for r in runs:
        per5 = r["features"]["bytes_per_5s_clip"]
        check(
            f"features <= {MAX_FEATURE_BYTES_PER_5S / 1e3:.0f} kB per 5 s clip at N={r['n']}",
            per5 is not None and per5 <= MAX_FEATURE_BYTES_PER_5S,
            f"{(per5 or 0) / 1e3:.1f} kB ({r['features']['bytes_per_clip'] / 1e3:.1f} kB per clip "
            f"of mean {r['features']['mean_clip_s']} s)",
        )
        acc = r["accounting"]
        check(
            f"every listed clip validated or quarantined at N={r['n']}",
            acc["ok"],
            f"{acc['clips_read']} read, {acc['validated_rows']} validated, quarantined "
            f"{acc['quarantined_rows']}, lost {acc['lost_count']}, validated but not "
            f"featurized {acc['not_featurized_count']}",
        )
        disk, relinked = r["disk"], r["disk_after_relink"]
        check(
            f"DVC cache holds no second copy at N={r['n']} (cache.type {r['cache_type']})",
            disk["cache_not_in_workspace_bytes"] <= MAX_CACHE_EXTRA * disk["workspace_bytes"],
            f"as the stages + dvc commit leave it: workspace {disk['workspace_bytes'] / 1e6:.1f} "
            f"MB, cache {disk['cache_bytes'] / 1e6:.1f} MB, combined "
            f"{disk['combined_bytes'] / 1e6:.1f} MB; after dvc checkout --relink: combined "
            f"{relinked['combined_bytes'] / 1e6:.1f} MB",
        )
    return out


def machine() -> dict:
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 20000], help="clips per run")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/scale"))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/scale.json")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--demo-dir", type=Path, default=REPO / "data/raw/demo")
    parser.add_argument("--models-base", type=Path, default=REPO / "models/base")
    parser.add_argument(
        "--cache-type",
        help="override .dvc/config's cache.type in the temp repo, e.g. hardlink,copy",
    )
    parser.add_argument(
        "--keep-repos", action="store_true", help="keep each N's temp repo (default: delete)"
    )
    args = parser.parse_args(argv)
    for needed in (args.demo_dir / "validated.tsv", args.models_base / "config.json"):
        if not needed.is_file():
            parser.error(f"{needed} not found: run `dvc repro corpus base_model` first")
    args.workdir.mkdir(parents=True, exist_ok=True)
    runs = [
        run_one(
            n,
            args.seed,
            args.workdir,
            args.demo_dir,
            args.models_base,
            args.cache_type,
            args.keep_repos,
        )
        for n in sorted(set(args.n))
    ]
    checks = targets(runs)
    print()
    for c in checks:
        print(f"{c['result']:4s}  {c['target']}: {c['detail']}")
    report = {
        "benchmark": "scale",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": commit_id(),
        "command": shlex.join(
            ["python", "benchmarks/scale.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "machine": machine(),
        "runs": runs,
        "targets": checks,
    }
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
