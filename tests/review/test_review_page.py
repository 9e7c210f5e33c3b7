"""The review page: its logic (serving/review.py) and the page itself under AppTest."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
import yaml
from streamlit.testing.v1 import AppTest

from swedish_transcriber.params import ParamsError, section
from swedish_transcriber.review.decisions import (
    MAX_TEXT_CHARS,
    Decision,
    DecisionsError,
    read_decisions,
    record_decision,
    write_decisions,
)
from swedish_transcriber.review.params import DECISION_TEXT_LIMIT, ReviewPageParams
from swedish_transcriber.serving import access, page, review
from tests.repo_params import REPO, write_params
from tests.review_files import (
    ROWS,
    TOKEN,
    validate_with_decisions,
    write_queue,
    write_review_params,
)

PAGE = str(REPO / "app" / "pages" / "review.py")
REPO_PARAMS = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))

LIMITS = ReviewPageParams(True, "q.parquet", "d.tsv", 300, 900)


@pytest.fixture
def clips(tmp_path) -> list[review.Clip]:
    return review.load_queue(write_queue(tmp_path), tmp_path)


# The logic --------------------------------------------------------------------------------


def test_the_queue_loads_in_rank_order_with_audio_resolved_against_the_root(tmp_path):
    path = write_queue(tmp_path)
    # Shuffled rows: the page still goes by rank.
    table = pd.read_parquet(path).iloc[[2, 0, 1]]
    table.to_parquet(path, index=False)
    clips = review.load_queue(path, tmp_path)
    assert [c.rank for c in clips] == [1, 2, 3]
    assert [c.path for c in clips] == ["clip_a.mp3", "clip_b.mp3", "clip_c.mp3"]
    first = clips[0]
    assert first.audio_file == tmp_path / "clips" / "clip_a.wav" and first.audio_file.is_file()
    assert first.sentence == "Hej jag heter Anna" and first.transcript == "Hej jag heter Hanna"
    assert dict(first.components)["ft_loss"] == pytest.approx(2.275)
    assert dict(first.scores) == {"ft_loss": pytest.approx(0.91), "ft_wer": pytest.approx(0.455)}
    line = review.score_line(first)
    assert "ft_loss 2.27 (0.91)" in line and "ft_wer 0.455 (0.46)" in line
    assert "clipping_ratio 0" in line


def test_a_missing_queue_says_to_run_the_rank_stage(tmp_path):
    with pytest.raises(review.NoQueue, match=r"dvc repro rank.*stage `train`"):
        review.load_queue(tmp_path / "reports" / "review_queue.parquet", tmp_path)


def test_an_empty_queue_says_how_to_fill_it(tmp_path):
    """A default repro writes the queue empty (review.rank.enabled false): the page names
    the param and the command instead of showing nothing."""
    path = write_queue(tmp_path)
    pd.read_parquet(path).iloc[:0].to_parquet(path)
    with pytest.raises(review.NoQueue, match=r"empty.*review\.rank\.enabled") as exc:
        review.load_queue(path, tmp_path)
    assert "dvc exp run -S review.rank.enabled=true" in str(exc.value)


def test_a_queue_without_a_required_column_or_unreadable_is_named(tmp_path):
    path = write_queue(tmp_path)
    pd.read_parquet(path).drop(columns=["transcript", "suspicion"]).to_parquet(path)
    with pytest.raises(review.QueueError, match=r"review_queue.parquet.*transcript, suspicion"):
        review.load_queue(path, tmp_path)
    path.write_bytes(b"not parquet")
    with pytest.raises(review.QueueError, match=r"review_queue.parquet: .*cannot be read"):
        review.load_queue(path, tmp_path)


def test_a_clip_listed_twice_names_both_rows(tmp_path):
    rows = [ROWS[0], ROWS[1], {**ROWS[2], "path": ROWS[0]["path"]}]
    path = write_queue(tmp_path, rows)
    with pytest.raises(review.QueueError, match=r"rows 1 and 3 are both clip 'clip_a.mp3'"):
        review.load_queue(path, tmp_path)


def test_missing_transcripts_read_as_empty(tmp_path):
    path = write_queue(tmp_path)
    table = pd.read_parquet(path)
    table["transcript"] = [None, "x", "y"]
    table.to_parquet(path, index=False)
    assert review.load_queue(path, tmp_path)[0].transcript == ""


def test_decided_clips_are_skipped_unless_shown_and_progress_counts_this_queue(clips):
    decided = review.by_clip(
        [Decision("clip_b.mp3", "exclude", reason="noise"), Decision("other.mp3", "keep")]
    )
    assert [c.path for c in review.visible(clips, decided, False)] == ["clip_a.mp3", "clip_c.mp3"]
    assert len(review.visible(clips, decided, True)) == 3
    counts = review.progress(clips, decided)  # other.mp3 is not in this queue
    assert (counts.decided, counts.left) == (1, 2)
    assert counts.line() == "1 of 3 clips decided, 2 left"


def test_the_current_clip_moves_on_after_a_decision(clips):
    a, b, c = clips
    assert review.current(clips, clips, None) is a
    assert review.current(clips, clips, b.path) is b
    # b was decided and is no longer shown: the next shown clip after it, not the top.
    assert review.current([a, c], clips, b.path) is c
    # The last clip decided: the one before it.
    assert review.current([a, b], clips, c.path) is b
    assert review.current([], clips, a.path) is None
    assert review.current(clips, clips, "gone.mp3") is a  # a clip of an older queue
    # After deciding, the next clip in the list the decision was made in; at its end, stay.
    assert review.after_decision(clips, a) == b.path
    assert review.after_decision(clips, c) == c.path
    assert review.neighbour(clips, b, -1) is a and review.neighbour(clips, b, 1) is c
    assert review.neighbour(clips, a, -1) is a and review.neighbour(clips, c, 1) is c


def test_the_form_becomes_a_decision(clips):
    clip = clips[0]
    keep = review.make_decision(clip, "keep", clip.sentence, "", LIMITS)
    assert (keep.path, keep.action, keep.sentence) == ("clip_a.mp3", "keep", "")
    exclude = review.make_decision(clip, "exclude", clip.sentence, "  only\nnoise ", LIMITS)
    assert (exclude.action, exclude.sentence, exclude.reason) == ("exclude", "", "only noise")
    fix = review.make_decision(clip, "fix", "Hej jag heter\nHanna", "name", LIMITS)
    assert (fix.action, fix.sentence, fix.reason) == ("fix", "Hej jag heter Hanna", "name")
    with pytest.raises(DecisionsError, match="press Keep"):
        review.make_decision(clip, "fix", " Hej jag  heter Anna ", "", LIMITS)
    with pytest.raises(DecisionsError, match="it is empty"):
        review.make_decision(clip, "fix", "  ", "", LIMITS)
    with pytest.raises(DecisionsError, match="unknown action"):
        review.make_decision(clip, "delete", "", "", LIMITS)
    assert "excluded (only noise)" in review.describe(exclude)
    assert "fixed to “Hej jag heter Hanna”" in review.describe(fix)


def test_a_missing_audio_file_is_a_message(tmp_path):
    clips = review.load_queue(write_queue(tmp_path, audio=False), tmp_path)
    problem = review.audio_problem(clips[0], tmp_path)
    assert problem is not None and "clip_a.mp3" in problem and "clips/clip_a.wav" in problem
    assert str(tmp_path) not in problem
    assert review.audio_format(clips[0]) in ("audio/wav", "audio/x-wav")


def test_the_review_params_are_checked(tmp_path):
    assert page.load_config(REPO / "params.yaml").review == ReviewPageParams(
        False, "reports/review_queue.parquet", "data/review/decisions.tsv", 300, 900
    )
    params = write_review_params(tmp_path)
    write_params(params, {"review.page.queue": " "})
    data = yaml.safe_load(params.read_text(encoding="utf-8"))
    with pytest.raises(ParamsError, match="review.page: queue must be a file path"):
        page.load_config(params)
    del data["review"]["page"]["decisions"]
    params.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ParamsError, match="missing required key 'decisions'"):
        section("review.page", ReviewPageParams, params)


def test_the_repos_decisions_file_is_the_empty_one_the_library_writes(tmp_path):
    """Committed as the header alone; the library reads it and writes the same bytes."""
    tracked = REPO / "data" / "review" / "decisions.tsv"
    assert read_decisions(tracked) == []
    write_decisions(tmp_path / "d.tsv", [])
    assert tracked.read_bytes() == (tmp_path / "d.tsv").read_bytes()


# The page under AppTest ---------------------------------------------------------------------


def run_page(root: Path, monkeypatch, enabled: bool = True, token: str | None = TOKEN) -> AppTest:
    """The review page on ``root``'s queue, the server's token set, and typed (if ``token``)."""
    monkeypatch.setenv(page.PARAMS_ENV, str(write_review_params(root, enabled)))
    monkeypatch.setenv(access.TOKEN_ENV, TOKEN)
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    if token is not None and enabled:
        at.text_input(key="review_token").input(token).run()
    return at


def unescaped(markdown: str) -> str:
    """What escaped markdown (page.escape_markdown) shows."""
    return re.sub(r"\\(.)", r"\1", markdown)


def shown(at: AppTest) -> str:
    assert not at.exception, [e.value for e in at.exception]
    return unescaped(at.subheader[0].value)


def test_the_page_excludes_one_clip_and_fixes_another(tmp_path, monkeypatch):
    write_queue(tmp_path)
    at = run_page(tmp_path, monkeypatch)
    assert shown(at) == "clip_a.mp3" and not at.error
    assert "0 of 3 clips decided, 3 left" in at.get("progress")[0].proto.text
    assert len(at.get("audio")) == 1
    diff = "".join(m.value for m in at.markdown)
    assert 'class="diff-substitute"' in diff and "hanna" in diff  # the differing word
    assert [m.value for m in at.metric] == ["1", "0.910", "train"]

    at.text_input(key="reason::clip_a.mp3").input("only background noise")
    at.button(key="exclude").click().run()
    assert shown(at) == "clip_b.mp3"  # on to the next clip
    assert unescaped(at.success[0].value).startswith("Excluded clip clip_a.mp3")
    assert "1 of 3 clips decided, 2 left" in at.get("progress")[0].proto.text

    assert at.text_area(key="fix_text::clip_b.mp3").value == "Det regnar i Stockholm"
    at.text_area(key="fix_text::clip_b.mp3").input("Det snöar i Göteborg")
    at.text_input(key="reason::clip_b.mp3").input("wrong sentence")
    at.button(key="fix").click().run()
    assert shown(at) == "clip_c.mp3"

    decisions = read_decisions(tmp_path / "data" / "review" / "decisions.tsv")
    got = [(d.path, d.action, d.sentence, d.reason) for d in decisions]
    assert got == [
        ("clip_a.mp3", "exclude", "", "only background noise"),
        ("clip_b.mp3", "fix", "Det snöar i Göteborg", "wrong sentence"),
    ]

    # Previous from clip_c skips the decided clips; the toggle shows them with their decision.
    assert at.button(key="previous").disabled
    at.toggle(key="show_decided").set_value(True).run()
    assert shown(at) == "clip_c.mp3"
    at.button(key="previous").click().run()
    assert shown(at) == "clip_b.mp3"
    assert "fixed to “Det snöar i Göteborg”" in unescaped(at.info[0].value)
    assert at.text_area(key="fix_text::clip_b.mp3").value == "Det snöar i Göteborg"
    at.button(key="keep").click().run()  # a new decision replaces the fix
    assert [(d.path, d.action) for d in read_decisions(tmp_path / "data/review/decisions.tsv")] == [
        ("clip_a.mp3", "exclude"),
        ("clip_b.mp3", "keep"),
    ]


def test_an_unchanged_fix_is_refused_on_the_page(tmp_path, monkeypatch):
    write_queue(tmp_path)
    at = run_page(tmp_path, monkeypatch)
    at.button(key="fix").click().run()
    assert shown(at) == "clip_a.mp3"
    assert "press Keep" in unescaped(at.error[0].value)
    assert not (tmp_path / "data" / "review" / "decisions.tsv").exists()


def test_the_last_decision_says_the_queue_is_done(tmp_path, monkeypatch):
    write_queue(tmp_path, ROWS[:1])
    at = run_page(tmp_path, monkeypatch)
    at.button(key="keep").click().run()
    assert not at.exception
    assert "Every clip in the queue is decided" in unescaped(at.success[-1].value)


def test_a_missing_queue_says_what_to_run(tmp_path, monkeypatch):
    at = run_page(tmp_path, monkeypatch)
    assert not at.exception and not at.error
    assert "Run `dvc repro rank` first" in unescaped(at.info[0].value)
    assert "needs stage `train`" in unescaped(at.info[0].value)


def test_a_page_others_can_reach_turns_review_off(tmp_path, monkeypatch):
    """review.page.enabled: false: no clip is played and nothing can be recorded."""
    write_queue(tmp_path)
    at = run_page(tmp_path, monkeypatch, enabled=False)
    assert not at.exception and not at.button and not at.subheader
    assert "review page is off" in unescaped(at.info[0].value)
    assert not (tmp_path / "data/review/decisions.tsv").exists()


def test_an_empty_queue_says_so(tmp_path, monkeypatch):
    write_queue(tmp_path, [])
    at = run_page(tmp_path, monkeypatch)
    assert not at.exception and not at.error
    assert "is empty" in unescaped(at.info[0].value)


def test_a_broken_decisions_file_shows_the_file_and_line(tmp_path, monkeypatch):
    write_queue(tmp_path)
    decisions = tmp_path / "data" / "review" / "decisions.tsv"
    record_decision(decisions, Decision("clip_c.mp3", "keep"))
    with decisions.open("a", encoding="utf-8") as fh:
        fh.write("clip_a.mp3\tdelete\t\t\t2026-11-28T15:30:00Z\n")
    at = run_page(tmp_path, monkeypatch)
    assert not at.exception
    message = unescaped(at.error[0].value)
    assert "decisions.tsv: line 3: unknown action 'delete'" in message
    assert not at.button  # nothing can be recorded


def test_a_missing_audio_file_is_a_warning_and_the_clip_can_still_be_decided(tmp_path, monkeypatch):
    write_queue(tmp_path, audio=False)
    at = run_page(tmp_path, monkeypatch)
    assert not at.get("audio")
    assert "audio of clip clip_a.mp3 is missing" in unescaped(at.warning[0].value)
    at.button(key="exclude").click().run()
    assert [d.path for d in read_decisions(tmp_path / "data/review/decisions.tsv")] == [
        "clip_a.mp3"
    ]


def test_a_label_without_words_is_shown_without_a_diff(tmp_path, monkeypatch):
    write_queue(tmp_path, [{**ROWS[0], "sentence": "…", "transcript": "hej"}])
    at = run_page(tmp_path, monkeypatch)
    assert shown(at) == "clip_a.mp3" and not at.error
    assert [t.value for t in at.text] == ["…", "hej", "hej"]  # label, transcript, zero-shot
    assert not any("diff-" in m.value for m in at.markdown)
    assert any("Zero-shot base model heard" in c.value for c in at.caption)


def test_the_app_offers_the_review_page_beside_the_main_one(tmp_path, monkeypatch):
    """``streamlit run app/main.py`` finds the page through ``app/pages/``."""
    write_queue(tmp_path)
    monkeypatch.setenv(page.PARAMS_ENV, str(write_review_params(tmp_path)))
    monkeypatch.setenv(access.TOKEN_ENV, TOKEN)
    at = AppTest.from_file(str(REPO / "app" / "main.py"), default_timeout=60).run()
    assert at.title[0].value == "Swedish Transcriber"
    at.switch_page("pages/review.py").run()
    assert at.title[0].value == "Review queue"
    at.text_input(key="review_token").input(TOKEN).run()
    assert shown(at) == "clip_a.mp3"


# Issue 19: the review page on a shared server ------------------------------------------------


def everything(at: AppTest) -> str:
    """Every element the page sent, as text (labels, values, messages, media references)."""
    out: list[str] = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            out.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(out)


def test_review_is_off_by_default_and_shows_nothing_without_the_token(tmp_path, monkeypatch):
    """Finding 1: anyone who opened the demo page could curate the training data."""
    assert page.load_config(REPO / "params.yaml").review.enabled is False
    write_queue(tmp_path)
    monkeypatch.delenv(access.TOKEN_ENV, raising=False)

    def nothing_of_the_corpus(at: AppTest) -> None:
        assert not at.exception, [e.value for e in at.exception]
        text = everything(at)
        assert not at.subheader and not at.button and not at.get("audio") and not at.text
        for clip in ROWS:
            assert clip["path"] not in text and clip["sentence"] not in text
        assert TOKEN not in text  # the token is never sent to a browser

    # On, but the server has no token: it says how to set one, and shows nothing else.
    monkeypatch.setenv(page.PARAMS_ENV, str(write_review_params(tmp_path)))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    nothing_of_the_corpus(at)
    assert access.TOKEN_ENV in unescaped(at.warning[0].value)
    assert not at.text_input  # no field to guess into

    # A token too short to be a secret is refused the same way.
    monkeypatch.setenv(access.TOKEN_ENV, "short")
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    nothing_of_the_corpus(at)
    assert "shorter than 16 characters" in unescaped(at.warning[0].value)

    # The token configured: nothing until it is typed, nothing for a wrong one.
    at = run_page(tmp_path, monkeypatch, token=None)
    nothing_of_the_corpus(at)
    assert "Type the review token" in unescaped(at.info[0].value)
    at.text_input(key="review_token").input(TOKEN[:-1] + "x").run()
    nothing_of_the_corpus(at)
    assert "not the review token" in unescaped(at.error[0].value)
    at.text_input(key="review_token").input(TOKEN).run()
    assert shown(at) == "clip_a.mp3"
    assert TOKEN not in everything(at).replace(f'value: "{TOKEN}"', "")  # only its own field

    # A token changed on the server locks an open session out, buttons included.
    monkeypatch.setenv(access.TOKEN_ENV, "another-token-now-0123456789")
    at.button(key="keep").click().run()
    assert not (tmp_path / "data" / "review" / "decisions.tsv").exists()
    assert not at.subheader


def test_the_token_comes_from_the_environment_or_secrets_and_is_compared_safely():
    env = {access.TOKEN_ENV: f"  {TOKEN}\n"}
    assert access.configured_token(env) == TOKEN
    assert access.configured_token({}, lambda: {"review_token": TOKEN}) == TOKEN
    assert access.configured_token(env, lambda: {"review_token": "other"}) == TOKEN

    def no_secrets_file() -> dict:
        raise FileNotFoundError("no secrets.toml")

    with pytest.raises(access.AccessError, match=access.TOKEN_ENV) as err:
        access.configured_token({}, no_secrets_file)
    assert "secrets.toml" in str(err.value)
    assert access.token_matches(TOKEN, TOKEN) and access.token_matches(f" {TOKEN} ", TOKEN)
    assert not access.token_matches(TOKEN[:-1], TOKEN) and not access.token_matches("", TOKEN)
    assert not access.token_matches(None, TOKEN) and not access.token_matches(TOKEN, "")
    # Never a param: the params file has no key that could hold it.
    assert "token" not in " ".join(REPO_PARAMS["review"]["page"])
    ignored = (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert ".streamlit/secrets.toml" in ignored


def test_the_fix_cap_is_the_longest_sentence_validate_allows():
    review_params = REPO_PARAMS["review"]["page"]
    validate = REPO_PARAMS["validate"]
    longest = validate["max_duration"] * validate["max_chars_per_second"]
    assert review_params["max_fix_chars"] <= longest
    assert 100 <= review_params["max_reason_chars"] <= 1_000  # a few hundred characters
    assert DECISION_TEXT_LIMIT == MAX_TEXT_CHARS


HOSTILE_REASON = (
    "![p](http://host/pixel.png) [click here](http://host/phish) <img src=x onerror=alert(1)> "
    "**bold** :red[red] $x^2$ www.host.example a@b.example"
)


def rendered(markdown: str) -> str:
    """HTML a CommonMark renderer with GFM tables, strikethrough and autolinks makes of
    ``markdown`` (raw HTML passes through, as with unsafe_allow_html)."""
    from markdown_it import MarkdownIt

    renderer = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    return renderer.render(markdown)


def markup_in(at: AppTest) -> list[str]:
    """Every element drawn from markdown whose rendering holds a link, an image or raw HTML
    that is not the page's own."""
    found = []
    kinds = ("markdown", "caption", "info", "error", "warning", "success", "subheader", "title")
    for kind in kinds:
        for element in getattr(at, kind):
            html = rendered(element.value)
            if any(tag in html for tag in ("<img", "<a ", "<strong>bold")):
                found.append(f"{kind}: {element.value!r} -> {html!r}")
    return found


