"""Seconds per optimizer step of each fine-tuning method, on the real whisper-base, on this CPU.

Usage (repo root, .venv active; needs a whisper-base checkpoint such as models/base from
``dvc repro base_model``):

    python benchmarks/studies/train_methods.py      # models/base, 5 timed steps each
    python benchmarks/studies/train_methods.py models/base --steps 3 \
        --methods decoder lora_r8_decoder

Each method runs the train stage's own step: the project's ``WhisperTrainer`` (the
``Seq2SeqTrainer`` subclass of the train stage) with ``train.trainable``, LoRA and the
distillation teacher set up by the same functions the stage uses, batch 8 (``--batch``), fp32,
deterministic kernels. Inputs are random log-mel frames and random 20-token labels (the
step's cost does not depend on the values); where the stage would train on stored encoder
states (``cache_encoder_outputs: true``), the batch holds them, computed once by the frozen
base encoder, as in the stage. One warm-up step, then ``--steps`` timed steps (forward,
backward, optimizer): the median and mean go to the table. The one-off cost of building the
cache (the encoder pass, per clip) is measured too.

Methods:

* ``decoder``: today's default: the decoder trains on cached encoder outputs;
* ``cross_attention``: only the decoder's cross-attention blocks, cached encoder outputs;
* ``encoder_top2``: the top 2 encoder layers + final norm on cached lower-layer states;
* ``encoder_top2_decoder``: the same and the whole decoder;
* ``lora_r8_decoder``: LoRA rank 8 on the decoder's q_proj and v_proj, cached outputs;
* ``distill_w1``: the decoder with distillation weight 1 (the frozen base as teacher);
* ``decoder_uncached``: the decoder with the whole frozen encoder run in every step
  (``cache_encoder_outputs: false``), for reference; not in the default list (slow).

Other processes on the machine slow every row alike only if their load is steady: the JSON
records the load average before and after.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.lib.checkout import REPO
from swedish_transcriber.params import section

DEFAULT_MODEL = REPO / "models" / "base"
METHODS: dict[str, dict] = {
    "decoder": {"trainable": ["decoder"]},
    "cross_attention": {"trainable": ["cross_attention"]},
    "encoder_top2": {"trainable": ["encoder_top"], "encoder_top_layers": 2},
    "encoder_top2_decoder": {"trainable": ["encoder_top", "decoder"], "encoder_top_layers": 2},
    "lora_r8_decoder": {
        "trainable": ["decoder"],
        "lora": {"rank": 8, "alpha": 16.0, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
    },
    "distill_w1": {
        "trainable": ["decoder"],
        "distill": {"weight": 1.0, "temperature": 2.0, "teacher_context": "padded"},
    },
    "decoder_uncached": {"trainable": ["decoder"], "cache_encoder_outputs": False},
}
DEFAULT_METHODS = [m for m in METHODS if m != "decoder_uncached"]
LABEL_TOKENS = 20


def method_params(name: str, batch: int):
    """The repo's ``train`` params with the method's changes (the dataclasses check them)."""
    from swedish_transcriber.model.training.params import DistillParams, LoraParams, TrainParams

    base = section("train", TrainParams, REPO / "params.yaml")
    changes = dict(METHODS[name])
    if "lora" in changes:
        changes["lora"] = LoraParams(**changes["lora"])
    if "distill" in changes:
        changes["distill"] = DistillParams(**changes["distill"])
    return dataclasses.replace(base, batch_size=batch, gradient_accumulation_steps=1, **changes)


def random_rows(model, batch: int, seed: int) -> tuple[list[dict], dict[str, float]]:
    """``batch`` clips: random log-mel, random labels; encoder states by the base encoder.

    The log-mel rows are stored as featurize stores them: a 5 s clip's own frames (frames x
    mels) and a pad value; the collator pads them to the 30 s window, as in training.
    """
    from swedish_transcriber.data.features import stored_frames
    from swedish_transcriber.model.encoder_cache import _encode

    generator = torch.Generator().manual_seed(seed)
    mels = int(model.config.num_mel_bins)
    frames = stored_frames(5 * 16_000, 2 * int(model.config.max_source_positions))
    features = (0.5 * torch.randn(batch, frames, mels, generator=generator)).to(torch.float16)
    pads = [-1.0] * batch
    sot = int(model.config.decoder_start_token_id)
    eot = int(model.config.eos_token_id)
    text = torch.randint(0, 50000, (batch, LABEL_TOKENS - 2), generator=generator)
    labels = [[sot, *row.tolist(), eot] for row in text]
    rows = [
        {"input_features": f.numpy(), "pad_value": pad, "labels": lab}
        for f, pad, lab in zip(features, pads, labels, strict=True)
    ]
    columns = {"input_features": features.numpy(), "pad_value": pads, "labels": labels}
    timing = {}
    states: dict[str, list] = {}
    for key, below in (("encoder_hidden_states", None), ("encoder_lower_states", -2)):
        layer = None if below is None else int(model.config.encoder_layers) + below
        start = time.perf_counter()
        out = _encode(columns, model, torch.device("cpu"), layer)
        timing[f"{key}_s_per_clip"] = round((time.perf_counter() - start) / batch, 3)
        states[key] = list(out[key])
    for i, row in enumerate(rows):
        row["encoder_hidden_states"] = states["encoder_hidden_states"][i]
        row["encoder_lower_states"] = states["encoder_lower_states"][i]
    return rows, timing


class Rows(torch.utils.data.Dataset):
    """The same ``batch`` rows over and over, with only the columns the method's step reads."""

    def __init__(self, rows: list[dict], key: str, length: int) -> None:
        extra = ["pad_value"] if key == "input_features" else []
        self.rows = [{k: r[k] for k in (key, *extra, "labels")} for r in rows]
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        return self.rows[index % len(self.rows)]


