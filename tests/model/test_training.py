"""The train stage (it writes models/trained) on a tiny random Whisper: outputs, DVCLive logs,
resume after a kill, fingerprinted checkpoints, the encoder cache, bad input, and DDP under
torchrun."""

from __future__ import annotations

import dataclasses
import shlex
import shutil
import sys
from pathlib import Path

import pytest
import torch

from swedish_transcriber.model.training.fine_tune import KILL_AT_STEP_ENV
from swedish_transcriber.model.training.params import DistillParams, TrainParams, resolve_precision
from tests.dvc_stages import stage_command
from tests.messages import assert_a_line_names, assert_names, raises_naming
from tests.repo_params import PARAMS_FILE, dotted, repo_params, write_params
from tests.stage_runs import (
    TINY_TRAIN,
    assert_trains_alike_uncached,
    git_commit_all,
    read_json,
    run,
    train_stage,
    train_stage_error,
    weights,
)

# --------------------------------------------------------------------------------------------
# One run: what it writes


@pytest.fixture
def trained(tiny_repo) -> Path:
    train_stage(tiny_repo)
    return tiny_repo


def train_two_steps(repo: Path, **train) -> tuple[dict, dict]:
    """Train 2 steps with ``train`` params; the base's and the fine-tuned model's weights."""
    write_params(repo, dotted("train", {"max_steps": 2, "eval_steps": 2, "save_steps": 2, **train}))
    train_stage(repo)
    return weights(repo / "models" / "base"), weights(repo / "models" / "trained")


@pytest.mark.slow  # trains in a subprocess
def test_finetuned_model_loads_with_from_pretrained_alone(trained):
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    out = trained / "models" / "trained"
    model = WhisperForConditionalGeneration.from_pretrained(out)
    processor = WhisperProcessor.from_pretrained(out)
    assert model.generation_config.language == "sv"
    assert model.generation_config.task == "transcribe"
    assert model.generation_config.max_new_tokens is None  # the dev-eval cap is not kept
    assert processor.tokenizer.decode(processor.tokenizer("hej då").input_ids[4:-1]) == "hej då"
    base = weights(trained / "models" / "base")
    tuned = weights(out)
    # The encoder was frozen, the decoder trained.
    assert torch.equal(
        base["model.encoder.layers.0.fc1.weight"], tuned["model.encoder.layers.0.fc1.weight"]
    )
    assert not torch.equal(
        base["model.decoder.layers.0.fc1.weight"], tuned["model.decoder.layers.0.fc1.weight"]
    )
    info = read_json(out / "train_info.json")
    assert info["steps"] == 6 and info["train"]["learning_rate"] == pytest.approx(1e-2)


@pytest.mark.slow  # trains in a subprocess
def test_dvclive_logs_loss_and_wer_against_the_step(trained):
    live = trained / "dvclive"
    summary = read_json(live / "metrics.json")
    assert summary["step"] == 6
    assert set(summary["eval"]) >= {"loss", "wer", "wer_norm", "cer", "cer_norm"}
    assert "loss" in summary["train"]
    wer_rows = (live / "plots" / "metrics" / "eval" / "wer.tsv").read_text().splitlines()
    assert wer_rows[0].split("\t") == ["step", "wer"]
    assert [int(r.split("\t")[0]) for r in wer_rows[1:]] == [3, 6]  # every eval_steps
    loss_rows = (live / "plots" / "metrics" / "train" / "loss.tsv").read_text().splitlines()
    assert [int(r.split("\t")[0]) for r in loss_rows[1:]] == [1, 2, 3, 4, 5, 6]
    losses = [float(r.split("\t")[1]) for r in loss_rows[1:]]
    assert losses[-1] < losses[0]  # it learns


