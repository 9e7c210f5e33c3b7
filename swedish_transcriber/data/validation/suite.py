"""The Great Expectations side: the checks, the suite, and one Checkpoint run over all splits.

GX runs in an ephemeral (in-memory) context: no ``gx/`` folder in the repo, no analytics, no
progress bars, and its logging kept out of the stage's output. Each expectation carries
``meta.check`` (our key for it) so that a result maps back to its check, and the per-row
result format returns every unexpected row keyed by ``row_id``. What to do with those rows is
:mod:`.policy`'s business; the HTML it renders is tidied by :mod:`.docs`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from swedish_transcriber.data.manifest import COLUMNS, RELEASE_COLUMNS, SPLITS, conform_with_release
from swedish_transcriber.data.validation.docs import FIXED_RUN_TIME
from swedish_transcriber.data.validation.reasons import (
    CHARS_PER_SECOND,
    DURATION_MISMATCH,
    SPEAKER_IN_TEST,
    between,
    blank,
    characters,
    chars_per_second,
    duration_mismatch,
    missing,
    reported,
    speaker,
    votes,
)

if TYPE_CHECKING:
    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.expectations.expectation import Expectation

    from swedish_transcriber.data.validation.settings import ValidationSettings

SUITE_NAME = "swedish_manifest"
ROW_ID = "row_id"
DOCS_SITE = "local_site"
RUN_NAME = "validate"

# The per-row result GX must return: every unexpected row, keyed by our row id. The
# ``unexpected_index_query`` (a pandas filter expression listing all indices) is not needed.
RESULT_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    # row_id maps a result to its row; split and tsv_row show the reviewer where it is.
    "unexpected_index_column_names": [ROW_ID, "split", "tsv_row"],
    "return_unexpected_index_query": False,
}


@dataclass(frozen=True)
class Check:
    """One expectation of the suite, the report key it counts under, and how to explain a row.

    ``explain`` turns one entry of GX's ``unexpected_index_list`` (the row id and the
    offending value(s)) plus the row into the human part of the quarantine reason (``None``
    for ``path_unique``, whose reasons depend on the whole group of duplicates).
    """

    key: str
    expectation: Expectation
    explain: Callable[[dict[str, Any], Mapping[str, Any]], str] | None

    @property
    def label(self) -> str:
        """``expect_...(column)``: how the expectation is named in reasons and messages."""
        kwargs = self.expectation.configuration.kwargs
        if "column" in kwargs:
            columns = kwargs["column"]
        else:
            columns = f"{kwargs['column_A']}, {kwargs['column_B']}"
        return f"{self.expectation.expectation_type}({columns})"


def _import_gx() -> Any:
    """Import GX quietly: no usage statistics (older 1.x read this at import time)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    with warnings.catch_warnings():
        # GX 1.x imports the deprecated sre_constants/sre_parse modules.
        warnings.simplefilter("ignore", DeprecationWarning)
        import great_expectations as gx

    return gx


