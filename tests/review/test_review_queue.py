"""The rank stage (reports/review_queue.*) on a tiny random Whisper: per-clip losses as the
model computes them, stored encoder outputs reused, the ranking rules, a mislabelled clip
found, clear errors for missing inputs, and the stage end to end with the exact columns."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pytest
import torch

from swedish_transcriber.data.features import pad_features
from swedish_transcriber.model.encoder_cache import build as build_cache
from swedish_transcriber.model.training.params import TrainParams
from swedish_transcriber.params import ParamsError, section
from swedish_transcriber.review import stored_states
from swedish_transcriber.review.params import (
    COMPONENTS,
    CROSS_FIT_COLUMNS,
    IN_SAMPLE,
    OUT_OF_SAMPLE,
    RankParams,
    ReviewParams,
)
from swedish_transcriber.review.queue import (
    RankInputs,
    measure,
    queue_columns,
)
from swedish_transcriber.review.suspicion import component_score, percentile, rank_clips
from swedish_transcriber.stage import main
from tests.dvc_stages import stage_args
from tests.repo_params import PARAMS_FILE, dotted, load_yaml, repo_params, write_params
from tests.tiny import save_tiny_base, save_tiny_features

TRAIN_ROWS, DEV_ROWS, ORIGINAL_TRAIN = 8, 4, 6  # train rows 6, 7 play augmented copies
EVAL_MAX_CLIPS, SEED = 2, 1234  # the train stage's dev subset (train_info.json)
PARAMS = repo_params("review.rank", RankParams, batch_size=4, max_new_tokens=8)
LOSS_ONLY = dataclasses.replace(PARAMS, weights={"ft_loss": 1.0})
PARAMS_STEPS = repo_params("train", TrainParams).max_steps  # cross_fit.max_steps: null
IN_SAMPLE_WEIGHTS = {c: w for c, w in PARAMS.weights.items() if c in IN_SAMPLE}


def manifest_for(table: datasets.Dataset, rows: int) -> pd.DataFrame:
    """A validated manifest of the first ``rows`` clips of a feature table."""
    n = range(rows)
    return pd.DataFrame(
        {
            "split": table["split"][:rows],
            "path": table["path"][:rows],
            "audio_file": [f"data/raw/demo/clips/{p}" for p in table["path"][:rows]],
            "sentence": table["sentence"][:rows],
            "duration": table["duration"][:rows],
            "silence_ratio": [0.05 * i for i in n],
            "clipping_ratio": [0.0] * rows,
            "peak": [0.5] * rows,
            "rms": [0.1] * rows,
        }
    )


def write_train_info(model_dir: Path) -> None:
    info = {"train": {"eval_max_clips": EVAL_MAX_CLIPS, "seed": SEED}, "steps": 1}
    (model_dir / "train_info.json").write_text(json.dumps(info), encoding="utf-8")


def save_finetuned(base: Path, out: Path, encoder_too: bool = False) -> Path:
    """A "fine-tuned" model: the base with a changed decoder (and encoder, if asked)."""
    from transformers import WhisperForConditionalGeneration

    shutil.copytree(base, out)
    model = WhisperForConditionalGeneration.from_pretrained(out)
    with torch.no_grad():
        model.model.decoder.layers[0].fc1.weight.mul_(1.5)
        if encoder_too:
            model.model.encoder.layers[0].fc1.weight.mul_(1.5)
    model.save_pretrained(out)
    write_train_info(out)
    return out


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> RankInputs:
    """models/base, models/finetuned (decoder changed), data/features, data/validated."""
    root = tmp_path_factory.mktemp("rank_inputs")
    base = save_tiny_base(root / "models" / "base")
    finetuned = save_finetuned(base, root / "models" / "finetuned")
    features = save_tiny_features(root / "data" / "features", TRAIN_ROWS, DEV_ROWS, 2)
    validated = root / "data" / "validated"
    validated.mkdir(parents=True)
    for split, rows in (("train", ORIGINAL_TRAIN), ("dev", DEV_ROWS)):
        table = datasets.load_from_disk(str(features / split))
        manifest_for(table, rows).to_parquet(validated / f"{split}.parquet", index=False)
    return RankInputs(base, finetuned, features, validated, root / "checkpoints")


def fill_cache(inputs: RankInputs, checkpoints: Path) -> None:
    """Store base-encoder outputs as the train stage does: every train row, the dev subset."""
    from transformers import WhisperForConditionalGeneration

    from swedish_transcriber.model.training.fine_tune import dev_subset

    model = WhisperForConditionalGeneration.from_pretrained(inputs.base_model)
    key = stored_states.cache_key(inputs.base_model, inputs.features)
    folder = checkpoints / "encoder_cache"
    train = datasets.load_from_disk(str(inputs.features / "train"))
    dev = dev_subset(datasets.load_from_disk(str(inputs.features / "dev")), EVAL_MAX_CLIPS, SEED)
    build_cache(model, train, folder / "train", key, 4, torch.device("cpu"))
    dev_key = stored_states.text_digest(f"{key} {EVAL_MAX_CLIPS} {SEED}")
    build_cache(model, dev, folder / "dev", dev_key, 4, torch.device("cpu"))


@pytest.fixture
def count_encoder_rows(monkeypatch) -> dict[str, int]:
    """Clips every Whisper encoder call sees, counted (the passes that would cost the most)."""
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    seen = {"rows": 0, "calls": 0}
    original = WhisperEncoder.forward

    def counting(self, input_features, *args, **kwargs):
        seen["rows"] += int(input_features.shape[0])
        seen["calls"] += 1
        return original(self, input_features, *args, **kwargs)

    monkeypatch.setattr(WhisperEncoder, "forward", counting)
    return seen


def quiet(_: str) -> None:
    pass


# --------------------------------------------------------------------------------------------
# Per-clip measurements


@pytest.fixture(scope="module")
def measured(inputs) -> tuple[pd.DataFrame, dict]:
    """The tiny inputs measured without stored encoder outputs."""
    return measure(inputs, PARAMS, "sv", "transcribe", quiet)


@pytest.mark.slow  # a ranking pass, then the model's own loss per clip
def test_ft_loss_is_the_models_own_loss_of_each_clip(inputs, measured):
    from transformers import WhisperForConditionalGeneration

    clips, summary = measured
    assert summary["clips"] == {"train": ORIGINAL_TRAIN, "dev": DEV_ROWS}
    assert summary["skipped_copies"] == {"train": TRAIN_ROWS - ORIGINAL_TRAIN, "dev": 0}
    assert summary["finetuned_encoder_is_base"] is True
    # No store: the base encoder runs once per clip, the fine-tuned model shares its outputs.
    assert summary["encoder_outputs"] == {
        "stored": 0,
        "encoded_base": ORIGINAL_TRAIN + DEV_ROWS,
        "encoded_finetuned": 0,
    }
    model = WhisperForConditionalGeneration.from_pretrained(inputs.finetuned).eval()
    for split in ("train", "dev"):
        table = datasets.load_from_disk(str(inputs.features / split)).with_format("numpy")
        ours = clips[clips["split"] == split].set_index("path")
        for i in range(len(ours)):
            row = table[i]
            features = torch.from_numpy(pad_features([row["input_features"]], [row["pad_value"]]))
            labels = torch.as_tensor(row["labels"][1:], dtype=torch.long)[None]  # no start token
            with torch.no_grad():
                out = model(input_features=features, labels=labels)
            want = float(out.loss)
            got = ours.loc[row["path"]]
            assert got["ft_loss"] == pytest.approx(want, rel=1e-5)
            token_nll = torch.nn.functional.cross_entropy(
                out.logits[0], labels[0], reduction="none"
            )
            assert got["ft_loss_max"] == pytest.approx(float(token_nll.max()), rel=1e-5)
            assert got["ft_loss_max"] > got["ft_loss"]
    assert set(clips["path"]) == {f"train_{i:03d}.mp3" for i in range(ORIGINAL_TRAIN)} | {
        f"dev_{i:03d}.mp3" for i in range(DEV_ROWS)
    }
    # A random model's transcripts are far from the labels; greedy output is capped by duration.
    assert (clips["ft_wer"] > 0).all() and (clips["zs_wer"] > 0).all()
    assert np.allclose(clips["chars_per_second"], clips["sentence"].str.len() / clips["duration"])


@pytest.mark.slow  # a full ranking pass with the tiny model, twice
def test_stored_encoder_outputs_are_reused(inputs, measured, tmp_path, count_encoder_rows):
    plain, _ = measured
    fill_cache(inputs, tmp_path / "checkpoints")
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    count_encoder_rows.update(rows=0, calls=0)
    stored = dataclasses.replace(inputs, checkpoints=tmp_path / "checkpoints")
    clips, summary = measure(stored, PARAMS, "sv", "transcribe", quiet)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before  # only read
    # Every original train clip and the stored dev subset come from the store; only the dev
    # clips the train stage did not evaluate on are encoded.
    assert summary["encoder_outputs"] == {
        "stored": ORIGINAL_TRAIN + EVAL_MAX_CLIPS,
        "encoded_base": DEV_ROWS - EVAL_MAX_CLIPS,
        "encoded_finetuned": 0,
    }
    assert count_encoder_rows["rows"] == DEV_ROWS - EVAL_MAX_CLIPS
    assert summary["stored_outputs"]["train"].endswith("reused")
    # The stored outputs are float16: the same losses up to that rounding.
    pd.testing.assert_series_equal(clips["ft_loss"], plain["ft_loss"], rtol=1e-2)

    # A store made from other features is not used (and not an error).
    (tmp_path / "checkpoints" / "encoder_cache" / "train" / "fingerprint.json").write_text(
        json.dumps({"fingerprint": "other"})
    )
    count_encoder_rows.update(rows=0, calls=0)
    _, summary = measure(stored, PARAMS, "sv", "transcribe", quiet)
    assert summary["encoder_outputs"]["stored"] == EVAL_MAX_CLIPS
    assert "another base model or other features" in summary["stored_outputs"]["train"]
    assert count_encoder_rows["rows"] == ORIGINAL_TRAIN + DEV_ROWS - EVAL_MAX_CLIPS


@pytest.mark.slow  # trains the tiny model in-process (about 30 s on 2 busy cores)
def test_the_train_stages_own_store_is_found(inputs, tmp_path, count_encoder_rows):
    """The train stage (cross-attention only, its default) and merge, then the rank stage:
    the store it wrote is found under its fingerprint, and its encoder is the base's."""
    from swedish_transcriber.model.merge import MergeParams, merge
    from swedish_transcriber.model.training.fine_tune import TrainPaths, train
    from swedish_transcriber.model.training.params import DistillParams, TrainParams

    train_params = repo_params("train", TrainParams)
    train_params = dataclasses.replace(
        train_params,
        trainable=["cross_attention"],
        distill=DistillParams(weight=0.0, temperature=2.0, teacher_context="padded"),
        max_steps=1,
        eval_steps=1,
        save_steps=1,
        logging_steps=1,
        warmup_steps=0,
        batch_size=4,
        eval_max_clips=EVAL_MAX_CLIPS,
        generation=dataclasses.replace(train_params.generation, batch_size=4, max_new_tokens=4),
    )
    checkpoints = tmp_path / "checkpoints"
    paths = TrainPaths(
        inputs.base_model, inputs.features, tmp_path / "trained", checkpoints, tmp_path / "live"
    )
    train(train_params, "sv", "transcribe", paths)
    merge(inputs.base_model, tmp_path / "trained", tmp_path / "finetuned", MergeParams(0.2))
    ranked = dataclasses.replace(inputs, finetuned=tmp_path / "finetuned", checkpoints=checkpoints)
    count_encoder_rows.update(rows=0, calls=0)
    _, summary = measure(ranked, PARAMS, "sv", "transcribe", quiet)
    assert summary["finetuned_encoder_is_base"] is True
    assert summary["encoder_outputs"] == {
        "stored": ORIGINAL_TRAIN + EVAL_MAX_CLIPS,
        "encoded_base": DEV_ROWS - EVAL_MAX_CLIPS,
        "encoded_finetuned": 0,
    }
    assert count_encoder_rows["rows"] == DEV_ROWS - EVAL_MAX_CLIPS


