"""Load check of the demo page: N concurrent browser sessions upload a mix of files.

Serves ``streamlit run app/main.py`` on 127.0.0.1 (loopback only) and drives N headless
chromium sessions with Playwright at once. Each session uploads its share of a fixed mix of
files, in turn: Swedish sentences spoken by espeak-ng (short, and one long enough for several
chunks), and the hostile uploads that once took the server down or ballooned its memory (an
8-channel WAV, a 4-channel FLAC at 1 Hz, a 20 ms clip, an empty file, text named .wav, a
truncated MP3). A good file must end in a transcript; a hostile one in a message (the 8-channel
file, downmixed now, and the truncated MP3's whole frames may also be transcribed); the server
must survive all of them.
Every wait is bounded, the number of uploads is fixed, and the server is stopped at the end.

``--mix worst`` is issue 19's concurrent worst case instead: every session uploads its own
48 MB Matroska file of 8-channel PCM in one packet (its own noise, so no cache can share a
decode), then the 8-channel 384 kHz FLAC of 599 s of silence. The server must stay up, every
upload must end in a transcript or a message, and the peak RSS above the idle server must
stay within ``--max-rss-mb-above-idle`` (1.5 GB): uploads beyond
``app.limits.max_concurrent_decodes`` wait for their turn, with a message.

Reported (and written as JSON): completions, errors, p50/p95 latency from upload to outcome,
the server's idle and peak RSS (its process tree), and whether the server still answers its
health check.

    python benchmarks/page_load.py --sessions 8 --model models/ct2
    python benchmarks/page_load.py --sessions 8 --model models/ct2 --mix worst
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import psutil
import soundfile as sf
import yaml
from playwright.async_api import async_playwright

from benchmarks.lib.checkout import REPO, commit_id
from benchmarks.lib.memory import TreeSampler, tree_memory
from swedish_transcriber.data.demo_corpus import check_espeak

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
MODEL_LABEL = "load check model"
TEXT, MESSAGE, EITHER = "transcript", "message", "either"
SENTENCES = (
    "Hej, jag heter Anna och jag bor i Stockholm.",
    "Tåget till Göteborg går klockan sju i morgon bitti.",
    "Vi äter middag tillsammans på lördag kväll.",
)


@dataclass(frozen=True)
class Upload:
    """One file of the mix and what the page must do with it."""

    name: str
    data: bytes
    hostile: bool  # once took the server down or ballooned it
    expect: str  # transcript, message, or either (the page may transcribe or refuse it)


@dataclass
class Outcome:
    session: int
    file: str
    hostile: bool
    status: str  # transcript | message | error
    seconds: float
    detail: str


def speak(text: str, out: Path) -> np.ndarray:
    subprocess.run([check_espeak(), "-v", "sv", "-w", str(out), text], check=True)
    audio, rate = sf.read(out, dtype="float32")
    return audio, rate


def encode(audio: np.ndarray, rate: int, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format=fmt, **kwargs)
    return buffer.getvalue()


def make_mix(work: Path) -> list[Upload]:
    """The fixed mix of good and hostile uploads (made here, deterministic)."""
    uploads: list[Upload] = []
    clips = []
    for i, text in enumerate(SENTENCES):
        audio, rate = speak(text, work / f"s{i}.wav")
        clips.append(audio)
        uploads.append(Upload(f"sentence{i}.wav", (work / f"s{i}.wav").read_bytes(), False, TEXT))
    uploads.append(Upload("sentence0.flac", encode(clips[0], rate, "FLAC"), False, TEXT))
    pause = np.zeros(int(0.6 * rate), dtype=np.float32)
    long_clip = np.concatenate([np.concatenate([c, pause]) for c in clips * 5])  # ~45 s
    uploads.append(Upload("long.wav", encode(long_clip, rate, "WAV"), False, TEXT))
    rng = np.random.default_rng(0)
    noise8 = (0.1 * rng.standard_normal((16000, 8))).astype(np.float32)
    # 8 channels are downmixed now: noise is transcribed (or heard as no words), never a crash.
    uploads.append(Upload("ch8.wav", encode(noise8, 16000, "WAV"), True, EITHER))
    one_hz = (0.1 * rng.standard_normal((200_000, 4))).astype(np.float32)
    uploads.append(Upload("one_hz.flac", encode(one_hz, 1, "FLAC"), True, MESSAGE))
    uploads.append(Upload("blip.wav", encode(clips[0][: rate // 50], rate, "WAV"), True, MESSAGE))
    uploads.append(Upload("empty.wav", b"", True, MESSAGE))
    uploads.append(Upload("text.wav", b"this is not audio\n" * 100, True, MESSAGE))
    mp3 = encode(clips[1], rate, "MP3")
    # MP3 is a stream of frames: the whole frames before the cut are audio, so the page may
    # transcribe that part or refuse it; it must not fail.
    uploads.append(Upload("truncated.mp3", mp3[: len(mp3) // 7], True, EITHER))
    return uploads


def worst_mkv(seed: int, frames: int = 3_000_000, channels: int = 8, rate: int = 48_000) -> bytes:
    """48 MB of 8-channel 16-bit PCM in one Matroska packet (as tests/data/test_decode_fuzz.py)."""
    rng = np.random.default_rng(seed)
    samples = rng.integers(-3000, 3000, size=(1, frames * channels), dtype=np.int16)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="matroska") as out:
        sound = out.add_stream("pcm_s16le", rate=rate)
        sound.layout = "7.1"
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="7.1")
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
        for packet in [*sound.encode(frame), *sound.encode(None)]:
            out.mux(packet)
    return buffer.getvalue()


def flac_bomb(work: Path) -> bytes:
    """8 channels at 384 kHz, 599 s of silence, written in full (its header tells the truth)."""
    path = work / "bomb.flac"
    silence = np.zeros((384_000, 8), np.int16)
    with sf.SoundFile(path, "w", samplerate=384_000, channels=8, format="FLAC") as out:
        for _ in range(599):
            out.write(silence)
    return path.read_bytes()


def worst_shares(sessions: int, work: Path) -> list[list[Upload]]:
    """Each session: its own 48 MB one-packet Matroska file, then the FLAC bomb."""
    bomb = Upload("bomb8ch384k.flac", flac_bomb(work), True, MESSAGE)
    return [
        [Upload(f"worst{s}.mkv", worst_mkv(seed=s), True, EITHER), bomb] for s in range(sessions)
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


def start_server(params: Path, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "SWEDISH_TRANSCRIBER_PARAMS": str(params), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "streamlit", "run", "app/main.py"]
    command += ["--server.headless", "true", "--server.address", "127.0.0.1"]
    command += ["--server.port", str(port), "--browser.gatherUsageStats", "false"]
    command += ["--server.fileWatcherType", "none"]
    with log.open("wb") as out:
        server = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + 60
    while not healthy(port):
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise RuntimeError(f"streamlit did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.25)
    return server


async def outcome_of(tab, upload: Upload, timeout: float) -> tuple[str, str]:
    """Wait for what the page does with an upload: a transcript, a message, or nothing."""
    deadline = time.monotonic() + timeout
    clicked = False
    while time.monotonic() < deadline:
        alerts = tab.get_by_test_id("stAlertContentError")
        if await alerts.count():
            return "message", (await alerts.first.inner_text())[:200]
        warnings = tab.get_by_test_id("stAlertContentWarning").filter(has_text="heard no words")
        if await warnings.count():
            return "transcript", ""
        text = tab.get_by_test_id("stText")
        if clicked and await text.count():
            return "transcript", (await text.first.inner_text())[:200]
        button = tab.get_by_role("button", name="Transcribe", exact=True)
        if not clicked and await button.count() and await button.is_enabled():
            await button.click()
            clicked = True
        await asyncio.sleep(0.25)
    return "error", f"no transcript or message within {timeout:g} s"


async def session(browser, index: int, url: str, mine: list[Upload], work: Path, timeout: float):
    results: list[Outcome] = []
    context = await browser.new_context(viewport={"width": 1280, "height": 1000})
    tab = await context.new_page()
    try:
        for upload in mine:
            await tab.goto(url, wait_until="domcontentloaded")
            await tab.get_by_role("heading", name="Swedish Transcriber").wait_for(timeout=60_000)
            path = work / f"session{index}" / upload.name
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(upload.data)
            if path.suffix in (".mp4", ".webm", ".mkv"):  # the video uploader takes these
                await tab.get_by_text("Video file", exact=True).click()
                await tab.get_by_text("A video; its audio track").wait_for(timeout=60_000)
            began = time.monotonic()
            await tab.set_input_files("input[type=file]", path)
            try:
                status, detail = await outcome_of(tab, upload, timeout)
            except Exception as exc:  # a dead server or page: counted, never hidden
                status, detail = "error", f"{type(exc).__name__}: {exc}"[:200]
            if status != "error" and upload.expect not in (status, EITHER):
                detail = f"expected a {upload.expect}, got a {status}: {detail}"
                status = "error"
            seconds = time.monotonic() - began
            results.append(Outcome(index, upload.name, upload.hostile, status, seconds, detail))
    finally:
        await context.close()
    return results


async def warm_up(url: str) -> None:
    """Open the page once, so that idle means the page's modules imported (no upload yet)."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        try:
            tab = await browser.new_page()
            await tab.goto(url, wait_until="domcontentloaded")
            await tab.get_by_role("heading", name="Swedish Transcriber").wait_for(timeout=60_000)
            await tab.get_by_text("Choose a file or record a clip").wait_for(timeout=60_000)
        finally:
            await browser.close()


