"""`dvc metrics show` leads with test WER per set and model; data counts are not metrics."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.repo_params import REPO

pytestmark = pytest.mark.slow  # two dvc commands, a few seconds each

MODELS = ("zero_shot", "finetuned", "ct2")


def test_dvc_metrics_show_first_table_is_narrow(tmp_path):
    for name in ("dvc.yaml", "params.yaml", "dvclive/metrics.json", "reports/validation.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, tmp_path / name)
    sets = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))["evaluate"]["sets"]
    rates = {"wer_norm": 0.8, "wer_norm_low": 0.75, "wer_norm_high": 0.85}
    wer = {s: {m: rates for m in MODELS} for s in sets}
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics/wer.json").write_text(json.dumps(wer), encoding="utf-8")
    (tmp_path / "metrics/eval.json").write_text(json.dumps({"x": {"clips": 1}}), encoding="utf-8")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=tmp_path, check=True)
    shown = subprocess.run(
        [sys.executable, "-m", "dvc", "metrics", "show", "--md"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    first = shown.strip().split("\n\n")[0].splitlines()
    header = [c.strip() for c in first[0].strip("|").split("|")]
    per_set = len(MODELS) * len(rates)
    # Path, then WER with its interval per set and model, and the dev metrics (DVCLive's
    # eval.*, step, train.*). DVC sorts the columns by name, so the dev metrics stand between
    # sets named before and after "eval"; the first set leads.
    wer_columns = [
        f"{s}.{m}.{k}" for s in sorted(sets) for m in sorted(MODELS) for k in sorted(rates)
    ]
    assert [c for c in header if c in wer_columns] == wer_columns
    assert header[1 : 1 + per_set] == wer_columns[:per_set]
    dev = [c for c in header[1:] if c not in wer_columns]
    assert all(c.startswith(("eval.", "train.")) or c == "step" for c in dev), dev
    assert len(header) <= 1 + per_set * len(sets) + 12, header
    assert not [c for c in header if c.startswith(("failed", "curation", "train_", "clips"))]
    assert [r.split("|")[1].strip() for r in first[2:]] == [
        "dvclive/metrics.json",
        "metrics/wer.json",
    ]
    # About 250 characters a set and 350 for the path and dev metrics (one set with the data
    # counts was 1,876).
    assert max(len(line) for line in first) < 250 * len(sets) + 350
