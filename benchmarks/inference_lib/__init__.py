"""The parts of the inference benchmarks (``benchmarks/inference.py`` and
``faster_whisper_row.py``): the recording, the comparison, the settings, short clips, a worker.

The scripts are the commands; these modules hold what they are made of, so that each can be
read (and tested) on its own. What every benchmark shares (memory, CPU, worker processes,
reports) is in ``benchmarks/lib/``.
"""
