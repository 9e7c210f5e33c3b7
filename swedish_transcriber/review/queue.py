"""The review queue: every original train and dev clip, measured by both models, ranked.

For each clip in ``data/features/{train,dev}`` whose ``path`` is in the validated manifest of
its split (augmented copies are not: a person reviews a recording, not its copies) this
records the fine-tuned model's teacher-forced loss (mean and worst token), its greedy
transcript and WER/CER against the label (normalised: :mod:`~swedish_transcriber.evaluation.
normalizer`), the zero-shot model's greedy WER, the clip's duration and reading speed and the
validate stage's loudness measures; :mod:`.suspicion` ranks them.

The encoder runs at most once per clip and model: the base encoder's outputs come from the
train stage's store where they fit (:mod:`.stored_states`), else they are computed here;
the fine-tuned model reuses them when its encoder is the base's (the default recipe trains
only cross-attention; the merge stage's interpolation then changes encoder weights by float32
rounding alone), else its own encoder runs.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from swedish_transcriber.atomic import atomic_file, write_text
from swedish_transcriber.data.features import PAD_COLUMN, load_split, pad_features, stored_frames_of
from swedish_transcriber.data.manifest import read_split
from swedish_transcriber.decoding import token_cap
from swedish_transcriber.evaluation.normalizer import normalize
from swedish_transcriber.evaluation.scoring import cer, wer
from swedish_transcriber.evaluation.transcription import context_batches, load_model
from swedish_transcriber.model.training.params import TrainParams
from swedish_transcriber.review import stored_states
from swedish_transcriber.review.cross_fit import Fit, FoldModel, fit_fold_models, scoring_folds
from swedish_transcriber.review.model_passes import (
    greedy_transcripts,
    token_logprobs,
    token_losses,
)
from swedish_transcriber.review.params import (
    CROSS_FIT_COLUMNS,
    IN_SAMPLE,
    OUT_OF_SAMPLE,
    TEXT_COLUMNS,
    RankParams,
)
from swedish_transcriber.review.suspicion import rank_clips
from swedish_transcriber.review.word_evidence import clip_evidence, token_bytes
from swedish_transcriber.whisper import N_FRAMES, PADDED, EncoderContext

SPLITS: tuple[str, ...] = ("train", "dev")
MANIFEST_COLUMNS: tuple[str, ...] = (
    "path",
    "audio_file",
    "duration",
    "silence_ratio",
    "clipping_ratio",
    "peak",
    "rms",
)
RAW_COLUMNS = IN_SAMPLE  # every in-sample component, raw, in the queue (weighted or not)
# Encoder weights equal up to this are one encoder: the merge stage's float32 interpolation
# of two equal tensors, (1 - a) * x + a * x, is x within 2 ulp (1.2e-7 relative), while a
# trained encoder differs by a learning-rate step (1e-5 and more).
SAME_ENCODER_RTOL = 1e-6
SAME_ENCODER_ATOL = 1e-8


def queue_columns(weights: dict[str, float], cross_fitted: bool = False) -> list[str]:
    """The queue's columns, in order (the review page reads them by name).

    Without cross-fitting (``review.rank.cross_fit.folds: 0``, or an empty queue: nothing
    was scored) there are no fold, suspect-word or ``oos_*`` columns: an empty queue has the
    columns it had before cross-fitting existed, so a default ``dvc repro`` writes the same
    bytes.
    """
    if not cross_fitted:
        weights = {c: w for c, w in weights.items() if c not in OUT_OF_SAMPLE}
        return [*TEXT_COLUMNS, *RAW_COLUMNS, *(f"score_{c}" for c in weights)]
    return [
        *TEXT_COLUMNS,
        *CROSS_FIT_COLUMNS,
        *RAW_COLUMNS,
        *OUT_OF_SAMPLE,
        *(f"score_{c}" for c in weights),
    ]


@dataclass(frozen=True)
class RankInputs:
    """What the rank stage reads (dvc.yaml's deps; ``checkpoints`` is a memo, not a dep)."""

    base_model: Path  # models/base
    finetuned: Path  # models/trained: fine-tuned on every train clip, the queue's included
    features: Path  # data/features (train, dev)
    validated: Path  # data/validated (the manifests: which clips are originals, measures)
    checkpoints: Path  # the train stage's folder: stored encoder outputs, when they fit


def check_inputs(inputs: RankInputs) -> None:
    """Every input there, or one error naming the missing path and the stage that writes it."""
    wanted = [
        (inputs.base_model / "config.json", "the base model", "dvc repro base_model"),
        (inputs.finetuned / "config.json", "the fine-tuned model", "dvc repro train"),
        *(
            (inputs.features / s / "dataset_info.json", f"the {s} features", "dvc repro featurize")
            for s in SPLITS
        ),
        *(
            (inputs.validated / f"{s}.parquet", f"the validated {s} manifest", "dvc repro validate")
            for s in SPLITS
        ),
    ]
    for path, what, command in wanted:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: {what} is missing; run `{command}`")


def original_clips(features: Path, validated: Path, split: str):
    """The feature table of ``split`` and one row per original clip (``row``: its table row)."""
    table = load_split(features, split)
    manifest = read_split(validated, split)
    missing = [c for c in MANIFEST_COLUMNS if c not in manifest.columns]
    if missing:
        raise ValueError(
            f"{validated}/{split}.parquet lacks column(s) {', '.join(missing)} (made by an "
            f"older validate stage? run `dvc repro validate`)"
        )
    manifest = manifest[list(MANIFEST_COLUMNS)].copy()
    manifest["path"] = manifest["path"].astype(str)
    twice = manifest["path"][manifest["path"].duplicated()]
    if len(twice):
        raise ValueError(f"{validated}/{split}.parquet lists clip {twice.iloc[0]!r} twice")
    ours = pd.DataFrame(
        {
            "path": [str(p) for p in table["path"]],
            "sentence": table["sentence"],
            "client_id": [str(c) for c in table["client_id"]],
        }
    )
    ours["row"] = range(len(ours))
    clips = ours.merge(manifest, on="path", how="inner", validate="one_to_one")
    clips.insert(1, "split", split)
    for column in ("duration", "silence_ratio", "clipping_ratio", "peak", "rms"):
        clips[column] = clips[column].astype(float)
    clips["chars_per_second"] = clips["sentence"].str.len() / clips["duration"]
    return table, clips.sort_values("row", kind="mergesort").reset_index(drop=True)


def same_encoder(a, b) -> bool:
    """Whether two Whisper models have one encoder (equal weights, up to float32 rounding)."""
    first, second = a.get_encoder().state_dict(), b.get_encoder().state_dict()
    return first.keys() == second.keys() and all(
        first[k].shape == second[k].shape
        and torch.allclose(
            first[k].float(), second[k].float(), rtol=SAME_ENCODER_RTOL, atol=SAME_ENCODER_ATOL
        )
        for k in first
    )


@torch.no_grad()
def encode(model, table, rows: list[int], frames: int = N_FRAMES) -> torch.Tensor:
    """The encoder outputs of feature-table ``rows`` at a context of ``frames`` (float32)."""
    batch = table.select(rows).select_columns(["input_features", PAD_COLUMN]).with_format("numpy")
    windows = pad_features(batch["input_features"], batch[PAD_COLUMN], frames)
    features = torch.from_numpy(windows).to(model.device, dtype=model.dtype)
    return model.get_encoder()(features).last_hidden_state.float()


def error_rates(reference: str, hypothesis: str) -> tuple[float, float]:
    """WER and CER of one clip, normalised (as written when the label normalises to nothing)."""
    ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref:
        ref, hyp = reference, hypothesis
    return wer([ref], [hyp]), cer([ref], [hyp])


def measure(
    inputs: RankInputs,
    params: RankParams,
    language: str,
    task: str,
    log: Callable[[str], None] = print,
    context: EncoderContext = PADDED,
    cross: tuple[dict[str, int], list[FoldModel]] | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Every original train and dev clip with its raw components and transcripts; a summary.

    Both models read each clip at ``context`` (params ``whisper``), in batches of one
    context length; the train stage's stored encoder outputs are used where they fit.
    ``cross``: the train speakers' folds and the fold models (:mod:`.cross_fit`); each clip
    is then also scored by the fold model that left its fold out (the ``oos_*`` components,
    the suspect word), which reads the same encoder outputs when its encoder is the base's.
    """
    check_inputs(inputs)
    started = time.perf_counter()
    finetuned, processor = load_model(inputs.finetuned, language, task)
    base, base_processor = load_model(inputs.base_model, language, task)
    shared = same_encoder(base, finetuned)
    log(
        "rank: the fine-tuned encoder is the base's: its outputs are shared"
        if shared
        else "rank: the fine-tuned encoder differs from the base's: it runs on every clip"
    )
    splits = {s: original_clips(inputs.features, inputs.validated, s) for s in SPLITS}
    folds: list[tuple[FoldModel, object, object, bool]] = []
    scorer: dict[str, list[int]] = {}
    if cross is not None:
        train_folds, fold_models = cross
        for fold in fold_models:
            model, fold_processor = load_model(fold.path, language, task)
            folds.append((fold, model, fold_processor, same_encoder(base, model)))
        speakers = {s: list(c["client_id"]) for s, (_, c) in splits.items()}
        scorer = scoring_folds(speakers, train_folds, len(fold_models))
    labels = {s: [list(x) for x in table["labels"]] for s, (table, _) in splits.items()}
    stored = stored_states.find(
        inputs.checkpoints, inputs.base_model, inputs.features, inputs.finetuned, labels, context
    )
    options = params.decode_options()
    counts = {"stored": 0, "encoded_base": 0, "encoded_finetuned": 0}
    if folds:
        counts["encoded_folds"] = 0
    frames = []
    for split, (table, clips) in splits.items():
        log(f"rank: {split}: {len(clips)} original clips of {len(table)}; {stored[split].note}")
        if folds:
            clips["fold"] = scorer[split]
        order = clips.sort_values(["duration", "row"], kind="mergesort")
        own = stored_frames_of(table)
        results: dict[int, dict] = {}
        done = 0
        for width, positions in context_batches(
            [own[int(r)] for r in order["row"]], context, params.batch_size
        ):
            batch = order.iloc[positions]
            rows = [int(r) for r in batch["row"]]
            have = stored[split].get(rows)
            fresh = [r for r in rows if r not in have]
            if fresh:
                have.update(zip(fresh, encode(base, table, fresh, width).cpu(), strict=True))
            counts["stored"] += len(rows) - len(fresh)
            counts["encoded_base"] += len(fresh)
            base_hidden = torch.stack([have[r] for r in rows]).to(base.device)
            ft_hidden = base_hidden if shared else encode(finetuned, table, rows, width)
            counts["encoded_finetuned"] += 0 if shared else len(rows)
            losses, peaks = token_losses(finetuned, ft_hidden, [labels[split][r] for r in rows])
            caps = [token_cap(float(d), options) for d in batch["duration"]]
            ft_text = greedy_transcripts(
                finetuned, processor.tokenizer, ft_hidden, caps, language, task
            )
            zs_text = greedy_transcripts(
                base, base_processor.tokenizer, base_hidden, caps, language, task
            )
            for i, row in enumerate(rows):
                sentence = str(batch["sentence"].iloc[i])
                ft_wer, ft_cer = error_rates(sentence, ft_text[i])
                results[row] = {
                    "transcript": ft_text[i],
                    "zero_shot_transcript": zs_text[i],
                    "ft_loss": float(losses[i]),
                    "ft_loss_max": float(peaks[i]),
                    "ft_wer": ft_wer,
                    "ft_cer": ft_cer,
                    "zs_wer": error_rates(sentence, zs_text[i])[0],
                }
            for fold, model, fold_processor, fold_shared in folds:
                mine = [i for i, f in enumerate(batch["fold"]) if f == fold.fold]
                if not mine:
                    continue
                sub = [rows[i] for i in mine]
                if fold_shared:
                    hidden = base_hidden[mine]
                else:
                    hidden = encode(model, table, sub, width)
                    counts["encoded_folds"] += len(sub)
                means, peaks, tokens = token_logprobs(
                    model, hidden, [labels[split][r] for r in sub]
                )
                texts = greedy_transcripts(
                    model, fold_processor.tokenizer, hidden, [caps[i] for i in mine], language, task
                )
                for j, (i, row) in enumerate(zip(mine, sub, strict=True)):
                    ids, logprobs = tokens[j]
                    pieces = token_bytes(fold_processor.tokenizer, ids)
                    word = clip_evidence(pieces, logprobs, texts[j])
                    oos_wer, oos_cer = error_rates(str(batch["sentence"].iloc[i]), texts[j])
                    results[row].update(
                        scored_by=fold.name,
                        oos_transcript=texts[j],
                        suspect_word=word.word,
                        suspect_word_index=word.index,
                        suspect_word_logprob=word.logprob,
                        suspect_word_aligned=word.aligned,
                        oos_loss=float(means[j]),
                        oos_loss_max=float(peaks[j]),
                        oos_wer=oos_wer,
                        oos_cer=oos_cer,
                        oos_word=word.score,
                    )
            done += len(rows)
            log(f"rank: {split}: {done}/{len(order)} clips")
        measured = pd.DataFrame([results[int(r)] for r in clips["row"]], index=clips.index)
        frames.append(pd.concat([clips, measured], axis=1))
    clips = pd.concat(frames, ignore_index=True).drop(columns="row")
    log(
        f"rank: encoder outputs: {counts['stored']} clips from the train stage's store, "
        f"{counts['encoded_base']} encoded by the base model, {counts['encoded_finetuned']} "
        f"by the fine-tuned model"
    )
    summary = {
        "clips": {s: int(len(c)) for s, (_, c) in splits.items()},
        "skipped_copies": {s: int(len(t) - len(c)) for s, (t, c) in splits.items()},
        "encoder_outputs": counts,
        "finetuned_encoder_is_base": shared,
        "stored_outputs": {s: stored[s].note for s in SPLITS},
        "seconds": round(time.perf_counter() - started, 1),
    }
    if folds:
        summary["cross_fit"] = {
            "folds": len(folds),
            "models": [
                {
                    "name": fold.name,
                    "held_out_speakers": len(fold.held_out_speakers),
                    "trained_rows": len(fold.trained_on),
                    "encoder_is_base": fold_shared,
                    "scored": {
                        s: int((c["fold"] == fold.fold).sum()) for s, (_, c) in splits.items()
                    },
                }
                for fold, _, _, fold_shared in folds
            ],
        }
    return clips, summary


# Summary keys that describe one run rather than the queue: printed, not in the JSON file.
RUN_FACTS = ("encoder_outputs", "stored_outputs", "seconds")


def fold_steps(train_params: TrainParams, params: RankParams) -> int:
    """The optimizer steps of each fold model (``cross_fit.max_steps``, else the recipe's)."""
    return params.cross_fit.max_steps or train_params.max_steps


def build_queue(clips: pd.DataFrame, params: RankParams) -> pd.DataFrame:
    """The ranked queue with exactly :func:`queue_columns`."""
    ranked = rank_clips(clips, params.weights)
    cross_fitted = "scored_by" in ranked.columns
    return ranked[queue_columns(params.weights, cross_fitted)]


def write_queue(queue: pd.DataFrame, parquet: Path, csv: Path, summary_file: Path, summary: dict):
    """The queue as Parquet and CSV, and the summary JSON, each written atomically."""
    with atomic_file(parquet, "wb") as fh:
        queue.to_parquet(fh, index=False)
    with atomic_file(csv, "w", encoding="utf-8", newline="") as fh:
        queue.to_csv(fh, index=False)
    write_text(summary_file, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")


def write_empty_queue(params: RankParams, outputs: tuple[Path, Path, Path], why: str) -> None:
    """The queue's files with its columns and no rows, when ranking is not asked for: the
    outs exist (DVC and the retrain stage read them) and say why they are empty."""
    empty = pd.DataFrame({c: pd.Series(dtype="object") for c in queue_columns(params.weights)})
    write_queue(empty, *outputs, {"built": False, "why": why, "clips": dict.fromkeys(SPLITS, 0)})


def rank(
    inputs: RankInputs,
    params: RankParams,
    language: str,
    task: str,
    outputs: tuple[Path, Path, Path],
    log: Callable[[str], None] = print,
    context: EncoderContext = PADDED,
    train_params: TrainParams | None = None,
    fit: Fit | None = None,
) -> pd.DataFrame:
    """Measure, rank and write the queue (Parquet, CSV, summary JSON); return it.

    With ``params.cross_fit`` on, the fold models are trained first (with ``fit``, the train
    stage's training when None, and ``train_params``) in a temporary folder removed
    afterwards.
    """
    if not params.cross_fit.enabled:
        clips, summary = measure(inputs, params, language, task, log, context)
    else:
        if train_params is None:
            raise ValueError("cross-fitting needs the train params (params train)")
        check_inputs(inputs)
        with tempfile.TemporaryDirectory(prefix="rank-cross-fit-") as workdir:
            cross = fit_fold_models(
                inputs.base_model,
                inputs.features,
                inputs.checkpoints,
                Path(workdir),
                train_params,
                params.cross_fit,
                language,
                task,
                context,
                fit,
                log,
            )
            clips, summary = measure(inputs, params, language, task, log, context, cross)
        summary["cross_fit"]["max_steps"] = fold_steps(train_params, params)
    queue = build_queue(clips, params)
    summary = {"built": True, **summary, "weights": dict(params.weights)}
    # How this run went (wall time, encoder outputs reused from checkpoints/) is logged, not
    # written: the summary is committed, and must be a function of the stage's deps and params.
    run_facts = {k: summary.pop(k) for k in RUN_FACTS}
    log(f"rank: this run: {json.dumps(run_facts, ensure_ascii=False)}")
    write_queue(queue, *outputs, summary)
    return queue
