"""The data validation suite: Great Expectations over the ingest manifest, rows in or out.

Why Great Expectations rather than a few pandas filters: the suite is declarative (each rule is
one expectation with its thresholds from ``params.yaml``), GX renders it and every run's
results as HTML Data Docs that a reviewer can read without running code, and each failed row
is named by GX's own per-row result (``unexpected_index_list`` with ``result_format`` COMPLETE)
instead of by a second, possibly diverging, implementation of the same rule.

The suite runs once over all splits together (one DataFrame with a ``split`` column) so that
cross-split rules (unique ``path``, no speaker in both train and test) see everything. Two
columns are derived in pandas before GX runs, because GX has no expectation for them on a
pandas batch: ``chars_per_second`` and ``train_speaker_in_test``. A ``row_id`` column (the
position in the combined frame) is GX's ``unexpected_index_column_names`` and maps each
unexpected value back to its row.

Policies worth knowing:

* A row that fails several expectations is quarantined once, with every failure in its
  ``reason`` (joined with ``"; "``), in the order of the suite.
* Duplicate ``path``: GX flags every occurrence of a duplicated path. Of each such group, the
  first occurrence (train, dev, test order, then TSV order) that passes every other
  expectation is kept and the others are quarantined, naming the occurrence that was kept.
  So one copy of a clip survives, and a bad first copy does not take a good second one down.
  (The Data Docs therefore count all occurrences; ``reports/validation.json`` counts the rows
  quarantined.)
* Speaker in both train and test: the TRAIN rows of such a speaker are quarantined, the test
  set is kept intact (so WER stays comparable across runs).
* Nulls: GX's column-map expectations skip nulls, so ``sentence``, ``duration`` and
  ``silence_ratio`` also have a not-null expectation; otherwise a missing value would pass.
"""

from __future__ import annotations

import contextlib
import datetime
import html
import logging
import math
import os
import re
import unicodedata
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from swedish_transcriber.data.manifest import COLUMNS, SPLITS, conform, quarantine_rows
from swedish_transcriber.params import ParamsError

if TYPE_CHECKING:
    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.expectations.expectation import Expectation

STAGE = "validate"
SUITE_NAME = "swedish_manifest"
ROW_ID = "row_id"
CHARS_PER_SECOND = "chars_per_second"
SPEAKER_IN_TEST = "train_speaker_in_test"
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
class ValidationSettings:
    """Params section ``validate`` (exactly its keys).

    ``allowed_characters`` is the body of a regex character class: a sentence may only contain
    characters it matches.
    """

    min_duration: float  # seconds
    max_duration: float
    allowed_characters: str
    min_chars_per_second: float
    max_chars_per_second: float
    max_silence_ratio: float
    max_fail_rate: float  # the stage fails when more than this share of rows is quarantined

    def __post_init__(self) -> None:
        """Reject inconsistent thresholds now, with the key's name, not deep inside GX."""
        where = "params.yaml validate"
        if not 0 <= self.min_duration < self.max_duration:
            raise ParamsError(
                f"{where}: need 0 <= min_duration < max_duration, got "
                f"{self.min_duration} and {self.max_duration}"
            )
        if not 0 <= self.min_chars_per_second < self.max_chars_per_second:
            raise ParamsError(
                f"{where}: need 0 <= min_chars_per_second < max_chars_per_second, got "
                f"{self.min_chars_per_second} and {self.max_chars_per_second}"
            )
        if not 0 <= self.max_silence_ratio <= 1:
            raise ParamsError(
                f"{where}.max_silence_ratio: must be in [0, 1], got {self.max_silence_ratio}"
            )
        if not 0 <= self.max_fail_rate <= 1:
            raise ParamsError(f"{where}.max_fail_rate: must be in [0, 1], got {self.max_fail_rate}")
        if not self.allowed_characters:
            raise ParamsError(f"{where}.allowed_characters: must not be empty")
        if _closes_class_early(self.allowed_characters):
            # "a-]" would compile as "[^a-]" followed by a literal "]": a different rule.
            raise ParamsError(
                f"{where}.allowed_characters: {self.allowed_characters!r} has an unescaped ']' "
                f"that would end the character class early; write it as '\\]'"
            )
        try:
            re.compile(self.disallowed_regex)
        except re.error as exc:
            raise ParamsError(
                f"{where}.allowed_characters: {self.allowed_characters!r} is not a valid regex "
                f"character-class body ([^...] does not compile: {exc})"
            ) from None

    @property
    def disallowed_regex(self) -> str:
        """A regex that matches any one character outside ``allowed_characters``.

        "No disallowed character anywhere" (not-match) rather than "^[allowed]*$" (match):
        ``$`` also matches before a trailing newline, so a sentence ending in "\\n" would pass.
        """
        return f"[^{self.allowed_characters}]"


