"""Strict params sections: a typo in params.yaml must fail, not fall back to a default."""

from __future__ import annotations

import dataclasses
import shutil
import typing
from dataclasses import dataclass, field

import pytest

from swedish_transcriber.data.augmentation import AugmentParams, read_augment_params
from swedish_transcriber.data.ingest import MeasureSettings
from swedish_transcriber.data.source import DataParams
from swedish_transcriber.evaluation.transcription import EvaluateParams
from swedish_transcriber.model.training.params import TrainParams
from swedish_transcriber.params import ParamsError, load_params, section
from swedish_transcriber.serving.engines.contract import EngineSettings
from swedish_transcriber.serving.long_form import ChunkPlan
from swedish_transcriber.serving.media import MediaLimits
from swedish_transcriber.serving.page import AppParams
from swedish_transcriber.whisper import (
    FRAME_SECONDS,
    N_FRAMES,
    N_SAMPLES,
    SAMPLE_LEN,
    DecodeOptions,
)
from tests.messages import raises_naming
from tests.param_sections import SECTIONS, SHARED
from tests.repo_params import PARAMS_FILE


@dataclass
class Inner:
    p: float = 0.5


@dataclass
class Section:
    rate: float
    steps: int = 10
    name: str = "x"
    inner: Inner = field(default_factory=Inner)
    items: list[Inner] = field(default_factory=list)


