"""The CTranslate2 engine (``models/ct2``) without torch or transformers.

A CTranslate2 Whisper needs three things besides its ``model.bin``: log-mel features, the
prompt's token ids and a way to turn generated ids back into text. transformers' Whisper
processor does all three, but importing it loads torch and transformers: measured on the
page's 60 s benchmark, about 1 GB peak RSS against faster-whisper's 490 MB on the same
export. So the features come from :mod:`log_mel` (numpy) and the tokens from the
``tokenizers`` library reading the ``tokenizer.json`` the export copied beside the model
(the same Rust tokenizer transformers' fast Whisper tokenizer wraps). Decoding matches
``WhisperTokenizerFast.decode(ids, skip_special_tokens=True)``: special tokens dropped, a
``<|startofprev|>`` prompt stripped, timestamp tokens removed, and the tokenizer config's
``clean_up_tokenization_spaces`` honoured.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from swedish_transcriber.model.source import ModelLanguage
from swedish_transcriber.serving.engines import CTRANSLATE2, EngineSettings
from swedish_transcriber.serving.log_mel import LogMel
from swedish_transcriber.whisper import DecodeOptions

TIMESTAMP = re.compile(r"<\|\d+\.\d+\|>")  # what transformers strips from decoded text
# transformers' clean_up_tokenization: English spacing artefacts, applied only when the
# tokenizer config asks for it (Whisper's says no).
CLEAN_UP = (
    (" .", "."),
    (" ?", "?"),
    (" !", "!"),
    (" ,", ","),
    (" ' ", "'"),
    (" n't", "n't"),
    (" 'm", "'m"),
    (" 's", "'s"),
    (" 've", "'ve"),
    (" 're", "'re"),
)


class WhisperTokens:
    """Whisper's tokenizer from ``tokenizer.json``: the decoder prompt and ids to text."""

    def __init__(self, model_dir: str | Path) -> None:
        from tokenizers import Tokenizer

        model_dir = Path(model_dir)
        path = model_dir / "tokenizer.json"
        if not path.is_file():
            raise FileNotFoundError(
                f"{model_dir}: no tokenizer.json beside the model (the export copies the "
                f"processor's files; re-run `dvc repro export`)"
            )
        self.model_dir = model_dir
        self.tokenizer = Tokenizer.from_file(str(path))
        config = model_dir / "tokenizer_config.json"
        settings = json.loads(config.read_text(encoding="utf-8")) if config.is_file() else {}
        self.clean_up_spaces = bool(settings.get("clean_up_tokenization_spaces", False))
        self.start_of_prev = self.tokenizer.token_to_id("<|startofprev|>")
        self.start_of_transcript = self.id("<|startoftranscript|>")

    def id(self, token: str) -> int:
        """The id of a special token; an error naming the directory if it has none."""
        found = self.tokenizer.token_to_id(token)
        if found is None:
            raise ValueError(f"{self.model_dir}: the tokenizer has no token {token}")
        return found

    def prompt(self, language: str, task: str) -> list[int]:
        """``<|startoftranscript|><|language|><|task|><|notimestamps|>``, as the model was tuned."""
        try:
            return [
                self.start_of_transcript,
                self.id(f"<|{language}|>"),
                self.id(f"<|{task}|>"),
                self.id("<|notimestamps|>"),
            ]
        except ValueError as exc:
            raise ValueError(
                f"{self.model_dir}: the tokenizer has no token for language {language!r} or "
                f"task {task!r}"
            ) from exc

    def decode(self, ids: Sequence[int]) -> str:
        """The text of generated ids, as transformers decodes with ``skip_special_tokens``."""
        ids = list(ids)
        if ids and ids[0] == self.start_of_prev:  # a previous-text prompt is not transcript
            ids = (
                ids[ids.index(self.start_of_transcript) :]
                if self.start_of_transcript in ids
                else []
            )
        text = TIMESTAMP.sub("", self.tokenizer.decode(ids, skip_special_tokens=True))
        if self.clean_up_spaces:
            for old, new in CLEAN_UP:
                text = text.replace(old, new)
        return text


class CTranslate2Engine:
    """A CTranslate2 Whisper (``models/ct2``): the same decoding, int8 matrix products."""

    kind = CTRANSLATE2

    def __init__(
        self,
        model_dir: str | Path,
        language: ModelLanguage,
        options: DecodeOptions,
        settings: EngineSettings,
    ) -> None:
        import ctranslate2

        self.model_dir = Path(model_dir)
        self.options = options
        self.features = LogMel.from_model_dir(self.model_dir)
        self.tokens = WhisperTokens(self.model_dir)
        self.prompt: list[int] = self.tokens.prompt(language.language, language.task)
        self.model = ctranslate2.models.Whisper(
            str(self.model_dir),
            device="cpu",
            compute_type=settings.ct2_compute_type,
            intra_threads=settings.threads,
        )
        if self.model.n_mels != self.features.settings.n_mels:
            raise ValueError(
                f"{self.model_dir}: the model takes {self.model.n_mels} mel bins but "
                f"preprocessor_config.json makes {self.features.settings.n_mels}"
            )

    def generate_ids(self, clips: Sequence[np.ndarray]) -> list[list[int]]:
        """The new token ids of each clip's transcript (the prompt not included)."""
        import ctranslate2

        if not clips:
            return []
        features = ctranslate2.StorageView.from_array(self.features(clips))
        results = self.model.generate(
            features,
            [self.prompt] * len(clips),
            beam_size=self.options.num_beams,
            # CTranslate2's Whisper stops after max_length // 2 new tokens (measured; as
            # openai/whisper's sample_len = n_text_ctx // 2); transformers counts new tokens.
            max_length=2 * self.options.max_new_tokens,
        )
        return [list(r.sequences_ids[0]) for r in results]

    def transcribe(self, clips: Sequence[np.ndarray]) -> list[str]:
        return [self.tokens.decode(ids).strip() for ids in self.generate_ids(clips)]

    def transcribe_features(self, features: np.ndarray, durations: Sequence[float]) -> list[str]:
        """Transcripts of stored log-mel windows (float32, ``batch x n_mels x 3000``).

        The transcribe stage scores this model on the same featurized test tables as the
        transformers checkpoints, so the features are not recomputed from audio (and no
        difference in log-mel code can move the int8 model's WER). ``durations`` (seconds of
        audio in each window) are for decoding guards; this version only checks them.
        """
        import ctranslate2

        features = np.ascontiguousarray(features, dtype=np.float32)
        if features.ndim != 3 or features.shape[1] != self.model.n_mels:
            raise ValueError(
                f"{self.model_dir}: features of shape {features.shape}; the model takes "
                f"batch x {self.model.n_mels} mel bins x frames"
            )
        if len(durations) != len(features):
            raise ValueError(f"{len(durations)} durations for {len(features)} feature windows")
        if not len(features):
            return []
        results = self.model.generate(
            ctranslate2.StorageView.from_array(features),
            [self.prompt] * len(features),
            beam_size=self.options.num_beams,
            max_length=2 * self.options.max_new_tokens,  # new tokens, as in generate_ids
        )
        return [self.tokens.decode(r.sequences_ids[0]).strip() for r in results]