def build_checks(settings: ValidationSettings) -> list[Check]:
    """The expectations of the suite, in the order reasons list them.

    Each has ``notes`` saying why it exists (rendered in the Data Docs) and ``meta.check``,
    the key that maps GX's result back to the check.
    """
    E = _import_gx().expectations

    def check(
        key: str, expectation_cls: Any, notes: str, explain: Callable | None, **kwargs: Any
    ) -> Check:
        expectation = expectation_cls(notes=notes, meta={"check": key}, **kwargs)
        return Check(key, expectation, explain)

    s = settings
    return [
        check(
            "duration_not_null",
            E.ExpectColumnValuesToNotBeNull,
            "Every clip was measured by ingest; a missing duration would slip past the range.",
            missing("duration"),
            column="duration",
        ),
        check(
            "duration_in_range",
            E.ExpectColumnValuesToBeBetween,
            "Too short to hold speech, or longer than Whisper's 30 s window.",
            between("duration", " s", s.min_duration, s.max_duration),
            column="duration",
            min_value=s.min_duration,
            max_value=s.max_duration,
        ),
        check(
            "duration_matches_listed",
            E.ExpectColumnValuesToBeBetween,
            "|measured duration - clip_durations.tsv's| (derived): far apart, the file is not the "
            "clip the release measured (truncated, replaced). MP3 decoders differ by up to a few "
            "hundred ms (validate.max_duration_mismatch). A clip the file does not list (or a "
            "release without it) is not checked.",
            duration_mismatch(s.max_duration_mismatch),
            column=DURATION_MISMATCH,
            max_value=s.max_duration_mismatch,
        ),
        check(
            "sentence_not_null",
            E.ExpectColumnValuesToNotBeNull,
            "A clip without a transcript cannot be trained on.",
            missing("sentence"),
            column="sentence",
        ),
        check(
            "sentence_not_blank",
            E.ExpectColumnValuesToMatchRegex,
            "The transcript must have at least one non-whitespace character.",
            blank,
            column="sentence",
            regex=r"\S",
        ),
        check(
            "sentence_allowed_characters",
            E.ExpectColumnValuesToNotMatchRegex,
            "Characters outside the Swedish alphabet and punctuation (validate.allowed_characters)"
            " are usually digits, symbols or mis-encodings that Whisper would learn to emit.",
            characters(s.disallowed_regex),
            column="sentence",
            regex=s.disallowed_regex,
        ),
        check(
            "sentence_not_reported",
            E.ExpectColumnValueLengthsToEqual,
            "reported (from reported.tsv) lists the reports of the clip's sentence (by "
            "sentence_id, else by text): users flagged it as offensive, misspelt, in another "
            "language or hard to say, so it is not trusted as a transcript.",
            reported,
            column="reported",
            value=0,
        ),
        check(
            "path_unique",
            E.ExpectColumnValuesToBeUnique,
            "The same clip listed twice is counted twice (or leaks across splits). GX flags "
            "every occurrence; the stage keeps the first valid one and quarantines the rest.",
            None,
            column="path",
        ),
        check(
            "votes_up_ge_down",
            E.ExpectColumnPairValuesAToBeGreaterThanB,
            "Common Voice reviewers rejected the clip more often than they accepted it.",
            votes,
            column_A="up_votes",
            column_B="down_votes",
            or_equal=True,
        ),
        check(
            "chars_per_second_in_range",
            E.ExpectColumnValuesToBeBetween,
            "len(sentence) / duration (derived): far outside human speech rates the transcript "
            "does not belong to the audio (truncated clip, wrong sentence).",
            chars_per_second(s.min_chars_per_second, s.max_chars_per_second),
            column=CHARS_PER_SECOND,
            min_value=s.min_chars_per_second,
            max_value=s.max_chars_per_second,
        ),
        check(
            "silence_ratio_not_null",
            E.ExpectColumnValuesToNotBeNull,
            "Every clip was measured by ingest; a missing silence ratio would slip past the bound.",
            missing("silence_ratio"),
            column="silence_ratio",
        ),
        check(
            "silence_ratio_max",
            E.ExpectColumnValuesToBeBetween,
            "Mostly silent clips (dead microphone, nothing said).",
            between("silence_ratio", "", None, s.max_silence_ratio),
            column="silence_ratio",
            max_value=s.max_silence_ratio,
        ),
        check(
            "speaker_not_in_train_and_test",
            E.ExpectColumnValuesToBeInSet,
            "train_speaker_in_test (derived) is true for a train row whose client_id also "
            "speaks in test: such train rows are quarantined so that test WER measures unseen "
            "speakers and the test set stays intact.",
            speaker,
            column=SPEAKER_IN_TEST,
            value_set=[False],
        ),
    ]


def build_suite(context: Any, checks: list[Check]) -> ExpectationSuite:
    """Add the suite with every check's expectation to ``context`` and return it.

    GX 1.x: ``ExpectationSuite.add_expectation`` needs the suite to belong to a context (it
    saves each expectation to the context's store), and passing ``expectations=`` to the
    constructor only logs invalid ones; so the suite is added first, then filled.
    """
    gx = _import_gx()
    suite = context.suites.add(
        gx.ExpectationSuite(
            name=SUITE_NAME,
            notes="Swedish Transcriber: rows of data/manifest that are fit to train and test on.",
        )
    )
    for c in checks:
        suite.add_expectation(c.expectation)
    return suite


def combine_splits(splits: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """All splits as one typed frame (train, dev, test order) plus the derived columns.

    The ``split`` column is set from the mapping's key, which is where the row will be written.
    """
    frames = []
    for split in ordered_splits(splits):
        frame = conform_with_release(splits[split])
        frame["split"] = pd.Series([split] * len(frame), dtype="string")
        frames.append(frame)
    combined = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(
            {c: pd.Series(dtype=t) for c, t in {**COLUMNS, **RELEASE_COLUMNS}.items()}
        )
    )
    return add_derived_columns(combined)


