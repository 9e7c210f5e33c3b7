"""`dvc repro` end to end on a few clips, in a copy of the repo, with the embedded default."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from swedish_transcriber.data.features import pad_features, stored_frames
from swedish_transcriber.whisper import N_FRAMES
from tests.repo_params import REPO
from tests.stage_runs import TRACKED, run

WORKFLOW = REPO / ".github" / "workflows" / "pull-request.yml"

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("pipeline")
    for item in TRACKED:
        src = REPO / item
        if not src.exists():
            continue
        if src.is_dir():
            shutil.copytree(src, repo / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (repo / item).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, repo / item)
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params["corpus"]["max_sentences"] = 20  # 32 train, 2 dev, 4 test clips
    params["data"]["max_clips"] = 6
    params["augment"].update(enabled=True, copies=1)  # exercise the augment stage too
    # Two decoder steps on the real embedded whisper-base: the whole DAG, minutes not hours.
    params["train"].update(
        learning_rate=5e-4,
        max_steps=4,
        batch_size=4,
        logging_steps=1,
        eval_steps=2,
        save_steps=2,
        warmup_steps=0,
        eval_max_clips=2,
        generation={**params["train"]["generation"], "batch_size": 4, "max_new_tokens": 24},
    )
    params["evaluate"]["max_clips"] = 3
    params["evaluate"]["decode"]["max_new_tokens"] = 32
    (repo / "params.yaml").write_text(
        yaml.safe_dump(params, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(git + ["commit", "-qm", "pipeline"], cwd=repo, check=True)
    run([sys.executable, "-m", "dvc", "repro"], repo)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(git + ["commit", "-qm", "baseline results"], cwd=repo, check=True)
    return repo


def test_repro_builds_features_from_raw_audio(pipeline):
    import datasets

    train = datasets.load_from_disk(str(pipeline / "data/features/train"))
    test = datasets.load_from_disk(str(pipeline / "data/features/test"))
    # 6 originals (max_clips) plus one augmented copy each, minus anything quarantined.
    quarantined = sum(
        len(__import__("pandas").read_parquet(pipeline / f"data/quarantine/{s}/quarantine.parquet"))
        for s in ("ingest", "validate", "augment", "featurize")
    )
    assert len(train) + quarantined >= 12 and len(train) >= 8
    assert len(test) >= 1
    row = train.with_format("numpy")[0]
    # Only the clip's own frames are stored (frames x mels); pad_features makes the window.
    assert row["input_features"].shape == (stored_frames(row["input_length"]), 80)
    assert pad_features([row["input_features"]], [row["pad_value"]]).shape == (1, 80, N_FRAMES)
    assert (pipeline / "models/base/config.json").is_file()
    report = json.loads((pipeline / "reports/validation.json").read_text(encoding="utf-8"))
    assert report, "validation report is empty"
    assert (pipeline / "reports/data_docs/index.html").is_file()
    assert (pipeline / "dvc.lock").is_file()
    # Nobody asked for the review queue (review.rank.enabled false, fraction 0): not ranked.
    queue = json.loads((pipeline / "reports/review_queue.json").read_text(encoding="utf-8"))
    assert queue["built"] is False and queue["clips"] == {"train": 0, "dev": 0}


def test_repro_fine_tunes_and_evaluates(pipeline):
    from transformers import WhisperForConditionalGeneration

    model = WhisperForConditionalGeneration.from_pretrained(pipeline / "models/finetuned")
    assert model.generation_config.language == "sv"
    result = json.loads((pipeline / "metrics/eval.json").read_text(encoding="utf-8"))
    demo = result["demo_test"]  # eval.json: set -> model -> rates
    for name in ("zero_shot", "finetuned", "ct2"):
        rates = {"wer", "cer", "wer_norm", "cer_norm", "wer_norm_low", "wer_norm_high"}
        assert set(demo[name]) == rates
        assert all(0 <= v < 10 for v in demo[name].values())
        assert demo[name]["wer_norm_low"] <= demo[name]["wer_norm"] <= demo[name]["wer_norm_high"]
    assert "relative_wer_reduction" in demo and demo["clips"] == 3
    predictions = __import__("pandas").read_csv(pipeline / "reports/predictions.csv")
    # Every set of evaluate.sets, real speech (data/eval/real-sv) included: 3 clips each.
    assert result["real_sv"]["clips"] == 3
    assert len(predictions) == 6 and set(predictions["set"]) == {"demo_test", "real_sv"}
    assert {"reference", "zero_shot", "finetuned", "ct2", "ct2_wer"} <= set(predictions.columns)
    slices = json.loads((pipeline / "metrics/slices.json").read_text(encoding="utf-8"))
    assert {r["group"] for r in slices} == {"gender", "age", "accent", "duration"}
    assert {r["model"] for r in slices} == {"zero_shot", "finetuned", "ct2"}
    tradeoff = json.loads((pipeline / "metrics/tradeoff.json").read_text(encoding="utf-8"))
    assert tradeoff[0]["model"] == "finetuned" and 0 <= tradeoff[0]["real_wer_norm"] < 10
    live = json.loads((pipeline / "dvclive/metrics.json").read_text(encoding="utf-8"))
    assert live["step"] == 4 and "wer_norm" in live["eval"]
    shown = run([sys.executable, "-m", "dvc", "metrics", "show", "--json"], pipeline).stdout
    # The DVC metrics: test WER with intervals and the dev metrics, not the data counts.
    assert "metrics/wer.json" in shown and "dvclive/metrics.json" in shown
    assert "reports/validation.json" not in shown and "metrics/eval.json" not in shown


def test_repro_exports_the_fine_tuned_model_for_the_page(pipeline):
    from dataclasses import replace

    import pandas as pd

    from swedish_transcriber.audio import load_audio
    from swedish_transcriber.serving.engines.contract import CTRANSLATE2, model_kind
    from swedish_transcriber.serving.engines.factory import load_engine
    from swedish_transcriber.serving.page import load_config

    ct2 = pipeline / "models/ct2"
    assert model_kind(ct2) == CTRANSLATE2
    info = json.loads((ct2 / "export_info.json").read_text(encoding="utf-8"))
    assert info["quantization"] == "int8"
    # int8 matrices: well under half the float32 checkpoint.
    assert (ct2 / "model.bin").stat().st_size < 0.5 * (
        pipeline / "models/finetuned/model.safetensors"
    ).stat().st_size
    clip = pd.read_parquet(pipeline / "data/validated/test.parquet").audio_file.iloc[0]
    config = load_config(pipeline / "params.yaml")  # the page's settings, a shorter cap
    options = replace(config.app.decode, max_new_tokens=32)
    engine = load_engine(ct2, config.language, options, config.app.engine)
    [text] = engine.transcribe([load_audio(pipeline / clip)])
    assert isinstance(text, str) and text.strip()


def test_second_repro_does_nothing(pipeline):
    proc = run([sys.executable, "-m", "dvc", "repro"], pipeline)
    out = proc.stdout + proc.stderr
    assert "didn't change, skipping" in out or "up to date" in out
    assert "Running stage" not in out


def test_dag_shows_the_whole_graph(pipeline):
    dot = run([sys.executable, "-m", "dvc", "dag", "--dot"], pipeline).stdout
    edges = {
        tuple(part.strip().strip('"') for part in line.strip().rstrip(";").split("->"))
        for line in dot.splitlines()
        if "->" in line
    }
    for edge in [
        ("base_model", "featurize"),
        ("corpus", "ingest"),
        ("ingest", "validate"),
        ("validate", "augment"),
        ("augment", "featurize"),
        ("validate", "featurize"),
        ("base_model", "train"),
        ("featurize", "train"),
        ("train", "rank"),
        ("rank", "retrain"),
        ("train", "retrain"),
        ("retrain", "merge"),
        ("base_model", "merge"),
        ("merge", "transcribe@finetuned"),
        ("base_model", "transcribe@zero_shot"),
        ("testset@demo_test", "transcribe@zero_shot"),
        ("transcribe@zero_shot", "evaluate"),
        ("transcribe@finetuned", "evaluate"),
        ("merge", "export"),
        ("export", "transcribe@ct2"),
        ("transcribe@ct2", "evaluate"),
    ]:
        assert edge in edges, f"{edge} missing from dvc dag: {sorted(edges)}"


def test_push_and_pull_through_a_local_remote(pipeline, tmp_path):
    """The README's remote workflow: push every output, lose it locally, pull it back."""
    remote = tmp_path / "remote"
    run([sys.executable, "-m", "dvc", "remote", "add", "-f", "-d", "local", str(remote)], pipeline)
    run([sys.executable, "-m", "dvc", "push"], pipeline)
    before = (pipeline / "data/features/train/dataset_info.json").read_bytes()
    shutil.rmtree(pipeline / "data/features")
    shutil.rmtree(pipeline / ".dvc/cache")
    run([sys.executable, "-m", "dvc", "pull"], pipeline)
    assert (pipeline / "data/features/train/dataset_info.json").read_bytes() == before
    status = run([sys.executable, "-m", "dvc", "status"], pipeline).stdout
    assert "up to date" in status


