"""A small Great Expectations 1.x runner: staged frame + `expectations/<table>.json` -> results.

`dagster-ge` pins GX < 1.0 and has no asset checks, so this is the bridge: an ephemeral GX
context, a pandas data source with a whole-dataframe batch definition, one validation
definition per table (built once per process: building is cheap, importing GX is not), run
with `batch_parameters={"dataframe": df}`. The result comes back as plain dataclasses that
the Dagster layer turns into `AssetCheckResult`s.

Each expectation in the suite JSON carries `meta: {"severity": "blocking" | "warning",
"check": "<check name>"}`; expectations sharing a check name form one asset check, which
passes when all of them pass. Results carry counts and observed figures only, never the
unexpected values themselves (they could be personal data).

Great Expectations is imported inside the functions that need it: the Dagster code location
imports this module's neighbours at load time and must stay fast.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any, Protocol

import pandas as pd
import pyarrow as pa

from pipelines.schemas import arrow_schema, table_spec

EXPECTATIONS_DIR = files("expectations")  # a package: found wherever it was installed
SEVERITIES = ("blocking", "warning")
# Expectations about the table as a whole: a distribution, and uniqueness. Every other one
# judges each row on its own, so its counts add up over rows and an incremental staging
# carries them (`validate_merged`); so does uniqueness's while the table holds no repeated
# key (a repeat then involves a row the merge put in), and a boolean column's mean (its true
# values over its present ones: `mean_tallies`). A suite is run whole or in parts.
MEAN, UNIQUENESS = "expect_column_mean_to_be_between", "expect_compound_columns_to_be_unique"
ROWS_PART, KEYS_PART, MEANS_PART, COUNTED_PART = "rows", "keys", "means", "counted"
_PARTS = {  # which expectation types each part runs
    ROWS_PART: lambda kind: kind not in (MEAN, UNIQUENESS),
    KEYS_PART: lambda kind: kind == UNIQUENESS,
    MEANS_PART: lambda kind: kind == MEAN,
    COUNTED_PART: lambda kind: kind != MEAN,  # every count a merge carries
}
# GX counts every row of these as considered: nulls are what they test, not rows to skip
NULL_TESTS = frozenset({"expect_column_values_to_not_be_null", "expect_column_values_to_be_null"})
# GX's pandas engine applies a row condition to the whole batch for every metric of every
# expectation that has one: a query, then a copy of every column (at 4M staged services, 18
# filters were 40% of the validation). On a frame of at least this many rows the suite runs
# in groups instead: the expectations without a condition on their own columns, and those of
# each condition on the rows it selects, selected once by the same query, with their
# condition taken off (`validation_groups`). The outcomes are the same; below this size one
# GX run costs less than several (each has a fixed cost of its own).
SPLIT_ROWS = 200_000
WHOLE = None  # the group of every expectation of a part: one GX run with the conditions in it

_lock = threading.Lock()
_validation_definitions: dict[str, Any] = {}
_context: Any = None


@dataclass(frozen=True)
class CheckSpecInfo:
    """What Dagster needs to declare a check, read from the JSON alone (no GX import)."""

    name: str
    severity: str
    description: str
    expectation_count: int

    @property
    def blocking(self) -> bool:
        return self.severity == "blocking"


@dataclass(frozen=True)
class ExpectationOutcome:
    check: str
    severity: str
    expectation_type: str
    column: str | None
    success: bool
    element_count: int | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    observed_value: float | None = None
    exception: str | None = None
    missing_count: int | None = None
    position: int | None = None  # the expectation's place in expectations/<table>.json

    def label(self) -> str:
        return f"{self.expectation_type}({self.column})" if self.column else self.expectation_type


@dataclass
class CheckOutcome:
    name: str
    severity: str
    description: str
    expectations: list[ExpectationOutcome] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(outcome.success for outcome in self.expectations)

    @property
    def blocking(self) -> bool:
        return self.severity == "blocking"

    def metadata(self) -> dict[str, float | int | str]:
        """Figures for run metadata: failed expectation labels, counts, observed values."""
        figures: dict[str, float | int | str] = {"expectations": len(self.expectations)}
        failed = [outcome.label() for outcome in self.expectations if not outcome.success]
        figures["failed_expectations"] = ", ".join(failed) if failed else "none"
        seen: set[str] = set()
        for outcome in self.expectations:
            label = outcome.column or outcome.expectation_type
            if label in seen:  # two expectations on one column: tell them apart
                label = f"{label}:{outcome.expectation_type.removeprefix('expect_')}"
            seen.add(label)
            # a warning always shows its figure (drift); a blocking check when it has one
            show = not self.blocking or not outcome.success or bool(outcome.unexpected_count)
            if outcome.observed_value is not None:
                figures[f"observed_{label}"] = round(float(outcome.observed_value), 6)
            if outcome.unexpected_count is not None and show:
                figures[f"unexpected_{label}"] = int(outcome.unexpected_count)
            if outcome.unexpected_percent is not None and show:
                figures[f"unexpected_percent_{label}"] = round(float(outcome.unexpected_percent), 4)
            if outcome.exception:
                figures[f"error_{label}"] = outcome.exception[:300]
        return figures


@dataclass
class SuiteResult:
    table: str
    rows: int
    checks: list[CheckOutcome]

    @property
    def success(self) -> bool:
        """All blocking checks passed (warnings only report)."""
        return all(check.passed for check in self.checks if check.blocking)

    def check(self, name: str) -> CheckOutcome:
        for outcome in self.checks:
            if outcome.name == name:
                return outcome
        raise KeyError(name)

    def failed(self, severity: str | None = None) -> list[str]:
        return [
            c.name
            for c in self.checks
            if not c.passed and (severity is None or c.severity == severity)
        ]


# -- the suite files ----------------------------------------------------------------------


def suite_path(table: str, directory: Traversable = EXPECTATIONS_DIR) -> Traversable:
    return directory / f"{table}.json"


@cache
def load_suite_json(table: str, directory: Traversable = EXPECTATIONS_DIR) -> dict[str, Any]:
    document = json.loads(suite_path(table, directory).read_text(encoding="utf-8"))
    for position, expectation in enumerate(document.get("expectations", [])):
        meta = expectation.get("meta") or {}
        if meta.get("severity") not in SEVERITIES or not meta.get("check"):
            raise ValueError(
                f"expectations/{table}.json entry {position} ({expectation.get('type')}) needs "
                "meta.severity (blocking|warning) and meta.check"
            )
    return document


def check_specs(table: str, directory: Traversable = EXPECTATIONS_DIR) -> list[CheckSpecInfo]:
    """The checks a table's suite defines, in file order (for Dagster AssetCheckSpecs)."""
    document = load_suite_json(table, directory)
    descriptions = (document.get("meta") or {}).get("checks", {})
    order: list[str] = []
    severity: dict[str, str] = {}
    counts: dict[str, int] = {}
    for expectation in document["expectations"]:
        meta = expectation["meta"]
        name = meta["check"]
        if name not in severity:
            order.append(name)
            severity[name] = meta["severity"]
        elif severity[name] != meta["severity"]:
            raise ValueError(f"check {table}.{name} mixes blocking and warning expectations")
        counts[name] = counts.get(name, 0) + 1
    return [
        CheckSpecInfo(name, severity[name], descriptions.get(name, ""), counts[name])
        for name in order
    ]


