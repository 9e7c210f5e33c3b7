"""The demo page, driven by Streamlit's AppTest with the tiny Whisper (fast on a CPU)."""

from __future__ import annotations

import errno
import io
import json
import pathlib
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import streamlit as st
import yaml
from streamlit.testing.v1 import AppTest

from swedish_transcriber.model.export import export_ct2
from swedish_transcriber.serving import media, model_paths, page
from swedish_transcriber.serving.engines import factory
from swedish_transcriber.whisper import CHUNK_LENGTH
from tests.media_files import encode, tone
from tests.messages import assert_names
from tests.page_checks import (
    APP,
    CT2_LABEL,
    MISSING_LABEL,
    REPO_PARAMS,
    TRANSFORMERS_LABEL,
    errors,
    expected,
    plain,
)
from tests.repo_params import REPO, dotted, write_params


def test_page_is_drawn_only_when_run_as_main(monkeypatch):
    """A spawn child imports the parent's main script as __mp_main__: it must draw nothing."""
    import runpy

    import streamlit

    class Drawn(Exception):
        pass

    def set_page_config(*args, **kwargs):
        raise Drawn

    monkeypatch.setattr(streamlit, "set_page_config", set_page_config)
    namespace = runpy.run_path(APP, run_name="__mp_main__")
    assert callable(namespace["main"])
    with pytest.raises(Drawn):
        runpy.run_path(APP, run_name="__main__")


def wav(audio: np.ndarray, sample_rate: int = 16_000) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def flac(audio: np.ndarray, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, sample_rate, format="FLAC")
    return buffer.getvalue()


def test_model_picker_offers_built_models_and_says_what_is_missing(app):
    radio = app.sidebar.radio(key="model")
    assert radio.options == [TRANSFORMERS_LABEL, CT2_LABEL, "Another directory…"]
    assert radio.value == TRANSFORMERS_LABEL
    notes = plain(" ".join(c.value for c in app.sidebar.caption))
    assert f"Not available: {MISSING_LABEL}" in notes and "ct2-not-there" in notes
    assert app.info[0].value == "Choose a file or record a clip to start."
    assert not errors(app)


def test_uploaded_clip_is_transcribed_with_segments_and_downloads(app, params_file):
    data = wav(np.concatenate([np.zeros(8000, np.float32), tone(2.0, 16_000, seed=4)]))
    app.file_uploader(key="audio_file").upload("hej.wav", data, "audio/wav").run()
    assert app.slider(key="trim").value == (0.0, 2.5)
    app.button(key="transcribe").click().run()
    assert not errors(app)
    text = expected(params_file, params_file.parent / "models/tiny", data, "hej.wav")
    assert text and app.text[0].value == text
    segments = app.dataframe[0].value
    assert list(segments.columns) == ["start", "end", "text"] and len(segments) == 1
    assert segments.start[0] == "00:00:00.400"  # the leading 0.5 s of silence is skipped
    assert "2.5 s of audio" in " ".join(c.value for c in app.caption)
    assert "tiny (transformers)" in " ".join(c.value for c in app.caption)
    # The downloads' labels; their contents are subtitles.to_txt / to_srt (tested there).
    assert {"Download .txt", "Download .srt"} <= {b.proto.label for b in app.get("download_button")}


def test_ct2_model_and_a_typed_directory(app, params_file):
    data = wav(tone(1.5, 16_000, seed=5))
    app.sidebar.radio(key="model").set_value(CT2_LABEL).run()
    app.file_uploader(key="audio_file").upload("a.wav", data, "audio/wav").run()
    app.button(key="transcribe").click().run()
    ct2_dir = params_file.parent / "models/tiny-ct2"
    assert app.text[0].value == expected(params_file, ct2_dir, data, "a.wav")
    assert CT2_LABEL in " ".join(c.value for c in app.caption)

    app.sidebar.radio(key="model").set_value("Another directory…").run()
    assert app.sidebar.info[0].value == "Type the path of a model directory inside models/"
    app.sidebar.text_input(key="model_dir").input("models/nowhere").run()
    (message,) = [plain(e.value) for e in app.sidebar.error]
    assert_names(message, "models/nowhere")  # as typed, not the server's absolute path
    assert str(params_file.parent) not in message
    app.sidebar.text_input(key="model_dir").input(str(ct2_dir)).run()
    app.button(key="transcribe").click().run()
    assert not errors(app) and not app.sidebar.error
    assert app.text[0].value == expected(params_file, ct2_dir, data, "a.wav")


