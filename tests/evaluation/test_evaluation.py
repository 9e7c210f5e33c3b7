"""Scoring every model on every test set: eval.json, predictions.csv, slices.json, tradeoff.json.

The transcripts here are written by hand (two sets x three models), so every figure is
checked against a count of errors done on paper.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from swedish_transcriber.data import testsets
from swedish_transcriber.evaluation.intervals import BootstrapParams
from swedish_transcriber.evaluation.report import (
    TRANSCRIPT_COLUMNS,
    check_models,
    duration_bucket,
    join,
    load_set,
    predictions,
    read_transcripts,
    set_metrics,
    slices,
    transcript_file,
    transcripts_frame,
    utterance_wer,
)
from swedish_transcriber.evaluation.tradeoff import tradeoff
from swedish_transcriber.evaluation.transcription import EvaluateParams
from swedish_transcriber.stage import main
from swedish_transcriber.whisper import DecodeOptions
from tests.dvc_stages import stage_args
from tests.messages import assert_a_line_names, raises_naming
from tests.repo_params import REPO, repo_params, write_params

MODELS = ("zero_shot", "finetuned", "ct2")
BOOTSTRAP = BootstrapParams(resamples=999, seed=0, confidence=0.95, min_speakers=10)
DEMO_REFS = ["Det regnar i Göteborg.", "Hon cyklar till jobbet.", "Vi äter middag."]  # 4+4+3
REAL_REFS = ["Jag heter Anna.", "Tack så mycket!"]  # 3+3 words
HYPOTHESES = {
    "demo_test": {
        # normalised: 0 + 2 deletions + (1 substitution + 2 insertions) = 5 / 11
        "zero_shot": ["det regnar i göteborg", "hon cyklar", "vi åt middag och sen"],
        # normalised: only "middag" deleted, 1 / 11
        "finetuned": ["Det regnar i Göteborg!", "Hon cyklar till jobbet.", "Vi äter."],
        # normalised: perfect; as written, "middag" for "middag." is 1 / 11
        "ct2": ["Det regnar i Göteborg.", "Hon cyklar till jobbet.", "Vi äter middag"],
    },
    "real_sv": {
        "zero_shot": ["jag heter anna", "tack"],  # normalised: 2 deletions, 2 / 6
        "finetuned": ["Jag hette Anna.", "Tack så mycket!"],  # 1 / 6
        # normalised 1 / 6; as written "hette", "Anna" and "mycket" are wrong: 3 / 6
        "ct2": ["Jag hette Anna", "Tack så mycket"],
    },
}
SETS = {
    # (imported as testsets.TestSet: pytest would try to collect a TestSet class as tests)
    "demo_test": testsets.TestSet("features", "data/features", "test", "synthetic"),
    "real_sv": testsets.TestSet("pairs", "../real-sv", "", "real"),
}


def transcripts(set_name: str, hypotheses: list[str]) -> pd.DataFrame:
    """One model's file of one set: the demo set has speaker metadata, the real one none."""
    if set_name == "demo_test":
        meta = {
            "path": ["a.mp3", "b.mp3", "c.mp3"],
            "client_id": ["s1", "s2", "s1"],
            "gender": ["female_feminine", "male_masculine", "female_feminine"],
            "age": ["twenties", "", "twenties"],
            "accent": ["Skånska", "Skånska", "Stockholmska"],
            "duration": [1.5, 3.0, 7.0],
            "reference": DEMO_REFS,
        }
    else:
        meta = {
            "path": ["anna.wav", "tack.wav"],
            "client_id": ["", ""],
            "gender": ["", ""],
            "age": ["", ""],
            "accent": ["", ""],
            "duration": [2.5, 1.0],
            "reference": REAL_REFS,
        }
    return pd.DataFrame({**meta, "hypothesis": hypotheses})


def write_transcripts(root: Path, models=MODELS) -> Path:
    """``root/<model>/<set>.csv`` for every model and set; the ct2 files list clips reversed."""
    for set_name, by_model in HYPOTHESES.items():
        for model in models:
            table = transcripts(set_name, by_model[model])
            if model == "ct2":  # joined by path, not by row order
                table = table.iloc[::-1]
            file = transcript_file(root, model, set_name)
            file.parent.mkdir(parents=True, exist_ok=True)
            table.to_csv(file, index=False)
    return root


