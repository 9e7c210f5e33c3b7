"""Out-of-sample scores for the review queue: k-fold cross-fitting by speaker.

A model that trained on a wrong label has learnt part of it, so it finds that label less
unlikely than it should (benchmarks/studies/rank_weights.py: the teacher-forced loss found
0.94 of simulated errors, 0.73 of real ones). Cross-fitting, as confident learning does it,
scores each train clip with a model that never saw it: the train clips' speakers
(``client_id``) are split into k folds (:func:`assign_folds`), fold model ``i`` trains on
every other fold with the train stage's own recipe (params ``train``;
:func:`~swedish_transcriber.model.training.fine_tune.train` with the held-out clips excluded,
their augmented copies with them) and scores fold ``i``. Split by speaker, not by clip: a
speaker's other clips would teach the model their voice, and a clip's augmented copies its
very label. Dev clips trained no model; they are scored by the fold model of their
speaker's dev fold, so train and dev clips are scored alike.

The fold models train on the train stage's stored encoder outputs when they fit (only
decoder passes, with the default frozen encoder) and live in a temporary folder that the
rank stage removes: nothing is written into the repo, and the queue stays a function of the
stage's deps and params. ``models/trained`` stays what everything else uses.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from swedish_transcriber.data.features import load_split
from swedish_transcriber.model.training.fine_tune import TrainPaths, kept_rows, origin, train
from swedish_transcriber.model.training.params import TrainParams
from swedish_transcriber.review.params import CrossFitParams
from swedish_transcriber.whisper import PADDED, EncoderContext

# fit(params, language, task, paths, context=...): the train stage's training (tests pass a
# stand-in that records what it was given).
Fit = Callable[..., object]


@dataclass(frozen=True)
class FoldModel:
    """One fold's model: what it trained on, so that no clip is scored by a model that saw it."""

    fold: int
    name: str  # "fold-<i>-of-<k>", the queue's ``scored_by``
    path: Path  # the model folder (temporary)
    held_out_speakers: frozenset[str]
    trained_on: frozenset[str]  # the train-table paths it trained on (copies included)


def _speaker_key(speaker: str) -> str:
    return hashlib.sha256(speaker.encode()).hexdigest()


def assign_folds(speakers: Sequence[str], folds: int) -> dict[str, int]:
    """Speaker -> fold, ``speakers`` being one entry per clip: folds of about equal clips.

    Greedy, as scikit-learn's GroupKFold: the speaker with most clips first (ties by a hash
    of the id, so no speaker is always first by name) into the fold with fewest clips so far
    (ties: the lower fold). Deterministic; fewer speakers than folds is an error.
    """
    counts = Counter(speakers)
    if len(counts) < folds:
        raise ValueError(
            f"cross-fitting needs at least {folds} speakers (client_id) for {folds} folds, "
            f"found {len(counts)}; lower review.rank.cross_fit.folds"
        )
    sizes = [0] * folds
    out: dict[str, int] = {}
    for speaker in sorted(counts, key=lambda s: (-counts[s], _speaker_key(s))):
        fold = min(range(folds), key=lambda f: (sizes[f], f))
        out[speaker] = fold
        sizes[fold] += counts[speaker]
    return out


def fold_params(train_params: TrainParams, cross_fit: CrossFitParams) -> TrainParams:
    """The train recipe for a fold model: the same, with ``cross_fit.max_steps`` if set
    (evaluation, saving and warm-up capped at it, as a shorter run needs)."""
    if cross_fit.max_steps is None:
        return train_params
    steps = cross_fit.max_steps
    return dataclasses.replace(
        train_params,
        max_steps=steps,
        eval_steps=min(train_params.eval_steps, steps),
        save_steps=min(train_params.save_steps, steps),
        logging_steps=min(train_params.logging_steps, steps),
        warmup_steps=min(train_params.warmup_steps, steps - 1),
    )


def held_out_paths(
    paths: Sequence[str], speakers: Sequence[str], fold_of: dict[str, int], fold: int
):
    """The original train rows (not augmented copies) of fold ``fold``'s speakers: what the
    fold model leaves out (:func:`kept_rows` drops their copies with them)."""
    return frozenset(
        str(p)
        for p, s in zip(paths, speakers, strict=True)
        if fold_of.get(str(s)) == fold and origin(str(p)) == Path(str(p)).stem
    )


def fit_fold_models(
    base_model: Path,
    features: Path,
    checkpoints: Path,
    workdir: Path,
    train_params: TrainParams,
    cross_fit: CrossFitParams,
    language: str,
    task: str,
    context: EncoderContext = PADDED,
    fit: Fit | None = None,
    log: Callable[[str], None] = print,
) -> tuple[dict[str, int], list[FoldModel]]:
    """Train the k fold models under ``workdir``; return speaker -> fold and the models.

    ``checkpoints``: the train stage's folder, whose stored encoder outputs are read (never
    written) when their fingerprint fits; each fold's own trainer state goes to ``workdir``.
    ``fit``: None for the train stage's :func:`train`.
    """
    fit = fit or train
    table = load_split(features, "train")
    paths = [str(p) for p in table["path"]]
    speakers = [str(s) for s in table["client_id"]]
    originals = [s for p, s in zip(paths, speakers, strict=True) if origin(p) == Path(p).stem]
    fold_of = assign_folds(originals, cross_fit.folds)
    params = fold_params(train_params, cross_fit)
    models: list[FoldModel] = []
    for fold in range(cross_fit.folds):
        held = held_out_paths(paths, speakers, fold_of, fold)
        name = f"fold-{fold}-of-{cross_fit.folds}"
        folder = workdir / name
        fold_paths = TrainPaths(
            base_model,
            features,
            output=folder / "model",
            checkpoints=folder / "checkpoints",
            live=folder / "live",
            exclude=held,
            shared_encoder_cache=checkpoints / "encoder_cache",
        )
        trained_on = frozenset(paths[i] for i in kept_rows(table, held))
        left = {s for s, f in fold_of.items() if f == fold}
        log(
            f"rank: cross-fit {name}: training on {len(trained_on)} of {len(paths)} train rows, "
            f"{len(left)} speakers held out, {params.max_steps} steps"
        )
        fit(params, language, task, fold_paths, context=context)
        models.append(FoldModel(fold, name, folder / "model", frozenset(left), trained_on))
    return fold_of, models


def scoring_folds(
    splits: dict[str, Sequence[str]], train_folds: dict[str, int], folds: int
) -> dict[str, list[int]]:
    """Per split, the fold model that scores each clip (``splits``: the clips' speakers).

    A train clip: its speaker's fold (the model that left that speaker out). A dev clip:
    its speaker's fold among the dev speakers (no model trained on dev clips, so any fold
    model is out of sample; balanced folds keep train and dev scored alike).
    """
    out: dict[str, list[int]] = {}
    for split, speakers in splits.items():
        if split == "train":
            fold_of = train_folds
        else:  # as many folds as the split has speakers, at most k
            fold_of = assign_folds(speakers, min(folds, len(set(speakers)))) if speakers else {}
        missing = sorted({s for s in speakers if s not in fold_of})
        if missing:
            raise ValueError(f"{split}: speaker {missing[0]!r} is in no fold")
        out[split] = [fold_of[s] for s in speakers]
    return out
