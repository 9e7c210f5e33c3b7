"""openai/whisper's guards (``swedish_transcriber.decoding``) and a model rigged to loop.

The pure functions first: compression ratio, the duration cap, the verdicts and the order of
the temperature fallback. Then a tiny Whisper whose output projection is rigged so that one
token ("j") always wins: greedy decoding repeats it until the cap, as the fine-tuned model
did on a real clip ("sex jjjjjjj…"). Unguarded, both engines (transformers and its
CTranslate2 export) loop to ``max_new_tokens``; with the cap by duration they stop at
``ceil(d * max_tokens_per_second) + max_tokens_slack``; with the whole of params
``app.decode`` the loop is replaced by a fallback decode that passes the thresholds.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from swedish_transcriber.decoding import (
    Attempt,
    Verdict,
    compression_ratio,
    decode_with_fallback,
    final_text,
    is_silent,
    judge,
    needs_fallback,
    token_cap,
    transcripts,
)
from swedish_transcriber.model.export import export_ct2
from swedish_transcriber.model.source import ModelLanguage
from swedish_transcriber.serving.engines.contract import EngineSettings
from swedish_transcriber.serving.engines.ctranslate2_engine import CTranslate2Engine
from swedish_transcriber.serving.engines.factory import load_engine
from swedish_transcriber.serving.engines.transformers_engine import TransformersEngine
from swedish_transcriber.whisper import SAMPLE_RATE, DecodeOptions, EncoderContext
from tests.media_files import tone
from tests.messages import raises_naming
from tests.repo_params import PARAMS_FILE, repo_params
from tests.tiny import feature_table, save_tiny_base, tiny_processor

LANGUAGE = repo_params("model", ModelLanguage, subset=True)
GUARDED = repo_params("app.decode", DecodeOptions)  # whisper's guards, as the page decodes
FLOAT32 = repo_params("app.engine", EngineSettings, ct2_compute_type="float32")
EOT, NO_CAPTIONS = 50257, 50362  # <|endoftext|>, base's no-speech token <|nocaptions|>
LOOP_CAP = 60  # max_new_tokens of the unguarded runs


def attempt(text="Hej på dig.", sum_logprob=-1.0, tokens=3, no_speech=0.01, t=0.0) -> Attempt:
    return Attempt(tuple(range(tokens)), text, sum_logprob, no_speech, t)


# --------------------------------------------------------------------------- pure functions


def test_compression_ratio_flags_a_loop_and_not_a_sentence():
    sentence = "Hon cyklar till jobbet varje morgon och äter frukost på vägen."
    assert compression_ratio(sentence) < 1.5
    assert compression_ratio("sex " + "j" * 200) > GUARDED.compression_ratio_threshold == 2.4
    assert compression_ratio("och " * 40) > 2.4
    assert compression_ratio("") == 0.0


def test_token_cap_by_duration():
    assert (GUARDED.max_tokens_per_second, GUARDED.max_tokens_slack) == (12.0, 16)
    assert token_cap(2.0, GUARDED) == 2 * 12 + 16 == 40
    assert token_cap(2.01, GUARDED) == 41  # ceil
    assert token_cap(0.0, GUARDED) == 16
    assert token_cap(30.0, GUARDED) == GUARDED.max_new_tokens == 224  # the absolute cap wins
    assert token_cap(2.0, dataclasses.replace(GUARDED, max_tokens_per_second=None)) == 224
    for bad in (-1.0, float("nan"), float("inf")):
        with raises_naming(ValueError, "duration", str(bad)):
            token_cap(bad, GUARDED)


def test_verdicts_follow_whisper():
    assert attempt(sum_logprob=-2.0, tokens=3).avg_logprob == -0.5  # the end token counted
    assert judge(attempt(), GUARDED) is Verdict.ACCEPT
    looping = attempt(text="j" * 100, sum_logprob=-10.0, tokens=100)
    assert needs_fallback(looping, GUARDED) and judge(looping, GUARDED) is Verdict.RETRY
    unlikely = attempt(sum_logprob=-8.0, tokens=3)  # avg -2.0
    assert judge(unlikely, GUARDED) is Verdict.RETRY
    # No-speech probability high and the text unlikely: silence, not decoded again.
    silent = attempt(text="j" * 100, sum_logprob=-800.0, tokens=100, no_speech=0.9)
    assert is_silent(silent, GUARDED) and judge(silent, GUARDED) is Verdict.SILENT
    assert final_text(silent, GUARDED) == ""
    # A confident text wins over a high no-speech probability (whisper's skip rule).
    confident = attempt(no_speech=0.9)
    assert not is_silent(confident, GUARDED) and judge(confident, GUARDED) is Verdict.ACCEPT
    assert final_text(attempt(text=" Hej. "), GUARDED) == "Hej."
    # Thresholds off (null): nothing retries, nothing is silent.
    off = DecodeOptions.plain(1, 1, 10)
    assert judge(looping, off) is judge(silent, off) is Verdict.ACCEPT
    # Without a log-probability threshold the no-speech probability decides alone.
    no_logprob = dataclasses.replace(GUARDED, logprob_threshold=None)
    assert judge(confident, no_logprob) is Verdict.SILENT


def test_fallback_order_only_failed_windows_again_and_the_last_kept():
    """Window 0 passes at once; 1 loops until 0.4; 2 never passes; 3 is silent at once."""
    calls = []
    passes_at = {0: 0.0, 1: 0.4, 2: 9.0}

    def decode(windows, temperature, caps, seed):
        calls.append((list(windows), temperature, list(caps), seed))
        out = []
        for w in windows:
            if w == 3:
                out.append(attempt(text="", sum_logprob=-50.0, no_speech=0.95, t=temperature))
            elif temperature >= passes_at[w]:
                out.append(attempt(text=f"ok {w}", t=temperature))
            else:
                out.append(attempt(text="j" * 100, sum_logprob=-5.0, tokens=100, t=temperature))
        return out

    durations = [1.0, 2.0, 30.0, 0.5]
    final = decode_with_fallback(durations, decode, GUARDED)
    caps = [token_cap(d, GUARDED) for d in durations]
    seed = GUARDED.seed
    assert calls == [
        ([0, 1, 2, 3], 0.0, caps, seed),
        ([1, 2], 0.2, [caps[1], caps[2]], seed + 1),
        ([1, 2], 0.4, [caps[1], caps[2]], seed + 2),
        ([2], 0.6, [caps[2]], seed + 3),
        ([2], 0.8, [caps[2]], seed + 4),
        ([2], 1.0, [caps[2]], seed + 5),
    ]
    assert [a.temperature for a in final] == [0.0, 0.4, 1.0, 0.0]
    assert transcripts(durations, decode, GUARDED) == ["ok 0", "ok 1", "j" * 100, ""]
    with raises_naming(RuntimeError, 0, 1):  # attempts returned, clips asked for
        decode_with_fallback([1.0], lambda *_: [], GUARDED)


def test_decode_options_are_whispers_in_every_block_and_checked():
    for block in ("app.decode", "evaluate.decode", "train.generation"):
        options = repo_params(block, DecodeOptions)
        assert options.temperatures == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0), block
        assert options.compression_ratio_threshold == 2.4
        assert (options.max_tokens_per_second, options.max_tokens_slack) == (12.0, 16)
        if block == "evaluate.decode":
            # Scoring: only loops fall back; a weak model is scored on its best guess, not a
            # temperature-1.0 sample, and every test clip is speech.
            assert (options.logprob_threshold, options.no_speech_threshold) == (None, None)
        else:
            assert options.logprob_threshold == -1.0
            assert options.no_speech_threshold == 0.6
    for change, bound in (  # the key, and the bound it breaks
        ({"temperatures": ()}, "[0, 2]"),
        ({"temperatures": (0.0, -0.2)}, "[0, 2]"),
        ({"no_speech_threshold": 1.5}, "[0, 1]"),
        ({"logprob_threshold": 0.5}, "<= 0"),
        ({"compression_ratio_threshold": 0.0}, "> 0"),
        ({"max_tokens_per_second": 0.0}, "> 0"),
        ({"max_tokens_slack": -1}, ">= 0"),
    ):
        with raises_naming(ValueError, *change, bound):
            dataclasses.replace(GUARDED, **change)
    assert PARAMS_FILE.is_file()


# --------------------------------------------------------------------------- a model that loops


def rigged_model(out: Path, logits: dict[int, float], suppress: tuple[int, ...] = ()) -> Path:
    """The tiny Whisper, its logits the same at every position: ``logits`` there, 0 elsewhere.

    The decoder's last layer norm is made constant (weight 0, bias ``v``) and the untied
    output projection maps ``v`` to the wanted logits, whatever the audio and the text.
    """
    import torch
    from transformers import WhisperForConditionalGeneration

    save_tiny_base(out)
    model = WhisperForConditionalGeneration.from_pretrained(out, tie_word_embeddings=False)
    v = torch.randn(model.config.d_model, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.model.decoder.layer_norm.weight.zero_()
        model.model.decoder.layer_norm.bias.copy_(v)
        weight = torch.zeros_like(model.proj_out.weight)
        for token, logit in logits.items():
            weight[token] = v * logit / v.dot(v)
        model.proj_out.weight = torch.nn.Parameter(weight)
    model.config.tie_word_embeddings = False
    model.generation_config.suppress_tokens = list(suppress) or None
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def looping(tmp_path_factory) -> dict[str, Path]:
    """ "j" wins every step (p 0.52); the end token is close behind (p 0.31), unpicked by greedy."""
    root = tmp_path_factory.mktemp("looping")
    j = tiny_processor().tokenizer.encode("j", add_special_tokens=False)
    assert len(j) == 1
    model = rigged_model(root / "hf", {j[0]: 12.0, EOT: 11.5})
    export_ct2(model, root / "ct2", "float32")
    return {"transformers": model, "ctranslate2": root / "ct2"}


@pytest.fixture(scope="module")
def silent(tmp_path_factory) -> dict[str, Path]:
    """The no-speech token has p 0.76 (and is never generated); every other token is a guess."""
    root = tmp_path_factory.mktemp("silent")
    model = rigged_model(root / "hf", {NO_CAPTIONS: 12.0}, suppress=(NO_CAPTIONS,))
    export_ct2(model, root / "ct2", "float32")
    return {"transformers": model, "ctranslate2": root / "ct2"}


def clips() -> list[np.ndarray]:
    return [tone(2.0, SAMPLE_RATE, seed=1), tone(5.0, SAMPLE_RATE, seed=2)]


# The CTranslate2 runs take a second; the transformers ones (same rig, same assertions) are
# slower on a shared CPU and run in the slow tier.
ENGINES = [pytest.param("transformers", marks=pytest.mark.slow), "ctranslate2"]


@pytest.mark.parametrize("kind", ENGINES)
def test_unguarded_the_rigged_model_loops_to_the_cap(looping, kind):
    engine = load_engine(looping[kind], LANGUAGE, DecodeOptions.plain(2, 1, LOOP_CAP), FLOAT32)
    assert engine.kind == kind
    assert engine.transcribe(clips()) == ["j" * LOOP_CAP] * 2


@pytest.mark.parametrize("kind", ENGINES)
def test_the_duration_cap_stops_the_loop(looping, kind):
    capped = dataclasses.replace(DecodeOptions.plain(2, 1, 224), max_tokens_per_second=12.0)
    capped = dataclasses.replace(capped, max_tokens_slack=16)
    engine = load_engine(looping[kind], LANGUAGE, capped, FLOAT32)
    # 2 s: ceil(2 * 12) + 16 = 40 tokens; 5 s: 76; not the 224 of max_new_tokens.
    assert engine.transcribe(clips()) == ["j" * 40, "j" * 76]


@pytest.mark.parametrize("kind", ENGINES)
def test_with_whispers_guards_a_fallback_decode_replaces_the_loop(looping, kind):
    engine = load_engine(looping[kind], LANGUAGE, GUARDED, FLOAT32)
    texts = engine.transcribe(clips())
    again = load_engine(looping[kind], LANGUAGE, GUARDED, FLOAT32).transcribe(clips())
    assert texts == again  # sampling is seeded: the same transcript every time
    for text, duration in zip(texts, (2.0, 5.0), strict=True):
        assert set(text) <= {"j"} and 0 < len(text) < token_cap(duration, GUARDED)
        assert compression_ratio(text) <= GUARDED.compression_ratio_threshold
    # Another seed samples another fallback.
    other = load_engine(looping[kind], LANGUAGE, dataclasses.replace(GUARDED, seed=7), FLOAT32)
    assert other.transcribe(clips()) != texts


@pytest.mark.parametrize("kind", ENGINES)
def test_a_silent_window_is_empty(silent, kind):
    unguarded = load_engine(silent[kind], LANGUAGE, DecodeOptions.plain(2, 1, 8), FLOAT32)
    assert unguarded.transcribe(clips()) == ["!" * 8] * 2  # guesses: every logit equal
    assert load_engine(silent[kind], LANGUAGE, GUARDED, FLOAT32).transcribe(clips()) == ["", ""]


@pytest.mark.slow  # both engines, a forward pass each
def test_both_engines_measure_the_same_attempt(looping):
    """Same tokens, summed log-probability and no-speech probability from either engine."""
    import ctranslate2
    import torch

    from swedish_transcriber.evaluation.transcription import _GuardedGenerate

    hf = load_engine(looping["transformers"], LANGUAGE, GUARDED, FLOAT32)
    fast = load_engine(looping["ctranslate2"], LANGUAGE, GUARDED, FLOAT32)
    assert isinstance(hf, TransformersEngine) and isinstance(fast, CTranslate2Engine)
    features = fast.features(clips())
    with torch.no_grad():
        ours = _GuardedGenerate(
            hf.model, hf.processor.tokenizer, torch.tensor(features), "sv", "transcribe", GUARDED
        )([0, 1], 0.0, [40, 12], 0)
    encoded = np.asarray(fast.model.encode(ctranslate2.StorageView.from_array(features)))
    theirs = fast._attempts(encoded, 0.0, [40, 12], 0)
    for a, b in zip(ours, theirs, strict=True):
        assert a.tokens == b.tokens and len(a.tokens) in (40, 12)
        assert a.sum_logprob == pytest.approx(b.sum_logprob, rel=1e-3)
        assert a.no_speech_prob == pytest.approx(b.no_speech_prob, rel=1e-3)
        assert a.avg_logprob == pytest.approx(
            np.log(0.52) * len(a.tokens) / (len(a.tokens) + 1), abs=0.02
        )


def test_ct2_transcribe_features_is_its_audio_path(looping):
    engine = load_engine(looping["ctranslate2"], LANGUAGE, GUARDED, FLOAT32)
    features = engine.features(clips())
    assert engine.transcribe_features(features, [2.0, 5.0]) == engine.transcribe(clips())
    assert engine.transcribe_features(np.zeros((0, 80, 3000), np.float32), []) == []
    with raises_naming(ValueError, 1, 2):  # durations and clips
        engine.transcribe_features(features, [2.0])
    with raises_naming(ValueError, 80, str(features[:, :40].shape)):  # mels, and the shape
        engine.transcribe_features(features[:, :40], [2.0, 5.0])


def test_transcribe_table_caps_by_the_duration_column(looping):
    from swedish_transcriber.evaluation.transcription import load_model, transcribe_table

    model, processor = load_model(looping["transformers"], "sv", "transcribe")
    table = feature_table(3, seed=0, split="test")  # durations 1.5, 2.5, 3.5 s
    capped = dataclasses.replace(
        GUARDED, temperatures=(0.0,), batch_size=2, max_tokens_per_second=2.0, max_tokens_slack=1
    )
    texts = transcribe_table(
        model, processor, table, capped, "sv", "transcribe", EncoderContext.padded()
    )
    assert [len(t) for t in texts] == [token_cap(d, capped) for d in table["duration"]]
    assert texts == ["j" * 4, "j" * 6, "j" * 8]  # ceil(2 d) + 1
