"""Batched transcription of featurized clips with any Whisper checkpoint.

Shared by the ``transcribe`` stage (test split, zero-shot and fine-tuned) and the demo page,
so both decode the same way: language and task forced from params (a Swedish model must not
wander into language detection), greedy or beam search, and openai/whisper's guards
(``swedish_transcriber.decoding``: temperature fallback, no-speech check, a token cap by the
clip's duration) so a hallucinating model cannot loop for minutes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import torch
from transformers.modeling_outputs import BaseModelOutput

from swedish_transcriber.data.features import (
    PAD_COLUMN,
    load_processor,
    pad_features,
    stored_frames_of,
)
from swedish_transcriber.data.testsets import TestSet, check_names
from swedish_transcriber.decoding import Attempt, transcripts
from swedish_transcriber.evaluation.intervals import BootstrapParams
from swedish_transcriber.whisper import DecodeOptions, EncoderContext


@dataclass(frozen=True)
class EvaluateParams:
    """Params section ``evaluate``."""

    decode: DecodeOptions  # how the test clips are transcribed
    # The named test sets every model is scored on (data/testsets.py); -S adds one.
    sets: dict[str, TestSet]
    # The models scored on every set: metrics key -> model directory (a transformers
    # checkpoint or a CTranslate2 export).
    models: dict[str, str]
    max_clips: int  # test clips transcribed; 0 = all (a deterministic subset otherwise)
    seed: int
    # Upper edges (seconds) of the duration buckets that WER is sliced by.
    duration_buckets: tuple[float, ...]
    bootstrap: BootstrapParams  # the intervals of every WER and WER difference (intervals.py)

    def __post_init__(self) -> None:
        check_names(self.sets)
        if not self.models:
            raise ValueError("evaluate.models is empty: name at least one model to score")
        if self.max_clips < 0:
            raise ValueError("max_clips must be >= 0 (0 = all)")
        edges = list(self.duration_buckets)
        if edges != sorted(edges) or len(set(edges)) != len(edges) or any(e <= 0 for e in edges):
            raise ValueError(f"duration_buckets must be increasing positive seconds, got {edges}")


def load_model(model_dir: str | Path, language: str, task: str):
    """A Whisper checkpoint and its processor, ready for generation on the best device."""
    from transformers import WhisperForConditionalGeneration

    from swedish_transcriber.own_context import own_context

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(
            f"{model_dir}: no transformers checkpoint (config.json) found; run the stage that "
            f"writes it first (dvc repro)"
        )
    processor = load_processor(model_dir, language, task)
    # safetensors only: pickled weights (pytorch_model.bin) can run code when loaded.
    model = WhisperForConditionalGeneration.from_pretrained(model_dir, use_safetensors=True)
    own_context(model)  # any context: a 30 s window takes transformers' own code
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device).eval(), processor


def subset(table: datasets.Dataset, max_clips: int, seed: int) -> datasets.Dataset:
    """A deterministic subset of ``max_clips`` rows (all rows when 0), in table order."""
    if max_clips <= 0 or max_clips >= len(table):
        return table
    keep = np.random.default_rng(seed).permutation(len(table))[:max_clips]
    return table.select(sorted(keep.tolist()))


def no_speech_id(vocab: dict[str, int], where: str | Path) -> int:
    """The id of Whisper's no-speech token: ``<|nospeech|>`` (large-v3) or ``<|nocaptions|>``."""
    for token in ("<|nospeech|>", "<|nocaptions|>"):
        if token in vocab:
            return vocab[token]
    raise ValueError(f"{where}: the tokenizer has neither <|nospeech|> nor <|nocaptions|>")


def _new_tokens(ids: list[int], prompt: list[int], eot: int, cap: int) -> tuple[list[int], bool]:
    """A generated row's new tokens up to its end token, cut at ``cap``; and whether it ended.

    A row that reaches its cap has no end token, as if it had been generated with that cap
    alone (the batch is generated to its longest cap).
    """
    if ids[: len(prompt)] == prompt:
        ids = ids[len(prompt) :]
    ended = eot in ids
    tokens = ids[: ids.index(eot)] if ended else ids
    if len(tokens) >= cap:
        return tokens[:cap], False
    return tokens, ended


