"""A review queue as the rank stage writes it, review-page params, and the validate stage run on
a reviewer's decisions: shared by the review page's tests and the browser test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import soundfile as sf

from swedish_transcriber.serving import review
from tests.manifests import manifest, manifest_row, validate_repo
from tests.media_files import tone
from tests.repo_params import PARAMS_FILE, write_params

TOKEN = "a-review-token-for-the-tests-only-0123456789"

# Three clips, most suspicious first; the audio paths are relative to the params' directory.
ROWS = [
    {
        "path": "clip_a.mp3",
        "split": "train",
        "sentence": "Hej jag heter Anna",
        "transcript": "Hej jag heter Hanna",
        "suspicion": 0.91,
    },
    {
        "path": "clip_b.mp3",
        "split": "dev",
        "sentence": "Det regnar i Stockholm",
        "transcript": "Det snöar i Göteborg",
        "suspicion": 0.75,
    },
    {
        "path": "clip_c.mp3",
        "split": "train",
        "sentence": "God morgon",
        "transcript": "God morgon",
        "suspicion": 0.10,
    },
]


def write_queue(root: Path, rows: list[dict] | None = None, audio: bool = True) -> Path:
    """A review queue as the rank stage writes it (every column), with small WAV clips."""
    rows = ROWS if rows is None else rows
    records = []
    for rank, row in enumerate(rows, start=1):
        audio_file = Path("clips") / (Path(row["path"]).stem + ".wav")
        if audio:
            (root / "clips").mkdir(parents=True, exist_ok=True)
            sf.write(root / audio_file, tone(1.0, 16_000, seed=rank), 16_000, subtype="PCM_16")
        records.append(
            {
                "rank": rank,
                "path": row["path"],
                "split": row["split"],
                "audio_file": str(audio_file),
                "sentence": row["sentence"],
                "transcript": row["transcript"],
                "zero_shot_transcript": row["transcript"].lower(),
                "suspicion": row["suspicion"],
                "ft_loss": 2.5 * row["suspicion"],
                "ft_loss_max": 5.0 * row["suspicion"],
                "ft_wer": row["suspicion"] / 2,
                "ft_cer": row["suspicion"] / 4,
                "zs_wer": row["suspicion"] / 3,
                "duration": 1.0,
                "chars_per_second": 18.0,
                "silence_ratio": 0.1,
                "clipping_ratio": 0.0,
                "score_ft_loss": row["suspicion"],
                "score_ft_wer": row["suspicion"] / 2,
                # Cross-fitting's suspect word, when a row names one.
                "suspect_word": row.get("suspect_word", ""),
                "suspect_word_index": row.get("suspect_word_index", -1),
            }
        )
    path = root / "reports" / "review_queue.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = [*review.REQUIRED_COLUMNS, *review.COMPONENTS, "score_ft_loss", "score_ft_wer"]
    if any("suspect_word" in row for row in rows):
        columns += ["suspect_word", "suspect_word_index"]
    pd.DataFrame.from_records(records, columns=columns).to_parquet(path, index=False)
    return path


def write_review_params(root: Path, enabled: bool = True) -> Path:
    """The repo's params (``model``, ``app`` and ``review``) with ``review.page`` on (unless
    ``enabled`` is false) and pointing into ``root`` (relative paths)."""
    changes = {
        "review.page.enabled": enabled,
        "review.page.queue": "reports/review_queue.parquet",
        "review.page.decisions": "data/review/decisions.tsv",
    }
    return write_params(root, changes, base=PARAMS_FILE, only=("model", "decode", "app", "review"))


def validate_with_decisions(decisions: Path, repo: Path, monkeypatch) -> tuple:
    """Run the validate stage (dvc.yaml's command) on manifests holding the review clips, with
    ``decisions`` as data/review/decisions.tsv: (validated train, quarantine)."""
    from stages import validate as stage
    from swedish_transcriber.stage import main
    from tests.dvc_stages import stage_args

    clips = ["clip_a.mp3", "clip_b.mp3", "clip_c.mp3"]
    splits = {s: manifest([manifest_row(s, n) for n in range(3)]) for s in ("dev", "test")}
    splits["train"] = manifest([manifest_row("train", n, path=p) for n, p in enumerate(clips)])
    repo.mkdir()
    validate_repo(repo, splits)
    (repo / "data" / "review").mkdir(parents=True)
    shutil.copy2(decisions, repo / "data" / "review" / "decisions.tsv")
    monkeypatch.chdir(repo)
    main(stage.run, stage_args("validate"))
    train = pd.read_parquet(repo / "data" / "validated" / "train.parquet").set_index("path")
    return train, pd.read_parquet(repo / "data" / "quarantine" / "validate" / "quarantine.parquet")
