"""The review loop's decisions file and its application to manifests.

Faults must name the file and the line and change nothing; concurrent writers (threads and
processes, as the page's server has) must lose no decision.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import re
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from swedish_transcriber.data.manifest import conform_with_release
from swedish_transcriber.review.apply import apply_decisions
from swedish_transcriber.review.auto import AUTO_TIME, auto_exclude
from swedish_transcriber.review.decisions import (
    HEADER,
    MAX_TEXT_CHARS,
    Decision,
    DecisionsError,
    lock_file,
    read_decisions,
    record_decision,
    write_decisions,
)
from tests.manifests import manifest_row

T = "2026-11-28T15:30:00Z"
HEAD = "\t".join(HEADER) + "\n"


def write(path: Path, *rows: str, header: str = HEAD) -> Path:
    path.write_text(header + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


# --- Decision -----------------------------------------------------------------------------


def test_decision_normalises_text_and_validates_copies():
    d = Decision("a.mp3", "fix", '  Hon sa "hej"\tigen\n', " stavfel\n", T)
    assert d.sentence == 'Hon sa "hej" igen' and d.reason == "stavfel"
    with pytest.raises(DecisionsError, match="a fix needs the corrected sentence"):
        Decision("a.mp3", "fix", "  ", "", T)
    with pytest.raises(DecisionsError, match="a keep decision carries no sentence"):
        Decision("a.mp3", "keep", "text", "", T)
    with pytest.raises(DecisionsError, match="an exclude decision carries no sentence"):
        dataclasses.replace(d, action="exclude")  # a derived copy is validated too
    with pytest.raises(DecisionsError, match="not UTC"):
        Decision("a.mp3", "keep", time="2026-11-28T15:30:00+01:00")
    with pytest.raises(DecisionsError, match="not ISO-8601"):
        Decision("a.mp3", "keep", time="yesterday")
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.action = "keep"  # type: ignore[misc]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", Decision("a.mp3", "keep").time)


# --- reading: every fault names the file and the line ----------------------------------------

GOOD = f"b.mp3\tkeep\t\t\t{T}"


@pytest.mark.parametrize(
    ("rows", "header", "expected"),
    [
        ([GOOD, f"c.mp3\tdelete\t\tbad\t{T}"], HEAD, r"line 3: unknown action 'delete'"),
        (
            [f"a.mp3\tkeep\t\t\t{T}", GOOD, f"a.mp3\texclude\t\tnoise\t{T}"],
            HEAD,
            r"line 4: clip 'a.mp3' is decided twice \(lines 2 and 4\)",
        ),
        ([GOOD], "path\taction\tsentence\treason\n", r"line 1: expected the header"),
        ([GOOD], "", r"line 1: expected the header .* found 'b.mp3"),
        ([GOOD, f"c.mp3\tkeep\t\t{T}"], HEAD, r"line 3: expected 5 tab-separated fields.*4"),
        ([GOOD, "", GOOD.replace("b.mp3", "c.mp3")], HEAD, r"line 3: expected 5 .* found 0"),
        ([f"\tkeep\t\t\t{T}"], HEAD, r"line 2: empty clip path"),
        ([GOOD, f"c.mp3\tfix\t \tstavfel\t{T}"], HEAD, r"line 3: a fix needs the corrected"),
        ([f"c.mp3\texclude\tHej\t\t{T}"], HEAD, r"line 2: an exclude decision carries no"),
        (["c.mp3\tkeep\t\t\t15:30"], HEAD, r"line 2: time '15:30' is not ISO-8601"),
        ([GOOD, f"c.mp3\tkeep\t\t\r\t{T}"], HEAD, r"line 3: the reason holds a control .*U\+000D"),
    ],
    ids=[
        "unknown-action",
        "duplicate",
        "wrong-header",
        "no-header",
        "field-count",
        "blank-line",
        "empty-path",
        "fix-without-sentence",
        "exclude-with-sentence",
        "bad-time",
        "carriage-return",
    ],
)
def test_bad_file_names_file_and_line(tmp_path, rows, header, expected):
    path = write(tmp_path / "decisions.tsv", *rows, header=header)
    with pytest.raises(DecisionsError, match=rf"{re.escape(str(path))}: {expected}"):
        read_decisions(path)


# Issue 19: one long reason, NUL bytes or ANSI escapes must never reach (or break) the file.
HOSTILE_TEXT = [
    ("NUL", "x\x00y", "U+0000"),
    ("ANSI escape", "\x1b[31mred\x1b[0m", "U+001B"),
    ("DEL", "a\x7fb", "U+007F"),
    ("C1", "a\x9bb", "U+009B"),
    ("bidi override", "abc\u202edef", "U+202E"),
]


@pytest.mark.parametrize(("label", "text", "code"), HOSTILE_TEXT, ids=[h[0] for h in HOSTILE_TEXT])
def test_control_characters_are_refused_by_the_writer_and_the_reader(tmp_path, label, text, code):
    with pytest.raises(DecisionsError, match=rf"reason holds .*{re.escape(code)}"):
        Decision("a.mp3", "exclude", reason=text, time=T)
    with pytest.raises(DecisionsError, match=rf"sentence holds .*{re.escape(code)}"):
        Decision("a.mp3", "fix", sentence=f"Hej {text}", time=T)
    path = write(tmp_path / "d.tsv", GOOD, f"c.mp3\texclude\t\t{text}\t{T}")
    with pytest.raises(DecisionsError, match=rf"line 3: the reason holds .*{re.escape(code)}"):
        read_decisions(path)


def test_a_reason_over_the_cap_is_refused_and_the_file_stays_readable(tmp_path):
    """A 140,000-character reason once passed csv's 131,072 field limit: the file was lost."""
    path = tmp_path / "d.tsv"
    record_decision(path, Decision("b.mp3", "keep", time=T))
    with pytest.raises(DecisionsError, match=r"reason is 140000 characters long; at most 2000"):
        record_decision(path, Decision("a.mp3", "exclude", reason="x" * 140_000, time=T))
    assert [d.path for d in read_decisions(path)] == ["b.mp3"]
    # The same row written by hand is a line error, not csv's field limit.
    write(path, GOOD, f"c.mp3\texclude\t\t{'x' * 140_000}\t{T}")
    with pytest.raises(DecisionsError, match=r"line 3: the reason is 140000 characters long"):
        read_decisions(path)


