"""Params section ``data``: which corpus the pipeline reads (shared by corpus and ingest)."""

from __future__ import annotations

from dataclasses import dataclass

DATA_SOURCES = ("demo", "commonvoice", "mdc")

# The split TSVs of a release a role may be read from. A release's invalidated.tsv and
# other.tsv are never trained or tested on (rejected or not yet reviewed clips), and its
# validated.tsv holds the clips of train, dev and test again, so none of them is a split here.
RELEASE_SPLITS: tuple[str, ...] = ("train", "dev", "test")


def split_roles(train_splits: list[str] | tuple[str, ...], eval_split: str) -> dict[str, list[str]]:
    """Role (train, dev, test) -> the release splits whose rows fill it, in order.

    The downstream stages know three roles: ``train`` is trained on, ``test`` is scored,
    ``dev`` is the in-training evaluation. ``train`` is the rows of ``train_splits``, ``test``
    the rows of ``eval_split``, ``dev`` the release's dev split unless that is trained on or is
    the eval split: then ``dev`` is the eval split (as the reference recipe, which trained on
    train+dev, evaluated on test during training). Errors name the key and what is allowed.
    """
    known = ", ".join(RELEASE_SPLITS)
    if not train_splits:
        raise ValueError(f"train_splits: must name at least one split ({known})")
    unknown = [s for s in train_splits if s not in RELEASE_SPLITS]
    if unknown:
        raise ValueError(
            f"train_splits: unknown split(s) {', '.join(map(repr, unknown))}; a role "
            f"is read from the release's {known} TSVs (invalidated.tsv and other.tsv are never "
            f"trained on, validated.tsv repeats the others)"
        )
    repeated = sorted({s for s in train_splits if list(train_splits).count(s) > 1})
    if repeated:
        raise ValueError(f"train_splits: {', '.join(repeated)} given more than once")
    if eval_split not in RELEASE_SPLITS:
        raise ValueError(f"eval_split: unknown split {eval_split!r}; one of {known}")
    if eval_split in train_splits:
        raise ValueError(
            f"eval_split: {eval_split!r} is also in train_splits "
            f"[{', '.join(train_splits)}]; the test WER would be measured on trained clips"
        )
    dev = "dev" if "dev" not in train_splits and eval_split != "dev" else eval_split
    roles = {"train": list(train_splits), "dev": [dev], "test": [eval_split]}
    return roles


@dataclass(frozen=True)
class DataParams:
    """Where the raw release is, how much of it to use, and which splits train and test.

    ``source: demo`` makes the corpus stage synthesise ``raw_dir``; ``source: commonvoice``
    reads ``raw_dir`` as an extracted Common Voice release. Switching is a params change.
    """

    source: str  # demo | commonvoice
    raw_dir: str  # the release directory ingest reads
    max_clips: int  # clips per role (train, dev, test); 0 keeps all (a subset by seed)
    seed: int
    train_splits: list[str]  # release splits trained on, e.g. [train] or [train, dev]
    eval_split: str  # the release split scored (the test role), e.g. test

    def __post_init__(self) -> None:
        if self.source not in DATA_SOURCES:
            raise ValueError(
                f"source must be one of {', '.join(DATA_SOURCES)}, got {self.source!r}"
            )
        if self.max_clips < 0:
            raise ValueError(f"max_clips must be >= 0, got {self.max_clips}")
        split_roles(self.train_splits, self.eval_split)

    @property
    def roles(self) -> dict[str, list[str]]:
        """Role -> release splits (see :func:`split_roles`)."""
        return split_roles(self.train_splits, self.eval_split)
