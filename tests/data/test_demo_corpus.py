"""The embedded demo corpus: Common Voice's layout, speaker- and sentence-disjoint, seeded."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from swedish_transcriber.data.commonvoice import read_tsv
from swedish_transcriber.data.demo_corpus import (
    MIN_SENTENCES,
    TSV_COLUMNS,
    CorpusError,
    CorpusParams,
    build_corpus,
    plan,
    read_sentences,
    read_speakers,
)
from swedish_transcriber.params import section
from tests.dvc_stages import stage_command
from tests.messages import assert_names, raises_naming
from tests.releases import SENTENCES
from tests.repo_params import REPO, write_params


@pytest.fixture
def params(tmp_path) -> CorpusParams:
    real = section("corpus", CorpusParams, REPO / "params.yaml")
    sentences = tmp_path / "sentences.txt"
    sentences.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    speakers = str(REPO / real.speakers_file)
    return replace(real, sentences_file=str(sentences), speakers_file=speakers, max_sentences=10)


@pytest.fixture
def speakers(params) -> list:
    return read_speakers(params.speakers_file)


def test_layout_columns_and_disjoint_splits(params, tmp_path):
    out = tmp_path / "demo"
    counts = build_corpus(params, out)
    assert counts == {"train": 16, "dev": 1, "test": 2}
    for name in ("train", "dev", "test", "validated"):
        header = (out / f"{name}.tsv").read_text(encoding="utf-8").splitlines()[0]
        assert header.split("\t") == list(TSV_COLUMNS)
    tables = {s: read_tsv(out / f"{s}.tsv").rows for s in ("train", "dev", "test")}
    assert len(read_tsv(out / "validated.tsv").rows) == 19
    speakers = {s: set(t["client_id"]) for s, t in tables.items()}
    sentences = {s: set(t["sentence"]) for s, t in tables.items()}
    for a, b in (("train", "dev"), ("train", "test"), ("dev", "test")):
        assert not speakers[a] & speakers[b], "splits must be speaker-disjoint"
        assert not sentences[a] & sentences[b], "splits must be sentence-disjoint"
    train = tables["train"]
    assert train["client_id"].str.fullmatch(r"[0-9a-f]{128}").all()
    assert set(train["gender"]) == {"male", "female"}
    assert (train.groupby("sentence")["client_id"].nunique() == 2).all()
    for clip in train["path"]:
        assert (out / "clips" / clip).stat().st_size > 1000
    import soundfile as sf

    info = sf.info(out / "clips" / train["path"].iloc[0])
    assert info.samplerate == 48_000 and info.channels == 1 and info.format == "MP3"


def test_same_seed_same_corpus_other_seed_other_corpus(params, tmp_path):
    build_corpus(params, tmp_path / "a")
    build_corpus(params, tmp_path / "b")
    build_corpus(replace(params, seed=99), tmp_path / "c")
    for name in ("train", "dev", "test"):
        a = (tmp_path / "a" / f"{name}.tsv").read_bytes()
        assert a == (tmp_path / "b" / f"{name}.tsv").read_bytes()
    clips = sorted(p.name for p in (tmp_path / "a/clips").iterdir())
    assert all(
        (tmp_path / "a/clips" / c).read_bytes() == (tmp_path / "b/clips" / c).read_bytes()
        for c in clips[:3]
    )
    assert (tmp_path / "a/train.tsv").read_bytes() != (tmp_path / "c/train.tsv").read_bytes()


def test_rates_and_pitches_jitter_within_bounds_around_each_speaker(params, speakers):
    """Each clip's rate and pitch is its speaker's +- the jitter (pitch clamped to espeak's
    0..99), both directions are used, and without jitter every clip is its speaker's voice."""
    many = [f"Mening nummer {i}." for i in range(60)]
    unjittered = replace(params, max_sentences=0)
    everything = [u for us in plan(unjittered, many, speakers).values() for u in us]
    assert len(everything) > 100
    rate_offsets = [u.rate - u.speaker.rate for u in everything]
    assert all(abs(o) <= params.rate_jitter for o in rate_offsets)
    assert min(rate_offsets) < 0 < max(rate_offsets)
    for u in everything:
        low = max(0, u.speaker.pitch - params.pitch_jitter)
        high = min(99, u.speaker.pitch + params.pitch_jitter)
        assert low <= u.pitch <= high, (u.speaker.name, u.pitch)
    pitch_offsets = [u.pitch - u.speaker.pitch for u in everything]
    assert min(pitch_offsets) < 0 < max(pitch_offsets)

    still = replace(params, max_sentences=0, rate_jitter=0, pitch_jitter=0)
    for u in (u for us in plan(still, many, speakers).values() for u in us):
        assert (u.rate, u.pitch) == (u.speaker.rate, min(99, max(0, u.speaker.pitch)))