@pytest.mark.slow  # trains in a subprocess
def test_checkpoints_are_kept_with_a_fingerprint(trained):
    run_dir = trained / "checkpoints" / "trainer"
    assert sorted(p.name for p in run_dir.glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-6"]
    assert read_json(run_dir / "fingerprint.json")["fingerprint"]
    cache = trained / "checkpoints" / "encoder_cache"
    assert (cache / "train" / "fingerprint.json").is_file()
    assert (cache / "dev" / "fingerprint.json").is_file()


@pytest.mark.slow  # trains in a subprocess
def test_rerun_of_a_finished_run_rewrites_the_same_outputs(trained):
    """Lost outputs (e.g. a killed `dvc repro` after training) come back unchanged."""
    before = read_json(trained / "dvclive" / "metrics.json")
    info = (trained / "models" / "trained" / "train_info.json").read_text()
    model = weights(trained / "models" / "trained")
    shutil.rmtree(trained / "models" / "trained")
    proc = train_stage(trained)
    assert_a_line_names(proc.stdout, "checkpoint-6", "finished")
    assert read_json(trained / "dvclive" / "metrics.json") == before
    assert (trained / "models" / "trained" / "train_info.json").read_text() == info
    again = weights(trained / "models" / "trained")
    assert all(torch.equal(model[k], again[k]) for k in model)


@pytest.mark.slow  # trains in a subprocess
def test_changed_params_start_over_but_reuse_the_encoder_cache(trained):
    cache = trained / "checkpoints" / "encoder_cache" / "train" / "fingerprint.json"
    stamp = cache.stat().st_mtime_ns
    write_params(trained, dotted("train", {"learning_rate": 5e-3}))
    proc = train_stage(trained)
    assert "starting over" in proc.stdout
    assert "resuming" not in proc.stdout
    assert cache.stat().st_mtime_ns == stamp
    assert read_json(trained / "models" / "trained" / "train_info.json")["train"][
        "learning_rate"
    ] == pytest.approx(5e-3)


# --------------------------------------------------------------------------------------------
# Kill and resume through `dvc repro`


@pytest.mark.slow  # trains in a subprocess
def test_killed_run_resumes_under_dvc_repro_and_matches_an_uninterrupted_run(tiny_repo, repo_copy):
    reference = train_stage(tiny_repo)
    assert "resuming" not in reference.stdout

    killed = repo_copy("killed")
    for rel in ("models/base", "data/features"):
        shutil.copytree(tiny_repo / rel, killed / rel)
    write_params(killed, dotted("train", TINY_TRAIN))
    git_commit_all(killed)
    dvc = [sys.executable, "-m", "dvc", "repro", "--single-item", "train"]

    first = run(dvc, killed, check=False, **{KILL_AT_STEP_ENV: "5"})
    assert first.returncode != 0
    assert not (killed / "models" / "trained").exists()
    saved = sorted(p.name for p in (killed / "checkpoints" / "trainer").glob("checkpoint-*"))
    assert saved == ["checkpoint-2", "checkpoint-4"]

    second = run(dvc, killed)
    assert_a_line_names(
        second.stdout + second.stderr, "resuming", "checkpoints/trainer/checkpoint-4"
    )

    assert read_json(killed / "dvclive" / "metrics.json") == read_json(
        tiny_repo / "dvclive" / "metrics.json"
    )
    for tsv in (tiny_repo / "dvclive" / "plots").rglob("*.tsv"):
        twin = killed / tsv.relative_to(tiny_repo)
        assert twin.read_text() == tsv.read_text(), tsv.name
    a = weights(tiny_repo / "models" / "trained")
    b = weights(killed / "models" / "trained")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name  # bit for bit: training is deterministic


# --------------------------------------------------------------------------------------------
# Bad input: a clear error before any long work


def test_missing_processor_is_a_clear_error(tiny_repo, capsys, monkeypatch):
    (tiny_repo / "models" / "base" / "preprocessor_config.json").unlink()
    err = train_stage_error(tiny_repo, capsys, monkeypatch)
    assert_names(err, "models/base", "preprocessor_config.json")


def test_empty_train_split_is_a_clear_error(tiny_repo, capsys, monkeypatch):
    from tests.tiny import feature_table

    target = tiny_repo / "data" / "features" / "train"
    shutil.rmtree(target)
    feature_table(0, 0, "train").save_to_disk(str(target))
    err = train_stage_error(tiny_repo, capsys, monkeypatch)
    assert_names(err, "data/features/train", "no rows", "data/quarantine/")  # where they went


def test_max_steps_zero_is_a_clear_error(tiny_repo, capsys, monkeypatch):
    write_params(tiny_repo, dotted("train", {"max_steps": 0}))
    err = train_stage_error(tiny_repo, capsys, monkeypatch)
    assert_names(err, "params.yaml", "train", "max_steps", ">= 1", 0)


def test_unknown_param_is_a_clear_error(tiny_repo, capsys, monkeypatch):
    write_params(tiny_repo, dotted("train", {"learning_rat": 1e-4}))
    err = train_stage_error(tiny_repo, capsys, monkeypatch)
    assert_names(err, "params.yaml", "train", "learning_rat")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only refusal")
def test_gpu_only_precision_on_cpu_is_a_clear_error(tiny_repo, capsys, monkeypatch):
    write_params(tiny_repo, dotted("train", {"precision": "bf16"}))
    err = train_stage_error(tiny_repo, capsys, monkeypatch)
    assert_names(err, "train.precision", "bf16", "CUDA", "auto", "fp32")  # and what to use


def test_precision_resolution():
    assert resolve_precision("auto", False, False) == "fp32"
    assert resolve_precision("auto", True, True) == "bf16"
    assert resolve_precision("auto", True, False) == "fp16"
    with raises_naming(ValueError, "train.precision", "fp16", "CUDA", "fp32"):
        resolve_precision("fp16", False, False)
    with raises_naming(ValueError, "train.precision", "bf16", "fp16"):
        resolve_precision("bf16", True, False)


def test_specaugment_with_a_cached_encoder_is_refused():
    cached = repo_params("train", TrainParams, trainable=["decoder"], cache_encoder_outputs=True)
    with raises_naming(ValueError, "mask_time_prob", "train.cache_encoder_outputs", "false"):
        repo_params("train", TrainParams, mask_time_prob=0.05)
    live = dataclasses.replace(cached, mask_time_prob=0.05, cache_encoder_outputs=False)
    assert live.mask_time_prob == 0.05
    trained = dataclasses.replace(
        live, trainable=["encoder", "decoder"], cache_encoder_outputs=True
    )
    assert not trained.uses_encoder_cache


# --------------------------------------------------------------------------------------------
# The encoder cache is faithful, and training without it works too


@pytest.mark.slow  # trains in a subprocess
def test_cached_and_uncached_frozen_encoder_train_alike(tiny_repo, tmp_path):
    """Stored float16 encoder outputs give the decoder what the live encoder gives it."""
    write_params(tiny_repo, dotted("train", {"max_steps": 2, "eval_steps": 2, "save_steps": 2}))
    train_stage(tiny_repo)
    assert_trains_alike_uncached(tiny_repo)


@pytest.mark.slow  # trains in a subprocess
def test_full_fine_tuning_with_specaugment_changes_the_encoder(tiny_repo):
    base, tuned = train_two_steps(
        tiny_repo,
        trainable=["encoder", "decoder"],
        mask_time_prob=0.05,
        mask_feature_prob=0.05,
        gradient_checkpointing=True,
    )
    key = "model.encoder.layers.0.fc1.weight"
    assert not torch.equal(base[key], tuned[key])
    assert not (tiny_repo / "checkpoints" / "encoder_cache").exists()


# --------------------------------------------------------------------------------------------
# DDP: 2 CPU processes (gloo) under torchrun, started through params train.launcher


@pytest.mark.slow  # DDP: two training processes
def test_torchrun_two_processes(tiny_repo):
    launcher = f"{shlex.quote(sys.executable)} -m torch.distributed.run --nproc_per_node=2"
    write_params(tiny_repo, dotted("train", {"launcher": launcher, "max_steps": 4}))
    # dvc.yaml's cmd `${train.launcher} -m stages.train ...`, expanded as DVC does.
    cmd = stage_command("train", tiny_repo)
    assert cmd[: len(shlex.split(launcher))] == shlex.split(launcher)
    proc = run(cmd, tiny_repo, OMP_NUM_THREADS="1")
    assert "train: final dev metrics" in proc.stdout
    assert (tiny_repo / "models" / "trained" / "model.safetensors").is_file()
    assert read_json(tiny_repo / "models" / "trained" / "train_info.json")["steps"] == 4
    assert read_json(tiny_repo / "dvclive" / "metrics.json")["step"] == 4


@pytest.mark.slow  # trains in a subprocess
def test_frozen_embeddings_and_dropout(tiny_repo):
    base, tuned = train_two_steps(tiny_repo, freeze_embeddings=True, dropout=0.1)
    embed = "model.decoder.embed_tokens.weight"
    assert torch.equal(base[embed], tuned[embed])
    fc1 = "model.decoder.layers.0.fc1.weight"
    assert not torch.equal(base[fc1], tuned[fc1])
    config = read_json(tiny_repo / "models" / "trained" / "config.json")
    assert config["dropout"] == 0.0  # training-time dropout is not published


# --------------------------------------------------------------------------------------------
# Reproducibility: same params, same seed, same machine -> the same bytes


def sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow  # trains in a subprocess
def test_two_runs_from_scratch_write_identical_weights(tiny_repo):
    """Training is byte-reproducible on one machine: rerun from nothing, same safetensors."""
    write_params(tiny_repo, dotted("train", {"max_steps": 4, "eval_steps": 4, "save_steps": 4}))
    outputs = ("checkpoints", "models/trained", "dvclive")
    runs = []
    for _ in range(2):
        for rel in outputs:
            shutil.rmtree(tiny_repo / rel, ignore_errors=True)
        train_stage(tiny_repo)
        runs.append(
            (
                sha256(tiny_repo / "models/trained/model.safetensors"),
                read_json(tiny_repo / "dvclive/metrics.json"),
            )
        )
    assert runs[0] == runs[1]


def test_position_embedding_gradient_is_deterministic_once_training_sets_up():
    """The kernel that made two runs differ: the racy accumulate of ``weight[positions]``.

    At Whisper base's width (512) and a batch of 8 x 30 tokens the default CPU kernel adds
    rows in thread order (run to run different sums); after ``use_deterministic_kernels`` it
    must give the same gradient every time.
    """
    from swedish_transcriber.model.training.fine_tune import use_deterministic_kernels

    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        use_deterministic_kernels()
        generator = torch.Generator().manual_seed(0)
        weight = torch.randn(448, 512, generator=generator, requires_grad=True)
        positions = torch.arange(30).expand(8, 30)
        upstream = torch.randn(8, 30, 512, generator=generator)
        grads = []
        for _ in range(20):
            weight.grad = None
            weight[positions].backward(upstream)
            grads.append(weight.grad.clone())
        assert all(torch.equal(grads[0], g) for g in grads[1:])
        torch.testing.assert_close(grads[0][:30], upstream.sum(0))  # and it is the right sum
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


# --------------------------------------------------------------------------------------------
# The GPU knobs of the cv-small-gpu preset (conf/presets), each checked on a CPU


def fake_cuda(monkeypatch, available: bool, capability: tuple[int, int] = (0, 0), hip=None):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: capability)
    monkeypatch.setattr(torch.version, "hip", hip)


