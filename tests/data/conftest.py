"""Fixtures of the tests of the data layer (releases, ingest, validation, augmentation,
features, test sets, the decoder).

None of their own yet: they use the shared ones in ``tests/conftest.py``. A fixture two of
this folder's test files need goes here, not in a test module.
"""
