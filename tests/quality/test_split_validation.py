"""A large frame is validated in groups, and the groups' outcomes are the whole suite's.

On a frame of `gx_runner.SPLIT_ROWS` rows or more, the expectations under a row condition
run on the rows the condition selects (selected once, by the query GX's pandas engine would
run for each of their metrics), and the others on their own columns (`validation_groups`).
Here the split is forced on the small staged frames of test_every_check_fails, valid and
with each breaker applied, and every expectation's outcome (verdict, counts, share, observed
figure) must be the one GX gives for the whole suite in one run.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pipelines.quality import gx_runner
from pipelines.schemas import table_names
from tests.quality.test_every_check_fails import BREAKERS, staged  # noqa: F401  (the fixture)

# every table whose suite has an expectation under a row condition (all of them today)
CONDITIONED_TABLES = [table for table in table_names() if any(
    entry["kwargs"].get("row_condition") for entry in gx_runner.load_suite_json(table)["expectations"])]


def expectation_outcomes(result: gx_runner.SuiteResult) -> list[gx_runner.ExpectationOutcome]:
    return [outcome for check in result.checks for outcome in check.expectations]


def split_and_whole(table: str, frame: pd.DataFrame) -> tuple[gx_runner.SuiteResult, gx_runner.SuiteResult]:
    return (gx_runner.validate(table, frame, split_rows=0),
            gx_runner.validate(table, frame, split_rows=len(frame) + 1))


@pytest.mark.parametrize("table", CONDITIONED_TABLES)
def test_a_valid_frame_is_split_by_condition(staged, table):  # noqa: F811
    frame = staged[table]
    groups = gx_runner.validation_groups(table, gx_runner._prepare(frame), split_rows=0)
    # the unconditioned expectations and at least one condition's: two runs or more
    assert len(groups) >= 2 and gx_runner.WHOLE not in [group for group, _ in groups]
    for group, rows in groups:
        if group != gx_runner.UNCONDITIONED:
            assert len(rows) == len(gx_runner._rows_where(gx_runner._prepare(frame), *group))
    split, whole = split_and_whole(table, frame)
    assert expectation_outcomes(split) == expectation_outcomes(whole)


@pytest.mark.parametrize("breaker", [pytest.param(b, id=f"{b.table}.{b.check}") for b in BREAKERS])
def test_a_broken_frame_gets_the_same_verdicts_split(staged, breaker):  # noqa: F811
    frame = staged[breaker.table].reset_index(drop=True)
    breaker.mutate(frame)
    split, whole = split_and_whole(breaker.table, frame)
    assert whole.failed() == [breaker.check]  # the breaker still breaks
    assert expectation_outcomes(split) == expectation_outcomes(whole)


def test_rows_outside_the_condition_do_not_count(staged):  # noqa: F811
    frame = staged["services"].reset_index(drop=True)
    # two services without hours: one deleted (outside `is_deleted==False`), one live
    frame.loc[0, ["hours", "is_deleted"]] = [None, True]
    frame.loc[1, "hours"] = None
    split, whole = split_and_whole("services", frame)
    hours = [o for o in expectation_outcomes(split)
             if o.expectation_type == "expect_column_values_to_not_be_null" and o.column == "hours"]
    live = int((~frame["is_deleted"].astype(bool)).sum())
    assert live < len(frame) - 1  # the row made deleted, and another deleted already
    assert [(o.element_count, o.unexpected_count) for o in hours] == [(live, 1)]
    assert expectation_outcomes(split) == expectation_outcomes(whole)


def test_a_condition_that_selects_nothing_keeps_the_suite_whole(staged):  # noqa: F811
    frame = staged["services"].assign(is_deleted=True)  # every service deleted at the source
    groups = gx_runner.validation_groups("services", gx_runner._prepare(frame), split_rows=0)
    assert [group for group, _ in groups] == [gx_runner.WHOLE]
    split, whole = split_and_whole("services", frame)
    assert expectation_outcomes(split) == expectation_outcomes(whole)


def test_a_small_frame_runs_whole(staged):  # noqa: F811
    frame = staged["services"]
    assert len(frame) < gx_runner.SPLIT_ROWS
    groups = gx_runner.validation_groups("services", gx_runner._prepare(frame))
    assert [group for group, _ in groups] == [gx_runner.WHOLE]


def test_a_condition_without_pandas_parser_stays_gxs(staged, tmp_path):  # noqa: F811
    # GX refuses a string condition without `condition_parser: pandas`: that verdict is its own
    document = gx_runner.load_suite_json("services")
    entries = [dict(entry, kwargs={k: v for k, v in entry["kwargs"].items() if k != "condition_parser"})
               for entry in document["expectations"]]
    (tmp_path / "services.json").write_text(json.dumps(dict(document, expectations=entries)), encoding="utf-8")
    groups = gx_runner.validation_groups("services", gx_runner._prepare(staged["services"]), tmp_path, split_rows=0)
    assert [group for group, _ in groups] == [gx_runner.WHOLE]


def test_a_missing_column_fails_as_in_one_run(staged):  # noqa: F811
    frame = staged["services"].drop(columns=["hours"])
    groups = gx_runner.validation_groups("services", gx_runner._prepare(frame), split_rows=0)
    assert [group for group, _ in groups] == [gx_runner.WHOLE]
    split, whole = split_and_whole("services", frame)
    assert [o.success for o in expectation_outcomes(split) if o.column == "hours"] == [False, False]
    assert expectation_outcomes(split) == expectation_outcomes(whole)
