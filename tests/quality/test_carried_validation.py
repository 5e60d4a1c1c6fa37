"""After a merge, the suite's result is carried, and it is the whole file's.

An incremental staging (pipelines/staging/incremental.py) validates a table without reading
its kept rows: the counts from the last validation's, less the rows the merge took out, plus
those it put in; uniqueness over the rows sharing a key with a row put in (or the whole key
columns, when the last table repeated a key); a boolean column's mean from its true and present
rows, counted like the rest (a mean of other numbers over its whole column)
(`gx_runner.validate_merged`). Here every breaker of test_every_check_fails (one small change
a real source could cause, failing exactly one check) is applied as a merge would apply it
to the valid staged frames, and the carried result must equal Great Expectations over the
whole changed frame: every verdict, count, share and observed figure. The staged file's
reader of the rows sharing a key (DuckDB over Parquet) is held to pandas' reading here too.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pipelines.files import private_dir, write_parquet
from pipelines.quality import gx_runner
from pipelines.schemas import arrow_schema
from pipelines.staging import staged_path
from pipelines.staging.validation import _StagedFile
from tests.quality.test_every_check_fails import BREAKERS, put, staged  # noqa: F401  (the fixture)
from tests.staging.rawpages import settings_for


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


class MergedFrame:
    """A merged table held as a frame (`gx_runner.MergedTable`); it counts the rows read."""

    def __init__(self, frame: pd.DataFrame):
        self.frame, self.rows, self.rows_read = frame, len(frame), 0

    def columns(self, names: list[str]) -> pd.DataFrame:
        self.rows_read += len(self.frame)
        return self.frame[names]

    def rows_sharing(self, names: list[str], keys: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
        # pandas' `duplicated` has a missing value equal a missing value: so has `isin`
        wanted = pd.MultiIndex.from_frame(keys[names].drop_duplicates())
        sharing = self.frame[pd.MultiIndex.from_frame(self.frame[names]).isin(wanted)]
        self.rows_read += len(sharing)
        return sharing[columns]


def tallies_of(table: str, frame: pd.DataFrame, directory=gx_runner.EXPECTATIONS_DIR) -> dict[str, list[int]]:
    """What a whole validation of `frame` leaves for the next merge."""
    return gx_runner.row_tallies(gx_runner.validate(table, frame, directory), frame, directory)


def carried(table: str, before: pd.DataFrame, after: pd.DataFrame) -> gx_runner.SuiteResult:
    removed, added = as_merged(before, after)
    result, merged_tallies = gx_runner.validate_merged(table, tallies_of(table, before), removed, added,
                                                       MergedFrame(after))
    # the counts carried on are the ones a whole validation makes
    assert merged_tallies == tallies_of(table, after)
    return result


@pytest.fixture(scope="module")
def valid_validations(staged):  # noqa: F811
    """Each valid staged table with its whole validation and tallies, made once for all breakers."""
    made = {}
    for table, frame in staged.items():
        frame = frame.reset_index(drop=True)
        result = gx_runner.validate(table, frame)
        made[table] = (frame, result, gx_runner.row_tallies(result, frame))
    return made


@pytest.mark.parametrize("breaker", [pytest.param(b, id=f"{b.table}.{b.check}") for b in BREAKERS])
def test_a_carried_result_is_the_whole_files(valid_validations, breaker):
    before, before_whole, before_tallies = valid_validations[breaker.table]
    after = before.copy()
    breaker.mutate(after)
    whole = gx_runner.validate(breaker.table, after)
    assert whole.failed() == [breaker.check]  # the breaker still breaks (its own test's premise)
    whole_tallies = gx_runner.row_tallies(whole, after)

    result, tallies = gx_runner.validate_merged(breaker.table, before_tallies, *as_merged(before, after),
                                                MergedFrame(after))
    assert outcomes(result) == outcomes(whole)
    assert tallies == whole_tallies  # the counts carried on are the ones a whole validation makes
    # and back: the source corrects the row, the next merge finds the table valid again
    result, tallies = gx_runner.validate_merged(breaker.table, whole_tallies, *as_merged(after, before),
                                                MergedFrame(before))
    assert outcomes(result) == outcomes(before_whole)
    assert tallies == before_tallies


def test_a_merge_that_empties_a_domain_is_vacuous_as_gx_says(staged):  # noqa: F811
    # every live service deleted at the source: the hours' domain (is_deleted == False) is empty
    before = staged["services"].reset_index(drop=True)
    after = before.assign(is_deleted=True)
    assert outcomes(carried("services", before, after)) == outcomes(gx_runner.validate("services", after))


def test_counts_that_are_not_this_suites_are_not_carried(staged):  # noqa: F811
    frame = staged["volunteers"]
    tallies = tallies_of("volunteers", frame)
    some = frame.iloc[:2]
    # another suite's positions, or a row taken out that the counts never held
    assert gx_runner.validate_merged("volunteers", {"999": [1, 0, 0]}, some, some, MergedFrame(frame)) is None
    emptied = {key: [0] * len(counts) for key, counts in tallies.items()}
    assert gx_runner.validate_merged("volunteers", emptied, frame, frame.iloc[:0], MergedFrame(frame)) is None


def test_uniqueness_reads_the_rows_sharing_a_key_with_a_row_put_in(staged):  # noqa: F811
    before = staged["projects"].reset_index(drop=True)  # a suite without means: no whole column read
    renamed = before.copy()
    put("provincial/2", source_id="1")(renamed)  # the re-sent activity repeats activity 1's key
    merged = MergedFrame(renamed)
    result, _ = gx_runner.validate_merged(
        "projects", tallies_of("projects", before), *as_merged(before, renamed), merged)
    assert result.failed() == ["key_unique"]
    assert merged.rows_read == 2  # the row put in and the kept one it repeats, of 10

    # once the table repeats a key, the next merge reads the whole key columns
    merged = MergedFrame(before)
    result, _ = gx_runner.validate_merged(
        "projects", tallies_of("projects", renamed), *as_merged(renamed, before), merged)
    assert result.failed() == [] and merged.rows_read == len(before)


def test_a_boolean_means_share_is_carried_without_reading_its_column(staged):  # noqa: F811
    # volunteers: four means of boolean columns (one under a row condition), carried as counts
    before = staged["volunteers"].reset_index(drop=True)
    after = before.copy()
    put("national/V0001", cert_masked=True, phone_masked=True)(after)
    merged = MergedFrame(after)
    removed, added = as_merged(before, after)
    result, tallies = gx_runner.validate_merged("volunteers", tallies_of("volunteers", before), removed, added,
                                                merged)
    assert outcomes(result) == outcomes(gx_runner.validate("volunteers", after))
    assert tallies == tallies_of("volunteers", after)
    assert merged.rows_read == 1  # the changed row's key, for uniqueness: no whole column
    means = [o for check in result.checks for o in check.expectations if o.expectation_type == gx_runner.MEAN]
    assert len(means) == 4 and all(o.observed_value is not None for o in means)


def test_a_mean_of_other_numbers_is_taken_over_its_whole_column(staged, tmp_path):  # noqa: F811
    # a suite with a mean of hours (not a boolean: no exact count to carry) beside the share
    document = gx_runner.load_suite_json("services")
    hours_mean = {"type": gx_runner.MEAN, "kwargs": {"column": "hours", "min_value": 1.0, "max_value": 8.0},
                  "meta": {"severity": "warning", "check": "effective_share"}}
    (tmp_path / "services.json").write_text(
        json.dumps({**document, "expectations": [*document["expectations"], hours_mean]}), encoding="utf-8")
    before = staged["services"].reset_index(drop=True)
    after = before.copy()
    put("national/R2", hours=20.0, is_effective=False)(after)
    merged = MergedFrame(after)
    result, _ = gx_runner.validate_merged("services", tallies_of("services", before, tmp_path),
                                          *as_merged(before, after), merged, tmp_path)
    assert outcomes(result) == outcomes(gx_runner.validate("services", after, tmp_path))
    assert merged.rows_read >= len(after)  # the hours column, whole


def test_the_staged_file_finds_the_rows_sharing_a_key_as_pandas_does(staged, tmp_path):  # noqa: F811
    settings = settings_for(tmp_path / "data")
    frame = staged["projects"].reset_index(drop=True)
    # a missing id is a key too, equal to another missing id (pandas' `duplicated`)
    frame.loc[[0, 3], "source_id"] = None
    private_dir(staged_path(settings, "projects").parent)
    write_parquet(staged_path(settings, "projects"), frame, arrow_schema("projects"))
    names, columns = ["source", "source_id"], ["source", "source_id", "status"]
    keys = frame.loc[[0, 5]].assign(status="ignored")  # the keys alone decide

    found = _StagedFile(settings, "projects").rows_sharing(names, keys[names], columns)
    expected = MergedFrame(frame).rows_sharing(names, keys, columns)
    assert len(expected) == 3  # rows 0, 3 (both missing ids of one source) and 5
    sort = ["source", "source_id"]
    assert found.sort_values(sort, na_position="first").reset_index(drop=True).equals(
        expected.sort_values(sort, na_position="first").reset_index(drop=True))
    assert _StagedFile(settings, "projects").rows == len(frame)


def test_two_rows_put_in_without_an_id_are_judged_by_gx(staged, monkeypatch):  # noqa: F811
    """Rows put in whose keys repeat only if a missing id equals a missing id: the merge does
    not decide that alone, GX does, and the verdict is the whole file's. With no repeat at all
    among the rows sharing a key, no GX run is needed for the keys."""
    before = staged["projects"].reset_index(drop=True)
    after = before.copy()
    after.loc[[0, 3], "source_id"] = None
    assert after.loc[0, "source"] == after.loc[3, "source"]
    runs = []
    validate = gx_runner.validate

    def counted(*args, **kwargs):
        runs.append(args[3] if len(args) > 3 else kwargs.get("part"))
        return validate(*args, **kwargs)

    monkeypatch.setattr(gx_runner, "validate", counted)
    assert outcomes(carried("projects", before, after)) == outcomes(validate("projects", after))
    assert gx_runner.KEYS_PART in runs

    runs.clear()
    changed = before.copy()
    changed.loc[2, "name"] = "改名的活动"
    assert outcomes(carried("projects", before, changed)) == outcomes(validate("projects", changed))
    assert gx_runner.KEYS_PART not in runs
