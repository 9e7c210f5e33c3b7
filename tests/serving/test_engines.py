"""Engines (transformers, CTranslate2) and the ``export`` stage, on the tiny Whisper."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from swedish_transcriber.model.export import ExportParams, export_ct2
from swedish_transcriber.model.source import ModelLanguage
from swedish_transcriber.serving.engines.contract import (
    CTRANSLATE2,
    TRANSFORMERS,
    EngineSettings,
    model_kind,
)
from swedish_transcriber.serving.engines.ctranslate2_engine import CTranslate2Engine
from swedish_transcriber.serving.engines.factory import load_engine
from swedish_transcriber.serving.engines.transformers_engine import TransformersEngine
from swedish_transcriber.whisper import (
    CONTEXT_KEY,
    N_SAMPLES,
    SAMPLE_RATE,
    DecodeOptions,
    EncoderContext,
)
from tests.dvc_stages import stage_command
from tests.media_files import tone
from tests.messages import assert_a_line_names, assert_names, raises_naming
from tests.repo_params import REPO, repo_params, write_params
from tests.tiny import save_tiny_base

LANGUAGE = repo_params("model", ModelLanguage, subset=True)
APP = repo_params("app.decode", DecodeOptions)
# One plain pass (no guards), comparable token for token with a plain generate; the guards
# have their own tests (test_decoding.py).
OPTIONS = DecodeOptions.plain(APP.batch_size, APP.num_beams, max_new_tokens=12)
FLOAT32 = repo_params("app.engine", EngineSettings, ct2_compute_type="float32")


def engine(model_dir: Path, options: DecodeOptions = OPTIONS, settings=FLOAT32):
    return load_engine(model_dir, LANGUAGE, options, settings)


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("engines")
    base = save_tiny_base(root / "tiny")
    export_ct2(base, root / "tiny-ct2", "float32")
    return base, root / "tiny-ct2"


def test_model_kind_reads_the_directory(tiny_dirs, tmp_path):
    base, ct2 = tiny_dirs
    assert model_kind(base) == TRANSFORMERS
    assert model_kind(ct2) == CTRANSLATE2
    with raises_naming(FileNotFoundError, tmp_path / "nowhere"):
        model_kind(tmp_path / "nowhere")
    with raises_naming(FileNotFoundError, tmp_path, "model.safetensors", "model.bin"):  # lacks
        model_kind(tmp_path)
    (tmp_path / "model.bin").write_bytes(b"x")
    with raises_naming(FileNotFoundError, tmp_path, "preprocessor_config.json"):
        model_kind(tmp_path)


def test_export_is_self_contained_and_records_what_it_did(tiny_dirs):
    base, ct2 = tiny_dirs
    info = json.loads((ct2 / "export_info.json").read_text(encoding="utf-8"))
    assert info["quantization"] == "float32"
    assert {"preprocessor_config.json", "tokenizer.json"} <= set(info["processor_files"])
    for name in info["processor_files"]:  # copied by the converter, byte for byte
        assert (ct2 / name).read_bytes() == (base / name).read_bytes()
    # CTranslate2's own config, not the transformers one.
    assert "alignment_heads" in json.loads((ct2 / "config.json").read_text(encoding="utf-8"))


def test_both_engines_transcribe_a_batch_with_the_same_token_cap(tiny_dirs):
    base, ct2 = tiny_dirs
    clips = [tone(2.0, SAMPLE_RATE, seed=1), tone(5.0, SAMPLE_RATE, seed=2)]
    hf = engine(base)
    fast = engine(ct2)
    assert isinstance(hf, TransformersEngine) and isinstance(fast, CTranslate2Engine)
    hf_text, ct2_text = hf.transcribe(clips), fast.transcribe(clips)
    assert len(hf_text) == len(ct2_text) == 2 and all(hf_text) and all(ct2_text)
    # The random model never stops by itself: both run to max_new_tokens, no further.
    ids = fast.generate_ids(clips)
    assert [len(i) for i in ids] == [OPTIONS.max_new_tokens] * 2
    assert fast.prompt == hf.processor.tokenizer.convert_tokens_to_ids(
        ["<|startoftranscript|>", "<|sv|>", "<|transcribe|>", "<|notimestamps|>"]
    )
    assert hf.transcribe([]) == fast.transcribe([]) == []


def test_a_clip_over_whispers_window_is_refused(tiny_dirs):
    _, ct2 = tiny_dirs
    with raises_naming(ValueError, "31.0 s", "30 s"):  # the clip and Whisper's window
        engine(ct2).transcribe([np.zeros(N_SAMPLES + SAMPLE_RATE, np.float32)])


def test_int8_export_is_smaller(tiny_dirs, tmp_path):
    base, ct2 = tiny_dirs
    # Without decode options, only the encoder context the source recorded (none: padded).
    alone = json.loads((ct2 / "decode_options.json").read_text(encoding="utf-8"))
    assert alone == {CONTEXT_KEY: EncoderContext.padded().record()}
    decode = dataclasses.asdict(APP)
    info = export_ct2(base, tmp_path / "int8", "int8", decode)
    written = json.loads((tmp_path / "int8" / "decode_options.json").read_text(encoding="utf-8"))
    assert written.pop(CONTEXT_KEY) == EncoderContext.padded().record()
    assert DecodeOptions(**written) == APP  # the page's decoding, guards included
    assert info["model_bytes"] < 0.5 * (ct2 / "model.bin").stat().st_size
    int8 = repo_params("app.engine", EngineSettings, ct2_compute_type="int8")
    options = DecodeOptions.plain(APP.batch_size, APP.num_beams, max_new_tokens=4)
    [text] = engine(tmp_path / "int8", options, int8).transcribe([tone(1.0, SAMPLE_RATE)])
    assert isinstance(text, str)


def test_export_refuses_bad_input_and_leaves_nothing_half_written(tmp_path):
    with raises_naming(ValueError, "quantization", "'int4'", "int8"):  # and the ones there are
        ExportParams("int4")
    with raises_naming(FileNotFoundError, tmp_path / "missing", "dvc repro train"):
        export_ct2(tmp_path / "missing", tmp_path / "out", "int8")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "whisper"}', encoding="utf-8")
    (broken / "preprocessor_config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(Exception):  # noqa: B017 - whatever the converter raises
        export_ct2(broken, tmp_path / "out", "int8")
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


@pytest.mark.slow  # runs the export stage in a subprocess
def test_export_stage_runs_from_params(repo_copy, tiny_dirs):
    base, _ = tiny_dirs
    repo = repo_copy()
    import shutil

    shutil.copytree(base, repo / "models/finetuned")
    write_params(repo, {"export.quantization": "int8_float32"})
    env = {**os.environ, "PYTHONPATH": str(repo)}
    run = subprocess.run(
        stage_command("export", repo), cwd=repo, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert_a_line_names(run.stdout, "models/ct2", "int8_float32")
    written = json.loads((repo / "models/ct2/decode_options.json").read_text(encoding="utf-8"))
    assert written == {
        **dataclasses.asdict(APP),
        "temperatures": list(APP.temperatures),
        CONTEXT_KEY: EncoderContext.padded().record(),
    }
    assert_a_line_names(run.stdout, "models/ct2", "padded")
    assert model_kind(repo / "models/ct2") == CTRANSLATE2
    (repo / "params.yaml").write_text(
        (repo / "params.yaml").read_text(encoding="utf-8").replace("int8_float32", "int3"),
        encoding="utf-8",
    )
    bad = subprocess.run(
        stage_command("export", repo), cwd=repo, env=env, capture_output=True, text=True
    )
    assert bad.returncode == 1
    assert bad.stderr.startswith("export: error:")
    assert_names(bad.stderr, "params.yaml", "export", "quantization", "'int3'", "int8_float32")
    assert "Traceback" not in bad.stderr


def test_dvc_yaml_declares_the_export_stage():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    export = stages["export"]
    assert "models/finetuned" in export["deps"] and export["outs"] == ["models/ct2"]
    # app.decode: the page's decode options are written beside the model (decode_options.json)
    assert export["params"] == ["export", "app.decode", "decode"]
