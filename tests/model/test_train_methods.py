"""Fine-tuning methods that keep what the base model knows, on the tiny random Whisper.

Which parameters train (train.trainable, encoder_top on stored lower-layer states), LoRA
merged into a plain checkpoint (and resumed after a kill), distillation towards the base
model, and the merge stage's weight interpolation (WiSE-FT).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from swedish_transcriber.model.training.fine_tune import KILL_AT_STEP_ENV
from swedish_transcriber.model.training.params import DistillParams, LoraParams, TrainParams
from tests.messages import assert_a_line_names, assert_names, raises_naming
from tests.repo_params import dotted, repo_params, write_params
from tests.stage_runs import (
    assert_trains_alike_uncached,
    git_commit_all,
    read_json,
    run,
    train_stage,
    train_stage_error,
    weights,
)
from tests.tiny import save_tiny_base, tiny_whisper


def params(**changes) -> TrainParams:
    return repo_params("train", TrainParams, **changes)


def lora(rank: int = 4, targets: tuple[str, ...] = ("q_proj", "v_proj")) -> LoraParams:
    return LoraParams(rank=rank, alpha=8.0, dropout=0.0, target_modules=list(targets))


# --------------------------------------------------------------------------------------------
# Params: bad values are refused before anything runs


def test_repo_defaults_are_the_chosen_recipe():
    """docs/forgetting.md: cross-attention, distilled towards the base, WiSE-FT alpha 0.2."""
    from swedish_transcriber.model.merge import MergeParams

    p = params()
    assert p.trainable == ["cross_attention"]
    assert p.distill.enabled and p.distill.weight == 1.0 and not p.lora.enabled
    assert p.uses_encoder_cache and not p.uses_lower_encoder_cache
    assert repo_params("merge", MergeParams).alpha == 0.2


@pytest.mark.parametrize(
    ("trainable", "facts"),
    [  # the part at fault, or the parts to choose from
        (["decoder", "ffn"], ["'ffn'"]),
        ([], ["encoder", "decoder", "cross_attention"]),
        (["decoder", "decoder"], ["['decoder', 'decoder']"]),
        (["encoder", "encoder_top"], ["encoder", "encoder_top"]),
        (["decoder", "cross_attention"], ["decoder", "cross_attention"]),
    ],
)
def test_bad_trainable_lists_are_refused(trainable, facts):
    with raises_naming(ValueError, "trainable", *facts):
        params(trainable=trainable)


def test_bad_lora_and_distill_values_are_refused():
    with pytest.raises(ValueError, match="lora.rank"):
        lora(rank=-1)
    with pytest.raises(ValueError, match="lora.target_modules"):
        lora(targets=())
    with pytest.raises(ValueError, match="distill.temperature"):
        DistillParams(weight=1.0, temperature=0.0, teacher_context="padded")
    with pytest.raises(ValueError, match="distill.weight"):
        DistillParams(weight=-0.5, temperature=2.0, teacher_context="padded")
    with pytest.raises(ValueError, match="encoder_top_layers"):
        params(trainable=["encoder_top"], encoder_top_layers=0)


def test_specaugment_needs_the_log_mel_to_reach_the_encoder():
    spec = {"mask_time_prob": 0.05}
    for trainable in (["decoder"], ["encoder_top", "decoder"], ["cross_attention"]):
        with raises_naming(ValueError, "mask_time_prob", "train.cache_encoder_outputs", "false"):
            params(trainable=trainable, **spec)
        assert params(trainable=trainable, cache_encoder_outputs=False, **spec)
    assert params(trainable=["encoder", "decoder"], **spec).mask_time_prob == 0.05


# --------------------------------------------------------------------------------------------
# Which parameters train


def trained_names(trainable: list[str], **changes) -> set[str]:
    from swedish_transcriber.model.training.trainable import apply_trainable

    model = tiny_whisper()
    names = apply_trainable(model, params(trainable=trainable, **changes))
    assert names == [n for n, p in model.named_parameters() if p.requires_grad]
    return set(names)


def test_decoder_is_what_freeze_encoder_trained():
    """The default trains what ``model.freeze_encoder()`` + frozen embeddings trained."""
    model = tiny_whisper()
    model.freeze_encoder()
    model.get_decoder().embed_tokens.requires_grad_(False)
    before = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trained_names(["decoder"]) == before
    assert "model.decoder.embed_tokens.weight" in trained_names(
        ["decoder"], freeze_embeddings=False
    )


def test_cross_attention_trains_only_the_encoder_attention_blocks():
    names = trained_names(["cross_attention"])
    assert names and all(".encoder_attn." in n or ".encoder_attn_layer_norm." in n for n in names)
    assert "model.decoder.layers.1.encoder_attn_layer_norm.weight" in names
    assert "model.decoder.layers.0.encoder_attn.q_proj.weight" in names


def test_encoder_top_trains_the_top_layers_and_the_final_norm():
    names = trained_names(["encoder_top"], encoder_top_layers=1)
    assert {n.split(".")[2] for n in names} == {"layers", "layer_norm"}
    assert all(
        n.startswith(("model.encoder.layers.1.", "model.encoder.layer_norm.")) for n in names
    )
    whole = trained_names(["encoder"])
    assert "model.encoder.conv1.weight" in whole
    assert "model.encoder.embed_positions.weight" not in whole  # fixed sinusoids


def test_parts_the_model_lacks_are_errors_naming_the_param():
    from swedish_transcriber.model.training.trainable import check_against_model

    model = tiny_whisper()  # 2 encoder layers
    with raises_naming(ValueError, "train.encoder_top_layers", 3, 2):  # asked, and the model's
        check_against_model(model, params(trainable=["encoder_top"], encoder_top_layers=3))
    with raises_naming(ValueError, "train.lora.target_modules", "['qproj']"):
        check_against_model(model, params(lora=lora(targets=("q_proj", "qproj"))))
    # fc1 exists, but not inside the cross-attention blocks: the modules there are named
    with raises_naming(ValueError, "train.lora.target_modules", "['fc1']", "q_proj"):
        check_against_model(
            model, params(trainable=["cross_attention"], lora=lora(targets=("fc1",)))
        )
    check_against_model(model, params(trainable=["encoder_top"], encoder_top_layers=2))


# --------------------------------------------------------------------------------------------
# encoder_top: the stored lower states through the top layers give the encoder's output


@torch.no_grad()
def test_top_layers_on_lower_states_reproduce_the_encoder():
    from swedish_transcriber.model.training.encoder_top import encoder_outputs_from_lower

    model = tiny_whisper()
    features = torch.randn(2, 80, 3000)
    full = model.get_encoder()(features, output_hidden_states=True)
    for k in (1, 2):
        lower = full.hidden_states[2 - k]
        out = encoder_outputs_from_lower(model, lower, k).last_hidden_state
        torch.testing.assert_close(out, full.last_hidden_state)


def test_collator_passes_lower_states_through():
    import numpy as np

    from swedish_transcriber.model.collator import SpeechSeq2SeqCollator

    rows = [{"encoder_lower_states": np.ones((1500, 64), np.float16), "labels": [50258, 7, 50257]}]
    batch = SpeechSeq2SeqCollator(pad_token_id=50257, decoder_start_token_id=50258)(rows)
    assert set(batch) == {"encoder_lower_states", "labels"}
    assert batch["encoder_lower_states"].dtype == torch.float32
    assert batch["labels"].tolist() == [[7, 50257]]


# --------------------------------------------------------------------------------------------
# Distillation


def test_distillation_kl_is_zero_for_the_teacher_and_ignores_padding():
    from swedish_transcriber.model.training.distill import distillation_kl

    generator = torch.Generator().manual_seed(0)
    teacher = torch.randn(2, 3, 10, generator=generator)
    labels = torch.tensor([[1, 2, -100], [3, -100, -100]])
    assert distillation_kl(teacher, teacher, labels, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    student = teacher.clone()
    student[0, 2] += 5.0  # a padding position: must not count
    student[1, 1:] -= 3.0
    assert distillation_kl(student, teacher, labels, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    student[0, 0, 0] += 4.0
    kl = distillation_kl(student, teacher, labels, 2.0)
    p = torch.softmax(teacher[0, 0] / 2, -1)
    manual = (p * (p.log() - torch.log_softmax(student[0, 0] / 2, -1))).sum() / 3
    torch.testing.assert_close(kl, manual)


# --------------------------------------------------------------------------------------------
# LoRA: adapters only inside the trainable parts, merged into a plain model


def test_lora_adapters_sit_only_in_the_trainable_parts_and_merge_away():
    from transformers import WhisperForConditionalGeneration

    from swedish_transcriber.model.training.lora import apply_lora, merged
    from swedish_transcriber.model.training.trainable import apply_trainable

    model = tiny_whisper()
    p = params(trainable=["decoder"], lora=lora())
    apply_trainable(model, p)
    peft_model = apply_lora(model, p)
    trainable = [n for n, q in peft_model.named_parameters() if q.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert all(".decoder." in n for n in trainable)
    assert {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in trainable} == {"q_proj", "v_proj"}
    with torch.no_grad():
        for n, q in peft_model.named_parameters():
            if "lora_B" in n:
                q.normal_(0, 0.1)  # trained adapters
    plain = merged(peft_model)
    assert type(plain) is WhisperForConditionalGeneration
    assert not any("lora" in n for n in plain.state_dict())
    base = tiny_whisper().state_dict()
    changed = {n for n, t in plain.state_dict().items() if not torch.equal(t, base[n])}
    assert changed and all(
        ".decoder." in n and n.endswith(("q_proj.weight", "v_proj.weight")) for n in changed
    )


# --------------------------------------------------------------------------------------------
# The merge stage (WiSE-FT)


@pytest.fixture(scope="module")
def two_models(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("merge")
    return save_tiny_base(root / "base", seed=0), save_tiny_base(root / "trained", seed=1)


def merge_to(base: Path, trained: Path, out: Path, alpha: float) -> dict:
    from swedish_transcriber.model.merge import MergeParams, merge

    return merge(base, trained, out, MergeParams(alpha=alpha))


def test_merge_interpolates_every_floating_tensor(two_models, tmp_path):
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    base, trained = two_models
    info = merge_to(base, trained, tmp_path / "half", 0.25)
    assert info["alpha"] == 0.25 and info["interpolated_tensors"] > 50
    a, b, mixed = weights(base), weights(trained), weights(tmp_path / "half")
    assert mixed.keys() == b.keys()
    for name in b:
        torch.testing.assert_close(mixed[name], 0.75 * a[name] + 0.25 * b[name])
    model = WhisperForConditionalGeneration.from_pretrained(tmp_path / "half")
    assert model.generation_config.language == "sv"
    assert WhisperProcessor.from_pretrained(tmp_path / "half").tokenizer is not None
    assert read_json(tmp_path / "half" / "merge_info.json")["alpha"] == 0.25


def test_merge_alpha_one_is_the_trained_model_and_zero_the_base(two_models, tmp_path):
    base, trained = two_models
    merge_to(base, trained, tmp_path / "one", 1.0)
    merge_to(base, trained, tmp_path / "zero", 0.0)
    for out, source in (("one", trained), ("zero", base)):
        got, want = weights(tmp_path / out), weights(source)
        assert all(torch.equal(got[n], want[n]) for n in want), out
    for name in ("config.json", "generation_config.json", "tokenizer.json"):
        assert (tmp_path / "one" / name).read_bytes() == (trained / name).read_bytes()


def test_merge_of_different_architectures_is_a_clear_error(two_models, tmp_path):
    from safetensors.torch import load_file, save_file

    base, trained = two_models
    other = tmp_path / "other"
    shutil.copytree(trained, other)
    tensors = load_file(str(other / "model.safetensors"))
    tensors.pop("model.decoder.layers.1.fc1.weight")
    save_file(tensors, str(other / "model.safetensors"), metadata={"format": "pt"})
    with raises_naming(ValueError, base, other, "model.decoder.layers.1.fc1.weight"):
        merge_to(base, other, tmp_path / "out", 0.5)
    assert not (tmp_path / "out").exists()


def test_merge_stage_reads_its_params(two_models, tmp_path, monkeypatch, capsys):

    import stages.merge
    from swedish_transcriber.stage import main

    write_params(tmp_path, base={"merge": {"alpha": 0.5}})
    monkeypatch.chdir(tmp_path)
    base, trained = two_models
    main(stages.merge.run, [str(base), str(trained), "finetuned"])
    assert read_json(tmp_path / "finetuned" / "merge_info.json")["alpha"] == 0.5
    write_params(tmp_path, {"merge.alpha": 1.5})
    with pytest.raises(SystemExit):
        main(stages.merge.run, [str(base), str(trained), "finetuned"])
    assert_names(capsys.readouterr().err, "merge", "alpha", "[0, 1]", 1.5)


# --------------------------------------------------------------------------------------------
# Errors before any work, through the train stage


def test_too_many_top_layers_is_a_stage_error(tiny_repo, capsys, monkeypatch):
    write_params(
        tiny_repo,
        dotted("train", {"trainable": ["encoder_top", "decoder"], "encoder_top_layers": 3}),
    )
    err = train_stage_error(tiny_repo, capsys, monkeypatch)
    assert_names(err, "train.encoder_top_layers", 3, 2)  # asked, and the model's


def test_lora_target_matching_nothing_is_a_stage_error(tiny_repo, capsys, monkeypatch):
    lora_params = {"rank": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["query"]}
    write_params(tiny_repo, dotted("train", {"lora": lora_params}))
    err = train_stage_error(tiny_repo, capsys, monkeypatch)
    assert_names(err, "train.lora.target_modules", "['query']")


def test_unknown_trainable_part_is_a_stage_error(tiny_repo, capsys, monkeypatch):
    write_params(tiny_repo, dotted("train", {"trainable": ["decoder", "encoder_bottom"]}))
    err = train_stage_error(tiny_repo, capsys, monkeypatch)
    assert_names(err, "params.yaml", "train", "trainable", "'encoder_bottom'")


# --------------------------------------------------------------------------------------------
# Training runs (subprocesses): what changes, and what stays the base's


# Each run states its method; the rest is plain decoder training (not the repo's default
# recipe), so a test sees the effect of exactly the knob it sets.
PLAIN = {
    "trainable": ["decoder"],
    "distill": {"weight": 0.0, "temperature": 2.0, "teacher_context": "padded"},
}


def train_steps(repo: Path, steps: int = 2, **train) -> tuple[dict, dict]:
    settings = {**PLAIN, "max_steps": steps, "eval_steps": steps, "save_steps": 2, **train}
    write_params(repo, dotted("train", settings))
    train_stage(repo)
    return weights(repo / "models" / "base"), weights(repo / "models" / "trained")


def changed(base: dict, tuned: dict) -> set[str]:
    assert base.keys() == tuned.keys()
    return {n for n in base if not torch.equal(base[n], tuned[n])}


@pytest.mark.slow  # trains in a subprocess
def test_encoder_top_trains_on_stored_lower_states(tiny_repo):
    base, tuned = train_steps(tiny_repo, trainable=["encoder_top"], encoder_top_layers=1)
    moved = changed(base, tuned)
    assert moved and all(
        n.startswith(("model.encoder.layers.1.", "model.encoder.layer_norm.")) for n in moved
    )
    assert "model.encoder.layers.1.fc1.weight" in moved
    cache = tiny_repo / "checkpoints" / "encoder_cache" / "below_layer_1"
    assert (cache / "train" / "fingerprint.json").is_file()
    assert not (tiny_repo / "checkpoints" / "encoder_cache" / "train").exists()
    # Without the cache the whole encoder runs each step: the same losses.
    assert_trains_alike_uncached(tiny_repo)


@pytest.mark.slow  # trains in a subprocess
def test_cross_attention_only_changes_cross_attention(tiny_repo):
    base, tuned = train_steps(tiny_repo, trainable=["cross_attention"])
    moved = changed(base, tuned)
    assert moved and all(".encoder_attn" in n for n in moved)
    assert "model.decoder.layers.0.encoder_attn.k_proj.weight" in moved


@pytest.mark.slow  # trains in a subprocess
def test_distillation_logs_its_parts_and_changes_training(tiny_repo):
    write_params(tiny_repo, dotted("train", {"learning_rate": 3e-2}))
    _, plain = train_steps(tiny_repo, steps=3)
    _, distilled = train_steps(
        tiny_repo, steps=3, distill={"weight": 5.0, "temperature": 2.0, "teacher_context": "padded"}
    )
    summary = read_json(tiny_repo / "dvclive" / "metrics.json")["train"]
    assert summary["distill_kl"] > 0
    assert summary["loss"] > summary["distill_ce"]  # CE + weight * T^2 * KL
    rows = (tiny_repo / "dvclive/plots/metrics/train/distill_kl.tsv").read_text().splitlines()
    assert [int(r.split("\t")[0]) for r in rows[1:]] == [1, 2, 3]
    name = "model.decoder.layers.0.fc1.weight"
    assert not torch.equal(plain[name], distilled[name])


@pytest.mark.slow  # trains in subprocesses
def test_lora_run_writes_a_plain_checkpoint_and_resumes_after_a_kill(tiny_repo, repo_copy):
    from transformers import WhisperForConditionalGeneration

    lora_params = {"rank": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
    settings = {**PLAIN, "lora": lora_params, "max_steps": 4, "eval_steps": 2, "save_steps": 2}
    write_params(tiny_repo, dotted("train", settings))
    train_stage(tiny_repo)
    out = tiny_repo / "models" / "trained"
    assert not list(out.glob("adapter*"))
    WhisperForConditionalGeneration.from_pretrained(out)  # no peft needed
    base, tuned = weights(tiny_repo / "models" / "base"), weights(out)
    moved = changed(base, tuned)
    assert moved and all(
        ".decoder." in n and n.endswith(("q_proj.weight", "v_proj.weight")) for n in moved
    )
    saved = tiny_repo / "checkpoints" / "trainer" / "checkpoint-4"
    assert (saved / "adapter_model.safetensors").is_file()

    killed = repo_copy("killed")
    for rel in ("models/base", "data/features"):
        shutil.copytree(tiny_repo / rel, killed / rel)
    shutil.copy2(tiny_repo / "params.yaml", killed / "params.yaml")
    git_commit_all(killed)
    first = train_stage(killed, check=False, **{KILL_AT_STEP_ENV: "3"})
    assert first.returncode != 0 and not (killed / "models" / "trained").exists()
    second = train_stage(killed)
    assert_a_line_names(second.stdout, "resuming", "checkpoint-2")
    again = weights(killed / "models" / "trained")
    assert all(torch.equal(tuned[n], again[n]) for n in tuned)  # bit for bit
    # A finished run whose outputs were lost: the adapters of its last checkpoint.
    shutil.rmtree(killed / "models" / "trained")
    third = train_stage(killed)
    assert "is the finished run" in third.stdout
    assert all(torch.equal(tuned[n], t) for n, t in weights(killed / "models/trained").items())


# --------------------------------------------------------------------------------------------
# dvc: train writes models/trained, merge writes models/finetuned; alpha re-runs only merge


@pytest.mark.slow  # dvc repro of train and merge
def test_merge_alpha_reruns_only_the_merge_stage(tiny_repo):
    dvc = [sys.executable, "-m", "dvc"]
    write_params(
        tiny_repo, dotted("train", {**PLAIN, "max_steps": 2, "eval_steps": 2, "save_steps": 2})
    )
    write_params(tiny_repo, dotted("merge", {"alpha": 1.0}))
    run([*dvc, "repro", "--single-item", "train"], tiny_repo)
    # What the retrain stage does at review.auto_exclude_top_fraction 0 (its queue, from the
    # rank stage, is not built here): models/trained passed on as models/curated.
    shutil.copytree(tiny_repo / "models/trained", tiny_repo / "models/curated")
    run([*dvc, "repro", "--single-item", "merge"], tiny_repo)
    assert read_json(tiny_repo / "models/finetuned/merge_info.json")["alpha"] == 1.0
    subprocess.run(["git", "add", "-A"], cwd=tiny_repo, check=True)
    write_params(tiny_repo, dotted("merge", {"alpha": 0.5}))
    statuses = {}
    for stage in ("train", "merge"):
        out = run([*dvc, "status", "--json", stage], tiny_repo).stdout
        statuses[stage] = json.loads(out)
    assert statuses["train"] == {}
    assert "merge" in statuses["merge"]
    proc = run([*dvc, "repro", "--single-item", "merge"], tiny_repo)
    assert "Running stage 'merge'" in proc.stdout + proc.stderr
    assert read_json(tiny_repo / "models/finetuned/merge_info.json")["alpha"] == 0.5
    base, trained = weights(tiny_repo / "models/base"), weights(tiny_repo / "models/trained")
    mixed = weights(tiny_repo / "models/finetuned")
    name = "model.decoder.layers.0.fc1.weight"
    assert not torch.equal(base[name], trained[name])
    torch.testing.assert_close(mixed[name], 0.5 * base[name] + 0.5 * trained[name])


def test_params_section_merge_is_in_the_repo():
    from swedish_transcriber.model.merge import MergeParams

    assert 0.0 <= repo_params("merge", MergeParams).alpha <= 1.0
    assert dataclasses.asdict(params())["lora"]["rank"] == 0


def test_lora_in_the_top_encoder_layers_gets_gradients_from_stored_states():
    """LoRA + encoder_top: the step runs the adapted top layers on the cached lower states."""
    from swedish_transcriber.model.training.encoder_top import with_encoder_outputs
    from swedish_transcriber.model.training.lora import apply_lora
    from swedish_transcriber.model.training.trainable import apply_trainable

    model = tiny_whisper()
    p = params(
        trainable=["encoder_top", "decoder"], encoder_top_layers=1, lora=lora(targets=("fc1",))
    )
    apply_trainable(model, p)
    peft_model = apply_lora(model, p).train()
    adapted = {n for n, q in peft_model.named_parameters() if q.requires_grad}
    assert any(".encoder.layers.1.fc1.lora_A" in n for n in adapted)
    assert not any(".encoder.layers.0." in n for n in adapted)
    lower = torch.randn(2, 1500, 64)
    labels = torch.tensor([[50259, 400, 50257], [50259, 500, 50257]])
    inputs = with_encoder_outputs(peft_model, {"encoder_lower_states": lower, "labels": labels}, 1)
    assert set(inputs) == {"encoder_outputs", "labels"}
    peft_model(**inputs).loss.backward()
    grads = {n: q.grad for n, q in peft_model.named_parameters() if q.requires_grad}
    assert all(g is not None for g in grads.values())
    encoder_b = [g for n, g in grads.items() if ".encoder.layers.1.fc1.lora_B" in n]
    assert encoder_b and encoder_b[0].abs().sum() > 0
