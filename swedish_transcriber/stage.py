"""What every stage's ``main()`` shares: its paths from the command line, clear error lines.

dvc.yaml's ``cmd`` is the one place a stage's paths are written, as in
iterative/example-get-started (``python src/train.py data/features model.pkl``): each stage is
a ``run()`` whose parameters are those paths, in command-line order, and its module docstring
says what each one is. Errors that describe bad input or configuration become one line naming
the stage, not a traceback.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Callable
from pathlib import Path

from swedish_transcriber.params import ParamsError

# Errors that describe bad input or configuration: the message says it all.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (ParamsError, FileNotFoundError, ValueError)


def run_stage(name: str, body: Callable[[], None]) -> None:
    """Run a stage body; print ``<stage>: error: <message>`` and exit 1 on an expected error."""
    try:
        body()
    except EXPECTED_ERRORS as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def stage_name(run: Callable[..., None]) -> str:
    """``augment`` for ``stages.augment.run``, also when the module runs as ``__main__``."""
    module = sys.modules[run.__module__]
    spec = getattr(module, "__spec__", None)
    return (spec.name if spec else run.__module__).rpartition(".")[2]


def parse_paths(run: Callable[..., None], argv: list[str] | None = None) -> dict[str, Path]:
    """``run``'s parameters, one positional path each, from ``argv`` (dvc.yaml's ``cmd``)."""
    module = sys.modules[run.__module__]
    parser = argparse.ArgumentParser(
        prog=f"python -m stages.{stage_name(run)}",
        description=module.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for name in inspect.signature(run).parameters:
        parser.add_argument(name, type=Path)
    return vars(parser.parse_args(argv))


def main(run: Callable[..., None], argv: list[str] | None = None) -> None:
    """A stage's ``main()``: parse its paths, then ``run`` them with clear error lines."""
    paths = parse_paths(run, argv)
    run_stage(stage_name(run), lambda: run(**paths))
