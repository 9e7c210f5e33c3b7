"""Batches of clips that share one encoder context (``whisper.context: clip``).

With the clip's own context, a batch is as long as its longest clip; clips of different
rounded contexts in one batch would either pad the short ones (their encoder outputs would
then depend on their batch mates) or not stack at all (stored encoder outputs of different
lengths). So each batch holds clips of one context length. The training order is shuffled
per epoch from the seed and the epoch alone (``set_epoch``, which the Trainer and accelerate
call), so a resumed run sees the batches an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class _Epoch:
    """The epoch, where accelerate's DDP wrapper looks for it (``batch_sampler.sampler``)."""

    def __init__(self) -> None:
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)


class LengthBuckets(Sampler[list[int]]):
    """Row indices in batches of at most ``batch_size`` rows of one context length."""

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, shuffle: bool) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.lengths = [int(n) for n in lengths]
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.sampler = _Epoch()

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def batches(self) -> list[list[int]]:
        """This epoch's batches: buckets cut into batches, then the batches shuffled."""
        rng = np.random.default_rng([self.seed, self.sampler.epoch])
        buckets: dict[int, list[int]] = {}
        for row, n in enumerate(self.lengths):
            buckets.setdefault(n, []).append(row)
        out = []
        for _, rows in sorted(buckets.items()):
            order = rng.permutation(rows).tolist() if self.shuffle else rows
            out += [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.shuffle:
            out = [out[i] for i in rng.permutation(len(out))]
        return out

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        counts: dict[int, int] = {}
        for n in self.lengths:
            counts[n] = counts.get(n, 0) + 1
        return sum(-(-c // self.batch_size) for c in counts.values())