@pytest.fixture
def transcripts_dir(tmp_path) -> Path:
    return write_transcripts(tmp_path / "transcripts")


def test_join_matches_clips_by_path(transcripts_dir):
    joined = load_set(transcripts_dir, "demo_test", MODELS)
    assert list(joined["set"]) == ["demo_test"] * 3
    assert list(joined["path"]) == ["a.mp3", "b.mp3", "c.mp3"]
    assert list(joined["ct2"]) == HYPOTHESES["demo_test"]["ct2"]
    assert list(joined.columns) == ["set", *TRANSCRIPT_COLUMNS[:-1], *MODELS]


def test_metrics_per_set_and_model_are_exact(transcripts_dir):
    demo = set_metrics(load_set(transcripts_dir, "demo_test", MODELS), MODELS, BOOTSTRAP)
    real = set_metrics(load_set(transcripts_dir, "real_sv", MODELS), MODELS, BOOTSTRAP)
    assert set(demo) == {
        "clips",
        "speakers",
        "bootstrap_units",
        *MODELS,
        "relative_wer_reduction",
        "differences",
    }
    assert demo["clips"] == 3 and real["clips"] == 2
    assert set(demo["differences"]) == {"finetuned-zero_shot", "ct2-zero_shot", "ct2-finetuned"}
    for model in MODELS:
        assert set(demo[model]) == {
            "wer",
            "cer",
            "wer_norm",
            "cer_norm",
            "wer_norm_low",
            "wer_norm_high",
        }
        assert demo[model]["wer_norm_low"] <= demo[model]["wer_norm"]
        assert demo[model]["wer_norm"] <= demo[model]["wer_norm_high"]
    expected = {
        ("demo_test", "zero_shot"): 5 / 11,
        ("demo_test", "finetuned"): 1 / 11,
        ("demo_test", "ct2"): 0.0,
        ("real_sv", "zero_shot"): 2 / 6,
        ("real_sv", "finetuned"): 1 / 6,
        ("real_sv", "ct2"): 1 / 6,
    }
    for (set_name, model), value in expected.items():
        result = demo if set_name == "demo_test" else real
        assert result[model]["wer_norm"] == pytest.approx(value, abs=1e-6), (set_name, model)
    assert demo["ct2"]["wer"] == pytest.approx(1 / 11, abs=1e-6)  # "middag" vs "middag."
    assert real["ct2"]["wer"] == pytest.approx(3 / 6, abs=1e-6)
    assert demo["relative_wer_reduction"] == pytest.approx(0.8, abs=1e-5)
    assert real["relative_wer_reduction"] == pytest.approx(0.5, abs=1e-5)
    # Without both halves of the pair there is no reduction to report.
    only = set_metrics(load_set(transcripts_dir, "real_sv", ["ct2"]), ["ct2"], BOOTSTRAP)
    assert set(only) == {"clips", "speakers", "bootstrap_units", "ct2"}


def test_predictions_have_a_set_column_and_per_utterance_wer(transcripts_dir):
    joined = load_set(transcripts_dir, "real_sv", MODELS)
    table = predictions(joined, MODELS)
    assert list(table.columns[-3:]) == ["zero_shot_wer", "finetuned_wer", "ct2_wer"]
    assert table["zero_shot_wer"].tolist() == pytest.approx([0.0, 2 / 3], abs=1e-6)
    assert table["ct2_wer"].tolist() == pytest.approx([1 / 3, 0.0], abs=1e-6)
    assert utterance_wer("Hej!", "hej") == 0.0
    assert math.isnan(utterance_wer("...", "hej"))


def test_duration_buckets():
    edges = (2.0, 4.0, 6.0)
    assert duration_bucket(0.5, edges) == "0-2 s"
    assert duration_bucket(2.0, edges) == "2-4 s"
    assert duration_bucket(5.9, edges) == "4-6 s"
    assert duration_bucket(30.0, edges) == ">=6 s"


