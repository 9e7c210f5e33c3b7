"""What the demo page (``app/main.py``) does, apart from drawing widgets.

Kept out of the Streamlit script so it can be tested and reused: which models the page
offers and which first (their measured WER, :mod:`measured`), its settings (params.yaml
``app``, and ``review.page`` for the review page), and the word-difference view. The page's params
file is the repo's ``params.yaml``, or the file named by ``SWEDISH_TRANSCRIBER_PARAMS`` (the
tests point it at tiny models).
"""

from __future__ import annotations

import html
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from swedish_transcriber.evaluation.word_diff import WordDiff
from swedish_transcriber.model.source import ModelLanguage
from swedish_transcriber.params import load_params, section
from swedish_transcriber.review.params import ReviewPageParams
from swedish_transcriber.serving.engines.contract import EngineSettings
from swedish_transcriber.serving.long_form import ChunkPlan
from swedish_transcriber.serving.measured import Measurements, default_index, load_measurements
from swedish_transcriber.serving.media import MediaLimits
from swedish_transcriber.serving.model_paths import ModelChoice, configured_model, typed_model
from swedish_transcriber.whisper import DecodeOptions

REPO = Path(__file__).resolve().parents[2]  # the repo root: swedish_transcriber/serving/page.py
PARAMS_ENV = "SWEDISH_TRANSCRIBER_PARAMS"


@dataclass(frozen=True)
class AppParams:
    """Params section ``app``: each part is the dataclass of the module that uses it."""

    # label -> model directory, in the order the page offers them (relative to the repo).
    models: dict[str, str]
    limits: MediaLimits  # what an upload may be
    chunks: ChunkPlan  # how long audio is cut at pauses
    decode: DecodeOptions  # batch_size: chunks per model call
    engine: EngineSettings  # threads, CTranslate2 compute type
    # "Another directory…" on the page, limited to directories inside model_roots.
    allow_other_directories: bool
    model_roots: tuple[str, ...]
    # The URL source (serving/url.py).
    allow_private_urls: bool  # fetch loopback/private addresses (only tests turn this on)
    url_socket_timeout: float  # seconds a silent server is waited for
    url_download_timeout: float  # seconds one URL fetch may take

    def __post_init__(self) -> None:
        if self.url_socket_timeout <= 0 or self.url_download_timeout <= 0:
            raise ValueError("url_socket_timeout and url_download_timeout must be > 0")
        object.__setattr__(self, "model_roots", tuple(self.model_roots))
        if any(not r.strip() for r in self.model_roots):
            raise ValueError(
                "model_roots entries must be directories (an empty one would be the whole repo)"
            )
        if self.allow_other_directories and not self.model_roots:
            raise ValueError(
                "model_roots must list a directory when allow_other_directories is true"
            )


@dataclass(frozen=True)
class PageConfig:
    """Everything the page reads from its params file."""

    app: AppParams
    review: ReviewPageParams  # params review.page: the review page (app/pages/review.py)
    language: ModelLanguage
    root: Path  # model paths in the params are relative to this directory
    params_file: Path  # where these came from (measured WER: params evaluate, metrics/)

    def model_roots(self) -> list[Path]:
        """params ``app.model_roots``, resolved (relative to ``root`` unless absolute)."""
        return [(self.root / r).resolve() for r in self.app.model_roots]


def params_path() -> Path:
    """The params file the page reads: ``$SWEDISH_TRANSCRIBER_PARAMS`` or the repo's."""
    return Path(os.environ.get(PARAMS_ENV) or REPO / "params.yaml")


def load_config(path: Path | None = None) -> PageConfig:
    """Sections ``app``, ``review.page`` and ``model`` (language, task) of the params file,
    checked."""
    path = path or params_path()
    load_params(path)  # a clear error when the file is missing
    return PageConfig(
        app=section("app", AppParams, path),
        review=section("review.page", ReviewPageParams, path),
        language=section("model", ModelLanguage, path, subset=True),
        root=path.resolve().parent,
        params_file=path,
    )


