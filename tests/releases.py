"""What a Common Voice release and the demo corpus hold, for tests that make them on the fly."""

from __future__ import annotations

from pathlib import Path

from benchmarks.scale_release import TSV_COLUMNS as NEW_TSV_COLUMNS
from swedish_transcriber.data.demo_corpus import TSV_COLUMNS
from tests.media_files import write_clip

# The columns of current releases (the release-scale benchmark writes the same).
HEADER_NEW = list(NEW_TSV_COLUMNS)
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


def build_release(
    parent: Path,
    splits: dict[str, list[dict[str, object]]],
    header: list[str] | None = None,
    name: str = "cv-corpus-test/sv-SE",
) -> Path:
    """A release dir ``parent/name``: ``splits`` maps a split to its rows, MP3 clips written.

    A row is a dict of TSV values; a ``_seconds`` key sets the clip length, ``_clip`` may be
    "silent", "missing", "empty" or "corrupt", and ``_line`` replaces the whole TSV line.
    """
    header = header or HEADER_NEW
    root = parent / name
    (root / "clips").mkdir(parents=True, exist_ok=True)
    for split in ("train", "dev", "test"):
        lines = ["\t".join(header)]
        for i, row in enumerate(splits.get(split, [])):
            values = {k: str(v) for k, v in row.items() if not k.startswith("_")}
            values.setdefault("client_id", f"speaker-{split}-{i % 3}")
            values.setdefault("path", f"common_voice_sv-SE_{split}_{i}.mp3")
            values.setdefault("sentence", "Hej på dig.")
            values.setdefault("up_votes", "2")
            values.setdefault("down_votes", "0")
            values.setdefault("locale", "sv-SE")
            lines.append(str(row["_line"]) if "_line" in row else tsv_line(values, header))
            clip_name = (
                values["path"] if values["path"].endswith(".mp3") else values["path"] + ".mp3"
            )
            clip = root / "clips" / clip_name
            kind = row.get("_clip", "ok")
            if kind == "missing" or "_line" in row:
                continue
            if kind == "empty":
                clip.write_bytes(b"")
            elif kind == "corrupt":
                clip.write_bytes(b"ID3\x03\x00\x00\x00" + bytes(range(256)) * 8)
            else:
                write_clip(clip, float(row.get("_seconds", 2.0)), seed=i, silent=kind == "silent")
        (root / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root