@pytest.mark.slow  # a ranking pass with a trained encoder
def test_a_trained_encoder_runs_on_every_clip(inputs, tmp_path, count_encoder_rows):
    own = save_finetuned(inputs.base_model, tmp_path / "finetuned", encoder_too=True)
    fill_cache(inputs, tmp_path / "checkpoints")
    count_encoder_rows.update(rows=0, calls=0)
    changed = dataclasses.replace(inputs, finetuned=own, checkpoints=tmp_path / "checkpoints")
    _, summary = measure(changed, PARAMS, "sv", "transcribe", quiet)
    n = ORIGINAL_TRAIN + DEV_ROWS
    assert summary["finetuned_encoder_is_base"] is False
    assert summary["encoder_outputs"]["encoded_finetuned"] == n
    assert count_encoder_rows["rows"] == n + DEV_ROWS - EVAL_MAX_CLIPS


def test_a_merged_encoder_counts_as_the_base_encoder(inputs, tmp_path):
    """The merge stage's interpolation of a frozen encoder changes it by float32 rounding."""
    from swedish_transcriber.model.merge import MergeParams, merge
    from swedish_transcriber.review.queue import same_encoder

    trained = save_finetuned(inputs.base_model, tmp_path / "trained")
    merged = tmp_path / "merged"
    merge(inputs.base_model, trained, merged, MergeParams(alpha=0.2))
    from transformers import WhisperForConditionalGeneration

    base = WhisperForConditionalGeneration.from_pretrained(inputs.base_model)
    mixed = WhisperForConditionalGeneration.from_pretrained(merged)
    assert same_encoder(base, mixed)
    with torch.no_grad():
        mixed.model.encoder.layers[1].fc2.bias.add_(1e-5)  # one learning-rate step
    assert not same_encoder(base, mixed)


