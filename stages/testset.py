"""Stage ``testset@<name>``: one named test set (params ``evaluate.sets.<name>``) -> features.

``python -m stages.testset <name> models/base data/testsets/<name>``: reads the set with its
layout's reader (``pairs``, ``commonvoice``, ``fleurs``) and featurizes it with the base
model's processor exactly as the featurize stage does the test split, into a table that
``load_split(Path("data/testsets"), name)`` reads; a ``features`` set (a split this pipeline
featurized) is copied as it is. Every fault of the set (a missing transcript or clip, an
empty transcript, audio that does not decode, ...) is listed at once and fails the stage:
a test set is scored whole, so nothing is quarantined.
"""

from __future__ import annotations

from pathlib import Path

import datasets

from swedish_transcriber import stage
from swedish_transcriber.atomic import atomic_dir, scratch_dir
from swedish_transcriber.data.features import FeatureSettings, load_processor
from swedish_transcriber.data.testset_features import copy_featurized, featurize_testset
from swedish_transcriber.data.testset_readers import read_testset
from swedish_transcriber.data.testsets import TestSetParams
from swedish_transcriber.model.source import ModelLanguage
from swedish_transcriber.params import ParamsError, section


def run(name: Path, model_dir: Path, out_dir: Path) -> None:
    """Build test set ``name`` (a key of ``evaluate.sets``) into ``out_dir``."""
    key = str(name)
    sets = section("evaluate", TestSetParams, subset=True).sets
    if key not in sets:
        raise ParamsError(
            f"test set {key!r} is not in params evaluate.sets (it has {', '.join(sorted(sets))})"
        )
    test_set = sets[key]
    datasets.disable_caching()  # outputs go to the out dir only, not to ~/.cache
    if test_set.format == "features":
        with atomic_dir(out_dir) as tmp:
            table = copy_featurized(key, test_set, tmp)
        print(f"testset {key}: {len(table)} clips copied from {test_set.path}/{test_set.split}")
        return
    rows = read_testset(key, test_set)  # layout faults fail here, before any decoding
    settings = section("features", FeatureSettings)
    model = section("model", ModelLanguage, subset=True)
    processor = load_processor(model_dir, model.language, model.task)
    # map's rows stream to a scratch folder (not RAM); it goes once the set is saved.
    with (
        atomic_dir(out_dir) as tmp,
        scratch_dir(out_dir) as scratch,
    ):
        table = featurize_testset(key, test_set, rows, processor, settings, scratch)
        table.save_to_disk(str(tmp))
        seconds = sum(table["duration"])
    print(f"testset {key}: {len(table)} clips, {seconds:.1f} s of audio, from {test_set.path}")


if __name__ == "__main__":
    stage.main(run)
