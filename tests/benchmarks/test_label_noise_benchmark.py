"""The label-noise benchmark's accounting (benchmarks/label_noise.py) on a hand-made run
folder: which planted clips the queue's top holds, overall, per kind and per component, and
which validate had already quarantined; and its params edits."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from benchmarks import label_noise
from tests.repo_params import write_params

TRAIN = [f"c{i}.mp3" for i in range(20)]


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A noisy run's outputs: 20 train clips and 2 dev clips ranked; 4 planted, 1 quarantined."""
    (tmp_path / "data/label_noise").mkdir(parents=True)
    (tmp_path / "data/quarantine/validate").mkdir(parents=True)
    (tmp_path / "reports").mkdir()
    planted = pd.DataFrame(
        {
            "path": ["c0.mp3", "c5.mp3", "c19.mp3", "q.mp3"],
            "kind": ["swap", "drop_words", "truncate", "truncate"],
            "spoken": ["a b c"] * 4,
            "label": ["x y z", "a c", "a", "a"],
        }
    )
    planted.to_csv(tmp_path / "data/label_noise/planted.tsv", sep="\t", index=False)
    pd.DataFrame({"path": ["q.mp3"], "reason": ["chars per second"]}).to_parquet(
        tmp_path / "data/quarantine/validate/quarantine.parquet"
    )
    order = ["dev0.mp3", "c0.mp3", "c1.mp3", "dev1.mp3", "c5.mp3", *TRAIN[2:5], *TRAIN[6:]]
    queue = pd.DataFrame(
        {
            "rank": range(1, len(order) + 1),
            "path": order,
            "split": ["dev" if p.startswith("dev") else "train" for p in order],
            "suspicion": [1 - i / 100 for i in range(len(order))],
            # Odd reading speeds: c19 (planted) and c1 (not); loss points at nothing in particular.
            "chars_per_second": [{"c19.mp3": 30.0, "c1.mp3": 2.0}.get(p, 10.0) for p in order],
            "ft_loss": [float(i % 3) for i in range(len(order))],
        }
    )
    queue.to_parquet(tmp_path / "reports/review_queue.parquet")
    return tmp_path


def test_findings_count_the_planted_clips_in_the_top(run_dir):
    out = label_noise.queue_findings(run_dir, 0.10)  # top ceil(0.1 * 20) = 2 train clips
    assert out["planted"] == 4 and out["train_clips_in_queue"] == 20
    assert out["quarantined_by_validate"] == {"count": 1, "by_kind": {"truncate": 1}}
    s = out["suspicion"]  # top: c0, c1; planted in the queue: c0, c5, c19
    assert (s["top"], s["hits"], s["planted_in_queue"]) == (2, 1, 3)
    assert s["recall"] == pytest.approx(1 / 3, abs=1e-4) and s["precision"] == 0.5
    assert out["by_kind"]["swap"]["recall"] == 1.0 and out["by_kind"]["drop_words"]["hits"] == 0
    assert out["by_component_alone"]["chars_per_second"]["hits"] == 1  # c19, not c1
    assert out["planted_queue_ranks"] == [2, 5, 22]


def test_params_edits_refuse_an_unknown_key(tmp_path):
    write_params(tmp_path, base={"corpus": {"label_noise": {"fraction": 0.0}}})
    label_noise.set_params(tmp_path, {"corpus.label_noise.fraction": 0.05})
    saved = yaml.safe_load((tmp_path / "params.yaml").read_text(encoding="utf-8"))
    assert saved["corpus"]["label_noise"]["fraction"] == 0.05
    with pytest.raises(KeyError, match="corpus.label_noise.fractoin"):
        label_noise.set_params(tmp_path, {"corpus.label_noise.fractoin": 0.05})


def test_precision_per_kind_adds_up_and_the_targets_are_per_kind(run_dir):
    planted = pd.read_csv(run_dir / "data/label_noise/planted.tsv", sep="\t")
    planted.loc[planted["path"] == "c5.mp3", "kind"] = "substitute_word"
    planted.to_csv(run_dir / "data/label_noise/planted.tsv", sep="\t", index=False)
    out = label_noise.queue_findings(run_dir, 0.25)  # top 5: c0, c1, c5, c2, c3
    kinds = out["by_kind"]
    assert set(kinds) == {"swap", "substitute_word", "truncate"}
    assert sum(k["precision"] for k in kinds.values()) == pytest.approx(
        out["suspicion"]["precision"], abs=1e-3
    )
    assert kinds["substitute_word"]["recall"] == 1.0 and kinds["truncate"]["recall"] == 0.0
    targets = label_noise.recall_targets(out, 0.25)
    assert targets == {
        "recall in top 0.25 >= 0.85": "MISS",  # 2 of 3
        "substitute_word recall in top 0.25 >= 0.7": "PASS",
    }
    del out["by_kind"]["substitute_word"]
    assert (
        "n/a" in label_noise.recall_targets(out, 0.25)["substitute_word recall in top 0.25 >= 0.7"]
    )
