"""The page's model paths: typed directories are confined to params ``app.model_roots``.

Fake model directories (the files ``model_kind`` looks for) keep these tests fast; the page
itself is driven with real tiny models in ``test_app.py``.
"""

from __future__ import annotations

import errno
import pathlib
from pathlib import Path

import pytest

from swedish_transcriber.evaluation.transcription import load_model
from swedish_transcriber.serving import page
from swedish_transcriber.serving.engines.contract import (
    CTRANSLATE2,
    TRANSFORMERS,
    ModelDirError,
    model_kind,
)
from swedish_transcriber.serving.model_paths import (
    REFUSED,
    configured_model,
    load_failure,
    typed_model,
)
from tests.messages import assert_names, raises_naming
from tests.repo_params import PARAMS_FILE, REPO, dotted, write_params
from tests.tiny import save_tiny_base, tiny_whisper

LONG = "a" * 300  # over the 255 bytes a file name may have


def fake_ct2(path: Path) -> Path:
    """A directory ``model_kind`` takes for a CTranslate2 model."""
    path.mkdir(parents=True)
    (path / "model.bin").write_bytes(b"ct2")
    (path / "preprocessor_config.json").write_text("{}")
    return path


@pytest.fixture
def repo(tmp_path) -> Path:
    """A repo root with ``models/`` (the root) and, beside it, model directories outside."""
    root = tmp_path / "repo"
    fake_ct2(root / "models" / "good")
    fake_ct2(tmp_path / "outside" / "model")
    (tmp_path / "outside" / "file.txt").write_text("secret")
    (root / "data").mkdir()
    return root


def typed(repo: Path, text: str):
    return typed_model(text, repo, [(repo / "models").resolve()])


def test_a_model_inside_the_roots_loads_by_relative_or_absolute_path(repo):
    for text in (
        "models/good",
        str(repo / "models" / "good"),
        " models/good/ ",
        "models/x/../good",
    ):
        choice = typed(repo, text)
        assert choice.available and choice.kind == CTRANSLATE2, text
        assert choice.path == (repo / "models" / "good").resolve()


@pytest.mark.parametrize(
    "text",
    [
        "../outside/model",  # an existing model just outside the roots
        "models/../../outside/model",
        "models/../data",
        "models/../../outside/file.txt",  # an existing file
        "models/../../outside/missing",
        "models/../../" + LONG,
        "/etc",
        "/",
        "/" + LONG,
        "/nowhere/at/all",
        "~/x",  # relative: a directory named "~" under the repo root, outside models/
        "models/nul\0byte",
        "",
        "   ",
    ],
)
def test_anything_outside_the_roots_gets_one_message_that_does_not_say_if_it_exists(repo, text):
    choice = typed(repo, text)
    assert not choice.available and choice.path is None
    assert choice.problem == REFUSED


def test_the_outside_paths_are_indistinguishable(repo):
    outside = repo.parent / "outside"
    answers = {
        typed(repo, str(p)).problem
        for p in (outside / "model", outside / "file.txt", outside / "missing", outside)
    }
    assert answers == {REFUSED}


def test_an_absolute_path_outside_the_roots_is_refused(repo):
    assert typed(repo, str(repo.parent / "outside" / "model")).problem == REFUSED
    assert typed(repo, str(repo)).problem == REFUSED  # the repo root holds the roots


def test_symlinks_out_of_the_roots_are_refused(repo):
    models = repo / "models"
    (models / "escape").symlink_to(repo.parent / "outside" / "model")
    (models / "up").symlink_to(repo.parent / "outside")
    (models / "alias").symlink_to(models / "good")
    (models / "loop").symlink_to(models / "loop")
    for text in ("models/escape", "models/up/model", "models/up/missing", "models/loop"):
        assert typed(repo, text).problem == REFUSED, text
    # A link that stays inside is followed: the resolved directory is the model's identity.
    alias = typed(repo, "models/alias")
    assert alias.available and alias.path == typed(repo, "models/good").path


def test_a_root_that_is_itself_a_symlink_is_compared_resolved(repo, tmp_path):
    real = fake_ct2(tmp_path / "store" / "m").parent
    link = repo / "linked-models"
    link.symlink_to(real)
    choice = typed_model("linked-models/m", repo, [link.resolve()])
    assert choice.available and choice.path == (real / "m").resolve()


