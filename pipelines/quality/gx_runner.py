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
from typing import Any

import pandas as pd

from pipelines.schemas import table_spec

EXPECTATIONS_DIR = files("expectations")  # a package: found wherever it was installed
SEVERITIES = ("blocking", "warning")

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


def build_suite(table: str, directory: Traversable = EXPECTATIONS_DIR):
    """The GX ExpectationSuite of a table (entries GX cannot parse are dropped: count them)."""
    _quiet_gx()
    import great_expectations as gx

    document = load_suite_json(table, directory)
    return gx.ExpectationSuite(
        name=document.get("name", table),
        expectations=[dict(expectation) for expectation in document["expectations"]],
        meta=document.get("meta") or {},
    )


def _validation_definition(table: str, directory: Traversable = EXPECTATIONS_DIR):
    key = f"{directory}:{table}"
    with _lock:
        if key in _validation_definitions:
            return _validation_definitions[key]
        import great_expectations as gx

        context = _get_context()
        suite = build_suite(table, directory)
        expected = len(load_suite_json(table, directory)["expectations"])
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
        if values.dtype == object:
            present = values.dropna()
            if len(present) and present.map(lambda v: isinstance(v, bool)).all():
                prepared[column] = values.astype("boolean").astype("float64").where(values.notna())
    return prepared


def _release_batch(definition) -> None:
    """Drop the frame GX keeps after a run. The data source's execution engine holds the last
    batch (the prepared copy of the whole table) and the metrics computed on it until the same
    definition runs again, and the definitions are cached per process: without this a sync
    carried every staged table's copy into the resolution (~85 MiB at 100k persons, some
    0.9 GiB at 1M: services and volunteers whole)."""
    engine = definition.batch_definition.data_asset.datasource.get_execution_engine()
    engine.batch_manager.reset_batch_cache()
    engine.batch_manager.batch_data_cache.clear()
    metric_cache = getattr(engine, "_metric_cache", None)
    if isinstance(metric_cache, dict):
        metric_cache.clear()


def validate(table: str, frame: pd.DataFrame, directory: Traversable = EXPECTATIONS_DIR) -> SuiteResult:
    """Run the table's suite over a staged frame."""
    infos = {info.name: info for info in check_specs(table, directory)}
    outcomes = {
        name: CheckOutcome(name, info.severity, info.description) for name, info in infos.items()
    }
    if frame.empty:
        # Nothing landed yet: every expectation holds vacuously (GX would fail the mean ones).
        for expectation in load_suite_json(table, directory)["expectations"]:
            meta = expectation["meta"]
            outcomes[meta["check"]].expectations.append(
                ExpectationOutcome(
                    check=meta["check"],
                    severity=meta["severity"],
                    expectation_type=expectation["type"],
                    column=expectation["kwargs"].get("column"),
                    success=True,
                    element_count=0,
                )
            )
        return SuiteResult(table, 0, list(outcomes.values()))

    definition = _validation_definition(table, directory)
    with _lock:  # one GX context per process; validations of two tables must not interleave
        try:
            run = definition.run(batch_parameters={"dataframe": _prepare(frame)})
        finally:
            _release_batch(definition)
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
        outcome = ExpectationOutcome(
            check=meta["check"],
            severity=meta["severity"],
            expectation_type=config.type,
            column=config.kwargs.get("column")
            or ",".join(config.kwargs.get("column_list", []) or [])
            or (
                f"{config.kwargs.get('column_A')}>{config.kwargs.get('column_B')}"
                if config.kwargs.get("column_A")
                else None
            ),
            success=success,
            element_count=details.get("element_count"),
            unexpected_count=details.get("unexpected_count"),
            unexpected_percent=_number(details.get("unexpected_percent")),
            observed_value=_number(observed) if not isinstance(observed, (list, dict)) else None,
            exception=exception,
        )
        outcomes[outcome.check].expectations.append(outcome)
    return SuiteResult(table, len(frame), list(outcomes.values()))


def suite_columns(table: str, directory: Traversable = EXPECTATIONS_DIR) -> list[str]:
    """Columns the suite reads (to load only those from a large staged file)."""
    columns: list[str] = []
    for expectation in load_suite_json(table, directory)["expectations"]:
        kwargs = expectation["kwargs"]
        for key in ("column", "column_A", "column_B"):
            if kwargs.get(key):
                columns.append(kwargs[key])
        columns.extend(kwargs.get("column_list") or [])
        # a row condition names columns too ('is_deleted==False', 'uscc.notna()')
        columns.extend(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", kwargs.get("row_condition") or ""))
    known = set(table_spec(table).column_names)
    return [column for column in dict.fromkeys(columns) if column in known]