def test_trimmed_clip_is_what_gets_transcribed(app):
    data = wav(tone(4.0, 16_000, seed=6))
    app.file_uploader(key="audio_file").upload("long.wav", data, "audio/wav").run()
    app.slider(key="trim").set_value((1.0, 2.5)).run()
    assert len(app.get("audio")) == 1  # the preview player
    app.button(key="transcribe").click().run()
    assert not errors(app)
    assert "1.5 s of audio" in " ".join(c.value for c in app.caption)


@pytest.mark.slow  # ffmpeg decodes and two transcriptions under AppTest
def test_video_and_microphone_inputs(app, params_file):
    audio = tone(2.0, 16_000, seed=7)
    app.radio(key="source").set_value("Video file").run()
    assert {".mp4", ".webm", ".mkv"} <= set(app.file_uploader(key="video_file").allowed_type)
    app.file_uploader(key="video_file").upload("talk.mp4", encode(audio, 16_000, "mp4")).run()
    app.button(key="transcribe").click().run()
    assert not errors(app) and app.text[0].value

    app.radio(key="source").set_value("Microphone").run()
    recording = wav(audio)
    app.get("audio_input")[0].upload("recording.wav", recording).run()
    app.button(key="transcribe").click().run()
    assert not errors(app)
    tiny = params_file.parent / "models/tiny"
    assert app.text[0].value == expected(params_file, tiny, recording, "recording.wav")


def test_long_audio_is_transcribed_in_timed_chunks(app):
    parts = []
    for i in range(5):  # 5 x (12 s speech + 1 s pause) = 65 s
        parts += [tone(12.0, 16_000, seed=i), np.zeros(16_000, np.float32)]
    data = encode(np.concatenate(parts), 16_000, "mp3")
    app.file_uploader(key="audio_file").upload("lecture.mp3", data, "audio/mpeg").run()
    app.button(key="transcribe").click().run()
    assert not errors(app)
    segments = app.dataframe[0].value
    assert len(segments) == 3  # 2 + 2 + 1 utterances, each chunk <= 30 s
    assert segments.start.tolist() == sorted(segments.start.tolist())
    assert "3 chunk(s)" in " ".join(c.value for c in app.caption)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.wav", b"", "the file is empty"),
        ("notes.wav", b"just some text, not audio\n" * 40, "not an audio or video file"),
        ("silence.wav", wav(np.zeros(32_000, np.float32)), "the clip is silent"),
        ("huge.wav", wav(tone(100.0, 16_000)), "the limit is 3 MB"),
        ("long.flac", encode(tone(95.0, 16_000), 16_000, "flac"), "longer than the limit of 90 s"),
        ("blip.wav", wav(tone(0.02, 16_000)), "only 0.020 s long"),
        ("bomb.flac", flac(np.zeros((200_000, 4), np.float32), 1), "sample rate is 1 Hz"),
    ],
    ids=["empty", "not-audio", "silent", "too-big", "too-long", "too-short", "1-hz"],
)
def test_bad_input_gets_a_message_and_the_page_keeps_working(app, name, data, message):
    app.file_uploader(key="audio_file").upload(name, data, "audio/wav").run()
    shown = errors(app)
    assert len(shown) == 1 and message in shown[0] and name in shown[0]
    assert not app.button  # nothing to transcribe
    good = wav(tone(1.0, 16_000, seed=8))
    app.file_uploader(key="audio_file").upload("good.wav", good, "audio/wav").run()
    app.button(key="transcribe").click().run()
    assert not errors(app) and app.text[0].value


@pytest.mark.parametrize("channels", [8, 9])
def test_many_channel_upload_is_transcribed(app, channels):
    """An 8- or 9-channel file once killed the server (SIGSEGV in PyAV's planar path)."""
    audio = np.tile(tone(1.0, 16_000, seed=9)[:, None], (1, channels))
    app.file_uploader(key="audio_file").upload(f"ch{channels}.wav", wav(audio), "audio/wav").run()
    app.button(key="transcribe").click().run()
    assert not errors(app) and app.text[0].value


