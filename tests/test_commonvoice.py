"""Reading real Common Voice releases: their quirks and their broken files."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swedish_transcriber.data import commonvoice
from swedish_transcriber.data.commonvoice import ReleaseError, read_tsv, take_subset
from tests.conftest import HEADER_NEW, HEADER_OLD


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
    assert "train.tsv: line 3" in bad["reason"] and "found 2" in bad["reason"]


def test_non_utf8_tsv_names_file_and_line(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_bytes(
        "client_id\tpath\tsentence\nc\ta.mp3\tHej\nc\tb.mp3\tBr\xe5d\n".encode("latin-1")
    )
    with pytest.raises(ReleaseError, match=r"train.tsv: line 3, byte 11: not valid UTF-8"):
        read_tsv(path)


def test_missing_required_column_is_named(tmp_path):
    path = tmp_path / "test.tsv"
    path.write_text("client_id\tpath\tup_votes\nc\ta.mp3\t1\n", encoding="utf-8")
    with pytest.raises(ReleaseError, match=r"test.tsv: missing required column\(s\) sentence"):
        read_tsv(path)


def test_non_numeric_votes_name_the_line(make_release):
    root = make_release({"train": [{"path": "a.mp3"}, {"path": "b.mp3", "up_votes": "many"}]})
    with pytest.raises(ReleaseError, match=r"line 3: column up_votes is not a whole number"):
        read_tsv(root / "train.tsv")


def test_missing_split_file_says_what_a_release_is(tmp_path):
    with pytest.raises(ReleaseError, match=r"train.tsv: not found.*cv-corpus"):
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
