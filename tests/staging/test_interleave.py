"""The merge's splice of kept and restaged rows (`_interleaved`), checked directly against
its definition: row i of the output is new[position[i]] where is_new[i], else
old[position[i]], for every mix of runs and every batch size."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.staging.incremental import _Forward, _interleaved

SCHEMA = pa.schema([("id", pa.string()), ("hours", pa.float64())])


def _merge_plan(rng: np.random.Generator, old_rows: int, new_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """A merge's (is_new, position): old rows kept in order (some left out), new rows placed
    anywhere among them, in any order of their own."""
    kept = np.sort(rng.choice(old_rows, size=old_rows - old_rows // 5, replace=False))
    is_new = rng.permutation(np.repeat([False, True], [len(kept), new_rows]))
    position = np.empty(len(is_new), "int64")
    position[~is_new] = kept
    position[is_new] = rng.permutation(new_rows)
    return is_new, position


@pytest.mark.parametrize("batch_rows", [1, 3, 7, 64, 1000])
@pytest.mark.parametrize("new_rows", [0, 1, 40])
def test_the_splice_takes_each_row_from_where_the_plan_says(tmp_path, batch_rows, new_rows):
    rng = np.random.default_rng(batch_rows * 100 + new_rows)
    old = pa.table({"id": [f"old-{i}" for i in range(200)], "hours": np.arange(200) / 4}, schema=SCHEMA)
    pq.write_table(old, tmp_path / "old.parquet", row_group_size=17)
    # the restaged rows come as the staging makes them: a different column order and types
    new = pa.table({"hours": pa.array(np.arange(new_rows) + 0.5), "id": [f"new-{i}" for i in range(new_rows)]})
    is_new, position = _merge_plan(rng, old.num_rows, new_rows)

    merged = pa.concat_tables(list(_interleaved(
        _Forward(tmp_path / "old.parquet", batch_rows, SCHEMA), new.select(SCHEMA.names), is_new, position, batch_rows,
    )))

    expected = [f"new-{p}" if fresh else f"old-{p}" for fresh, p in zip(is_new.tolist(), position.tolist())]
    assert merged.schema == SCHEMA
    assert merged["id"].to_pylist() == expected
    assert merged["hours"].to_pylist() == [
        p + 0.5 if fresh else p / 4 for fresh, p in zip(is_new.tolist(), position.tolist())
    ]


@pytest.mark.parametrize("batch_rows", [1, 7, 64, 1000])
def test_the_rows_left_out_are_gathered_in_the_same_read(tmp_path, batch_rows):
    """The previous file's rows a merge does not keep come out of the read that copies the
    kept ones, in file order, whatever the batches; the rows past the last kept one too."""
    rng = np.random.default_rng(batch_rows)
    old = pa.table({"id": [f"old-{i}" for i in range(200)], "hours": np.arange(200) / 4}, schema=SCHEMA)
    pq.write_table(old, tmp_path / "old.parquet", row_group_size=17)
    is_new, position = _merge_plan(rng, old.num_rows, 5)
    kept = position[~is_new]
    kept = kept[kept < 150]  # the last rows of the file are all left out
    left_out = np.ones(old.num_rows, dtype=bool)
    left_out[kept] = False
    reader = _Forward(tmp_path / "old.parquet", batch_rows, SCHEMA, left_out=left_out, columns_left_out=["id"])
    taken = pa.concat_tables(list(_interleaved(reader, SCHEMA.empty_table(), np.zeros(len(kept), bool), kept,
                                               batch_rows)))

    assert taken["id"].to_pylist() == [f"old-{p}" for p in kept]
    gathered = reader.left_out()
    assert gathered.column_names == ["id"]
    assert gathered["id"].to_pylist() == [f"old-{p}" for p in np.flatnonzero(left_out)]
