"""`dvc repro` end to end on a few clips, in a copy of the repo, with the embedded default.

The experiments on a pipeline (`dvc exp run`, `dvc metrics diff`, the review loop, the
pull-request report) are in test_pipeline_experiments.py, on a tiny model.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from swedish_transcriber.data.features import pad_features, stored_frames
from swedish_transcriber.whisper import N_FRAMES
from tests.repo_params import REPO
from tests.stage_runs import run, small_pipeline

WORKFLOW = REPO / ".github" / "workflows" / "pull-request.yml"

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Path:
    """The embedded whisper-base through every stage (tests/stage_runs.small_pipeline)."""
    return small_pipeline(tmp_path_factory.mktemp("pipeline"))


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
