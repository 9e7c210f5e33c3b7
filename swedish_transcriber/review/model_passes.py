"""Per-clip evidence from a Whisper model, given the clip's encoder outputs.

Both passes start from encoder outputs (stored or computed once per clip), so the encoder,
most of a clip's cost, never runs twice:

* :func:`token_losses`: the teacher-forced negative log-likelihood of each label token, as
  training computes it (the collator's labels: ``<|startoftranscript|>`` removed, padding
  ignored); per clip its mean (the training loss of that clip alone) and its maximum (one
  wrong word in a long sentence shows as one very unlikely token, which the mean dilutes);
  :func:`token_logprobs` keeps each token's log-prob too, for the word-level evidence;
* :func:`greedy_transcripts`: the model's greedy transcript (no temperature fallback, no
  thresholds: its best guess), each clip capped at its own token budget by duration
  (:func:`swedish_transcriber.decoding.token_cap`) so a looping model stops early. The batch
  is generated to its longest cap and each row cut at its own: greedy rows do not depend on
  each other, so a row is what generating it alone with its cap would give.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from transformers.modeling_outputs import BaseModelOutput

from swedish_transcriber.model.collator import IGNORE_INDEX, SpeechSeq2SeqCollator


def collator_for(model) -> SpeechSeq2SeqCollator:
    """The training collator of ``model``: labels without the start token, -100 padding."""
    return SpeechSeq2SeqCollator(
        pad_token_id=model.config.pad_token_id,
        decoder_start_token_id=model.config.decoder_start_token_id,
    )


@torch.no_grad()
def label_nll(
    model, hidden: torch.Tensor, labels: Sequence[Sequence[int]]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Teacher-forced negative log-likelihood (nats) of each label token: ``nll``, ``mask``
    (which positions are label tokens) and ``targets``, each ``batch x positions``.

    ``hidden``: the clips' encoder outputs, ``batch x positions x width``; the batch is the
    one the training collator builds from stored outputs and labels.
    """
    pairs = zip(hidden, labels, strict=True)
    rows = [{"encoder_hidden_states": h, "labels": list(seq)} for h, seq in pairs]
    batch = collator_for(model)(rows)
    device = model.device
    targets = batch["labels"].to(device)
    encoded = batch["encoder_outputs"].last_hidden_state.to(device, dtype=model.dtype)
    out = model(
        encoder_outputs=BaseModelOutput(last_hidden_state=encoded), labels=targets, use_cache=False
    )
    nll = F.cross_entropy(
        out.logits.float().transpose(1, 2), targets, ignore_index=IGNORE_INDEX, reduction="none"
    )
    return nll, targets != IGNORE_INDEX, targets


def _mean_and_max(nll: torch.Tensor, mask: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    counts = mask.sum(dim=1).clamp(min=1)
    mean = (nll * mask).sum(dim=1) / counts
    peak = nll.masked_fill(~mask, float("-inf")).max(dim=1).values
    return mean.cpu().numpy().astype(float), peak.cpu().numpy().astype(float)


@torch.no_grad()
def token_losses(
    model, hidden: torch.Tensor, labels: Sequence[Sequence[int]]
) -> tuple[np.ndarray, np.ndarray]:
    """Per clip: mean and max negative log-likelihood (nats) of its label tokens."""
    nll, mask, _ = label_nll(model, hidden, labels)
    return _mean_and_max(nll, mask)


@torch.no_grad()
def token_logprobs(
    model, hidden: torch.Tensor, labels: Sequence[Sequence[int]]
) -> tuple[np.ndarray, np.ndarray, list[tuple[list[int], np.ndarray]]]:
    """Per clip: mean and max label-token loss (as :func:`token_losses`), and each label
    token's id and log-prob (special tokens included), for the word-level evidence
    (:mod:`.word_evidence`); one decoder pass."""
    nll, mask, targets = label_nll(model, hidden, labels)
    mean, peak = _mean_and_max(nll, mask)
    tokens = [
        (targets[i][mask[i]].tolist(), (-nll[i][mask[i]]).cpu().numpy().astype(float))
        for i in range(nll.shape[0])
    ]
    return mean, peak, tokens


def prompt_ids(tokenizer, language: str, task: str) -> list[int]:
    return tokenizer.convert_tokens_to_ids(
        ["<|startoftranscript|>", f"<|{language}|>", f"<|{task}|>", "<|notimestamps|>"]
    )


def cut(ids: Sequence[int], prompt: Sequence[int], eot: int, cap: int) -> list[int]:
    """A generated row's new tokens: prompt stripped, up to the end token, at most ``cap``."""
    ids = list(ids)
    if ids[: len(prompt)] == list(prompt):
        ids = ids[len(prompt) :]
    if eot in ids:
        ids = ids[: ids.index(eot)]
    return ids[:cap]


@torch.no_grad()
def greedy_transcripts(
    model, tokenizer, hidden: torch.Tensor, caps: Sequence[int], language: str, task: str
) -> list[str]:
    """Greedy transcripts of the clips whose encoder outputs are ``hidden``, row ``i`` capped
    at ``caps[i]`` new tokens."""
    if len(caps) != hidden.shape[0]:
        raise ValueError(f"{len(caps)} token caps for {hidden.shape[0]} clips")
    out = model.generate(
        encoder_outputs=BaseModelOutput(last_hidden_state=hidden.to(model.device, model.dtype)),
        language=language,
        task=task,
        max_new_tokens=max(caps),
        do_sample=False,
        num_beams=1,
    )
    sequences = out if isinstance(out, torch.Tensor) else out.sequences
    prompt = prompt_ids(tokenizer, language, task)
    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    return [
        tokenizer.decode(cut(ids, prompt, eot, cap), skip_special_tokens=True).strip()
        for ids, cap in zip(sequences.tolist(), caps, strict=True)
    ]
