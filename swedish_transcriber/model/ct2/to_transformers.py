"""CTranslate2 Whisper checkpoint -> Hugging Face ``WhisperForConditionalGeneration`` + processor.

The variable layout is CTranslate2's ``WhisperSpec`` (revision 3), which its Transformers
converter fills as follows, so the import undoes exactly that (``enc``/``dec``: encoder/decoder,
``L``: ``model.encoder.layers.N`` or ``model.decoder.layers.N``):

==========================================  ===============================================
CTranslate2                                 transformers
==========================================  ===============================================
enc/conv{1,2}/{weight,bias}                 model.encoder.conv{1,2}.*
enc/position_encodings/encodings            model.encoder.embed_positions.weight
enc/layer_N/self_attention/linear_0 [3d,d]  L.self_attn.{q,k,v}_proj (k_proj has no bias)
enc/layer_N/self_attention/linear_1         L.self_attn.out_proj
enc/layer_N/self_attention/layer_norm       L.self_attn_layer_norm (gamma/beta: weight/bias)
enc/layer_N/ffn/linear_{0,1}, layer_norm    L.fc1, L.fc2, L.final_layer_norm
enc/layer_norm                              model.encoder.layer_norm
dec/embeddings/weight (= dec/projection)    model.decoder.embed_tokens.weight (= proj_out)
dec/position_encodings/encodings            model.decoder.embed_positions.weight
dec/layer_N/self_attention/...              as in the encoder
dec/layer_N/attention/linear_0              L.encoder_attn.q_proj
dec/layer_N/attention/linear_1 [2d,d]       L.encoder_attn.{k,v}_proj
dec/layer_N/attention/linear_2, layer_norm  L.encoder_attn.out_proj, L.encoder_attn_layer_norm
==========================================  ===============================================

The converter writes zeros for the key bias it fuses in; a key bias is dropped either way, as
adding a constant vector to every key shifts all of a query's scores equally and softmax
ignores that. Rank-0 variables are attributes: their values are checked (GELU, pre-norm, no
embedding scaling, ...). Every CTranslate2 variable must be used and every Hugging Face
parameter set, or the import fails.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from swedish_transcriber.model.ct2.reader import Ct2Checkpoint, Ct2FormatError, Ct2Model
from swedish_transcriber.whisper import CHUNK_LENGTH, HOP_LENGTH, N_FFT, N_TEXT_CTX, SAMPLE_RATE

TASKS = ("transcribe", "translate")
# CTranslate2's Activation enum (include/ctranslate2/ops/activation.h): 3 is erf GELU.
_GELU = 3
# Attributes whose value must be this for Whisper (absent is fine: older converters).
_EXPECTED_ATTRIBUTES = {
    "decoder/activation": _GELU,
    "decoder/pre_norm": 1,
    "decoder/scale_embeddings": 0,
    "decoder/alibi": 0,
    "decoder/alibi_use_positive_positions": 0,
    "decoder/scale_alibi": 0,
    "decoder/start_from_zero_embedding": 0,
    "decoder/multi_query_attention": 0,
    "encoder/pre_norm": 1,
    "encoder/activation": _GELU,
}
# Attributes that only steer CTranslate2's own runtime (word alignment); nothing to import.
_RUNTIME_ATTRIBUTES = ("decoder/alignment_layer", "decoder/alignment_heads")
_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|startoftranscript|>",
    "<|translate|>",
    "<|transcribe|>",
    "<|startoflm|>",
    "<|startofprev|>",
    "<|nocaptions|>",  # newer vocabularies (faster-whisper 1.x, large-v3) call it <|nospeech|>
    "<|nospeech|>",
    "<|notimestamps|>",
)
_REQUIRED_TOKENS = (
    "<|endoftext|>",
    "<|startoftranscript|>",
    "<|translate|>",
    "<|transcribe|>",
    "<|startofprev|>",
    "<|notimestamps|>",
)


class WhisperImportError(ValueError):
    """The checkpoint's variables do not form a Whisper model the importer understands."""


@dataclass(frozen=True)
class WhisperDims:
    """The sizes of a Whisper model, read off its tensors."""

    n_mels: int
    n_vocab: int
    d_model: int
    encoder_layers: int
    decoder_layers: int
    encoder_heads: int
    decoder_heads: int
    encoder_ffn_dim: int
    decoder_ffn_dim: int
    max_source_positions: int
    max_target_positions: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# Tensors


