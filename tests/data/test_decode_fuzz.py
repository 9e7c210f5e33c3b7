"""Fuzzing the one decoder: no input may crash it, hang it or blow up its memory.

An 8-channel WAV once killed the page's server with SIGSEGV and a 1 KB FLAC at 1 Hz took
6 GB, so each input is decoded in a child process: a segfault, a hang (SIGALRM after
``SECONDS`` per call) or a memory peak over ``MAX_EXTRA_BYTES`` above the idle child fails
this test and names the input, instead of taking pytest down. Inputs are files in every
format the page accepts, over 1-16 channels and 1 Hz-384 kHz, then truncated, bit-flipped,
cut to the header, and streams with no audio at all. Both entry points are fuzzed: the page's
``decode_bytes`` (PyAV) on every input and the pipeline's ``read_audio`` (libsndfile) on
those in the formats it reads.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from tests.messages import assert_names, raises_naming
from tests.repo_params import REPO

SECONDS = 20  # per decode call
MAX_EXTRA_BYTES = 1.5 * 2**30  # peak RSS above the idle child
MIN_INPUTS = 700
SOUNDFILE_TYPES = {"wav", "flac", "ogg", "mp3"}  # what the pipeline's read_audio opens
WAV_RATES = [1, 100, 3_999, 4_000, 8_000, 22_050, 44_100, 96_000, 192_000, 384_000, 384_001]

CHILD = r"""
import json, os, resource, signal, sys, time

import numpy, av, soundfile, soxr  # loaded before the idle measurement
from swedish_transcriber.audio import AudioError, decode_bytes, read_audio

def peak_bytes():
    # Linux: VmHWM, this process's own peak. ru_maxrss would start at pytest's RSS, as Linux
    # carries the high-water mark over exec.
    if os.path.exists("/proc/self/status"):
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024

def report(**fields):
    print(json.dumps(fields), flush=True)

def attempt(call):
    signal.alarm(int(sys.argv[3]))  # SIGALRM's default action ends the process: a hang
    began = time.perf_counter()
    try:
        out = call()
    except AudioError as exc:
        result = {"error": str(exc)}
    except BaseException as exc:  # anything else is a failure of the decoder
        result = {"unexpected": f"{type(exc).__name__}: {exc}"}
    else:
        finite = bool(numpy.isfinite(out).all())
        result = {"samples": int(out.shape[0]), "dtype": str(out.dtype), "ndim": out.ndim,
                  "finite": finite}
    signal.alarm(0)
    result["seconds"] = time.perf_counter() - began
    result["peak"] = peak_bytes()
    return result

signal.signal(signal.SIGALRM, signal.SIG_DFL)
inputs = json.load(open(sys.argv[1]))
report(idle=peak_bytes())
for item in inputs[int(sys.argv[2]):]:
    report(start=item["index"])
    data = open(item["path"], "rb").read()
    page = attempt(lambda: decode_bytes(data, item["name"], max_bytes=50_000_000,
                                        max_seconds=600.0, min_seconds=0.1))
    pipeline = attempt(lambda: read_audio(item["path"])[0]) if item["soundfile"] else None
    report(done=item["index"], page=page, pipeline=pipeline)
"""


def _noise(frames: int, channels: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.2 * rng.standard_normal((frames, channels))).astype(np.float32)


def _soundfile(audio: np.ndarray, rate: int, fmt: str, subtype: str | None = None) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def _layout(channels: int) -> av.AudioLayout:
    """ffmpeg's usual layout for a channel count; unnamed ("9 channels") past the named ones."""
    named = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}
    return av.AudioLayout(named.get(channels, f"{channels} channels"))


