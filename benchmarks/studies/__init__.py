"""One-off studies behind design choices, each with its results in ``studies/results/``.

Not benchmarks a user reruns: each answered one question, and the docs hold its answer
(``train_methods`` and ``forgetting_trials``: docs/forgetting.md; ``rank_weights``:
docs/review.md). They stay runnable, as ``python benchmarks/studies/<name>.py`` or
``python -m benchmarks.studies.<name>``, so that a figure there can be traced and remade.
"""