# -- GX -----------------------------------------------------------------------------------


def _quiet_gx() -> None:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    # GX logs each expectation it cannot build, and its usage-statistics chatter, at INFO/
    # WARNING; the suite-count test catches dropped entries, so keep the run logs readable.
    logging.getLogger("great_expectations").setLevel(logging.ERROR)


def _get_context():
    global _context
    if _context is None:
        _quiet_gx()
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        # tqdm bars per validation would fill the Dagster logs
        context.variables.progress_bars = ProgressBarsConfig(
            globally=False, metric_calculations=False
        )
        _context = context
    return _context


def _in_part(expectation: dict[str, Any], part: str | None) -> bool:
    return part is None or _PARTS[part](expectation["type"])


# A group of expectations run together: WHOLE, or (row condition, its parser), where the
# condition "" is the group of expectations without one.
Group = tuple[str, str | None] | None
UNCONDITIONED: Group = ("", None)


def _condition(expectation: dict[str, Any]) -> Group:
    kwargs = expectation["kwargs"]
    if not kwargs.get("row_condition"):
        return UNCONDITIONED
    return kwargs["row_condition"], kwargs.get("condition_parser")


def _in_group(expectation: dict[str, Any], part: str | None, group: Group) -> bool:
    return _in_part(expectation, part) and (group is WHOLE or _condition(expectation) == group)