# --------------------------------------------------------------------------------------------
# Experiments on the same pipeline (these change the workspace, so they run last)


def metric_diff(repo: Path, *revs: str) -> dict:
    return json.loads(dvc("metrics", "diff", *revs, "--json", cwd=repo).stdout)


def dvc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "dvc", *args], cwd)


def test_two_experiments_differ_in_dvc_metrics_diff(pipeline):
    """HEAD trained with learning rate 5e-4; the experiment with 0 keeps the base model."""
    proc = dvc("exp", "run", "-n", "lr-zero", "-S", "train.learning_rate=0", cwd=pipeline)
    out = proc.stdout + proc.stderr
    assert "Running stage 'train'" in out
    assert "Running stage 'transcribe@zero_shot'" not in out  # the base model did not change
    result = json.loads((pipeline / "metrics/eval.json").read_text(encoding="utf-8"))
    demo = result["demo_test"]
    assert demo["finetuned"] == demo["zero_shot"]  # nothing learnt at learning rate 0
    diff = metric_diff(pipeline, "--targets", "metrics/eval.json")  # HEAD (5e-4) vs workspace (0)
    evaluated = diff["metrics/eval.json"]
    changed = {
        k for k, v in evaluated.items() if k.startswith("demo_test.finetuned.") and v.get("diff")
    }
    assert {"demo_test.finetuned.wer", "demo_test.finetuned.wer_norm"} & changed, evaluated
    assert not any(k.startswith("demo_test.zero_shot.") for k in evaluated)
    headline = metric_diff(pipeline)["metrics/wer.json"]  # the DVC metric: WER with intervals
    assert "demo_test.finetuned.wer_norm" in headline
    assert not any(k.startswith("demo_test.zero_shot.") for k in headline)
    assert "dvclive/metrics.json" in metric_diff(pipeline)  # the dev curves changed too

    shown = json.loads(dvc("exp", "show", "--json", cwd=pipeline).stdout)
    assert "lr-zero" in json.dumps(shown)
    exp_diff = dvc("exp", "diff", "HEAD", "lr-zero", "--md", cwd=pipeline).stdout
    assert "finetuned.wer" in exp_diff and "learning_rate" in exp_diff

    # The pull-request workflow's report, run the same way here.
    run(["bash", "scripts/metrics_report.sh", "HEAD", "report"], pipeline)
    report = (pipeline / "report" / "report.md").read_text(encoding="utf-8")
    assert "| metrics/eval.json" in report and "finetuned.wer" in report
    # The first table: every model on the set, WER with its interval and the paired change.
    first = report.split("### Every other figure")[0]
    assert "| demo_test | zero_shot |" in first and "| demo_test | finetuned |" in first
    assert "| demo_test | zero_shot |" in first and "+0.000 [+0.000, +0.000] |  |" in first
    assert "train.learning_rate" in report
    assert (pipeline / "report" / "plots" / "index.html").is_file()
    vega = json.loads((pipeline / "report" / "plots" / "dev_wer_vs_step.vega.json").read_text())
    assert vega, "empty Vega spec"
    tradeoff = json.loads(
        (pipeline / "report" / "plots" / "synthetic_vs_real_wer.vega.json").read_text()
    )
    assert {r["rev"] for r in tradeoff["data"]["values"]} == {"HEAD", "workspace"}


