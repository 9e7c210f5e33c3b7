"""The Swedish normaliser and WER/CER scoring."""

from __future__ import annotations

import os
import subprocess
import sys
import unicodedata

import jiwer
import pytest
from hypothesis import given
from hypothesis import strategies as st

from swedish_transcriber.evaluation import scoring
from swedish_transcriber.evaluation.normalizer import normalize
from swedish_transcriber.evaluation.scoring import METRIC_PATH, cer, scores, wer
from tests.messages import raises_naming
from tests.repo_params import REPO


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


def test_scores_are_jiwer_over_the_corpus_raw_and_normalised():
    refs = ["Det regnar i Göteborg.", "?!", "Hej, hur mår du?", "Tre katter"]
    hyps = ["det regnar mycket i göte borg", "hej", "Hej hur mår du", "tre hattar"]
    normed = [(normalize(r), normalize(h)) for r, h in zip(refs, hyps, strict=True)]
    normed = [(r, h) for r, h in normed if r]  # "?!" normalises to nothing: raw scores only
    assert scores(refs, hyps) == {
        "wer": jiwer.wer(refs, hyps),
        "cer": jiwer.cer(refs, hyps),
        "wer_norm": jiwer.wer([r for r, _ in normed], [h for _, h in normed]),
        "cer_norm": jiwer.cer([r for r, _ in normed], [h for _, h in normed]),
    }


def test_scores_come_from_the_evaluate_metric_loaded_by_path():
    import evaluate

    metric = evaluate.load(str(METRIC_PATH), keep_in_memory=True)
    assert type(metric).__name__ == type(scoring.metric()).__name__ == "SwedishWER"
    refs, hyps = ["Hej, hur mår du?", "det regnar"], ["hej hur mår", "det regnar i dag"]
    assert metric.compute(predictions=hyps, references=refs) == scores(refs, hyps)


@pytest.mark.slow  # a subprocess per engine (or a fresh interpreter): seconds each
def test_the_metric_loads_offline(tmp_path):
    # A fresh module cache and the Hub switched off: evaluate.load by path needs neither.
    code = (
        "from swedish_transcriber.evaluation.scoring import scores\n"
        "print(scores(['Hej, hur mår du?'], ['hej hur mår']))\n"
    )
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_EVALUATE_OFFLINE": "1",
        "HF_MODULES_CACHE": str(tmp_path / "modules"),
        "PYTHONPATH": str(REPO),
    }
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "'wer_norm': 0.25" in done.stdout
    assert list((tmp_path / "modules").rglob("swedish_wer.py"))


def test_bad_inputs_are_clear_errors():
    with raises_naming(ValueError, 2, 1):  # references and hypotheses
        wer(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no utterances"):
        wer([], [])
    with raises_naming(ValueError, "empty", "'hej'"):  # the hypothesis of the empty reference
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