# --------------------------------------------------------------------------------------------
# Ranking (pure)


def test_percentiles_share_ties_and_span_zero_to_one():
    got = percentile(pd.Series([3.0, 1.0, 2.0, 2.0, float("nan")]))
    assert got.tolist() == [1.0, 0.0, 0.5, 0.5, 0.5]  # NaN: the median clip's
    assert percentile(pd.Series([7.0])).tolist() == [0.5]
    assert percentile(pd.Series([1.0, 1.0])).tolist() == [0.5, 0.5]
    speed = pd.Series([1.0, 2.0, 3.0, 4.0, 5.0])
    assert component_score(speed, "both").tolist() == [1.0, 0.5, 0.0, 0.5, 1.0]
    assert component_score(speed, "low").tolist() == [1.0, 0.75, 0.5, 0.25, 0.0]
    with pytest.raises(ValueError, match="unknown direction"):
        component_score(speed, "up")


def clips_frame(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    return pd.DataFrame({"path": [f"c{i}.mp3" for i in range(n)], "split": "train", **columns})


def test_ranking_weights_order_and_ties():
    clips = clips_frame(ft_loss=[1.0, 5.0, 3.0, 5.0], ft_wer=[0.0, 0.0, 1.0, 0.5])
    ranked = rank_clips(clips, {"ft_loss": 1.0})
    # c1 and c3 tie on the loss: ordered by path.
    assert ranked["path"].tolist() == ["c1.mp3", "c3.mp3", "c2.mp3", "c0.mp3"]
    assert ranked["rank"].tolist() == [1, 2, 3, 4]
    assert ranked["score_ft_loss"].tolist() == [5 / 6, 5 / 6, 1 / 3, 0.0]
    both = rank_clips(clips, {"ft_loss": 1.0, "ft_wer": 3.0})
    assert both["path"].tolist() == ["c2.mp3", "c3.mp3", "c1.mp3", "c0.mp3"]
    expected = (1.0 * both["score_ft_loss"] + 3.0 * both["score_ft_wer"]) / 4.0
    assert np.allclose(both["suspicion"], expected)
    assert both["suspicion"].between(0, 1).all()
    # Weight 0: the score is shown, not counted.
    shown = rank_clips(clips, {"ft_loss": 1.0, "ft_wer": 0.0})
    assert shown["path"].tolist() == ranked["path"].tolist() and "score_ft_wer" in shown
    # Deterministic: the input order does not matter.
    again = rank_clips(clips.iloc[::-1], {"ft_loss": 1.0, "ft_wer": 3.0})
    pd.testing.assert_frame_equal(again, both)


def test_a_mislabelled_and_a_truncated_clip_lead_the_queue():
    """With the repo's weights: a clip under another clip's sentence (the fine-tuned model finds
    its label unlikely and hears something else) and a truncated recording (the label read at
    an impossible speed, its tail missing) outrank 30 well-fitted clips and a quiet one."""
    rng = np.random.default_rng(0)
    n = 30
    clips = clips_frame(
        ft_loss=list(rng.uniform(0.2, 0.6, n)) + [3.1, 1.4, 0.4],
        ft_wer=list(rng.uniform(0.0, 0.15, n)) + [0.9, 0.45, 0.1],
        zs_wer=list(rng.uniform(0.1, 0.5, n)) + [1.0, 0.6, 0.3],
        chars_per_second=list(rng.uniform(11.0, 17.0, n)) + [14.0, 34.0, 14.0],
        silence_ratio=list(rng.uniform(0.05, 0.3, n)) + [0.2, 0.02, 0.75],
    )
    weights = repo_params("review.rank", RankParams).weights
    weights = {c: w for c, w in weights.items() if c in IN_SAMPLE}  # no fold models here
    ranked = rank_clips(clips, weights)
    assert ranked["path"].head(2).tolist() == [f"c{n}.mp3", f"c{n + 1}.mp3"]
    assert ranked.loc[ranked["path"] == f"c{n + 2}.mp3", "rank"].item() > 2


def test_rank_params_are_strict(tmp_path):
    rank = "{enabled: true, weights: {ft_loss: 1.0}, batch_size: 2, max_new_tokens: 8, "
    rank += "max_tokens_per_second: 12.0, max_tokens_slack: 4, "
    rank += "cross_fit: {folds: 0, max_steps: null}}"
    path = tmp_path / "params.yaml"
    page = "{enabled: false, queue: q, decisions: d, max_reason_chars: 9, max_fix_chars: 9}"
    path.write_text(f"review:\n  rank: {rank}\n  auto_exclude_top_fraction: 0.1\n  page: {page}\n")
    assert section("review.rank", RankParams, path).weights == {"ft_loss": 1.0}
    assert section("review", ReviewParams, path).rank.batch_size == 2
    for weights, message in (
        ("{ft_los: 1.0}", "unknown component.*ft_los"),
        ("{ft_loss: -1.0}", "finite and >= 0"),
        ("{ft_loss: 0.0}", "at least one component"),
        ("{oos_word: 1.0}", "oos_word need cross-fitting"),
    ):
        path.write_text(f"review:\n  rank: {rank.replace('{ft_loss: 1.0}', weights)}\n")
        with pytest.raises(ParamsError, match=message):
            section("review.rank", RankParams, path)
    for cross_fit, message in (
        ("{folds: 1, max_steps: null}", "folds"),
        ("{folds: 2}", "max_steps"),
    ):
        path.write_text(
            f"review:\n  rank: {rank.replace('{folds: 0, max_steps: null}', cross_fit)}\n"
        )
        with pytest.raises(ParamsError, match=message):
            section("review.rank", RankParams, path)
    repo = section("review", ReviewParams, PARAMS_FILE)
    assert set(repo.rank.weights) <= set(COMPONENTS)
    assert repo.rank.cross_fit.folds == 2 and set(repo.rank.weights) & set(OUT_OF_SAMPLE)


# --------------------------------------------------------------------------------------------
# The stage


@pytest.fixture
def rank_repo(repo_copy, inputs) -> Path:
    """A repo copy whose inputs are the tiny ones, at dvc.yaml's paths."""
    repo = repo_copy()
    for source, rel in (
        (inputs.base_model, "models/base"),
        (inputs.finetuned, "models/trained"),
        (inputs.features, "data/features"),
        (inputs.validated, "data/validated"),
    ):
        shutil.copytree(source, repo / rel)
    # A random model talks until its cap: keep the transcripts short. Cross-fitting off
    # here (the in-sample queue); test_stage_cross_fits_... turns it on.
    rank = {
        "max_new_tokens": 8,
        "enabled": True,  # off in the repo: a default repro skips it
        "cross_fit": {"folds": 0, "max_steps": None},
        "weights": IN_SAMPLE_WEIGHTS,
    }
    write_params(repo, dotted("review.rank", rank))
    return repo


@pytest.mark.slow  # the rank stage end to end with models
def test_stage_writes_the_queue_with_the_exact_columns(rank_repo, monkeypatch, capsys):
    import stages.rank

    monkeypatch.chdir(rank_repo)
    main(stages.rank.run, stage_args("rank", rank_repo))
    reports = rank_repo / "reports"
    queue = pd.read_parquet(reports / "review_queue.parquet")
    weights = section("review.rank", RankParams, rank_repo / "params.yaml").weights
    assert list(queue.columns) == queue_columns(weights)
    assert queue_columns(weights)[:8] == [
        "rank",
        "path",
        "split",
        "audio_file",
        "sentence",
        "transcript",
        "zero_shot_transcript",
        "suspicion",
    ]
    assert {f"score_{c}" for c in weights} <= set(queue.columns)
    assert queue["rank"].tolist() == list(range(1, ORIGINAL_TRAIN + DEV_ROWS + 1))
    assert queue["suspicion"].is_monotonic_decreasing
    assert set(queue["split"]) == {"train", "dev"}
    assert queue["audio_file"].str.startswith("data/raw/demo/clips/").all()
    csv = pd.read_csv(reports / "review_queue.csv", keep_default_na=False)
    assert list(csv.columns) == list(queue.columns)
    assert csv["path"].tolist() == queue["path"].tolist()
    assert np.allclose(csv["suspicion"], queue["suspicion"])
    summary = json.loads((reports / "review_queue.json").read_text(encoding="utf-8"))
    assert summary["clips"] == {"train": ORIGINAL_TRAIN, "dev": DEV_ROWS}
    assert summary["weights"] == weights
    # The committed summary holds no wall time or cache state: those are printed instead.
    assert not set(summary) & {"seconds", "encoder_outputs", "stored_outputs"}
    out = capsys.readouterr().out
    assert "rank: 10 clips" in out and "1. " in out and '"seconds"' in out
    # The same inputs give the same queue (the page and auto-exclusion rely on its order).
    written = (reports / "review_queue.json").read_bytes()
    main(stages.rank.run, stage_args("rank", rank_repo))
    pd.testing.assert_frame_equal(pd.read_parquet(reports / "review_queue.parquet"), queue)
    assert (reports / "review_queue.json").read_bytes() == written


@pytest.mark.parametrize("fraction", [0.0, 0.05])
def test_stage_ranks_only_when_the_queue_is_asked_for(rank_repo, monkeypatch, capsys, fraction):
    """Off and fraction 0 (the repo's default): the queue's files with its columns and no
    rows, and no model loaded (the models are gone here). A fraction above 0 ranks."""
    import stages.rank

    changes = {"review.rank.enabled": False, "review.auto_exclude_top_fraction": fraction}
    write_params(rank_repo, changes)
    if not fraction:
        shutil.rmtree(rank_repo / "models")
    monkeypatch.chdir(rank_repo)
    main(stages.rank.run, stage_args("rank", rank_repo))
    reports = rank_repo / "reports"
    queue = pd.read_parquet(reports / "review_queue.parquet")
    summary = json.loads((reports / "review_queue.json").read_text(encoding="utf-8"))
    weights = load_yaml(rank_repo / "params.yaml")["review"]["rank"]["weights"]
    assert list(queue.columns) == queue_columns(weights)
    assert pd.read_csv(reports / "review_queue.csv").columns.tolist() == list(queue.columns)
    if fraction:
        assert len(queue) == ORIGINAL_TRAIN + DEV_ROWS and summary["built"] is True
    else:
        assert queue.empty and summary["built"] is False
        assert "review.rank.enabled" in summary["why"]
        assert "not ranked" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("models/trained/config.json", "the fine-tuned model is missing; run `dvc repro train`"),
        ("models/base/config.json", "the base model is missing; run `dvc repro base_model`"),
        ("data/features/dev", "the dev features is missing; run `dvc repro featurize`"),
        ("data/validated/train.parquet", "the validated train manifest is missing; run `dvc repro"),
    ],
)
def test_missing_inputs_are_clear_errors(rank_repo, monkeypatch, capsys, missing, message):
    import stages.rank

    target = rank_repo / missing
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    monkeypatch.chdir(rank_repo)
    with pytest.raises(SystemExit) as exc:
        main(stages.rank.run, stage_args("rank", rank_repo))
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"rank: error: {missing}"), err
    assert message in err
    if "merge" in message:
        assert "dvc repro train" in err
    assert not (rank_repo / "reports" / "review_queue.parquet").exists()


