"""CTranslate2 Whisper weights -> the state dict of a ``WhisperForConditionalGeneration``.

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
parameter set, or the import fails. :func:`build_model` then places the tensors into the model
(no random initialisation).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np

from swedish_transcriber.model.ct2.reader import Ct2Model

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