def test_slices_by_set_model_group_and_duration(transcripts_dir):
    edges = (2.0, 4.0, 6.0)
    demo = slices(load_set(transcripts_dir, "demo_test", MODELS), MODELS, edges)
    rows = {(r["model"], r["slice"]): r for r in demo}
    assert {s for _, s in rows} == {
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
    assert len(demo) == 9 * 3  # every slice for each of the three models
    female = rows[("finetuned", "gender: female_feminine")]
    assert female["set"] == "demo_test" and female["group"] == "gender" and female["clips"] == 2
    assert female["wer"] == pytest.approx(1 / 7, abs=1e-6)  # 1 deletion over 4 + 3 words
    assert female["label"] == "demo_test | finetuned | gender: female_feminine"
    assert rows[("zero_shot", "duration: 2-4 s")]["wer"] == pytest.approx(0.5)
    # The real set has no speaker metadata: only its duration slices, no "unknown" bars.
    real = slices(load_set(transcripts_dir, "real_sv", MODELS), MODELS, edges)
    assert {r["slice"] for r in real} == {"duration: 0-2 s", "duration: 2-4 s"}
    short = next(r for r in real if r["model"] == "zero_shot" and r["slice"] == "duration: 0-2 s")
    assert short["wer"] == pytest.approx(2 / 3, abs=1e-6)  # "tack" for "Tack så mycket!"


def test_tradeoff_rows_and_a_missing_real_set(transcripts_dir):
    results = {
        s: set_metrics(load_set(transcripts_dir, s, MODELS), MODELS, BOOTSTRAP) for s in SETS
    }
    rows = tradeoff(results, SETS, MODELS)
    assert [r["model"] for r in rows] == ["finetuned", "zero_shot"]
    assert rows[0]["synthetic_wer_norm"] == pytest.approx(1 / 11, abs=1e-6)
    assert rows[0]["real_wer_norm"] == pytest.approx(1 / 6, abs=1e-6)
    assert rows[1]["synthetic_wer_norm"] == pytest.approx(5 / 11, abs=1e-6)
    assert rows[0]["synthetic_set"] == "demo_test" and rows[0]["real_set"] == "real_sv"
    synthetic_only = {"demo_test": SETS["demo_test"]}
    rows = tradeoff({"demo_test": results["demo_test"]}, synthetic_only, ["finetuned"])
    assert rows == [
        {
            "model": "finetuned",
            "synthetic_wer_norm": results["demo_test"]["finetuned"]["wer_norm"],
            "real_wer_norm": None,
            "synthetic_set": "demo_test",
            "real_set": "",
        }
    ]
    # Neither finetuned nor zero_shot scored: every model gets its row.
    assert [r["model"] for r in tradeoff(results, SETS, ["ct2"])] == ["ct2"]


def test_transcripts_of_a_set_without_metadata_or_paths():
    """A wav/txt folder has no speakers; without paths too, rows are numbered."""
    import datasets

    table = datasets.Dataset.from_dict({"sentence": REAL_REFS, "duration": [2.5, 1.0]})
    frame = transcripts_frame(table, ["jag heter anna", "tack"])
    assert list(frame.columns) == list(TRANSCRIPT_COLUMNS)
    assert frame["path"].tolist() == ["000000", "000001"]
    assert frame[["client_id", "gender", "age", "accent"]].to_numpy().tolist() == [[""] * 4] * 2
    assert frame["reference"].tolist() == REAL_REFS
    with raises_naming(ValueError, 1, 2):  # transcripts and clips
        transcripts_frame(table, ["hej"])
    with raises_naming(ValueError, "duration"):  # the missing column
        transcripts_frame(table.remove_columns("duration"), ["a", "b"])


# ------------------------------------------------------------------------------ errors


def test_a_missing_transcript_file_names_the_set_and_the_file(transcripts_dir):
    transcript_file(transcripts_dir, "ct2", "real_sv").unlink()
    missing = transcript_file(transcripts_dir, "ct2", "real_sv")
    with raises_naming(FileNotFoundError, "real_sv", missing, "dvc repro transcribe@ct2"):
        load_set(transcripts_dir, "real_sv", MODELS)


def test_different_clips_name_the_set_and_both_files(transcripts_dir):
    file = transcript_file(transcripts_dir, "finetuned", "demo_test")
    table = pd.read_csv(file)
    table.iloc[:2].to_csv(file, index=False)
    first = transcript_file(transcripts_dir, "zero_shot", "demo_test")
    with raises_naming(ValueError, "demo_test", file, first, "dvc repro transcribe"):
        load_set(transcripts_dir, "demo_test", MODELS)
    table.loc[0, "reference"] = "Något annat."
    table.to_csv(file, index=False)
    with raises_naming(ValueError, "demo_test", file, first, "'a.mp3'", "dvc repro transcribe"):
        load_set(transcripts_dir, "demo_test", MODELS)


def test_transcripts_file_errors_name_the_file(tmp_path):
    with raises_naming(FileNotFoundError, tmp_path / "zero_shot.csv"):
        read_transcripts(tmp_path / "zero_shot.csv")
    bad = tmp_path / "finetuned.csv"
    bad.write_text("path,reference\na.mp3,hej\n", encoding="utf-8")
    with raises_naming(ValueError, bad, "hypothesis"):  # the missing column
        read_transcripts(bad)
    twice = tmp_path / "twice.csv"
    pd.concat([transcripts("real_sv", ["a", "b"])] * 2).to_csv(twice, index=False)
    with raises_naming(ValueError, twice, "'anna.wav'"):
        read_transcripts(twice)
    with raises_naming(ValueError, "real_sv", "z.csv", "f.csv", "dvc repro transcribe"):
        join(
            "real_sv",
            {
                "zero_shot": (Path("z.csv"), transcripts("real_sv", ["a", "b"])),
                "finetuned": (Path("f.csv"), transcripts("real_sv", ["a", "b"]).head(1)),
            },
        )


def test_model_names_that_collide_are_refused():
    check_models(MODELS)
    with raises_naming(ValueError, "evaluate.models", "clips", "reference"):
        check_models(["zero_shot", "reference", "clips"])


def test_evaluate_params_are_checked():
    with raises_naming(ValueError, "duration_buckets", "[4.0, 2.0]"):
        repo_params("evaluate", EvaluateParams, duration_buckets=(4.0, 2.0))
    with raises_naming(ValueError, "num_beams", ">= 1", 0):
        repo_params("evaluate.decode", DecodeOptions, num_beams=0)
    with raises_naming(ValueError, "max_new_tokens", "<= 224", 225):
        repo_params("evaluate.decode", DecodeOptions, max_new_tokens=225)


# ------------------------------------------------------------------------------ the stage


def set_params(repo: Path, sets: dict[str, dict], models: dict[str, str]) -> None:
    write_params(repo, {"evaluate.sets": sets, "evaluate.models": models})


REAL_SET = {"format": "pairs", "path": "../real-sv", "split": "", "speech": "real"}
DEMO_SET = {"format": "features", "path": "data/features", "split": "test", "speech": "synthetic"}
MODEL_DIRS = {"zero_shot": "models/base", "finetuned": "models/finetuned", "ct2": "models/ct2"}


def test_evaluate_stage_writes_its_files(repo_copy, monkeypatch, capsys):
    import stages.evaluate

    repo = repo_copy()
    set_params(repo, {"demo_test": DEMO_SET, "real_sv": REAL_SET}, MODEL_DIRS)
    write_transcripts(repo / "reports" / "transcripts")
    monkeypatch.chdir(repo)
    main(stages.evaluate.run, stage_args("evaluate", repo))
    result = json.loads((repo / "metrics/eval.json").read_text(encoding="utf-8"))
    assert list(result) == ["demo_test", "real_sv"]
    assert result["demo_test"]["finetuned"]["wer_norm"] == pytest.approx(1 / 11, abs=1e-6)
    assert result["real_sv"]["ct2"]["wer"] == pytest.approx(0.5, abs=1e-6)
    assert result["real_sv"]["relative_wer_reduction"] == pytest.approx(0.5, abs=1e-5)

    def numbers_only(value) -> bool:  # dvc metrics diff compares numbers
        if isinstance(value, dict):
            return all(numbers_only(v) for v in value.values())
        return isinstance(value, int | float) and not isinstance(value, bool)

    assert numbers_only(result)
    # The DVC metric: WER_norm per set and model with its interval, nothing else.
    headline = json.loads((repo / "metrics/wer.json").read_text(encoding="utf-8"))
    assert numbers_only(headline)
    assert headline["real_sv"]["ct2"] == {
        k: result["real_sv"]["ct2"][k] for k in ("wer_norm", "wer_norm_low", "wer_norm_high")
    }
    errors = pd.read_csv(repo / "metrics/clip_errors.csv", keep_default_na=False)
    assert list(errors.columns) == [
        "set",
        "path",
        "client_id",
        "words",
        *(f"{m}_errors" for m in MODELS),
    ]
    demo = errors[errors["set"] == "demo_test"]
    assert demo["finetuned_errors"].sum() / demo["words"].sum() == pytest.approx(1 / 11)
    table = pd.read_csv(repo / "reports/predictions.csv", keep_default_na=False)
    assert table["set"].tolist() == ["demo_test"] * 3 + ["real_sv"] * 2
    assert {"reference", *MODELS, "ct2_wer"} <= set(table.columns)
    rows = json.loads((repo / "metrics/slices.json").read_text(encoding="utf-8"))
    assert len(rows) == 9 * 3 + 2 * 3
    assert {"set", "model", "slice", "wer", "label"} <= set(rows[0])
    trade = json.loads((repo / "metrics/tradeoff.json").read_text(encoding="utf-8"))
    assert [r["model"] for r in trade] == ["finetuned", "zero_shot"]
    assert trade[0]["real_wer_norm"] == pytest.approx(1 / 6, abs=1e-6)
    out = capsys.readouterr().out
    assert "evaluate: real_sv (2 clips): wer_norm zero_shot 0.333 [0.000, 0.667]," in out


def test_evaluate_stage_without_a_models_file_is_a_clear_error(repo_copy, monkeypatch, capsys):
    import stages.evaluate

    repo = repo_copy()
    set_params(repo, {"demo_test": DEMO_SET, "real_sv": REAL_SET}, MODEL_DIRS)
    write_transcripts(repo / "reports" / "transcripts", models=("zero_shot", "finetuned"))
    monkeypatch.chdir(repo)
    with pytest.raises(SystemExit) as exit_info:
        main(stages.evaluate.run, stage_args("evaluate", repo))
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    missing = "reports/transcripts/ct2/demo_test.csv"
    assert_a_line_names(err, "evaluate", "demo_test", missing, "dvc repro transcribe@ct2")
    assert not (repo / "metrics" / "eval.json").exists()
    assert not (repo / "reports" / "predictions.csv").exists()


@pytest.mark.slow  # dvc's own plot code, in a subprocess (a few seconds)
def test_dvc_plots_draws_the_tradeoff_with_and_without_a_real_set(tmp_path):
    """The top-level plot of dvc.yaml on this module's rows: no error, nulls kept as nulls."""
    repo = tmp_path / "repo"
    (repo / "metrics").mkdir(parents=True)
    pipeline = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))
    plot = next(p for p in pipeline["plots"] if "synthetic vs real WER" in p)
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"plots": [plot]}), encoding="utf-8")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=repo, check=True)
    results = {"demo_test": {"clips": 3, "finetuned": {"wer_norm": 0.25}}}
    rows = tradeoff(results, {"demo_test": SETS["demo_test"]}, ["finetuned"])
    (repo / "metrics/tradeoff.json").write_text(json.dumps(rows), encoding="utf-8")
    shown = subprocess.run(
        [sys.executable, "-m", "dvc", "plots", "show", "--json"],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    )
    data = json.loads(shown.stdout)
    assert "errors" not in data, data
    [drawn] = data["data"]["synthetic vs real WER"]
    values = drawn["content"]["data"]["values"]
    assert values[0]["synthetic_wer_norm"] == 0.25 and values[0]["real_wer_norm"] is None
    assert drawn["content"]["encoding"]["y"]["field"] == "real_wer_norm"
