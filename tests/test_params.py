"""Strict params sections: a typo in params.yaml must fail, not fall back to a default."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from swedish_transcriber.params import ParamsError, section


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


def test_repo_params_file_parses_for_every_stage():
    """Every section in the real params.yaml is readable by its stage's dataclass."""
    from stages.corpus import CorpusParams, DataParams
    from stages.featurize import FeatureSettings
    from stages.ingest import IngestParams
    from swedish_transcriber.model.source import ModelLanguage

    assert section("data", DataParams).source in ("demo", "commonvoice")
    assert len(section("corpus", CorpusParams).speakers) >= 6
    section("ingest", IngestParams)
    section("features", FeatureSettings)
    assert section("model", ModelLanguage, subset=True).language == "sv"
