"""The Swedish normaliser and WER/CER scoring."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swedish_transcriber.evaluation.normalizer import normalize
from swedish_transcriber.evaluation.scoring import cer, scores, wer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hej, hur mår du?", "hej hur mår du"),
        ("ÅSA ÄTER ÖL!", "åsa äter öl"),
        ("Det var  tjugotre  grader.", "det var tjugotre grader"),
        ('Han sa: "Kom hit" [skratt] (tyst)', "han sa kom hit"),
        ("e-post och T-shirt", "e post och t shirt"),
        ("Café Ümit", "café ümit"),
        ("Tre är 3", "tre är 3"),  # numbers are not rewritten
        # Where Whisper's BasicTextNormalizer differs from a plain NFC + punctuation rule,
        # its behaviour is kept, so normalised scores compare with other Whisper results:
        ("hej[skratt]du", "hejdu"),  # an aside is removed, not replaced by a space
        ("ﬁnt, 2 m²", "fint 2 m2"),  # NFKC: ligatures and superscripts become plain text
    ],
)
def test_normalize(text, expected):
    assert normalize(text) == expected


def test_normalize_is_whispers_basic_normalizer_trimmed():
    from transformers.models.whisper.english_normalizer import BasicTextNormalizer

    basic = BasicTextNormalizer(remove_diacritics=False)
    for text in ("Hej, hur mår du?", "¿Året (1998) på Öland!", "[MUSIK] Tack."):
        assert normalize(text) == basic(text).strip()


def test_decomposed_letters_stay_letters():
    decomposed = unicodedata.normalize("NFD", "Året på Öland")
    assert normalize(decomposed) == "året på öland"


@given(st.text())
def test_normalize_is_idempotent(text):
    once = normalize(text)
    assert normalize(once) == once
    assert once == once.strip() and "  " not in once


def test_wer_and_cer_are_corpus_level_fractions():
    refs = ["det regnar i dag", "hej"]
    hyps = ["det regnar idag", "hej"]
    # 2 errors (1 substitution + 1 deletion) over 5 reference words.
    assert wer(refs, hyps) == pytest.approx(2 / 5)
    assert cer(["abcd"], ["abed"]) == pytest.approx(1 / 4)


def test_scores_normalised_and_raw():
    got = scores(["Hej, hur mår du?"], ["hej hur mår du"])
    assert got["wer_norm"] == 0.0 and got["cer_norm"] == 0.0
    assert got["wer"] > 0 and got["cer"] > 0
    assert set(got) == {"wer", "cer", "wer_norm", "cer_norm"}


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        wer(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no utterances"):
        wer([], [])
    with pytest.raises(ValueError, match="empty reference"):
        scores(["  "], ["hej"])


def test_word_diff_aligns_normalised_words():
    from swedish_transcriber.evaluation.word_diff import word_diff

    diff = word_diff("Det regnar i Göteborg.", "det regnar mycket i göte borg")
    kinds = [(op.kind, op.reference, op.hypothesis) for op in diff.ops]
    assert kinds[0] == ("equal", ("det", "regnar"), ("det", "regnar"))
    assert ("insert", (), ("mycket",)) in kinds
    assert diff.wer == pytest.approx(
        scores(["Det regnar i Göteborg."], ["det regnar mycket i göte borg"])["wer_norm"]
    )
    assert word_diff("Hej på dig", "").ops[0].kind == "delete"
    with pytest.raises(ValueError, match="no words"):
        word_diff("?!", "hej")
