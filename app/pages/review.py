"""Swedish Transcriber: the review page, the second page of ``streamlit run app/main.py``.

Steps through the rank stage's review queue (params ``review.page.queue``), most suspicious
clip first: listen, compare the label with the model's transcript, then keep the clip,
exclude it or fix its text. Each decision is one row of the decisions file (params
``review.page.decisions``, git-tracked). The logic is ``swedish_transcriber.serving.review``;
this script only draws it. Streamlit finds it through the ``pages/`` folder beside
``app/main.py``.

Safe on a shared server (issue 19): off unless params turn it on, then only for a reviewer
who types the review token (``serving/access.py``); nothing of the queue is shown before.
Every text that comes from the queue, the decisions file or a visitor is shown as plain text
(``st.text``, or escaped markdown), and files are named relative to the repo, never by their
path on the server.
"""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from swedish_transcriber.evaluation.word_diff import word_diff  # noqa: E402
from swedish_transcriber.review.decisions import (  # noqa: E402
    DecisionsError,
    read_decisions,
    record_decision,
)
from swedish_transcriber.serving import access, page, review  # noqa: E402
from swedish_transcriber.serving.page import escape_markdown  # noqa: E402

CURRENT = "review_current"  # session state: the path of the clip on screen
MESSAGE = "review_message"  # session state: (kind, text) of the last action, shown once
TOKEN = "review_token"  # session state: the token the reviewer typed (a password field)
WRONG_TOKEN_DELAY = 1.0  # seconds a wrong token costs: slows guessing, not a reviewer


@st.cache_data(show_spinner=False, max_entries=2)
def queue(path: str, root: str, _modified: int) -> list[review.Clip]:
    """The queue, read again only when the file changes (``_modified``: its mtime in ns)."""
    return review.load_queue(path, Path(root))


def show_labels(clip: review.Clip) -> None:
    """The label beside the model's transcript, the transcript's differing words coloured,
    the label's suspect word (cross-fitting) marked."""
    left, right = st.columns(2)
    left.markdown("**Label** (what the clip is said to say)")
    left.text(clip.sentence or "(empty)")
    marked = review.marked_label(clip)
    if marked is not None:  # its words are escaped
        left.markdown(marked, unsafe_allow_html=True)
        left.caption("Marked: the word a model that did not train on this clip doubts most.")
    right.markdown("**Fine-tuned model heard**")
    right.text(clip.transcript or "(nothing)")
    try:
        diff = word_diff(clip.sentence, clip.transcript)
    except ValueError:  # a label with no words to align against: nothing to colour
        pass
    else:
        right.markdown(page.diff_html(diff), unsafe_allow_html=True)  # its words are escaped
        right.caption(f"Normalised, against the label: WER {diff.wer:.0%}")
    st.caption("Zero-shot base model heard:")
    st.text(clip.zero_shot_transcript or "(nothing)")


def authorised() -> bool:
    """Whether this session typed the server's review token (checked on every run and in
    every button callback, so a changed token locks every session out at once)."""
    try:
        expected = access.configured_token(secrets=lambda: st.secrets)
    except access.AccessError:
        return False
    return access.token_matches(st.session_state.get(TOKEN), expected)


def decide(
    decisions_file: Path,
    clip: review.Clip,
    action: str,
    shown: list[review.Clip],
    config: page.PageConfig,
) -> None:
    """Button callback: record the decision, then move on to the next clip."""
    if not authorised():
        st.session_state[MESSAGE] = ("error", "The review token is wrong or was changed.")
        return
    fixed = st.session_state.get(f"fix_text::{clip.path}", "")
    reason = st.session_state.get(f"reason::{clip.path}", "")
    name = page.shown_path(decisions_file, config.root)
    try:
        decision = review.make_decision(clip, action, fixed, reason, config.review)
        record_decision(decisions_file, decision)
    except DecisionsError as exc:
        st.session_state[MESSAGE] = ("error", page.without_root(str(exc), config.root))
        return
    except OSError as exc:
        st.session_state[MESSAGE] = ("error", f"{name}: cannot be written ({exc.strerror})")
        return
    done = {"keep": "Kept", "exclude": "Excluded", "fix": "Fixed"}[action]
    st.session_state[MESSAGE] = ("success", f"{done} clip {clip.path} (rank {clip.rank}).")
    st.session_state[CURRENT] = review.after_decision(shown, clip)


def go_to(path: str) -> None:
    st.session_state[CURRENT] = path


def ask_for_token() -> None:
    """Stop the script unless this session holds the review token; show nothing else."""
    try:
        expected = access.configured_token(secrets=lambda: st.secrets)
    except access.AccessError as exc:
        st.warning(escape_markdown(str(exc)))
        st.stop()
    typed = st.text_input(
        "Review token",
        type="password",
        key=TOKEN,
        help="Ask whoever runs this server. It is checked on the server and never shown.",
    )
    if not typed:
        st.info("Type the review token to review clips.")
        st.stop()
    if not access.token_matches(typed, expected):
        time.sleep(WRONG_TOKEN_DELAY)
        st.error("That is not the review token.")
        st.stop()


