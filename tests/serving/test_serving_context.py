"""The encoder context in serving: short log-mel, both engines, long audio, the export, the page.

``whisper.context: clip`` feeds the encoder a clip's own frames (rounded up to whole seconds,
at least a minimum) instead of the 30 s window. The references here are the padded path as
it was before the knob (features and ids), the window's features sliced by hand, and each
engine against the other.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from swedish_transcriber.data.features import pad_features, stored_frames
from swedish_transcriber.model.export import export_ct2
from swedish_transcriber.model.source import ModelLanguage
from swedish_transcriber.serving.engines.contract import EngineSettings, by_context
from swedish_transcriber.serving.engines.ctranslate2_engine import CTranslate2Engine
from swedish_transcriber.serving.engines.factory import load_engine
from swedish_transcriber.serving.engines.transformers_engine import TransformersEngine, _features
from swedish_transcriber.serving.log_mel import LogMel, MelSettings
from swedish_transcriber.serving.long_form import ChunkPlan, plan_chunks, transcribe_audio
from swedish_transcriber.whisper import (
    CONTEXT_KEY,
    N_FRAMES,
    SAMPLE_RATE,
    DecodeOptions,
    EncoderContext,
    model_context,
)
from tests.media_files import tone
from tests.messages import raises_naming
from tests.tiny import save_tiny_base

SR = SAMPLE_RATE
LANGUAGE = ModelLanguage("sv", "transcribe")
OPTIONS = DecodeOptions.plain(batch_size=4, num_beams=1, max_new_tokens=10)
FLOAT32 = EngineSettings(threads=1, ct2_compute_type="float32")
PADDED = EncoderContext.padded()
CLIP = EncoderContext("clip", 0.0)
CLIP_2S = EncoderContext("clip", 2.0)


def lengths() -> list[int]:
    """Clip lengths (samples) around every edge: empty, a hop, a second, near the window."""
    return [0, 1, 159, 160, 161, 15_800, 15_900, 15_999, 16_000, 16_001, 16_200, 79_950]


def noise(n: int, seed: int = 0) -> np.ndarray:
    """A clip whose loudest frame is its last: the ``max - 8`` floor then hinges on it."""
    rng = np.random.default_rng(seed)
    clip = (0.05 * rng.standard_normal(n)).astype(np.float32)
    clip[-min(n, 120) :] *= 40.0
    return clip


def log_mel_before(settings: MelSettings, clip: np.ndarray) -> np.ndarray:
    """``LogMel.one`` as it was before the context knob (the padded path's reference)."""
    s = settings
    lm = LogMel(s)
    audio = np.zeros(s.n_samples, dtype=np.float32)
    n = min(int(clip.shape[0]), s.n_samples)
    audio[:n] = np.asarray(clip, dtype=np.float32).reshape(-1)[:n]
    half = s.n_fft // 2
    padded = np.pad(audio, half, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, s.n_fft)[:: s.hop_length]
    used = min(s.n_frames, -(-(n + half) // s.hop_length))
    spectrum = np.fft.rfft(frames[:used] * lm.window, axis=-1)
    power = spectrum.real**2 + spectrum.imag**2
    mel = np.zeros((s.n_mels, s.n_frames), dtype=np.float32)
    mel[:, :used] = lm.filters @ power.T.astype(np.float32)
    log_mel = np.log10(np.maximum(mel, 1e-10))
    log_mel = np.maximum(log_mel, log_mel.max() - 8.0)
    return ((log_mel + 4.0) / 4.0).astype(np.float32)


# --------------------------------------------------------------------------- log-mel


def test_padded_log_mel_is_byte_identical_to_before():
    settings = MelSettings()
    clips = [noise(n, seed=n) for n in lengths()] + [tone(30.0, SR, seed=2)]
    ours = LogMel(settings)(clips)
    for clip, got in zip(clips, ours, strict=True):
        assert got.tobytes() == log_mel_before(settings, clip).tobytes()


@pytest.mark.parametrize("min_seconds", [0.0, 1.0, 5.0])
def test_short_context_is_exactly_the_windows_first_frames(min_seconds):
    context = EncoderContext("clip", min_seconds)
    log_mel = LogMel(MelSettings())
    for n in lengths():
        clip = noise(n, seed=n)
        frames = context.frames_for_samples(n)
        window = log_mel.one(clip)
        short = log_mel.one(clip, frames)
        assert short.shape == (80, frames) and short.dtype == np.float32
        assert short.tobytes() == np.ascontiguousarray(window[:, :frames]).tobytes(), n
        # A batch of one length is the same, clip by clip.
        batch = log_mel([clip, noise(n // 2, seed=1)], frames)
        assert batch.shape == (2, 80, frames) and np.array_equal(batch[0], short)
    with raises_naming(ValueError, "n_frames", 3001, "[1, 3000]"):  # asked, and the bounds
        log_mel.one(noise(10), 3001)


def test_a_shorter_window_computed_directly_is_not_the_same():
    """Why the short features are sliced from the window instead of computed on 1 s.

    A clip that ends just before the context's edge has frames past the edge that still hear
    it: the window's ``max - 8`` floor counts them, and its STFT reflects zeros at the edge,
    where a 1 s window would reflect the clip itself.
    """
    from transformers import WhisperFeatureExtractor

    # Quiet (below the 80 dB floor of its loudest frame), with a click at its very end.
    clip = (1e-6 * np.random.default_rng(3).standard_normal(16_000)).astype(np.float32)
    clip[-40:] = 1.0
    frames = CLIP.frames_for_samples(clip.shape[0])
    # Every frame that hears the clip is inside its context (the pipeline's stored frames).
    assert frames == 200 and stored_frames(clip.shape[0]) == 102
    direct = WhisperFeatureExtractor(feature_size=80, chunk_length=2)(
        [clip], sampling_rate=SR, return_tensors="np"
    ).input_features[0]
    window = WhisperFeatureExtractor(feature_size=80)(
        [clip], sampling_rate=SR, return_tensors="np"
    ).input_features[0]
    assert direct.shape == (80, 200)
    ours = LogMel(MelSettings()).one(clip, frames)
    np.testing.assert_allclose(ours, window[:, :200], rtol=0, atol=1e-4)
    # A window cut at the clip's own end would lose the frames that still hear its click.
    cut = WhisperFeatureExtractor(feature_size=80, chunk_length=1)(
        [clip], sampling_rate=SR, return_tensors="np"
    ).input_features[0]
    assert np.abs(cut - window[:, :100]).max() > 1e-2


def test_short_features_are_what_the_pipelines_stored_frames_rebuild():
    """The pipeline stores a clip's own frames and a pad value (data/features.py)."""
    from transformers import WhisperFeatureExtractor

    extractor = WhisperFeatureExtractor(feature_size=80)
    processor = type("Processor", (), {"feature_extractor": extractor})()
    for n in (8_000, 15_000, 47_000):
        clip = noise(n, seed=n)
        window = extractor([clip], sampling_rate=SR, return_tensors="np").input_features[0]
        keep = stored_frames(n)
        frames = CLIP.frames_for_samples(n)
        rebuilt = pad_features([window[:, :keep].T], [window[0, keep]], frames)[0]
        assert np.array_equal(_features(processor, [clip], frames)[0], rebuilt)
        np.testing.assert_allclose(LogMel(MelSettings()).one(clip, frames), rebuilt, atol=1e-4)


# --------------------------------------------------------------------------- engines


def engine_clips() -> list[np.ndarray]:
    """Lengths that fall in different 1 s buckets, one pair sharing one, given out of order.

    (The random tiny model has near-ties between its logits on some inputs, where float
    rounding alone picks the token; these clips have none.)
    """
    return [
        tone(4.5, SR, seed=2),
        tone(1.0, SR, seed=1),
        tone(12.0, SR, seed=5),
        tone(2.2, SR, seed=7),
        tone(0.9, SR, seed=4),
    ]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """The tiny Whisper, a clip-trained copy of it (its record only), and their exports."""
    root = tmp_path_factory.mktemp("serving-context")
    base = save_tiny_base(root / "tiny")
    clip = root / "tiny-clip"
    shutil.copytree(base, clip)
    config = json.loads((clip / "config.json").read_text(encoding="utf-8"))
    config[CONTEXT_KEY] = CLIP_2S.record()
    (clip / "config.json").write_text(json.dumps(config), encoding="utf-8")
    export_ct2(base, root / "ct2", "float32")
    export_ct2(clip, root / "ct2-clip", "float32", {"batch_size": 2})
    return {"base": base, "clip": clip, "ct2": root / "ct2", "ct2-clip": root / "ct2-clip"}


def widths_seen(engine: CTranslate2Engine) -> list[int]:
    """Record the frame count of every batch of features the engine computes."""
    seen: list[int] = []
    compute = engine.features

    class Spy:
        settings = compute.settings

        def __call__(self, clips, n_frames=None):
            out = compute(clips, n_frames)
            seen.append(out.shape[-1])
            return out

    engine.features = Spy()
    return seen


def test_by_context_groups_by_length_and_keeps_the_order():
    clips = [np.zeros(n, np.float32) for n in (5_000, 40_000, 0, 17_000, 39_000)]
    calls: list[tuple[int, int]] = []

    def run(group, frames):
        calls.append((frames, len(group)))
        return [(frames, g.shape[0]) for g in group]

    out = by_context(clips, CLIP, run)
    assert out == [(100, 5_000), (300, 40_000), (100, 0), (200, 17_000), (300, 39_000)]
    assert calls == [(100, 2), (300, 2), (200, 1)]
    calls.clear()
    assert [f for f, _ in by_context(clips, PADDED, run)] == [N_FRAMES] * 5
    assert calls == [(N_FRAMES, 5)]  # padded: one call, as before the knob


@pytest.mark.parametrize("context", [PADDED, CLIP, CLIP_2S], ids=["padded", "clip", "clip-2s"])
def test_both_engines_give_the_same_ids(tiny, context, monkeypatch):
    clips = engine_clips()
    hf = load_engine(tiny["base"], LANGUAGE, OPTIONS, FLOAT32, context)
    ct2 = load_engine(tiny["ct2"], LANGUAGE, OPTIONS, FLOAT32, context)
    assert isinstance(hf, TransformersEngine) and isinstance(ct2, CTranslate2Engine)
    assert hf.context == ct2.context == context
    seen = widths_seen(ct2)
    ids = ct2.generate_ids(clips)
    assert hf.generate_ids(clips) == ids
    assert [len(i) for i in ids] == [OPTIONS.max_new_tokens] * len(clips)
    want = list(dict.fromkeys(context.frames_for_samples(c.shape[0]) for c in clips))
    assert seen == want  # one encoder call per context length
    # Each clip's ids are its own: batched with others or alone, whatever the grouping.
    assert [ct2.generate_ids([c])[0] for c in clips] == ids


@pytest.mark.slow  # both engines and transformers' generate on every edge length
def test_padded_ids_are_byte_identical_to_before(tiny):
    """The padded path: the whole window's features into the plain model, as before."""
    import ctranslate2
    import torch

    from swedish_transcriber.data.features import load_processor
    from swedish_transcriber.evaluation.transcription import load_model

    clips = engine_clips()
    ct2 = load_engine(tiny["ct2"], LANGUAGE, OPTIONS, FLOAT32)
    assert ct2.context == PADDED  # an export of a model that recorded none
    model = ctranslate2.models.Whisper(
        str(tiny["ct2"]), device="cpu", compute_type="float32", intra_threads=FLOAT32.threads
    )
    features = np.stack([log_mel_before(MelSettings(), c) for c in clips])
    before = model.generate(
        ctranslate2.StorageView.from_array(features),
        [ct2.prompt] * len(clips),
        beam_size=OPTIONS.num_beams,
        max_length=2 * OPTIONS.max_new_tokens,
    )
    assert ct2.generate_ids(clips) == [list(r.sequences_ids[0]) for r in before]

    hf = load_engine(tiny["base"], LANGUAGE, OPTIONS, FLOAT32)
    plain, _ = load_model(tiny["base"], "sv", "transcribe")  # transformers' own encoder
    processor = load_processor(tiny["base"], "sv", "transcribe")
    window = processor.feature_extractor(clips, sampling_rate=SR, return_tensors="np")
    assert np.array_equal(_features(processor, clips), window.input_features)
    with torch.no_grad():
        out = plain.generate(
            torch.as_tensor(window.input_features),
            language="sv",
            task="transcribe",
            max_new_tokens=OPTIONS.max_new_tokens,
            do_sample=False,
        )
    rows = [r[4:] if r[:4] == ct2.prompt else r for r in out.tolist()]
    assert hf.generate_ids(clips) == rows == ct2.generate_ids(clips)
    assert hf.transcribe(clips) == ct2.transcribe(clips)


def test_clip_context_changes_what_the_model_hears(tiny):
    clips = engine_clips()
    ct2 = load_engine(tiny["ct2"], LANGUAGE, OPTIONS, FLOAT32)
    padded = ct2.generate_ids(clips)
    short = load_engine(tiny["ct2"], LANGUAGE, OPTIONS, FLOAT32, CLIP).generate_ids(clips)
    assert short != padded
    # At the full window, clip is padded: a 30 s clip's ids do not depend on the knob.
    whole = [tone(30.0, SR, seed=9)]
    assert load_engine(tiny["ct2"], LANGUAGE, OPTIONS, FLOAT32, CLIP).generate_ids(
        whole
    ) == ct2.generate_ids(whole)


@pytest.mark.slow  # four exports loaded and decoded
def test_engines_serve_the_context_their_model_recorded(tiny):
    assert model_context(tiny["clip"]) == CLIP_2S
    for name, want in (("base", PADDED), ("ct2", PADDED), ("clip", CLIP_2S), ("ct2-clip", CLIP_2S)):
        assert load_engine(tiny[name], LANGUAGE, OPTIONS, FLOAT32).context == want, name
    clips = engine_clips()
    recorded = load_engine(tiny["ct2-clip"], LANGUAGE, OPTIONS, FLOAT32)
    seen = widths_seen(recorded)
    texts = recorded.transcribe(clips)
    assert all(isinstance(t, str) for t in texts) and max(seen) < N_FRAMES
    # The same weights served with the context given instead: a clip export served padded
    # (and a padded one served clip) works, and gives what the other export gives.
    as_padded = load_engine(tiny["ct2-clip"], LANGUAGE, OPTIONS, FLOAT32, PADDED)
    plain = load_engine(tiny["ct2"], LANGUAGE, OPTIONS, FLOAT32)
    assert as_padded.generate_ids(clips) == plain.generate_ids(clips)
    as_clip = load_engine(tiny["ct2"], LANGUAGE, OPTIONS, FLOAT32, CLIP_2S)
    assert as_clip.generate_ids(clips) == recorded.generate_ids(clips)
    assert as_clip.transcribe(clips) == texts


def test_transcribe_features_takes_a_short_context(tiny):
    """The transcribe stage hands the CTranslate2 engine stored frames padded to a context."""
    ct2 = load_engine(tiny["ct2"], LANGUAGE, OPTIONS, FLOAT32, CLIP)
    clips = [tone(1.4, SR, seed=1), tone(1.8, SR, seed=2)]
    features = ct2.features(clips, 200)
    durations = [c.shape[0] / SR for c in clips]
    assert ct2.transcribe_features(features, durations) == ct2.transcribe(clips)


# --------------------------------------------------------------------------- long audio


def test_long_audio_chunks_get_their_own_context(tiny):
    """Audio over 30 s is still cut into chunks of at most 30 s (at pauses); under clip each
    chunk is a clip of its own: a full chunk gets the whole window, a shorter one less."""
    plan = ChunkPlan(chunk_seconds=30.0, min_pause=0.3, silence_threshold_db=-45.0, padding=0.1)
    gap = np.zeros(SR, np.float32)
    audio = np.concatenate([tone(29.6, SR, seed=3), gap, tone(9.5, SR, seed=4), gap])
    ranges = plan_chunks(audio, plan)
    want = [CLIP_2S.frames_for_samples(b - a) for a, b in ranges]
    assert want == [N_FRAMES, 1000]
    engine = load_engine(tiny["ct2"], LANGUAGE, OPTIONS, FLOAT32, CLIP_2S)
    seen = widths_seen(engine)
    transcript = transcribe_audio(audio, engine, plan, batch_size=2)
    assert seen == want and len(transcript.segments) == 2
    # Padded: every chunk gets the whole window, in one call, as before.
    padded = load_engine(tiny["ct2"], LANGUAGE, OPTIONS, FLOAT32)
    seen = widths_seen(padded)
    transcribe_audio(audio, padded, plan, batch_size=2)
    assert seen == [N_FRAMES]


# --------------------------------------------------------------------------- export


def test_export_records_the_context_its_model_was_trained_for(tiny, tmp_path):
    for name, want in (("ct2", PADDED), ("ct2-clip", CLIP_2S)):
        written = json.loads((tiny[name] / "decode_options.json").read_text(encoding="utf-8"))
        assert EncoderContext.from_record(written[CONTEXT_KEY], name) == want
        info = json.loads((tiny[name] / "export_info.json").read_text(encoding="utf-8"))
        assert info[CONTEXT_KEY] == want.record()
    written = json.loads((tiny["ct2-clip"] / "decode_options.json").read_text(encoding="utf-8"))
    assert written["batch_size"] == 2  # the decode options beside it
    with raises_naming(ValueError, "decode_options", CONTEXT_KEY):
        export_ct2(tiny["base"], tmp_path / "x", "int8", {CONTEXT_KEY: CLIP.record()})
    broken = tmp_path / "broken"
    shutil.copytree(tiny["base"], broken)
    config = json.loads((broken / "config.json").read_text(encoding="utf-8"))
    (broken / "config.json").write_text(
        json.dumps({**config, CONTEXT_KEY: {"context": "own"}}), encoding="utf-8"
    )
    with raises_naming(ValueError, broken / "config.json", CONTEXT_KEY):
        export_ct2(broken, tmp_path / "out", "int8")
    assert not (tmp_path / "out").exists()
