"""After a merge, the suite's result is carried, and it is the whole file's.

An incremental staging (pipelines/staging/incremental.py) validates a table without reading
its kept rows: the row-by-row expectations from the last validation's counts, less the rows
the merge took out, plus those it put in; the table-wide ones (uniqueness, means) over the
whole table (`gx_runner.validate_merged`). Here every breaker of test_every_check_fails (one
small change a real source could cause, failing exactly one check) is applied as a merge
would apply it to the valid staged frames, and the carried result must equal Great
Expectations over the whole changed frame: every verdict, count, share and observed figure.
"""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.quality import gx_runner
from tests.quality.test_every_check_fails import BREAKERS, staged  # noqa: F401  (the fixture)


def outcomes(result: gx_runner.SuiteResult) -> list:
    return [(check.name, check.severity, check.passed, check.metadata()) for check in result.checks]


def as_merged(before: pd.DataFrame, after: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows a merge from `before` to `after` takes out and puts in (rows are told apart by
    their index: a row kept is one with the same index and values in both)."""
    common = before.index.intersection(after.index)
    same = pd.Series(False, index=before.index)
    for row in common:
        same[row] = before.loc[[row]].reset_index(drop=True).equals(after.loc[[row]].reset_index(drop=True))
    kept = same[same].index
    return before.drop(index=kept), after.drop(index=kept)


def carried(table: str, before: pd.DataFrame, after: pd.DataFrame) -> gx_runner.SuiteResult:
    tallies = gx_runner.row_tallies(gx_runner.validate(table, before))
    removed, added = as_merged(before, after)
    table_wide = after[gx_runner.suite_columns(table, part=gx_runner.TABLE_PART)]
    result, merged_tallies = gx_runner.validate_merged(table, tallies, removed, added, table_wide)
    # the counts carried on are the ones a whole validation makes
    assert merged_tallies == gx_runner.row_tallies(gx_runner.validate(table, after))
    return result


@pytest.mark.parametrize("breaker", [pytest.param(b, id=f"{b.table}.{b.check}") for b in BREAKERS])
def test_a_carried_result_is_the_whole_files(staged, breaker):  # noqa: F811
    before = staged[breaker.table].reset_index(drop=True)
    after = before.copy()
    breaker.mutate(after)
    whole = gx_runner.validate(breaker.table, after)
    assert whole.failed() == [breaker.check]  # the breaker still breaks (its own test's premise)

    assert outcomes(carried(breaker.table, before, after)) == outcomes(whole)
    # and back: the source corrects the row, the next merge finds the table valid again
    assert outcomes(carried(breaker.table, after, before)) == outcomes(gx_runner.validate(breaker.table, before))


def test_a_merge_that_empties_a_domain_is_vacuous_as_gx_says(staged):  # noqa: F811
    # every live service deleted at the source: the hours' domain (is_deleted == False) is empty
    before = staged["services"].reset_index(drop=True)
    after = before.assign(is_deleted=True)
    assert outcomes(carried("services", before, after)) == outcomes(gx_runner.validate("services", after))


def test_counts_that_are_not_this_suites_are_not_carried(staged):  # noqa: F811
    frame = staged["volunteers"]
    tallies = gx_runner.row_tallies(gx_runner.validate("volunteers", frame))
    table_wide = frame[gx_runner.suite_columns("volunteers", part=gx_runner.TABLE_PART)]
    some = frame.iloc[:2]
    # another suite's positions, or a row taken out that the counts never held
    assert gx_runner.validate_merged("volunteers", {"999": [1, 0, 0]}, some, some, table_wide) is None
    emptied = {key: [0, 0, 0] for key in tallies}
    assert gx_runner.validate_merged("volunteers", emptied, frame, frame.iloc[:0], table_wide) is None