def test_the_longest_texts_round_trip_and_the_reader_takes_only_what_is_written(tmp_path):
    longest = Decision("a.mp3", "fix", "å" * MAX_TEXT_CHARS, "<b>" + "r" * (MAX_TEXT_CHARS - 3), T)
    path = tmp_path / "d.tsv"
    write_decisions(path, [longest])
    assert read_decisions(path) == [longest]
    with pytest.raises(DecisionsError, match="sentence is 2001 characters long"):
        dataclasses.replace(longest, sentence="å" * (MAX_TEXT_CHARS + 1))
    # Text the writer never writes: doubled or surrounding spaces are a hand edit.
    write(path, f"c.mp3\texclude\t\t two  spaces\t{T}")
    with pytest.raises(DecisionsError, match=r"line 2: the reason ' two  spaces' has surrounding"):
        read_decisions(path)


def test_every_faulty_line_is_listed_at_once(tmp_path):
    path = write(tmp_path / "d.tsv", f"a.mp3\tnope\t\t\t{T}", GOOD, f"c.mp3\tfix\t\t\t{T}", "x\ty")
    with pytest.raises(DecisionsError) as err:
        read_decisions(path)
    lines = str(err.value).splitlines()
    assert [re.search(r"line (\d+)", m).group(1) for m in lines] == ["2", "4", "5"]
    assert all(m.startswith(f"{path}: ") for m in lines)


