"""What a Common Voice release and the demo corpus hold, for tests that make them on the fly."""

from __future__ import annotations

from pathlib import Path

from swedish_transcriber.data.demo_corpus import TSV_COLUMNS

HEADER_NEW = [
    "client_id",
    "path",
    "sentence_id",
    "sentence",
    "sentence_domain",
    "up_votes",
    "down_votes",
    "age",
    "gender",
    "accents",
    "variant",
    "locale",
    "segment",
]
# The columns of older releases, which the demo corpus also writes.
HEADER_OLD = list(TSV_COLUMNS)

# Ten sentences for a demo corpus (the tests' sentences file).
SENTENCES = [
    "Hej, hur mår du idag?",
    "Jag köpte tjugo äpplen på torget i Malmö.",
    "Vart går nästa tåg till Göteborg?",
    "Det regnar ute och vi stannar hemma.",
    "Mormor bakar kanelbullar varje lördag.",
    "Klockan är halv åtta på morgonen.",
    "Han cyklade till jobbet trots snön.",
    "Vi ska fira midsommar på Öland i år.",
    "Har du sett min blå jacka någonstans?",
    "Barnen leker i parken efter skolan.",
]


def tsv_line(values: dict[str, str], header: list[str]) -> str:
    return "\t".join(values.get(c, "") for c in header)


def write_tsv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    """A TSV file of ``header`` and ``rows`` (lists of cells, written as they are)."""
    path.write_text("\n".join("\t".join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    return path
