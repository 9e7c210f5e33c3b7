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
TEACHER_CONTEXTS = ("padded", "student")
# What ``train.trainable`` may list (training.trainable says what each one is).
TRAINABLE_PARTS = ("encoder", "encoder_top", "decoder", "cross_attention")
# A part that contains another: listing both would say the same thing twice, or hide a typo.
CONTAINS = {"encoder": "encoder_top", "decoder": "cross_attention"}
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
class LoraParams:
    """``train.lora``: low-rank adapters (peft) instead of training the parts' weights."""

    rank: int  # 0 = off (the parts' own weights train)
    alpha: float  # the adapters' scale is alpha / rank
    dropout: float  # dropout on the adapters' input
    # Module name suffixes inside the trainable parts, e.g. q_proj, v_proj, encoder_attn.q_proj
    target_modules: list[str]

    def __post_init__(self) -> None:
        if self.rank < 0:
            raise ValueError(f"lora.rank must be >= 0 (0 = off), got {self.rank}")
        if self.alpha <= 0:
            raise ValueError(f"lora.alpha must be > 0, got {self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"lora.dropout must be in [0, 1), got {self.dropout}")
        if self.rank > 0 and not self.target_modules:
            raise ValueError("lora.target_modules must name at least one module, e.g. [q_proj]")
        if any(not name.strip() for name in self.target_modules):
            raise ValueError(f"lora.target_modules has an empty name: {self.target_modules}")

    @property
    def enabled(self) -> bool:
        return self.rank > 0


@dataclass(frozen=True)
class DistillParams:
    """``train.distill``: keep the fine-tuned model's token distributions near the base's."""

    weight: float  # 0 = off; loss = CE + weight * T^2 * KL(base || fine-tuned)
    temperature: float  # T: softens both distributions before the KL
    # What the teacher's encoder sees under ``whisper.context: clip``: ``padded``, the 30 s
    # window it was trained on (context distillation), or ``student``, the student's input.
    teacher_context: str

    def __post_init__(self) -> None:
        if self.teacher_context not in TEACHER_CONTEXTS:
            raise ValueError(
                f"distill.teacher_context must be one of {', '.join(TEACHER_CONTEXTS)}, got "
                f"{self.teacher_context!r}"
            )
        if self.weight < 0:
            raise ValueError(f"distill.weight must be >= 0 (0 = off), got {self.weight}")
        if self.temperature <= 0:
            raise ValueError(f"distill.temperature must be > 0, got {self.temperature}")

    @property
    def enabled(self) -> bool:
        return self.weight > 0


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
    # Which parameters train (TRAINABLE_PARTS); all others stay as in the base model.
    trainable: list[str]
    encoder_top_layers: int  # how many top encoder layers the part encoder_top holds
    # Keep the (tied) token embeddings / output projection fixed: every step would otherwise
    # push down the logits of every word not in the batch, forgetting unseen vocabulary.
    freeze_embeddings: bool
    dropout: float  # Whisper's dropout (0.0 in the pretrained config) while training
    # With a frozen encoder its output for a clip never changes: compute it once per clip
    # and train the decoder on the stored outputs (about 3x faster per step on a CPU). With
    # encoder_top, the frozen lower layers' output is stored the same way.
    cache_encoder_outputs: bool
    lora: LoraParams
    distill: DistillParams
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
        self._check_trainable()
        if (
            self.uses_encoder_cache or self.uses_lower_encoder_cache
        ) and self.mask_time_prob + self.mask_feature_prob > 0:
            raise ValueError(
                "mask_time_prob/mask_feature_prob (SpecAugment) mask the log-mel input, which "
                "a training step on cached encoder states never sees; set "
                "train.cache_encoder_outputs: false (or train the whole encoder) to use SpecAugment"
            )

    def _check_trainable(self) -> None:
        """``trainable`` names known parts, each once, none inside another listed one."""
        unknown = [part for part in self.trainable if part not in TRAINABLE_PARTS]
        if unknown:
            raise ValueError(
                f"trainable: unknown part(s) {', '.join(map(repr, unknown))}; known parts: "
                f"{', '.join(TRAINABLE_PARTS)}"
            )
        if not self.trainable:
            raise ValueError(f"trainable must list at least one of {', '.join(TRAINABLE_PARTS)}")
        if len(set(self.trainable)) != len(self.trainable):
            raise ValueError(f"trainable lists a part twice: {self.trainable}")
        for whole, inner in CONTAINS.items():
            if whole in self.trainable and inner in self.trainable:
                raise ValueError(
                    f"trainable lists both {whole} and {inner}, which {whole} already holds; "
                    f"keep one"
                )
        if self.encoder_top_layers < 1:
            raise ValueError(f"encoder_top_layers must be >= 1, got {self.encoder_top_layers}")

    @property
    def encoder_frozen(self) -> bool:
        """Whether no encoder parameter trains (its output per clip is then fixed)."""
        return "encoder" not in self.trainable and "encoder_top" not in self.trainable

    @property
    def uses_encoder_cache(self) -> bool:
        """Whether the decoder trains on stored encoder outputs (frozen encoder only)."""
        return self.encoder_frozen and self.cache_encoder_outputs

    @property
    def uses_lower_encoder_cache(self) -> bool:
        """Whether steps start from stored hidden states below the trained top encoder layers."""
        return "encoder_top" in self.trainable and self.cache_encoder_outputs


def cuda_support() -> tuple[bool, bool]:
    """``(a CUDA GPU is there, it computes bf16 natively)`` for :func:`resolve_precision`.

    Native only: ``torch.cuda.is_bf16_supported()`` counts emulation by default, so it says
    yes on a T4 or V100 (compute capability 7.x), where bf16 runs as slow float32 code and
    ``auto`` should pick fp16. Ampere (8.0) and newer have bf16 tensor cores; ROCm GPUs too.
    """
    import torch

    if not torch.cuda.is_available():
        return False, False
    return True, bool(torch.version.hip) or torch.cuda.get_device_capability() >= (8, 0)


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