def test_clip_context_ranks_every_clip_in_batches_of_one_context(inputs, monkeypatch):
    """Under whisper.context: clip both models read each clip at its own rounded context,
    one context per encoder call, and every clip is still measured."""
    from swedish_transcriber.data.features import stored_frames_of
    from swedish_transcriber.own_context import OwnContextEncoder
    from swedish_transcriber.whisper import EncoderContext

    context = EncoderContext("clip", 0.0)
    widths: list[int] = []
    original = OwnContextEncoder.forward

    def seen(self, input_features, *args, **kwargs):
        widths.append(int(input_features.shape[-1]))
        return original(self, input_features, *args, **kwargs)

    monkeypatch.setattr(OwnContextEncoder, "forward", seen)
    clips, summary = measure(inputs, PARAMS, "sv", "transcribe", quiet, context)
    tables = {s: datasets.load_from_disk(str(inputs.features / s)) for s in ("train", "dev")}
    wanted = {context.frames(n) for t in tables.values() for n in stored_frames_of(t)}
    # Only original clips are ranked (not every table row): their contexts, several of them.
    assert set(widths) <= wanted and len(set(widths)) > 1 and max(widths) < 3000
    assert len(clips) == sum(summary["clips"].values())
    assert clips["ft_loss"].notna().all() and clips["zs_wer"].notna().all()