class _Variables:
    """Hands out CTranslate2 variables as float32 and remembers which were used."""

    def __init__(self, model: Ct2Model) -> None:
        self.model = model
        self.used: set[str] = set()

    def has(self, name: str) -> bool:
        return self.model.has(name)

    def tensor(self, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
        if not self.model.has(name):
            raise WhisperImportError(f"{self.model.label}: missing variable {name}")
        self.used.add(name)
        self.used.add(self.model.resolve(name))
        t = self.model.get(name)
        if t.is_scalar:
            raise WhisperImportError(f"{self.model.label}: {name} is a scalar, expected a tensor")
        if shape is not None and t.shape != shape:
            raise WhisperImportError(
                f"{self.model.label}: {name} has shape {list(t.shape)}, expected {list(shape)}"
            )
        return t.float32()

    def attribute(self, name: str) -> int | float | None:
        if not self.model.has(name):
            return None
        t = self.model.get(name)
        if not t.is_scalar:
            raise WhisperImportError(f"{self.model.label}: {name} should be a scalar attribute")
        self.used.add(name)
        return t.item()

    def unused(self) -> list[str]:
        return [n for n in self.model.names() if n not in self.used]


def _count_layers(model: Ct2Model, prefix: str) -> int:
    pattern = re.compile(rf"^{prefix}/layer_(\d+)/")
    found = {int(m.group(1)) for n in model.names() if (m := pattern.match(n))}
    if not found:
        raise WhisperImportError(f"{model.label}: no {prefix} layers found")
    if found != set(range(len(found))):
        raise WhisperImportError(
            f"{model.label}: {prefix} layers are not numbered 0..{len(found) - 1}: {sorted(found)}"
        )
    return len(found)


def infer_dims(model: Ct2Model) -> WhisperDims:
    """Model sizes from the tensor shapes (heads from the num_heads attributes)."""
    v = model
    for name in (
        "encoder/conv1/weight",
        "decoder/embeddings/weight",
        "encoder/position_encodings/encodings",
        "decoder/position_encodings/encodings",
        "encoder/layer_0/ffn/linear_0/weight",
        "decoder/layer_0/ffn/linear_0/weight",
    ):
        if not v.has(name) or v.get(name).is_scalar:
            raise WhisperImportError(f"{model.label}: missing variable {name}: not a Whisper model")
    conv1 = v.get("encoder/conv1/weight").shape
    emb = v.get("decoder/embeddings/weight").shape
    if len(conv1) != 3 or len(emb) != 2 or conv1[0] != emb[1]:
        raise WhisperImportError(
            f"{model.label}: inconsistent shapes: conv1 {list(conv1)}, embeddings {list(emb)}"
        )
    d_model = emb[1]
    if conv1[1] not in (80, 128):
        raise WhisperImportError(
            f"{model.label}: conv1 expects {conv1[1]} mel bins; Whisper uses 80 or 128"
        )

    def heads(prefix: str) -> int:
        n = v.get(f"{prefix}/num_heads").item() if v.has(f"{prefix}/num_heads") else d_model // 64
        if n <= 0 or d_model % n:
            raise WhisperImportError(f"{model.label}: {prefix} has {n} heads for d_model {d_model}")
        return int(n)

    return WhisperDims(
        n_mels=conv1[1],
        n_vocab=emb[0],
        d_model=d_model,
        encoder_layers=_count_layers(model, "encoder"),
        decoder_layers=_count_layers(model, "decoder"),
        encoder_heads=heads("encoder"),
        decoder_heads=heads("decoder"),
        encoder_ffn_dim=v.get("encoder/layer_0/ffn/linear_0/weight").shape[0],
        decoder_ffn_dim=v.get("decoder/layer_0/ffn/linear_0/weight").shape[0],
        max_source_positions=v.get("encoder/position_encodings/encodings").shape[0],
        max_target_positions=v.get("decoder/position_encodings/encodings").shape[0],
    )


def _linear(v: _Variables, src: str, dst: str, out: dict, rows: int, cols: int) -> None:
    out[f"{dst}.weight"] = v.tensor(f"{src}/weight", (rows, cols))
    out[f"{dst}.bias"] = v.tensor(f"{src}/bias", (rows,))


def _layer_norm(v: _Variables, src: str, dst: str, out: dict, d: int) -> None:
    out[f"{dst}.weight"] = v.tensor(f"{src}/gamma", (d,))
    out[f"{dst}.bias"] = v.tensor(f"{src}/beta", (d,))


def _split_linear(
    v: _Variables, src: str, dsts: list[str | None], out: dict, d: int, biased: list[bool]
) -> None:
    """A fused [n*d, d] linear -> n projections (``None`` skips; biases only where asked)."""
    n = len(dsts)
    weight = v.tensor(f"{src}/weight", (n * d, d))
    bias = v.tensor(f"{src}/bias", (n * d,))
    for i, (dst, keep_bias) in enumerate(zip(dsts, biased, strict=True)):
        if dst is None:
            continue
        out[f"{dst}.weight"] = weight[i * d : (i + 1) * d].copy()
        if keep_bias:
            out[f"{dst}.bias"] = bias[i * d : (i + 1) * d].copy()


def ct2_to_hf_state_dict(model: Ct2Model) -> tuple[dict[str, np.ndarray], WhisperDims]:
    """float32 tensors named as in ``WhisperForConditionalGeneration.state_dict()``."""
    dims = infer_dims(model)
    v = _Variables(model)
    d, out = dims.d_model, {}

    for name, expected in _EXPECTED_ATTRIBUTES.items():
        value = v.attribute(name)
        if value is not None and value != expected:
            raise WhisperImportError(
                f"{model.label}: attribute {name} is {value}, Whisper needs {expected}"
            )
    for name in _RUNTIME_ATTRIBUTES:
        v.attribute(name)
    v.attribute("encoder/num_heads")
    v.attribute("decoder/num_heads")

    enc = "model.encoder"
    out[f"{enc}.conv1.weight"] = v.tensor("encoder/conv1/weight", (d, dims.n_mels, 3))
    out[f"{enc}.conv1.bias"] = v.tensor("encoder/conv1/bias", (d,))
    out[f"{enc}.conv2.weight"] = v.tensor("encoder/conv2/weight", (d, d, 3))
    out[f"{enc}.conv2.bias"] = v.tensor("encoder/conv2/bias", (d,))
    out[f"{enc}.embed_positions.weight"] = v.tensor(
        "encoder/position_encodings/encodings", (dims.max_source_positions, d)
    )
    _layer_norm(v, "encoder/layer_norm", f"{enc}.layer_norm", out, d)

    def self_attention(src: str, dst: str) -> None:
        _split_linear(
            v,
            f"{src}/self_attention/linear_0",
            [f"{dst}.self_attn.q_proj", f"{dst}.self_attn.k_proj", f"{dst}.self_attn.v_proj"],
            out,
            d,
            [True, False, True],
        )
        _linear(v, f"{src}/self_attention/linear_1", f"{dst}.self_attn.out_proj", out, d, d)
        _layer_norm(v, f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm", out, d)

    def ffn(src: str, dst: str, ffn_dim: int) -> None:
        _linear(v, f"{src}/ffn/linear_0", f"{dst}.fc1", out, ffn_dim, d)
        _linear(v, f"{src}/ffn/linear_1", f"{dst}.fc2", out, d, ffn_dim)
        _layer_norm(v, f"{src}/ffn/layer_norm", f"{dst}.final_layer_norm", out, d)

    for i in range(dims.encoder_layers):
        self_attention(f"encoder/layer_{i}", f"{enc}.layers.{i}")
        ffn(f"encoder/layer_{i}", f"{enc}.layers.{i}", dims.encoder_ffn_dim)

    dec = "model.decoder"
    embeddings = v.tensor("decoder/embeddings/weight", (dims.n_vocab, d))
    out[f"{dec}.embed_tokens.weight"] = embeddings
    out[f"{dec}.embed_positions.weight"] = v.tensor(
        "decoder/position_encodings/encodings", (dims.max_target_positions, d)
    )
    _layer_norm(v, "decoder/layer_norm", f"{dec}.layer_norm", out, d)
    projection = "decoder/projection/weight"
    if not v.has(projection):
        raise WhisperImportError(f"{model.label}: missing variable {projection}")
    if model.resolve(projection) == model.resolve("decoder/embeddings/weight"):
        v.used.add(projection)  # stored as an alias: tied, as Whisper's output layer is
    elif not np.array_equal(v.tensor(projection, (dims.n_vocab, d)), embeddings):
        raise WhisperImportError(
            f"{model.label}: {projection} differs from decoder/embeddings/weight; Whisper ties "
            f"its output projection to the token embeddings"
        )
    out["proj_out.weight"] = embeddings  # tied
    if v.has("decoder/projection/bias"):
        raise WhisperImportError(
            f"{model.label}: decoder/projection/bias is set; Whisper's output has no bias"
        )

    for i in range(dims.decoder_layers):
        src, dst = f"decoder/layer_{i}", f"{dec}.layers.{i}"
        self_attention(src, dst)
        _linear(v, f"{src}/attention/linear_0", f"{dst}.encoder_attn.q_proj", out, d, d)
        _split_linear(
            v,
            f"{src}/attention/linear_1",
            [f"{dst}.encoder_attn.k_proj", f"{dst}.encoder_attn.v_proj"],
            out,
            d,
            [False, True],
        )
        _linear(v, f"{src}/attention/linear_2", f"{dst}.encoder_attn.out_proj", out, d, d)
        _layer_norm(v, f"{src}/attention/layer_norm", f"{dst}.encoder_attn_layer_norm", out, d)
        ffn(src, dst, dims.decoder_ffn_dim)

    unused = v.unused()
    if unused:
        shown = ", ".join(unused[:10])
        if len(unused) > 10:
            shown += f" and {len(unused) - 10} more"
        raise WhisperImportError(
            f"{model.label}: {len(unused)} CTranslate2 variable(s) not understood by the Whisper "
            f"import: {shown}"
        )
    return out, dims


# --------------------------------------------------------------------------------------------
# Tokens, configs, processor


def language_code(language: str) -> str:
    """``sv``, ``swedish`` or ``<|sv|>`` -> ``sv`` (Whisper's language codes)."""
    from transformers.models.whisper.tokenization_whisper import LANGUAGES, TO_LANGUAGE_CODE

    key = language.strip().lower()
    if key.startswith("<|") and key.endswith("|>"):
        key = key[2:-2]
    if key in LANGUAGES:
        return key
    if key in TO_LANGUAGE_CODE:
        return TO_LANGUAGE_CODE[key]
    raise ValueError(
        f"unknown Whisper language {language!r}; use a code such as 'sv' or a name such as "
        f"'swedish'"
    )


def check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"unknown Whisper task {task!r}; expected one of {', '.join(TASKS)}")
    return task


@dataclass(frozen=True)
class SpecialIds:
    """Whisper's special token ids, read off a vocabulary."""

    eot: int
    sot: int
    translate: int
    transcribe: int
    sot_prev: int
    no_timestamps: int
    lang_to_id: dict[str, int]

    @classmethod
    def from_checkpoint(cls, ckpt: Ct2Checkpoint) -> SpecialIds:
        ids = {tok: i for i, tok in enumerate(ckpt.vocabulary)}
        missing = [t for t in _REQUIRED_TOKENS if t not in ids]
        if missing:
            raise Ct2FormatError(f"{ckpt.label}: vocabulary lacks {', '.join(missing)}")
        lang_ids = ckpt.config.get("lang_ids")
        if lang_ids is None:  # Whisper's layout: languages between sot and translate
            lang_ids = range(ids["<|startoftranscript|>"] + 1, ids["<|translate|>"])
        bad = [i for i in lang_ids if not isinstance(i, int) or not 0 <= i < len(ckpt.vocabulary)]
        if bad:
            raise Ct2FormatError(f"{ckpt.label}: config.json lang_ids out of range: {bad[:5]}")
        lang_to_id = {ckpt.vocabulary[i]: int(i) for i in lang_ids}
        return cls(
            eot=ids["<|endoftext|>"],
            sot=ids["<|startoftranscript|>"],
            translate=ids["<|translate|>"],
            transcribe=ids["<|transcribe|>"],
            sot_prev=ids["<|startofprev|>"],
            no_timestamps=ids["<|notimestamps|>"],
            lang_to_id=lang_to_id,
        )


def whisper_config(dims: WhisperDims, special: SpecialIds):
    """The model config; suppress lists live in the generation config (transformers' rule)."""
    from transformers import WhisperConfig

    return WhisperConfig(
        vocab_size=dims.n_vocab,
        num_mel_bins=dims.n_mels,
        d_model=dims.d_model,
        encoder_layers=dims.encoder_layers,
        decoder_layers=dims.decoder_layers,
        encoder_attention_heads=dims.encoder_heads,
        decoder_attention_heads=dims.decoder_heads,
        encoder_ffn_dim=dims.encoder_ffn_dim,
        decoder_ffn_dim=dims.decoder_ffn_dim,
        max_source_positions=dims.max_source_positions,
        max_target_positions=dims.max_target_positions,
        activation_function="gelu",
        scale_embedding=False,
        tie_word_embeddings=True,
        pad_token_id=special.eot,
        bos_token_id=special.eot,
        eos_token_id=special.eot,
        decoder_start_token_id=special.sot,
        suppress_tokens=None,
        begin_suppress_tokens=None,
    )


def generation_config(
    dims: WhisperDims, special: SpecialIds, ct2_config: dict[str, Any], language: str, task: str
):
    """Greedy Swedish transcription by default, with Whisper's suppress and language tables."""
    from transformers import GenerationConfig

    extra: dict[str, Any] = {}
    if ct2_config.get("suppress_ids") is not None:
        extra["suppress_tokens"] = [int(t) for t in ct2_config["suppress_ids"]]
    if ct2_config.get("suppress_ids_begin") is not None:
        extra["begin_suppress_tokens"] = [int(t) for t in ct2_config["suppress_ids_begin"]]
    if ct2_config.get("alignment_heads"):
        extra["alignment_heads"] = [[int(a), int(b)] for a, b in ct2_config["alignment_heads"]]
    gen = GenerationConfig(
        decoder_start_token_id=special.sot,
        bos_token_id=special.eot,
        eos_token_id=special.eot,
        pad_token_id=special.eot,
        max_length=dims.max_target_positions,
        is_multilingual=True,
        lang_to_id=dict(special.lang_to_id),
        task_to_id={"transcribe": special.transcribe, "translate": special.translate},
        no_timestamps_token_id=special.no_timestamps,
        prev_sot_token_id=special.sot_prev,
        max_initial_timestamp_index=50,
        return_timestamps=False,
        **extra,
    )
    return set_language_and_task(gen, language, task, where="the imported checkpoint")


def set_language_and_task(gen, language: str, task: str, where: str):
    """Make ``generate()`` transcribe ``language`` without being told (validated)."""
    code = language_code(language)
    check_task(task)
    lang_to_id = getattr(gen, "lang_to_id", None) or {}
    if getattr(gen, "is_multilingual", None) is False:
        raise ValueError(
            f"{where}: English-only Whisper model (generation config: is_multilingual false); "
            f"Swedish needs a multilingual checkpoint"
        )
    if not lang_to_id:
        raise ValueError(
            f"{where}: the generation config has no lang_to_id table (an English-only model or "
            f"an outdated generation_config.json), so the language cannot be set"
        )
    if f"<|{code}|>" not in lang_to_id:
        raise ValueError(f"{where}: language <|{code}|> is not among the model's languages")
    if not getattr(gen, "task_to_id", None) or task not in gen.task_to_id:
        raise ValueError(f"{where}: the generation config has no task_to_id entry for {task!r}")
    gen.language = code
    gen.task = task
    gen.forced_decoder_ids = None  # superseded by language/task; would be ignored anyway
    gen.return_timestamps = False
    return gen


def build_tokenizer(
    ckpt: Ct2Checkpoint, special: SpecialIds, language: str, task: str, max_length: int = N_TEXT_CTX
):
    """``WhisperTokenizerFast`` from the shipped tokenizer.json, checked id by id."""
    from tokenizers import AddedToken
    from transformers import WhisperTokenizerFast

    try:
        tok = WhisperTokenizerFast(
            tokenizer_file=str(ckpt.tokenizer_file),
            language=language_code(language),
            task=check_task(task),
            predict_timestamps=False,
        )
    except Exception as exc:  # tokenizers raises plain Exception subclasses on bad JSON
        raise Ct2FormatError(f"{ckpt.tokenizer_file}: cannot load tokenizer.json ({exc})") from None
    vocab = ckpt.vocabulary
    # faster-whisper's tokenizer.json may stop at <|notimestamps|>: add the timestamp tokens
    # (<|0.00|> ... <|30.00|>) the model's vocabulary has after it.
    if len(tok) < len(vocab):
        missing = vocab[len(tok) :]
        tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in missing])
    # In id order, ending with <|notimestamps|>: transformers takes the id after the last
    # special token as the first timestamp token.
    ids = {t: i for i, t in enumerate(vocab)}
    specials = sorted((t for t in (*_SPECIAL_TOKENS, *special.lang_to_id) if t in ids), key=ids.get)
    tok.add_special_tokens(
        {"additional_special_tokens": specials}, replace_additional_special_tokens=True
    )
    tok.model_max_length = max_length
    got = tok.convert_ids_to_tokens(list(range(len(vocab))))
    if len(tok) != len(vocab) or got != vocab:
        bad = next((i for i, (a, b) in enumerate(zip(got, vocab, strict=False)) if a != b), None)
        detail = (
            f"id {bad} is {got[bad]!r} in tokenizer.json but {vocab[bad]!r} in the vocabulary"
            if bad is not None
            else f"{len(tok)} tokens vs {len(vocab)}"
        )
        raise Ct2FormatError(
            f"{ckpt.tokenizer_file}: tokenizer.json does not match the CTranslate2 vocabulary "
            f"({detail})"
        )
    expected_prefix = [
        special.sot,
        special.lang_to_id[f"<|{language_code(language)}|>"],
        special.transcribe if task == "transcribe" else special.translate,
        special.no_timestamps,
    ]
    if tok.prefix_tokens != expected_prefix:
        raise Ct2FormatError(
            f"{ckpt.tokenizer_file}: the tokenizer's prefix {tok.prefix_tokens} differs from the "
            f"vocabulary's {expected_prefix}"
        )
    return tok


