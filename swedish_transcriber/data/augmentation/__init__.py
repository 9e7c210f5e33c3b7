"""Offline augmentation of the train split with audiomentations (stage ``augment``).

``transforms`` turns params ``augment`` into an ``audiomentations.Compose``; ``pool`` seeds,
runs and records it per clip copy over a process pool and writes the augmented manifest.
"""

from swedish_transcriber.data.augmentation.pool import (
    SPLIT,
    AugmentResult,
    augment_copy,
    augment_manifest,
    augment_train,
    copy_name,
    passthrough,
)
from swedish_transcriber.data.augmentation.transforms import (
    PEAK_LIMIT,
    AugmentParams,
    AugmentSettings,
    build_compose,
    read_augment_params,
)

__all__ = [
    "PEAK_LIMIT",
    "SPLIT",
    "AugmentParams",
    "AugmentResult",
    "AugmentSettings",
    "augment_copy",
    "augment_manifest",
    "augment_train",
    "build_compose",
    "copy_name",
    "passthrough",
    "read_augment_params",
]
