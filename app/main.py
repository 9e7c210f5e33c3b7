"""Swedish Transcriber: the demo page. Start it from the repo root: ``streamlit run app/main.py``.

Upload Swedish audio or video, record it, or paste a link to it, trim it, and transcribe it
with the fine-tuned model (or its fast CTranslate2 export, or the zero-shot base, or any
checkpoint directory). The page's logic lives in the ``swedish_transcriber`` package
(``page``, ``media``, ``url``, ``engines``, ``long_form``, ``subtitles``); this script only
draws it.

Nothing a visitor typed, uploaded or fetched is drawn as markup: transcripts are ``st.text``,
and messages that quote a file name, link or typed text are escaped markdown
(``page.escape_markdown``). Decoding is bounded per server: at most
``app.limits.max_concurrent_decodes`` uploads are decoded at once, and the others wait with a
message (``media.decode_turn``); transcriptions likewise, at most
``app.limits.max_concurrent_transcriptions`` (``media.transcription_turn``).
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

import streamlit as st

from swedish_transcriber.audio import AudioError  # noqa: E402
from swedish_transcriber.evaluation.word_diff import word_diff  # noqa: E402
from swedish_transcriber.model.source import ModelLanguage  # noqa: E402
from swedish_transcriber.serving import media, model_paths, page, url  # noqa: E402
from swedish_transcriber.serving.engines.contract import EngineSettings  # noqa: E402
from swedish_transcriber.serving.engines.factory import load_engine  # noqa: E402
from swedish_transcriber.serving.long_form import Transcript, transcribe_audio  # noqa: E402
from swedish_transcriber.serving.page import escape_markdown  # noqa: E402
from swedish_transcriber.serving.subtitles import timestamp, to_srt, to_txt  # noqa: E402
from swedish_transcriber.whisper import SAMPLE_RATE, DecodeOptions  # noqa: E402

OTHER = "Another directory…"
SOURCES = ("Audio file", "Video file", "Microphone", "URL")
LOG = logging.getLogger("swedish_transcriber.page")
DECODED = "decoded_upload"  # session state: (key, clip or None, refusal) of the last upload


@st.cache_resource(show_spinner=False, max_entries=3)
def engine_for(
    path: str, language: ModelLanguage, options: DecodeOptions, settings: EngineSettings
):
    """One loaded model per resolved directory and settings, shared by every session.

    ``path`` is a ``ModelChoice.path``, resolved: two spellings of one directory share an entry.
    """
    return load_engine(path, language, options, settings)


def decoded(digest: str, name: str, limits: media.MediaLimits, data: bytes) -> tuple:
    """The upload as 16 kHz mono, or why it cannot be used; decoded once per upload.

    Every widget change re-runs the script. The session keeps its last upload's outcome, a
    refusal as well as a clip (keyed by the upload's hash, name and limits), so a bad upload
    is not decoded again on each rerun, and a rerun never queues for a decode slot. A new
    upload waits for one of the server's ``max_concurrent_decodes`` slots, with a message.
    """
    key = (digest, name, limits)
    memo = st.session_state.get(DECODED)
    if memo is not None and memo[0] == key:
        return memo[1], memo[2]
    st.session_state.pop(DECODED, None)  # the previous clip: let it go before decoding
    media.give_back_memory()  # what receiving the upload freed, before holding a slot
    notice = st.empty()

    def waiting(seconds: float) -> None:
        notice.info(
            f"Waiting for another upload to finish decoding ({seconds:.0f} s): this server "
            f"decodes {limits.max_concurrent_decodes} at a time."
        )

    with media.decode_turn(limits.max_concurrent_decodes, waiting) as waited:
        try:
            outcome = media.decode(data, name, limits), ""
        except AudioError as exc:
            outcome = None, str(exc)
    notice.empty()
    if waited > 0.05:
        st.caption(f"Decoded after waiting {waited:.1f} s for other uploads.")
    st.session_state[DECODED] = (key, *outcome)
    return outcome


def enforce_upload_limit(limits: media.MediaLimits) -> None:
    """Make the server refuse uploads over ``app.max_upload_mb``, however it was started.

    Streamlit's upload endpoint checks only the global ``server.maxUploadSize`` (default
    200 MB); a widget's ``max_upload_size`` is checked by the browser alone. The repo's
    ``.streamlit/config.toml`` sets it (a test keeps it equal to params.yaml) for
    ``streamlit run`` from the repo root; this covers any other start (another directory,
    another params file). Server options have no public setter, hence ``streamlit.config``.
    """
    from streamlit import config as streamlit_config

    wanted = media.upload_limit_mb(limits)
    if streamlit_config.get_option("server.maxUploadSize") != wanted:
        streamlit_config.set_option("server.maxUploadSize", wanted)


def pick_model(config: page.PageConfig) -> page.ModelChoice | None:
    """The sidebar's model picker; None until a usable model is chosen.

    Under each model its measured WER (``metrics/eval.json``, ``serving/measured.py``); the
    one selected first is the best on real speech when that was measured, else the export.

    "Another directory…" only where params ``app.allow_other_directories`` is on, and then
    only directories inside ``app.model_roots`` load (``serving/model_paths.py``).
    """
    choices = page.model_choices(config)
    usable = {c.label: c for c in choices if c.available}
    other = [OTHER] if config.app.allow_other_directories else []
    for missing in (c for c in choices if not c.available):
        st.sidebar.caption(escape_markdown(f"Not available: {missing.label}. {missing.problem}"))
    if not usable and not other:
        st.sidebar.warning("No model is available on this server yet.")
        return None
    measured = page.measurements(config)  # each model's WER from metrics/eval.json
    for warning in measured.warnings:
        st.sidebar.warning(warning)
    label = st.sidebar.radio(
        "Model",
        [*usable, *other],
        index=page.default_choice(config, list(usable.values()), measured),
        captions=[measured.caption(c.path) for c in usable.values()] + [""] * len(other),
        key="model",
    )
    if label != OTHER or not other:
        return usable.get(label)
    roots = ", ".join(f"{r}/" for r in config.app.model_roots)
    typed = st.sidebar.text_input(
        "Model directory",
        key="model_dir",
        help=f"A transformers (safetensors) or CTranslate2 Whisper directory inside {roots}",
    )
    if not typed.strip():
        st.sidebar.info(f"Type the path of a model directory inside {roots}")
        return None
    choice = page.typed_choice(config, typed)
    if not choice.available:
        st.sidebar.error(escape_markdown(choice.problem))
        return None
    return choice


def fetch_url(config: page.PageConfig, limit: str) -> tuple[bytes, str] | None:
    """The media behind the typed link (YouTube, other sites, a media file), downloaded once."""
    typed = st.text_input(
        f"A link to a video or audio: YouTube, other sites yt-dlp knows, or a media file ({limit})",
        key="url",
        placeholder="https://www.youtube.com/watch?v=…",
    ).strip()
    if not typed:
        return None
    fetched = st.session_state.get("url_download")
    if fetched is None or fetched[0] != typed:
        max_bytes = config.app.limits.max_upload_mb * 1e6
        bar = st.progress(0.0, text="Downloading…")

        def progress(done: int, total: int | None) -> None:
            of = f" of {total / 1e6:.1f}" if total else ""
            bar.progress(
                min(done / (total or max_bytes), 1.0), f"Downloading: {done / 1e6:.1f}{of} MB"
            )

        policy = url.UrlPolicy(
            config.app.allow_private_urls,
            config.app.url_socket_timeout,
            config.app.url_download_timeout,
        )
        try:
            download = url.fetch(typed, config.app.limits, policy, progress)
        except url.UrlError as exc:
            bar.empty()
            st.error(escape_markdown(str(exc)))
            st.stop()
        bar.empty()
        fetched = (typed, download)
        st.session_state["url_download"] = fetched
    # The title is the site's text: shown literally, not as markdown.
    st.caption("Downloaded: " + escape_markdown(fetched[1].title))
    return fetched[1].data, fetched[1].name


def get_input(config: page.PageConfig) -> tuple[bytes, str] | None:
    """The bytes and name of the chosen upload, recording or link, or None."""
    source = st.radio("Input", SOURCES, horizontal=True, key="source")
    limits = config.app.limits
    limit = f"at most {limits.max_upload_mb:g} MB and {limits.max_seconds:g} s"
    if source == "URL":
        return fetch_url(config, limit)
    max_size = media.upload_limit_mb(limits)
    if source == "Audio file":
        file = st.file_uploader(
            f"Swedish speech ({', '.join(media.AUDIO_TYPES)}; {limit})",
            type=list(media.AUDIO_TYPES),
            key="audio_file",
            max_upload_size=max_size,
        )
    elif source == "Video file":
        file = st.file_uploader(
            f"A video; its audio track is transcribed ({', '.join(media.VIDEO_TYPES)}; {limit})",
            type=list(media.VIDEO_TYPES),
            key="video_file",
            max_upload_size=max_size,
        )
    else:
        file = st.audio_input("Record Swedish speech", key="recording")
    if file is None:
        return None
    return file.getvalue(), file.name or "recording.wav"


def show_result(transcript: Transcript, seconds: float, model_label: str, stem: str) -> None:
    """Transcript, timed segments, downloads and speed."""
    st.subheader("Transcript")
    if transcript.text:
        st.text(transcript.text)
    else:
        st.warning("The model heard no words in this clip.")
    speed = transcript.duration / seconds if seconds > 0 else float("inf")
    st.caption(
        f"{transcript.duration:.1f} s of audio in {seconds:.1f} s ({speed:.1f}x real time), "
        f"{len(transcript.segments)} chunk(s), model: {model_label}"
    )
    if transcript.segments:
        st.dataframe(
            [
                {
                    "start": timestamp(s.start, "."),
                    "end": timestamp(s.end, "."),
                    "text": s.text,
                }
                for s in transcript.segments
            ],
            hide_index=True,
            width="stretch",
        )
    left, right = st.columns(2)
    left.download_button(
        "Download .txt", to_txt(transcript), f"{stem}.txt", "text/plain", key="download_txt"
    )
    right.download_button(
        "Download .srt",
        to_srt(transcript),
        f"{stem}.srt",
        "application/x-subrip",
        key="download_srt",
    )


def show_comparison(transcript: Transcript) -> None:
    """WER against the reference text the user typed, and the differing words."""
    reference = st.text_area(
        "Reference text (optional): what was really said, to see the word error rate",
        key="reference",
    )
    if not reference.strip():
        return
    try:
        diff = word_diff(reference, transcript.text)
    except ValueError as exc:
        st.error(escape_markdown(str(exc)))
        return
    st.metric("Word error rate (normalised)", f"{diff.wer:.1%}")
    st.markdown(page.diff_html(diff), unsafe_allow_html=True)


def main() -> None:
    st.set_page_config(page_title="Swedish Transcriber", page_icon="🎙️")
    st.title("Swedish Transcriber")
    st.caption("Swedish speech to text with Whisper. Upload or record speech, trim it, transcribe.")
    try:
        config = page.load_config()
    except (ValueError, FileNotFoundError) as exc:
        reason = page.without_root(str(exc), page.REPO)
        st.error(escape_markdown(f"The page's settings cannot be read: {reason}"))
        st.stop()
    enforce_upload_limit(config.app.limits)
    choice = pick_model(config)

    given = get_input(config)
    if given is None:
        st.info("Choose a file or record a clip to start.")
        st.stop()
    data, name = given
    digest = hashlib.sha1(data).hexdigest()
    audio, refusal = decoded(digest, name, config.app.limits, data)
    if audio is None:
        st.error(escape_markdown(refusal))
        st.stop()
    end_of_clip = page.trim_end(audio.shape[0] / SAMPLE_RATE)
    start, end = st.slider(
        "Trim (seconds)",
        min_value=0.0,
        max_value=end_of_clip,
        value=(0.0, end_of_clip),
        step=0.1,
        format="%.1f",
        key="trim",
    )
    try:
        clip = media.trim(audio, start, end)
    except AudioError as exc:
        st.error(escape_markdown(str(exc)))
        st.stop()
    if short := media.too_short(clip, config.app.limits):
        st.error(escape_markdown(f"{name}: {short}"))
        st.stop()
    st.audio(media.wav_bytes(clip), format="audio/wav")
    threshold = config.app.chunks.silence_threshold_db
    if media.is_silent(clip, threshold):
        st.error(
            escape_markdown(
                f"{name}: the clip is silent (no part reaches {threshold:g} dB);"
                f" there is nothing to transcribe"
            )
        )
        st.stop()
    if choice is None:
        st.warning("Choose a model in the sidebar.")
        st.stop()

    app = config.app
    key = (digest, round(start, 1), round(end, 1), str(choice.path))
    if st.button("Transcribe", type="primary", key="transcribe"):
        try:
            with st.spinner(f"Loading {choice.label}…"):
                engine = engine_for(str(choice.path), config.language, app.decode, app.engine)
        except Exception as exc:  # any library error: a message, not a traceback with paths
            LOG.exception("loading %s (%s)", choice.label, choice.path)
            st.error(escape_markdown(model_paths.load_failure(choice.label, exc)))
            st.stop()
        bar = st.progress(0.0, text="Transcribing…")

        def progress(done: int, total: int) -> None:
            bar.progress(done / max(total, 1), text=f"Transcribing: chunk {done} of {total}")

        def waiting(seconds: float) -> None:
            bar.progress(
                0.0,
                text=f"Waiting for another transcription to finish ({seconds:.0f} s): this "
                f"server transcribes {app.limits.max_concurrent_transcriptions} at a time.",
            )

        try:
            with media.transcription_turn(app.limits.max_concurrent_transcriptions, waiting):
                began = time.perf_counter()
                bar.progress(0.0, text="Transcribing…")
                transcript = transcribe_audio(
                    clip, engine, app.chunks, app.decode.batch_size, progress
                )
        except (ValueError, RuntimeError) as exc:
            st.error(escape_markdown(f"Transcription failed: {exc}"))
            st.stop()
        bar.empty()
        st.session_state["result"] = (key, transcript, time.perf_counter() - began, choice.label)

    result = st.session_state.get("result")
    if result and result[0] == key:
        _, transcript, seconds, label = result
        show_result(transcript, seconds, label, Path(name).stem)
        show_comparison(transcript)


# Streamlit (and AppTest) run this file as __main__. A multiprocessing "spawn" child of a
# process that ran it imports it as __mp_main__ and must not draw the page again.
if __name__ == "__main__":
    main()
