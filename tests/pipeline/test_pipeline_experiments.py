"""Experiments on a pipeline as a user runs them: one `dvc exp run` that changes a param,
records review decisions and turns on auto-exclusion; `dvc metrics diff`, `dvc exp diff`, the
pull-request report and a queued sweep.

The pipeline is tests/stage_runs.small_pipeline on a tiny random Whisper (``local:``, the real
tokenizer): these tests are about DVC and the review loop, and test_pipeline_integration.py
runs the embedded whisper-base through every stage. Run on two workers, the two files build
their pipelines side by side.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.stage_runs import run, small_pipeline
from tests.tiny import save_tiny_base

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FIXED = "Hej och välkommen."


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Path:
    """HEAD: the tiny model's decoder trained at a high rate and kept whole (merge.alpha 1), so
    the experiment's learning rate 0 (the base model again) changes the test WER."""
    tiny = save_tiny_base(tmp_path_factory.mktemp("tiny") / "base")

    def tiny_model(params: dict) -> None:
        params["model"]["source"] = f"local:{tiny}"
        params["train"].update(learning_rate=1e-2, trainable=["decoder"])
        params["train"]["distill"]["weight"] = 0.0
        params["merge"]["alpha"] = 1.0

    return small_pipeline(tmp_path_factory.mktemp("pipeline"), tiny_model)


def dvc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "dvc", *args], cwd)


def metric_diff(repo: Path, *revs: str) -> dict:
    return json.loads(dvc("metrics", "diff", *revs, "--json", cwd=repo).stdout)


@pytest.fixture(scope="module")
def experiment(pipeline) -> dict:
    """One round of review (a clip excluded, one relabelled, written by the page's writer),
    learning rate 0 and the automatic mode, in one `dvc exp run`."""
    from swedish_transcriber.review.decisions import Decision, record_decision

    train = pd.read_parquet(pipeline / "data/validated/train.parquet")
    gone, fixed = str(train.path.iloc[0]), str(train.path.iloc[1])
    decisions = pipeline / "data/review/decisions.tsv"
    record_decision(decisions, Decision(path=gone, action="exclude", reason="a door slams"))
    record_decision(decisions, Decision(path=fixed, action="fix", sentence=FIXED, reason="ord"))
    proc = dvc(
        "exp",
        "run",
        "-n",
        "curated",
        "-S",
        "train.learning_rate=0",
        "-S",
        "review.auto_exclude_top_fraction=0.25",
        cwd=pipeline,
    )
    return {
        "out": proc.stdout + proc.stderr,
        "gone": gone,
        "fixed": fixed,
        "old_sentence": str(train.sentence.iloc[1]),
    }


def test_the_experiment_runs_what_changed_and_shows_in_dvc_metrics_diff(pipeline, experiment):
    out = experiment["out"]
    assert "Running stage 'validate'" in out and "Running stage 'train'" in out
    # The test clips' features came out the same, so the base model's transcripts stand.
    assert "Running stage 'transcribe@zero_shot'" not in out
    demo = json.loads((pipeline / "metrics/eval.json").read_text(encoding="utf-8"))["demo_test"]
    assert demo["finetuned"] == demo["zero_shot"]  # nothing learnt at learning rate 0
    evaluated = metric_diff(pipeline, "--targets", "metrics/eval.json")["metrics/eval.json"]
    changed = {
        k for k, v in evaluated.items() if k.startswith("demo_test.finetuned.") and v.get("diff")
    }
    assert {"demo_test.finetuned.wer", "demo_test.finetuned.wer_norm"} & changed, evaluated
    assert not any(k.startswith("demo_test.zero_shot.") for k in evaluated)
    headline = metric_diff(pipeline)["metrics/wer.json"]  # the DVC metric: WER with intervals
    assert "demo_test.finetuned.wer_norm" in headline
    assert not any(k.startswith("demo_test.zero_shot.") for k in headline)
    assert "dvclive/metrics.json" in metric_diff(pipeline)  # the dev curves changed too

    assert "curated" in json.dumps(json.loads(dvc("exp", "show", "--json", cwd=pipeline).stdout))
    exp_diff = dvc("exp", "diff", "HEAD", "curated", "--md", cwd=pipeline).stdout
    for shown in ("finetuned.wer", "learning_rate", "auto_exclude_top_fraction"):
        assert shown in exp_diff, exp_diff


