"""The demo page under AppTest: its script, the tiny models' labels, and what a visitor sees
(shared by the page's tests in tests/serving/)."""

from __future__ import annotations

import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

from swedish_transcriber.serving import media, page
from swedish_transcriber.serving.engines.factory import load_engine
from swedish_transcriber.serving.long_form import transcribe_audio
from tests.repo_params import REPO, load_yaml

APP = str(REPO / "app" / "main.py")
TRANSFORMERS_LABEL = "tiny (transformers)"
CT2_LABEL = "tiny (CTranslate2 int8)"
MISSING_LABEL = "not built yet"
REPO_PARAMS = load_yaml()


def expected(params_file: Path, model_dir: Path, data: bytes, name: str) -> str:
    """What the page must show: the same engine on the same decoded audio."""
    config = page.load_config(params_file)
    audio = media.decode(data, name, config.app.limits)
    app = config.app
    engine = load_engine(model_dir, config.language, app.decode, app.engine)
    return transcribe_audio(audio, engine, app.chunks, app.decode.batch_size).text


def plain(markdown: str) -> str:
    """What escaped markdown (``page.escape_markdown``) shows: the text without its escapes."""
    return re.sub(r"\\(.)", r"\1", markdown)


def errors(at: AppTest) -> list[str]:
    """The page's error messages as a visitor reads them (the escapes removed)."""
    assert not at.exception, [e.value for e in at.exception]
    return [plain(e.value) for e in at.error]