def test_a_refusal_is_cached_so_a_rerun_does_not_decode_again(app, monkeypatch):
    calls: list[str] = []
    decode = media.decode

    def counted(data, name, limits):
        calls.append(name)
        return decode(data, name, limits)

    monkeypatch.setattr(media, "decode", counted)
    bomb = flac(np.zeros((100_000, 3), np.float32), 2)  # unlike any other test's upload
    app.file_uploader(key="audio_file").upload("cached.flac", bomb, "audio/flac").run()
    assert_names(errors(app)[0], "cached.flac", "2 Hz")
    app.run()
    app.run()
    assert_names(errors(app)[0], "cached.flac", "2 Hz")
    assert calls == ["cached.flac"]


def recording(turn, seen: list[float]):
    """``turn`` (media's wait for a slot) that also records each wait it reports."""

    def watched(limit, on_wait, poll=0.25):
        def told(seconds):
            seen.append(seconds)
            on_wait(seconds)

        return turn(limit, told, poll)

    return watched


def test_uploads_beyond_the_decode_limit_wait_with_a_message(app, params_file):
    """Finding 6 (issue 19): any number of decodes ran at once. Every slot is taken here, so
    the upload waits, is told so, and is decoded once a slot frees."""
    limit = page.load_config(params_file).app.limits.max_concurrent_decodes
    slots = media.decode_slots(limit)
    for _ in range(limit):
        assert slots.acquire(blocking=False)
    seen: list[float] = []
    watched = recording(media.decode_turn, seen)
    release = threading.Timer(1.5, lambda: [slots.release() for _ in range(limit)])
    release.start()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(media, "decode_turn", watched)
            audio = tone(2.0, 16_000, seed=21)
            app.file_uploader(key="audio_file").upload("waits.wav", wav(audio), "audio/wav")
            app.run()
    finally:
        release.join()
    assert not errors(app)
    assert seen and seen[0] == 0.0 and seen[-1] > 1.0  # told at once, and while it waited
    assert any("Decoded after waiting" in c.value for c in app.caption)
    assert app.button(key="transcribe")  # the clip is there


@pytest.mark.slow  # transcriptions held on purpose in threads
def test_transcriptions_beyond_the_limit_wait_with_a_message(app, params_file):
    """One model serves every session; at most max_concurrent_transcriptions run at once."""
    limit = page.load_config(params_file).app.limits.max_concurrent_transcriptions
    slots = media.work_slots("transcription", limit)
    app.file_uploader(key="audio_file").upload(
        "turn.wav", wav(tone(2.0, 16_000, seed=22)), "audio/wav"
    )
    app.run()
    # Once first: the engine loads (seconds, in a cold process) before any slot is taken,
    # so the slots below are still held when the page asks for one.
    app.button(key="transcribe").click().run()
    for _ in range(limit):
        assert slots.acquire(blocking=False)
    seen: list[float] = []
    watched = recording(media.transcription_turn, seen)
    release = threading.Timer(1.5, lambda: [slots.release() for _ in range(limit)])
    release.start()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(media, "transcription_turn", watched)
            app.button(key="transcribe").click().run()
    finally:
        release.join()
    assert not errors(app) and app.text[0].value
    assert seen and seen[0] == 0.0 and seen[-1] > 1.0


def test_a_file_name_holding_markdown_is_shown_as_plain_text(app):
    """Finding 3 on the main page: a visitor's file name goes into error messages."""
    name = "![p](http__host_pixel.png) [click](http__host_phish) <img src=x>.wav"
    app.file_uploader(key="audio_file").upload(name, b"", "audio/wav").run()
    from markdown_it import MarkdownIt

    (message,) = [e.value for e in app.error]
    html = MarkdownIt("commonmark", {"html": True}).render(message)
    assert "<img" not in html and "<a " not in html, html
    assert plain(message).startswith(name)


def test_server_upload_limit_follows_the_params(app, params_file):
    """The upload endpoint checks only server.maxUploadSize; the page sets it from params."""
    from streamlit import config as streamlit_config

    limits = page.load_config(params_file).app.limits
    assert streamlit_config.get_option("server.maxUploadSize") == media.upload_limit_mb(limits)
    assert app.file_uploader(key="audio_file").proto.max_upload_size_mb == 3