def test_the_pull_request_report_compares_head_with_the_experiment(pipeline, experiment):
    run(["bash", "scripts/metrics_report.sh", "HEAD", "report"], pipeline)
    report = (pipeline / "report" / "report.md").read_text(encoding="utf-8")
    assert "| metrics/eval.json" in report and "finetuned.wer" in report
    # The first table: every model on the set, WER with its interval and the paired change.
    first = report.split("### Every other figure")[0]
    assert "| demo_test | finetuned |" in first
    assert "| demo_test | zero_shot |" in first and "+0.000 [+0.000, +0.000] |  |" in first
    assert "train.learning_rate" in report
    assert (pipeline / "report" / "plots" / "index.html").is_file()
    vega = json.loads((pipeline / "report" / "plots" / "dev_wer_vs_step.vega.json").read_text())
    assert vega, "empty Vega spec"
    tradeoff = json.loads(
        (pipeline / "report" / "plots" / "synthetic_vs_real_wer.vega.json").read_text()
    )
    assert {r["rev"] for r in tradeoff["data"]["values"]} == {"HEAD", "workspace"}


def test_review_decisions_and_auto_exclusion_take_effect(pipeline, experiment):
    """Quarantine, relabel, a second training without the queue's top (its scores out of
    sample: cross-fitting trained a model per fold), and the counts in the report diff."""
    gone, fixed = experiment["gone"], experiment["fixed"]
    assert "Running stage 'retrain'" in experiment["out"]
    quarantine = pd.read_parquet(pipeline / "data/quarantine/validate/quarantine.parquet")
    assert list(quarantine[quarantine.path == gone].reason) == ["excluded by review: a door slams"]
    relabelled = pd.read_parquet(pipeline / "data/validated/train.parquet").set_index("path")
    assert gone not in relabelled.index
    assert relabelled.loc[fixed, "sentence"] == FIXED
    assert relabelled.loc[fixed, "original_sentence"] == experiment["old_sentence"]

    queue = pd.read_parquet(pipeline / "reports/review_queue.parquet")
    assert gone not in set(queue.path)  # the queue ranks what validate let through
    train = queue[queue.split == "train"]
    assert set(train.scored_by) <= {"fold-0-of-2", "fold-1-of-2"} and train.oos_loss.notna().all()
    auto = pd.read_csv(pipeline / "reports/auto_excluded.csv")
    assert 0 < len(auto) <= -(-len(train) // 4) and fixed not in set(auto.path)
    info = json.loads((pipeline / "models/curated/train_info.json").read_text(encoding="utf-8"))
    assert info["excluded_clips"] == sorted(auto.path)

    # HEAD vs the workspace (the experiment's results); the counts are a report, not a metric.
    curation = metric_diff(pipeline, "--targets", "reports/validation.json")
    counts = curation["reports/validation.json"]
    assert counts["curation.excluded"]["new"] == 1 and counts["curation.fixed"]["new"] == 1
    every = json.loads(dvc("metrics", "diff", "--all", "--json", cwd=pipeline).stdout)
    assert "demo_test.finetuned.wer_norm" in every["metrics/wer.json"]


def test_a_queued_sweep_expands_to_one_experiment_per_value(pipeline, experiment):
    """The README's sweep: `dvc exp run --queue` with comma-separated values (Hydra syntax)."""
    dvc("exp", "run", "--queue", "-S", "train.learning_rate=0.001,0.01,0.1", cwd=pipeline)
    try:
        status = dvc("queue", "status", cwd=pipeline).stdout
        assert status.count("Queued") == 3, status
    finally:
        dvc("queue", "remove", "--all", cwd=pipeline)