def _as_run(expectation: dict[str, Any], position: int, group: Group) -> dict[str, Any]:
    """An entry as GX runs it: its place in the file in its meta; in a condition's group, its
    condition taken off (the group's rows are the ones it selects)."""
    kwargs = expectation["kwargs"]
    if group not in (WHOLE, UNCONDITIONED):
        kwargs = {k: v for k, v in kwargs.items() if k not in ("row_condition", "condition_parser")}
    return {**expectation, "kwargs": kwargs, "meta": {**expectation["meta"], "position": position}}


def build_suite(table: str, directory: Traversable = EXPECTATIONS_DIR, part: str | None = None,
                group: Group = WHOLE):
    """The GX ExpectationSuite of a table, or of one part of it (`_PARTS`), or of one group of
    that (`validation_groups`); each entry's meta names its place in the file (entries GX
    cannot parse are dropped: count them)."""
    _quiet_gx()
    import great_expectations as gx

    document = load_suite_json(table, directory)
    return gx.ExpectationSuite(
        name=document.get("name", table),
        expectations=[
            _as_run(expectation, position, group)
            for position, expectation in enumerate(document["expectations"])
            if _in_group(expectation, part, group)
        ],
        meta=document.get("meta") or {},
    )


def _validation_definition(table: str, directory: Traversable = EXPECTATIONS_DIR, part: str | None = None,
                           group: Group = WHOLE):
    key = f"{directory}:{table}:{part}:{group}"
    with _lock:
        if key in _validation_definitions:
            return _validation_definitions[key]
        import great_expectations as gx

        context = _get_context()
        suite = build_suite(table, directory, part, group)
        expected = sum(_in_group(e, part, group) for e in load_suite_json(table, directory)["expectations"])
        if len(suite.expectations) != expected:
            raise ValueError(
                f"expectations/{table}.json: GX kept {len(suite.expectations)} of {expected} "
                "expectations (a malformed entry was dropped)"
            )
        name = f"staged_{table}_{len(_validation_definitions)}"
        suite = context.suites.add(
            gx.ExpectationSuite(name=name, expectations=suite.expectations, meta=suite.meta)
        )
        batch_definition = (
            context.data_sources.add_pandas(name)
            .add_dataframe_asset(name)
            .add_batch_definition_whole_dataframe(name)
        )
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch_definition, suite=suite)
        )
        _validation_definitions[key] = definition
        return definition


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if pd.isna(number) else number


def _prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """Nullable bools from Parquet arrive as object columns: GX means and conditions want bool."""
    prepared = frame.copy()
    for column in prepared.columns:
        values = prepared[column]
        # pandas' inference (compiled, stops at the first value of another kind) rules out
        # the columns of dates and the like before any value is looked at in Python
        if values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) == "boolean":
            present = values.dropna()
            if len(present) and present.map(lambda v: isinstance(v, bool)).all():
                prepared[column] = values.astype("boolean").astype("float64").where(values.notna())
    return prepared


def _label(kwargs: dict[str, Any]) -> str | None:
    """The column(s) an expectation is about, as the checks' metadata names them."""
    if kwargs.get("column"):
        return kwargs["column"]
    if kwargs.get("column_list"):
        return ",".join(kwargs["column_list"])
    if kwargs.get("column_A"):
        return f"{kwargs.get('column_A')}>{kwargs.get('column_B')}"
    return None