def test_reference_text_shows_wer_and_the_differing_words(app):
    app.file_uploader(key="audio_file").upload("a.wav", wav(tone(1.0, 16_000)), "audio/wav").run()
    app.button(key="transcribe").click().run()
    transcript = app.text[0].value
    app.text_area(key="reference").input(transcript).run()
    assert app.metric[0].value == "0.0%"
    app.text_area(key="reference").input("Det regnar i Göteborg.").run()
    assert float(app.metric[0].value.rstrip("%")) > 0
    diff = app.markdown[-1].value
    assert 'class="word-diff"' in diff and "göteborg" in diff
    app.text_area(key="reference").input("?!").run()
    assert "no words to compare" in errors(app)[0]


def test_unreadable_settings_are_reported(tmp_path, monkeypatch):
    bad = write_params(tmp_path, {"app.decode.batch_size": 0}, only=("model", "decode", "app"))
    monkeypatch.setenv(page.PARAMS_ENV, str(bad))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert_names(errors(at)[0], "app.decode", "batch_size", ">= 1")


def test_without_the_variable_the_page_reads_the_repos_params(monkeypatch):
    monkeypatch.delenv(page.PARAMS_ENV, raising=False)
    assert page.params_path() == REPO / "params.yaml"
    config = page.load_config()
    assert config.root == REPO
    assert config.app.decode.batch_size == REPO_PARAMS["app"]["decode"]["batch_size"]
    assert config.app.chunks.chunk_seconds <= CHUNK_LENGTH


def params_variant(params_file: Path, name: str, **app) -> Path:
    """The fixture's params with some ``app`` keys changed, beside it (same relative models)."""
    return write_params(params_file.parent / f"{name}.yaml", dotted("app", app), base=params_file)


