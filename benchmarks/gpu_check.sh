#!/usr/bin/env bash
# The cv-small-gpu preset's GPU knobs on one GPU (benchmarks/gpu_check.py says what and why):
# the embedded whisper-base on the demo corpus, whole model trained, precision auto (bf16 on
# Ampere or newer), SpecAugment, gradient checkpointing, 300 steps, killed after step 150
# and resumed. Reports samples/s, peak GPU memory and whether the resumed run ends as the
# uninterrupted one; JSON to $OUT/gpu_check.json (else benchmarks/results/gpu_check.json).
#
#   bash benchmarks/gpu_check.sh             # on the GPU machine, after `make setup`
#   DRY_RUN=1 bash benchmarks/gpu_check.sh   # tiny random model, 6 steps: checks the script
#
# Extra args go to gpu_check.py (e.g. --base-model models/base --features data/features to
# skip building the demo corpus). WORK sets the scratch folder (default /tmp/gpu_check).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${VIRTUAL_ENV:-}" ] && [ -f .venv/bin/activate ]; then
  source .venv/bin/activate
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
args=()
if [ -n "${DRY_RUN:-}" ]; then
  args+=(--dry-run)
fi
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
exec python benchmarks/gpu_check.py check "${args[@]}" "$@"
