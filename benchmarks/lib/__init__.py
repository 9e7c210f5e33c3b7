"""What the benchmark scripts share, one module per idea.

``checkout`` (the repo copied, its commit), ``params`` (``--set`` as ``dvc exp run -S``),
``workers`` (one measurement per fresh interpreter), ``memory`` (peak RSS: a process's own, a
process tree's sampled), ``machine`` (CPU time, library versions) and ``report`` (the JSON).
What only the inference benchmarks share is in ``benchmarks/inference_lib/``.
"""