def write(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_and_coerces(tmp_path):
    path = write(tmp_path, "s:\n  rate: 1\n  inner: {p: 1}\n  items: [{p: 0.1}]\n")
    got = section("s", Section, path)
    assert got.rate == 1.0 and isinstance(got.rate, float) and got.steps == 10
    assert got.inner.p == 1.0 and got.items[0].p == 0.1


def test_unknown_key_is_named(tmp_path):
    path = write(tmp_path, "s:\n  rate: 1\n  learning_rat: 3\n")
    with raises_naming(ParamsError, path, "s", "learning_rat", "rate"):  # and the known keys
        section("s", Section, path)


def test_unknown_nested_key_and_wrong_type(tmp_path):
    with raises_naming(ParamsError, "s.inner", "q"):
        section("s", Section, write(tmp_path, "s:\n  rate: 1\n  inner: {q: 1}\n"))
    with raises_naming(ParamsError, "s.steps", "integer", "'many'"):
        section("s", Section, write(tmp_path, "s:\n  rate: 1\n  steps: many\n"))


def test_missing_section_and_key(tmp_path):
    with raises_naming(ParamsError, tmp_path / "params.yaml", "'other'"):
        section("other", Section, write(tmp_path, "s:\n  rate: 1\n"))
    with raises_naming(ParamsError, "s", "'rate'"):
        section("s", Section, write(tmp_path, "s:\n  steps: 1\n"))


def test_subset_reads_a_few_keys_of_another_stage_section(tmp_path):
    path = write(tmp_path, "s:\n  rate: 2\n  owned_by_someone_else: 1\n")
    assert section("s", Section, path, subset=True).rate == 2.0


def test_dotted_name_reads_a_nested_section(tmp_path):
    path = write(tmp_path, "s:\n  rate: 1\n  inner: {p: 0.25}\n")
    assert section("s.inner", Inner, path) == Inner(0.25)
    with raises_naming(ParamsError, path, "'s.other'"):
        section("s.other", Inner, path)


@dataclass
class Bounded:
    n: int

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")


@dataclass
class Outer:
    bounded: Bounded


def test_a_broken_bound_names_the_nested_section(tmp_path):
    path = write(tmp_path, "o:\n  bounded: {n: 0}\n")
    with raises_naming(ParamsError, path, "o.bounded", "n", ">= 1", 0):
        section("o", Outer, path)


def test_every_repo_section_loads_into_its_dataclass():
    """params.yaml and the dataclasses cannot drift: every key is known, none is missing."""
    assert set(load_params(PARAMS_FILE)) == set(SECTIONS) | set(SHARED)
    for name, cls in SECTIONS.items():
        # augment's transforms are {Transform: kwargs}, read by its own reader.
        loaded = read_augment_params(PARAMS_FILE) if cls is AugmentParams else section(name, cls)
        assert isinstance(loaded, cls), name


def test_param_dataclasses_hold_no_second_set_of_values():
    """No field of a params dataclass has a default: params.yaml is the one place for values."""
    seen: set[type] = set()

    def check(cls: type) -> None:
        if cls in seen:
            return
        seen.add(cls)
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            assert f.default is dataclasses.MISSING, f"{cls.__name__}.{f.name} has a default"
            assert f.default_factory is dataclasses.MISSING, f"{cls.__name__}.{f.name}"
            for inner in (hints[f.name], *typing.get_args(hints[f.name])):
                if dataclasses.is_dataclass(inner):
                    check(inner)

    for cls in SECTIONS.values():
        check(cls)
    for shared in (DecodeOptions, MediaLimits, ChunkPlan, EngineSettings, MeasureSettings):
        assert shared in seen, shared


def test_the_shared_decode_options_are_used_in_each_place():
    train = section("train", TrainParams, PARAMS_FILE).generation
    evaluate = section("evaluate", EvaluateParams, PARAMS_FILE).decode
    app = section("app", AppParams, PARAMS_FILE).decode
    assert all(isinstance(d, DecodeOptions) for d in (train, evaluate, app))
    assert section("evaluate.decode", DecodeOptions, PARAMS_FILE) == evaluate
    with raises_naming(ValueError, "max_new_tokens", f"<= {SAMPLE_LEN}", SAMPLE_LEN + 1):
        dataclasses.replace(app, max_new_tokens=SAMPLE_LEN + 1)


USES = ("evaluate.decode", "train.generation", "app.decode")  # DecodeOptions over `decode`


def test_each_use_writes_only_its_own_decode_keys():
    """The shared keys are written once: a use sets its sizes and what it turns off."""
    raw = load_params(PARAMS_FILE)
    shared = raw["decode"]
    assert "batch_size" not in shared and "max_new_tokens" not in shared
    for use in USES:
        section_name, key = use.split(".")
        own = raw[section_name][key]
        assert {"batch_size", "max_new_tokens"} <= set(own), use
        assert not {k for k in own if k in shared and own[k] == shared[k]}, use
        # Every shared key reaches the use unless it sets its own.
        assert section(use, DecodeOptions, PARAMS_FILE) == DecodeOptions(**(shared | own))


DECODE = "decode:\n  num_beams: 1\n  seed: 1\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("e:\n  d: {batch_size: 2, num_beam: 2}\n", r"e.d: unknown key\(s\) num_beam"),
        (
            "e:\n  d: {batch_size: 2}\n",
            r"e.d: missing required key 'max_new_tokens' "
            r"\(in neither decode nor e.d\)",
        ),
    ],
)
def test_a_use_of_the_shared_decode_is_read_strictly(tmp_path, text, message):
    @dataclass
    class E:
        d: DecodeOptions

    with pytest.raises(ParamsError, match=message):
        section("e", E, write(tmp_path, DECODE + text))


def test_the_shared_decode_is_read_strictly(tmp_path):
    with pytest.raises(ParamsError, match=r"params.yaml: decode: unknown key\(s\) beams"):
        section(
            "app.decode", DecodeOptions, write(tmp_path, "decode: {beams: 1}\napp: {decode: {}}\n")
        )
    with pytest.raises(ParamsError, match=r"missing section 'decode' \(the DecodeOptions that"):
        section("app.decode", DecodeOptions, write(tmp_path, "app: {decode: {}}\n"))