def test_problems_inside_the_roots_are_messages_naming_the_path_as_typed(repo):
    missing = typed(repo, "models/missing")
    assert_names(missing.problem, "models/missing")
    (repo / "models" / "empty").mkdir()
    # The directory, and the files a model would have.
    assert_names(typed(repo, "models/empty").problem, "models/empty", "model.safetensors")
    long = typed(repo, "models/" + LONG)  # Path.is_dir raises ENAMETOOLONG here
    assert not long.available
    assert_names(long.problem, "File name too long")  # the OS's reason
    assert len(long.problem) < 120  # the visitor's 300 characters are shortened
    for choice in (missing, long):
        assert str(repo) not in choice.problem


def test_an_unreadable_directory_is_a_message(repo, monkeypatch):
    """chmod 000 blocks nothing for root (the tests' user), so the OSError is simulated:
    ``Path.stat`` (under ``is_dir``/``is_file``) fails for the locked directory as it would for
    a user without permission."""
    locked = fake_ct2(repo / "models" / "locked")
    real_stat = pathlib.Path.stat

    def stat(self, *args, **kwargs):
        if self == locked or locked in self.parents:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_stat(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "stat", stat)
    choice = typed(repo, "models/locked")
    assert not choice.available
    assert_names(choice.problem, "models/locked", "Permission denied")
    assert str(repo) not in choice.problem
    assert typed(repo, "models/good").available  # the rest still works


def test_pickled_weights_are_refused(repo):
    pickled = repo / "models" / "pickled"
    pickled.mkdir()
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    (pickled / "preprocessor_config.json").write_text("{}")
    choice = typed(repo, "models/pickled")
    assert not choice.available and "pytorch_model.bin" in choice.problem
    assert "safetensors" in choice.problem
    with raises_naming(ModelDirError, pickled, "pytorch_model.bin", "model.safetensors"):
        model_kind(pickled)


def test_the_transformers_loader_reads_safetensors_only(tmp_path):
    """The transcribe stage loads with ``load_model`` directly, without ``model_kind``."""
    safe = save_tiny_base(tmp_path / "safe")
    assert model_kind(safe) == TRANSFORMERS
    load_model(safe, "sv", "transcribe")
    pickled = save_tiny_base(tmp_path / "pickled")
    (pickled / "model.safetensors").unlink()
    tiny_whisper().save_pretrained(pickled, safe_serialization=False)
    assert (pickled / "pytorch_model.bin").is_file()
    with pytest.raises(OSError, match="model.safetensors"):
        load_model(pickled, "sv", "transcribe")


def test_configured_models_are_named_as_the_params_file_writes_them(repo):
    ok = configured_model("ct2", "models/good", repo)
    assert ok.available and ok.path == (repo / "models" / "good").resolve()
    # The operator's own list is not confined to the roots.
    assert configured_model("outside", "../outside/model", repo).available
    missing = configured_model("missing", "models/not-built", repo)
    assert_names(missing.problem, "models/not-built")  # as written, not resolved
    assert str(repo) not in missing.problem
    (repo / "models" / "loop").symlink_to(repo / "models" / "loop")
    loop = configured_model("loop", "models/loop", repo)
    assert_names(loop.problem, "models/loop", "RuntimeError")
    assert str(repo) not in loop.problem


def test_a_load_failure_message_names_no_server_path(repo):
    path = repo / "models" / "good" / "model.bin"
    message = load_failure("tiny", PermissionError(errno.EACCES, "Permission denied", str(path)))
    assert_names(message, "tiny", "Permission denied")
    assert str(repo) not in message
    message = load_failure("tiny", RuntimeError(f"bad header in {path}"))
    assert "RuntimeError" in message and str(repo) not in message


@pytest.mark.parametrize(
    ("app", "facts"),
    [  # the keys, and the value where it is the wrong kind
        ({"model_roots": ["models", " "]}, ["app", "model_roots"]),
        ({"allow_other_directories": True, "model_roots": []}, ["model_roots"]),
        ({"allow_other_directories": "yes"}, ["app.allow_other_directories", "'yes'"]),
    ],
)
def test_the_params_keys_are_checked(tmp_path, app, facts):
    path = write_params(tmp_path, dotted("app", app), base=PARAMS_FILE)
    with raises_naming(ValueError, path, *facts):
        page.load_config(path)


def test_the_shipped_params_hide_other_directories_and_name_the_roots():
    config = page.load_config(REPO / "params.yaml")
    assert config.app.allow_other_directories is False
    assert config.model_roots() == [(REPO / "models").resolve()]
