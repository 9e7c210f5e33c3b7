"""What the encoder context costs per clip: the encoder cache and greedy decoding, in CPU seconds.

``python benchmarks/context_speed.py [--clips 48] [--out benchmarks/results/context_speed.json]``
reads ``models/base`` and the first clips of ``data/features/train`` (run ``dvc repro
featurize``) and, for each context (padded; clip at 10, 5 and 2 s), times the train stage's
encoder cache (``model.encoder_cache.build``) and a greedy transcript of each clip
(``evaluation.transcription.transcribe_table``, the decoder passes ``rank`` and the transcribe
stages make). CPU seconds of this process, not wall time: a shared machine's load moves wall
time, while the work a pass needs stays put.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.lib.checkout import commit_id
from swedish_transcriber.data.features import load_split
from swedish_transcriber.evaluation.transcription import load_model, transcribe_table
from swedish_transcriber.model.encoder_cache import build
from swedish_transcriber.whisper import DecodeOptions, EncoderContext

CONTEXTS = {
    "padded": EncoderContext.padded(),
    "clip 10 s": EncoderContext("clip", 10.0),
    "clip 5 s": EncoderContext("clip", 5.0),
    "clip 2 s": EncoderContext("clip", 2.0),
}


def cpu_seconds(work, *args) -> float:
    started = time.process_time()
    work(*args)
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=48)
    parser.add_argument("--model", type=Path, default=Path("models/base"))
    parser.add_argument("--features", type=Path, default=Path("data/features"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/context_speed.json"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    model, processor = load_model(args.model, "sv", "transcribe")
    table = load_split(args.features, "train").select(range(args.clips))
    seconds = sum(table["duration"])
    options = DecodeOptions.plain(batch_size=8, num_beams=1, max_new_tokens=64)
    rows = {}
    for name, context in CONTEXTS.items():
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "c"
            cache = cpu_seconds(build, model, table, folder, name, 8, model.device, None, context)
        decode = cpu_seconds(
            transcribe_table, model, processor, table, options, "sv", "transcribe", context
        )
        rows[name] = {"encoder_cache_cpu_s_per_clip": cache / len(table),
                      "greedy_cpu_s_per_clip": decode / len(table)}  # fmt: skip
        print(name, rows[name], flush=True)
    base = rows["padded"]
    for row in rows.values():
        row["encoder_cache_speedup"] = (
            base["encoder_cache_cpu_s_per_clip"] / row["encoder_cache_cpu_s_per_clip"]
        )
        row["greedy_speedup"] = base["greedy_cpu_s_per_clip"] / row["greedy_cpu_s_per_clip"]
    report = {
        "command": f"python benchmarks/context_speed.py --clips {args.clips}",
        "commit": commit_id(short=True, dirty=False),
        "date": time.strftime("%Y-%m-%d"),
        "machine": "2 CPU cores (torch threads 2), CPU seconds of the process",
        "clips": len(table),
        "mean_clip_seconds": seconds / len(table),
        "rows": rows,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
