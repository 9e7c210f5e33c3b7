"""The page's measured WER per model and its default model (``serving/measured.py``)."""

from __future__ import annotations

import json
from pathlib import Path

from swedish_transcriber.data.testsets import TestSet as SetSpec  # not a pytest class
from swedish_transcriber.serving.measured import (
    EVAL_FILE,
    NOT_MEASURED,
    Measurements,
    Score,
    ScoredParams,
    default_index,
    load_measurements,
    read_eval,
    scores_by_dir,
)
from tests.messages import assert_names
from tests.repo_params import repo_params, write_params

SYNTHETIC = SetSpec("features", "data/features", "test", "synthetic")
REAL = SetSpec("pairs", "../shared/eval/real-sv", "", "real")
SCORED = ScoredParams(
    sets={"demo_test": SYNTHETIC, "real_sv": REAL},
    models={"zero_shot": "models/base", "finetuned": "models/finetuned", "ct2": "models/ct2"},
)


def entry(wer_norm: float) -> dict:
    return {"wer": wer_norm + 0.01, "cer": 0.1, "wer_norm": wer_norm, "cer_norm": 0.09}


def metrics(real: dict | None = None) -> dict:
    out = {
        "demo_test": {
            "clips": 94,
            "zero_shot": entry(1.13),
            "finetuned": entry(0.55),
            "ct2": entry(0.56),
        }
    }
    if real is not None:
        out["real_sv"] = {"clips": 12, **{k: entry(v) for k, v in real.items()}}
    return out


def write(root: Path, data, evaluate: dict | None = None) -> Path:
    """A params file under ``root`` (with ``evaluate`` when given) and metrics/eval.json."""
    content = {"app": {}} if evaluate is None else {"evaluate": evaluate}
    params = write_params(root, base=content)
    if data is not None:
        (root / "metrics").mkdir(exist_ok=True)
        text = data if isinstance(data, str) else json.dumps(data)
        (root / EVAL_FILE).write_text(text, encoding="utf-8")
    return params


EVALUATE = {
    "sets": {
        "demo_test": {
            "format": "features",
            "path": "data/features",
            "split": "test",
            "speech": "synthetic",
        },
        "real_sv": {"format": "pairs", "path": "elsewhere", "split": "", "speech": "real"},
    },
    "models": {"zero_shot": "models/base", "finetuned": "models/finetuned", "ct2": "models/ct2"},
    "decode": {"batch_size": 8},  # other keys of the section are not the page's concern
}


def test_scores_are_matched_by_resolved_directory(tmp_path):
    (tmp_path / "models" / "ct2").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "models" / "ct2")
    by_dir, skipped = scores_by_dir(metrics({"ct2": 0.3}), SCORED, tmp_path)
    ct2 = (tmp_path / "link").resolve()  # the page's path for "link": the same directory
    assert by_dir[ct2] == (
        Score("demo_test", "synthetic", 94, 0.56),
        Score("real_sv", "real", 12, 0.3),
    )
    assert by_dir[(tmp_path / "models/./base").resolve()] == (
        Score("demo_test", "synthetic", 94, 1.13),
    )
    assert skipped == []
    m = Measurements(by_dir, ("demo_test", "real_sv"), ())
    assert m.caption(ct2) == (
        "WER 56.0% on demo_test (synthetic speech, 94 clips); "
        "WER 30.0% on real_sv (real speech, 12 clips)"
    )
    assert m.caption(tmp_path / "models" / "other") == NOT_MEASURED
    assert m.caption(None) == NOT_MEASURED


def test_odd_entries_are_skipped_and_named(tmp_path):
    data = metrics()
    data["demo_test"]["finetuned"] = {"wer": 0.5}  # no wer_norm
    data["demo_test"]["ct2"] = {"wer_norm": float("nan")}
    data["demo_test"]["unknown_model"] = entry(0.1)  # not in evaluate.models: not shown
    data["demo_test"]["clips"] = "many"
    data["relative_wer_reduction"] = 0.5  # a figure beside the sets
    data["gone_set"] = {"zero_shot": entry(0.9)}  # a set params no longer list
    by_dir, skipped = scores_by_dir(data, SCORED, tmp_path)
    assert skipped == ["demo_test/finetuned", "demo_test/ct2"]
    base = (tmp_path / "models/base").resolve()
    assert by_dir[base] == (
        Score("demo_test", "synthetic", None, 1.13),
        Score("gone_set", None, None, 0.9),
    )
    assert "speech of unknown kind" in by_dir[base][1].describe()


