"""Params section ``data``: which corpus the pipeline reads (shared by corpus and ingest)."""

from __future__ import annotations

from dataclasses import dataclass

DATA_SOURCES = ("demo", "commonvoice", "mdc")


@dataclass(frozen=True)
class DataParams:
    """Where the raw release is and how much of it to use.

    ``source: demo`` makes the corpus stage synthesise ``raw_dir``; ``source: commonvoice``
    reads ``raw_dir`` as an extracted Common Voice release. Switching is a params change.
    """

    source: str  # demo | commonvoice
    raw_dir: str  # the release directory ingest reads
    max_clips: int  # clips per split; 0 keeps all (a deterministic subset by seed)
    seed: int

    def __post_init__(self) -> None:
        if self.source not in DATA_SOURCES:
            raise ValueError(
                f"source must be one of {', '.join(DATA_SOURCES)}, got {self.source!r}"
            )
        if self.max_clips < 0:
            raise ValueError(f"max_clips must be >= 0, got {self.max_clips}")