def time_method(name: str, model_dir: Path, rows: list[dict], steps: int, batch: int) -> dict:
    """Median and mean seconds per optimizer step of one method (after one warm-up step)."""
    from transformers import (
        Seq2SeqTrainingArguments,
        TrainerCallback,
        WhisperForConditionalGeneration,
        set_seed,
    )

    from swedish_transcriber.model.collator import SpeechSeq2SeqCollator
    from swedish_transcriber.model.training.distill import load_teacher
    from swedish_transcriber.model.training.lora import apply_lora
    from swedish_transcriber.model.training.trainable import apply_trainable, check_against_model
    from swedish_transcriber.model.training.trainer import WhisperTrainer

    params = method_params(name, batch)
    model = WhisperForConditionalGeneration.from_pretrained(model_dir, dropout=params.dropout)
    check_against_model(model, params)
    apply_trainable(model, params)
    if params.lora.enabled:
        set_seed(params.seed)
        model = apply_lora(model, params)
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    teacher = load_teacher(model_dir, torch.device("cpu")) if params.distill.enabled else None
    if params.uses_encoder_cache:
        key = "encoder_hidden_states"
    elif params.uses_lower_encoder_cache:
        key = "encoder_lower_states"
    else:
        key = "input_features"

    marks: list[float] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            marks.append(time.perf_counter())

        def on_step_end(self, args, state, control, **kwargs):
            marks.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as tmp:
        args = Seq2SeqTrainingArguments(
            output_dir=tmp,
            max_steps=steps + 1,
            per_device_train_batch_size=batch,
            learning_rate=params.learning_rate,
            warmup_steps=0,
            save_strategy="no",
            eval_strategy="no",
            logging_strategy="no",
            report_to=[],
            disable_tqdm=True,
            remove_unused_columns=False,
            label_names=["labels"],
            use_cpu=True,
            seed=params.seed,
            dataloader_num_workers=0,
        )
        trainer = WhisperTrainer(
            model=model,
            args=args,
            train_dataset=Rows(rows, key, batch * (steps + 1)),
            data_collator=SpeechSeq2SeqCollator(
                pad_token_id=int(model.config.pad_token_id),
                decoder_start_token_id=int(model.config.decoder_start_token_id),
            ),
            callbacks=[Clock()],
            top_layers=params.encoder_top_layers if params.uses_lower_encoder_cache else 0,
            teacher=teacher,
            distill_weight=params.distill.weight,
            distill_temperature=params.distill.temperature,
        )
        trainer.train()
    durations = [marks[i + 1] - marks[i] for i in range(0, len(marks), 2)][1:]  # no warm-up
    return {
        "method": name,
        "changes": METHODS[name],
        "input": key,
        "trained_parameters": trained,
        "s_per_step_median": round(statistics.median(durations), 3),
        "s_per_step_mean": round(statistics.fmean(durations), 3),
        "steps": [round(d, 3) for d in durations],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, nargs="?", default=DEFAULT_MODEL)
    parser.add_argument("--steps", type=int, default=5, help="timed optimizer steps per method")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=DEFAULT_METHODS)
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks/studies/results/train_methods.json"
    )
    args = parser.parse_args(argv)
    if not (args.model / "config.json").is_file():
        raise SystemExit(f"{args.model}: no transformers checkpoint (run `dvc repro base_model`)")

    from transformers import WhisperForConditionalGeneration

    from swedish_transcriber.model.training.fine_tune import use_deterministic_kernels

    use_deterministic_kernels()  # as the train stage does
    load_before = os.getloadavg()
    base = WhisperForConditionalGeneration.from_pretrained(args.model).eval()
    rows, cache_cost = random_rows(base, args.batch, seed=0)
    del base
    results = []
    for name in args.methods:
        result = time_method(name, args.model, rows, args.steps, args.batch)
        print(
            f"{name:22s} {result['s_per_step_median']:7.2f} s/step (median; mean "
            f"{result['s_per_step_mean']:.2f}), {result['trained_parameters'] / 1e6:.2f} M "
            f"trained parameters, input {result['input']}",
            flush=True,
        )
        results.append(result)
    report = {
        "command": " ".join(
            ["python", "benchmarks/studies/train_methods.py", *(argv or sys.argv[1:])]
        ),
        "model": str(args.model),
        "batch": args.batch,
        "label_tokens": LABEL_TOKENS,
        "timed_steps": args.steps,
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cache_build": cache_cost,
        "methods": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"cache build (once per clip): {cache_cost}; written to {args.out}")


if __name__ == "__main__":
    main()