def _closes_class_early(body: str) -> bool:
    """Whether ``body`` has an unescaped ``]`` past its first character (``[]...]`` is literal)."""
    i = 0
    while i < len(body):
        if body[i] == "\\":
            i += 2
            continue
        if body[i] == "]" and i > 0:
            return True
        i += 1
    return False


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


@dataclass
class ValidationResult:
    """What one run of the suite decided.

    ``passed``: split -> the rows that passed, exactly as given (same columns and values).
    ``quarantined``: every failed row with the manifest columns plus ``stage`` and ``reason``.
    ``report``: flat numbers for DVC metrics (``reports/validation.json``).
    ``docs_index``: the Data Docs ``index.html``, when a docs directory was given.
    """

    passed: dict[str, pd.DataFrame]
    quarantined: pd.DataFrame
    report: dict[str, int | float]
    failed_by_check: dict[str, int]
    labels: dict[str, str]
    docs_index: Path | None = None

    @property
    def fail_rate(self) -> float:
        """Fraction of all rows quarantined (0 for an empty manifest)."""
        return float(self.report["fail_rate"])


class ValidationGateError(ValueError):
    """More rows failed than ``validate.max_fail_rate`` allows: the stage must stop.

    A ``ValueError`` so that ``cli.run_stage`` prints the message as one clear error.
    """

    def __init__(self, message: str, result: ValidationResult) -> None:
        super().__init__(message)
        self.result = result


# --------------------------------------------------------------------------------------------
# Formatting the offending values


def _num(value: Any, *bounds: float) -> str:
    """A short number that does not round onto a threshold (30.0001 must not print as 30)."""
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    text = f"{value:.2f}"
    if float(text) in bounds and value not in bounds:
        text = repr(value)
    return text


def _between(column: str, unit: str, low: float | None, high: float | None) -> Callable:
    """Explain a value outside [low, high]."""

    def explain(entry: dict[str, Any], row: Mapping[str, Any]) -> str:
        value = entry[column]
        bounds = tuple(b for b in (low, high) if b is not None)
        shown = f"{_num(value, *bounds)}{unit}"
        if low is None:
            return f"{shown} > {high}"
        if high is None:
            return f"{shown} < {low}"
        return f"{shown} not in [{low}, {high}]"

    return explain


def _missing(column: str) -> Callable:
    def explain(entry: dict[str, Any], row: Mapping[str, Any]) -> str:
        return f"{column} is missing (null)"

    return explain


def _blank(entry: dict[str, Any], row: Mapping[str, Any]) -> str:
    return f"sentence {str(entry['sentence'])!r} is empty or only whitespace"


def _characters(pattern: str) -> Callable:
    regex = re.compile(pattern)

    def explain(entry: dict[str, Any], row: Mapping[str, Any]) -> str:
        # GX said the value matches; naming the characters only makes the reason actionable.
        found = list(dict.fromkeys(regex.findall(str(entry["sentence"]))))
        shown = ", ".join(
            f"{c!r} (U+{ord(c):04X} {unicodedata.name(c, 'unnamed')})" for c in found[:5]
        )
        more = f" and {len(found) - 5} more" if len(found) > 5 else ""
        return f"characters outside validate.allowed_characters: {shown}{more}"

    return explain


def _votes(entry: dict[str, Any], row: Mapping[str, Any]) -> str:
    return f"up_votes {entry['up_votes']} < down_votes {entry['down_votes']}"


def _chars_per_second(low: float, high: float) -> Callable:
    inner = _between(CHARS_PER_SECOND, " chars/s", low, high)

    def explain(entry: dict[str, Any], row: Mapping[str, Any]) -> str:
        chars = len(str(row["sentence"]).strip())
        return f"{inner(entry, row)} ({chars} chars in {_num(row['duration'])} s)"

    return explain


def _speaker(entry: dict[str, Any], row: Mapping[str, Any]) -> str:
    speaker = str(row["client_id"])
    short = speaker if len(speaker) <= 16 else speaker[:12] + "..."
    return (
        f"speaker {short} also speaks in test; this TRAIN row is quarantined so that the test "
        f"set stays intact"
    )


