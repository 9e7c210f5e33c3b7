"""Params section ``train``: every knob of fine-tuning, checked before any long work starts.

A wrong value here would otherwise surface minutes into a run (or never: a misspelt key
silently falls back to a default), so the dataclass rejects unknown keys (see
:mod:`swedish_transcriber.params`) and ``__post_init__`` rejects values that cannot work.
Checks that need the machine (is there a GPU?) are in :func:`resolve_precision`.
"""

from __future__ import annotations

from dataclasses import dataclass

from swedish_transcriber.whisper import DecodeOptions

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
SCHEDULERS = (
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
)


@dataclass(frozen=True)
class TrainParams:
    """Params section ``train`` (names follow ``Seq2SeqTrainingArguments`` where one exists)."""

    # The command that starts the stage: "python", or "torchrun --nproc_per_node=4" for DDP.
    launcher: str
    seed: int
    learning_rate: float
    lr_scheduler_type: str  # one of SCHEDULERS
    warmup_steps: int
    max_steps: int
    batch_size: int  # per device
    gradient_accumulation_steps: int
    weight_decay: float
    max_grad_norm: float
    logging_steps: int
    eval_steps: int  # dev loss and generated-transcript WER every this many steps
    save_steps: int  # checkpoints (resume points) every this many steps
    save_total_limit: int
    eval_max_clips: int  # dev clips transcribed at each evaluation; 0 = all
    gradient_checkpointing: bool
    freeze_encoder: bool
    # Keep the (tied) token embeddings / output projection fixed: every step would otherwise
    # push down the logits of every word not in the batch, forgetting unseen vocabulary.
    freeze_embeddings: bool
    dropout: float  # Whisper's dropout (0.0 in the pretrained config) while training
    # With a frozen encoder its output for a clip never changes: compute it once per clip
    # and train the decoder on the stored outputs (about 3x faster per step on a CPU).
    cache_encoder_outputs: bool
    mask_time_prob: float  # SpecAugment on the log-mel input (needs the encoder to run)
    mask_feature_prob: float
    # The dev transcripts at each evaluation: batch_size is the per-device eval batch (dev
    # loss and generation, and the encoder passes of the cache); max_new_tokens caps them.
    generation: DecodeOptions
    precision: str  # auto: bf16 (or fp16) on a GPU, fp32 on a CPU
    dataloader_num_workers: int

    def __post_init__(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ValueError(message)

        need(
            self.max_steps >= 1,
            f"max_steps must be >= 1, got {self.max_steps} (0 steps would publish the base "
            f"model as the fine-tuned one)",
        )
        for name in ("batch_size", "gradient_accumulation_steps"):
            need(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("logging_steps", "eval_steps", "save_steps"):
            need(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        need(self.save_total_limit >= 1, "save_total_limit must be >= 1 (resume needs one)")
        need(self.learning_rate >= 0, f"learning_rate must be >= 0, got {self.learning_rate}")
        need(self.warmup_steps >= 0, "warmup_steps must be >= 0")
        need(self.weight_decay >= 0, "weight_decay must be >= 0")
        need(self.max_grad_norm > 0, "max_grad_norm must be > 0")
        need(self.eval_max_clips >= 0, "eval_max_clips must be >= 0 (0 = every dev clip)")
        need(self.dataloader_num_workers >= 0, "dataloader_num_workers must be >= 0")
        for name in ("mask_time_prob", "mask_feature_prob", "dropout"):
            value = getattr(self, name)
            need(0.0 <= value < 1.0, f"{name} must be in [0, 1), got {value}")
        need(
            self.precision in PRECISIONS,
            f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}",
        )
        need(
            self.lr_scheduler_type in SCHEDULERS,
            f"lr_scheduler_type must be one of {', '.join(SCHEDULERS)}, "
            f"got {self.lr_scheduler_type!r}",
        )
        need(bool(self.launcher.strip()), "launcher must name a command, e.g. python")
        if self.uses_encoder_cache and self.mask_time_prob + self.mask_feature_prob > 0:
            raise ValueError(
                "mask_time_prob/mask_feature_prob (SpecAugment) mask the log-mel input, which "
                "a cached encoder output never sees; set train.cache_encoder_outputs: false "
                "to use SpecAugment with a frozen encoder"
            )

    @property
    def uses_encoder_cache(self) -> bool:
        """Whether the decoder trains on stored encoder outputs (frozen encoder only)."""
        return self.freeze_encoder and self.cache_encoder_outputs


def resolve_precision(precision: str, cuda_available: bool, bf16_supported: bool) -> str:
    """``auto`` -> the fastest safe choice; a GPU-only choice without a GPU is an error.

    bf16 and fp16 mixed precision are GPU features here: on a CPU they would either fail
    deep inside the Trainer or run slower than fp32, so they are refused up front.
    """
    if precision == "auto":
        if not cuda_available:
            return "fp32"
        return "bf16" if bf16_supported else "fp16"
    if precision in ("bf16", "fp16") and not cuda_available:
        raise ValueError(
            f"params.yaml: train.precision={precision} needs a CUDA GPU and none is available; "
            f"use precision: auto (fp32 on a CPU) or fp32"
        )
    if precision == "bf16" and not bf16_supported:
        raise ValueError(
            "params.yaml: train.precision=bf16 needs a GPU with bf16 support (Ampere or "
            "newer); use fp16 or auto"
        )
    return precision
