"""What the demo page (``app/main.py``) does, apart from drawing widgets.

Kept out of the Streamlit script so it can be tested and reused: which models the page
offers, its limits (params.yaml ``app``), and the word-difference view. The page's params
file is the repo's ``params.yaml``, or the file named by ``SWEDISH_TRANSCRIBER_PARAMS`` (the
tests point it at tiny models).
"""

from __future__ import annotations

import html
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from swedish_transcriber.evaluation.word_diff import WordDiff
from swedish_transcriber.model.source import ModelLanguage
from swedish_transcriber.params import load_params, section
from swedish_transcriber.serving.engines import DecodeOptions, model_kind
from swedish_transcriber.serving.long_form import ChunkPlan
from swedish_transcriber.serving.media import MediaLimits

REPO = Path(__file__).resolve().parents[2]  # swedish_transcriber/serving/page.py
PARAMS_ENV = "SWEDISH_TRANSCRIBER_PARAMS"
CT2_COMPUTE_TYPES = ("int8", "int8_float32", "int16", "float32")


@dataclass(frozen=True)
class AppParams:
    """Params section ``app``."""

    models: dict[str, str] = field(default_factory=dict)
    max_upload_mb: float = 50.0
    max_seconds: float = 600.0
    silence_threshold_db: float = -45.0
    chunk_seconds: float = 30.0
    min_pause: float = 0.3
    batch_size: int = 2
    num_beams: int = 1
    max_new_tokens: int = 224
    threads: int = 2
    ct2_compute_type: str = "int8"
    min_seconds: float = 0.1

    def __post_init__(self) -> None:
        for name in ("batch_size", "num_beams", "max_new_tokens", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"params.yaml: app.{name} must be >= 1")
        if self.max_new_tokens > 224:
            raise ValueError(
                "params.yaml: app.max_new_tokens must be <= 224 (half of Whisper's 448 decoder "
                "positions, as openai/whisper's sample_len)"
            )
        if self.max_upload_mb <= 0 or self.max_seconds <= 0:
            raise ValueError("params.yaml: app.max_upload_mb and app.max_seconds must be > 0")
        if not 0 <= self.min_seconds < self.max_seconds:
            raise ValueError("params.yaml: app.min_seconds must be >= 0 and below app.max_seconds")
        if self.ct2_compute_type not in CT2_COMPUTE_TYPES:
            raise ValueError(
                f"params.yaml: app.ct2_compute_type must be one of {', '.join(CT2_COMPUTE_TYPES)}"
            )
        ChunkPlan(self.chunk_seconds, self.min_pause, self.silence_threshold_db)

    @property
    def limits(self) -> MediaLimits:
        return MediaLimits(
            self.max_upload_mb, self.max_seconds, self.silence_threshold_db, self.min_seconds
        )

    @property
    def plan(self) -> ChunkPlan:
        return ChunkPlan(self.chunk_seconds, self.min_pause, self.silence_threshold_db)


@dataclass(frozen=True)
class PageConfig:
    """Everything the page reads from its params file."""

    app: AppParams
    language: ModelLanguage
    root: Path  # model paths in the params are relative to this directory

    def decode_options(self) -> DecodeOptions:
        return DecodeOptions(
            language=self.language.language,
            task=self.language.task,
            num_beams=self.app.num_beams,
            max_new_tokens=self.app.max_new_tokens,
            threads=self.app.threads,
            ct2_compute_type=self.app.ct2_compute_type,
        )


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