def run_page(params: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv(page.PARAMS_ENV, str(params))
    return AppTest.from_file(APP, default_timeout=120).run()


def test_other_directories_are_offered_only_when_params_allow_them(params_file, monkeypatch):
    closed = run_page(
        params_variant(params_file, "closed", allow_other_directories=False), monkeypatch
    )
    assert closed.sidebar.radio(key="model").options == [TRANSFORMERS_LABEL, CT2_LABEL]
    assert not closed.sidebar.text_input and not errors(closed)
    nothing = params_variant(
        params_file, "nothing", allow_other_directories=False, models={"x": "models/not-built"}
    )
    at = run_page(nothing, monkeypatch)
    assert not at.sidebar.radio and not errors(at)
    assert at.sidebar.warning[0].value == "No model is available on this server yet."
    no_roots = params_variant(params_file, "no-roots", model_roots=[])
    assert_names(errors(run_page(no_roots, monkeypatch))[0], "app", "model_roots")


@pytest.fixture(scope="module")
def outside_model(params_file) -> Path:
    """A working Whisper on the host but outside ``app.model_roots``, and a link to it inside."""
    root = params_file.parent
    elsewhere = root / "elsewhere"
    if not elsewhere.exists():
        shutil.copytree(root / "models" / "tiny-ct2", elsewhere)
        (root / "models" / "escape").symlink_to(elsewhere)
    return elsewhere


def type_directory(app: AppTest, text: str) -> AppTest:
    app.sidebar.radio(key="model").set_value("Another directory…").run()
    return app.sidebar.text_input(key="model_dir").input(text).run()


@pytest.mark.parametrize(
    "text",
    [
        "models/../elsewhere",  # a loadable Whisper, one level out
        "../",
        "../../../../../../etc",
        "models/../../../../../../etc/passwd",
        "/etc",
        "/",
        "ABSOLUTE",  # the outside model by its absolute path
        "/" + "a" * 300,
        "models/../" + "a" * 300,
        "models/escape",  # a symlink inside the roots to the outside model
        "models/escape/../tiny",
    ],
)
def test_typed_paths_outside_the_roots_get_one_neutral_message(app, outside_model, text):
    text = str(outside_model) if text == "ABSOLUTE" else text
    type_directory(app, text)
    assert [plain(e.value) for e in app.sidebar.error] == [model_paths.REFUSED]
    assert not app.exception
    assert app.info[0].value == "Choose a file or record a clip to start."  # still drawn


def test_existing_and_missing_paths_outside_the_roots_read_the_same(app, outside_model):
    shown = set()
    for text in (str(outside_model), str(outside_model) + "-missing", "/etc", "/etc-missing"):
        type_directory(app, text)
        shown.add(tuple(plain(e.value) for e in app.sidebar.error))
    assert shown == {(model_paths.REFUSED,)}


def test_an_over_long_name_inside_the_roots_is_a_message_not_a_traceback(app):
    type_directory(app, "models/" + "a" * 300)  # Path.is_dir raises OSError (ENAMETOOLONG)
    assert not app.exception
    (message,) = [plain(e.value) for e in app.sidebar.error]
    assert_names(message, "File name too long")  # the OS's reason
    assert len(message) < 120
    assert app.info[0].value == "Choose a file or record a clip to start."


def test_an_unreadable_directory_is_a_message(app, params_file, monkeypatch):
    """chmod 000 blocks nothing for root, who runs the tests: the EACCES is simulated."""
    locked = (params_file.parent / "models" / "tiny").resolve()
    real_stat = pathlib.Path.stat

    def stat(self, *args, **kwargs):
        if self == locked or locked in self.parents:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_stat(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "stat", stat)
    type_directory(app, "models/tiny")
    (message,) = [plain(e.value) for e in app.sidebar.error]
    assert_names(message, "models/tiny", "Permission denied")  # as typed, and the OS's reason
    assert str(params_file.parent) not in message
    assert not app.exception


def test_a_model_that_fails_to_load_is_a_message_without_server_paths(
    app, params_file, monkeypatch
):
    st.cache_resource.clear()

    def load_engine(path, *settings):
        raise PermissionError(errno.EACCES, "Permission denied", f"{path}/model.safetensors")

    monkeypatch.setattr(factory, "load_engine", load_engine)
    app.file_uploader(key="audio_file").upload("a.wav", wav(tone(1.0, 16_000)), "audio/wav").run()
    app.button(key="transcribe").click().run()
    (message,) = errors(app)
    assert_names(message, TRANSFORMERS_LABEL, "Permission denied")
    assert str(params_file.parent) not in message


@pytest.mark.slow  # several model loads under AppTest
def test_the_model_cache_is_keyed_by_the_resolved_directory(app, params_file, monkeypatch):
    st.cache_resource.clear()
    loaded: list[str] = []
    real = factory.load_engine

    def load_engine(path, *settings):
        loaded.append(path)
        return real(path, *settings)

    monkeypatch.setattr(factory, "load_engine", load_engine)
    models = params_file.parent / "models"
    if not (models / "ct2-alias").exists():
        (models / "ct2-alias").symlink_to(models / "tiny-ct2")
    app.file_uploader(key="audio_file").upload("a.wav", wav(tone(1.0, 16_000)), "audio/wav").run()
    texts = []
    for text in ("models/tiny-ct2", "models/./tiny-ct2/", "models/ct2-alias", None):
        if text is None:  # the same directory as params app.models lists it
            app.sidebar.radio(key="model").set_value(CT2_LABEL).run()
        else:
            type_directory(app, text)
        app.button(key="transcribe").click().run()
        assert not errors(app)
        texts.append(app.text[0].value)
    assert loaded == [str((models / "tiny-ct2").resolve())]
    assert len(set(texts)) == 1


def test_the_shipped_streamlit_config_hides_error_details():
    """Uncaught errors must not show visitors tracebacks (they name files on the server)."""
    from streamlit.config import ShowErrorDetailsConfigOptions

    shown = subprocess.run(
        [sys.executable, "-m", "streamlit", "config", "show"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert re.search(r'^showErrorDetails = "none"$', shown, re.MULTILINE), shown
    assert ShowErrorDetailsConfigOptions("none") is ShowErrorDetailsConfigOptions.NONE


def test_each_model_shows_its_measured_wer_and_the_best_on_real_speech_is_the_default(
    params_file, monkeypatch
):
    """metrics/eval.json beside the params: WER under each label; real speech picks the default."""
    root = params_file.parent
    params = yaml.safe_load(params_file.read_text(encoding="utf-8"))
    params["evaluate"] = {
        "sets": {
            "demo_test": {
                "format": "features",
                "path": "x",
                "split": "test",
                "speech": "synthetic",
            },
            "real_sv": {"format": "pairs", "path": "y", "split": "", "speech": "real"},
        },
        "models": {"zero_shot": "models/tiny", "ct2": str(root / "models" / "tiny-ct2")},
    }
    measured = write_params(root / "measured.yaml", base=params)
    scores = {
        "demo_test": {"clips": 94, "zero_shot": {"wer_norm": 0.9}, "ct2": {"wer_norm": 0.2}},
        "real_sv": {"clips": 12, "zero_shot": {"wer_norm": 0.4}, "ct2": {"wer_norm": 0.6}},
    }
    eval_json = root / "metrics" / "eval.json"
    eval_json.parent.mkdir(exist_ok=True)
    try:
        eval_json.write_text(json.dumps(scores), encoding="utf-8")
        at = run_page(measured, monkeypatch)
        radio = at.sidebar.radio(key="model")
        assert radio.value == TRANSFORMERS_LABEL  # 40% on real speech beats 60%
        assert list(radio.proto.captions) == [
            "WER 90.0% on demo_test (synthetic speech, 94 clips); "
            "WER 40.0% on real_sv (real speech, 12 clips)",
            "WER 20.0% on demo_test (synthetic speech, 94 clips); "
            "WER 60.0% on real_sv (real speech, 12 clips)",
            "",  # Another directory…
        ]
        assert not errors(at) and not at.sidebar.warning
        scores["real_sv"]["ct2"]["wer_norm"] = 0.3
        eval_json.write_text(json.dumps(scores), encoding="utf-8")
        assert run_page(measured, monkeypatch).sidebar.radio(key="model").value == CT2_LABEL
        del scores["real_sv"]  # synthetic only: the export (models/ct2) if offered, else first
        eval_json.write_text(json.dumps(scores), encoding="utf-8")
        assert (
            run_page(measured, monkeypatch).sidebar.radio(key="model").value == TRANSFORMERS_LABEL
        )
        eval_json.write_text("{broken", encoding="utf-8")
        at = run_page(measured, monkeypatch)
        assert not errors(at) and "cannot be read" in at.sidebar.warning[0].value
        assert list(at.sidebar.radio(key="model").proto.captions)[:2] == ["not measured"] * 2
    finally:
        eval_json.unlink(missing_ok=True)


@pytest.mark.slow  # a clip-context export made and served
def test_the_page_serves_a_model_with_the_context_it_recorded(app, params_file, monkeypatch):
    """An export of a ``clip``-trained model: the page's engine feeds it the clip's own frames."""
    from swedish_transcriber.whisper import CONTEXT_KEY, EncoderContext

    models = params_file.parent / "models"
    clip_ct2 = models / "tiny-ct2-clip"
    if not clip_ct2.exists():
        trained = params_file.parent / "tiny-clip"
        shutil.copytree(models / "tiny", trained)
        config = json.loads((trained / "config.json").read_text(encoding="utf-8"))
        config[CONTEXT_KEY] = EncoderContext("clip", 1.0).record()
        (trained / "config.json").write_text(json.dumps(config), encoding="utf-8")
        export_ct2(trained, clip_ct2, "int8")
    st.cache_resource.clear()
    loaded, widths = [], []
    real = factory.load_engine

    def load_engine(path, *settings):
        engine = real(path, *settings)
        loaded.append(engine)
        compute = engine.features

        def features(clips, n_frames=None):  # what the page's engine feeds its encoder
            out = compute(clips, n_frames)
            widths.append(out.shape[-1])
            return out

        engine.features = features
        return engine

    monkeypatch.setattr(factory, "load_engine", load_engine)
    data = wav(tone(1.5, 16_000, seed=5))
    app.file_uploader(key="audio_file").upload("a.wav", data, "audio/wav").run()
    for typed in ("models/tiny-ct2-clip", "models/tiny-ct2"):
        type_directory(app, typed)
        app.button(key="transcribe").click().run()
        assert not errors(app)
        assert app.text[0].value == expected(params_file, models / typed[7:], data, "a.wav")
    assert [e.context for e in loaded] == [EncoderContext("clip", 1.0), EncoderContext.padded()]
    # A 1.5 s clip (one chunk): 200 frames for the clip model, the 30 s window for the other.
    assert widths == [200, 3000]