@pytest.mark.parametrize(
    ("override", "changed"),
    [
        ("+evaluate.decode.num_beams=2", {"evaluate.decode"}),  # + adds a key the use lacks
        ("evaluate.decode.batch_size=4", {"evaluate.decode"}),
        ("app.decode.max_new_tokens=100", {"app.decode"}),
        ("decode.num_beams=2", set(USES)),  # the shared key: every use
        ("decode.logprob_threshold=-2.0", {"train.generation", "app.decode"}),  # evaluate's own
    ],
)
def test_dvc_set_param_changes_the_uses_it_names(override, changed, tmp_path):
    """What `dvc exp run -S <override>` writes (DVC's own function, as its queue calls it),
    read back by the strict loader: the named use changes, the others do not."""
    from dvc.utils.hydra import apply_overrides

    path = tmp_path / "params.yaml"
    shutil.copy2(PARAMS_FILE, path)
    apply_overrides(path, [override])
    for use in USES:
        before, after = (section(use, DecodeOptions, p) for p in (PARAMS_FILE, path))
        assert (before != after) == (use in changed), use
    for name, cls in SECTIONS.items():
        if cls is not AugmentParams:
            section(name, cls, path)
    assert "# How every decoding run decodes" in path.read_text(encoding="utf-8")


def test_dvc_refuses_a_use_key_without_the_plus(tmp_path):
    from dvc.exceptions import InvalidArgumentError
    from dvc.utils.hydra import apply_overrides

    path = tmp_path / "params.yaml"
    shutil.copy2(PARAMS_FILE, path)
    with pytest.raises(InvalidArgumentError):
        apply_overrides(path, ["evaluate.decode.num_beams=2"])


def test_whisper_constants_derive_from_each_other():
    assert N_SAMPLES == 480_000 and N_FRAMES == 3000 and SAMPLE_LEN == 224
    assert pytest.approx(0.02) == FRAME_SECONDS


DATA = "data:\n  source: commonvoice\n  raw_dir: r\n  max_clips: 0\n  seed: 1\n"


@pytest.mark.parametrize(
    ("splits", "eval_split", "roles"),
    [
        ("[train]", "test", {"train": ["train"], "dev": ["dev"], "test": ["test"]}),
        ("[train, dev]", "test", {"train": ["train", "dev"], "dev": ["test"], "test": ["test"]}),
        ("[train]", "dev", {"train": ["train"], "dev": ["dev"], "test": ["dev"]}),
        ("[train, test]", "dev", {"train": ["train", "test"], "dev": ["dev"], "test": ["dev"]}),
    ],
)
def test_data_splits_map_onto_the_roles(tmp_path, splits, eval_split, roles):
    text = DATA + f"  train_splits: {splits}\n  eval_split: {eval_split}\n"
    assert section("data", DataParams, write(tmp_path, text)).roles == roles


@pytest.mark.parametrize(
    ("splits", "eval_split", "facts"),
    [  # the key, the split at fault, and the splits to choose from
        ("[train, test]", "test", ["eval_split", "'test'", "train_splits"]),
        ("[train, invalidated]", "test", ["train_splits", "'invalidated'"]),
        ("[validated]", "test", ["train_splits", "'validated'"]),
        ("[train]", "other", ["eval_split", "'other'", "train", "dev", "test"]),
        ("[]", "test", ["train_splits"]),
        ("[train, train]", "test", ["train_splits", "train"]),
    ],
)
def test_bad_data_splits_are_named(tmp_path, splits, eval_split, facts):
    text = DATA + f"  train_splits: {splits}\n  eval_split: {eval_split}\n"
    path = write(tmp_path, text)
    with raises_naming(ParamsError, path, "data", *facts):
        section("data", DataParams, path)


def test_repo_default_splits_are_the_release_splits():
    data = section("data", DataParams, PARAMS_FILE)
    assert (data.train_splits, data.eval_split) == (["train"], "test")
    assert data.roles == {"train": ["train"], "dev": ["dev"], "test": ["test"]}