def main() -> None:
    st.set_page_config(page_title="Review queue · Swedish Transcriber", page_icon="🎙️")
    st.title("Review queue")
    st.caption(
        "Clips whose label may be wrong, most suspicious first. Listen, compare the label "
        "with what the model heard, and keep, exclude or fix each clip."
    )
    try:
        config = page.load_config()
    except (ValueError, FileNotFoundError) as exc:
        reason = page.without_root(str(exc), page.REPO)
        st.error(escape_markdown(f"The page's settings cannot be read: {reason}"))
        st.stop()
    settings = config.review
    if not settings.enabled:
        st.info(
            "The review page is off on this server (params review.page.enabled: false): it "
            "would play the training clips and record decisions in the server's checkout."
        )
        st.stop()
    ask_for_token()
    root = config.root
    queue_file = review.resolve(settings.queue, root)
    decisions_file = review.resolve(settings.decisions, root)

    try:
        modified = queue_file.stat().st_mtime_ns if queue_file.exists() else 0
        clips = queue(str(queue_file), str(root), modified)
    except review.NoQueue as exc:
        st.info(escape_markdown(page.without_root(str(exc), root)))
        st.stop()
    except review.QueueError as exc:
        st.error(escape_markdown(page.without_root(str(exc), root)))
        st.stop()
    if not clips:
        name = page.shown_path(queue_file, root)
        st.info(escape_markdown(f"The review queue ({name}) is empty: no clip to review."))
        st.stop()
    try:
        decided = review.by_clip(read_decisions(decisions_file))
    except DecisionsError as exc:
        st.error(
            "The decisions file cannot be read, so nothing can be recorded:\n\n"
            + escape_markdown(page.without_root(str(exc), root))
        )
        st.stop()

    counts = review.progress(clips, decided)
    st.progress(counts.decided / counts.total, text=counts.line())
    show_decided = st.toggle("Show clips already decided", key="show_decided")
    shown = review.visible(clips, decided, show_decided)
    clip = review.current(shown, clips, st.session_state.get(CURRENT))
    message = st.session_state.pop(MESSAGE, None)
    if message:
        (st.success if message[0] == "success" else st.error)(escape_markdown(message[1]))
    if clip is None:
        st.success("Every clip in the queue is decided. Turn on the toggle to look at them again.")
        st.stop()
    st.session_state[CURRENT] = clip.path
    paths = [c.path for c in shown]

    position = paths.index(clip.path)
    back, where, forward = st.columns([1, 3, 1])
    back.button(
        "◀ Previous",
        key="previous",
        disabled=position == 0,
        on_click=go_to,
        args=(review.neighbour(shown, clip, -1).path,),
    )
    where.markdown(f"Clip {position + 1} of {len(shown)} shown · **rank {clip.rank}**")
    forward.button(
        "Next ▶",
        key="next",
        disabled=position == len(shown) - 1,
        on_click=go_to,
        args=(review.neighbour(shown, clip, 1).path,),
    )

    st.subheader(escape_markdown(clip.path))
    rank, suspicion, split = st.columns(3)
    rank.metric("Rank", clip.rank)
    suspicion.metric("Suspicion", f"{clip.suspicion:.3f}")
    split.metric("Split", clip.split)  # a metric's value is plain text
    if line := review.score_line(clip):
        st.caption(escape_markdown(line))
    if problem := review.audio_problem(clip, root):
        st.warning(escape_markdown(problem))
    else:
        try:
            st.audio(clip.audio_file.read_bytes(), format=review.audio_format(clip))
        except OSError as exc:
            st.warning(
                escape_markdown(f"The audio of clip {clip.path} cannot be read: {exc.strerror}")
            )
    show_labels(clip)

    earlier = decided.get(clip.path)
    if earlier is not None:
        st.info(escape_markdown(review.describe(earlier)))
    st.text_area(
        "Corrected sentence (for Fix)",
        value=earlier.sentence if earlier and earlier.action == "fix" else clip.sentence,
        key=f"fix_text::{clip.path}",
        max_chars=settings.max_fix_chars,
    )
    st.text_input(
        "Reason (optional, kept with the decision)",
        key=f"reason::{clip.path}",
        max_chars=settings.max_reason_chars,
    )
    keep, exclude, fix = st.columns(3)
    for column, action, label in (
        (keep, "keep", "Keep"),
        (exclude, "exclude", "Exclude"),
        (fix, "fix", "Fix the text"),
    ):
        column.button(
            label,
            key=action,
            type="primary" if action == "keep" else "secondary",
            on_click=decide,
            args=(decisions_file, clip, action, shown, config),
        )
    st.caption(
        escape_markdown(
            f"Decisions are written to {page.shown_path(decisions_file, root)}; the queue is "
            f"{page.shown_path(queue_file, root)}."
        )
    )


if __name__ == "__main__":
    main()
