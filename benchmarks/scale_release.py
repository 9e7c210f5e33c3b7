"""A synthetic Common Voice release of N clips, made from a few hundred espeak demo clips.

The scale benchmark (benchmarks/scale.py) needs a release of 20,000 clips in the layout of a
current Common Voice release, with the faults a real one has, without synthesising 20,000
utterances with espeak. So a few hundred clips of the demo corpus (``data/raw/demo``) are
the sources: each is decoded once, re-encoded as a handful of variants (speed by resampling,
gain in dB), and every listed clip is a copy of one variant under a new id. Encoding is the
slow part (~60 ms a clip), so only the (source, variant) pairs that are used are encoded, in
parallel processes; copies are plain file writes.

The release has ``train/dev/test/validated.tsv`` (validated = the three splits), plus
``invalidated.tsv``, ``other.tsv``, ``reported.tsv`` and ``clip_durations.tsv`` as a current
release ships them, and planted faults (``FAULTS``), each on its own train row:

- ``missing_clip``: the row's clip file is not written;
- ``corrupt_mp3``: the clip file is random bytes;
- ``empty_sentence`` / ``long_sentence``: blank text / the text repeated far beyond speech rate;
- ``short_clip``: 0.2 s of audio;
- ``reported_sentence``: its sentence (own sentence_id) is in ``reported.tsv``;
- ``duration_mismatch``: ``clip_durations.tsv`` gives it 10x its real duration.

Everything is drawn from ``random.Random(seed)``: the same (N, seed) gives the same bytes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import random
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

GENERATOR_VERSION = 1  # bump when the output changes, so cached releases are remade
LOCALE = "sv-SE"
SPLIT_FRACTIONS = {"train": 0.8, "dev": 0.1, "test": 0.1}
SPEAKERS = {"train": 48, "dev": 6, "test": 6}  # speaker-disjoint splits
VARIANTS = 5  # (speed, gain) variants per source
SPEED_RANGE = (0.85, 1.15)
GAIN_DB_RANGE = (-9.0, 3.0)
SHORT_CLIP_SECONDS = 0.2
FAULTS = (
    "missing_clip",
    "corrupt_mp3",
    "empty_sentence",
    "long_sentence",
    "short_clip",
    "reported_sentence",
    "duration_mismatch",
)
REPORTED_SENTENCE = "Den här meningen har anmälts av en läsare."
TSV_COLUMNS = (
    "client_id",
    "path",
    "sentence_id",
    "sentence",
    "sentence_domain",
    "up_votes",
    "down_votes",
    "age",
    "gender",
    "accents",
    "variant",
    "locale",
    "segment",
)
AGES = ("teens", "twenties", "thirties", "forties", "fifties", "sixties")
GENDERS = ("female_feminine", "male_masculine")
ACCENTS = ("Stockholmska", "Göteborgska", "Skånska", "Norrländska", "Finlandssvenska")


@dataclass(frozen=True)
class Source:
    """One demo clip the release copies from."""

    clip: Path
    sentence: str


@dataclass
class Row:
    """One listed clip of the synthetic release."""

    path: str
    sentence: str
    speaker: int
    source: int  # index into the sources
    variant: int  # which (speed, gain) variant of the source
    fault: str = ""
    up_votes: int = 2
    down_votes: int = 0


def read_sources(demo_dir: Path, max_sources: int) -> list[Source]:
    """``max_sources`` demo clips spread evenly over ``validated.tsv`` (all if fewer)."""
    with (demo_dir / "validated.tsv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows:
        raise ValueError(f"{demo_dir / 'validated.tsv'}: no rows; build the demo corpus first")
    step = max(1, len(rows) // max_sources)
    chosen = rows[::step][:max_sources]
    return [Source(demo_dir / "clips" / r["path"], r["sentence"]) for r in chosen]


def sentence_id(sentence: str) -> str:
    """Common Voice's sentence_id is the SHA-256 of the sentence text."""
    return hashlib.sha256(sentence.encode()).hexdigest()


def client_id(seed: int, speaker: int) -> str:
    return hashlib.sha512(f"scale:{seed}:{speaker}".encode()).hexdigest()