@pytest.mark.parametrize(
    ("available", "capability", "hip", "auto", "bf16_ok"),
    [
        (False, (0, 0), None, "fp32", False),  # a CPU
        (True, (7, 5), None, "fp16", False),  # T4: bf16 only emulated
        (True, (7, 0), None, "fp16", False),  # V100
        (True, (8, 0), None, "bf16", True),  # A100
        (True, (8, 6), None, "bf16", True),  # A10 / RTX 30xx
        (True, (9, 0), None, "bf16", True),  # H100 / H200
        (True, (9, 4), "6.2", "bf16", True),  # ROCm (its capability says nothing of bf16)
    ],
)
def test_auto_precision_picks_bf16_where_the_gpu_computes_it(
    monkeypatch, available, capability, hip, auto, bf16_ok
):
    from swedish_transcriber.model.training.params import cuda_support

    fake_cuda(monkeypatch, available, capability, hip)
    support = cuda_support()
    assert support == (available, bf16_ok)
    assert resolve_precision("auto", *support) == auto
    assert resolve_precision("fp32", *support) == "fp32"
    if bf16_ok:
        assert resolve_precision("bf16", *support) == "bf16"
    else:
        with raises_naming(ValueError, "train.precision", "bf16"):
            resolve_precision("bf16", *support)
    if available:
        assert resolve_precision("fp16", *support) == "fp16"