# --------------------------------------------------------------------------------------------
# The suite


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
            _missing("duration"),
            column="duration",
        ),
        check(
            "duration_in_range",
            E.ExpectColumnValuesToBeBetween,
            "Too short to hold speech, or longer than Whisper's 30 s window.",
            _between("duration", " s", s.min_duration, s.max_duration),
            column="duration",
            min_value=s.min_duration,
            max_value=s.max_duration,
        ),
        check(
            "sentence_not_null",
            E.ExpectColumnValuesToNotBeNull,
            "A clip without a transcript cannot be trained on.",
            _missing("sentence"),
            column="sentence",
        ),
        check(
            "sentence_not_blank",
            E.ExpectColumnValuesToMatchRegex,
            "The transcript must have at least one non-whitespace character.",
            _blank,
            column="sentence",
            regex=r"\S",
        ),
        check(
            "sentence_allowed_characters",
            E.ExpectColumnValuesToNotMatchRegex,
            "Characters outside the Swedish alphabet and punctuation (validate.allowed_characters)"
            " are usually digits, symbols or mis-encodings that Whisper would learn to emit.",
            _characters(s.disallowed_regex),
            column="sentence",
            regex=s.disallowed_regex,
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
            _votes,
            column_A="up_votes",
            column_B="down_votes",
            or_equal=True,
        ),
        check(
            "chars_per_second_in_range",
            E.ExpectColumnValuesToBeBetween,
            "len(sentence) / duration (derived): far outside human speech rates the transcript "
            "does not belong to the audio (truncated clip, wrong sentence).",
            _chars_per_second(s.min_chars_per_second, s.max_chars_per_second),
            column=CHARS_PER_SECOND,
            min_value=s.min_chars_per_second,
            max_value=s.max_chars_per_second,
        ),
        check(
            "silence_ratio_not_null",
            E.ExpectColumnValuesToNotBeNull,
            "Every clip was measured by ingest; a missing silence ratio would slip past the bound.",
            _missing("silence_ratio"),
            column="silence_ratio",
        ),
        check(
            "silence_ratio_max",
            E.ExpectColumnValuesToBeBetween,
            "Mostly silent clips (dead microphone, nothing said).",
            _between("silence_ratio", "", None, s.max_silence_ratio),
            column="silence_ratio",
            max_value=s.max_silence_ratio,
        ),
        check(
            "speaker_not_in_train_and_test",
            E.ExpectColumnValuesToBeInSet,
            "train_speaker_in_test (derived) is true for a train row whose client_id also "
            "speaks in test: such train rows are quarantined so that test WER measures unseen "
            "speakers and the test set stays intact.",
            _speaker,
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
    for split in _ordered(splits):
        frame = conform(splits[split], extra_ok=False)
        frame["split"] = pd.Series([split] * len(frame), dtype="string")
        frames.append(frame)
    combined = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame({c: pd.Series(dtype=t) for c, t in COLUMNS.items()})
    )
    return add_derived_columns(combined)


def add_derived_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``row_id``, ``chars_per_second`` and ``train_speaker_in_test`` (GX checks them).

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
        "silence_ratio", CHARS_PER_SECOND, SPEAKER_IN_TEST,
    ]  # fmt: skip
    out = frame[columns].copy()
    for name in ("split", "path", "sentence"):
        out[name] = out[name].astype(object).where(out[name].notna(), None)
    return out


FIXED_RUN_TIME = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)


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


def _ordered(splits: Mapping[str, pd.DataFrame]) -> list[str]:
    """Split names in pipeline order (train, dev, test), then any others as given."""
    return [s for s in SPLITS if s in splits] + [s for s in splits if s not in SPLITS]


def _dedupe(
    frame: pd.DataFrame, flagged: list[int], failed_elsewhere: set[int], label: str
) -> dict[int, str]:
    """Row id -> reason for the duplicates to quarantine among the rows GX flagged.

    Per path, the first occurrence that passes every other expectation is kept (or, when none
    does, the first occurrence is the reference); all others are quarantined.
    """
    reasons: dict[int, str] = {}
    if not flagged:
        return reasons
    rows = frame.loc[frame[ROW_ID].isin(flagged)].sort_values(ROW_ID)
    for path, group in rows.groupby("path", sort=False):
        ids = group[ROW_ID].tolist()
        clean = [i for i in ids if i not in failed_elsewhere]
        keep = clean[0] if clean else ids[0]
        ref = frame.iloc[keep]  # row_id is the position in frame
        fate = "kept" if clean else "quarantined too"
        where = f"{ref['split']} {ref['tsv_file']} line {ref['tsv_row']}"
        for i in ids:
            if i != keep:
                reasons[i] = f"{label}: {path!r} is also at {where} (that occurrence is {fate})"
    return reasons


