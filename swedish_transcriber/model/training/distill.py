"""Distillation towards the frozen base model (learning without forgetting, ``train.distill``).

Cross-entropy on a few hours of synthetic speech pulls the decoder towards those sentences
and voices; nothing in it says "and keep predicting what you predicted before". Adding
``weight * T^2 * KL(teacher || student)`` at every label position, with the teacher the base
model itself (frozen) on the same inputs, does: the fine-tuned model pays for every shift of
its token distribution that the labels do not ask for (Li & Hoiem, "Learning without
Forgetting"; Hinton et al. for the temperature and its ``T^2``, which keeps the gradient's
scale independent of ``T``).

The teacher sees exactly the student's inputs: log-mel features; the base encoder's stored
outputs (the encoder cache holds the base encoder's, so both decoders read the same states);
or the stored lower-layer states, through the teacher's own top encoder layers. Padding
(``-100``) positions count in neither loss.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from swedish_transcriber.model.collator import IGNORE_INDEX


def distillation_kl(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """Mean over label positions of KL(softmax(t / T) || softmax(s / T)) (no ``T^2``)."""
    mask = labels != IGNORE_INDEX
    if not mask.any():
        return student_logits.sum() * 0.0  # keeps the graph; nothing to match
    student = F.log_softmax(student_logits[mask].float() / temperature, dim=-1)
    teacher = F.log_softmax(teacher_logits[mask].float() / temperature, dim=-1)
    per_token = F.kl_div(student, teacher, log_target=True, reduction="none").sum(-1)
    return per_token.mean()


def load_teacher(base_model: Path, device: torch.device, dtype: torch.dtype | None = None):
    """The base model, frozen and in eval mode (no dropout), on ``device``."""
    from transformers import WhisperForConditionalGeneration

    teacher = WhisperForConditionalGeneration.from_pretrained(base_model)
    teacher.requires_grad_(False)
    teacher.eval()
    return teacher.to(device=device, dtype=dtype) if dtype else teacher.to(device)