# --------------------------------------------------------------------------------------------
# Cross-fitting: out-of-sample scores, never by a model that trained on the clip


def test_folds_are_speaker_disjoint_balanced_and_deterministic():
    from swedish_transcriber.review.cross_fit import assign_folds, held_out_paths

    speakers = ["a"] * 5 + ["b"] * 3 + ["c"] * 3 + ["d"] * 2 + ["e"]
    folds = assign_folds(speakers, 2)
    assert set(folds) == set(speakers) and set(folds.values()) == {0, 1}
    sizes = [sum(folds[s] == f for s in speakers) for f in (0, 1)]
    assert abs(sizes[0] - sizes[1]) <= 1  # 14 clips: 7 and 7
    assert assign_folds(list(reversed(speakers)), 2) == folds
    with pytest.raises(ValueError, match="at least 3 speakers"):
        assign_folds(["a", "b", "a"], 3)
    # A fold leaves out its speakers' original clips; their augmented copies go with them
    # through the train stage's own exclusion (kept_rows), copies of others' clips do not.
    paths = ["x.mp3", "x.aug1.flac", "y.mp3", "y.aug1.flac"]
    owners = ["a", "a", "b", "b"]
    held = held_out_paths(paths, owners, {"a": 0, "b": 1}, 0)
    assert held == {"x.mp3"}
    from swedish_transcriber.model.training.fine_tune import kept_rows

    table = datasets.Dataset.from_dict({"path": paths})
    assert [paths[i] for i in kept_rows(table, held)] == ["y.mp3", "y.aug1.flac"]