def variant_settings(seed: int, source: int, variant: int) -> tuple[float, float]:
    """(speed, gain_db) of one variant, the same whatever else the release contains."""
    rng = random.Random(f"{seed}:{source}:{variant}")
    return round(rng.uniform(*SPEED_RANGE), 3), round(rng.uniform(*GAIN_DB_RANGE), 1)


def plan(n: int, seed: int, n_sources: int) -> dict[str, list[Row]]:
    """The rows of every TSV: ``n`` listed clips in train/dev/test (faults among them),
    plus about 1 % invalidated and 2 % other clips."""
    if n < 20 * len(FAULTS):
        raise ValueError(
            f"--n {n}: too few clips for the planted faults (need >= {20 * len(FAULTS)})"
        )
    rng = random.Random(seed)
    counts = {"dev": round(n * SPLIT_FRACTIONS["dev"]), "test": round(n * SPLIT_FRACTIONS["test"])}
    counts["train"] = n - counts["dev"] - counts["test"]
    extra = {"invalidated": max(2, n // 100), "other": max(2, n // 50)}
    total = n + sum(extra.values())
    # Clip numbers: a seeded shuffle of a block, so ids are new and not ordered by split.
    numbers = list(range(60_000_000, 60_000_000 + total))
    rng.shuffle(numbers)
    first_speaker = {"train": 0, "dev": SPEAKERS["train"]}
    first_speaker["test"] = first_speaker["dev"] + SPEAKERS["dev"]
    out: dict[str, list[Row]] = {}
    k = 0
    for split in ("train", "dev", "test", "invalidated", "other"):
        rows = []
        for _ in range(counts.get(split) or extra[split]):
            home = split if split in SPEAKERS else rng.choice(("train", "dev", "test"))
            speaker = first_speaker[home] + rng.randrange(SPEAKERS[home])
            source = rng.randrange(n_sources)
            up, down = rng.randint(2, 5), rng.randint(0, 1)
            if split == "invalidated":
                up, down = rng.randint(0, 1), rng.randint(2, 4)
            elif split == "other":
                up, down = rng.randint(0, 1), 0
            rows.append(
                Row(
                    path=f"common_voice_{LOCALE}_{numbers[k]}.mp3",
                    sentence="",  # filled from the source below
                    speaker=speaker,
                    source=source,
                    variant=rng.randrange(VARIANTS),
                    up_votes=up,
                    down_votes=down,
                )
            )
            k += 1
        out[split] = rows
    # Faults on distinct train rows, drawn by seed.
    for fault, index in zip(FAULTS, rng.sample(range(len(out["train"])), len(FAULTS)), strict=True):
        out["train"][index].fault = fault
    return out


def _encode(args: tuple[Path, list[tuple[int, float, float]]]) -> dict[int, tuple[bytes, int, int]]:
    """Decode one source and encode its variants: variant -> (MP3 bytes, frames, rate)."""
    clip, variants = args
    audio, sr = sf.read(clip, dtype="float32", always_2d=False)
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    out = {}
    for variant, speed, gain_db in variants:
        # Playing the clip `speed` times faster: read as sr*speed, written at sr.
        changed = soxr.resample(audio, sr * speed, sr) if speed != 1.0 else audio
        if variant < 0:  # the too-short clip
            changed = changed[: int(SHORT_CLIP_SECONDS * sr)]
        scaled = np.clip(changed * 10 ** (gain_db / 20), -1.0, 1.0).astype(np.float32)
        buf = io.BytesIO()
        sf.write(buf, scaled, sr, format="MP3", subtype="MPEG_LAYER_III")
        data = buf.getvalue()
        out[variant] = (data, sf.info(io.BytesIO(data)).frames, sr)
    return out


def _write_tsv(path: Path, columns: tuple[str, ...], rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(
            fh, fieldnames=columns, delimiter="\t", quoting=csv.QUOTE_NONE, lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(rows)


def build_release(
    n: int, seed: int, out_dir: Path, demo_dir: Path, max_sources: int = 300, workers: int = 2
) -> dict:
    """Write the release into ``out_dir`` (created); return its summary (also ``release.json``)."""
    sources = read_sources(demo_dir, max_sources)
    splits = plan(n, seed, len(sources))
    speaker_rng = random.Random(seed + 1)
    speakers = [
        (speaker_rng.choice(AGES), speaker_rng.choice(GENDERS), speaker_rng.choice(ACCENTS))
        for _ in range(sum(SPEAKERS.values()))
    ]
    everything = [r for rows in splits.values() for r in rows]
    for r in everything:
        r.sentence = sources[r.source].sentence
        if r.fault == "empty_sentence":
            r.sentence = ""
        elif r.fault == "long_sentence":
            r.sentence = " ".join([sources[r.source].sentence] * 12)
        elif r.fault == "reported_sentence":
            r.sentence = REPORTED_SENTENCE
        elif r.fault == "short_clip":
            r.variant = -1
    needed: dict[int, set[int]] = {}
    for r in everything:
        if r.fault not in ("missing_clip", "corrupt_mp3"):
            needed.setdefault(r.source, set()).add(r.variant)
    jobs = [
        (sources[s].clip, [(v, *variant_settings(seed, s, max(v, 0))) for v in sorted(vs)])
        for s, vs in sorted(needed.items())
    ]
    with ProcessPoolExecutor(workers) as pool:
        encoded = dict(zip(sorted(needed), pool.map(_encode, jobs, chunksize=4), strict=True))
    clips = out_dir / "clips"
    clips.mkdir(parents=True)
    durations: list[dict[str, str]] = []
    noise = random.Random(seed + 2)
    for r in everything:
        if r.fault == "missing_clip":
            continue
        if r.fault == "corrupt_mp3":
            (clips / r.path).write_bytes(noise.randbytes(20_000))
            durations.append({"clip": r.path, "duration[ms]": "4000"})
            continue
        data, frames, sr = encoded[r.source][r.variant]
        (clips / r.path).write_bytes(data)
        ms = round(frames * 1000 / sr)
        if r.fault == "duration_mismatch":
            ms *= 10
        durations.append({"clip": r.path, "duration[ms]": str(ms)})

    def tsv_row(r: Row) -> dict[str, str]:
        age, gender, accent = speakers[r.speaker]
        return {
            "client_id": client_id(seed, r.speaker),
            "path": r.path,
            "sentence_id": sentence_id(r.sentence),
            "sentence": r.sentence,
            "sentence_domain": "",
            "up_votes": str(r.up_votes),
            "down_votes": str(r.down_votes),
            "age": age,
            "gender": gender,
            "accents": accent,
            "variant": "",
            "locale": LOCALE,
            "segment": "",
        }

    for name, rows in splits.items():
        _write_tsv(out_dir / f"{name}.tsv", TSV_COLUMNS, [tsv_row(r) for r in rows])
    listed = [r for s in ("train", "dev", "test") for r in splits[s]]
    _write_tsv(out_dir / "validated.tsv", TSV_COLUMNS, [tsv_row(r) for r in listed])
    reported = [
        {
            "sentence_id": sentence_id(REPORTED_SENTENCE),
            "sentence": REPORTED_SENTENCE,
            "locale": LOCALE,
            "reason": "offensive-language",
        },
        {  # a report of a sentence no clip reads, as real releases have
            "sentence_id": sentence_id("En mening som ingen har läst in."),
            "sentence": "En mening som ingen har läst in.",
            "locale": LOCALE,
            "reason": "grammar-or-spelling",
        },
    ]
    _write_tsv(out_dir / "reported.tsv", ("sentence_id", "sentence", "locale", "reason"), reported)
    _write_tsv(out_dir / "clip_durations.tsv", ("clip", "duration[ms]"), durations)
    summary = {
        "generator_version": GENERATOR_VERSION,
        "n": n,
        "seed": seed,
        "sources": len(sources),
        "variants_encoded": sum(len(v) for v in needed.values()),
        "rows": {name: len(rows) for name, rows in splits.items()},
        "faults": {r.fault: r.path for r in everything if r.fault},
    }
    (out_dir / "release.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def cached_release(
    n: int, seed: int, cache_root: Path, demo_dir: Path, max_sources: int = 300, workers: int = 2
) -> tuple[Path, dict]:
    """The release for (n, seed) under ``cache_root``, made once (atomically) and reused."""
    final = cache_root / f"release-n{n}-seed{seed}-v{GENERATOR_VERSION}"
    marker = final / "release.json"
    if marker.is_file():
        return final, json.loads(marker.read_text())
    tmp = cache_root / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    summary = build_release(n, seed, tmp, demo_dir, max_sources, workers)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final, summary
