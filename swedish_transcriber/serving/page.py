"""What the demo page (``app/main.py``) does, apart from drawing widgets.

Kept out of the Streamlit script so it can be tested and reused: which models the page
offers, its settings (params.yaml ``app``), and the word-difference view. The page's params
file is the repo's ``params.yaml``, or the file named by ``SWEDISH_TRANSCRIBER_PARAMS`` (the
tests point it at tiny models).
"""

from __future__ import annotations

import html
import math
import os
from dataclasses import dataclass
from pathlib import Path

from swedish_transcriber.evaluation.word_diff import WordDiff
from swedish_transcriber.model.source import ModelLanguage
from swedish_transcriber.params import load_params, section
from swedish_transcriber.serving.engines import EngineSettings, model_kind
from swedish_transcriber.serving.long_form import ChunkPlan
from swedish_transcriber.serving.media import MediaLimits
from swedish_transcriber.whisper import DecodeOptions

REPO = Path(__file__).resolve().parents[2]
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


@dataclass(frozen=True)
class PageConfig:
    """Everything the page reads from its params file."""

    app: AppParams
    language: ModelLanguage
    root: Path  # model paths in the params are relative to this directory


def params_path() -> Path:
    """The params file the page reads: ``$SWEDISH_TRANSCRIBER_PARAMS`` or the repo's."""
    return Path(os.environ.get(PARAMS_ENV) or REPO / "params.yaml")


def load_config(path: Path | None = None) -> PageConfig:
    """Sections ``app`` and ``model`` (language, task) of the params file, checked."""
    path = path or params_path()
    load_params(path)  # a clear error when the file is missing
    return PageConfig(
        app=section("app", AppParams, path),
        language=section("model", ModelLanguage, path, subset=True),
        root=path.resolve().parent,
    )


@dataclass(frozen=True)
class ModelChoice:
    """A model the page can offer: its label, directory, and why it cannot be used (if so)."""

    label: str
    path: Path
    kind: str | None  # "transformers" or "ctranslate2"; None when unusable
    problem: str = ""

    @property
    def available(self) -> bool:
        return self.kind is not None


def inspect_model(label: str, path: str | Path, root: Path) -> ModelChoice:
    """A ``ModelChoice`` for ``path`` (relative to ``root`` unless absolute)."""
    resolved = Path(path).expanduser()
    if not resolved.is_absolute():
        resolved = root / resolved
    try:
        return ModelChoice(label, resolved, model_kind(resolved))
    except FileNotFoundError as exc:
        return ModelChoice(label, resolved, None, str(exc))


def model_choices(config: PageConfig) -> list[ModelChoice]:
    """The models params ``app.models`` lists, in order, each checked on disk."""
    return [inspect_model(label, p, config.root) for label, p in config.app.models.items()]


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
