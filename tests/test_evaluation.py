"""Scoring test transcripts (eval.json, predictions.csv, slices.json) and the transcribe stage."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess

import pandas as pd
import pytest
import yaml

from swedish_transcriber.evaluation.report import (
    duration_bucket,
    join,
    metrics,
    predictions,
    read_transcripts,
    slices,
    utterance_wer,
)
from swedish_transcriber.evaluation.transcription import EvaluateParams
from swedish_transcriber.stage import main
from swedish_transcriber.whisper import DecodeOptions
from tests.dvc_stages import stage_command
from tests.repo_params import repo_params
from tests.tiny import save_tiny_base, save_tiny_features

REFS = ["Det regnar i Göteborg.", "Hon cyklar till jobbet.", "Vi äter middag."]


def transcripts(hypotheses: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "path": ["a.mp3", "b.mp3", "c.mp3"],
            "client_id": ["s1", "s2", "s1"],
            "gender": ["female_feminine", "male_masculine", "female_feminine"],
            "age": ["twenties", "", "twenties"],
            "accent": ["Skånska", "Skånska", "Stockholmska"],
            "duration": [1.5, 3.0, 7.0],
            "reference": REFS,
            "hypothesis": hypotheses,
        }
    )


@pytest.fixture
def joined() -> pd.DataFrame:
    zero_shot = transcripts(["det regnar i göteborg", "hon cyklar", "vi åt middag och sen"])
    # The fine-tuned model's file lists the clips in another order: join is by path.
    finetuned = transcripts(["Det regnar i Göteborg!", "Hon cyklar till jobbet.", "Vi äter."])
    finetuned = finetuned.iloc[::-1].reset_index(drop=True)
    return join({"zero_shot": zero_shot, "finetuned": finetuned})


def test_join_matches_clips_by_path(joined):
    assert list(joined["path"]) == ["a.mp3", "b.mp3", "c.mp3"]
    assert list(joined["finetuned"]) == [
        "Det regnar i Göteborg!",
        "Hon cyklar till jobbet.",
        "Vi äter.",
    ]


def test_join_refuses_different_clip_sets():
    with pytest.raises(ValueError, match="cover different clips"):
        join(
            {"zero_shot": transcripts(["a", "b", "c"]), "finetuned": transcripts(["a"] * 3).head(2)}
        )


def test_metrics_are_fractions_with_the_relative_reduction(joined):
    result = metrics(joined)
    assert set(result) == {"zero_shot", "finetuned", "relative_wer_reduction", "test_clips"}
    for name in ("zero_shot", "finetuned"):
        assert set(result[name]) == {"wer", "cer", "wer_norm", "cer_norm"}
    # zero-shot, normalised: 0 + 2 deletions + (1 sub + 2 ins) = 5 errors / 11 words
    assert result["zero_shot"]["wer_norm"] == pytest.approx(5 / 11, abs=1e-6)
    # fine-tuned, normalised: only "middag" deleted: 1 / 11
    assert result["finetuned"]["wer_norm"] == pytest.approx(1 / 11, abs=1e-6)
    assert result["relative_wer_reduction"] == pytest.approx(0.8, abs=1e-5)
    # Raw WER counts case and punctuation: "Göteborg!" vs "Göteborg." and "äter." vs "äter"
    assert result["finetuned"]["wer"] > result["finetuned"]["wer_norm"]
    assert result["test_clips"] == 3


def test_predictions_have_per_utterance_wer(joined):
    table = predictions(joined)
    assert list(table.columns[-2:]) == ["zero_shot_wer", "finetuned_wer"]
    assert table["finetuned_wer"].tolist() == pytest.approx([0.0, 0.0, 1 / 3], abs=1e-6)
    assert utterance_wer("Hej!", "hej") == 0.0
    assert math.isnan(utterance_wer("...", "hej"))


def test_duration_buckets():
    edges = (2.0, 4.0, 6.0)
    assert duration_bucket(0.5, edges) == "0-2 s"
    assert duration_bucket(2.0, edges) == "2-4 s"
    assert duration_bucket(5.9, edges) == "4-6 s"
    assert duration_bucket(30.0, edges) == ">=6 s"


def test_slices_by_group_and_duration(joined):
    records = {r["slice"]: r for r in slices(joined, (2.0, 4.0, 6.0))}
    assert set(records) == {
        "gender: female_feminine",
        "gender: male_masculine",
        "age: twenties",
        "age: unknown",
        "accent: Skånska",
        "accent: Stockholmska",
        "duration: 0-2 s",
        "duration: 2-4 s",
        "duration: >=6 s",
    }
    female = records["gender: female_feminine"]
    assert female["clips"] == 2
    assert female["finetuned_wer"] == pytest.approx(1 / 7, abs=1e-6)  # 1 deletion over 4 + 3 words
    assert records["duration: 2-4 s"]["zero_shot_wer"] == pytest.approx(0.5)


def test_transcripts_file_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="zero_shot.csv"):
        read_transcripts(tmp_path / "zero_shot.csv")
    bad = tmp_path / "finetuned.csv"
    bad.write_text("path,reference\na.mp3,hej\n", encoding="utf-8")
    with pytest.raises(ValueError, match="finetuned.csv: missing column"):
        read_transcripts(bad)


def test_evaluate_params_are_checked():
    with pytest.raises(ValueError, match="duration_buckets"):
        repo_params("evaluate", EvaluateParams, duration_buckets=(4.0, 2.0))
    with pytest.raises(ValueError, match="num_beams must be >= 1"):
        repo_params("evaluate.decode", DecodeOptions, num_beams=0)
    with pytest.raises(ValueError, match="max_new_tokens must be <= 224"):
        repo_params("evaluate.decode", DecodeOptions, max_new_tokens=225)


@pytest.mark.slow  # runs the transcribe and evaluate stages in subprocesses
def test_transcribe_and_evaluate_stages_on_a_tiny_model(repo_copy):
    repo = repo_copy()
    save_tiny_base(repo / "models" / "base")
    save_tiny_features(repo / "data" / "features", train=2, dev=2, test=5)
    params_file = repo / "params.yaml"
    params = yaml.safe_load(params_file.read_text(encoding="utf-8"))
    params["evaluate"]["decode"].update(batch_size=2, num_beams=2, max_new_tokens=8)
    params_file.write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    shutil.copytree(repo / "models" / "base", repo / "models" / "finetuned")  # stands in
    env = dict(os.environ, PYTHONPATH=str(repo))
    for name in ("zero_shot", "finetuned"):
        subprocess.run(
            stage_command(f"transcribe@{name}", repo),
            cwd=repo,
            env=env,
            check=True,
            capture_output=True,
        )
    subprocess.run(
        stage_command("evaluate", repo),
        cwd=repo,
        env=env,
        check=True,
        capture_output=True,
    )
    table = read_transcripts(repo / "reports" / "transcripts" / "zero_shot.csv")
    assert len(table) == 5 and table["reference"].str.len().min() > 0
    result = json.loads((repo / "metrics" / "eval.json").read_text(encoding="utf-8"))
    assert result["zero_shot"] == result["finetuned"]
    assert result["relative_wer_reduction"] == 0.0
    assert result["test_clips"] == 5
    assert len(pd.read_csv(repo / "reports" / "predictions.csv")) == 5
    plot = json.loads((repo / "metrics" / "slices.json").read_text(encoding="utf-8"))
    assert {"slice", "group", "clips", "zero_shot_wer", "finetuned_wer"} <= set(plot[0])


def test_transcribe_without_a_model_is_a_clear_error(repo_copy, monkeypatch, capsys):
    import stages.transcribe

    repo = repo_copy()
    save_tiny_features(repo / "data" / "features", train=1, dev=1, test=1)
    monkeypatch.chdir(repo)  # in this process: the stage's libraries are imported already
    with pytest.raises(SystemExit) as exit_info:
        main(
            stages.transcribe.run,
            ["models/finetuned", "data/features", "reports/transcripts/finetuned.csv"],
        )
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "transcribe: error: models/finetuned: no transformers checkpoint" in err
    assert not (repo / "reports").exists()
