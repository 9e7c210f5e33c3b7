"""Quick trials of fine-tuning methods on the pipeline's stored encoder outputs.

A plain PyTorch loop, not the train stage: it trains one variant (decoder or cross-attention,
LoRA, distillation towards the base) for 100 steps of 8 clips on
``checkpoints/encoder_cache/train`` (what ``dvc repro train`` stored), then scores the
interpolations ``(1 - a) * base + a * trained`` for each ``a`` of ``alphas`` on a folder of
wav/txt pairs (``../shared/eval/real-sv``-style, decoded as ``pairs_wer.py`` does: greedy,
Swedish forced, 96 new tokens) and on 32 clips of the featurized demo test split. It was used to
choose which methods to run through the pipeline (docs/forgetting.md); each run appends a JSON
line to ``benchmarks/studies/results/forgetting_trials.jsonl``.

    python benchmarks/studies/forgetting_trials.py \
        '{"name": "xattn_distill1", "part": "cross", "lwf": 1.0}'

Config keys: name, steps (100), lr (2e-4), lwf (distillation weight, 0), T (2.0), part
(decoder | cross), lora (rank, 0 = off), emb (train the embeddings, false), alphas ([1.0, 0.5]).
Paths: env BASE (models/base), CACHE, TEST (data/features/test), REAL (../shared/eval/real-sv).
"""

from __future__ import annotations

import copy
import glob
import json
import os
import re
import sys
import time
from pathlib import Path

import datasets
import jiwer
import numpy as np
import soundfile as sf
import soxr
import torch
from transformers import WhisperForConditionalGeneration, WhisperProcessor
from transformers.modeling_outputs import BaseModelOutput

from benchmarks.lib.checkout import REPO
from swedish_transcriber.data.features import pad_features

BASE = os.environ.get("BASE", "models/base")
CACHE = os.environ.get("CACHE", "checkpoints/encoder_cache/train/table")
TEST = os.environ.get("TEST", "data/features/test")
REAL = os.environ.get("REAL", "../shared/eval/real-sv")
OUT = REPO / "benchmarks/studies/results/forgetting_trials.jsonl"
BATCH = 8
WARMUP = 8
PROMPT = ["<|startoftranscript|>", "<|sv|>", "<|transcribe|>", "<|notimestamps|>"]


def norm(text: str) -> str:
    """pairs_wer.py's normalisation: lower case, punctuation to spaces."""
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", text.lower())).strip()


def student(base, cfg: dict):
    """A copy of the base with only the configured part (or LoRA adapters) trainable."""
    model = copy.deepcopy(base)
    model.requires_grad_(False)
    part, rank = cfg.get("part", "decoder"), cfg.get("lora", 0)
    if rank:
        from peft import LoraConfig, get_peft_model

        blocks = "(self_attn|encoder_attn)" if part == "decoder" else "encoder_attn"
        target = rf"model\.decoder\.layers\.\d+\.{blocks}\.(q_proj|v_proj)"
        return get_peft_model(
            model, LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=target, lora_dropout=0.0)
        )
    for name, param in model.model.decoder.named_parameters():
        if part == "cross" and "encoder_attn" not in name:
            continue
        if "embed_tokens" in name and not cfg.get("emb", False):
            continue
        param.requires_grad_(True)
    return model


