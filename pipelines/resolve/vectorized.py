"""Column operations that pandas 3 does per row on Arrow-backed strings, done in one call each.

At provincial scale (millions of service records) these were most of the resolution's time:
- `Series.isin` on a pandas 3 string column boxes every allowed value into a pyarrow scalar
  in Python before its (fast) Arrow lookup: `is_in` hands Arrow the allowed values as one
  array (a large set of them to a DuckDB semi join: see JOIN_FROM_ALLOWED);
- the opaque service and project keys hashed one Python call per row: `hashed_keys` lets
  DuckDB's sha256 hash the whole column (same text, same digest as keys.hashed_key);
- `Series.map` over a string index converts and hashes the whole index at every call:
  `mapped` finds the keys' positions with one DuckDB join.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.arrays import NumpyExtensionArray

from pipelines import duck


def as_string_array(values: Iterable) -> pa.Array:
    """String-like values (a Series, an Index, a set, a list) as one Arrow text array, missing
    values null: what DuckDB joins and Arrow lookups take."""
    if isinstance(values, (pd.Series, pd.Index)):
        values = values.astype("string")
    elif isinstance(values, (set, frozenset)):
        values = pd.array(list(values), dtype="string")
    array = pa.array(values, from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array.cast(pa.large_string())


# from this many allowed values on, `is_in` asks DuckDB (a semi join, its hash table built in
# parallel) rather than Arrow (which hashes the allowed values on one thread): 0.19 s against
# 0.31-0.63 s for 785k service ids among 2.1M, 0.13 against 0.37 s for 40k among 4M; below it
# a DuckDB connection's start alone (~25 ms) costs more (236k ids among 54k: 0.05 s against 0.02)
JOIN_FROM_ALLOWED = 500_000


def is_in(values: pd.Series, allowed: Iterable) -> np.ndarray:
    """`values.isin(allowed)` as a boolean array, for string-like values.

    Same answers as pandas: values compare as strings, and a missing value is in `allowed`
    only when `allowed` holds a missing value too.
    """
    haystack = as_string_array(allowed)
    if not len(values) or not len(haystack):
        return np.zeros(len(values), dtype=bool)
    needles = as_string_array(values)
    if len(haystack) < JOIN_FROM_ALLOWED:
        found = pc.is_in(needles, value_set=haystack, skip_nulls=False)
        return found.to_numpy(zero_copy_only=False).astype(bool)
    con = duck.scratch()
    try:
        con.register("wanted", pa.table({"value": needles, "row_at": np.arange(len(needles))}))
        con.register("allowed", pa.table({"value": haystack}))
        rows = con.execute("SELECT row_at FROM wanted SEMI JOIN allowed USING (value)").fetchnumpy()["row_at"]
    finally:
        con.close()
    found = np.zeros(len(needles), dtype=bool)
    found[rows] = True
    if haystack.null_count:  # a join never matches a missing value: pandas' isin does
        found |= needles.is_null().to_numpy(zero_copy_only=False)
    return found


def positions(keys: pd.Series, index: pd.Series | pd.Index) -> np.ndarray:
    """Where each key is in `index` (string-like, unique), -1 where it is not or is missing:
    one DuckDB hash join, built on the smaller side (Arrow's `index_in` hashed the whole index
    at every call: 2.9 s against the join's 0.7 s for 4M keys among 8.7M records)."""
    at = np.full(len(keys), -1, dtype="int64")
    if not len(keys) or not len(index):
        return at
    con = duck.scratch()
    try:
        con.register("wanted", pa.table({"key": as_string_array(keys), "row_at": np.arange(len(keys))}))
        con.register("known", pa.table({"key": as_string_array(index), "index_at": np.arange(len(index))}))
        joined = con.execute("SELECT row_at, index_at FROM wanted JOIN known USING (key)").fetchnumpy()
    finally:
        con.close()
    at[joined["row_at"]] = joined["index_at"]
    return at


def strictly_increasing(first: pd.Series, second: pd.Series) -> bool:
    """Whether the (first, second) pairs of string-like values strictly increase, row after
    row, with no value missing: then they are unique and in the order sort_values gives
    (Arrow compares UTF-8 bytes, which order as Python compares code points). One pass."""
    a, b = as_string_array(first), as_string_array(second)
    if a.null_count or b.null_count:
        return False
    if len(a) < 2:
        return True
    a_before, a_after, b_before, b_after = a[:-1], a[1:], b[:-1], b[1:]
    increasing = pc.or_(pc.greater(a_after, a_before),
                        pc.and_(pc.equal(a_after, a_before), pc.greater(b_after, b_before)))
    return bool(pc.all(increasing).as_py())


def sorted_by(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """`frame.sort_values(column).reset_index(drop=True)` for a column of unique values, one
    column copied at a time (sort_values holds two whole frames: at a million persons the
    facts are most of a GB). `frame` is emptied (its columns are taken out as they are moved)."""
    order = frame[column].argsort().to_numpy()
    ordered = {}
    for name in list(frame.columns):
        ordered[name] = frame.pop(name).take(order).reset_index(drop=True)
    return pd.DataFrame(ordered)


def mapped(keys: pd.Series, mapper: pd.Series) -> pd.Series:
    """`keys.map(mapper)`, the same values of the same type, for string-like keys and a mapper
    with a unique string-like index.

    pandas' map converts and hashes the mapper's whole index at every call (1.6 s to look up
    500k keys among 3M accounts, once per block of facts: half the services' time at 4.3M
    persons). Here `positions` finds each key's place in the index by one DuckDB join;
    Arrow-backed values (a str column such as the volunteer keys) are then taken at those
    places, as map takes them; other values (Python objects, whose result type pandas infers)
    are cut to the entries found and mapped by pandas over that cut."""
    if not len(mapper):
        return keys.map(mapper)  # (pandas types what an empty mapper gives its own way)
    at = positions(keys, mapper.index)
    if isinstance(mapper.array, pd.api.extensions.ExtensionArray) and not isinstance(mapper.array, NumpyExtensionArray):
        return pd.Series(mapper.array.take(at, allow_fill=True), index=keys.index)
    found = np.unique(at[at >= 0])
    # one entry at least: the cut must not be an empty mapper, which map types otherwise
    return keys.map(mapper.iloc[found if len(found) else [0]])


def hashed_keys(prefix: str, texts: pd.Series) -> pd.Series:
    """keys.hashed_key(prefix, text) for every text (prefix + 12 hex of SHA-256 of its UTF-8),
    aligned on texts' index, as a str column like `texts.map(hashed_key)` gave."""
    if not len(texts):
        return pd.Series([], index=texts.index, dtype="str")
    con = duck.scratch()
    try:
        con.register("texts", pa.table({"text": as_string_array(texts), "position": np.arange(len(texts))}))
        digests = con.sql(
            "SELECT substr(sha256(text), 1, 12) AS digest FROM texts ORDER BY position"
        ).to_arrow_table()["digest"].combine_chunks().cast(pa.string())
    finally:
        con.close()
    keys = pc.binary_join_element_wise(pa.scalar(prefix, pa.string()), digests, pa.scalar("", pa.string()))
    return pd.Series(keys.to_numpy(zero_copy_only=False), index=texts.index, dtype="str")


class NotTheFullAnswer(Exception):
    """Carried-over rows and freshly made ones cannot be put together as a full run would:
    the caller makes every row instead."""


def with_full_run_types(carried: pd.DataFrame, fresh: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """carried + fresh (rows of one table, a previous run's and this one's), each column with
    the type a full run gives it. pandas infers a column's type from its values: one part may
    hold only missing values (object) where the whole holds text (str); the whole then takes
    the other part's type. Two other types cannot be told apart: NotTheFullAnswer."""
    parts = [part for part in (carried, fresh) if len(part)]
    if len(parts) < 2:
        return (parts or [fresh])[0][columns].copy()
    whole = pd.concat([carried[columns], fresh[columns]], ignore_index=True)
    for column in columns:
        types = {carried[column].dtype, fresh[column].dtype}
        if len(types) == 2:
            typed = [t for t in types if t != object]
            if len(typed) != 1:
                raise NotTheFullAnswer(f"column {column}: {types}")
            whole[column] = whole[column].astype(typed[0])
    return whole