def model_choices(config: PageConfig) -> list[ModelChoice]:
    """The models params ``app.models`` lists, in order, each checked on disk."""
    return [configured_model(label, p, config.root) for label, p in config.app.models.items()]


def measurements(config: PageConfig) -> Measurements:
    """The models' measured WER (``metrics/eval.json`` beside the params file), by directory."""
    return load_measurements(config.params_file, config.root)


def default_choice(config: PageConfig, choices: list[ModelChoice], measured: Measurements) -> int:
    """The index in ``choices`` the page selects first (``measured.default_index``)."""
    return default_index([c.path for c in choices], measured, config.root)


def typed_choice(config: PageConfig, typed: str) -> ModelChoice:
    """A directory typed on the page; only one inside ``app.model_roots`` can be usable."""
    return typed_model(typed, config.root, config.model_roots())


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&=@\"'])")


def escape_markdown(text: str) -> str:
    """``text`` as literal markdown: every character markdown or Streamlit could read as markup
    is backslash-escaped (CommonMark allows it for any ASCII punctuation), so a link, an image
    (which the browser would fetch), HTML, a ``:color[...]`` directive or ``$math$`` shows as
    typed. Each line keeps its own line (a hard break); other whitespace runs become one space.
    For anything a visitor typed or a model transcribed that goes into ``st.error``,
    ``st.info``, ``st.caption`` or a heading.
    """
    lines = (" ".join(line.split()) for line in str(text).split("\n"))
    return "  \n".join(_MARKDOWN_SPECIAL.sub(r"\\\1", line) for line in lines)


def shown_path(path: str | Path, root: Path) -> str:
    """``path`` as the page may show it: relative to ``root`` when inside it, else its name.

    The page never shows where the server keeps its checkout (the main page names uploads by
    their own names, and models by their params label).
    """
    path = Path(path)
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except (ValueError, OSError):
        return path.name


def without_root(text: str, root: Path) -> str:
    """``text`` with every spelling of ``root`` (and its parent's) removed: the last guard
    against a library message that names a file by its absolute path."""
    for spelling in sorted({str(root), str(root.resolve())}, key=len, reverse=True):
        text = text.replace(spelling + os.sep, "").replace(spelling, ".")
    return text


def trim_end(duration: float, step: float = 0.1) -> float:
    """The trim slider's end: the clip's length rounded *up* to the slider's step.

    Rounding to the nearest step would cut up to half a step off every clip's end.
    """
    return max(2 * step, round(math.ceil(round(duration / step, 6)) * step, 6))


_DIFF_STYLE = {
    "substitute": "background:#fde68a",
    "insert": "background:#bbf7d0",
    "delete": "background:#fecaca;text-decoration:line-through",
}


def diff_html(diff: WordDiff) -> str:
    """The transcript's words coloured against the reference, with a legend.

    Substituted words show the transcript's word with the reference's in a tooltip, so the
    page shows one line of text that reads like the transcript.
    """
    parts: list[str] = []
    for op in diff.ops:
        ref, hyp = html.escape(" ".join(op.reference)), html.escape(" ".join(op.hypothesis))
        if op.kind == "equal":
            parts.append(hyp)
        elif op.kind == "substitute":
            parts.append(
                f'<span class="diff-substitute" style="{_DIFF_STYLE["substitute"]}" '
                f'title="reference: {ref}">{hyp}</span>'
            )
        elif op.kind == "insert":
            parts.append(
                f'<span class="diff-insert" style="{_DIFF_STYLE["insert"]}" '
                f'title="not in the reference">{hyp}</span>'
            )
        else:
            parts.append(
                f'<span class="diff-delete" style="{_DIFF_STYLE["delete"]}" '
                f'title="missing from the transcript">{ref}</span>'
            )
    legend = (
        f'<span style="{_DIFF_STYLE["substitute"]}">substituted</span> '
        f'<span style="{_DIFF_STYLE["insert"]}">inserted</span> '
        f'<span style="{_DIFF_STYLE["delete"]}">missing</span>'
    )
    return f'<p class="word-diff">{" ".join(parts)}</p><p><small>{legend}</small></p>'