def batch_labels(rows: dict, sot: int) -> torch.Tensor:
    """Labels without the start token, padded with -100 (as the pipeline's collator)."""
    labels = [np.asarray(seq[1:] if seq[0] == sot else seq) for seq in rows["labels"]]
    out = torch.full((len(labels), max(len(seq) for seq in labels)), -100, dtype=torch.long)
    for i, seq in enumerate(labels):
        out[i, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    return out


def train(base, model, cfg: dict) -> float:
    """``steps`` AdamW steps (linear warm-up and decay), CE + distillation; returns seconds."""
    steps, lr = cfg.get("steps", 100), cfg.get("lr", 2e-4)
    weight, temperature = cfg.get("lwf", 0.0), cfg.get("T", 2.0)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / WARMUP, max(0.0, (steps - s) / (steps - WARMUP)))
    )
    table = datasets.load_from_disk(CACHE).with_format("numpy")
    rng = np.random.default_rng(1234)
    epochs = steps * BATCH // len(table) + 1
    order = np.concatenate([rng.permutation(len(table)) for _ in range(epochs)])
    sot = base.config.decoder_start_token_id
    start = time.time()
    model.train()
    for step in range(steps):
        rows = table[order[step * BATCH : (step + 1) * BATCH].tolist()]
        encoded = BaseModelOutput(
            last_hidden_state=torch.as_tensor(rows["encoder_hidden_states"]).float()
        )
        labels = batch_labels(rows, sot)
        out = model(encoder_outputs=encoded, labels=labels)
        loss = out.loss
        if weight > 0:
            with torch.no_grad():
                teacher = base(encoder_outputs=encoded, labels=labels).logits
            mask = labels != -100
            s = torch.log_softmax(out.logits[mask] / temperature, -1)
            t = torch.log_softmax(teacher[mask] / temperature, -1)
            kl = torch.nn.functional.kl_div(s, t, log_target=True, reduction="batchmean")
            loss = loss + weight * kl * temperature**2
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        if step % 20 == 0:
            print(step, round(out.loss.item(), 3), round(time.time() - start, 1), flush=True)
    model.eval()
    return time.time() - start


def decode(model, tokenizer, features) -> list[str]:
    """Greedy, Swedish forced, 96 new tokens: as ``pairs_wer.py``."""
    prompt = tokenizer.convert_tokens_to_ids(PROMPT)
    hypotheses = []
    for i in range(0, len(features), BATCH):
        x = torch.as_tensor(np.asarray(features[i : i + BATCH])).float()
        with torch.inference_mode():
            ids = torch.tensor([prompt] * x.shape[0])
            out = model.generate(x, decoder_input_ids=ids, max_new_tokens=96)
        hypotheses += tokenizer.batch_decode(out, skip_special_tokens=True)
    return hypotheses


def scores(references: list[str], hypotheses: list[str]) -> tuple[float, float]:
    refs = [norm(r) for r in references]
    hyps = [norm(h) or "<empty>" for h in hypotheses]
    return jiwer.wer(refs, hyps), jiwer.cer(refs, hyps)


def real_speech(processor) -> tuple[np.ndarray, list[str]]:
    wavs = sorted(glob.glob(os.path.join(REAL, "*.wav")))
    refs = [Path(w[:-4] + ".txt").read_text(encoding="utf-8").strip() for w in wavs]
    clips = []
    for wav in wavs:
        audio, rate = sf.read(wav, dtype="float32", always_2d=True)
        clips.append(soxr.resample(audio.mean(axis=1), rate, 16000).astype(np.float32))
    features = processor.feature_extractor(clips, sampling_rate=16000, return_tensors="np")
    return features.input_features, refs


def main(argv: list[str]) -> None:
    cfg = json.loads(argv[0])
    torch.set_num_threads(2)
    torch.manual_seed(1234)
    processor = WhisperProcessor.from_pretrained(BASE)
    base = WhisperForConditionalGeneration.from_pretrained(BASE).eval()
    model = student(base, cfg)
    seconds = train(base, model, cfg) if cfg.get("steps", 100) else 0.0
    if cfg.get("lora", 0):
        model = model.merge_and_unload()
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    base_weights = base.state_dict()
    real_features, real_refs = real_speech(processor)
    test = datasets.load_from_disk(TEST).with_format("numpy")
    n = cfg.get("ntest", 32)
    demo = test.select(range(0, len(test), max(1, len(test) // n)))[:n]
    demo_windows = pad_features(demo["input_features"], demo["pad_value"])  # stored unpadded
    for a in cfg.get("alphas", [1.0, 0.5]):
        model.load_state_dict(
            {
                k: (1 - a) * base_weights[k] + a * v if v.is_floating_point() else v
                for k, v in trained.items()
            }
        )
        real = scores(real_refs, decode(model, processor.tokenizer, real_features))
        synthetic = scores(demo["sentence"], decode(model, processor.tokenizer, demo_windows))
        result = {
            "alpha": a,
            "real_wer": round(real[0], 3),
            "real_cer": round(real[1], 3),
            "demo_wer": round(synthetic[0], 3),
            "demo_cer": round(synthetic[1], 3),
            "train_s": round(seconds),
            **cfg,
        }
        print("RESULT", json.dumps(result), flush=True)
        with open(OUT, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
