"""Which model directories the demo page may load, and what it tells a visitor about them.

The page is served to anyone who can reach it, so a directory typed on it is untrusted input:
it must not be a way to probe the server's file system or to load whatever Whisper happens
to lie on the host. A typed path is therefore resolved (``..`` collapsed, symlinks followed)
and accepted only inside one of params ``app.model_roots``; everything else gets the same
``REFUSED`` message, whether the path exists or not. Directories listed in params
``app.models`` are the operator's own and are not limited to the roots.

Messages name a directory the way the params file or the visitor wrote it, never by its
absolute path on the server, and any ``OSError`` while looking (unreadable, name too long)
becomes a message instead of an exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from swedish_transcriber.serving.engines.contract import ModelDirError, model_kind

REFUSED = "Not a model directory this page can load."
SHOWN_CHARS = 60  # a typed name longer than this is shortened in messages


@dataclass(frozen=True)
class ModelChoice:
    """A model the page can offer: its label, resolved directory, and why it is unusable (if so).

    ``path`` is resolved (symlinks followed), so a model reached by two spellings is one entry
    in the page's model cache; it is None for a refused typed path.
    """

    label: str
    path: Path | None
    kind: str | None  # "transformers" or "ctranslate2"; None when unusable
    problem: str = ""

    @property
    def available(self) -> bool:
        return self.kind is not None


def shown(name: str) -> str:
    """``name`` as a message shows it: shortened when long (it may be a visitor's 300 chars)."""
    return name if len(name) <= SHOWN_CHARS else name[: SHOWN_CHARS - 1] + "…"


def resolve(path: str | Path, root: Path) -> Path:
    """``path`` relative to ``root`` (unless absolute), ``..`` and symlinks resolved.

    Raises ``OSError``, ``ValueError`` (a NUL byte) or ``RuntimeError`` (a symlink loop).
    """
    return (root / path).resolve()


def _checked(label: str, resolved: Path, name: str) -> ModelChoice:
    """The choice for an existing-or-not directory; problems are messages naming ``name``."""
    try:
        return ModelChoice(label, resolved, model_kind(resolved))
    except ModelDirError as exc:
        return ModelChoice(label, resolved, None, f"{shown(name)}: {exc.reason}")
    except OSError as exc:  # unreadable, name too long, ...
        reason = exc.strerror or type(exc).__name__
        return ModelChoice(label, resolved, None, f"{shown(name)}: cannot be read ({reason})")


def configured_model(label: str, path: str, root: Path) -> ModelChoice:
    """A model that params ``app.models`` lists (``path`` relative to ``root`` unless absolute)."""
    try:
        resolved = resolve(Path(path).expanduser(), root)
    except (OSError, ValueError, RuntimeError) as exc:  # a symlink loop's message has its path
        reason = f"cannot be resolved ({type(exc).__name__})"
        return ModelChoice(label, None, None, f"{shown(path)}: {reason}")
    return _checked(label, resolved, path)


def inside(path: Path, roots: Sequence[Path]) -> bool:
    """Whether the resolved ``path`` is one of the resolved ``roots`` or lies below one."""
    return any(path.is_relative_to(r) for r in roots)


def typed_model(typed: str, root: Path, roots: Sequence[Path]) -> ModelChoice:
    """A directory a visitor typed, relative to ``root`` unless absolute, checked.

    ``roots`` must be resolved already. Outside them (after ``..`` and symlinks) every answer
    is ``REFUSED``, decided before the path is looked at beyond resolving it. Inside them the
    message says what is wrong, naming the path as typed.
    """
    text = typed.strip()
    refused = ModelChoice(shown(text), None, None, REFUSED)
    if not text:
        return refused
    try:
        resolved = resolve(text, root)
    except (OSError, ValueError, RuntimeError):
        return refused
    if not inside(resolved, roots):
        return refused
    return _checked(shown(text), resolved, text)


def load_failure(label: str, exc: BaseException) -> str:
    """The page's message when a checked model still fails to load: no server paths in it.

    Library errors quote absolute paths (of the model, of caches); the full error goes to the
    server's log instead.
    """
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
    return f"{label}: the model cannot be loaded ({reason}); the server's log has the details"
