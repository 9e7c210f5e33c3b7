"""The pull-request report's first table, from a fixture pair of eval.json and clip errors."""

from __future__ import annotations

import json
import re

import pandas as pd

from swedish_transcriber.evaluation.intervals import BootstrapParams
from swedish_transcriber.evaluation.pr_report import MARK, first_table, main
from tests.messages import raises_naming
from tests.repo_params import REPO

PARAMS = BootstrapParams(resamples=9999, seed=1234, confidence=0.95, min_speakers=10)
MODELS = ("zero_shot", "finetuned", "ct2")


def clip_errors(**errors: list[int]) -> pd.DataFrame:
    """Four demo_test clips of 4 words by two speakers, each model's errors per clip."""
    table = pd.DataFrame(
        {
            "set": "demo_test",
            "path": [f"{c}.mp3" for c in "abcd"],
            "client_id": ["s1", "s1", "s2", "s2"],
            "words": 4,
        }
    )
    for model in MODELS:
        table[f"{model}_errors"] = errors[model]
    return table


def eval_json(clips: pd.DataFrame, wider: float = 0.1) -> dict:
    """eval.json's figures for ``clips`` (the interval bounds are arbitrary here)."""
    result = {}
    for model in MODELS:
        wer = clips[f"{model}_errors"].sum() / clips["words"].sum()
        result[model] = {"wer_norm": wer, "wer_norm_low": wer - wider, "wer_norm_high": wer + wider}
    return {"demo_test": {"clips": len(clips), **result, "differences": {}}}


BASE = clip_errors(zero_shot=[2, 3, 2, 1], finetuned=[2, 2, 1, 2], ct2=[1, 2, 2, 1])
# zero_shot: the same model; finetuned: one error fewer on every clip; ct2: one more on one.
HEAD = clip_errors(zero_shot=[2, 3, 2, 1], finetuned=[1, 1, 0, 1], ct2=[1, 3, 2, 1])


def rows(table: str) -> dict[str, list[str]]:
    out = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        out[f"{cells[0]}/{cells[1]}"] = cells[2:]
    return out


def test_first_table_from_a_pair_of_revisions():
    table = first_table(eval_json(HEAD), HEAD, eval_json(BASE), BASE, PARAMS)
    assert table.splitlines()[0] == (
        "| set | model | WER_norm [95 % CI] | base | change [95 % CI, paired] | |"
    )
    got = rows(table)
    assert list(got) == ["demo_test/zero_shot", "demo_test/finetuned", "demo_test/ct2"]
    # The same errors on the same clips: exactly 0, a zero-width interval, no mark.
    assert got["demo_test/zero_shot"] == [
        "0.500 [0.400, 0.600]",
        "0.500",
        "+0.000 [+0.000, +0.000]",
        "",
    ]
    # One error fewer on each 4-word clip: -0.25 in every resample, so the interval excludes 0.
    assert got["demo_test/finetuned"] == [
        "0.188 [0.087, 0.287]",
        "0.438",
        "-0.250 [-0.250, -0.250]",
        MARK,
    ]
    # One more error on one clip: +1/16, but a resample without that clip changes nothing.
    cell, mark = got["demo_test/ct2"][2:]
    low, high = map(float, re.fullmatch(r"\+0\.062 \[(\S+), (\S+)\]", cell).groups())
    assert low == 0.0 and high > 0 and mark == ""


def test_no_base_or_other_clips_are_said_so():
    head = eval_json(HEAD)
    head["real_sv"] = head["demo_test"]
    clips = pd.concat([HEAD, HEAD.assign(set="real_sv")], ignore_index=True)
    got = rows(first_table(head, clips, eval_json(BASE), BASE, PARAMS))
    assert got["real_sv/finetuned"][1:] == ["–", "–", ""]  # the base has no such set
    other = BASE.assign(path=[f"{c}.mp3" for c in "abce"])  # a changed test set
    got = rows(first_table(eval_json(HEAD), HEAD, eval_json(BASE), other, PARAMS))
    assert got["demo_test/finetuned"][2] == "-0.250 (other clips: unpaired)"
    got = rows(first_table(eval_json(HEAD), HEAD, eval_json(BASE), None, PARAMS))
    assert got["demo_test/finetuned"][2] == "-0.250 (no per-clip errors in base: unpaired)"
    got = rows(first_table(eval_json(HEAD), HEAD, None, None, PARAMS))
    assert got["demo_test/ct2"][1:] == ["–", "–", ""]


def test_command_line_reads_the_files_and_params(tmp_path, monkeypatch, capsys):
    for name, clips in (("head", HEAD), ("base", BASE)):
        (tmp_path / f"{name}.json").write_text(json.dumps(eval_json(clips)), encoding="utf-8")
        clips.to_csv(tmp_path / f"{name}.csv", index=False)
    (tmp_path / "empty.json").write_text("", encoding="utf-8")
    monkeypatch.chdir(REPO)  # the repo's params.yaml: evaluate.bootstrap
    files = [str(tmp_path / f) for f in ("head.json", "head.csv", "base.json", "base.csv")]
    main(files)
    assert "-0.250 [-0.250, -0.250]" in capsys.readouterr().out
    main([*files[:2], str(tmp_path / "empty.json"), str(tmp_path / "none.csv")])
    assert "| demo_test | finetuned | 0.188 [0.087, 0.287] | – | – | |" in capsys.readouterr().out
    with raises_naming(SystemExit, tmp_path / "none.json", "dvc repro evaluate"):
        main([str(tmp_path / "none.json"), str(tmp_path / "none.csv")])