def _suite_result(table: str, rows: int, outcomes: list[ExpectationOutcome], directory: Traversable) -> SuiteResult:
    """Outcomes grouped into the suite's checks, each in the file's order (a check none of
    whose expectations ran is left out: a part of the suite was validated)."""
    checks = {
        info.name: CheckOutcome(info.name, info.severity, info.description)
        for info in check_specs(table, directory)
    }
    for outcome in sorted(outcomes, key=lambda o: o.position):
        checks[outcome.check].expectations.append(outcome)
    return SuiteResult(table, rows, [check for check in checks.values() if check.expectations])


def _release_batch(definition) -> None:
    """Drop the frame GX keeps after a run. The data source's execution engine holds the last
    batch (the prepared copy of the whole table) and the metrics computed on it until the same
    definition runs again, and the definitions are cached per process: without this a sync
    carried every staged table's copy into the resolution (at 100k persons nine frames, 84 MiB
    of columns and 62 MiB of Arrow's pool)."""
    engine = definition.batch_definition.data_asset.datasource.get_execution_engine()
    engine.batch_manager.reset_batch_cache()
    engine.batch_manager.batch_data_cache.clear()
    metric_cache = getattr(engine, "_metric_cache", None)
    if isinstance(metric_cache, dict):
        metric_cache.clear()


def _rows_where(prepared: pd.DataFrame, condition: str, parser: str | None) -> pd.DataFrame:
    """The rows a row condition selects, as GX's pandas engine selects them
    (`PandasExecutionEngine._apply_row_condition_filter`: pandas' `query`)."""
    return prepared.query(condition, parser=parser or "pandas")


def validation_groups(
    table: str, prepared: pd.DataFrame, directory: Traversable = EXPECTATIONS_DIR, part: str | None = None,
    split_rows: int = SPLIT_ROWS,
) -> list[tuple[Group, pd.DataFrame]]:
    """The GX runs that validate a `_prepare`d frame, each a group and the frame it runs on:
    the whole suite (or part) on the frame; on a frame of `split_rows` rows or more, each
    condition's group on the rows it selects and the unconditioned group on the frame, each
    with the columns its expectations read. A condition that selects no row keeps the suite
    whole (GX's verdicts on no rows are its own to make)."""
    whole = [(WHOLE, prepared)]
    entries = [entry for entry in load_suite_json(table, directory)["expectations"] if _in_part(entry, part)]
    if len(prepared) < split_rows or not all(map(_splittable, entries)):
        return whole
    groups = list(dict.fromkeys(_condition(entry) for entry in entries))
    if groups == [UNCONDITIONED]:
        return whole
    runs = []
    for group in groups:
        columns = list(dict.fromkeys(column for entry in entries if _condition(entry) == group
                                     for column in _entry_columns(table, entry)))
        if not set(columns) <= set(prepared.columns):
            return whole  # GX names what is missing, as in one run
        rows = prepared[columns]
        if group != UNCONDITIONED:
            try:
                rows = _rows_where(rows, *group)
            except Exception:  # noqa: BLE001 - a condition pandas cannot apply: GX reports it, in one run
                return whole
            if rows.empty:
                return whole
        runs.append((group, rows))
    return runs


def _splittable(expectation: dict[str, Any]) -> bool:
    """Whether the runner can select an entry's rows as GX would: it has no row condition,
    or one in pandas' query syntax (GX's other forms, and a missing parser, stay GX's)."""
    kwargs = expectation["kwargs"]
    condition = kwargs.get("row_condition")
    return not condition or (isinstance(condition, str) and kwargs.get("condition_parser") == "pandas")