class _GuardedGenerate:
    """One ``decoding.Decoder`` over a batch: transformers ``generate``, then one forward pass.

    ``generate`` picks the tokens (greedy/beam at temperature 0, sampling above, seeded); a
    teacher-forced pass of the decoder over the prompt and those tokens gives each token's
    log-probability and the no-speech probability at ``<|startoftranscript|>``, the numbers
    openai/whisper's guards read. The encoder runs once per batch for those passes.
    """

    def __init__(
        self,
        model,
        tokenizer,
        inputs: torch.Tensor,
        language: str,
        task: str,
        options: DecodeOptions,
    ) -> None:
        self.model, self.tokenizer, self.inputs = model, tokenizer, inputs
        self.language, self.task, self.options = language, task, options
        self.prompt = tokenizer.convert_tokens_to_ids(
            ["<|startoftranscript|>", f"<|{language}|>", f"<|{task}|>", "<|notimestamps|>"]
        )
        self.eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
        self.no_speech = no_speech_id(tokenizer.get_vocab(), tokenizer.name_or_path or "model")
        self.encoded = model.get_encoder()(inputs).last_hidden_state

    def generate(self, windows: list[int], temperature: float, max_new: int, seed: int):
        kwargs: dict = {"language": self.language, "task": self.task, "max_new_tokens": max_new}
        if temperature > 0:  # whisper: sampling from the whole distribution, one beam
            kwargs.update(do_sample=True, temperature=temperature, top_k=0, num_beams=1)
        else:
            kwargs.update(do_sample=False, num_beams=self.options.num_beams)
        cuda = self.inputs.device.type == "cuda"
        with torch.random.fork_rng(devices=[self.inputs.device] if cuda else []):
            torch.manual_seed(seed)
            # The stored encoder output: the encoder runs once per batch, not once per pass.
            encoded = BaseModelOutput(last_hidden_state=self.encoded[windows])
            return self.model.generate(encoder_outputs=encoded, **kwargs)

    def __call__(self, windows, temperature, caps, seed) -> list[Attempt]:
        windows = list(windows)
        out = self.generate(windows, temperature, max(caps), seed)
        rows = [
            _new_tokens(ids, self.prompt, self.eot, cap)
            for ids, cap in zip(out.tolist(), caps, strict=True)
        ]
        # Teacher-forced: the prompt, the tokens and the end token (when there was one).
        targets = [tokens + [self.eot] if ended else tokens for tokens, ended in rows]
        width = len(self.prompt) + max(len(t) for t in targets)
        ids = torch.full((len(windows), width), self.eot, dtype=torch.long)
        for r, t in enumerate(targets):
            ids[r, : len(self.prompt) + len(t)] = torch.tensor(self.prompt + t)
        hidden = self.model.get_decoder()(
            input_ids=ids.to(self.inputs.device), encoder_hidden_states=self.encoded[windows]
        ).last_hidden_state
        attempts = []
        start = len(self.prompt) - 1  # the position that predicts the first new token
        for r, ((tokens, _), t) in enumerate(zip(rows, targets, strict=True)):
            # One row at a time: a batch's logits over 51865 tokens would take GBs.
            logits = self.model.proj_out(hidden[r, : start + len(t) + 1]).float()
            logprobs = torch.log_softmax(logits, dim=-1)
            picked = logprobs[
                torch.arange(start, start + len(t)), torch.tensor(t, dtype=torch.long)
            ]
            no_speech = torch.softmax(logits[0], dim=-1)[self.no_speech]  # at SOT, as whisper
            attempts.append(
                Attempt(
                    tokens=tuple(tokens),
                    text=self.tokenizer.decode(tokens, skip_special_tokens=True),
                    sum_logprob=float(picked.sum()),
                    no_speech_prob=float(no_speech),
                    temperature=temperature,
                )
            )
        return attempts


@torch.no_grad()
def transcribe_features(
    model,
    processor,
    features: np.ndarray | torch.Tensor,
    language: str,
    task: str,
    options: DecodeOptions,
    durations: Sequence[float],
) -> list[str]:
    """Transcripts of one batch of log-mel features (shape ``batch x mels x frames``).

    ``durations`` are the clips' lengths in seconds (their token caps). Every window goes
    through openai/whisper's guards (``swedish_transcriber.decoding``): temperature
    fallback, the no-speech check and the duration cap. The batch is decoded as it is
    given; ``options.batch_size`` is for the caller's batching.
    """
    inputs = torch.as_tensor(np.asarray(features)).to(model.device, dtype=model.dtype)
    if len(durations) != inputs.shape[0]:
        raise ValueError(f"{len(durations)} durations for {inputs.shape[0]} clips")
    if inputs.shape[0] == 0:
        return []
    decode = _GuardedGenerate(model, processor.tokenizer, inputs, language, task, options)
    return transcripts(durations, decode, options)


def context_batches(
    n_frames: Sequence[int], context: EncoderContext, batch_size: int
) -> list[tuple[int, list[int]]]:
    """Rows in batches of one context length: ``(frames, rows)``, rows in table order.

    Padded: every row has the 30 s window, so these are plain consecutive batches. Clip:
    rows are bucketed by their context (whole seconds), so no clip is padded beyond its own
    context and a clip's transcript does not depend on the clips beside it.
    """
    groups: dict[int, list[int]] = {}
    for row, n in enumerate(n_frames):
        groups.setdefault(context.frames(int(n)), []).append(row)
    return [
        (frames, rows[start : start + batch_size])
        for frames, rows in sorted(groups.items())
        for start in range(0, len(rows), batch_size)
    ]


def transcribe_table(
    model,
    processor,
    table: datasets.Dataset,
    options: DecodeOptions,
    language: str,
    task: str,
    context: EncoderContext,
) -> list[str]:
    """Transcripts of every row of a feature table, in order, ``options.batch_size`` at a time.

    The table's ``duration`` column (seconds) sets each clip's token cap; the stored frames
    are padded to the rows' ``context`` (:func:`context_batches`) by
    ``features.pad_features``.
    """
    hypotheses: list[str] = [""] * len(table)
    rows = table.select_columns(["input_features", PAD_COLUMN, "duration"]).with_format("numpy")
    done = 0
    for frames, batch_rows in context_batches(stored_frames_of(table), context, options.batch_size):
        batch = rows[batch_rows]
        texts = transcribe_features(
            model,
            processor,
            pad_features(batch["input_features"], batch[PAD_COLUMN], frames),
            language,
            task,
            options,
            [float(d) for d in batch["duration"]],
        )
        for row, text in zip(batch_rows, texts, strict=True):
            hypotheses[row] = text
        done += len(batch_rows)
        print(f"transcribe: {done}/{len(rows)} clips")
    return hypotheses
