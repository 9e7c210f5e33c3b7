"""The embedded demo corpus: Swedish sentences spoken by espeak-ng, in Common Voice's layout.

The Common Voice download is not reachable everywhere (CI, air-gapped machines), yet the
pipeline must run end to end. So the project makes a small corpus itself, in exactly the
layout of an extracted release (``clips/*.mp3`` at 48 kHz and ``validated/train/dev/test.tsv``
with Common Voice's columns), and the same ingest code reads it as it reads a real release.

Splits are speaker-disjoint (each speaker belongs to one split) and sentence-disjoint (each
sentence to one split), so test WER measures generalisation to new voices and new text.
Everything is derived from the seed: the same params give byte-identical TSVs.
"""

from __future__ import annotations

import csv
import hashlib
import io
import random
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields, replace
from pathlib import Path

import soundfile as sf

from swedish_transcriber.audio import resample, write_audio
from swedish_transcriber.data.label_noise import LabelNoiseParams, plant, write_planted
from swedish_transcriber.data.manifest import SPLITS

TSV_COLUMNS: tuple[str, ...] = (
    "client_id",
    "path",
    "sentence",
    "up_votes",
    "down_votes",
    "age",
    "gender",
    "accent",
    "locale",
    "segment",
)
LOCALE = "sv-SE"
ESPEAK = "espeak-ng"
MIN_SENTENCES = 400


class CorpusError(ValueError):
    """The demo corpus cannot be made (missing espeak-ng, too few sentences, bad speakers)."""


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: an espeak-ng voice variant at its own rate and pitch."""

    name: str
    voice: str
    gender: str
    age: str
    rate: int
    pitch: int
    split: str
    accent: str

    @property
    def client_id(self) -> str:
        """A 128-hex-digit id, like Common Voice's hashed client ids."""
        return hashlib.sha512(f"demo:{self.name}:{self.voice}".encode()).hexdigest()


SPEAKER_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Speaker))


@dataclass(frozen=True)
class CorpusParams:
    """Params section ``corpus``."""

    sentences_file: str
    speakers_file: str  # a TSV of the speakers (read_speakers)
    split_fractions: dict[str, float]  # share of the sentences per split
    clips_per_sentence: dict[str, int]  # speakers of the split who read each sentence
    rate_jitter: int  # words per minute, uniform +- around the speaker's rate
    pitch_jitter: int  # espeak pitch units, uniform +- around the speaker's pitch
    sample_rate: int  # of the written MP3s (Common Voice's are 48 kHz)
    max_sentences: int  # 0 uses every sentence
    seed: int
    label_noise: LabelNoiseParams  # known wrong labels planted in train (benchmarks only)


@dataclass(frozen=True)
class Utterance:
    """One clip to synthesise."""

    path: str
    sentence: str
    speaker: Speaker
    rate: int
    pitch: int
    up_votes: int
    down_votes: int
    label: str = ""  # the written label when it is not the spoken sentence (label_noise)


