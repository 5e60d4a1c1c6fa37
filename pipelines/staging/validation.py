"""The staged table's Great Expectations suite, carried across a merge.

After a full staging the suite runs over the whole file. After a merge (incremental.py) the
row-by-row expectations are carried from the last validation's counts (`row_tallies`, kept in
the staging's reuse record), less the rows the merge took out, plus those it put in, and only
the table-wide ones (uniqueness, means) read the whole file, their columns alone
(`gx_runner.validate_merged`): the same result as validating the whole file
(tests/quality/test_carried_validation.py), at the cost of the rows that changed. The counts
are the last staging's, made by the same code and suite: a merge requires both unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.config import Settings
from pipelines.quality import gx_runner
from pipelines.staging.tables import StagedResult, read_staged


@dataclass
class Validation:
    suite: gx_runner.SuiteResult
    tallies: dict[str, list[int]] | None  # what the next merge carries (None: nothing to carry)
    rows_judged: int  # rows GX judged one by one: the whole table, or the rows a merge changed


def validate_staged(table: str, settings: Settings, result: StagedResult,
                    carried: dict[str, list[int]] | None) -> Validation:
    """The suite over the staged file `result` wrote: carried when it is a merge and the last
    validation's counts are there, else over the whole file."""
    if result.incremental and carried and result.removed_rows is not None:
        removed, added = result.removed_rows.to_pandas(), result.added_rows.to_pandas()
        whole = read_staged(settings, table, columns=gx_runner.suite_columns(table, part=gx_runner.TABLE_PART))
        merged = gx_runner.validate_merged(table, carried, removed, added, whole)
        if merged is not None:
            return Validation(*merged, rows_judged=len(removed) + len(added))
    frame = read_staged(settings, table, columns=gx_runner.suite_columns(table))
    suite = gx_runner.validate(table, frame)
    return Validation(suite, gx_runner.row_tallies(suite), rows_judged=len(frame))
