"""Params section ``review``: how the review queue is ranked (``review.rank``), how much of
its top the retrain stage leaves out unreviewed (``auto_exclude_top_fraction``), and the
review page's settings (``review.page``).

The rank stage ranks only when the queue is needed (:attr:`ReviewParams.queue_needed`), so
it lists both ``review.rank`` and ``review.auto_exclude_top_fraction``; the retrain stage lists
only the fraction, and no stage lists ``review.page``. Torch- and pandas-free: the demo page
reads ``review.page`` through this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from swedish_transcriber.whisper import DecodeOptions

# Each component and which of its values are suspicious: "high" (a large loss or WER),
# "low" (a quiet recording), "both" (reading speed: a truncated clip speaks impossibly fast,
# a clip filed under a too-short sentence impossibly slowly).
IN_SAMPLE_DIRECTIONS: dict[str, str] = {
    "ft_loss": "high",
    "ft_loss_max": "high",
    "ft_wer": "high",
    "ft_cer": "high",
    "zs_wer": "high",
    "duration": "both",
    "chars_per_second": "both",
    "silence_ratio": "high",
    "clipping_ratio": "high",
    "peak": "low",
    "rms": "low",
}
# Out of sample (review.rank.cross_fit): each train clip scored by a fold model that did not
# train on it (dev clips by one too), so the scores hold no memorised label. The fold
# model's mean and worst label-token loss, its transcript's WER/CER, and the word-level
# evidence (swedish_transcriber.review.word_evidence): the suspect word's negative log-prob
# when the transcript does not align to it, else 0.
OUT_OF_SAMPLE_DIRECTIONS: dict[str, str] = {
    "oos_loss": "high",
    "oos_loss_max": "high",
    "oos_wer": "high",
    "oos_cer": "high",
    "oos_word": "high",
}
DIRECTIONS: dict[str, str] = {**IN_SAMPLE_DIRECTIONS, **OUT_OF_SAMPLE_DIRECTIONS}
IN_SAMPLE: tuple[str, ...] = tuple(IN_SAMPLE_DIRECTIONS)
OUT_OF_SAMPLE: tuple[str, ...] = tuple(OUT_OF_SAMPLE_DIRECTIONS)
COMPONENTS: tuple[str, ...] = tuple(DIRECTIONS)
# The review queue's text columns, in order; then the cross-fit columns (when it ran), then
# the components (raw), then score_<component>. Here, not in .queue, so the review page reads
# the layout without importing torch.
TEXT_COLUMNS: tuple[str, ...] = (
    "rank",
    "path",
    "split",
    "audio_file",
    "sentence",
    "transcript",
    "zero_shot_transcript",
    "suspicion",
)
# With cross-fitting: which fold a clip is in and which model scored it out of sample (a
# fold model never scores a clip it trained on), its transcript, and the suspect word
# (its index in ``sentence.split()``, -1 for none: the review page highlights it).
CROSS_FIT_COLUMNS: tuple[str, ...] = (
    "fold",
    "scored_by",
    "oos_transcript",
    "suspect_word",
    "suspect_word_index",
    "suspect_word_logprob",
    "suspect_word_aligned",
)


@dataclass(frozen=True)
class CrossFitParams:
    """Params ``review.rank.cross_fit``: out-of-sample scores by k-fold cross-fitting.

    The train clips' speakers (``client_id``) are split into ``folds`` groups; fold model
    ``i`` trains with the train stage's recipe (params ``train``, on its stored encoder
    outputs) on every fold but ``i`` and scores fold ``i``'s clips. 0: off (no ``oos_*``
    components; the queue is the in-sample one).
    """

    folds: int
    # A fold model's optimizer steps; null: train.max_steps (the recipe as it is). Fewer
    # steps make cross-fitting cheaper, and say so here rather than silently.
    max_steps: int | None

    def __post_init__(self) -> None:
        if self.folds != 0 and self.folds < 2:
            raise ValueError(f"cross_fit.folds must be 0 (off) or >= 2, got {self.folds}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"cross_fit.max_steps must be >= 1 or null, got {self.max_steps}")

    @property
    def enabled(self) -> bool:
        return self.folds >= 2


@dataclass(frozen=True)
class RankParams:
    """Params section ``review.rank``."""

    # Rank even while auto-exclusion is off (the review page needs the queue); see
    # ReviewParams.queue_needed.
    enabled: bool
    # Component -> weight (>= 0) in the suspicion score; every component named here gets a
    # score_<component> column in the queue, also with weight 0 (shown, not counted).
    weights: dict[str, float]
    batch_size: int  # clips per model call
    max_new_tokens: int  # new tokens per greedy transcript at most
    # A clip of d seconds gets at most ceil(d * max_tokens_per_second) + max_tokens_slack new
    # tokens (swedish_transcriber.decoding.token_cap); null: max_new_tokens only.
    max_tokens_per_second: float | None
    max_tokens_slack: int
    cross_fit: CrossFitParams  # out-of-sample scores (the oos_* components)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.weights) - set(COMPONENTS))
        if unknown:
            raise ValueError(
                f"weights: unknown component(s) {', '.join(unknown)}; "
                f"known: {', '.join(COMPONENTS)}"
            )
        needs_folds = sorted(set(self.weights) & set(OUT_OF_SAMPLE))
        if needs_folds and not self.cross_fit.enabled:
            raise ValueError(
                f"weights: {', '.join(needs_folds)} need cross-fitting (cross_fit.folds >= 2), "
                f"but cross_fit.folds is {self.cross_fit.folds}"
            )
        bad = {k: w for k, w in self.weights.items() if not math.isfinite(w) or w < 0}
        if bad:
            raise ValueError(f"weights must be finite and >= 0, got {bad}")
        if sum(self.weights.values()) <= 0:
            raise ValueError("weights: at least one component needs a weight > 0")
        self.decode_options()  # batch_size, caps: DecodeOptions' own bounds

    def decode_options(self) -> DecodeOptions:
        """Greedy, no fallback or thresholds (the model's best guess), capped by duration."""
        return DecodeOptions(
            batch_size=self.batch_size,
            num_beams=1,
            max_new_tokens=self.max_new_tokens,
            temperatures=(0.0,),
            compression_ratio_threshold=None,
            logprob_threshold=None,
            no_speech_threshold=None,
            max_tokens_per_second=self.max_tokens_per_second,
            max_tokens_slack=self.max_tokens_slack,
            seed=0,
        )


# The decisions file's own cap on a sentence or reason (.decisions.MAX_TEXT_CHARS, kept
# equal by tests/review/test_review_page.py: importing it would load pandas on the page).
DECISION_TEXT_LIMIT = 2_000


@dataclass(frozen=True)
class ReviewPageParams:
    """Params ``review.page``: whether the review page is on, its queue and decisions file, and
    how long a visitor's text may be.

    Both paths relative to the repo root (the params file's directory) unless absolute. The
    review token is not a param: params are committed, the token is a secret
    (:mod:`swedish_transcriber.serving.access`).
    """

    enabled: bool  # off by default: the page plays training clips and writes a file
    queue: str  # the rank stage's review queue (parquet)
    decisions: str  # the reviewer's decisions (TSV, git-tracked)
    max_reason_chars: int  # a longer reason is refused on the page
    max_fix_chars: int  # a longer corrected sentence is refused on the page

    def __post_init__(self) -> None:
        for name in ("queue", "decisions"):
            if not getattr(self, name).strip():
                raise ValueError(f"{name} must be a file path, got an empty string")
        for name in ("max_reason_chars", "max_fix_chars"):
            value = getattr(self, name)
            if not 1 <= value <= DECISION_TEXT_LIMIT:
                raise ValueError(
                    f"{name} must be between 1 and {DECISION_TEXT_LIMIT} (what the "
                    f"decisions file holds), got {value}"
                )


@dataclass(frozen=True)
class ReviewParams:
    """Params section ``review``."""

    rank: RankParams
    # The share of the train clips, from the top of the review queue, that the retrain stage
    # leaves out without review (human decisions win). 0: the train stage's model as it is.
    auto_exclude_top_fraction: float
    page: ReviewPageParams  # the review page (app/pages/review.py)

    def __post_init__(self) -> None:
        if not 0 <= self.auto_exclude_top_fraction < 1:
            raise ValueError(
                f"auto_exclude_top_fraction must be in [0, 1), got {self.auto_exclude_top_fraction}"
            )

    @property
    def queue_needed(self) -> bool:
        """Whether stage rank scores the clips: for the review page (``rank.enabled``) or for
        the retrain stage's automatic mode. Otherwise it writes an empty queue and loads no
        model, so a default ``dvc repro`` does not pay for the ranking."""
        return self.rank.enabled or self.auto_exclude_top_fraction > 0