def test_a_reason_holding_markdown_and_html_is_shown_as_plain_text(tmp_path, monkeypatch):
    """Finding 3: a stored reason made the next reviewer's browser fetch an image."""
    write_queue(tmp_path)
    decisions = tmp_path / "data" / "review" / "decisions.tsv"
    record_decision(decisions, Decision("clip_a.mp3", "exclude", reason=HOSTILE_REASON))
    record_decision(
        decisions, Decision("clip_b.mp3", "fix", "Det [snöar](http://host/x) i *Göteborg*")
    )
    # The queue's own text (a transcript, a clip path) is shown literally too.
    rows = [{**ROWS[0], "transcript": "![t](http://host/t.png) hej"}, *ROWS[1:]]
    write_queue(tmp_path, rows)
    at = run_page(tmp_path, monkeypatch)
    at.toggle(key="show_decided").set_value(True).run()
    at.button(key="previous").click().run()
    assert shown(at) == "clip_b.mp3"
    assert not markup_in(at), markup_in(at)
    assert "Det [snöar](http://host/x) i *Göteborg*" in unescaped(at.info[0].value)
    at.button(key="previous").click().run()
    assert shown(at) == "clip_a.mp3"
    assert not markup_in(at), markup_in(at)
    described = unescaped(at.info[0].value)
    assert HOSTILE_REASON in described  # every character shown as typed
    assert "![t](http://host/t.png) hej" in [t.value for t in at.text]