def validate(
    table: str, frame: pd.DataFrame, directory: Traversable = EXPECTATIONS_DIR, part: str | None = None,
    split_rows: int = SPLIT_ROWS,
) -> SuiteResult:
    """Run the table's suite (or one part of it: `_PARTS`) over a staged frame."""
    entries = load_suite_json(table, directory)["expectations"]
    if frame.empty:
        # Nothing landed yet: every expectation holds vacuously (GX would fail the mean ones).
        vacuous = [
            ExpectationOutcome(
                check=entry["meta"]["check"], severity=entry["meta"]["severity"],
                expectation_type=entry["type"], column=_label(entry["kwargs"]), success=True,
                element_count=0, position=position,
            )
            for position, entry in enumerate(entries) if _in_part(entry, part)
        ]
        return _suite_result(table, 0, vacuous, directory)

    outcomes = []
    for group, rows in validation_groups(table, _prepare(frame), directory, part, split_rows):
        definition = _validation_definition(table, directory, part, group)
        with _lock:  # one GX context per process; validations of two tables must not interleave
            try:
                run = definition.run(batch_parameters={"dataframe": rows})
            finally:
                _release_batch(definition)
        outcomes.extend(_outcomes(run))
    return _suite_result(table, len(frame), outcomes, directory)


def _outcomes(run) -> list[ExpectationOutcome]:
    """A GX run's results as outcomes: counts and figures, an exception's text redacted."""
    outcomes = []
    for result in run.results:
        config = result.expectation_config
        meta = config.meta or {}
        details = result.result or {}
        exception = None
        info = getattr(result, "exception_info", None) or {}
        if isinstance(info, dict) and info.get("raised_exception"):
            # an exception text may quote a value: redact numbers and phones before it is shown
            from pipelines.privacy import redact

            exception = redact(str(info.get("exception_message") or "exception"))
        observed = details.get("observed_value")
        success = bool(result.success)
        if config.type == "expect_column_mean_to_be_between" and observed is None and not exception:
            # no row to average (its row_condition selected none): as for an empty frame,
            # nothing drifted; GX would fail it with no figure to show
            success = True
        outcomes.append(ExpectationOutcome(
            check=meta["check"],
            severity=meta["severity"],
            expectation_type=config.type,
            column=_label(config.kwargs),
            success=success,
            element_count=details.get("element_count"),
            unexpected_count=details.get("unexpected_count"),
            unexpected_percent=_number(details.get("unexpected_percent")),
            observed_value=_number(observed) if not isinstance(observed, (list, dict)) else None,
            exception=exception,
            missing_count=details.get("missing_count"),
            position=meta["position"],
        ))
    return outcomes


# -- carried across an incremental staging -------------------------------------------------


def row_tallies(result: SuiteResult, frame: pd.DataFrame | None = None,
                directory: Traversable = EXPECTATIONS_DIR) -> dict[str, list[int]] | None:
    """What the next incremental staging carries of a validation: for each expectation that
    counts rows (keyed by its place in the file), [rows in its domain, rows it skipped as
    missing, rows unexpected]; with the validated `frame`, the means of boolean columns too
    (`mean_tallies`). Counts of rows add up over rows, so a merged table's are the last
    table's, less the rows the merge took out, plus those it put in (uniqueness's unexpected
    rows aside: `validate_merged`). None when an expectation raised (there is no count to
    carry)."""
    tallies: dict[str, list[int]] = {}
    for check in result.checks:
        for outcome in check.expectations:
            if outcome.exception:
                return None
            if outcome.expectation_type == MEAN:
                continue
            tallies[str(outcome.position)] = [
                outcome.element_count or 0, outcome.missing_count or 0, outcome.unexpected_count or 0
            ]
    if frame is not None:
        tallies.update(mean_tallies(result.table, frame, directory))
    return tallies


def _mean_as_counts(table: str, entry: dict[str, Any]) -> bool:
    """Whether a merge carries this expectation as counts: a mean of a boolean column is its
    true values over its present ones, and both counts add up over rows (exactly: the mean
    of 0s and 1s GX takes is that very division). A mean of other numbers is taken again
    over the whole column."""
    if entry["type"] != MEAN:
        return False
    schema = arrow_schema(table)
    column = entry["kwargs"].get("column")
    return column in schema.names and pa.types.is_boolean(schema.field(column).type)


