"""The torch-free CTranslate2 engine: numpy log-mel, ``tokenizers`` ids, same tokens as before.

The references are transformers' own: ``WhisperFeatureExtractor`` for the features, the
processor-based engine this one replaced (kept below as ``processor_generate``) for the
generated ids, and ``WhisperTokenizerFast.decode`` for the text.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from swedish_transcriber.data.features import load_processor
from swedish_transcriber.model.export import export_ct2
from swedish_transcriber.model.source import ModelLanguage
from swedish_transcriber.serving.engines.contract import EngineSettings
from swedish_transcriber.serving.engines.ctranslate2_engine import CTranslate2Engine, WhisperTokens
from swedish_transcriber.serving.engines.factory import load_engine
from swedish_transcriber.serving.log_mel import LogMel, MelSettings, slaney_mel_filters
from swedish_transcriber.whisper import SAMPLE_RATE as SR
from swedish_transcriber.whisper import DecodeOptions
from tests.media_files import tone
from tests.messages import raises_naming
from tests.repo_params import REPO, repo_params
from tests.tiny import save_tiny_base

LANGUAGE = repo_params("model", ModelLanguage, subset=True)
APP = repo_params("app.decode", DecodeOptions)
# One plain pass (no guards), comparable token for token with a plain generate; the guards
# have their own tests (test_decoding.py).
OPTIONS = DecodeOptions.plain(APP.batch_size, APP.num_beams, max_new_tokens=12)


def clips() -> list[np.ndarray]:
    """Silence, nothing at all, short, speech-like, loud noise, whisper-quiet, a full 30 s."""
    rng = np.random.default_rng(7)
    return [
        np.zeros(SR, np.float32),
        np.zeros(0, np.float32),
        tone(0.3, SR, seed=3),
        tone(2.0, SR, seed=1),
        (0.5 * rng.standard_normal(7 * SR)).astype(np.float32),
        (1e-4 * rng.standard_normal(3 * SR)).astype(np.float32),
        tone(30.0, SR, seed=2),
    ]


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ct2-engine")
    base = save_tiny_base(root / "tiny")
    for quantization in ("float32", "int8"):
        export_ct2(base, root / quantization, quantization)
    return {"base": base, "float32": root / "float32", "int8": root / "int8"}


# --------------------------------------------------------------------------- log-mel


@pytest.mark.parametrize("n_mels", [80, 128])
def test_numpy_log_mel_equals_whispers_feature_extractor(n_mels):
    from transformers import WhisperFeatureExtractor

    extractor = WhisperFeatureExtractor(feature_size=n_mels)
    audio = clips()
    expected = extractor(audio, sampling_rate=SR, return_tensors="np").input_features
    ours = LogMel(MelSettings(n_mels=n_mels))(audio)
    assert ours.shape == expected.shape == (len(audio), n_mels, 3000)
    assert ours.dtype == np.float32
    for i, (a, b) in enumerate(zip(ours, expected, strict=True)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4, err_msg=f"clip {i}")
    # Silence is the floor everywhere; a real signal spans Whisper's 8-decade range.
    np.testing.assert_allclose(ours[:2], -1.5, rtol=0, atol=1e-6)
    assert ours[3].max() - ours[3].min() == pytest.approx(2.0, abs=1e-3)


def test_slaney_filters_are_transformers_and_config_filters_are_used(tmp_path):
    from transformers.audio_utils import mel_filter_bank

    for n_mels in (80, 128):
        np.testing.assert_allclose(
            slaney_mel_filters(n_mels, 400, SR),
            mel_filter_bank(
                num_frequency_bins=201,
                num_mel_filters=n_mels,
                min_frequency=0.0,
                max_frequency=8000.0,
                sampling_rate=SR,
                norm="slaney",
                mel_scale="slaney",
            ),
            rtol=1e-10,
            atol=1e-12,
        )
    # Filters written in the config win, in either orientation; a wrong shape is refused.
    halved = 0.5 * slaney_mel_filters(80, 400, SR)
    audio = [tone(2.0, SR, seed=4)]
    plain = LogMel(MelSettings())(audio)
    for filters in (halved, halved.T):
        config = {"feature_size": 80, "mel_filters": filters.tolist()}
        (tmp_path / "preprocessor_config.json").write_text(json.dumps(config), encoding="utf-8")
        settings = MelSettings.from_model_dir(tmp_path)
        assert settings.mel_filters.shape == (201, 80)
        # Halving the power moves log10 by log10(2) before the max-8 floor and the scaling.
        shifted = LogMel(settings)(audio)
        assert np.abs(shifted - plain).max() == pytest.approx(np.log10(2) / 4, abs=1e-4)
    (tmp_path / "preprocessor_config.json").write_text(
        json.dumps({"mel_filters": [[0.0] * 7] * 3}), encoding="utf-8"
    )
    with raises_naming(ValueError, tmp_path / "preprocessor_config.json", "mel_filters", "(3, 7)"):
        MelSettings.from_model_dir(tmp_path)


def test_settings_come_from_the_model_dir_and_bad_ones_are_refused(exports, tmp_path):
    settings = MelSettings.from_model_dir(exports["int8"])
    assert (settings.n_mels, settings.n_fft, settings.hop_length) == (80, 400, 160)
    assert (settings.n_samples, settings.n_frames, settings.mel_filters) == (480_000, 3000, None)
    with raises_naming(FileNotFoundError, tmp_path, "preprocessor_config.json"):
        MelSettings.from_model_dir(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text('{"dither": 1.0}', encoding="utf-8")
    with raises_naming(ValueError, tmp_path / "preprocessor_config.json", "dither", 1.0, 0.0):
        MelSettings.from_model_dir(tmp_path)
    with raises_naming(ValueError, "30.0 s", "30 s"):  # the clip, and Whisper's window
        LogMel(settings)([np.zeros(30 * SR + 1, np.float32)])


# --------------------------------------------------------------------------- tokens


def processor_generate(
    model_dir: Path, clips: list[np.ndarray], options: DecodeOptions, settings: EngineSettings
):
    """The engine as it was before (processor features and prompt), for comparison."""
    import ctranslate2

    processor = load_processor(model_dir, LANGUAGE.language, LANGUAGE.task)
    prompt = processor.tokenizer.convert_tokens_to_ids(
        ["<|startoftranscript|>", "<|sv|>", "<|transcribe|>", "<|notimestamps|>"]
    )
    model = ctranslate2.models.Whisper(
        str(model_dir), device="cpu", compute_type=settings.ct2_compute_type, intra_threads=1
    )
    features = processor.feature_extractor(
        clips, sampling_rate=SR, return_tensors="np"
    ).input_features.astype(np.float32)
    results = model.generate(
        ctranslate2.StorageView.from_array(np.ascontiguousarray(features)),
        [prompt] * len(clips),
        beam_size=options.num_beams,
        max_length=2 * options.max_new_tokens,
    )
    ids = [list(r.sequences_ids[0]) for r in results]
    texts = [processor.tokenizer.decode(i, skip_special_tokens=True).strip() for i in ids]
    return prompt, ids, texts


@pytest.mark.parametrize("quantization", ["float32", "int8"])
def test_same_token_ids_and_text_as_the_processor_based_engine(exports, quantization):
    model_dir = exports[quantization]
    options = OPTIONS
    settings = repo_params("app.engine", EngineSettings, ct2_compute_type=quantization)
    audio = [tone(1.0, SR, seed=1), tone(4.0, SR, seed=2), tone(12.0, SR, seed=5), clips()[4]]
    prompt, expected_ids, expected_texts = processor_generate(model_dir, audio, options, settings)
    engine = load_engine(model_dir, LANGUAGE, options, settings)
    assert isinstance(engine, CTranslate2Engine)
    assert engine.prompt == prompt == [50258, 50273, 50359, 50363]
    assert engine.generate_ids(audio) == expected_ids
    assert engine.transcribe(audio) == expected_texts
    assert all(expected_texts)


def test_decoding_matches_transformers_on_any_ids(exports):
    """Random ids over the whole output range: specials, timestamps, a previous-text prompt."""
    from transformers import WhisperTokenizerFast

    model_dir = exports["int8"]
    theirs = WhisperTokenizerFast.from_pretrained(model_dir)
    ours = WhisperTokens(model_dir)
    rng = np.random.default_rng(3)
    sentences = [theirs.encode(s, add_special_tokens=False) for s in ("Hej då, Åsa!", " Två.")]
    cases = [[], *sentences, [50361, 400, 50258, 50273, *sentences[0]], [50361, 400, 500]]
    cases += [list(rng.integers(0, 51865, size=n)) for n in (1, 5, 40, 40, 40)]
    cases += [[*sentences[1], 50364, 50400, *sentences[0], 51864]]  # timestamps
    for ids in cases:
        ids = [int(i) for i in ids]
        assert ours.decode(ids) == theirs.decode(ids, skip_special_tokens=True), ids


def test_clean_up_spaces_when_the_tokenizer_config_asks(exports, tmp_path):
    import shutil

    shutil.copy2(exports["int8"] / "tokenizer.json", tmp_path / "tokenizer.json")
    tokens = WhisperTokens(tmp_path)  # no tokenizer_config.json: transformers' default, off
    ids = tokens.tokenizer.encode("Ja , nej .", add_special_tokens=False).ids
    assert tokens.decode(ids) == "Ja , nej ."
    (tmp_path / "tokenizer_config.json").write_text(
        '{"clean_up_tokenization_spaces": true}', encoding="utf-8"
    )
    assert WhisperTokens(tmp_path).decode(ids) == "Ja, nej."


def test_missing_tokenizer_or_language_is_a_clear_error(exports, tmp_path):
    import shutil

    with raises_naming(FileNotFoundError, tmp_path, "tokenizer.json"):
        WhisperTokens(tmp_path)
    shutil.copy2(exports["int8"] / "tokenizer.json", tmp_path / "tokenizer.json")
    with raises_naming(ValueError, tmp_path, "'xx'"):
        WhisperTokens(tmp_path).prompt("xx", "transcribe")
    with raises_naming(ValueError, tmp_path, "'sv'", "'dance'"):
        WhisperTokens(tmp_path).prompt("sv", "dance")


# --------------------------------------------------------------------------- imports


@pytest.mark.slow  # a fresh interpreter that imports the page and loads the engine
def test_the_ct2_engine_never_imports_torch_or_transformers(exports):
    """The page's modules and its CTranslate2 engine run without torch (a quarter the memory)."""
    script = textwrap.dedent(
        """
        import importlib.util, json, sys
        import numpy as np
        # The page's script with everything it imports (it draws only as __main__).
        spec = importlib.util.spec_from_file_location("page_script", "app/main.py")
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
        from swedish_transcriber.model.source import ModelLanguage
        from swedish_transcriber.serving.engines.contract import EngineSettings
        from swedish_transcriber.serving.engines.factory import load_engine
        from swedish_transcriber.whisper import DecodeOptions, EncoderContext
        t = np.arange(2 * 16000) / 16000
        clip = (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32)
        for context in (None, EncoderContext("clip", 1.0)):  # the model's own, and a short one
            engine = load_engine(
                sys.argv[1],
                ModelLanguage("sv", "transcribe"),
                DecodeOptions.plain(batch_size=1, num_beams=1, max_new_tokens=6),
                EngineSettings(threads=2, ct2_compute_type="int8"),
                context,
            )
            [text] = engine.transcribe([clip])
        heavy = sorted(
            m for m in ("torch", "transformers", "datasets", "pandas") if m in sys.modules
        )
        print(json.dumps({"kind": engine.kind, "text": text, "heavy": heavy}))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run(
        [sys.executable, "-c", script, str(exports["int8"])],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["kind"] == "ctranslate2" and out["text"]
    assert out["heavy"] == []