def test_the_trainer_gets_the_resolved_precision(tmp_path):
    from swedish_transcriber.model.training.fine_tune import training_arguments

    params = repo_params("train", TrainParams)
    for precision, bf16, fp16 in (("fp32", False, False), ("bf16", True, False)):
        args = training_arguments(params, tmp_path, precision)
        assert (args.bf16, args.fp16) == (bf16, fp16)


GPU_KNOBS = {  # cv-small-gpu's train knobs (conf/presets/cv-small-gpu.yaml) that shape a step
    "trainable": ["encoder", "decoder"],
    "freeze_embeddings": False,
    "cache_encoder_outputs": False,
    "gradient_checkpointing": True,
    "mask_time_prob": 0.05,
    "mask_feature_prob": 0.0,
    "distill": {"weight": 0.0, "temperature": 2.0, "teacher_context": "padded"},
}


def test_the_gpu_knobs_are_the_presets():
    from swedish_transcriber.presets import load

    preset = load("cv-small-gpu", PARAMS_FILE.parent / "conf" / "presets")["train"]
    for key, value in GPU_KNOBS.items():
        expected = {**value, **preset[key]} if isinstance(value, dict) else preset[key]
        assert value == expected, key


def tiny_params(**changes) -> TrainParams:
    return repo_params(
        "train",
        TrainParams,
        **{**GPU_KNOBS, "distill": DistillParams(0.0, 2.0, "padded"), **changes},
    )