def test_review_decisions_and_auto_exclusion_in_one_experiment(pipeline):
    """A round of review (one clip excluded, one relabelled, written by the page's writer) and
    the automatic mode, in one `dvc exp run`: quarantine, relabel, a second training without
    the queue's top, and the effect in `dvc metrics diff`."""
    import pandas as pd

    from swedish_transcriber.review.decisions import Decision, record_decision

    subprocess.run(["git", "checkout", "--", "params.yaml"], cwd=pipeline, check=True)
    train = pd.read_parquet(pipeline / "data/validated/train.parquet")
    gone, fixed = str(train.path.iloc[0]), str(train.path.iloc[1])
    old_sentence = str(train.sentence.iloc[1])
    decisions = pipeline / "data/review/decisions.tsv"
    record_decision(decisions, Decision(path=gone, action="exclude", reason="a door slams"))
    record_decision(
        decisions, Decision(path=fixed, action="fix", sentence="Hej och välkommen.", reason="ord")
    )
    proc = dvc(
        "exp", "run", "-n", "curated", "-S", "review.auto_exclude_top_fraction=0.25", cwd=pipeline
    )
    out = proc.stdout + proc.stderr
    assert "Running stage 'validate'" in out and "Running stage 'retrain'" in out

    quarantine = pd.read_parquet(pipeline / "data/quarantine/validate/quarantine.parquet")
    row = quarantine[quarantine.path == gone]
    assert list(row.reason) == ["excluded by review: a door slams"]
    relabelled = pd.read_parquet(pipeline / "data/validated/train.parquet").set_index("path")
    assert gone not in relabelled.index
    assert relabelled.loc[fixed, "sentence"] == "Hej och välkommen."
    assert relabelled.loc[fixed, "original_sentence"] == old_sentence

    queue = pd.read_parquet(pipeline / "reports/review_queue.parquet")
    assert gone not in set(queue.path)  # the queue ranks what validate let through
    auto = pd.read_csv(pipeline / "reports/auto_excluded.csv")
    originals = int((queue.split == "train").sum())
    assert 0 < len(auto) <= -(-originals // 4) and fixed not in set(auto.path)
    info = json.loads((pipeline / "models/curated/train_info.json").read_text(encoding="utf-8"))
    assert info["excluded_clips"] == sorted(auto.path)

    # HEAD vs the workspace (the experiment's results); the counts are a report, not a metric.
    diff = metric_diff(pipeline, "--targets", "reports/validation.json")
    curation = diff["reports/validation.json"]
    assert curation["curation.excluded"]["new"] == 1 and curation["curation.fixed"]["new"] == 1
    # Test WER of the model trained without those clips, beside HEAD's (equal or not: 3 clips).
    every = json.loads(dvc("metrics", "diff", "--all", "--json", cwd=pipeline).stdout)
    assert "demo_test.finetuned.wer_norm" in every["metrics/wer.json"]
    exp_diff = dvc("exp", "diff", "HEAD", "curated", "--md", cwd=pipeline).stdout
    assert "auto_exclude_top_fraction" in exp_diff


def test_pull_request_workflow_is_valid_and_uses_the_tested_commands():
    """The workflow cannot run here; its YAML and the commands it runs are checked."""
    spec = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert spec[True]["pull_request"]["branches"] == ["main"]  # YAML 1.1 reads `on` as True
    assert spec["permissions"]["pull-requests"] == "write"
    steps = spec["jobs"]["repro"]["steps"]
    commands = "\n".join(step.get("run", "") for step in steps)
    assert "dvc repro" in commands
    assert "scripts/metrics_report.sh origin/main report" in commands
    assert "gh pr comment" in commands and "report/report.md" in commands
    assert "make setup" in commands
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0  # main's metrics come from git history


def test_a_queued_sweep_expands_to_one_experiment_per_value(pipeline):
    """The README's sweep: `dvc exp run --queue` with comma-separated values (Hydra syntax)."""
    dvc("exp", "run", "--queue", "-S", "train.learning_rate=0.001,0.01,0.1", cwd=pipeline)
    try:
        status = dvc("queue", "status", cwd=pipeline).stdout
        assert status.count("Queued") == 3, status
    finally:
        dvc("queue", "remove", "--all", cwd=pipeline)
