"""The word-level evidence of a wrong label: tokens to words, each word's lowest log-prob,
whether the transcript aligns to it, and the suspect word, on hand-made inputs."""

from __future__ import annotations

import math

import pytest

from swedish_transcriber.review.word_evidence import (
    aligned_words,
    clip_evidence,
    suspect_word,
    token_bytes,
    token_words,
    word_logprobs,
)
from tests.tiny import tiny_processor

LABEL = "Tåget går klockan sju."


def test_tokens_map_to_the_word_they_start_in():
    # Whisper's tokens carry the space before a word; "å" split over two tokens stays in one.
    pieces = [None, b"T", b"\xc3", b"\xa5get", b" g", b"\xc3\xa5r", b" ", b"klockan", None]
    assert token_words(pieces) == [-1, 0, 0, 0, 1, 1, -1, 2, -1]


def test_the_real_tokenizers_pieces_rebuild_the_label():
    tokenizer = tiny_processor().tokenizer
    ids = tokenizer(LABEL).input_ids
    pieces = token_bytes(tokenizer, ids)
    assert pieces[0] is None and pieces[-1] is None  # <|startoftranscript|>, <|endoftext|>
    assert b"".join(p for p in pieces if p).decode() == LABEL
    words = token_words(pieces)
    assert max(words) == len(LABEL.split()) - 1 and words[0] == -1


def test_each_word_keeps_its_lowest_token_log_prob():
    got = word_logprobs([-1, 0, 0, 1, 2, 2], [-9.0, -0.5, -2.0, -0.1, -0.3, -4.0], 4)
    assert got[:3] == [-2.0, -0.1, -4.0] and math.isnan(got[3])  # a word without tokens
    with pytest.raises(ValueError):
        word_logprobs([0], [-1.0, -2.0], 1)


def test_alignment_says_which_label_words_the_transcript_holds():
    words = LABEL.split()
    assert aligned_words(words, "tåget går klockan sju") == [True] * 4  # normalised
    assert aligned_words(words, "tåget gick klockan sju") == [True, False, True, True]
    # A word dropped from the label: the transcript's extra word sits before "sju".
    assert aligned_words(["Tåget", "går", "sju."], "tåget går klockan sju") == [True, True, False]
    assert aligned_words(words, "") == [False] * 4
    assert aligned_words(["–", "Hej"], "hej") == [True, True]  # no evidence in a dash


def test_the_suspect_is_the_least_likely_unaligned_word():
    words = ["Tåget", "går", "båt", "sju."]
    logprobs = [-0.2, -3.0, -6.0, -0.1]
    # "går" is the least likely word the transcript holds; "båt" the least likely it does not.
    got = suspect_word(words, logprobs, [True, True, False, True])
    assert (got.index, got.word, got.logprob, got.aligned, got.score) == (
        2,
        "båt",
        -6.0,
        False,
        6.0,
    )
    # Every word aligned: the least likely is shown, but scores 0 (no evidence of a wrong word).
    got = suspect_word(words, logprobs, [True] * 4)
    assert (got.index, got.aligned, got.score) == (2, True, 0.0)
    # Two unaligned: the less likely one, whatever a likelier aligned word does.
    got = suspect_word(words, [-9.0, -1.0, -2.0, -0.5], [True, False, False, True])
    assert got.index == 2 and got.score == 2.0
    nothing = suspect_word([], [], [])
    assert nothing.index == -1 and math.isnan(nothing.score)


def test_a_clip_with_one_wrong_word_points_at_it():
    """Hand-made token log-probs for "Tåget går båt sju." (båt planted for klockan) and a
    transcript that heard "klockan": the planted word is the suspect."""
    tokenizer = tiny_processor().tokenizer
    label = "Tåget går båt sju."
    ids = tokenizer(label).input_ids[1:]  # as the collator's targets: no start token
    pieces = token_bytes(tokenizer, ids)
    owner = token_words(pieces)
    logprobs = [-7.5 if w == 2 else -0.4 for w in owner]  # the specials too: not words
    got = clip_evidence(pieces, logprobs, "tåget går klockan sju")
    assert (got.index, got.word, got.logprob, got.aligned) == (2, "båt", -7.5, False)
