"""What every stage's ``main()`` shares: expected errors become one clear line, not a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable

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
