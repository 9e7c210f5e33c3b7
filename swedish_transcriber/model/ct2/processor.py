"""The processor and configs of an imported CTranslate2 Whisper, from its shipped files.

The vocabulary and ``tokenizer.json`` give the tokenizer (checked id by id against the
vocabulary), the special token ids and the language table; the sizes
(:class:`~swedish_transcriber.model.ct2.weights.WhisperDims`) give the feature extractor,
the model config and the generation config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from swedish_transcriber.model.ct2.reader import Ct2Checkpoint, Ct2FormatError
from swedish_transcriber.model.ct2.weights import WhisperDims
from swedish_transcriber.whisper import (
    CHUNK_LENGTH,
    HOP_LENGTH,
    N_FFT,
    N_TEXT_CTX,
    SAMPLE_RATE,
    check_task,
    language_code,
    set_language_and_task,
)

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
