"""Text normalisation for scoring Swedish transcripts.

Whisper's ``BasicTextNormalizer`` (openai/whisper, ``normalizers/basic.py``) lower-cases,
drops bracketed asides and turns punctuation and symbols into spaces. Its optional
diacritics removal would turn "år" into "ar" and "öl" into "ol", different Swedish words, so
it is never applied here: å, ä, ö (and é, ü in loanwords and names) are kept. Numbers are
left as they are: the demo corpus and Common Voice write them as spoken words, and a
transcript that writes "3" for "tre" should count as an error, not be rewritten.
"""

from __future__ import annotations

import re
import unicodedata

_BRACKETED = re.compile(r"[<\[][^>\]]*[>\]]|\([^)]*\)")
_SPACES = re.compile(r"\s+")


def _symbols_to_space(text: str) -> str:
    """Replace punctuation (P*), symbols (S*) and stray marks (M*) with spaces.

    Text is composed first (NFC) so that å written as a + combining ring stays one letter.
    """
    return "".join(" " if unicodedata.category(c)[0] in "MSP" else c for c in text)


def normalize(text: str) -> str:
    """Lower-case, drop bracketed asides like ``[skratt]``, punctuation to spaces, trim."""
    text = unicodedata.normalize("NFC", text).lower()
    text = _BRACKETED.sub(" ", text)
    text = _symbols_to_space(text)
    return _SPACES.sub(" ", text).strip()
