"""sha256 of files, read by ``hashlib.file_digest`` rather than a hand-written read loop.

One helper for every place that fingerprints files: a base model's weights, the parts of a
CTranslate2 ``model.bin`` (whose pinned sha256 is that of the parts concatenated) and the
inputs of the encoder-output cache.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any


def update_from_file(digest: Any, path: str | Path) -> None:
    """Feed the bytes of ``path`` into the running hash object ``digest``.

    ``hashlib.file_digest`` takes a callable that returns the hash object to fill; returning
    an existing one lets several files (and names between them) go into one digest.
    """
    with Path(path).open("rb") as fh:
        hashlib.file_digest(fh, lambda: digest)


def sha256_of_files(*paths: str | Path) -> str:
    """Hex sha256 of the files' bytes, concatenated (``cat a b | sha256sum``)."""
    digest = hashlib.sha256()
    for path in paths:
        update_from_file(digest, path)
    return digest.hexdigest()
