# The two Quickstart commands (README): `make repro` and `make test`.
# Both set everything up first (scripts/setup.sh is idempotent and quick when done).
SHELL := /bin/bash
VENV := .venv/bin

.PHONY: setup repro test test-fast lint bench bench-inference

setup:
	@bash scripts/setup.sh

repro: setup
	source $(VENV)/activate && dvc repro

test: setup
	source $(VENV)/activate && ruff check . && pytest -q

# The quick tier while editing: everything but the tests marked slow (training runs,
# dvc repro, the browser, DDP). `make test` (and CI) still runs them all.
test-fast: setup
	source $(VENV)/activate && ruff check . && pytest -q -m "not slow"

lint: setup
	source $(VENV)/activate && ruff check . && ruff format --check .

bench: setup
	source $(VENV)/activate && python benchmarks/data_pipeline.py

bench-inference: setup
	source $(VENV)/activate && python benchmarks/inference.py