def test_read_eval_missing_malformed_and_not_an_object(tmp_path):
    assert read_eval(tmp_path / "nothing.json") == ({}, "")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    data, warning = read_eval(bad)
    assert data == {}
    assert_names(warning, EVAL_FILE, "JSONDecodeError")
    bad.write_text("[1, 2]", encoding="utf-8")
    data, warning = read_eval(bad)
    assert data == {}
    assert_names(warning, EVAL_FILE, "JSON object")
    bad.write_bytes(b"\xff\xfe")
    assert "UnicodeDecodeError" in read_eval(bad)[1]


def test_load_measurements_from_a_params_file(tmp_path):
    # No evaluate section (a page-only params file): nothing measured, nothing to warn about.
    assert load_measurements(write(tmp_path, metrics()), tmp_path) == Measurements({}, (), ())
    # No metrics file yet: nothing measured.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    assert load_measurements(write(fresh, None, EVALUATE), fresh) == Measurements({}, (), ())
    params = write(tmp_path, metrics({"finetuned": 0.4}), EVALUATE)
    m = load_measurements(params, tmp_path)
    assert m.set_order == ("demo_test", "real_sv") and m.warnings == ()
    assert m.of((tmp_path / "models/finetuned").resolve())[1].wer_norm == 0.4
    # Malformed metrics: a warning, no scores, no exception.
    params = write(tmp_path, "{", EVALUATE)
    m = load_measurements(params, tmp_path)
    assert m.by_dir == {}
    assert_names(m.warnings[0], EVAL_FILE)
    # A broken evaluate section: a warning too.
    params = write(tmp_path, metrics(), {**EVALUATE, "sets": {"x": {"format": "tape"}}})
    warning = load_measurements(params, tmp_path).warnings[0]
    assert_names(warning, params, "evaluate.sets.x", "'path'")  # the file, the key it lacks


def test_the_repos_params_read(tmp_path):
    from tests.repo_params import PARAMS_FILE

    scored = repo_params("evaluate", ScoredParams, subset=True)
    assert scored.models["ct2"] == "models/ct2" and scored.sets
    assert isinstance(load_measurements(PARAMS_FILE, tmp_path), Measurements)


def test_default_is_the_best_on_real_speech_else_the_export(tmp_path):
    paths = [(tmp_path / p).resolve() for p in ("models/ct2", "models/finetuned", "models/base")]
    choose = lambda data: default_index(  # noqa: E731
        paths, Measurements(scores_by_dir(data, SCORED, tmp_path)[0], tuple(data), ()), tmp_path
    )
    # Only synthetic speech scored: the fine-tuned export, not the best synthetic score.
    assert choose(metrics()) == 0
    assert default_index(paths[1:], Measurements({}, (), ()), tmp_path) == 0  # no export: first
    # Real speech scored: the lowest WER there, whatever the synthetic scores say.
    assert choose(metrics({"zero_shot": 0.35, "finetuned": 0.6, "ct2": 0.61})) == 2
    assert choose(metrics({"finetuned": 0.3, "ct2": 0.31})) == 1
    # Ties go to the page's order.
    assert choose(metrics({"finetuned": 0.3, "ct2": 0.3})) == 0
    # A real set that scored none of the page's models does not count.
    assert choose(metrics({"some_other_model": 0.1})) == 0
    assert (
        None not in paths and default_index([None, *paths], Measurements({}, (), ()), tmp_path) == 1
    )


def test_the_caption_shows_the_wer_interval(tmp_path):
    data = {
        "demo_test": {
            "clips": 94,
            "ct2": {"wer_norm": 0.805398, "wer_norm_low": 0.75, "wer_norm_high": 0.861},
            "finetuned": {"wer_norm": 0.808239, "wer_norm_low": "?", "wer_norm_high": 0.9},
            "differences": {"ct2-finetuned": {"wer_norm": -0.003, "low": -0.02, "high": 0.01}},
        }
    }
    by_dir, skipped = scores_by_dir(data, SCORED, tmp_path)
    m = Measurements(by_dir, ("demo_test",), ())
    ct2 = (tmp_path / "models/ct2").resolve()
    assert m.caption(ct2) == "WER 80.5% (75.0%–86.1%) on demo_test (synthetic speech, 94 clips)"
    # An entry without a usable interval is shown without one (an eval.json from before them).
    finetuned = (tmp_path / "models/finetuned").resolve()
    assert m.caption(finetuned) == "WER 80.8% on demo_test (synthetic speech, 94 clips)"
    assert skipped == []
