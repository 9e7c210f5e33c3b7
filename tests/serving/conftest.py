"""Fixtures of the serving tests (the page, its engines, media and links)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from swedish_transcriber.serving import page
from tests.page_checks import APP, CT2_LABEL, MISSING_LABEL, REPO_PARAMS, TRANSFORMERS_LABEL
from tests.repo_params import write_params


@pytest.fixture(scope="module")
def params_file(tmp_path_factory) -> Path:
    """A params file whose ``app`` section offers tiny models and has small limits."""
    from swedish_transcriber.model.export import export_ct2
    from tests.tiny import save_tiny_base

    root = tmp_path_factory.mktemp("app")
    base = save_tiny_base(root / "models" / "tiny")
    export_ct2(base, root / "models" / "tiny-ct2", "int8")
    params = {
        "model": {"source": "unused", "language": "sv", "task": "transcribe"},
        "decode": REPO_PARAMS["decode"],
        "app": {
            "models": {
                TRANSFORMERS_LABEL: "models/tiny",
                CT2_LABEL: str(root / "models" / "tiny-ct2"),  # absolute paths work too
                MISSING_LABEL: "models/ct2-not-there",
            },
            "limits": {**REPO_PARAMS["app"]["limits"], "max_upload_mb": 3.0, "max_seconds": 90.0},
            "chunks": {**REPO_PARAMS["app"]["chunks"], "chunk_seconds": 30.0},
            "decode": {**REPO_PARAMS["app"]["decode"], "max_new_tokens": 8},
            "engine": {**REPO_PARAMS["app"]["engine"], "ct2_compute_type": "int8"},
            "allow_other_directories": True,
            "model_roots": ["models"],
            "allow_private_urls": True,  # test_url.py's media server is on 127.0.0.1
            "url_socket_timeout": 2.0,
            "url_download_timeout": 10.0,
        },
        "review": REPO_PARAMS["review"],  # review.page: the review page's (test_review_page)
    }
    return write_params(root, base=params)


@pytest.fixture
def app(params_file, monkeypatch) -> AppTest:
    """The demo page on ``params_file``, run once."""
    monkeypatch.setenv(page.PARAMS_ENV, str(params_file))
    return AppTest.from_file(APP, default_timeout=120).run()