def test_a_fold_model_trains_fewer_steps_only_by_param():
    from swedish_transcriber.review.cross_fit import fold_params
    from swedish_transcriber.review.params import CrossFitParams

    recipe = repo_params("train", TrainParams)
    assert fold_params(recipe, CrossFitParams(folds=2, max_steps=None)) == recipe
    short = fold_params(recipe, CrossFitParams(folds=2, max_steps=3))
    assert short.max_steps == 3 and short.eval_steps <= 3 and short.save_steps <= 3
    assert (
        dataclasses.replace(
            short,
            max_steps=recipe.max_steps,
            eval_steps=recipe.eval_steps,
            save_steps=recipe.save_steps,
            logging_steps=recipe.logging_steps,
            warmup_steps=recipe.warmup_steps,
        )
        == recipe
    )


class RecordingFit:
    """The train stage's training, stood in for: a model (the base with a changed decoder,
    different per fold) written where the real one goes, and what it was told to leave out."""

    def __init__(self) -> None:
        self.calls: list[tuple[Path, frozenset[str], int]] = []

    def __call__(self, params, language, task, paths, context=None) -> None:
        from transformers import WhisperForConditionalGeneration

        assert paths.shared_encoder_cache is not None and paths.exclude
        self.calls.append((paths.output, paths.exclude, params.max_steps))
        model = WhisperForConditionalGeneration.from_pretrained(paths.base_model)
        with torch.no_grad():
            model.model.decoder.layers[0].fc1.weight.mul_(1.0 + 0.25 * len(self.calls))
        shutil.copytree(paths.base_model, paths.output)  # processor, generation config
        model.save_pretrained(paths.output)