def test_not_utf8_names_the_line_of_the_bad_byte(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_bytes(
        (HEAD + GOOD + "\n").encode() + f"c.mp3\tfix\tV\xe4der\t\t{T}\n".encode("latin-1")
    )
    with pytest.raises(
        DecisionsError, match=rf"{re.escape(str(path))}: line 3, byte 12: not valid"
    ):
        read_decisions(path)


def test_missing_file_is_no_decisions_and_crlf_and_quotes_read(tmp_path):
    assert read_decisions(tmp_path / "absent.tsv") == []
    path = tmp_path / "d.tsv"
    text = HEAD + GOOD + "\n" + f'c.mp3\tfix\tHon sa "hej\t"citat\t{T}\n'
    path.write_bytes(text.replace("\n", "\r\n").encode())
    decisions = read_decisions(path)
    assert [d.line for d in decisions] == [2, 3]
    assert decisions[1].sentence == 'Hon sa "hej' and decisions[1].reason == '"citat'


# --- recording ----------------------------------------------------------------------------


def test_record_round_trip_replaces_and_sorts(tmp_path):
    path = tmp_path / "review" / "decisions.tsv"
    fix = Decision("b.mp3", "fix", 'Hon sa "hej"', "stavfel", T)
    assert record_decision(path, fix) is None
    record_decision(path, Decision("c.mp3", "exclude", "", "brus", T))
    record_decision(path, Decision("a.mp3", "keep", "", "", T))
    replaced = record_decision(path, Decision("c.mp3", "keep", "", "ändrat mig", T))
    assert replaced == Decision("c.mp3", "exclude", "", "brus", T)
    assert path.read_text(encoding="utf-8") == (
        HEAD
        + f"a.mp3\tkeep\t\t\t{T}\n"
        + f'b.mp3\tfix\tHon sa "hej"\tstavfel\t{T}\n'
        + f"c.mp3\tkeep\t\tändrat mig\t{T}\n"
    )
    back = read_decisions(path)
    assert back == [
        Decision("a.mp3", "keep", "", "", T),
        fix,
        Decision("c.mp3", "keep", "", "ändrat mig", T),
    ]
    assert lock_file(path).name == "decisions.tsv.lock" and lock_file(path).exists()
    assert sorted(p.name for p in path.parent.iterdir()) == ["decisions.tsv", "decisions.tsv.lock"]


def test_record_leaves_a_broken_file_alone(tmp_path):
    path = write(tmp_path / "d.tsv", f"a.mp3\tmaybe\t\t\t{T}")
    before = path.read_bytes()
    with pytest.raises(DecisionsError, match="line 2: unknown action"):
        record_decision(path, Decision("b.mp3", "keep", "", "", T))
    assert path.read_bytes() == before


def _record_many(path: str, prefix: str, count: int) -> None:
    for i in range(count):
        action = ("keep", "exclude", "fix")[i % 3]
        sentence = f"mening {prefix} {i}" if action == "fix" else ""
        record_decision(path, Decision(f"{prefix}_{i:03d}.mp3", action, sentence, prefix, T))
        record_decision(path, Decision("shared.mp3", "exclude", "", f"{prefix} {i}", T))


def _threads(path: Path, prefixes: list[str], count: int) -> list[threading.Thread]:
    threads = [threading.Thread(target=_record_many, args=(str(path), p, count)) for p in prefixes]
    for t in threads:
        t.start()
    return threads


def test_concurrent_processes_and_threads_lose_nothing(tmp_path):
    """Three processes and three threads record 30 clips each (plus one clip all of them
    decide, over and over) at the same time: every clip is in the file once, and it parses."""
    path = tmp_path / "decisions.tsv"
    count = 30
    context = multiprocessing.get_context("fork")
    processes = [
        context.Process(target=_record_many, args=(str(path), f"p{n}", count)) for n in range(3)
    ]
    for p in processes:
        p.start()
    threads = _threads(path, [f"t{n}" for n in range(3)], count)
    for t in threads:
        t.join()
    for p in processes:
        p.join(timeout=60)
        assert p.exitcode == 0
    decisions = read_decisions(path)
    expected = {f"{w}{n}_{i:03d}.mp3" for w in "pt" for n in range(3) for i in range(count)}
    assert {d.path for d in decisions} == expected | {"shared.mp3"}
    assert len(decisions) == 6 * count + 1
    fixes = {d.path: d.sentence for d in decisions if d.action == "fix"}
    assert fixes["p2_002.mp3"] == "mening p2 2"
    assert [d.path for d in decisions] == sorted(d.path for d in decisions)
    shared = next(d for d in decisions if d.path == "shared.mp3")
    assert re.fullmatch(r"[pt]\d \d+", shared.reason)
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]  # no temporaries left