def build_processor(ckpt: Ct2Checkpoint, dims: WhisperDims, language: str, task: str):
    from transformers import WhisperFeatureExtractor, WhisperProcessor

    special = SpecialIds.from_checkpoint(ckpt)
    tokenizer = build_tokenizer(ckpt, special, language, task, dims.max_target_positions)
    feature_extractor = WhisperFeatureExtractor(
        feature_size=dims.n_mels,
        sampling_rate=SAMPLE_RATE,
        hop_length=HOP_LENGTH,
        chunk_length=CHUNK_LENGTH,
        n_fft=N_FFT,
    )
    return WhisperProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer)


def build_model(state_dict: dict[str, np.ndarray], config):
    """A ``WhisperForConditionalGeneration`` holding exactly ``state_dict`` (no random init)."""
    import torch
    from transformers import WhisperForConditionalGeneration

    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    expected = {k: tuple(t.shape) for k, t in model.state_dict().items()}
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong = [k for k in expected if k in state_dict and tuple(state_dict[k].shape) != expected[k]]
    if missing or unexpected or wrong:
        raise WhisperImportError(
            "the converted tensors do not fit WhisperForConditionalGeneration: "
            f"unset {missing[:5]}, unknown {unexpected[:5]}, wrong shape {wrong[:5]}"
        )
    tensors = {k: torch.from_numpy(np.ascontiguousarray(a)) for k, a in state_dict.items()}
    tensors["proj_out.weight"] = tensors["model.decoder.embed_tokens.weight"]
    model.load_state_dict(tensors, strict=True, assign=True)
    model.tie_weights()
    still_meta = [n for n, p in [*model.named_parameters(), *model.named_buffers()] if p.is_meta]
    if still_meta:
        raise WhisperImportError(f"Hugging Face parameters left unset: {still_meta[:5]}")
    return model.eval()