def test_the_review_page_shows_no_server_path(tmp_path, monkeypatch):
    """Finding 4: errors named …/reports/review_queue.parquet and …/decisions.tsv: line 3."""
    root = str(tmp_path.resolve())
    decisions = tmp_path / "data" / "review" / "decisions.tsv"
    # No queue yet, an unreadable one, an empty one.
    at = run_page(tmp_path, monkeypatch)
    assert "reports/review_queue.parquet" in unescaped(at.info[0].value)
    assert root not in everything(at)
    queue = write_queue(tmp_path, audio=False)
    queue.write_bytes(b"not parquet")
    at = run_page(tmp_path, monkeypatch)
    assert unescaped(at.error[0].value).startswith("reports/review_queue.parquet: ")
    assert root not in everything(at)
    write_queue(tmp_path, [])
    at = run_page(tmp_path, monkeypatch)
    assert root not in everything(at)
    # A missing clip, then a decisions file that does not parse. (The page caches the queue
    # by its mtime, which two writes within a clock tick share.)
    write_queue(tmp_path, audio=False)
    st.cache_data.clear()
    at = run_page(tmp_path, monkeypatch)
    assert "clips/clip_a.wav does not exist" in unescaped(at.warning[0].value)
    assert root not in everything(at)
    record_decision(decisions, Decision("clip_c.mp3", "keep"))
    with decisions.open("a", encoding="utf-8") as fh:
        fh.write("clip_a.mp3\tdelete\t\t\t2026-11-28T15:30:00Z\n")
    at = run_page(tmp_path, monkeypatch)
    assert "data/review/decisions.tsv: line 3: unknown action" in unescaped(at.error[0].value)
    assert root not in everything(at)


