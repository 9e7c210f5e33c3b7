"""Every section of the repo's params.yaml and the dataclass its stage (or the page) reads."""

from __future__ import annotations

from swedish_transcriber.data.augmentation import AugmentParams
from swedish_transcriber.data.demo_corpus import CorpusParams
from swedish_transcriber.data.features import FeatureSettings
from swedish_transcriber.data.ingest import IngestParams
from swedish_transcriber.data.mdc import MdcParams
from swedish_transcriber.data.source import DataParams
from swedish_transcriber.data.validation import ValidationSettings
from swedish_transcriber.evaluation.transcription import EvaluateParams
from swedish_transcriber.model.export import ExportParams
from swedish_transcriber.model.merge import MergeParams
from swedish_transcriber.model.source import ModelParams
from swedish_transcriber.model.training.params import TrainParams
from swedish_transcriber.review.params import ReviewParams
from swedish_transcriber.serving.page import AppParams
from swedish_transcriber.whisper import DecodeOptions, EncoderContext

SECTIONS = {
    "model": ModelParams,
    "data": DataParams,
    "mdc": MdcParams,
    "corpus": CorpusParams,
    "ingest": IngestParams,
    "validate": ValidationSettings,
    "augment": AugmentParams,
    "features": FeatureSettings,
    "train": TrainParams,
    "merge": MergeParams,
    "evaluate": EvaluateParams,
    "review": ReviewParams,
    "export": ExportParams,
    "app": AppParams,
    "whisper": EncoderContext,
}

# Sections no stage reads alone: what the uses of a dataclass share (its SHARED_SECTION), read
# under each use's own keys (evaluate.decode, train.generation, app.decode).
SHARED = {"decode": DecodeOptions}
