"""benchmarks/studies/queue_weights.py: a finished run's queue ranked again with other weights."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.studies.queue_weights import WEIGHTINGS, score_run
from swedish_transcriber.review.params import COMPONENTS
from tests.repo_params import REPO


def noisy_run(repo: Path, seed: int = 0) -> Path:
    """A run's two files: 40 train and 10 dev clips; train clips 0-3 planted, two kinds.

    The planted clips have the highest ``oos_word`` and the lowest ``ft_loss`` (a model that
    memorised them), so the two components rank them at opposite ends.
    """
    rng = np.random.default_rng(seed)
    paths = [f"clip{i:02d}.mp3" for i in range(50)]
    queue = pd.DataFrame(
        {
            "rank": np.arange(1, 51),
            "path": paths,
            "split": ["train"] * 40 + ["dev"] * 10,
            "suspicion": np.linspace(1, 0, 50),
            **{c: rng.uniform(1.0, 2.0, 50) for c in COMPONENTS},
        }
    )
    queue.loc[:3, "oos_word"] = 10.0
    queue.loc[:3, "ft_loss"] = 0.0
    (repo / "reports").mkdir(parents=True)
    (repo / "data/label_noise").mkdir(parents=True)
    queue.to_parquet(repo / "reports/review_queue.parquet", index=False)
    pd.DataFrame(
        {"path": paths[:4], "kind": ["swap", "swap", "substitute_word", "substitute_word"]}
    ).to_csv(repo / "data/label_noise/planted.tsv", sep="\t", index=False)
    return repo


def test_the_queue_is_ranked_again_with_the_weights_given(tmp_path):
    repo = noisy_run(tmp_path / "run")
    # Top 10 % of 40 train clips = 4: exactly the planted ones by oos_word, none by ft_loss.
    assert score_run(repo, {"oos_word": 1.0}, 0.10) == {
        "overall": 1.0,
        "substitute_word": 1.0,
        "swap": 1.0,
    }
    assert score_run(repo, {"ft_loss": 1.0}, 0.10)["overall"] == 0.0
    half = score_run(repo, {"oos_word": 1.0}, 0.05)  # 2 clips: the planted ones by path
    assert half == {"overall": 0.5, "substitute_word": 0.0, "swap": 1.0}


def test_the_study_averages_runs_and_chooses_by_its_rule(tmp_path):
    runs = [noisy_run(tmp_path / f"run{seed}", seed) for seed in (1, 2)]
    out = tmp_path / "weights.json"
    subprocess.run(
        [sys.executable, "benchmarks/studies/queue_weights.py", *map(str, runs), "--out", str(out)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["runs"][str(runs[0])]["planted"] == 4
    assert report["table"]["oos_word alone"]["overall"] == 1.0
    assert report["table"]["ft_loss alone"]["overall"] == 0.0
    # The chosen weighting is a mix (never a component alone), the best of the mixes.
    mixes = {n: t for n, t in report["table"].items() if not n.endswith(" alone")}
    assert report["chosen"] in mixes and set(mixes) == {
        n for n in WEIGHTINGS if not n.endswith(" alone")
    }
    best = max(t["overall"] for t in mixes.values())
    assert mixes[report["chosen"]]["overall"] == best