def import_checkpoint(
    ckpt: Ct2Checkpoint, out_dir: str | Path, language: str = "sv", task: str = "transcribe"
) -> dict[str, Any]:
    """Write model (float32 safetensors), processor and generation config into ``out_dir``.

    Returns the facts for ``import_info.json``. ``out_dir`` is written in place: callers make
    it atomic (``swedish_transcriber.atomic.atomic_dir``).
    """
    out_dir = Path(out_dir)
    state_dict, dims = ct2_to_hf_state_dict(ckpt.model)
    special = SpecialIds.from_checkpoint(ckpt)
    processor = build_processor(ckpt, dims, language, task)
    config = whisper_config(dims, special)
    model = build_model(state_dict, config)
    model.generation_config = generation_config(dims, special, ckpt.config, language, task)
    model.save_pretrained(out_dir, safe_serialization=True)
    processor.save_pretrained(out_dir)
    return {
        "format": "ctranslate2",
        "sha256": ckpt.model.sha256,
        "model_bin_bytes": ckpt.model.num_bytes,
        "binary_version": ckpt.model.binary_version,
        "spec": ckpt.model.spec_name,
        "spec_revision": ckpt.model.spec_revision,
        "stored_dtypes": sorted(
            {t.dtype for t in ckpt.model.variables.values() if not t.is_scalar}
        ),
        "dims": dims.as_dict(),
        "files": ckpt.files,
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
