#!/usr/bin/env bash
# Write a Markdown report comparing this workspace's pipeline results with a git revision:
#   scripts/metrics_report.sh <base rev> <out dir>
# -> <out dir>/report.md (dvc metrics diff and params diff as tables) and
#    <out dir>/plots/ (dvc plots diff: dev WER and loss vs step, WER by slice, synthetic vs
#    real WER, as HTML + Vega).
# The pull-request workflow posts report.md as a comment; run it locally the same way.
set -euo pipefail
base=${1:?usage: scripts/metrics_report.sh <base rev> <out dir>}
out=${2:?usage: scripts/metrics_report.sh <base rev> <out dir>}
mkdir -p "$out"
{
  echo "## Pipeline metrics: \`$base\` vs this branch"
  echo
  echo "### Metrics (test WER/CER of every model on every test set, as \`set.model.rate\`; dev metrics from training)"
  echo
  dvc metrics diff "$base" --all --md
  echo
  echo "### Params that differ"
  echo
  dvc params diff "$base" --md
  echo
  echo "Plots (dev WER vs step, loss vs step, WER by slice, synthetic vs real WER): see the"
  echo "workflow's \`plots\` artifact."
} >"$out/report.md"
dvc plots diff "$base" --out "$out/plots" >/dev/null
# The WER curve as a Vega-Lite spec too (render it with vl2png, or paste it into the Vega editor).
dvc plots diff "$base" --targets "dev WER vs step" --show-vega >"$out/plots/dev_wer_vs_step.vega.json"
# One point per model and revision: did fine-tuning on synthetic speech cost WER on real speech?
dvc plots diff "$base" --targets "synthetic vs real WER" --show-vega \
  >"$out/plots/synthetic_vs_real_wer.vega.json"
echo "metrics_report: wrote $out/report.md and $out/plots/"
