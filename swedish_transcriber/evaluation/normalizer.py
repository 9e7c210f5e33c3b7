"""Text normalisation for scoring Swedish transcripts: Whisper's ``BasicTextNormalizer``.

transformers ships Whisper's basic (non-English) normaliser: it lower-cases, drops
bracketed asides like ``[skratt]`` and ``(tyst)``, applies NFKC (which also composes an å
written as a + combining ring into one letter, and turns ``ﬁ`` into ``fi``, ``²`` into
``2``) and turns punctuation, symbols and stray marks into spaces. Using it rather than an own
copy keeps the normalised scores comparable with other Whisper evaluations.

Its optional diacritics removal would turn "år" into "ar" and "öl" into "ol", different
Swedish words, so it is off: å, ä, ö (and é, ü in loanwords and names) are kept. Numbers are
left as they are: the demo corpus and Common Voice write them as spoken words, and a
transcript that writes "3" for "tre" should count as an error, not be rewritten. The one
addition is trimming: the library leaves a space where leading or trailing punctuation was.
"""

from __future__ import annotations

import functools
from collections.abc import Callable


@functools.cache
def _basic() -> Callable[[str], str]:
    """The library's normaliser, imported on first use: ``import transformers`` loads torch,
    which the page (word diff) and its CTranslate2 engine otherwise never need."""
    from transformers.models.whisper.english_normalizer import BasicTextNormalizer

    return BasicTextNormalizer(remove_diacritics=False)


def normalize(text: str) -> str:
    """Lower-case, drop bracketed asides, punctuation and symbols to spaces, trim."""
    return _basic()(text).strip()