def _pyav(audio: np.ndarray, rate: int, container: str, codec: str, video: bool = False) -> bytes:
    """``audio`` (frames x channels) encoded by ffmpeg, with a black picture if ``video``."""
    channels = audio.shape[1]
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as out:
        picture = None
        if video:
            picture = out.add_stream("mpeg4", rate=10)
            picture.width, picture.height, picture.pix_fmt = 32, 32, "yuv420p"
        sound = out.add_stream(codec, rate=rate)
        sound.layout = _layout(channels)
        if codec == "libopus" and channels > 8:
            sound.codec_context.options = {"mapping_family": "255"}  # any channel count
        size = sound.codec_context.frame_size or 1024
        for start in range(0, audio.shape[0], size):
            block = np.ascontiguousarray(audio[start : start + size])
            frame = av.AudioFrame.from_ndarray(
                block.reshape(1, -1), format="flt", layout=_layout(channels)
            )
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            for packet in sound.encode(frame):
                out.mux(packet)
        for packet in sound.encode(None):
            out.mux(packet)
        out.start_encoding()  # the header even when there are no packets
        if picture is not None:
            for i in range(3):
                image = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), "rgb24")
                image.pts = i
                for packet in picture.encode(image):
                    out.mux(packet)
            for packet in picture.encode(None):
                out.mux(packet)
    return buffer.getvalue()


def one_packet_mkv(frames: int, channels: int = 8, rate: int = 48_000, seed: int = 0) -> bytes:
    """Interleaved 16-bit PCM in one Matroska packet: ``frames`` x ``channels`` x 2 bytes
    (3,000,000 frames of 8 channels: the 48 MB upload of issue 19, one 48 MB frame)."""
    rng = np.random.default_rng(seed)
    samples = rng.integers(-3000, 3000, size=(1, frames * channels), dtype=np.int16)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="matroska") as out:
        sound = out.add_stream("pcm_s16le", rate=rate)
        sound.layout = _layout(channels)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout=_layout(channels))
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
        for packet in [*sound.encode(frame), *sound.encode(None)]:
            out.mux(packet)
    return buffer.getvalue()