@pytest.fixture(scope="module")
def cross_fitted(inputs, tmp_path_factory):
    """The tiny queue, cross-fitted with 2 folds (the recording stand-in trains); built once,
    read by the tests below."""
    with pytest.MonkeyPatch.context() as monkeypatch:  # the stand-in only while it builds
        return cross_fit_queue(inputs, tmp_path_factory.mktemp("cross_fit"), monkeypatch)


def cross_fit_queue(inputs, tmp_path: Path, monkeypatch):
    from swedish_transcriber.review import cross_fit
    from swedish_transcriber.review.queue import rank

    fit = RecordingFit()
    trained: dict[str, frozenset[str]] = {}
    original = cross_fit.fit_fold_models

    def recording(*args, **kwargs):
        fold_of, models = original(*args, **kwargs)
        trained.update({m.name: m.trained_on for m in models})
        return fold_of, models

    monkeypatch.setattr(cross_fit, "train", fit)
    monkeypatch.setattr("swedish_transcriber.review.queue.fit_fold_models", recording)
    outputs = tuple(tmp_path / f"review_queue.{e}" for e in ("parquet", "csv", "json"))
    recipe = repo_params("train", TrainParams)
    queue = rank(inputs, PARAMS, "sv", "transcribe", outputs, quiet, train_params=recipe)
    return queue, fit, trained, outputs


