"""The benchmarks users run (``python benchmarks/<name>.py``); shared parts in inference_lib/.

A package so that the editable install makes ``benchmarks.inference_lib`` importable from any
script here, with no ``sys.path`` edits.
"""