# --- applying to manifests ------------------------------------------------------------------


def row(split: str, n: int, sentence: str = "Hej, hur mår du?") -> dict[str, Any]:
    """A manifest row named ``<split>_<n>.mp3``, a speaker per row."""
    return manifest_row(
        split,
        n,
        path=f"{split}_{n}.mp3",
        audio_file=f"data/raw/clips/{split}_{n}.mp3",
        sentence=sentence,
        client_id=f"speaker-{n}",
        age="",
        tsv_file=f"data/raw/{split}.tsv",
    )


@pytest.fixture
def manifests() -> dict[str, pd.DataFrame]:
    return {
        split: conform_with_release(pd.DataFrame([row(split, n) for n in range(4)]))
        for split in ("train", "dev", "test")
    }


def swedish_only(text: str) -> str | None:
    bad = sorted(set(re.findall(r"[^A-Za-zÅÄÖåäö ,.?!]", text)))
    return f"characters outside validate.allowed_characters: {bad}" if bad else None


def test_apply_exclude_fix_keep(tmp_path, manifests):
    originals = {s: df.copy() for s, df in manifests.items()}
    path = write(
        tmp_path / "decisions.tsv",
        f"dev_0.mp3\tkeep\t\t\t{T}",
        f"train_1.mp3\texclude\t\tbakgrundsmusik\t{T}",
        f"train_2.mp3\tfix\tHej, hur mår ni?\tfel ord\t{T}",
        f"train_3.mp3\texclude\t\t\t{T}",
    )
    decisions = read_decisions(path)
    out, quarantine, report = apply_decisions(manifests, decisions, path, swedish_only)
    for split, df in manifests.items():  # the inputs are not modified
        pd.testing.assert_frame_equal(df, originals[split])
    train = out["train"]
    assert list(train["path"]) == ["train_0.mp3", "train_2.mp3"]
    assert list(train["sentence"]) == ["Hej, hur mår du?", "Hej, hur mår ni?"]
    assert list(train["original_sentence"]) == ["", "Hej, hur mår du?"]
    assert train["sentence"].dtype == "string" and train["original_sentence"].dtype == "string"
    for split in ("dev", "test"):  # keep (and no decision) change nothing but the new column
        pd.testing.assert_frame_equal(
            out[split].drop(columns="original_sentence"), manifests[split]
        )
        assert (out[split]["original_sentence"] == "").all()
    assert list(quarantine["path"]) == ["train_1.mp3", "train_3.mp3"]
    assert list(quarantine["stage"]) == ["curate", "curate"]
    assert list(quarantine["reason"]) == [
        "excluded by review: bakgrundsmusik",
        "excluded by review",
    ]
    assert list(quarantine["tsv_row"]) == [3, 5]  # the release line stays with the row
    assert report["decisions"] == 4
    assert (report["kept"], report["excluded"], report["fixed"]) == (1, 2, 1)
    assert report["splits"]["train"] == {
        "rows_in": 4,
        "kept": 0,
        "excluded": 2,
        "fixed": 1,
        "rows_out": 2,
    }
    assert report["splits"]["dev"]["kept"] == 1 and report["splits"]["dev"]["rows_out"] == 4


