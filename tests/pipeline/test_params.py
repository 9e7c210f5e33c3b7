"""Strict params sections: a typo in params.yaml must fail, not fall back to a default."""

from __future__ import annotations

import dataclasses
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
from tests.param_sections import SECTIONS
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
    with pytest.raises(ParamsError, match=r"s: unknown key\(s\) learning_rat; known keys"):
        section("s", Section, path)


def test_unknown_nested_key_and_wrong_type(tmp_path):
    with pytest.raises(ParamsError, match=r"s.inner: unknown key\(s\) q"):
        section("s", Section, write(tmp_path, "s:\n  rate: 1\n  inner: {q: 1}\n"))
    with pytest.raises(ParamsError, match=r"s.steps: expected an integer"):
        section("s", Section, write(tmp_path, "s:\n  rate: 1\n  steps: many\n"))


def test_missing_section_and_key(tmp_path):
    with pytest.raises(ParamsError, match="missing section 'other'"):
        section("other", Section, write(tmp_path, "s:\n  rate: 1\n"))
    with pytest.raises(ParamsError, match="missing required key 'rate'"):
        section("s", Section, write(tmp_path, "s:\n  steps: 1\n"))


def test_subset_reads_a_few_keys_of_another_stage_section(tmp_path):
    path = write(tmp_path, "s:\n  rate: 2\n  owned_by_someone_else: 1\n")
    assert section("s", Section, path, subset=True).rate == 2.0


def test_dotted_name_reads_a_nested_section(tmp_path):
    path = write(tmp_path, "s:\n  rate: 1\n  inner: {p: 0.25}\n")
    assert section("s.inner", Inner, path) == Inner(0.25)
    with pytest.raises(ParamsError, match="missing section 's.other'"):
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
    with pytest.raises(ParamsError, match=r"params.yaml: o.bounded: n must be >= 1, got 0"):
        section("o", Outer, path)


def test_every_repo_section_loads_into_its_dataclass():
    """params.yaml and the dataclasses cannot drift: every key is known, none is missing."""
    assert set(load_params(PARAMS_FILE)) == set(SECTIONS)
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
    with pytest.raises(ValueError, match=f"max_new_tokens must be <= {SAMPLE_LEN}"):
        dataclasses.replace(app, max_new_tokens=SAMPLE_LEN + 1)


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
    ("splits", "eval_split", "message"),
    [
        ("[train, test]", "test", r"eval_split: 'test' is also in train_splits \[train, test\]"),
        ("[train, invalidated]", "test", r"train_splits: unknown split\(s\) 'invalidated'.*never"),
        ("[validated]", "test", r"train_splits: unknown split\(s\) 'validated'"),
        ("[train]", "other", r"eval_split: unknown split 'other'; one of train, dev, test"),
        ("[]", "test", r"train_splits: must name at least one split"),
        ("[train, train]", "test", r"train_splits: train given more than once"),
    ],
)
def test_bad_data_splits_are_named(tmp_path, splits, eval_split, message):
    text = DATA + f"  train_splits: {splits}\n  eval_split: {eval_split}\n"
    with pytest.raises(ParamsError, match=r"params.yaml: data: " + message):
        section("data", DataParams, write(tmp_path, text))


def test_repo_default_splits_are_the_release_splits():
    data = section("data", DataParams, PARAMS_FILE)
    assert (data.train_splits, data.eval_split) == (["train"], "test")
    assert data.roles == {"train": ["train"], "dev": ["dev"], "test": ["test"]}
