"""Time ingest + validate + featurize on N demo clips against the log-mel computation alone.

Usage (repo root, .venv active; needs models/base/ from `dvc repro base_model`):

    python benchmarks/data_pipeline.py --clips 200 --num-proc 2

Prints clips per second for each stage and for the log-mel computation alone on the same
clips (audio decoded beforehand, processor's batched path, one process and ``--num-proc``
processes), to compare ingest + featurize with the log-mel-alone time on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.lib.checkout import REPO
from swedish_transcriber.audio import load_audio
from swedish_transcriber.data.demo_corpus import CorpusParams, build_corpus
from swedish_transcriber.data.features import FeatureSettings, featurize_split, load_processor
from swedish_transcriber.data.ingest import MeasureSettings, ingest_release
from swedish_transcriber.params import section
from swedish_transcriber.whisper import SAMPLE_RATE


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def logmel_alone(audio: list[np.ndarray], processor, batch_size: int, num_proc: int) -> float:
    """Seconds for the feature extractor alone on already decoded 16 kHz audio."""
    import torch

    def work(chunk: list[np.ndarray]) -> None:
        for i in range(0, len(chunk), batch_size):
            processor.feature_extractor(
                chunk[i : i + batch_size], sampling_rate=SAMPLE_RATE, return_tensors="np"
            )

    if num_proc <= 1:
        torch.set_num_threads(1)
        _, seconds = timed(work, audio)
        return seconds
    from concurrent.futures import ThreadPoolExecutor

    # torch's STFT releases the GIL, so threads measure the parallel path fairly.
    torch.set_num_threads(1)
    chunks = [audio[i::num_proc] for i in range(num_proc)]
    start = time.perf_counter()
    with ThreadPoolExecutor(num_proc) as pool:
        list(pool.map(work, chunks))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=200, help="train clips to synthesise")
    parser.add_argument("--num-proc", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--model-dir", default=str(REPO / "models/base"))
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    params_file = REPO / "params.yaml"
    corpus = section("corpus", CorpusParams, params_file)
    # Enough sentences for --clips train clips (2 speakers read each train sentence).
    corpus = replace(
        corpus,
        sentences_file=str(REPO / corpus.sentences_file),
        max_sentences=max(10, int(args.clips / 0.8 / 2) + 1),
    )
    processor = load_processor(args.model_dir, "sv", "transcribe")
    with tempfile.TemporaryDirectory() as tmp:
        release = Path(tmp) / "demo"
        build_corpus(corpus, release)
        measure = section("ingest.measure", MeasureSettings, params_file)
        ingested, t_ingest = timed(ingest_release, release, 0, 0, measure, args.num_proc)
        manifest = ingested.splits["train"]
        n = len(manifest)

        from swedish_transcriber.data.validation import ValidationSettings, validate_manifests

        _, t_validate = timed(
            validate_manifests,
            ingested.splits,
            section("validate", ValidationSettings, params_file),
            Path(tmp) / "docs",
        )

        settings = replace(
            section("features", FeatureSettings, params_file),
            num_proc=args.num_proc,
            batch_size=args.batch_size,
        )
        import datasets

        datasets.disable_caching()
        datasets.disable_progress_bars()
        _, t_featurize = timed(featurize_split, manifest, processor, settings)

        audio, t_decode = timed(lambda: [load_audio(f) for f in manifest["audio_file"]])
        t_mel_1 = logmel_alone(audio, processor, args.batch_size, 1)
        t_mel_n = logmel_alone(audio, processor, args.batch_size, args.num_proc)

    figures = {
        "clips": n,
        "num_proc": args.num_proc,
        "ingest_clips_per_s": n / t_ingest,
        "validate_clips_per_s": n / t_validate,
        "featurize_clips_per_s": n / t_featurize,
        "decode_resample_ms_per_clip": 1000 * t_decode / n,
        "logmel_alone_ms_per_clip_1proc": 1000 * t_mel_1 / n,
        "logmel_alone_ms_per_clip_nproc": 1000 * t_mel_n / n,
        "ingest_plus_featurize_ms_per_clip": 1000 * (t_ingest + t_featurize) / n,
        "ratio_to_logmel_1proc": (t_ingest + t_featurize) / t_mel_1,
    }
    for key, value in figures.items():
        print(f"{key:36s} {value:10.2f}" if isinstance(value, float) else f"{key:36s} {value:10d}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
