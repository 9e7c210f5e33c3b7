"""DVCLive logging from the Trainer, keyed by the optimizer step.

transformers ships a ``DVCLiveCallback``, but it advances DVCLive's step once per log event,
so training-loss and evaluation logs interleave on one counter and "WER vs step" is not WER
vs step. This callback sets DVCLive's step to ``state.global_step`` instead, keeps only the
metrics that are deterministic given the params (no run times or throughput, which would
make ``dvc metrics diff`` noisy), and truncates the logs to the checkpoint a resumed run
starts from, so a killed-and-resumed run leaves the same logs as an uninterrupted one.
"""

from __future__ import annotations

import csv
from pathlib import Path

from transformers import TrainerCallback

# Trainer log key -> DVCLive metric name (plots under dvclive/plots/metrics/<name>.tsv).
LOGGED = {
    "loss": "train/loss",
    "learning_rate": "train/learning_rate",
    "grad_norm": "train/grad_norm",
    "distill_ce": "train/distill_ce",  # train.distill: the loss's two parts
    "distill_kl": "train/distill_kl",
    "eval_loss": "eval/loss",
    "eval_wer": "eval/wer",
    "eval_cer": "eval/cer",
    "eval_wer_norm": "eval/wer_norm",
    "eval_cer_norm": "eval/cer_norm",
}


def truncate_logs(live_dir: Path, last_step: int) -> None:
    """Drop rows logged after ``last_step`` (work lost with a killed run, to be redone)."""
    for tsv in (live_dir / "plots" / "metrics").rglob("*.tsv"):
        with tsv.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
            fields = list(rows[0].keys()) if rows else None
        if fields is None:
            continue
        kept = [r for r in rows if int(r["step"]) <= last_step]
        with tsv.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields, delimiter="\t", lineterminator="\n")
            writer.writeheader()
            writer.writerows(kept)


class DVCLiveStepCallback(TrainerCallback):
    """Log the Trainer's metrics to DVCLive at the Trainer's global step (main process only)."""

    def __init__(self, live_dir: Path) -> None:
        self.live_dir = Path(live_dir)
        self.live = None

    def open(self, resume_step: int | None) -> None:
        """Start logging (main process only): afresh, or after ``resume_step``'s checkpoint."""
        from scmrepo.exceptions import SCMError

        from dvclive import Live

        if resume_step is not None:
            truncate_logs(self.live_dir, resume_step)
        # dvc.yaml declares the metrics and plots itself; DVCLive must not edit it or make
        # an experiment of its own (the stage already runs inside `dvc repro`/`dvc exp run`).
        try:
            self.live = Live(
                dir=str(self.live_dir),
                resume=resume_step is not None,
                save_dvc_exp=False,
                dvcyaml=None,
                report=None,
            )
        except SCMError as exc:
            raise ValueError(
                f"DVCLive cannot start ({exc}): the project must be a git repository with at "
                f"least one commit (git add -A && git commit)"
            ) from exc
        if resume_step is not None:
            self.live.step = resume_step  # DVCLive would count on from its last summary

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or self.live is None:
            return
        live = self.live
        values = {LOGGED[k]: float(v) for k, v in logs.items() if k in LOGGED}
        if not values:
            return
        live.step = state.global_step
        for name, value in values.items():
            live.log_metric(name, value)
        live.make_summary()

    def on_train_end(self, args, state, control, **kwargs):
        if self.live is not None and state.is_world_process_zero:
            self.live.make_summary()

    def finish(self) -> None:
        """Close DVCLive (after the final evaluation has been logged)."""
        if self.live is not None:
            self.live.end()
            self.live = None