def test_control_characters_typed_on_the_page_never_reach_the_file(tmp_path, monkeypatch):
    """Finding 5: NUL bytes and ANSI escapes were kept verbatim in the git-tracked TSV."""
    write_queue(tmp_path)
    decisions = tmp_path / "data" / "review" / "decisions.tsv"
    at = run_page(tmp_path, monkeypatch)
    at.text_input(key="reason::clip_a.mp3").set_value("noise\x00 \x1b[31mred\x1b[0m")
    at.button(key="exclude").click().run()
    assert "U+0000" in unescaped(at.error[0].value)
    assert shown(at) == "clip_a.mp3"  # still on it: nothing was recorded
    assert not decisions.exists()
    at.text_area(key="fix_text::clip_a.mp3").set_value("Hej jag heter \x1b[2JHanna")
    at.button(key="fix").click().run()
    assert "U+001B" in unescaped(at.error[0].value)
    assert not decisions.exists()
    at.text_input(key="reason::clip_a.mp3").set_value("noise")
    at.button(key="exclude").click().run()
    raw = decisions.read_bytes()
    assert not any(b < 0x20 and b != 0x09 and b != 0x0A for b in raw)
    assert [(d.path, d.reason) for d in read_decisions(decisions)] == [("clip_a.mp3", "noise")]


