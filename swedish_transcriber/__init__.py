"""Swedish Transcriber: shared logic for the DVC pipeline that fine-tunes Whisper on Swedish.

Each stage in ``stages/`` is a thin ``main()`` that reads its own ``params.yaml`` section and
calls into this package, so that the logic is importable, unit-testable and never copied
between stages.
"""

__version__ = "0.1.0"
