"""Fixtures of the tests of the pipeline as a whole (dvc.yaml and its deps, params and
presets, outputs, `dvc repro` end to end, the test suite's own layout).

None of their own yet: they use the shared ones in ``tests/conftest.py``. A fixture two of
this folder's test files need goes here, not in a test module.
"""