def _report(
    frame: pd.DataFrame,
    split_names: list[str],
    failed_ids: set[int],
    failed_by_check: dict[str, int],
    duplicate_groups: int,
) -> dict[str, int | float]:
    """Flat numbers for ``dvc metrics``: totals, per expectation, per split."""
    total = len(frame)
    failed = len(failed_ids)
    report: dict[str, int | float] = {
        "total": total,
        "passed": total - failed,
        "failed": failed,
        "fail_rate": round(failed / total, 6) if total else 0.0,
    }
    for key, count in failed_by_check.items():
        report[f"failed_{key}"] = int(count)
    report["duplicate_paths"] = int(duplicate_groups)
    failed_mask = frame[ROW_ID].isin(failed_ids)
    for split in split_names:
        in_split = (frame["split"] == split).fillna(False)
        report[f"{split}_total"] = int(in_split.sum())
        report[f"{split}_passed"] = int((in_split & ~failed_mask).sum())
        report[f"{split}_failed"] = int((in_split & failed_mask).sum())
    return report


def validate_manifests(
    splits: Mapping[str, pd.DataFrame],
    settings: ValidationSettings,
    docs_dir: str | Path | None = None,
) -> ValidationResult:
    """Validate all splits at once and decide, per row, pass or quarantine.

    ``splits``: split name -> manifest (columns of ``manifest.COLUMNS``). ``docs_dir``: where
    to build the GX Data Docs (``index.html`` there), or ``None`` for none. Does not apply
    ``max_fail_rate``: see :func:`enforce_max_fail_rate`, so that a caller can write the
    report and the docs first.
    """
    frame = combine_splits(splits)
    checks = build_checks(settings)
    unexpected = run_suite(frame, checks, docs_dir)

    labels = {c.key: c.label for c in checks}
    # The rows GX listed, once, as plain dicts (row_id is the position in ``frame``).
    listed = sorted({int(e[ROW_ID]) for rows in unexpected.values() for e in rows})
    records = dict(zip(listed, frame.iloc[listed].to_dict("records"), strict=True))
    # row id -> {check key: reason}; every failure GX listed for that row.
    reasons: dict[int, dict[str, str]] = {}
    for c in checks:
        if c.explain is None:
            continue
        for entry in unexpected[c.key]:
            row_id = int(entry[ROW_ID])
            text = c.explain(entry, records[row_id])
            reasons.setdefault(row_id, {})[c.key] = f"{labels[c.key]}: {text}"
    flagged = [int(e[ROW_ID]) for e in unexpected["path_unique"]]
    for row_id, text in _dedupe(frame, flagged, set(reasons), labels["path_unique"]).items():
        reasons.setdefault(row_id, {})["path_unique"] = text
    duplicate_groups = frame.loc[frame[ROW_ID].isin(flagged), "path"].nunique()

    order = [c.key for c in checks]
    failed_ids = set(reasons)
    failed_by_check = {k: sum(k in r for r in reasons.values()) for k in order}

    passed: dict[str, pd.DataFrame] = {}
    quarantined: list[pd.DataFrame] = []
    offset = 0
    for split in _ordered(splits):
        original = splits[split].reset_index(drop=True)
        ids = np.arange(offset, offset + len(original))
        offset += len(original)
        bad = np.array([i in failed_ids for i in ids], dtype=bool)
        passed[split] = original.loc[~bad].reset_index(drop=True)
        if bad.any():
            rows = original.loc[bad, list(COLUMNS)].copy()
            rows["split"] = split
            texts = [
                "; ".join(reasons[int(i)][k] for k in order if k in reasons[int(i)])
                for i in ids[bad]
            ]
            quarantined.append(quarantine_rows(rows, STAGE, texts))
    quarantine = (
        pd.concat(quarantined, ignore_index=True)
        if quarantined
        else quarantine_rows(frame.loc[[], list(COLUMNS)], STAGE, [])
    )

    report = _report(frame, _ordered(splits), failed_ids, failed_by_check, duplicate_groups)
    index = None
    if docs_dir is not None:
        index = Path(docs_dir) / "index.html"
        add_offline_index(index, report, labels)
        make_docs_deterministic(Path(docs_dir))
    return ValidationResult(passed, quarantine, report, failed_by_check, labels, index)


