"""Bootstrap intervals of corpus WER and of paired WER differences, against hand counts."""

from __future__ import annotations

import numpy as np
import pytest

from swedish_transcriber.evaluation.intervals import (
    BootstrapParams,
    clip_errors,
    interval,
    units,
)
from swedish_transcriber.evaluation.scoring import scores
from tests.messages import raises_naming

PARAMS = BootstrapParams(resamples=9999, seed=1234, confidence=0.95, min_speakers=2)


def test_two_clips_by_hand():
    # Clip a: 1 error in 2 words, clip b: 3 in 2. Resamples of two clips: aa (p 1/4) gives
    # 2/4, ab or ba (1/2) 4/4, bb (1/4) 6/4; the 2.5 % and 97.5 % points are 0.5 and 1.5.
    estimate, low, high = interval(np.arange(2), np.array([2, 2]), PARAMS, np.array([1, 3]))
    assert (estimate, low, high) == (1.0, 0.5, 1.5)


def test_three_clips_by_hand_at_50_percent():
    # errors/words 0/1, 1/1, 2/1: a resample's WER is (its errors) / 3, from 0 to 2 in
    # steps of 1/3; the sum of three draws from {0, 1, 2} is 0..6 in 1, 3, 6, 7, 6, 3, 1 of 27.
    # P(sum <= 2) = 10/27 = 0.37 and P(sum <= 3) = 17/27 = 0.63, so the middle 50 %
    # (25 % to 75 %) lies within sums 2..4: WER [2/3, 4/3].
    params = BootstrapParams(resamples=20000, seed=7, confidence=0.5, min_speakers=2)
    estimate, low, high = interval(np.arange(3), np.ones(3), params, np.array([0, 1, 2]))
    assert estimate == 1.0
    assert (low, high) == pytest.approx((2 / 3, 4 / 3))


def test_a_model_against_itself_differs_by_exactly_zero():
    rng = np.random.default_rng(0)
    words = rng.integers(1, 12, 94)
    errors = rng.integers(0, 6, 94)
    assert interval(np.arange(94), words, PARAMS, errors, errors) == (0.0, 0.0, 0.0)
    speakers = units([f"s{i % 7}" for i in range(94)], PARAMS)
    assert interval(speakers, words, PARAMS, errors, errors) == (0.0, 0.0, 0.0)


def test_paired_difference_is_second_minus_first_and_narrower_than_unpaired():
    rng = np.random.default_rng(1)
    words = rng.integers(3, 12, 200)
    hard = rng.integers(0, 6, 200)  # what both models get wrong: shared, cancels when paired
    better, worse = hard, hard + (rng.random(200) < 0.3)
    diff, low, high = interval(np.arange(200), words, PARAMS, worse, better)
    assert diff == pytest.approx((worse.sum() - better.sum()) / words.sum())
    assert 0 < low < diff < high  # 0.3 extra errors a clip: the interval excludes 0
    _, w_low, w_high = interval(np.arange(200), words, PARAMS, worse)
    assert high - low < (w_high - w_low) / 3


def test_speakers_are_resampled_whole():
    # Speaker x: 2 clips, 2 errors in 2 words; speaker y: 2 clips without errors. Resampling
    # speakers: xx 1.0 (p 1/4), xy 0.5 (1/2), yy 0.0 (1/4), so the 80 % interval is [0, 1].
    # Resampling clips, WER is k/4 with k ~ Binomial(4, 1/2): P(k = 0) = 1/16 < 10 %, so the
    # 80 % interval is [0.25, 0.75]: clips of one voice taken as independent look surer.
    speakers = ["x", "x", "y", "y"]
    words, errors = np.ones(4), np.array([1, 1, 0, 0])
    by_speaker = BootstrapParams(resamples=9999, seed=1234, confidence=0.8, min_speakers=2)
    assert interval(units(speakers, by_speaker), words, by_speaker, errors) == (0.5, 0.0, 1.0)
    by_clip = BootstrapParams(resamples=9999, seed=1234, confidence=0.8, min_speakers=3)
    assert list(units(speakers, by_clip)) == [0, 1, 2, 3]  # too few speakers: clips
    assert list(units(["x", "", "y", "y"], PARAMS)) == [0, 1, 2, 3]  # unknown speaker: clips
    assert interval(units(speakers, by_clip), words, by_clip, errors) == (0.5, 0.25, 0.75)


def test_one_unit_has_no_spread():
    assert interval(np.zeros(3, dtype=int), np.ones(3), PARAMS, np.array([0, 1, 1])) == (
        2 / 3,
        2 / 3,
        2 / 3,
    )


def test_clip_errors_sum_to_the_corpus_wer():
    refs = ["Hej, hur mår du?", "Det regnar i dag.", "...", "En katt."]
    hyps = ["hej hur mår", "det regnar idag och", "hallå", "en hund katt"]
    errors, words = clip_errors(refs, hyps)
    # a deletion; i -> idag, dag -> och; nothing to score; an insertion
    assert list(words) == [4, 4, 0, 2] and list(errors) == [1, 2, 0, 1]
    assert errors.sum() / words.sum() == pytest.approx(scores(refs, hyps)["wer_norm"], abs=1e-12)


def test_params_are_bounded():
    with raises_naming(ValueError, "confidence", "(0, 1)", 95):
        BootstrapParams(resamples=1000, seed=0, confidence=95, min_speakers=10)
    with raises_naming(ValueError, "resamples", ">= 100", 10):
        BootstrapParams(resamples=10, seed=0, confidence=0.95, min_speakers=10)
