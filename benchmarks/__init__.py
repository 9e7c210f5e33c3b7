"""The benchmarks users run (``python benchmarks/<name>.py``); what they share in lib/, what
the inference benchmarks share in inference_lib/, one-off studies in studies/.

A package so that the editable install makes ``benchmarks.lib`` and the rest importable from
any script here, with no ``sys.path`` edits.
"""