def test_bad_corpus_params(params, speakers):
    asked = params.clips_per_sentence["train"]
    with raises_naming(CorpusError, "corpus", "train", 1, "clips_per_sentence", asked):
        plan(params, SENTENCES, [s for s in speakers if s.split != "train"][:1] + speakers[:1])
    path = Path(params.sentences_file)
    path.write_text("Hej.\nHej.\n", encoding="utf-8")
    with raises_naming(CorpusError, path, "line 2", "'Hej.'"):  # the file, the line, the sentence
        read_sentences(path)


HEADER = "name\tvoice\tgender\tage\trate\tpitch\tsplit\taccent\n"
ASTRID = "astrid\tsv+f2\tfemale_feminine\ttwenties\t160\t60\ttrain\tStockholmska\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# only a comment\n", r"no speakers"),
        (HEADER.replace("\tpitch", ""), r"line 1: the header .* \(missing: pitch; unknown: none\)"),
        ("# c\n" + HEADER.replace("age", "ages"), r"line 2: .*missing: age; unknown: ages"),
        (HEADER + ASTRID + ASTRID.replace("\tStockholmska", ""), r"line 3: 7 tab-separated"),
        (HEADER + ASTRID.replace("sv+f2", " "), r"line 2: empty voice"),
        (HEADER + ASTRID.replace("160", "fast"), r"line 2: rate 'fast' must be a whole number"),
        (HEADER + ASTRID.replace("\t60", "\t120"), r"line 2: pitch '120' must be .* 0\.\.99"),
        (HEADER + ASTRID.replace("train", "valid"), r"line 2: split 'valid' must be one of"),
        (HEADER + ASTRID + "\n" + ASTRID, r"line 4: speaker 'astrid' is also on line 2"),
    ],
)
def test_a_bad_speakers_file_is_named_with_its_line(tmp_path, text, message):
    path = tmp_path / "speakers.tsv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CorpusError, match=f"speakers.tsv: {message}"):
        read_speakers(path)
    with pytest.raises(CorpusError, match=r"nothing.tsv: speakers file not found"):
        read_speakers(tmp_path / "nothing.tsv")


def test_repo_speakers_are_distinct_voices_with_metadata():
    params = section("corpus", CorpusParams, REPO / "params.yaml")
    speakers = read_speakers(REPO / params.speakers_file)
    assert len({s.voice for s in speakers}) >= 6
    for split in ("train", "dev", "test"):
        assert any(s.split == split for s in speakers)
    assert all(s.gender and s.age for s in speakers)


def test_repo_sentences_are_many_varied_and_in_the_alphabet():
    params = section("corpus", CorpusParams, REPO / "params.yaml")
    sentences = read_sentences(REPO / params.sentences_file)
    assert len(sentences) >= MIN_SENTENCES
    allowed = re.compile(r"[A-Za-zÅÄÖåäöÉéüÜ ,.?!:;'\"()\-]+")
    assert all(allowed.fullmatch(s) for s in sentences), "digits or symbols in a sentence"
    assert sum(s.endswith("?") for s in sentences) >= 60
    assert sum(any(c in s for c in "åäöÅÄÖ") for s in sentences) >= len(sentences) // 2
    # Not template-made: no two-word opening dominates.
    openings = pd.Series([" ".join(s.split()[:2]) for s in sentences]).value_counts()
    assert openings.iloc[0] <= 0.04 * len(sentences)


def test_stage_writes_only_a_placeholder_for_a_real_release(repo_copy):
    import subprocess

    repo = repo_copy()
    write_params(
        repo, {"data.source": "commonvoice", "data.raw_dir": "data/raw/cv-corpus-17.0/sv-SE"}
    )
    proc = subprocess.run(
        stage_command("corpus", repo),
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    assert_names(proc.stdout, "data.source", "commonvoice", "skipped")
    assert [p.name for p in (repo / "data/raw/demo").iterdir()] == ["README.txt"]
    assert "data/raw/cv-corpus-17.0/sv-SE" in (repo / "data/raw/demo/README.txt").read_text()