def add_derived_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``row_id``, ``chars_per_second``, ``duration_mismatch``, ``train_speaker_in_test``.

    ``chars_per_second`` is null for a blank sentence (that row fails ``sentence_not_blank``;
    a rate of 0 would only repeat it) and infinite for text over a 0 s clip.
    """
    out = frame.copy()
    out[ROW_ID] = np.arange(len(out), dtype="int64")
    chars = out["sentence"].fillna("").str.strip().str.len().astype("float64").to_numpy()
    duration = out["duration"].astype("float64").to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(duration > 0, chars / duration, np.inf)
    rate[(chars == 0) | np.isnan(duration)] = np.nan
    out[CHARS_PER_SECOND] = rate
    listed = out["listed_duration"].astype("float64").to_numpy()
    out[DURATION_MISMATCH] = np.abs(duration - listed)  # NaN when not listed: not checked
    speaker = out["client_id"].fillna("")
    test_speakers = set(speaker[(out["split"] == "test").fillna(False)]) - {""}
    in_test = (out["split"] == "train").fillna(False) & speaker.isin(test_speakers)
    out[SPEAKER_IN_TEST] = in_test.astype(bool).to_numpy()
    return out


@contextlib.contextmanager
def _quiet_gx() -> Iterator[None]:
    """Keep GX's INFO logging and library warnings out of the stage's output."""
    logger = logging.getLogger("great_expectations")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"great_expectations(\..*)?")
            yield
    finally:
        logger.setLevel(level)


def _ephemeral_context(docs_dir: Path | None) -> Any:
    """An in-memory GX context (no ``gx/`` folder), no analytics, no progress bars.

    Data Docs, when asked for, go to ``docs_dir`` (an absolute path: an ephemeral context has
    no root directory to resolve a relative one against).
    """
    gx = _import_gx()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    if docs_dir is not None:
        context.add_data_docs_site(
            DOCS_SITE,
            {
                "class_name": "SiteBuilder",
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(Path(docs_dir).resolve()),
                },
            },
        )
    return context


def _for_gx(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame GX sees: only the columns the suite reads, strings as Python objects.

    pandas 3 stores ``string`` columns in Arrow; GX collects unexpected rows one by one, and
    element access on Arrow-backed columns is several times slower than on object columns.
    """
    columns = [
        ROW_ID, "split", "tsv_row", "path", "sentence", "duration", "up_votes", "down_votes",
        "silence_ratio", CHARS_PER_SECOND, SPEAKER_IN_TEST, DURATION_MISMATCH, "reported",
    ]  # fmt: skip
    out = frame[columns].copy()
    for name in ("split", "path", "sentence", "reported"):
        out[name] = out[name].astype(object).where(out[name].notna(), None)
    return out


def run_suite(
    frame: pd.DataFrame,
    checks: list[Check],
    docs_dir: str | Path | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Run the suite through a Checkpoint; return check key -> GX's unexpected rows.

    Each unexpected row is GX's ``unexpected_index_list`` entry: ``{row_id: ..., <column>:
    <offending value>}``. With ``docs_dir`` an ``UpdateDataDocsAction`` builds the Data Docs
    there. An expectation that raised inside GX (e.g. a missing column) is an error, not a
    pass: otherwise its rows would silently go through.
    """
    gx = _import_gx()
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.core.run_identifier import RunIdentifier

    with _quiet_gx():
        context = _ephemeral_context(Path(docs_dir) if docs_dir is not None else None)
        batch = (
            context.data_sources.add_pandas("manifest")
            .add_dataframe_asset("all_splits")
            .add_batch_definition_whole_dataframe("whole_manifest")
        )
        suite = build_suite(context, checks)
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name="manifest_validation", data=batch, suite=suite)
        )
        actions = [] if docs_dir is None else [UpdateDataDocsAction(name="data_docs")]
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name="validate_manifest",
                validation_definitions=[definition],
                actions=actions,
                result_format=RESULT_FORMAT,
            )
        )
        # A fixed run time keeps the Data Docs byte-identical for identical input, so that
        # DVC sees an unchanged output (the docs are about the data, not about when it ran).
        run_id = RunIdentifier(run_name=RUN_NAME, run_time=FIXED_RUN_TIME)
        outcome = checkpoint.run(batch_parameters={"dataframe": _for_gx(frame)}, run_id=run_id)

    (suite_result,) = outcome.run_results.values()
    by_key = {c.key: c for c in checks}
    unexpected: dict[str, list[dict[str, Any]]] = {c.key: [] for c in checks}
    for result in suite_result.results:
        config = result.expectation_config
        key = (config.meta or {}).get("check")
        if key not in by_key:
            raise RuntimeError(f"GX returned a result for an unknown expectation: {config.type}")
        info = result.exception_info or {}
        if info.get("raised_exception"):
            raise RuntimeError(
                f"{by_key[key].label} could not be evaluated: {info.get('exception_message')}"
            )
        rows = list(result.result.get("unexpected_index_list") or [])
        count = int(result.result.get("unexpected_count") or 0)
        if len(rows) != count:
            raise RuntimeError(
                f"{by_key[key].label}: GX reported {count} unexpected rows but listed {len(rows)}"
            )
        unexpected[key] = rows
    return unexpected


def ordered_splits(splits: Mapping[str, pd.DataFrame]) -> list[str]:
    """Split names in pipeline order (train, dev, test), then any others as given."""
    return [s for s in SPLITS if s in splits] + [s for s in splits if s not in SPLITS]
