"""The staged table's Great Expectations suite, carried across a merge.

After a full staging the suite runs over the whole file. After a merge (incremental.py) the
counts are carried from the last validation's (`row_tallies`, kept in the staging's reuse
record), less the rows the merge took out, plus those it put in; uniqueness reads the rows
that share a key with a row put in (while the last table repeated no key, every repeat is
among them), and a boolean column's mean is its true rows over its present ones, two more
counts (`gx_runner.validate_merged`; a mean of other numbers would read its whole column):
the same result as validating the whole file (tests/quality/test_carried_validation.py), at the cost
of the rows that changed and a join of their keys. The counts are the last staging's, made
by the same code and suite: a merge requires both unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines import duck
from pipelines.config import Settings
from pipelines.quality import gx_runner
from pipelines.schemas import arrow_schema
from pipelines.sql import quote
from pipelines.staging.tables import StagedResult, read_staged, staged_path


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
        merged = gx_runner.validate_merged(table, carried, removed, added, _StagedFile(settings, table))
        if merged is not None:
            return Validation(*merged, rows_judged=len(removed) + len(added))
    frame = read_staged(settings, table, columns=gx_runner.suite_columns(table))
    suite = gx_runner.validate(table, frame)
    return Validation(suite, gx_runner.row_tallies(suite, frame), rows_judged=len(frame))


class _StagedFile:
    """The staged file a merge wrote, as `gx_runner.validate_merged` reads it."""

    def __init__(self, settings: Settings, table: str):
        self.settings, self.table = settings, table
        self.path = staged_path(settings, table)
        self.rows = pq.read_metadata(self.path).num_rows

    def columns(self, names: list[str]) -> pd.DataFrame:
        return read_staged(self.settings, self.table, columns=names)

    def rows_sharing(self, names: list[str], keys: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
        schema = arrow_schema(self.table)
        con = duck.connect()
        try:
            con.register("keys", pa.Table.from_pandas(
                keys[names], schema=pa.schema([schema.field(n) for n in names]), preserve_index=False))
            same = " AND ".join(f"s.{quote(n)} IS NOT DISTINCT FROM k.{quote(n)}" for n in names)
            rows = con.sql(f"""SELECT {', '.join('s.' + quote(c) for c in columns)}
                               FROM read_parquet($path) s SEMI JOIN keys k ON {same}""",
                           params={"path": [str(self.path)]}).to_arrow_table()
        finally:
            con.close()
        return rows.cast(pa.schema([schema.field(c) for c in columns])).to_pandas()
