"""corpus.label_noise: known wrong labels planted in the demo corpus's train split only."""

from __future__ import annotations

from dataclasses import replace

import pytest

from swedish_transcriber.data.commonvoice import read_tsv
from swedish_transcriber.data.demo_corpus import CorpusParams, build_corpus
from swedish_transcriber.data.label_noise import (
    KINDS,
    LabelNoiseParams,
    plant,
    read_planted,
    write_planted,
)
from swedish_transcriber.params import section
from tests.messages import raises_naming
from tests.releases import SENTENCES
from tests.repo_params import REPO

CLIPS = [(f"clip_{i:03d}.mp3", SENTENCES[i % len(SENTENCES)]) for i in range(60)]


def noise(fraction: float, kinds: tuple[str, ...] = KINDS, seed: int = 7) -> LabelNoiseParams:
    return LabelNoiseParams(fraction=fraction, kinds=list(kinds), seed=seed)


def test_off_plants_nothing():
    assert plant(CLIPS, noise(0.0)) == ({}, [])


@pytest.mark.parametrize("fraction", [0.05, 0.1, 0.25, 0.5])
def test_the_planted_count_is_the_fraction_and_every_label_is_wrong(fraction):
    labels, planted = plant(CLIPS, noise(fraction))
    assert len(planted) == round(fraction * len(CLIPS)) == len(labels)
    spoken = dict(CLIPS)
    for error in planted:
        assert error.spoken == spoken[error.path] and error.label == labels[error.path]
        assert error.label != error.spoken and error.label.strip()
    assert [e.path for e in planted] == sorted(labels)


def test_each_kind_is_the_error_it_names():
    _, planted = plant(CLIPS, noise(0.5))
    by_kind = {k: [e for e in planted if e.kind == k] for k in KINDS}
    assert all(by_kind.values()), "every kind is planted"
    for error in by_kind["drop_words"]:
        spoken, label = error.spoken.split(), error.label.split()
        assert len(spoken) - len(label) in (1, 2) and label[0] == spoken[0]
        assert all(word in spoken for word in label)
    for error in by_kind["truncate"]:
        spoken, label = error.spoken.split(), error.label.split()
        assert label == spoken[: len(label)] and len(label) == len(spoken) // 2
    swaps = {e.path: e for e in by_kind["swap"]}
    assert len(swaps) % 2 == 0
    labels = sorted(e.label for e in swaps.values())
    assert labels == sorted(e.spoken for e in swaps.values())  # labels exchanged in pairs


def test_deterministic_by_seed_and_one_kind_only():
    assert plant(CLIPS, noise(0.2)) == plant(CLIPS, noise(0.2))
    assert plant(CLIPS, noise(0.2)) != plant(CLIPS, noise(0.2, seed=8))
    _, planted = plant(CLIPS, noise(0.1, kinds=("truncate",)))
    assert {e.kind for e in planted} == {"truncate"}


@pytest.mark.parametrize(
    ("fraction", "kinds", "match"),
    [(0.6, list(KINDS), "fraction"), (0.1, ["mumble"], "kinds"), (0.1, [], "kinds")],
)
def test_bad_params(fraction, kinds, match):
    with pytest.raises(ValueError, match=match):
        LabelNoiseParams(fraction=fraction, kinds=kinds, seed=1)


def test_planted_file_round_trip(tmp_path):
    _, planted = plant(CLIPS, noise(0.1))
    write_planted(tmp_path / "planted.tsv", planted)
    assert read_planted(tmp_path / "planted.tsv") == planted
    (tmp_path / "bad.tsv").write_text("path\tkind\n", encoding="utf-8")
    with raises_naming(ValueError, tmp_path / "bad.tsv", "line 1"):
        read_planted(tmp_path / "bad.tsv")


def test_the_corpus_writes_wrong_train_labels_and_lists_them_outside(tmp_path):
    """The audio is made from the true sentence (the same clip files as without noise); only
    train.tsv and validated.tsv carry the wrong labels; dev and test are untouched."""
    real = section("corpus", CorpusParams, REPO / "params.yaml")
    sentences = tmp_path / "sentences.txt"
    sentences.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    clean = replace(real, sentences_file=str(sentences), max_sentences=10)
    noisy = replace(clean, label_noise=noise(0.25))
    build_corpus(clean, tmp_path / "clean", planted_file=tmp_path / "clean.tsv")
    build_corpus(noisy, tmp_path / "noisy", planted_file=tmp_path / "noisy.tsv")
    assert read_planted(tmp_path / "clean.tsv") == []
    planted = {e.path: e for e in read_planted(tmp_path / "noisy.tsv")}
    assert len(planted) == 4  # 25 % of 16 train clips
    for split in ("dev", "test"):
        a, b = (tmp_path / d / f"{split}.tsv" for d in ("clean", "noisy"))
        assert a.read_bytes() == b.read_bytes()
    clean_train = read_tsv(tmp_path / "clean/train.tsv").rows.set_index("path")
    noisy_train = read_tsv(tmp_path / "noisy/train.tsv").rows.set_index("path")
    for path in clean_train.index:
        expected = planted[path].label if path in planted else clean_train.loc[path, "sentence"]
        assert noisy_train.loc[path, "sentence"] == expected
        if path in planted:
            assert planted[path].spoken == clean_train.loc[path, "sentence"]
        same_audio = (tmp_path / "clean/clips" / path).read_bytes()
        assert (tmp_path / "noisy/clips" / path).read_bytes() == same_audio
    validated = read_tsv(tmp_path / "noisy/validated.tsv").rows.set_index("path")
    assert validated.loc[list(planted), "sentence"].tolist() == [planted[p].label for p in planted]
    assert not any((tmp_path / "noisy").rglob("*planted*")), "the list is outside the corpus"


def test_substitute_word_replaces_one_word_by_one_from_another_sentence():
    """One word (never the first) becomes a word the sentence does not hold, taken from
    another clip's sentence; the rest, punctuation included, is unchanged. By seed."""
    params = noise(0.5, kinds=("substitute_word",))
    labels, planted = plant(CLIPS, params)
    assert len(planted) == 30 and {e.kind for e in planted} == {"substitute_word"}
    bare = lambda word: word.strip(".,!?;:").casefold()  # noqa: E731
    others = {bare(w) for _, s in CLIPS for w in s.split()}
    for error in planted:
        spoken, label = error.spoken.split(), error.label.split()
        assert len(label) == len(spoken)
        changed = [i for i, (a, b) in enumerate(zip(spoken, label, strict=True)) if a != b]
        assert len(changed) == 1 and changed[0] >= 1
        i = changed[0]
        assert bare(label[i]) not in {bare(w) for w in spoken}
        assert bare(label[i]) in others  # a word of the corpus's other sentences
        if spoken[i][-1] in ".,!?":  # "sju." -> "båt.": the punctuation stays
            assert label[i].endswith(spoken[i][-1])
    assert plant(CLIPS, params) == (labels, planted)
    assert plant(CLIPS, noise(0.5, kinds=("substitute_word",), seed=8))[1] != planted


def test_the_repos_kinds_name_all_four_and_the_corpus_is_untouched_at_zero():
    repo = section("corpus", CorpusParams, REPO / "params.yaml").label_noise
    assert repo.kinds == list(KINDS) and "substitute_word" in KINDS
    assert repo.fraction == 0 and plant(CLIPS, repo) == ({}, [])
