"""Fixtures of the tests of review (the rank stage's queue, the decisions file and how it is
applied, and the review page).

None of their own yet: they use the shared ones in ``tests/conftest.py``. A fixture two of
this folder's test files need goes here, not in a test module.
"""