def test_the_worst_decisions_the_page_takes_go_through_validate(tmp_path, monkeypatch):
    """Finding 2: one 140,000-character reason made the decisions file unreadable for good.

    The longest reason and fix the page takes, full of markup and quotes, are written
    through the page and read back by the validate stage.
    """
    write_queue(tmp_path)
    decisions = tmp_path / "data" / "review" / "decisions.tsv"
    limits = page.load_config(write_review_params(tmp_path)).review
    at = run_page(tmp_path, monkeypatch)
    at.text_input(key="reason::clip_a.mp3").set_value("x" * 140_000)
    at.button(key="keep").click().run()
    assert not at.error, [e.value for e in at.error]
    assert shown(at) == "clip_b.mp3"
    longest_fix = ('Hej, jag heter "Anna" (från Umeå) - det är så! ' * 30)[
        : limits.max_fix_chars
    ].strip()
    worst_reason = (HOSTILE_REASON + " \\ \"quoted\" 'single' é ö " * 10)[: limits.max_reason_chars]
    at.text_area(key="fix_text::clip_b.mp3").set_value(longest_fix)
    at.text_input(key="reason::clip_b.mp3").set_value(worst_reason)
    at.button(key="fix").click().run()
    assert not at.error, [e.value for e in at.error]
    at.text_input(key="reason::clip_c.mp3").set_value(worst_reason)
    at.button(key="exclude").click().run()
    assert not at.error, [e.value for e in at.error]

    got = {d.path: d for d in read_decisions(decisions)}
    assert len(got["clip_a.mp3"].reason) == limits.max_reason_chars  # cut at the field's cap
    assert got["clip_b.mp3"].sentence == longest_fix
    assert got["clip_b.mp3"].reason == " ".join(worst_reason.split())
    # One line per decision, the next session reads the file, the validate stage applies it.
    assert len(decisions.read_text(encoding="utf-8").splitlines()) == 4
    at = run_page(tmp_path, monkeypatch)
    assert not at.error and not at.exception
    train, quarantine = validate_with_decisions(decisions, tmp_path / "repo", monkeypatch)
    assert "clip_a.mp3" in train.index and "clip_c.mp3" not in train.index
    excluded = quarantine[quarantine["path"] == "clip_c.mp3"]
    assert list(excluded["reason"]) == [f"excluded by review: {' '.join(worst_reason.split())}"]
    fixed = quarantine[quarantine["path"] == "clip_b.mp3"]
    if "clip_b.mp3" in train.index:  # the fix replaced the label
        assert train.loc["clip_b.mp3", "sentence"] == longest_fix
    else:  # or the suite quarantined it: 900 characters for a short clip is too fast speech
        assert list(fixed["sentence"]) == [longest_fix]