def test_specaugment_masks_log_mel_frames_in_train_mode_only():
    from swedish_transcriber.model.training.fine_tune import configure_model
    from tests.tiny import tiny_whisper

    model = tiny_whisper()
    configure_model(model, tiny_params())
    assert model.config.apply_spec_augment and model.config.mask_time_prob == 0.05
    assert model.config.mask_feature_prob == 0.0
    seen = []
    model.model.encoder.register_forward_pre_hook(lambda _, args: seen.append(args[0].clone()))
    features = torch.randn(4, 80, 3000) + 3.0  # no zero anywhere
    labels = torch.tensor([[50258, 50300, 50359, 50363, 400, 50257]] * 4)
    model.train()
    model(input_features=features.clone(), labels=labels)
    model.eval()
    with torch.no_grad():
        model(input_features=features.clone(), labels=labels)
    masked_frames = (seen[0] == 0).all(dim=1)  # (batch, frames): a frame zero in every mel bin
    assert not (seen[0] == 0).all(dim=2).any()  # no mel bin zeroed: mask_feature_prob 0
    per_clip = masked_frames.sum(dim=1)
    # 5% of 3000 frames in spans of 10 (spans may overlap): about 150 frames per clip.
    assert ((per_clip >= 80) & (per_clip <= 150)).all(), per_clip
    assert not torch.equal(masked_frames[0], masked_frames[1])  # each clip its own spans
    assert torch.equal(seen[1], features)  # eval (and generate): nothing masked


def test_specaugment_off_leaves_the_input_alone():
    from swedish_transcriber.model.training.fine_tune import configure_model
    from tests.tiny import tiny_whisper

    model = tiny_whisper()
    configure_model(model, tiny_params(mask_time_prob=0.0))
    assert not model.config.apply_spec_augment
    seen = []
    model.model.encoder.register_forward_pre_hook(lambda _, args: seen.append(args[0].clone()))
    features = torch.randn(2, 80, 3000) + 3.0
    model.train()
    model(input_features=features.clone(), labels=torch.tensor([[50258, 400, 50257]] * 2))
    assert torch.equal(seen[0], features)


@pytest.mark.parametrize("trainable", [["encoder", "decoder"], ["decoder"]])
def test_gradient_checkpointing_gives_the_same_gradients(trainable):
    """Non-reentrant checkpointing (as the Trainer turns it on) recomputes the layers in the
    backward pass: the gradients are the plain ones, also with a frozen encoder (the case
    where the reentrant variant would need the input's requires_grad trick)."""
    from swedish_transcriber.model.training.fine_tune import configure_model
    from tests.tiny import tiny_whisper

    features = torch.randn(2, 80, 3000)
    labels = torch.tensor([[50258, 50300, 50359, 50363, 400, 401, 50257]] * 2)
    grads = []
    for checkpointing in (False, True):
        model = tiny_whisper()
        configure_model(
            model,
            tiny_params(
                trainable=trainable, mask_time_prob=0.0, gradient_checkpointing=checkpointing
            ),
        )
        if checkpointing:
            model.gradient_checkpointing_enable({"use_reentrant": False})
            assert model.config.use_cache is False
            assert model.generation_config.use_cache is not False  # generate keeps its cache
        model.train()
        model(input_features=features, labels=labels).loss.backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.requires_grad})
    plain, checkpointed = grads
    assert plain.keys() == checkpointed.keys()
    assert all(checkpointed[n] is not None for n in plain), "a trained part got no gradient"
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], rtol=1e-5, atol=1e-7)
    assert any(n.startswith("model.encoder.") for n in plain) == ("encoder" in trainable)