def mean_tallies(table: str, frame: pd.DataFrame, directory: Traversable = EXPECTATIONS_DIR) -> dict[str, list[int]]:
    """For each mean of a boolean column (`_mean_as_counts`), keyed by its place in the file:
    [rows of its domain with a value, of them true], counted over `frame` as GX reads it:
    `_prepare`d, then the row condition applied with pandas' `query`, as GX's pandas engine
    applies it (`PandasExecutionEngine._apply_row_condition_filter`)."""
    wanted = {position: entry for position, entry in enumerate(load_suite_json(table, directory)["expectations"])
              if _mean_as_counts(table, entry)}
    if not wanted:
        return {}
    columns = list(dict.fromkeys(column for entry in wanted.values() for column in _entry_columns(table, entry)))
    prepared = _prepare(frame[columns])
    tallies = {}
    for position, entry in wanted.items():
        kwargs = entry["kwargs"]
        domain = prepared
        if kwargs.get("row_condition"):
            domain = _rows_where(prepared, kwargs["row_condition"], kwargs.get("condition_parser"))
        values = domain[kwargs["column"]]
        tallies[str(position)] = [int(values.notna().sum()), int(values.sum())]
    return tallies


def _mean_from_counts(entry: dict[str, Any], position: int, present: int, trues: int) -> ExpectationOutcome:
    """A boolean column's mean and verdict from its counts, as GX makes them
    (`_validate_metric_value_between`); no value to average passes, as in `validate`."""
    kwargs, meta = entry["kwargs"], entry["meta"]
    observed = trues / present if present else None
    success = True
    if observed is not None:
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        above = low is None or (observed > low if kwargs.get("strict_min") else observed >= low)
        below = high is None or (observed < high if kwargs.get("strict_max") else observed <= high)
        success = above and below
    return ExpectationOutcome(
        check=meta["check"], severity=meta["severity"], expectation_type=MEAN, column=_label(kwargs),
        success=success, observed_value=observed, position=position,
    )


def _outcome_from_counts(entry: dict[str, Any], position: int, element: int, missing: int,
                         unexpected: int) -> ExpectationOutcome:
    """A row-by-row expectation's verdict and figures from its counts, as GX makes them
    (`_format_map_output`, `_mostly_success`; the null tests count every row as considered)."""
    kind, kwargs, meta = entry["type"], entry["kwargs"], entry["meta"]
    skips_missing = kind not in NULL_TESTS
    considered = element - missing if skips_missing else element
    mostly = kwargs.get("mostly", 1.0)
    vacuous = element == 0 or considered == 0
    return ExpectationOutcome(
        check=meta["check"],
        severity=meta["severity"],
        expectation_type=kind,
        column=_label(kwargs),
        success=vacuous or (float(considered) - float(unexpected)) / float(considered) >= mostly,
        element_count=element,
        unexpected_count=unexpected,
        unexpected_percent=None if vacuous else unexpected / considered * 100,
        missing_count=missing if skips_missing else None,
        position=position,
    )


