"""Stage ``corpus``: synthesise the embedded demo corpus (only when ``data.source: demo``).

``python -m stages.corpus data/raw/demo data/label_noise/planted.tsv``. With another
``data.source`` the stage writes a placeholder explaining that the demo corpus is not in use,
so the DAG stays the same whichever source is chosen. The second path lists the label errors
planted in train (``corpus.label_noise``, off by default), outside the corpus: the ranking
never reads it; ``benchmarks/label_noise.py`` scores the review queue against it.
"""

from __future__ import annotations

from pathlib import Path

from swedish_transcriber import stage
from swedish_transcriber.atomic import atomic_dir
from swedish_transcriber.data.demo_corpus import CorpusParams, build_corpus
from swedish_transcriber.data.label_noise import write_planted
from swedish_transcriber.data.source import DataParams
from swedish_transcriber.params import section


def run(out_dir: Path, planted: Path) -> None:
    """Build ``out_dir`` from params ``corpus`` (and ``data.source``)."""
    data = section("data", DataParams)
    params = section("corpus", CorpusParams)
    with atomic_dir(out_dir) as tmp:
        if data.source != "demo":
            (tmp / "README.txt").write_text(
                f"Demo corpus not generated: data.source is {data.source!r}; the pipeline reads "
                f"{data.raw_dir}.\n",
                encoding="utf-8",
            )
            write_planted(planted, [])
            print(f"corpus: data.source={data.source}, demo corpus skipped")
            return
        counts = build_corpus(params, tmp, planted_file=planted)
    print("corpus: " + ", ".join(f"{s} {n} clips" for s, n in counts.items()) + f" -> {out_dir}")


if __name__ == "__main__":
    stage.main(run)