def test_apply_without_decisions_adds_only_the_column(tmp_path, manifests):
    out, quarantine, report = apply_decisions(manifests, [], tmp_path / "d.tsv", swedish_only)
    assert len(quarantine) == 0 and {"stage", "reason", "path"} <= set(quarantine.columns)
    assert all(list(out[s].columns)[-1] == "original_sentence" for s in out)
    assert report["excluded"] == 0 and report["splits"]["test"]["rows_out"] == 4


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (
            [f"gone.mp3\texclude\t\tx\t{T}"],
            r"line 3: clip 'gone.mp3' \(exclude\) is in no manifest .*no longer in the release",
        ),
        (
            [f"train_2.mp3\tfix\tHej #2\t\t{T}"],
            r"line 3: the fixed sentence 'Hej #2' of clip 'train_2.mp3' fails validation: "
            r"characters outside validate.allowed_characters: \['#', '2'\]",
        ),
    ],
    ids=["unknown-clip", "fix-fails-validation"],
)
def test_apply_faults_name_file_and_line_and_apply_nothing(tmp_path, manifests, rows, expected):
    path = write(tmp_path / "decisions.tsv", f"train_1.mp3\texclude\t\tbrus\t{T}", *rows)
    before = {s: df.copy() for s, df in manifests.items()}
    with pytest.raises(DecisionsError, match=rf"{re.escape(str(path))}: {expected}"):
        apply_decisions(manifests, read_decisions(path), path, swedish_only)
    for split, df in manifests.items():
        pd.testing.assert_frame_equal(df, before[split])


def test_apply_rejects_a_clip_decided_twice_and_a_second_application(tmp_path, manifests):
    human = read_decisions(write(tmp_path / "d.tsv", f"train_0.mp3\tkeep\t\t\t{T}"))
    auto = [Decision("train_0.mp3", "exclude", "", "auto: top 1 of the review queue", T)]
    with pytest.raises(DecisionsError, match=r"decided twice \(line 2 and automatic decision"):
        apply_decisions(manifests, human + auto, tmp_path / "d.tsv", swedish_only)
    out, _, _ = apply_decisions(manifests, human, tmp_path / "d.tsv", swedish_only)
    with pytest.raises(ValueError, match="already has a 'original_sentence' column"):
        apply_decisions(out, human, tmp_path / "d.tsv", swedish_only)


# --- automatic exclusion --------------------------------------------------------------------


def queue(scores: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"path": [f"c{i}.mp3" for i in range(len(scores))], "suspicion": scores})


def test_auto_exclude_top_fraction_human_wins(tmp_path, manifests):
    q = queue([0.9, 0.8, 0.8, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.0])
    top = auto_exclude(q, 0.25)  # ceil(2.5) = 3
    assert [d.path for d in top] == ["c0.mp3", "c1.mp3", "c2.mp3"]
    assert top[0] == Decision(
        "c0.mp3", "exclude", "", "auto: top 0.25 of the review queue (suspicion 0.9)", AUTO_TIME
    )
    assert auto_exclude(q, 0.25) == top  # deterministic
    human = [Decision("c1.mp3", "keep", "", "", T)]
    assert [d.path for d in auto_exclude(q, 0.25, human)] == ["c0.mp3", "c2.mp3"]
    assert len(auto_exclude(queue([1.0] * 30), 0.1)) == 3  # not 4 (0.1 * 30 in floats)
    assert auto_exclude(q, 0.0) == [] and len(auto_exclude(q, 1.0)) == 10
    assert auto_exclude(queue([]), 0.5) == []


@pytest.mark.parametrize(
    ("q", "fraction", "expected"),
    [
        (queue([0.1, 0.9]), 0.5, r"not sorted by suspicion, descending: row 1"),
        (queue([0.9, 0.1]), 1.5, r"fraction must be in \[0, 1\]"),
        (queue([0.9, float("nan")]), 0.5, r"row 1: suspicion nan"),
        (pd.DataFrame({"path": ["a"]}), 0.5, r"lacks column\(s\) suspicion"),
    ],
    ids=["unsorted", "fraction", "nan", "column"],
)
def test_auto_exclude_rejects_bad_queues(q, fraction, expected):
    with pytest.raises(ValueError, match=expected):
        auto_exclude(q, fraction)