def mixed_shares(sessions: int, uploads: list[Upload]) -> list[list[Upload]]:
    # Session s uploads files s and s + N of the mix, so N = 8 sessions cover all of it.
    return [[uploads[(s + k * sessions) % len(uploads)] for k in (0, 1)] for s in range(sessions)]


async def drive(url: str, sessions: int, shares: list[list[Upload]], work: Path, timeout: float):
    async with async_playwright() as playwright:
        chromium = "/usr/bin/chromium"
        browser = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        try:
            runs = [session(browser, s, url, shares[s], work, timeout) for s in range(sessions)]
            per_session = await asyncio.gather(*runs)
        finally:
            await browser.close()
    return [o for outcomes in per_session for o in outcomes]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return float(np.percentile(np.asarray(values), q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--model", default="models/ct2", help="the model the page serves")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds per upload")
    parser.add_argument("--mix", choices=("mixed", "worst"), default="mixed")
    parser.add_argument("--max-rss-mb-above-idle", type=float, default=1536.0)
    parser.add_argument(
        "--out", default=None, help="default benchmarks/results/page_load[_worst].json"
    )
    args = parser.parse_args()
    args.out = (
        args.out or f"benchmarks/results/page_load{'_worst' if args.mix == 'worst' else ''}.json"
    )
    if not 1 <= args.sessions <= 16:
        parser.error("--sessions must be between 1 and 16 (a bounded loopback check)")
    model = (REPO / args.model).resolve()
    if not model.is_dir():
        parser.error(f"{model}: no such model directory (run dvc repro first)")

    with tempfile.TemporaryDirectory(prefix="page-load-") as tmp:
        work = Path(tmp)
        params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
        params["app"]["models"] = {MODEL_LABEL: str(model)}
        params_file = work / "params.yaml"
        params_file.write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
        if args.mix == "worst":
            shares = worst_shares(args.sessions, work)
        else:
            shares = mixed_shares(args.sessions, make_mix(work))
        port = free_port()
        log = work / "streamlit.log"
        server = start_server(params_file, port, log)
        asyncio.run(warm_up(f"http://127.0.0.1:{port}/"))
        time.sleep(2.0)
        process = psutil.Process(server.pid)
        idle = tree_memory(process).rss  # the page imported, no upload, no model loaded
        sampler = TreeSampler(process).start()  # every 100 ms
        began = time.monotonic()
        try:
            outcomes = asyncio.run(
                drive(f"http://127.0.0.1:{port}/", args.sessions, shares, work, args.timeout)
            )
            alive = server.poll() is None and healthy(port)
        finally:
            wall = time.monotonic() - began
            sampler.stop()
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
        server_log = log.read_text(errors="replace")

    done = [o for o in outcomes if o.status != "error"]
    latencies = [o.seconds for o in done]
    summary = {
        "sessions": args.sessions,
        "uploads": len(outcomes),
        "completed": len(done),
        "errors": len(outcomes) - len(done),
        "p50_s": round(percentile(latencies, 50), 2),
        "p95_s": round(percentile(latencies, 95), 2),
        "wall_s": round(wall, 1),
        "idle_server_rss_mb": round(idle / 2**20),
        "peak_server_rss_mb": round(sampler.peak.rss / 2**20),
        "peak_above_idle_mb": round((sampler.peak.rss - idle) / 2**20),
        "server_alive_after": alive,
        "tracebacks_in_server_log": server_log.count("Traceback"),
        "mix": args.mix,
        "max_concurrent_decodes": params["app"]["limits"]["max_concurrent_decodes"],
        "model": args.model,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "commit": commit_id(short=True),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    print(json.dumps(summary, indent=2))
    for o in outcomes:
        print(f"  session {o.session}: {o.file:16} {o.status:10} {o.seconds:6.1f} s  {o.detail}")
    out = REPO / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "summary": summary,
                "outcomes": [asdict(o) for o in outcomes],
                "rss_mib_timeline": sampler.timeline,
            },
            indent=1,
        )
        + "\n",
        encoding="utf-8",
    )
    within = (sampler.peak.rss - idle) / 2**20 <= args.max_rss_mb_above_idle
    print(f"peak RSS above idle within {args.max_rss_mb_above_idle:g} MB: {within}")
    ok = alive and summary["errors"] == 0 and within
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
