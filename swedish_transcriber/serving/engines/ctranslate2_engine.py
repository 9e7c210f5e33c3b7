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

from swedish_transcriber.decoding import Attempt, transcripts
from swedish_transcriber.model.source import ModelLanguage
from swedish_transcriber.serving.engines.contract import CTRANSLATE2, EngineSettings, by_context
from swedish_transcriber.serving.log_mel import LogMel
from swedish_transcriber.whisper import SAMPLE_RATE, DecodeOptions, EncoderContext, model_context

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
    """A CTranslate2 Whisper (``models/ct2``): the same decoding, int8 matrix products.

    CTranslate2's Whisper encoder takes any even number of frames up to 3000 and adds only
    that many positional embeddings (as openai/whisper's ``audio_ctx``), so a ``clip``
    context needs nothing but shorter features.
    """

    kind = CTRANSLATE2

    def __init__(
        self,
        model_dir: str | Path,
        language: ModelLanguage,
        options: DecodeOptions,
        settings: EngineSettings,
        context: EncoderContext | None = None,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.options = options
        self.context = model_context(self.model_dir) if context is None else context
        self.features = LogMel.from_model_dir(self.model_dir)
        self.tokens = WhisperTokens(self.model_dir)
        self.prompt: list[int] = self.tokens.prompt(language.language, language.task)
        self.settings = settings
        self.model = self._load()
        if self.model.n_mels != self.features.settings.n_mels:
            raise ValueError(
                f"{self.model_dir}: the model takes {self.model.n_mels} mel bins but "
                f"preprocessor_config.json makes {self.features.settings.n_mels}"
            )

    def _load(self):
        import ctranslate2

        return ctranslate2.models.Whisper(
            str(self.model_dir),
            device="cpu",
            compute_type=self.settings.ct2_compute_type,
            intra_threads=self.settings.threads,
        )

    def generate_ids(self, clips: Sequence[np.ndarray]) -> list[list[int]]:
        """The new token ids of one plain pass (the prompt not included): no guards.

        Temperature ``temperatures[0]``'s search capped by ``max_new_tokens`` alone, for
        comparisons with other decoders; ``transcribe`` is the guarded path.
        """
        import ctranslate2

        def run(group: list[np.ndarray], frames: int) -> list[list[int]]:
            results = self.model.generate(
                ctranslate2.StorageView.from_array(self.features(group, frames)),
                [self.prompt] * len(group),
                beam_size=self.options.num_beams,
                # CTranslate2's Whisper stops after max_length // 2 new tokens (measured; as
                # openai/whisper's sample_len = n_text_ctx // 2); transformers counts new tokens.
                max_length=2 * self.options.max_new_tokens,
            )
            return [list(r.sequences_ids[0]) for r in results]

        return by_context(clips, self.context, run) if clips else []

    def transcribe(self, clips: Sequence[np.ndarray]) -> list[str]:
        """Transcripts of 16 kHz clips (each <= 30 s), through the guarded path.

        Each clip's features are as many frames as the engine's context gives it; clips of
        one context length share an encoder call.
        """

        def run(group: list[np.ndarray], frames: int) -> list[str]:
            durations = [clip.shape[0] / SAMPLE_RATE for clip in group]
            return self.transcribe_features(self.features(group, frames), durations)

        return by_context(clips, self.context, run) if clips else []

    def transcribe_features(self, features: np.ndarray, durations: Sequence[float]) -> list[str]:
        """Transcripts of log-mel windows (float32 ``batch x n_mels x frames``, the pipeline's).

        ``frames``: 3000, or a shorter context's (even) count: the encoder takes either.

        ``durations`` are the clips' lengths in seconds (their token caps). openai/whisper's
        guards (``swedish_transcriber.decoding``) decide which windows are decoded again at
        the next temperature and which are silent; the encoder runs once per batch.
        """
        import ctranslate2

        features = np.ascontiguousarray(features, dtype=np.float32)
        if features.ndim != 3 or features.shape[1] != self.model.n_mels:
            raise ValueError(
                f"{self.model_dir}: features must be batch x {self.model.n_mels} mels x frames, "
                f"got shape {features.shape}"
            )
        if len(durations) != features.shape[0]:
            raise ValueError(f"{len(durations)} durations for {features.shape[0]} clips")
        if features.shape[0] == 0:
            return []
        encoded = np.asarray(
            self.model.encode(ctranslate2.StorageView.from_array(features), to_cpu=True)
        )

        def decode(windows, temperature, caps, seed):
            return self._attempts(encoded[list(windows)], temperature, list(caps), seed)

        return transcripts(durations, decode, self.options)

    def _generate(self, encoded: np.ndarray, temperature: float, max_new: int, seed: int):
        """One ``generate`` call on encoder outputs: search at 0, seeded sampling above."""
        import ctranslate2

        model, kwargs = self.model, {"beam_size": self.options.num_beams}
        if temperature > 0:  # whisper (and faster-whisper): the whole distribution, one beam
            kwargs = {"beam_size": 1, "sampling_topk": 0, "sampling_temperature": temperature}
            # CTranslate2 4.8 samples with one generator per worker thread, seeded at the
            # thread's first draw: set_random_seed does not reach a thread that has drawn.
            # A fresh replica (a new worker thread; measured 0.2-0.5 s to load) samples from
            # this seed, so a fallback decode is the same every time.
            ctranslate2.set_random_seed(seed)
            model = self._load()
        return model.generate(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(encoded)),
            [self.prompt] * encoded.shape[0],
            max_length=2 * max_new,  # CTranslate2 stops after max_length // 2 new tokens
            return_scores=True,
            return_no_speech_prob=True,
            **kwargs,
        )

    def _attempts(
        self, encoded: np.ndarray, temperature: float, caps: list[int], seed: int
    ) -> list[Attempt]:
        """One attempt per window, each generated to its own token cap.

        The batch is generated to its longest cap; a window that reached a shorter cap of its
        own is generated again with that cap (rare: only a window that runs on), so that its
        score is its capped tokens' (CTranslate2 scores a whole hypothesis).
        """
        results = list(self._generate(encoded, temperature, max(caps), seed))
        over = [
            i
            for i, (r, cap) in enumerate(zip(results, caps, strict=True))
            if cap < max(caps) and len(r.sequences_ids[0]) >= cap
        ]
        for cap in sorted({caps[i] for i in over}):
            rows = [i for i in over if caps[i] == cap]
            again = self._generate(encoded[rows], temperature, cap, seed)
            for i, result in zip(rows, again, strict=True):
                results[i] = result
        attempts = []
        for result in results:
            tokens = list(result.sequences_ids[0])
            # scores[0] is the summed log-probability over len(tokens) ** length_penalty
            # (1.0), as faster-whisper reads it.
            attempts.append(
                Attempt(
                    tokens=tuple(tokens),
                    text=self.tokens.decode(tokens),
                    sum_logprob=float(result.scores[0]) * max(len(tokens), 1),
                    no_speech_prob=float(result.no_speech_prob),
                    temperature=temperature,
                )
            )
        return attempts