def read_sentences(path: str | Path) -> list[str]:
    """The project's sentences, one per line; blank lines and ``#`` comments are skipped."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{path}: sentences file not found (corpus.sentences_file)")
    sentences: list[str] = []
    seen: set[str] = set()
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = " ".join(line.split())
        if not text or text.startswith("#"):
            continue
        if text in seen:
            raise CorpusError(f"{path}: line {line_no}: duplicate sentence {text!r}")
        seen.add(text)
        sentences.append(text)
    return sentences


def read_speakers(path: str | Path) -> list[Speaker]:
    """The demo corpus's speakers: a TSV whose header names :data:`SPEAKER_COLUMNS`.

    Lines starting with ``#`` and blank lines are skipped. Every fault names the file and the
    line: a header that lacks a column or names an unknown one, a row with another number of
    fields, an empty value, a rate or pitch that is not a whole number in range, a split that
    is not one of :data:`SPLITS`, a name given twice. Rows keep their order (it seeds the plan).
    """
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{path}: speakers file not found (corpus.speakers_file)")
    header: list[str] | None = None
    speakers: list[Speaker] = []
    lines: dict[str, int] = {}
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        where = f"{path}: line {line_no}"
        values = [value.strip() for value in line.split("\t")]
        if header is None:
            missing = [c for c in SPEAKER_COLUMNS if c not in values]
            unknown = [f for f in values if f not in SPEAKER_COLUMNS]
            if missing or unknown or len(set(values)) != len(values):
                raise CorpusError(
                    f"{where}: the header must name each of {', '.join(SPEAKER_COLUMNS)} once, "
                    f"tab-separated (missing: {', '.join(missing) or 'none'}; unknown: "
                    f"{', '.join(unknown) or 'none'})"
                )
            header = values
            continue
        if len(values) != len(header):
            raise CorpusError(
                f"{where}: {len(values)} tab-separated fields, the header has {len(header)}"
            )
        row: dict[str, object] = dict(zip(header, values, strict=True))
        empty = [c for c in header if not row[c]]
        if empty:
            raise CorpusError(f"{where}: empty {', '.join(empty)}")
        # rate: words per minute; pitch: espeak's 0..99.
        for column, low, high in (("rate", 1, None), ("pitch", 0, 99)):
            value = str(row[column])
            if not re.fullmatch(r"\d+", value) or not low <= int(value) <= (high or int(value)):
                bounds = f"{low}..{high}" if high is not None else f">= {low}"
                raise CorpusError(f"{where}: {column} {value!r} must be a whole number {bounds}")
            row[column] = int(value)
        if row["split"] not in SPLITS:
            raise CorpusError(f"{where}: split {row['split']!r} must be one of {', '.join(SPLITS)}")
        name = str(row["name"])
        if name in lines:
            raise CorpusError(f"{where}: speaker {name!r} is also on line {lines[name]}")
        lines[name] = line_no
        speakers.append(Speaker(**row))  # type: ignore[arg-type]
    if not speakers:
        raise CorpusError(f"{path}: no speakers (a header row, then one speaker per line)")
    return speakers


def check_espeak() -> str:
    """Path of espeak-ng, or an error that says how to install it."""
    exe = shutil.which(ESPEAK)
    if exe is None:
        raise CorpusError(
            "espeak-ng is not installed; the demo corpus is spoken by it. Install it with "
            "`sudo apt-get install espeak-ng` (Debian/Ubuntu) or `brew install espeak-ng` "
            "(macOS), or set data.source: commonvoice and data.raw_dir to a real release"
        )
    return exe


def plan(
    params: CorpusParams, sentences: list[str], speakers: list[Speaker]
) -> dict[str, list[Utterance]]:
    """Assign sentences to splits and speakers to sentences, deterministically from the seed.

    ``speakers``: :func:`read_speakers`'s (each in one of :data:`SPLITS`, names unique).
    """
    by_split = {s: [sp for sp in speakers if sp.split == s] for s in SPLITS}
    if set(params.split_fractions) != set(SPLITS) or set(params.clips_per_sentence) != set(SPLITS):
        raise CorpusError(f"corpus.split_fractions and clips_per_sentence need keys {SPLITS}")
    rng = random.Random(params.seed)
    pool = list(sentences)
    rng.shuffle(pool)
    if params.max_sentences > 0:
        pool = pool[: params.max_sentences]
    total = sum(params.split_fractions.values())
    counts = {s: int(round(len(pool) * params.split_fractions[s] / total)) for s in SPLITS}
    counts["train"] = len(pool) - counts["dev"] - counts["test"]
    utterances: dict[str, list[Utterance]] = {}
    start = 0
    clip_number = 0
    for split in SPLITS:
        chosen = pool[start : start + counts[split]]
        start += counts[split]
        voices = list(by_split[split])
        per_sentence = params.clips_per_sentence[split]
        if chosen and len(voices) < per_sentence:
            raise CorpusError(
                f"corpus: split {split} has {len(voices)} speaker(s) but clips_per_sentence "
                f"asks for {per_sentence}"
            )
        rng.shuffle(voices)
        items: list[Utterance] = []
        for i, sentence in enumerate(chosen):
            # Rotating through the shuffled speakers keeps their clip counts balanced.
            for j in range(per_sentence):
                speaker = voices[(i * per_sentence + j) % len(voices)]
                clip_number += 1
                items.append(
                    Utterance(
                        path=f"common_voice_{LOCALE}_{40_000_000 + clip_number}.mp3",
                        sentence=sentence,
                        speaker=speaker,
                        rate=speaker.rate + rng.randint(-params.rate_jitter, params.rate_jitter),
                        pitch=min(
                            99,
                            max(
                                0,
                                speaker.pitch
                                + rng.randint(-params.pitch_jitter, params.pitch_jitter),
                            ),
                        ),
                        up_votes=rng.randint(2, 4),
                        down_votes=rng.randint(0, 1),
                    )
                )
        utterances[split] = items
    return utterances


def synthesise(utterance: Utterance, out_file: Path, sample_rate: int, espeak: str) -> None:
    """Speak one sentence with espeak-ng and write it as a Common-Voice-like MP3."""
    result = subprocess.run(
        [
            espeak,
            "-v",
            utterance.speaker.voice,
            "-s",
            str(utterance.rate),
            "-p",
            str(utterance.pitch),
            "--stdout",
            utterance.sentence,
        ],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0 or not result.stdout:
        raise CorpusError(
            f"espeak-ng failed for {utterance.path} (voice {utterance.speaker.voice}): "
            f"{result.stderr.decode(errors='replace').strip()}"
        )
    audio, sr = sf.read(io.BytesIO(result.stdout), dtype="float32")
    write_audio(out_file, resample(audio, sr, sample_rate), sample_rate)


def _row(u: Utterance) -> dict[str, str]:
    return {
        "client_id": u.speaker.client_id,
        "path": u.path,
        "sentence": u.label or u.sentence,
        "up_votes": str(u.up_votes),
        "down_votes": str(u.down_votes),
        "age": u.speaker.age,
        "gender": u.speaker.gender,
        "accent": u.speaker.accent,
        "locale": LOCALE,
        "segment": "",
    }


def write_tsv(path: Path, utterances: list[Utterance]) -> None:
    """Write a Common Voice TSV (tab-separated, no quoting, UTF-8)."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(
            fh,
            fieldnames=TSV_COLUMNS,
            delimiter="\t",
            quoting=csv.QUOTE_NONE,
            lineterminator="\n",
            escapechar=None,
        )
        writer.writeheader()
        for u in utterances:
            writer.writerow(_row(u))


