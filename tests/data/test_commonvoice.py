"""Reading real Common Voice releases: their quirks and their broken files."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swedish_transcriber.data import commonvoice
from swedish_transcriber.data.commonvoice import ReleaseError, read_tsv, take_subset
from tests.messages import assert_names, raises_naming
from tests.releases import HEADER_NEW, HEADER_OLD, write_tsv


def test_new_release_columns_are_normalised(make_release):
    root = make_release(
        {
            "train": [
                {
                    "path": "a",
                    "sentence": 'Han sa "hej" och gick.',
                    "gender": "male_masculine",
                    "accents": "Skånska",
                    "sentence_id": "abc",
                    "variant": "",
                    "sentence_domain": "",
                },
                {"path": "b.mp3", "sentence": "Var ligger  Kiruna?", "gender": "female_feminine"},
                {"path": "c", "gender": "do_not_wish_to_say", "up_votes": "", "down_votes": ""},
            ]
        },
        header=HEADER_NEW,
    )
    table = read_tsv(root / "train.tsv")
    rows = table.rows
    assert list(rows["path"]) == ["a.mp3", "b.mp3", "c.mp3"]
    # No quoting: the double quotes are part of the sentence, not CSV syntax.
    assert rows.loc[0, "sentence"] == 'Han sa "hej" och gick.'
    assert rows.loc[1, "sentence"] == "Var ligger Kiruna?"
    assert list(rows["gender"]) == ["male", "female", ""]
    assert rows.loc[0, "accent"] == "Skånska"
    assert list(rows["up_votes"]) == [2, 2, 0]
    assert list(rows["tsv_row"]) == [2, 3, 4]
    assert table.malformed.empty


def test_old_release_columns_and_missing_optional_ones(make_release):
    header = ["client_id", "path", "sentence", "up_votes", "down_votes", "gender"]
    root = make_release(
        {"dev": [{"path": "x.mp3", "gender": "male"}, {"path": "y.mp3", "gender": "other"}]},
        header=header,
    )
    rows = read_tsv(root / "dev.tsv").rows
    assert list(rows["gender"]) == ["male", "other"]
    assert list(rows["accent"]) == ["", ""] and list(rows["age"]) == ["", ""]
    root_old = make_release(
        {"dev": [{"path": "z", "accent": "Norrländska"}]}, header=HEADER_OLD, name="old/sv-SE"
    )
    assert read_tsv(root_old / "dev.tsv").rows.loc[0, "accent"] == "Norrländska"


def test_malformed_line_is_kept_as_a_quarantine_row(make_release):
    root = make_release({"train": [{"path": "ok.mp3"}, {"_line": "only\ttwo"}]})
    table = read_tsv(root / "train.tsv")
    assert len(table.rows) == 1
    bad = table.malformed.iloc[0]
    assert bad["tsv_row"] == 3
    assert_names(bad["reason"], "train.tsv", "line 3", 2)  # the fields found


def test_non_utf8_tsv_names_file_and_line(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_bytes(
        "client_id\tpath\tsentence\nc\ta.mp3\tHej\nc\tb.mp3\tBr\xe5d\n".encode("latin-1")
    )
    with raises_naming(ReleaseError, path, "line 3", "byte 11", "UTF-8", "0xe5"):
        read_tsv(path)


def test_missing_required_column_is_named(tmp_path):
    path = tmp_path / "test.tsv"
    path.write_text("client_id\tpath\tup_votes\nc\ta.mp3\t1\n", encoding="utf-8")
    with raises_naming(ReleaseError, path, "sentence"):  # the file and the missing column
        read_tsv(path)


def test_non_numeric_votes_name_the_line(make_release):
    root = make_release({"train": [{"path": "a.mp3"}, {"path": "b.mp3", "up_votes": "many"}]})
    with raises_naming(ReleaseError, root / "train.tsv", "line 3", "up_votes", "'many'"):
        read_tsv(root / "train.tsv")


def test_missing_split_file_says_what_a_release_is(tmp_path):
    # The file, the key that points at the release, and what a release looks like.
    with raises_naming(ReleaseError, tmp_path / "train.tsv", "data.raw_dir", "clips/"):
        commonvoice.split_tsv(tmp_path, "train")


def test_subset_is_deterministic_and_order_independent():
    df = pd.DataFrame({"path": [f"clip{i}.mp3" for i in range(50)]})
    a = take_subset(df, 10, seed=7)
    b = take_subset(df.iloc[::-1], 10, seed=7)
    assert sorted(a["path"]) == sorted(b["path"]) and len(a) == 10
    assert sorted(take_subset(df, 10, seed=8)["path"]) != sorted(a["path"])
    assert len(take_subset(df, 0, seed=7)) == 50


SENTENCE_CHARS = "abcåäöxyzABCÅÄÖ \"',.?!-:;()é"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.text(alphabet=SENTENCE_CHARS, min_size=1, max_size=40), min_size=1, max_size=8))
def test_any_sentence_survives_a_tsv_round_trip(tmp_path, sentences):
    """Quotes and apostrophes are literal in Common Voice TSVs (no quoting)."""
    path = tmp_path / "train.tsv"
    lines = ["client_id\tpath\tsentence"]
    lines += [f"c\tclip{i}\t{s}" for i, s in enumerate(sentences)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = read_tsv(path).rows
    assert list(rows["sentence"]) == [" ".join(s.split()) for s in sentences]
    assert list(rows["path"]) == [f"clip{i}.mp3" for i in range(len(sentences))]


# --------------------------------------------------------------------------------------------
# The files a current release ships beside the split TSVs


REPORTED_HEADER = ["sentence_id", "sentence", "locale", "reason"]


def test_reports_match_by_sentence_id_where_both_have_one_else_by_text(tmp_path):
    path = write_tsv(
        tmp_path / "reported.tsv",
        REPORTED_HEADER,
        [
            ["id-a", "Hej  på dig.", "sv-SE", "grammar-or-spelling"],
            ["id-b", "Ett annat id, samma text.", "sv-SE", "offensive-language"],
            ["", "Utan id.", "sv-SE", "different-language"],
            ["id-a", "Hej på dig.", "sv-SE", ""],
        ],
    )
    reports = commonvoice.read_reported(path)
    assert reports.rows == 4
    # Both sides have an id: the id decides (text is irrelevant), every report line listed.
    assert reports.lookup("id-a", "whatever") == (
        f"{path}: line 2: grammar-or-spelling, line 5: no reason given"
    )
    assert reports.lookup("id-c", "Ett annat id, samma text.") == ""
    # The report line has no id: the clip's sentence text decides (whitespace normalised).
    assert reports.lookup("id-z", "Utan  id.") == f"{path}: line 4: different-language"
    # The clip has no id (an older release): text against every report line.
    assert reports.lookup("", "Ett annat id, samma text.") == f"{path}: line 3: offensive-language"
    assert reports.lookup("", "Inte rapporterad.") == ""


def test_old_reported_file_without_sentence_id_matches_by_text(tmp_path):
    path = write_tsv(
        tmp_path / "reported.tsv", ["sentence", "locale", "reason"], [["Hej.", "sv-SE", "x"]]
    )
    reports = commonvoice.read_reported(path)
    assert reports.lookup("id-1", "Hej.") == f"{path}: line 2: x"


def test_clip_durations_are_seconds_by_clip_name(tmp_path):
    path = write_tsv(
        tmp_path / "clip_durations.tsv",
        ["clip", "duration[ms]"],
        [["a.mp3", "2500"], ["b", "1234"], ["a.mp3", "2500"]],
    )
    assert commonvoice.read_clip_durations(path) == {"a.mp3": (2.5, 2), "b.mp3": (1.234, 3)}


@pytest.mark.parametrize(
    ("rows", "facts"),
    [  # the line, and the column, value or clip it is about
        ([["a.mp3", "lång"]], ["line 2", "duration[ms]", "'lång'"]),
        ([["a.mp3", "1"], ["a.mp3", "2"]], ["line 3", "a.mp3", "line 2"]),
        ([["a.mp3"]], ["line 2", 2, 1]),  # fields expected and found
    ],
)
def test_broken_clip_durations_name_the_line(tmp_path, rows, facts):
    path = write_tsv(tmp_path / "clip_durations.tsv", ["clip", "duration[ms]"], rows)
    with raises_naming(ReleaseError, path, *facts):
        commonvoice.read_clip_durations(path)


def test_broken_reported_file_names_the_file_and_line(tmp_path):
    path = write_tsv(tmp_path / "reported.tsv", REPORTED_HEADER, [["id", "Hej.", "sv-SE"]])
    with raises_naming(ReleaseError, path, "line 2", 4):  # 4 fields expected
        commonvoice.read_reported(path)
    write_tsv(path, ["sentence_id", "locale"], [])
    with raises_naming(ReleaseError, path, "sentence"):  # the missing column
        commonvoice.read_reported(path)


def test_release_with_every_optional_file(make_release):
    root = make_release(
        {
            "train": [
                {"path": "a.mp3", "sentence_id": "s1", "sentence": "Rapporterad mening."},
                {"path": "b.mp3", "sentence_id": "s2", "sentence": "Ren mening."},
            ]
        }
    )
    write_tsv(root / "reported.tsv", REPORTED_HEADER, [["s1", "x", "sv-SE", "offensive-language"]])
    write_tsv(root / "clip_durations.tsv", ["clip", "duration[ms]"], [["b.mp3", "2040"]])
    write_tsv(root / "invalidated.tsv", HEADER_NEW, [["c"] * len(HEADER_NEW)] * 3)
    write_tsv(root / "other.tsv", HEADER_NEW, [])
    files = commonvoice.read_release_files(root)
    assert files.summary() == {
        "reported_rows": 1,
        "invalidated_rows": 3,
        "other_rows": 0,
        "clip_durations_rows": 1,
        "absent_files": [],
    }
    rows = files.annotate(read_tsv(root / "train.tsv").rows)
    assert list(rows["reported"]) == [f"{root / 'reported.tsv'}: line 2: offensive-language", ""]
    assert rows["listed_duration"].iloc[1] == 2.04 and rows["listed_duration_row"].iloc[1] == 2
    assert pd.isna(rows["listed_duration"].iloc[0]) and rows["listed_duration_row"].iloc[0] == 0


def test_release_without_optional_files(make_release):
    root = make_release({"train": [{"path": "a.mp3"}]}, header=HEADER_OLD)
    files = commonvoice.read_release_files(root)
    assert files.summary() == {
        "reported_rows": None,
        "invalidated_rows": None,
        "other_rows": None,
        "clip_durations_rows": None,
        "absent_files": ["reported.tsv", "invalidated.tsv", "other.tsv", "clip_durations.tsv"],
    }
    rows = files.annotate(read_tsv(root / "train.tsv").rows)
    assert list(rows["sentence_id"]) == [""] and list(rows["reported"]) == [""]
    assert rows["listed_duration"].isna().all() and list(rows["listed_duration_row"]) == [0]
