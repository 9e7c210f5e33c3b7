"""Fine-tuning Whisper with transformers' ``Seq2SeqTrainer``: checks, resume, outputs.

What this adds to a plain Trainer script, and why:

* every input is checked before the first step (processor present, splits not empty,
  GPU-only precision on a GPU), so a bad run fails in seconds, not after the encoder cache;
* checkpoints live in a persistent folder stamped with a fingerprint of everything that
  decides the result (train params, base model, features): a killed run resumes from its
  newest checkpoint, while a changed experiment starts over instead of resuming someone
  else's optimizer;
* ``train.trainable`` picks the parts that train (:mod:`.trainable`); with a frozen encoder
  the decoder trains on stored encoder outputs, with only the top encoder layers trained the
  step starts from stored lower-layer states
  (:mod:`swedish_transcriber.model.encoder_cache`, :mod:`.encoder_top`);
* LoRA adapters (:mod:`.lora`) are merged into the weights before writing, and distillation
  towards the base model (:mod:`.distill`) adds a KL term to the loss (:mod:`.trainer`);
* ``whisper.context: clip`` trains on each clip's own context
  (:class:`~swedish_transcriber.whisper.EncoderContext`) in batches of one context length
  (:mod:`.length_buckets`); the model records the context in its config, so the transcribe
  stages and the page serve it that way;
* DVCLive logs train loss, dev loss and dev WER against the optimizer step
  (:mod:`.live_logging`);
* the result is a plain transformers checkpoint with its processor and Swedish generation
  config, written atomically: ``from_pretrained`` alone loads it.

It runs unchanged under ``torchrun`` (DDP through the Trainer; gloo on CPUs).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import datasets
import numpy as np
import torch

from swedish_transcriber.atomic import atomic_dir
from swedish_transcriber.data.features import load_processor, load_split, stored_frames_of
from swedish_transcriber.evaluation.scoring import scores
from swedish_transcriber.model.collator import SpeechSeq2SeqCollator
from swedish_transcriber.model.encoder_cache import (
    build as build_encoder_cache,
)
from swedish_transcriber.model.encoder_cache import (
    read_fingerprint,
    tree_digest,
    write_fingerprint,
)
from swedish_transcriber.model.training.distill import load_teacher
from swedish_transcriber.model.training.encoder_top import first_trained_layer
from swedish_transcriber.model.training.live_logging import DVCLiveStepCallback
from swedish_transcriber.model.training.lora import (
    apply_lora,
    is_peft,
    load_adapter_checkpoint,
    merged,
)
from swedish_transcriber.model.training.params import TrainParams, cuda_support, resolve_precision
from swedish_transcriber.model.training.trainable import apply_trainable, check_against_model
from swedish_transcriber.model.training.trainer import WhisperTrainer
from swedish_transcriber.own_context import own_context
from swedish_transcriber.whisper import CONTEXT_KEY, PADDED, EncoderContext

# Environment variable for fault-injection tests: SIGKILL this process right after the
# optimizer step with this number (a real kill: no cleanup code runs).
KILL_AT_STEP_ENV = "SWEDISH_TRANSCRIBER_KILL_AT_STEP"


@dataclass(frozen=True)
class TrainPaths:
    """Where the train stage reads and writes (dvc.yaml's deps and outs, its command line)."""

    base_model: Path  # models/base
    features: Path  # data/features (train and dev)
    output: Path  # models/trained
    checkpoints: Path  # resume points and the encoder cache
    live: Path  # DVCLive's metrics and plots
    # Train clips left out (original paths; their augmented copies go with them): the
    # retrain stage's auto-excluded top of the review queue. Empty: every train row trains.
    exclude: frozenset[str] = frozenset()
    # Another run's encoder cache folder (the train stage's, read by the retrain stage): used
    # when its fingerprint fits these inputs, so a retrain does not encode every clip again.
    shared_encoder_cache: Path | None = None


def origin(path: str) -> str:
    """The original clip of a train row: ``x.mp3`` for itself and for ``x.aug2.flac``."""
    name = Path(path).name
    stem, dot, rest = name.partition(".aug")
    if dot and rest.removesuffix(".flac").isdigit():
        return stem
    return Path(name).stem


def kept_rows(table: datasets.Dataset, exclude: frozenset[str]) -> list[int]:
    """Rows of a train table whose original clip is not in ``exclude`` (every row if empty)."""
    if not exclude:
        return list(range(len(table)))
    stems = {Path(p).stem for p in exclude}
    return [i for i, p in enumerate(table["path"]) if origin(str(p)) not in stems]


def dev_subset(table: datasets.Dataset, max_clips: int, seed: int) -> datasets.Dataset:
    """A deterministic subset of the dev split for the evaluations during training."""
    if max_clips <= 0 or max_clips >= len(table):
        return table
    order = np.random.default_rng(seed).permutation(len(table))[:max_clips]
    return table.select(sorted(order.tolist()))


def _kill_at_step_callback(step: int):
    import signal

    from transformers import TrainerCallback

    class KillAtStep(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step:
                os.kill(os.getpid(), signal.SIGKILL)

    return KillAtStep()


def compute_metrics_fn(tokenizer, pad_token_id: int):
    """WER/CER of generated dev transcripts (raw and normalised), for ``compute_metrics``."""

    def compute(prediction) -> dict[str, float]:
        predictions = np.where(prediction.predictions < 0, pad_token_id, prediction.predictions)
        labels = np.where(prediction.label_ids < 0, pad_token_id, prediction.label_ids)
        hypotheses = tokenizer.batch_decode(predictions, skip_special_tokens=True)
        references = tokenizer.batch_decode(labels, skip_special_tokens=True)
        return scores(references, [h.strip() for h in hypotheses])

    return compute


def fingerprint(
    params: TrainParams,
    language: str,
    task: str,
    *digests: str,
    context: EncoderContext = PADDED,
) -> str:
    """What decides a training run's result (eval-only knobs included: they shape the logs).

    A padded run keeps the fingerprint it had before the context knob existed.
    """
    record = {"train": asdict(params), "language": language, "task": task, "inputs": digests}
    if context.is_clip:
        record["context"] = context.record()
    return text_digest(json.dumps(record, sort_keys=True))


def context_lengths(
    table: datasets.Dataset, context: EncoderContext, rows: Sequence[int] | None = None
) -> list[int]:
    """The encoder context (frames) of each row of a feature table, or of ``rows`` of it."""
    lengths = [context.frames(n) for n in stored_frames_of(table)]
    return lengths if rows is None else [lengths[i] for i in rows]


def text_digest(text: str) -> str:
    """sha256 of a string (fingerprints of params and of other digests)."""
    return hashlib.sha256(text.encode()).hexdigest()


def prepare_run_dir(run_dir: Path, run_fingerprint: str) -> str | None:
    """Keep ``run_dir`` if it holds checkpoints of this very run; return the newest one.

    A fingerprint mismatch means a different experiment left it: it is cleared (its
    optimizer state and step count would silently corrupt this run).
    """
    from transformers.trainer_utils import get_last_checkpoint

    if run_dir.exists() and read_fingerprint(run_dir) != run_fingerprint:
        print(f"train: {run_dir} holds checkpoints of other params or data; starting over")
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_fingerprint(run_dir, run_fingerprint)
    last = get_last_checkpoint(str(run_dir))
    return last


def training_arguments(params: TrainParams, run_dir: Path, precision: str):
    """``Seq2SeqTrainingArguments`` from params (names follow the Trainer's own)."""
    from transformers import Seq2SeqTrainingArguments

    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return Seq2SeqTrainingArguments(
        output_dir=str(run_dir),
        seed=params.seed,
        data_seed=params.seed,
        learning_rate=params.learning_rate,
        lr_scheduler_type=params.lr_scheduler_type,
        warmup_steps=params.warmup_steps,
        max_steps=params.max_steps,
        per_device_train_batch_size=params.batch_size,
        per_device_eval_batch_size=params.generation.batch_size,
        gradient_accumulation_steps=params.gradient_accumulation_steps,
        weight_decay=params.weight_decay,
        max_grad_norm=params.max_grad_norm,
        logging_strategy="steps",
        logging_steps=params.logging_steps,
        eval_strategy="steps",
        eval_steps=params.eval_steps,
        save_strategy="steps",
        save_steps=params.save_steps,
        save_total_limit=params.save_total_limit,
        gradient_checkpointing=params.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        predict_with_generate=True,
        generation_num_beams=params.generation.num_beams,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        dataloader_num_workers=params.dataloader_num_workers,
        remove_unused_columns=False,
        label_names=["labels"],
        report_to=[],
        disable_tqdm=True,
        ddp_backend=("gloo" if distributed and not torch.cuda.is_available() else None),
        ddp_find_unused_parameters=False,
        use_cpu=not torch.cuda.is_available(),
        save_safetensors=True,
    )


def use_deterministic_kernels() -> None:
    """Deterministic kernels: a rerun writes the same weights bit for bit (docs/training.md)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)


def configure_model(model, params: TrainParams) -> None:
    """What ``train`` sets on the loaded model: trainable parts, SpecAugment, checkpointing.

    SpecAugment is transformers' own (``WhisperModel._mask_input_features``): with
    ``apply_spec_augment`` it zeroes ``mask_time_prob`` of the log-mel frames (spans of
    ``mask_time_length``, 10) and ``mask_feature_prob`` of the mel bins, in train mode only,
    before the encoder. Gradient checkpointing itself is switched on by the Trainer
    (``gradient_checkpointing_enable``, non-reentrant: ``training_arguments``), which needs no
    ``enable_input_require_grads`` for a frozen encoder (that is the reentrant variant's
    need); the decoder's KV cache is useless while training and Whisper turns it off with a
    warning per step, so it is off here. ``generate`` keeps its own (generation_config).
    """
    check_against_model(model, params)  # a part or LoRA target the model lacks
    model.config.apply_spec_augment = params.mask_time_prob + params.mask_feature_prob > 0
    model.config.mask_time_prob = params.mask_time_prob
    model.config.mask_feature_prob = params.mask_feature_prob
    apply_trainable(model, params)  # freeze_embeddings too (proj_out is tied to them)
    if params.gradient_checkpointing:
        model.config.use_cache = False


def train(
    params: TrainParams,
    language: str,
    task: str,
    paths: TrainPaths,
    extra_callbacks: Sequence = (),
    context: EncoderContext = PADDED,
) -> dict[str, float]:
    """Fine-tune ``paths.base_model`` on the featurized train split; return final dev metrics.

    ``extra_callbacks``: more ``TrainerCallback``s (benchmarks/gpu_check.py times steps).
    ``context``: the student's encoder context (params ``whisper``).
    """
    from transformers import WhisperForConditionalGeneration, set_seed

    use_deterministic_kernels()

    # Checks first: each of these would otherwise fail minutes into the run.
    precision = resolve_precision(params.precision, *cuda_support())
    processor = load_processor(paths.base_model, language, task)
    train_table = load_split(paths.features, "train")
    dev_table = dev_subset(load_split(paths.features, "dev"), params.eval_max_clips, params.seed)
    args = training_arguments(params, paths.checkpoints / "trainer", precision)

    # dropout is read when the layers are built, so it is a load-time override.
    model = WhisperForConditionalGeneration.from_pretrained(
        paths.base_model, dropout=params.dropout
    )
    own_context(model)
    configure_model(model, params)
    # Context distillation: the teacher reads the 30 s window, the student its own context.
    teacher_padded = (
        context.is_clip and params.distill.enabled and params.distill.teacher_context == "padded"
    )
    # Whisper's generate() ignores max_length (it keeps N_TEXT_CTX); max_new_tokens is what caps a
    # hallucinating model's dev transcripts. Restored before the checkpoint is written.
    saved_max_new_tokens = model.generation_config.max_new_tokens
    model.generation_config.max_new_tokens = params.generation.max_new_tokens

    model_digest = tree_digest(sorted(paths.base_model.glob("*")))
    data_digest = tree_digest([paths.features / "train", paths.features / "dev"])
    keep = kept_rows(train_table, paths.exclude)
    if not keep:
        raise ValueError(f"{paths.features}/train: every row is excluded; nothing to train on")
    digests = [model_digest, data_digest]
    if paths.exclude:  # a run without exclusions keeps the fingerprint it always had
        digests.append(text_digest("\n".join(sorted(paths.exclude))))
    run_fingerprint = fingerprint(params, language, task, *digests, context=context)
    with args.main_process_first(desc="prepare checkpoints and encoder cache"):
        resume_from = None
        live = DVCLiveStepCallback(paths.live)
        if args.process_index == 0:
            resume_from = prepare_run_dir(paths.checkpoints / "trainer", run_fingerprint)
            live.open(_checkpoint_step(resume_from))  # fails now, not after the cache
        if params.uses_encoder_cache or params.uses_lower_encoder_cache:
            device = args.device
            model.to(device)
            cache_key = text_digest(model_digest + data_digest)
            below, sub = None, Path()
            if params.uses_lower_encoder_cache:  # the states entering the first trained layer
                below = first_trained_layer(model.config, params.encoder_top_layers)
                cache_key = text_digest(f"{cache_key} below_layer {below}")
                sub = Path(f"below_layer_{below}")
            if context.is_clip:  # padded keeps its key: an existing cache stays valid
                record = json.dumps({**context.record(), "teacher_padded": teacher_padded})
                cache_key = text_digest(f"{cache_key} context {record}")
                sub = sub / f"context_{cache_key[:12]}"
            cache_dir = paths.checkpoints / "encoder_cache" / sub
            shared = paths.shared_encoder_cache
            if shared is not None and read_fingerprint(shared / sub / "train") == cache_key:
                cache_dir = shared / sub  # the train stage's, built from these very inputs
            train_data = build_encoder_cache(
                model,
                train_table,
                cache_dir / "train",
                cache_key,
                params.generation.batch_size,
                device,
                below,
                context,
                teacher_padded,
            )
            eval_data = build_encoder_cache(
                model,
                dev_table,
                cache_dir / "dev",
                text_digest(f"{cache_key} {params.eval_max_clips} {params.seed}"),
                params.generation.batch_size,
                device,
                below,
                context,
                False,  # the dev loss is the plain cross-entropy: no teacher
            )
        else:
            columns = ["input_features", "pad_value", "labels"]  # the collator pads
            train_data = train_table.select_columns(columns)
            eval_data = dev_table.select_columns(columns)
        if len(keep) < len(train_table):  # the cache holds every row; train on the kept ones
            train_data = train_data.select(keep)
            print(f"train: {len(train_table) - len(keep)} of {len(train_table)} rows excluded")
    if args.process_index != 0:
        from transformers.trainer_utils import get_last_checkpoint

        resume_from = get_last_checkpoint(str(paths.checkpoints / "trainer"))
    train_data = train_data.with_format("torch")
    eval_data = eval_data.with_format("torch")
    if params.lora.enabled:
        set_seed(params.seed)  # the adapters' random init, the same on every run
        model = apply_lora(model, params)
    teacher = load_teacher(paths.base_model, args.device) if params.distill.enabled else None
    if teacher is not None:
        own_context(teacher)
    train_lengths = context_lengths(train_table, context, keep) if context.is_clip else None
    eval_lengths = context_lengths(dev_table, context) if context.is_clip else None

    callbacks = [live, *extra_callbacks]
    kill_at = os.environ.get(KILL_AT_STEP_ENV)
    if kill_at:
        callbacks.append(_kill_at_step_callback(int(kill_at)))
    trainer = WhisperTrainer(
        model=model,
        args=args,
        train_dataset=train_data,
        eval_dataset=eval_data,
        data_collator=SpeechSeq2SeqCollator(
            pad_token_id=model.config.pad_token_id,
            decoder_start_token_id=model.config.decoder_start_token_id,
            context=context,
            teacher_padded=teacher_padded and "input_features" in train_data.column_names,
        ),
        processing_class=processor.feature_extractor,
        compute_metrics=compute_metrics_fn(processor.tokenizer, model.config.pad_token_id),
        callbacks=callbacks,
        top_layers=params.encoder_top_layers if params.uses_lower_encoder_cache else 0,
        teacher=teacher,
        distill_weight=params.distill.weight,
        distill_temperature=params.distill.temperature,
        train_lengths=train_lengths,
        eval_lengths=eval_lengths,
    )
    if resume_from and _checkpoint_step(resume_from) >= params.max_steps:
        # The run had finished (only the outputs were lost): take the final checkpoint as it
        # is. Trainer.train() would count one step more than it trains.
        print(f"train: {resume_from} is the finished run; writing its outputs again")
        _load_finished(trainer, resume_from)
    else:
        if resume_from:
            print(f"train: resuming from {resume_from}")
        trainer.train(resume_from_checkpoint=resume_from)
    final = _final_eval(trainer)
    live.finish()
    model.generation_config.max_new_tokens = saved_max_new_tokens
    model.config.dropout = 0.0  # the published config: no dropout left on at inference
    if context.is_clip:  # what the transcribe stages and the page serve it with
        setattr(model.config, CONTEXT_KEY, context.record())
    if trainer.is_world_process_zero():
        excluded = sorted(paths.exclude) if paths.exclude else None
        _write_model(trainer, processor, paths.output, params, excluded)
    return final


def _load_finished(trainer, checkpoint: str) -> None:
    """Weights and state (log history included) of a finished run's last checkpoint."""
    from safetensors.torch import load_file
    from transformers import TrainerState

    if is_peft(trainer.model):
        load_adapter_checkpoint(trainer.model, checkpoint)
        trainer.state = TrainerState.load_from_json(str(Path(checkpoint) / "trainer_state.json"))
        return
    weights = load_file(str(Path(checkpoint) / "model.safetensors"))
    missing, unexpected = trainer.model.load_state_dict(weights, strict=False)
    tied = {"proj_out.weight"}  # stored once, as the decoder's token embeddings
    if unexpected or set(missing) - tied:
        raise ValueError(
            f"{checkpoint}: checkpoint does not match the model ({missing or unexpected})"
        )
    trainer.state = TrainerState.load_from_json(str(Path(checkpoint) / "trainer_state.json"))


def _checkpoint_step(checkpoint: str | None) -> int | None:
    return int(Path(checkpoint).name.rsplit("-", 1)[1]) if checkpoint else None


def _final_eval(trainer) -> dict[str, float]:
    """Dev metrics at the last step (evaluated now unless the schedule just did)."""
    state = trainer.state
    last = [h for h in state.log_history if "eval_loss" in h and h.get("step") == state.global_step]
    metrics = last[-1] if last else trainer.evaluate()
    keep = {
        k: v
        for k, v in metrics.items()
        if k.startswith("eval_")
        and k.split("_", 1)[1] in ("loss", "wer", "cer", "wer_norm", "cer_norm")
    }
    losses = [h["loss"] for h in state.log_history if "loss" in h]
    out = {k.replace("eval_", "dev_"): round(float(v), 6) for k, v in keep.items()}
    if losses:
        out["train_loss"] = round(float(losses[-1]), 6)
    out["step"] = int(state.global_step)
    return out


def _write_model(
    trainer, processor, out_dir: Path, params: TrainParams, excluded: list[str] | None = None
) -> None:
    """The fine-tuned checkpoint, processor and generation config, all or nothing.

    LoRA adapters are merged into the weights first: the result is a plain checkpoint.
    """
    model = merged(trainer.model)
    model.config.use_cache = True
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)  # with generation_config.json
        processor.save_pretrained(tmp)
        info = {"train": asdict(params), "steps": trainer.state.global_step}
        if excluded is not None:  # the retrain stage's: which train clips were left out
            info["excluded_clips"] = excluded
        (tmp / "train_info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