def failure_summary(result: ValidationResult) -> str:
    """One line per expectation that failed rows: ``label: count``."""
    lines = [f"  {result.labels[k]}: {n} row(s)" for k, n in result.failed_by_check.items() if n]
    return "\n".join(lines) if lines else "  (none)"


def enforce_max_fail_rate(result: ValidationResult, max_fail_rate: float, where: str = "") -> None:
    """Raise :class:`ValidationGateError` when more than ``max_fail_rate`` of rows failed.

    A high failure rate means the thresholds or the input are wrong (wrong release, broken
    ingest), not that a few clips are bad: quarantining a quarter of the corpus silently would
    train on whatever is left. ``where`` tells the user where the details are.
    """
    report = result.report
    if result.fail_rate <= max_fail_rate:
        return
    message = (
        f"{report['failed']} of {report['total']} rows failed validation: fail rate "
        f"{result.fail_rate:.1%} > validate.max_fail_rate {max_fail_rate:.1%}.\n"
        f"Failed rows per expectation (a row may fail several):\n{failure_summary(result)}"
    )
    if where:
        message += f"\n{where}"
    raise ValidationGateError(message, result)


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_CACHE_BUSTER = re.compile(r"\?d=\d{8}T\d{6}\.\d+Z")
_STAMP = re.compile(r"\d{8}T\d{6}\.\d+Z")


def _renumber_ids(text: str) -> str:
    """Random uuid4 element ids -> ids numbered in order of first appearance."""
    ids: dict[str, str] = {}

    def number(match: re.Match[str]) -> str:
        return ids.setdefault(match.group(0), f"00000000-0000-4000-8000-{len(ids):012d}")

    return _UUID.sub(number, text)


def make_docs_deterministic(docs_dir: Path) -> None:
    """Remove the randomness and wall-clock stamps GX puts into its HTML.

    Identical data must give identical Data Docs, or DVC would see a changed output on every
    run. Element ids are renumbered within each page (its collapse/expand links keep working)
    and render/validation times become the fixed run time: the docs describe the data, and
    DVC's lock file records when and from what they were made.
    """
    fixed = FIXED_RUN_TIME.strftime("%Y%m%dT%H%M%S.%fZ")
    for page in sorted(docs_dir.rglob("*.html")):
        text = _CACHE_BUSTER.sub("", page.read_text(encoding="utf-8"))
        text = _STAMP.sub(fixed, _renumber_ids(text))
        page.write_text(text, encoding="utf-8")


def add_offline_index(index: Path, report: Mapping[str, int | float], labels: Mapping) -> None:
    """Make ``index.html`` useful offline: plain links to every page, and the counts.

    GX's index lists its pages in a table drawn by jQuery/bootstrap-table loaded from CDNs, so
    offline it is empty. This adds a static block at the top, the summary of the run and plain
    links to the expectation suite and validation result pages (those are plain HTML and open
    offline, unstyled).
    """
    index = Path(index)
    if not index.is_file():
        return
    root = index.parent
    pages = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.html") if p != index)

    def links(prefix: str) -> str:
        items = [
            f'<li><a href="{html.escape(p)}">{html.escape(p[len(prefix) :])}</a></li>'
            for p in pages
            if p.startswith(prefix)
        ]
        return "<ul>" + "".join(items) + "</ul>" if items else "<p>(none)</p>"

    rows = "".join(
        f"<tr><td>{html.escape(str(label))}</td><td>{report.get(f'failed_{key}', 0)}</td></tr>"
        for key, label in labels.items()
    )
    block = (
        '<div id="offline-index" style="padding:1em 3em;font-family:sans-serif">'
        "<h2>Manifest validation</h2>"
        f"<p>{report['total']} rows: {report['passed']} passed, {report['failed']} quarantined "
        f"(fail rate {float(report['fail_rate']):.2%}).</p>"
        "<table border=1 cellpadding=4><tr><th>expectation</th><th>rows quarantined</th></tr>"
        f"{rows}</table>"
        f"<h3>Validation results</h3>{links('validations/')}"
        f"<h3>Expectation suites</h3>{links('expectations/')}"
        "</div>"
    )
    text = index.read_text(encoding="utf-8")
    marker = re.search(r"<body[^>]*>", text)
    at = marker.end() if marker else 0
    index.write_text(text[:at] + block + text[at:], encoding="utf-8")