def build_corpus(
    params: CorpusParams, out_dir: Path, workers: int = 4, planted_file: Path | None = None
) -> dict[str, int]:
    """Make the whole corpus in ``out_dir`` (which should be empty); return clips per split.

    ``planted_file``: where the label errors planted in train (``corpus.label_noise``) are
    listed, outside the corpus (the ranking must not see them); written even when none are.
    """
    espeak = check_espeak()
    sentences = read_sentences(params.sentences_file)
    if len(sentences) < MIN_SENTENCES and params.max_sentences <= 0:
        raise CorpusError(
            f"{params.sentences_file}: only {len(sentences)} sentences, the demo corpus needs at "
            f"least {MIN_SENTENCES}"
        )
    utterances = plan(params, sentences, read_speakers(params.speakers_file))
    wrong, planted = plant([(u.path, u.sentence) for u in utterances["train"]], params.label_noise)
    utterances["train"] = [replace(u, label=wrong.get(u.path, "")) for u in utterances["train"]]
    clips = out_dir / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    everything = [u for s in SPLITS for u in utterances[s]]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [
            pool.submit(synthesise, u, clips / u.path, params.sample_rate, espeak)
            for u in everything
        ]
        for future in futures:
            future.result()
    for split in SPLITS:
        write_tsv(out_dir / f"{split}.tsv", utterances[split])
    write_tsv(out_dir / "validated.tsv", [u for s in SPLITS for u in utterances[s]])
    if planted_file is not None:
        write_planted(planted_file, planted)
    return {s: len(utterances[s]) for s in SPLITS}