class MergedTable(Protocol):
    """The table a merge wrote, read only as far as `validate_merged` asks."""

    rows: int  # how many

    def columns(self, names: list[str]) -> pd.DataFrame:
        """These columns of every row."""

    def rows_sharing(self, names: list[str], keys: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
        """`columns` of the rows whose `names` equal those of a row of `keys` (a missing value
        equals a missing value, as pandas' `duplicated` has it)."""


def validate_merged(
    table: str, tallies: dict[str, list[int]], removed: pd.DataFrame, added: pd.DataFrame,
    merged: MergedTable, directory: Traversable = EXPECTATIONS_DIR,
) -> tuple[SuiteResult, dict[str, list[int]]] | None:
    """The suite over a table merged from the last validated one, without reading its kept
    rows: every count from `tallies` (the last validation's `row_tallies`) less the `removed`
    rows' plus the `added` rows' (GX over those few rows; a boolean column's mean from its two
    counts, `mean_tallies`); a uniqueness's unexpected rows, when the last table held no
    repeated key, by GX over the added rows and the merged rows sharing their key (every
    repeat is among them), else over the key columns of the whole table; a mean of other
    numbers by GX over its column of the whole table. Returns the result and its
    tallies, or None when the counts cannot be carried (GX raised on a part, the tallies are
    not this suite's, a count would go negative): the caller then validates the whole table."""
    entries = load_suite_json(table, directory)["expectations"]
    taken_out = row_tallies(validate(table, removed, directory, COUNTED_PART), removed, directory)
    put_in = row_tallies(validate(table, added, directory, COUNTED_PART), added, directory)
    if taken_out is None or put_in is None or set(tallies) != set(put_in) or set(put_in) != set(taken_out):
        return None
    carried = {
        key: [last - out + new for last, out, new in zip(tallies[key], taken_out[key], put_in[key])]
        for key in tallies
    }
    if any(count < 0 for counts in carried.values() for count in counts):
        return None
    outcomes = []
    for key, counts in carried.items():
        entry = entries[int(key)]
        if entry["type"] == UNIQUENESS:
            none_repeated = tallies[key][2] == 0
            outcome = _merged_uniqueness(table, entry, int(key), none_repeated, added, merged, directory)
            if outcome.exception:
                return None
            if none_repeated:  # the carried domain; the repeats, all among the rows sharing an added key
                counts[2] = outcome.unexpected_count or 0
                outcome = _outcome_from_counts(entry, int(key), *counts)
            else:  # GX over the whole key columns: its counts are the table's
                carried[key] = [outcome.element_count or 0, outcome.missing_count or 0, outcome.unexpected_count or 0]
        elif entry["type"] == MEAN:
            outcome = _mean_from_counts(entry, int(key), *counts)
        else:
            outcome = _outcome_from_counts(entry, int(key), *counts)
        outcomes.append(outcome)
    if any(entry["type"] == MEAN and str(position) not in carried for position, entry in enumerate(entries)):
        # a mean of other numbers: over its whole column, with the other means
        means = validate(table, merged.columns(suite_columns(table, directory, MEANS_PART)), directory, MEANS_PART)
        outcomes = [o for o in outcomes if o.expectation_type != MEAN]
        outcomes += [outcome for check in means.checks for outcome in check.expectations]
    return _suite_result(table, merged.rows, outcomes, directory), carried


def _merged_uniqueness(table: str, entry: dict[str, Any], position: int, none_repeated_before: bool,
                       added: pd.DataFrame, merged: MergedTable, directory: Traversable) -> ExpectationOutcome:
    """GX's verdict on one uniqueness expectation: over the merged rows that share a key with
    an added row when the last table repeated none (its unexpected count is then the merged
    table's), else over its columns of the whole merged table."""
    names, columns = entry["kwargs"]["column_list"], _entry_columns(table, entry)
    frame = merged.rows_sharing(names, added[names], columns) if none_repeated_before else merged.columns(columns)
    if none_repeated_before and not frame.duplicated(subset=names, keep=False).any():
        # no key repeated among the only rows that could repeat one, even with a missing
        # value equal to a missing value: GX, which at most skips rows with missing values,
        # finds no repeat either (only this count is carried), and its run is spared
        return ExpectationOutcome(
            check=entry["meta"]["check"], severity=entry["meta"]["severity"], expectation_type=entry["type"],
            column=_label(entry["kwargs"]), success=True, unexpected_count=0, position=position)
    result = validate(table, frame, directory, KEYS_PART)
    return next(o for check in result.checks for o in check.expectations if o.position == position)


def _entry_columns(table: str, expectation: dict[str, Any]) -> list[str]:
    """The table's columns one expectation reads, its row condition's included."""
    kwargs = expectation["kwargs"]
    columns = [kwargs[key] for key in ("column", "column_A", "column_B") if kwargs.get(key)]
    columns.extend(kwargs.get("column_list") or [])
    # a row condition names columns too ('is_deleted==False', 'uscc.notna()')
    columns.extend(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", kwargs.get("row_condition") or ""))
    known = set(table_spec(table).column_names)
    return [column for column in dict.fromkeys(columns) if column in known]


def suite_columns(table: str, directory: Traversable = EXPECTATIONS_DIR, part: str | None = None) -> list[str]:
    """Columns the suite (or one part of it) reads: to load only those from a large staged file."""
    return list(dict.fromkeys(
        column for expectation in load_suite_json(table, directory)["expectations"]
        if _in_part(expectation, part) for column in _entry_columns(table, expectation)))
