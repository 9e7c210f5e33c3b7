"""The ``transcribe@<model>`` stages: every test set, transformers and CTranslate2 models.

Two tiny featurized sets stand in for ``data/testsets/<name>`` (the ``testset@<name>``
stages' tables, in the format of ``data/features/<split>``); one has speaker metadata, the
other none, as a folder of wav/txt pairs would.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from swedish_transcriber.data.features import load_split, pad_features
from swedish_transcriber.evaluation.report import TRANSCRIPT_COLUMNS, read_transcripts
from swedish_transcriber.model.export import export_ct2
from swedish_transcriber.model.source import ModelLanguage
from swedish_transcriber.serving.engines.contract import EngineSettings
from swedish_transcriber.serving.engines.ctranslate2_engine import CTranslate2Engine
from swedish_transcriber.serving.log_mel import LogMel
from swedish_transcriber.stage import main
from swedish_transcriber.whisper import SAMPLE_RATE, DecodeOptions
from tests.dvc_stages import stage_args
from tests.media_files import tone
from tests.messages import assert_a_line_names, raises_naming
from tests.repo_params import dotted, repo_params, write_params
from tests.tiny import feature_table, save_tiny_base

LANGUAGE = repo_params("model", ModelLanguage, subset=True)
# The repo's decoding (guards included: evaluate.decode over the shared decode), small and quick.
DECODE = {
    **dataclasses.asdict(repo_params("evaluate.decode", DecodeOptions)),
    "batch_size": 2,
    "num_beams": 1,
    "max_new_tokens": 6,
}
DECODE["temperatures"] = list(DECODE["temperatures"])  # a YAML list
SETS = {
    "demo_test": {
        "format": "features",
        "path": "data/features",
        "split": "test",
        "speech": "synthetic",
    },
    "real_sv": {"format": "pairs", "path": "../real-sv", "split": "", "speech": "real"},
}
MODELS = {"zero_shot": "models/base", "finetuned": "models/finetuned", "ct2": "models/ct2"}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """A tiny base model, a copy standing in for the fine-tuned one, and its int8 export."""
    root = tmp_path_factory.mktemp("models")
    base = save_tiny_base(root / "base")
    shutil.copytree(base, root / "finetuned")
    export_ct2(root / "finetuned", root / "ct2", "int8")
    return {"zero_shot": base, "finetuned": root / "finetuned", "ct2": root / "ct2"}


@pytest.fixture
def bare_repo(repo_copy) -> Path:
    """A repo copy with both sets in data/testsets and the params for them, no models."""
    repo = repo_copy()
    feature_table(3, 0, "test").save_to_disk(str(repo / "data/testsets/demo_test"))
    bare = feature_table(2, 1, "real").remove_columns(["client_id", "gender", "age", "accent"])
    bare.save_to_disk(str(repo / "data/testsets/real_sv"))
    evaluate = {"decode": DECODE, "sets": SETS, "models": MODELS, "max_clips": 0}
    write_params(repo, dotted("evaluate", evaluate))
    return repo


@pytest.fixture
def repo(bare_repo, models) -> Path:
    """``bare_repo`` with the three models where params.yaml names them."""
    for name, path in models.items():
        shutil.copytree(path, bare_repo / MODELS[name])
    return bare_repo


@pytest.mark.slow  # runs four stages on three models
def test_every_model_transcribes_every_set_and_evaluate_scores_them(repo, monkeypatch, capsys):
    import stages.evaluate
    import stages.transcribe

    monkeypatch.chdir(repo)  # in this process: the stage's libraries are imported already
    for model in MODELS:
        main(stages.transcribe.run, stage_args(f"transcribe@{model}", repo))
    out = repo / "reports" / "transcripts"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.csv")) == [
        f"{m}/{s}.csv" for m in sorted(MODELS) for s in sorted(SETS)
    ]
    demo = read_transcripts(out / "zero_shot" / "demo_test.csv")
    assert list(demo.columns) == list(TRANSCRIPT_COLUMNS)
    table = load_split(repo / "data/testsets", "demo_test")
    assert demo["reference"].tolist() == table["sentence"]
    assert demo["gender"].tolist() == table["gender"]
    real = read_transcripts(out / "ct2" / "real_sv.csv")
    assert real["gender"].tolist() == ["", ""] and real["path"].tolist() == table_paths(repo)
    # The fine-tuned model is a copy of the base one: the same transcripts, word for word.
    for name in SETS:
        pd.testing.assert_frame_equal(
            read_transcripts(out / "zero_shot" / f"{name}.csv"),
            read_transcripts(out / "finetuned" / f"{name}.csv"),
        )
    # The export decodes the stored features as the engine does them (see the next test).
    engine = ct2_engine(repo / "models/ct2")
    rows = load_split(repo / "data/testsets", "real_sv").with_format("numpy")[:]
    expected = engine.transcribe_features(
        pad_features(rows["input_features"], rows["pad_value"]), rows["duration"].tolist()
    )
    assert real["hypothesis"].tolist() == expected

    main(stages.evaluate.run, stage_args("evaluate", repo))
    result = json.loads((repo / "metrics/eval.json").read_text(encoding="utf-8"))
    assert result["demo_test"]["clips"] == 3 and result["real_sv"]["clips"] == 2
    assert result["demo_test"]["zero_shot"] == result["demo_test"]["finetuned"]
    assert result["real_sv"]["relative_wer_reduction"] == 0.0
    assert set(result["real_sv"]["ct2"]) == {
        "wer",
        "cer",
        "wer_norm",
        "cer_norm",
        "wer_norm_low",
        "wer_norm_high",
    }
    # The same transcripts: a difference of exactly 0, with a zero-width paired interval.
    same = {"wer_norm": 0.0, "low": 0.0, "high": 0.0}
    assert result["demo_test"]["differences"]["finetuned-zero_shot"] == same
    assert "transcribe: models/ct2: demo_test, real_sv -> reports/transcripts/ct2" in (
        capsys.readouterr().out
    )


def table_paths(repo: Path) -> list[str]:
    return load_split(repo / "data/testsets", "real_sv")["path"]


def ct2_engine(model_dir: Path) -> CTranslate2Engine:
    options = DecodeOptions(**DECODE)
    return CTranslate2Engine(model_dir, LANGUAGE, options, EngineSettings(1, "int8"))


def test_ct2_features_give_the_same_text_as_the_engine_on_audio(models):
    """transcribe_features on log-mel of clips == transcribe on the clips themselves."""
    engine = ct2_engine(models["ct2"])
    clips = [tone(1.0, SAMPLE_RATE, seed=1), tone(3.0, SAMPLE_RATE, seed=2)]
    features = LogMel.from_model_dir(models["ct2"])(clips)
    texts = engine.transcribe_features(features.astype(np.float16), [1.0, 3.0])
    assert texts == engine.transcribe(clips)
    assert all(texts)  # a random tiny model still says something
    assert engine.transcribe_features(np.zeros((0, 80, 3000), np.float32), []) == []
    with raises_naming(ValueError, 1, 2):  # durations and clips
        engine.transcribe_features(features, [1.0])
    with raises_naming(ValueError, models["ct2"], 80, str(features[:, :40].shape)):
        engine.transcribe_features(features[:, :40], [1.0, 3.0])


def test_a_missing_test_set_is_an_error_before_any_model_loads(bare_repo, monkeypatch, capsys):
    import stages.transcribe

    repo = bare_repo  # no models/ct2 either: the sets are checked first
    shutil.rmtree(repo / "data/testsets/real_sv")
    monkeypatch.chdir(repo)
    with pytest.raises(SystemExit) as exit_info:
        main(stages.transcribe.run, stage_args("transcribe@ct2", repo))
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert_a_line_names(err, "transcribe", "data/testsets/real_sv", "dvc repro featurize")
    assert not (repo / "reports" / "transcripts" / "ct2").exists()


def test_transcribe_without_a_model_is_a_clear_error(bare_repo, monkeypatch, capsys):
    import stages.transcribe

    repo = bare_repo
    monkeypatch.chdir(repo)
    with pytest.raises(SystemExit) as exit_info:
        main(stages.transcribe.run, stage_args("transcribe@finetuned", repo))
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert_a_line_names(err, "transcribe", "models/finetuned")
    assert not (repo / "reports").exists()
