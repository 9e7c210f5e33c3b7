"""Word-level evidence of a wrong label: which word of it the audio does not support.

One wrong word among eight moves a clip's mean loss and WER little, but the word itself
stands out, under a model that did not train on the clip (:mod:`.cross_fit`), in two ways:

* its tokens get a low probability under teacher forcing (the label so far as context, the
  audio as evidence): :func:`word_logprobs` keeps, per label word, its lowest token log-prob;
* the model's own transcript does not align to it (jiwer's word alignment, both sides
  normalised as the WER is): :func:`aligned_words`. A word also counts as unaligned when the
  transcript has words the label lacks right before it: a word dropped from the label shows
  there, as an insertion, and as a low probability of the word after the gap.

:func:`suspect_word` picks the clip's most suspicious word: the unaligned word with the lowest
log-prob, else (every word aligned) the word with the lowest log-prob, shown but not counted.
The clip's component ``oos_word`` is that word's negative log-prob when it is unaligned and 0
otherwise: both kinds of evidence at one word, not one of them anywhere in the clip.

Pure functions on token ids, log-probs and strings; the model passes are in
:mod:`.model_passes`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import jiwer

from swedish_transcriber.evaluation.normalizer import normalize

WHITESPACE = frozenset(b" \t\n\r\x0b\x0c")


@dataclass(frozen=True)
class WordEvidence:
    """A clip's most suspicious label word (``index`` into ``label.split()``; -1: none)."""

    index: int
    word: str
    logprob: float  # the lowest log-prob (nats) of its tokens; NaN when no word
    aligned: bool  # whether the transcript aligns to it
    score: float  # the component ``oos_word``: -logprob when unaligned, else 0; NaN: no word


NO_WORD = WordEvidence(-1, "", math.nan, True, math.nan)


@cache
def _byte_decoder() -> dict[str, int]:
    from transformers.models.gpt2.tokenization_gpt2 import bytes_to_unicode

    return {char: byte for byte, char in bytes_to_unicode().items()}


def token_bytes(tokenizer, ids: Sequence[int]) -> list[bytes | None]:
    """Each token's bytes (Whisper's byte-level BPE); None for special tokens.

    Whisper's special tokens (``<|endoftext|>`` and all after it: languages, tasks,
    timestamps) have the ids from ``<|endoftext|>`` on; text tokens are below.
    """
    first_special = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    decoder = _byte_decoder()
    pieces = tokenizer.convert_ids_to_tokens([int(i) for i in ids])
    return [
        None if int(i) >= first_special else bytes(decoder[c] for c in piece)
        for i, piece in zip(ids, pieces, strict=True)
    ]


def token_words(pieces: Sequence[bytes | None]) -> list[int]:
    """The label word (index into the decoded text's ``split()``) each token starts in.

    A token belongs to the word of its first non-blank byte (Whisper's tokens carry the
    space before a word); blank and special tokens belong to none (-1). Multi-byte letters
    split across tokens (å, ä, ö) stay in one word: words are counted on bytes.
    """
    out: list[int] = []
    word, in_word = -1, False
    for piece in pieces:
        if piece is None:
            out.append(-1)
            continue
        first = -1
        for byte in piece:
            if byte in WHITESPACE:
                in_word = False
                continue
            if not in_word:
                word, in_word = word + 1, True
            if first < 0:
                first = word
        out.append(first)
    return out


def word_logprobs(
    token_word: Sequence[int], logprobs: Sequence[float], n_words: int
) -> list[float]:
    """Per word, the lowest log-prob of its tokens (NaN for a word without tokens)."""
    if len(token_word) != len(logprobs):
        raise ValueError(f"{len(token_word)} token words for {len(logprobs)} log-probs")
    out = [math.nan] * n_words
    for word, logprob in zip(token_word, logprobs, strict=True):
        if 0 <= word < n_words and not logprob >= out[word]:  # NaN compares false: replaced
            out[word] = float(logprob)
    return out


def aligned_words(words: Sequence[str], transcript: str) -> list[bool]:
    """Per label word, whether ``transcript`` aligns to it (jiwer, normalised words).

    Aligned: every normalised piece of the word is in an ``equal`` chunk, and the
    transcript has no inserted words right before it (a gap in the label). A word that
    normalises to nothing (a dash) is aligned: it carries no evidence.
    """
    pieces = [normalize(w).split() for w in words]
    owner = [i for i, p in enumerate(pieces) for _ in p]  # normalised word -> label word
    out = [True] * len(words)
    if not owner:
        return out
    hypothesis = normalize(transcript)
    if not hypothesis.split():
        return [not p for p in pieces]
    reference = " ".join(w for p in pieces for w in p)
    good = [False] * len(owner)
    after_insert: set[int] = set()
    for chunk in jiwer.process_words(reference, hypothesis).alignments[0]:
        if chunk.type == "equal":
            good[chunk.ref_start_idx : chunk.ref_end_idx] = [True] * (
                chunk.ref_end_idx - chunk.ref_start_idx
            )
        elif chunk.type == "insert" and chunk.ref_start_idx < len(owner):
            after_insert.add(chunk.ref_start_idx)
    for position, label_word in enumerate(owner):
        if not good[position] or position in after_insert:
            out[label_word] = False
    return out


def suspect_word(words: Sequence[str], logprobs: Sequence[float], aligned: Sequence[bool]):
    """The clip's most suspicious word (:class:`WordEvidence`; see the module docstring).

    Candidates are words with a finite log-prob; ties go to the earlier word.
    """
    if not len(words) == len(logprobs) == len(aligned):
        raise ValueError("words, log-probs and alignment differ in length")
    candidates = [i for i, lp in enumerate(logprobs) if math.isfinite(lp)]
    if not candidates:
        return NO_WORD
    unaligned = [i for i in candidates if not aligned[i]]
    pool = unaligned or candidates
    index = min(pool, key=lambda i: (logprobs[i], i))
    logprob = float(logprobs[index])
    score = -logprob if not aligned[index] else 0.0
    return WordEvidence(index, words[index], logprob, bool(aligned[index]), score)


def clip_evidence(pieces: Sequence[bytes | None], logprobs: Sequence[float], transcript: str):
    """The suspect word of one clip from its label tokens' bytes and log-probs (teacher
    forcing) and a transcript by the same model. The words are the decoded label's."""
    text = b"".join(p for p in pieces if p is not None).decode("utf-8", errors="replace")
    words = text.split()
    per_word = word_logprobs(token_words(pieces), logprobs, len(words))
    return suspect_word(words, per_word, aligned_words(words, transcript))
