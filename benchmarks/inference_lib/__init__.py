"""The parts of ``benchmarks/inference.py``: the recording, the comparison, the machine, a worker.

``benchmarks/inference.py`` is the command; these modules hold what it is made of, so that
each can be read (and tested) on its own.
"""
