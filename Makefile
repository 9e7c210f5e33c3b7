# The Quickstart commands (README): `make repro`, `make test` and `make test-fast`.
# Each sets everything up first (scripts/setup.sh is idempotent and quick when done).
SHELL := /bin/bash
VENV := .venv/bin
# Python's byte-code cache on, whatever the shell says: `dvc repro` and the tests start a
# Python process per stage, and each would compile the package again (about 0.7 s of CPU).
# .gitignore and .dvcignore leave __pycache__/ out of git and of every stage's deps.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: setup repro test test-fast lint bench bench-inference gpu-check

setup:
	@bash scripts/setup.sh

# The pipeline needs no browser: chromium is for the browser test alone.
repro:
	@SETUP_BROWSER=0 bash scripts/setup.sh
	source $(VENV)/activate && dvc repro

# Everything, slow tests included, on both cores: a test file per worker, the costliest files
# first (tests/conftest.py orders them), so the `dvc repro` integration file is not the tail.
test: setup
	source $(VENV)/activate && ruff check . && pytest -q -n 2 --dist loadfile

# The quick tier while editing: everything but the tests marked slow (training runs,
# dvc repro, the browser, DDP, subprocess-heavy checks), on both cores (a test file per worker, so module fixtures
# are built once). `make test` (and CI) runs them all.
test-fast: setup
	source $(VENV)/activate && ruff check . && pytest -q -n 2 --dist loadfile -m "not slow"

lint: setup
	source $(VENV)/activate && ruff check . && ruff format --check .

bench: setup
	source $(VENV)/activate && python benchmarks/data_pipeline.py

bench-inference: setup
	source $(VENV)/activate && python benchmarks/inference.py

# On a GPU machine: the cv-small-gpu preset's knobs (bf16, SpecAugment, checkpointing) on the
# embedded base model, 300 steps, killed and resumed (benchmarks/gpu_check.sh; DRY_RUN=1 on a CPU).
gpu-check: setup
	source $(VENV)/activate && bash benchmarks/gpu_check.sh