def test_a_reason_over_the_cap_is_refused_before_the_file(clips):
    with pytest.raises(DecisionsError, match=r"reason is 301 characters long; at most 300"):
        review.make_decision(clips[0], "exclude", "", "r" * 301, LIMITS)
    with pytest.raises(DecisionsError, match=r"corrected sentence is 901 characters long"):
        review.make_decision(clips[0], "fix", "å" * 901, "", LIMITS)
    with pytest.raises(DecisionsError, match=r"U\+001B"):
        review.make_decision(clips[0], "exclude", "", "\x1b[31m", LIMITS)


def test_the_suspect_word_is_marked_in_the_label(tmp_path, monkeypatch):
    """Cross-fitting's suspect word (its index in the label) is highlighted in the label, the
    rest of the label escaped; a queue without one, or an index that no longer fits, shows
    the label unmarked."""
    hostile = "Hej <img src=x> [jag](http://host/x) Anna"
    rows = [
        {**ROWS[0], "suspect_word": "Anna", "suspect_word_index": 3},
        {**ROWS[1], "sentence": hostile, "suspect_word": "<img", "suspect_word_index": 1},
        {**ROWS[2], "suspect_word": "Anna", "suspect_word_index": 1},  # not that word
    ]
    write_queue(tmp_path, rows)
    clips = review.load_queue(tmp_path / "reports" / "review_queue.parquet", tmp_path)
    assert [(c.suspect_word, c.suspect_word_index) for c in clips][:2] == [("Anna", 3), ("<img", 1)]
    assert review.marked_label(clips[2]) is None
    marked = review.marked_label(clips[1])
    assert '<mark class="suspect-word"' in marked and "&#60;img</mark>" in marked
    assert "<img src" not in rendered(marked) and "<a " not in rendered(marked)
    assert "&lt;img</mark> src=x&gt; [jag](http://host/x) Anna" in rendered(marked)  # as written

    at = run_page(tmp_path, monkeypatch)
    assert shown(at) == "clip_a.mp3"
    labels = [m.value for m in at.markdown if 'class="suspect-word"' in m.value]
    assert len(labels) == 1
    assert re.search(r'<mark class="suspect-word"[^>]*>Anna</mark>$', labels[0]), labels[0]
    assert labels[0].startswith("Hej jag heter ")
    assert not markup_in(at), markup_in(at)
    at.button(key="keep").click().run()
    assert shown(at) == "clip_b.mp3" and not markup_in(at), markup_in(at)
    at.button(key="keep").click().run()
    assert not any('class="suspect-word"' in m.value for m in at.markdown)

    write_queue(tmp_path)  # a queue without cross-fitting: nothing marked
    assert all(
        review.marked_label(c) is None
        for c in review.load_queue(tmp_path / "reports" / "review_queue.parquet", tmp_path)
    )
