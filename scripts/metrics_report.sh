#!/usr/bin/env bash
# Write a Markdown report comparing this workspace's pipeline results with a git revision:
#   scripts/metrics_report.sh <base rev> <out dir>
# -> <out dir>/report.md: first one table of test WER_norm per set and model with its 95 %
#    interval and the change against <base rev> with its paired interval
#    (swedish_transcriber/evaluation/pr_report.py); below it every other figure (dvc metrics
#    diff of the test scores, dev metrics and validation counts) and the params that differ;
#    <out dir>/plots/ (dvc plots diff: dev WER and loss vs step, WER by slice, synthetic vs
#    real WER, as HTML + Vega).
# The pull-request workflow posts report.md as a comment; run it locally the same way.
set -euo pipefail
base=${1:?usage: scripts/metrics_report.sh <base rev> <out dir>}
out=${2:?usage: scripts/metrics_report.sh <base rev> <out dir>}
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The base's files from git (empty where the base has none: the table then says so).
git show "$base:metrics/eval.json" >"$tmp/eval.json" 2>/dev/null || : >"$tmp/eval.json"
git show "$base:metrics/clip_errors.csv" >"$tmp/clip_errors.csv" 2>/dev/null || : >"$tmp/clip_errors.csv"
{
  echo "## Pipeline metrics: \`$base\` vs this branch"
  echo
  echo "### Test WER_norm with its 95 % interval, and the change against \`$base\`"
  echo
  python -m swedish_transcriber.evaluation.pr_report metrics/eval.json metrics/clip_errors.csv \
    "$tmp/eval.json" "$tmp/clip_errors.csv"
  echo
  echo "A change is marked **≠ 0** where its paired bootstrap interval (the same clips resampled"
  echo "for both revisions, \`evaluate.bootstrap\`) excludes 0; other changes are within noise."
  echo
  echo "### Every other figure (test scores of every model, dev metrics, validation counts)"
  echo
  dvc metrics diff "$base" --md \
    --targets metrics/wer.json metrics/eval.json dvclive/metrics.json reports/validation.json
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