def test_a_trainer_step_with_the_gpu_knobs(tmp_path):
    """The Trainer turns checkpointing on; a step with SpecAugment and the whole model
    trained moves the encoder, the decoder and the (unfrozen) token embeddings."""
    from swedish_transcriber.model.collator import SpeechSeq2SeqCollator
    from swedish_transcriber.model.training.fine_tune import configure_model, training_arguments
    from swedish_transcriber.model.training.trainer import WhisperTrainer
    from tests.tiny import feature_table, tiny_whisper

    params = tiny_params(
        max_steps=2,
        batch_size=2,
        warmup_steps=0,
        learning_rate=1e-2,
        eval_steps=9,
        save_steps=9,
        logging_steps=1,
    )
    model = tiny_whisper()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    configure_model(model, params)
    args = training_arguments(params, tmp_path / "run", "fp32")
    table = feature_table(4, 0, "train")
    # The train stage's columns (pad_value where features are stored unpadded).
    columns = [c for c in ("input_features", "pad_value", "labels") if c in table.column_names]
    data = table.select_columns(columns).with_format("torch")
    trainer = WhisperTrainer(
        model=model,
        args=args,
        train_dataset=data,
        eval_dataset=data,  # not reached: the first evaluation would be at step 9
        data_collator=SpeechSeq2SeqCollator(
            pad_token_id=model.config.pad_token_id,
            decoder_start_token_id=model.config.decoder_start_token_id,
        ),
    )
    trainer.train()
    assert model.is_gradient_checkpointing
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert losses and all(torch.isfinite(torch.tensor(losses)))
    for name in (
        "model.encoder.layers.0.fc1.weight",
        "model.decoder.layers.0.fc1.weight",
        "model.decoder.embed_tokens.weight",
    ):
        assert not torch.equal(before[name], model.get_parameter(name).detach()), name
    assert torch.equal(
        before["model.encoder.embed_positions.weight"],
        model.get_parameter("model.encoder.embed_positions.weight").detach(),
    )


def test_evaluation_during_training_is_on_a_fixed_subset():
    from swedish_transcriber.model.training.fine_tune import dev_subset
    from tests.tiny import feature_table

    table = feature_table(10, 0, "dev")
    subset = dev_subset(table, 4, seed=1234)
    assert len(subset) == 4
    assert subset["path"] == dev_subset(table, 4, seed=1234)["path"]  # the same every eval
    assert subset["path"] == sorted(subset["path"])
    assert subset["path"] != dev_subset(table, 4, seed=1)["path"]
    assert len(dev_subset(table, 0, 1234)) == len(dev_subset(table, 99, 1234)) == 10


@pytest.mark.slow  # DDP: two training processes
def test_torchrun_with_the_gpu_preset_knobs_and_a_resume(tiny_repo):
    """DDP (gloo) with the whole model trained, checkpointing, SpecAugment, no encoder cache,
    dataloader workers: no unused-parameter or checkpointing error in DDP's reducer, and a
    kill after the step-2 checkpoint resumes to the end."""
    launcher = f"{shlex.quote(sys.executable)} -m torch.distributed.run --nproc_per_node=2"
    knobs = {**GPU_KNOBS, "dataloader_num_workers": 1, "eval_max_clips": 2}
    write_params(tiny_repo, dotted("train", {"launcher": launcher, "max_steps": 4, **knobs}))
    cmd = stage_command("train", tiny_repo)
    first = run(cmd, tiny_repo, check=False, OMP_NUM_THREADS="1", **{KILL_AT_STEP_ENV: "3"})
    assert first.returncode != 0
    assert (tiny_repo / "checkpoints" / "trainer" / "checkpoint-2").is_dir()
    proc = run(cmd, tiny_repo, OMP_NUM_THREADS="1")
    assert_a_line_names(proc.stdout + proc.stderr, "resuming", "checkpoints/trainer/checkpoint-2")
    assert "train: final dev metrics" in proc.stdout
    assert read_json(tiny_repo / "models" / "trained" / "train_info.json")["steps"] == 4
    assert not (tiny_repo / "checkpoints" / "encoder_cache").exists()
    base, tuned = weights(tiny_repo / "models" / "base"), weights(tiny_repo / "models" / "trained")
    for key in ("model.encoder.layers.0.fc1.weight", "model.decoder.embed_tokens.weight"):
        assert not torch.equal(base[key], tuned[key]), key