@pytest.mark.slow  # two fold models trained and a queue ranked (module fixture)
def test_no_clip_is_scored_by_a_model_that_trained_on_it(inputs, cross_fitted):
    """Plant a clip (train_003.mp3, speaker-1): the fold model that left speaker-1 out scores
    it, and that model's training rows (what the train stage would train on, given the
    exclusion it was handed) hold neither it nor any of speaker-1's clips."""
    queue, fit, trained, _ = cross_fitted
    assert len(fit.calls) == 2 and all(steps == PARAMS_STEPS for *_, steps in fit.calls)
    table = datasets.load_from_disk(str(inputs.features / "train"))
    speaker = dict(zip(table["path"], table["client_id"], strict=True))
    planted = queue.set_index("path").loc["train_003.mp3"]
    assert planted["scored_by"] in trained and planted["split"] == "train"
    assert "train_003.mp3" not in trained[planted["scored_by"]]
    held = {p for p in speaker if speaker[p] == speaker["train_003.mp3"]}
    assert not held & trained[planted["scored_by"]]
    # The other fold's model trained on it, and never scored it.
    other = next(name for name in trained if name != planted["scored_by"])
    assert "train_003.mp3" in trained[other]
    for row in queue[queue["split"] == "train"].itertuples():
        assert row.path not in trained[row.scored_by], row.path
        assert int(row.scored_by.split("-")[1]) == row.fold
    # Folds by speaker: one speaker, one fold.
    train = queue[queue["split"] == "train"]
    assert train.groupby(train["path"].map(speaker))["fold"].nunique().eq(1).all()
    assert set(queue["scored_by"]) == set(trained)  # dev clips too, by a fold model


@pytest.mark.slow  # the same cross-fitted queue
def test_the_cross_fitted_queue_has_the_out_of_sample_and_suspect_word_columns(cross_fitted):
    queue, _, _, outputs = cross_fitted
    assert list(queue.columns) == queue_columns(PARAMS.weights, cross_fitted=True)
    assert set(CROSS_FIT_COLUMNS) | set(OUT_OF_SAMPLE) <= set(queue.columns)
    assert {f"score_{c}" for c in PARAMS.weights} <= set(queue.columns)
    for row in queue.itertuples():
        words = row.sentence.split()
        assert 0 <= row.suspect_word_index < len(words)
        assert words[row.suspect_word_index] == row.suspect_word
        assert row.suspect_word_logprob <= 0
        assert row.oos_word == (0.0 if row.suspect_word_aligned else -row.suspect_word_logprob)
    assert queue["oos_loss"].notna().all() and (queue["oos_loss_max"] >= queue["oos_loss"]).all()
    written = pd.read_parquet(outputs[0])
    pd.testing.assert_frame_equal(written, queue)
    summary = json.loads(outputs[2].read_text(encoding="utf-8"))
    fits = summary["cross_fit"]
    assert fits["folds"] == 2 and fits["max_steps"] == PARAMS_STEPS
    assert sum(m["scored"]["train"] for m in fits["models"]) == ORIGINAL_TRAIN


def test_the_empty_queue_keeps_its_columns_with_out_of_sample_weights(tmp_path):
    """A default repro (ranking off) writes the queue it wrote before cross-fitting existed:
    the repo's weights name oos_* components, whose columns only a built queue has."""
    from swedish_transcriber.review.queue import write_empty_queue

    before = [
        *("rank", "path", "split", "audio_file", "sentence", "transcript"),
        *("zero_shot_transcript", "suspicion"),
        *IN_SAMPLE,
        *(f"score_{c}" for c in ("ft_loss", "ft_wer", "zs_wer", "chars_per_second")),
        "score_silence_ratio",
    ]
    outputs = tuple(tmp_path / f"q.{e}" for e in ("parquet", "csv", "json"))
    write_empty_queue(PARAMS, outputs, "off")
    assert list(pd.read_parquet(outputs[0]).columns) == before