def flac_announcing(seconds: float, channels: int = 8, rate: int = 384_000) -> bytes:
    """A FLAC of 0.1 s of silence whose STREAMINFO announces ``seconds`` (8 channels at
    384 kHz for 599 s: the FLAC bomb of issue 19, which took 13.5 s of CPU to refuse)."""
    data = bytearray(_soundfile(np.zeros((rate // 10, channels), np.float32), rate, "FLAC"))
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # STREAMINFO comes first
    info = 8  # "fLaC" and the block header
    # Bytes 10..17 of STREAMINFO: rate (20 bits), channels - 1 (3), bits - 1 (5), samples (36).
    packed = int.from_bytes(data[info + 10 : info + 18], "big")
    packed = (packed & ~((1 << 36) - 1)) | int(seconds * rate)
    data[info + 10 : info + 18] = packed.to_bytes(8, "big")
    return bytes(data)


def base_files() -> list[tuple[str, str, bytes]]:
    """(label, extension, bytes) of well-formed files; ones an encoder refuses are left out."""
    made: list[tuple[str, str, bytes]] = []

    def add(label: str, ext: str, make, *args) -> None:
        try:
            data = make(*args)
        except (av.FFmpegError, ValueError, RuntimeError, TypeError, sf.LibsndfileError):
            return  # this encoder does not do that rate or channel count
        made.append((label, ext, data))

    for channels in range(1, 17):  # every channel count, at a rate that varies with it
        rate = WAV_RATES[channels % len(WAV_RATES)]
        frames = max(8, rate // 4)
        audio = _noise(frames, channels, channels)
        add(f"wav {channels}ch {rate}Hz", "wav", _soundfile, audio, rate, "WAV")
        add(f"flac {channels}ch {rate}Hz", "flac", _soundfile, audio, rate, "FLAC")
    for rate in WAV_RATES:  # every rate, mono and 9 channels (past PyAV's 8 plane pointers)
        for channels in (1, 9):
            frames = max(8, rate // 4)
            audio = _noise(frames, channels, rate)
            add(
                f"wav float {channels}ch {rate}Hz",
                "wav",
                _soundfile,
                audio,
                rate,
                "WAV",
                "FLOAT",
            )
    bomb = np.zeros((200_000, 4), np.float32)
    add("flac 4ch 1Hz 200000 frames", "flac", _soundfile, bomb, 1, "FLAC")
    long_low = np.zeros((4_000 * 700, 1), np.float32)
    add("flac 1ch 4kHz 700 s", "flac", _soundfile, long_low, 4_000, "FLAC")
    for channels in (1, 2, 6, 8, 9, 16):
        for rate in (8_000, 48_000):
            audio = _noise(rate // 4, channels, rate + channels)
            add(f"ogg vorbis {channels}ch {rate}Hz", "ogg", _soundfile, audio, rate, "OGG")
            add(
                f"ogg opus {channels}ch {rate}Hz",
                "ogg",
                _soundfile,
                audio,
                rate,
                "OGG",
                "OPUS",
            )
    for channels in (1, 2):
        for rate in (8_000, 32_000, 48_000):
            audio = _noise(rate // 4, channels, rate - channels)
            add(f"mp3 {channels}ch {rate}Hz", "mp3", _soundfile, audio, rate, "MP3")
            add(
                f"mp3 lame {channels}ch {rate}Hz",
                "mp3",
                _pyav,
                audio,
                rate,
                "mp3",
                "libmp3lame",
            )
    for channels in (1, 2, 6, 8, 9, 16):
        for rate in (8_000, 48_000, 96_000):
            audio = _noise(rate // 4, channels, rate * channels)
            add(f"m4a aac {channels}ch {rate}Hz", "m4a", _pyav, audio, rate, "ipod", "aac")
        audio = _noise(12_000, channels, channels)
        add(f"mp4 aac {channels}ch", "mp4", _pyav, audio, 48_000, "mp4", "aac", True)
        add(f"webm opus {channels}ch", "webm", _pyav, audio, 48_000, "webm", "libopus")
        add(f"opus {channels}ch", "opus", _pyav, audio, 48_000, "ogg", "libopus")
        add(f"mkv flac {channels}ch", "mkv", _pyav, audio, 48_000, "matroska", "flac", True)
    # Issue 19's worst cases: one 48 MB packet of 8-channel PCM, the 599 s 384 kHz FLAC.
    made.append(("mkv pcm 8ch 48kHz one 48 MB packet", "mkv", one_packet_mkv(3_000_000)))
    made.append(("flac 8ch 384kHz announcing 599 s", "flac", flac_announcing(599.0)))
    empty = np.zeros((0, 2), np.float32)  # streams with no audio in them
    add("wav no frames", "wav", _soundfile, empty, 16_000, "WAV")
    add("flac no frames", "flac", _soundfile, empty, 16_000, "FLAC")
    add("ogg no frames", "ogg", _soundfile, empty, 16_000, "OGG")
    add("mkv no frames", "mkv", _pyav, empty, 48_000, "matroska", "flac")
    add("m4a no frames", "m4a", _pyav, empty, 48_000, "ipod", "aac")
    add("webm no frames", "webm", _pyav, empty, 48_000, "webm", "libopus")
    add("mp4 no frames", "mp4", _pyav, empty, 48_000, "mp4", "aac", True)
    return made


def mutations(label: str, data: bytes, seed: int) -> list[tuple[str, bytes]]:
    """The file itself, cut short, cut to its header, and with bits flipped."""
    rng = np.random.default_rng(seed)
    out = [(label, data)]
    if len(data) > 8_000_000:
        return out
    out += [(f"{label}, first half", data[: len(data) // 2])]
    out += [(f"{label}, first 10%", data[: len(data) // 10])]
    out += [(f"{label}, first 64 bytes", data[:64])]
    for i, rate in enumerate((0.001, 0.01) if data else ()):
        flipped = np.frombuffer(data, np.uint8).copy()
        where = rng.integers(0, len(flipped), max(1, int(rate * len(flipped))))
        flipped[where] ^= (1 << rng.integers(0, 8, where.shape[0])).astype(np.uint8)
        out += [(f"{label}, {rate:.1%} of bytes bit-flipped ({i})", flipped.tobytes())]
    return out


def fuzz_inputs(directory: Path) -> list[dict[str, object]]:
    """Every input written to ``directory``, with what the child needs to know of it."""
    inputs: list[dict[str, object]] = []
    variants = [("zero bytes", "wav", b""), ("random bytes", "mp3", os.urandom(4_096))]
    for seed, (label, ext, data) in enumerate(base_files()):
        variants += [(name, ext, blob) for name, blob in mutations(label, data, seed)]
    for index, (label, ext, data) in enumerate(variants):
        path = directory / f"{index:04d}.{ext}"
        path.write_bytes(data)
        inputs.append(
            {
                "index": index,
                "label": label,
                "path": str(path),
                "name": path.name,
                "soundfile": ext in SOUNDFILE_TYPES,
            }
        )
    return inputs


def run_children(manifest: Path, inputs: list[dict[str, object]]) -> tuple[list[dict], list[str]]:
    """Decode every input, in as few children as crashes allow; a crash names its input."""
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    )
    done: list[dict] = []
    failures: list[str] = []
    position = 0
    while position < len(inputs):
        command = [sys.executable, "-c", CHILD, str(manifest), str(position), str(SECONDS)]
        backstop = 2 * SECONDS * (len(inputs) - position) + 120
        proc = subprocess.run(
            command, cwd=REPO, env=env, capture_output=True, text=True, timeout=backstop
        )
        lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
        idle = next(line["idle"] for line in lines if "idle" in line)
        started = None
        for line in lines:
            if "start" in line:
                started = line["start"]
            elif "done" in line:
                done.append({**line, "idle": idle})
                started = None
        if proc.returncode == 0:
            break
        if started is None:
            raise AssertionError(f"the fuzz child failed outside any input:\n{proc.stderr[-3000:]}")
        how = "hung (SIGALRM)" if proc.returncode == -14 else f"died with code {proc.returncode}"
        failures.append(f"{inputs[started]['label']} ({inputs[started]['name']}): {how}")
        position = started + 1
    return done, failures


def check(result: dict | None, idle: int, item: dict) -> list[str]:
    """What is wrong with one decode call's result, if anything."""
    if result is None:
        return []
    where = f"{item['label']} ({item['name']})"
    problems = []
    if "unexpected" in result:
        problems.append(f"{where}: not an AudioError: {result['unexpected']}")
    elif "error" in result:
        if item["name"] not in result["error"] or "does not exist" in result["error"]:
            problems.append(f"{where}: unclear message {result['error']!r}")
    elif not (result["samples"] > 0 and result["ndim"] == 1 and result["finite"]):
        problems.append(f"{where}: bad samples {result}")
    elif result["dtype"] != "float32":
        problems.append(f"{where}: dtype {result['dtype']}")
    if result["seconds"] > SECONDS:
        problems.append(f"{where}: took {result['seconds']:.1f} s")
    if result["peak"] - idle > MAX_EXTRA_BYTES:
        problems.append(f"{where}: peak memory {(result['peak'] - idle) / 2**20:.0f} MiB over idle")
    return problems


@pytest.mark.slow  # hundreds of inputs through child processes (CI runs it in `make test`)
def test_no_input_crashes_hangs_or_balloons_the_decoder(tmp_path):
    inputs = fuzz_inputs(tmp_path)
    made = {Path(str(i["path"])).suffix[1:] for i in inputs if "," not in str(i["label"])}
    assert made >= {"wav", "flac", "ogg", "opus", "mp3", "m4a", "mp4", "webm", "mkv"}, made
    manifest = tmp_path / "inputs.json"
    manifest.write_text(json.dumps(inputs), encoding="utf-8")
    done, failures = run_children(manifest, inputs)
    calls = sum(1 + (d["pipeline"] is not None) for d in done)
    for result in done:
        item = inputs[result["done"]]
        failures += check(result["page"], result["idle"], item)
        failures += check(result["pipeline"], result["idle"], item)
    decoded = sum("samples" in d["page"] for d in done)
    refused = sum("error" in d["page"] for d in done)
    peak = max(d["page"]["peak"] - d["idle"] for d in done)
    print(
        f"fuzzed {len(inputs)} inputs ({calls} decode calls): page decoded {decoded}, "
        f"refused {refused}; highest peak {peak / 2**20:.0f} MiB above the idle child"
    )
    assert not failures, "\n".join(failures)
    assert len(inputs) >= MIN_INPUTS and len(done) == len(inputs)
    assert decoded > 100 and refused > 100  # both outcomes are exercised


# Issue 19, finding 6: decoding bounded as a whole --------------------------------------------

PEAK_CHILD = r"""
import json, sys, time
import numpy, av, soundfile, soxr
from swedish_transcriber.audio import AudioError, decode_bytes

def peak_bytes():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

data = open(sys.argv[1], "rb").read()
idle = peak_bytes()
began = time.process_time()
try:
    out = decode_bytes(data, "upload.mkv", max_bytes=50_000_000, max_seconds=600.0,
                       min_seconds=0.1, max_samples=int(sys.argv[2]))
    result = {"samples": int(out.shape[0]), "bytes": int(out.nbytes)}
except AudioError as exc:
    result = {"error": str(exc)}
result.update(extra=peak_bytes() - idle, cpu=time.process_time() - began)
print(json.dumps(result))
"""


def decode_in_child(tmp_path: Path, data: bytes, max_samples: int = 115_200_000) -> dict:
    """Decode ``data`` in a fresh process: its outcome, peak memory above idle, CPU seconds."""
    path = tmp_path / "upload.bin"
    path.write_bytes(data)
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    )
    proc = subprocess.run(
        [sys.executable, "-c", PEAK_CHILD, str(path), str(max_samples)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM (Linux)")
def test_one_huge_packet_costs_its_own_size_not_several_float_copies(tmp_path):
    """48 MB of 8-channel PCM in one Matroska packet cost +300 MB in a bare decoder (+526 MB
    in the page's server); now ffmpeg's packet and frame (2x the file), one slice and a
    fixed multiple of the output."""
    data = one_packet_mkv(3_000_000)
    assert len(data) > 48_000_000
    result = decode_in_child(tmp_path, data)
    assert result.get("samples") == 1_000_000, result  # 62.5 s at 16 kHz
    bound = 2 * len(data) + 4 * result["bytes"] + 32 * 2**20
    assert result["extra"] <= bound, (
        f"peak {result['extra'] / 2**20:.0f} MiB above idle; bound {bound / 2**20:.0f} MiB"
    )


def test_the_flac_bomb_is_refused_from_its_header_before_decoding(tmp_path):
    """8 channels at 384 kHz for 599 s: 1.84e9 samples announced; refused at once."""
    result = decode_in_child(tmp_path, flac_announcing(599.0))
    assert "error" in result, result
    # What the header announces (samples, channels, rate) and the limit.
    assert_names(result["error"], "1,840,128,000", 8, "384000 Hz", "115,200,000")
    assert result["cpu"] < 1.0


def test_a_header_that_understates_the_work_is_stopped_frame_by_frame():
    """A FLAC whose header announces 0.1 s but holds 2 s of 8 channels at 96 kHz."""
    from swedish_transcriber.audio import AudioError, decode_bytes

    honest = _soundfile(np.zeros((192_000, 8), np.float32), 96_000, "FLAC")
    lying = bytearray(honest)
    packed = int.from_bytes(lying[18:26], "big")
    lying[18:26] = ((packed & ~((1 << 36) - 1)) | 9_600).to_bytes(8, "big")
    options = {"max_bytes": 50_000_000, "max_seconds": 600.0, "max_samples": 800_000}
    for data in (honest, bytes(lying)):
        with raises_naming(AudioError, "lying.flac", "800,000"):  # the file and the limit
            decode_bytes(data, "lying.flac", **options)
    assert decode_bytes(honest, "ok.flac", **{**options, "max_samples": 2_000_000}).shape == (
        32_000,
    )


def test_at_most_the_limit_of_decodes_run_at_once_and_the_others_are_told():
    """A process-wide semaphore (params app.limits.max_concurrent_decodes)."""
    import threading
    import time

    from swedish_transcriber.serving import media

    running, most, told = [0], [0], []
    lock = threading.Lock()

    def session(index: int) -> None:
        with media.decode_turn(3, lambda waited: told.append(index), poll=0.01):
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            time.sleep(0.1)
            with lock:
                running[0] -= 1

    threads = [threading.Thread(target=session, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert most[0] == 3
    assert len(set(told)) >= 5  # every session beyond the limit was told it waits
    assert media.decode_slots(3) is media.decode_slots(3)  # one per process
