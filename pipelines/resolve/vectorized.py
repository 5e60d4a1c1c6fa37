"""Column operations that pandas 3 does per row on Arrow-backed strings, done in one call each.

At provincial scale (millions of service records) these were most of the resolution's time:
- `Series.isin` on a pandas 3 string column boxes every allowed value into a pyarrow scalar
  in Python before its (fast) Arrow lookup: `is_in` hands Arrow the allowed values as one
  array;
- the opaque service and project keys hashed one Python call per row: `hashed_keys` lets
  DuckDB's sha256 hash the whole column (same text, same digest as keys.hashed_key).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines import duck


def _as_string_array(values: Iterable) -> pa.Array:
    if isinstance(values, (pd.Series, pd.Index)):
        values = values.astype("string")
    elif isinstance(values, (set, frozenset)):
        values = pd.array(list(values), dtype="string")
    array = pa.array(values, from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array.cast(pa.large_string())


def is_in(values: pd.Series, allowed: Iterable) -> np.ndarray:
    """`values.isin(allowed)` as a boolean array, for string-like values.

    Same answers as pandas: values compare as strings, and a missing value is in `allowed`
    only when `allowed` holds a missing value too.
    """
    haystack = _as_string_array(allowed)
    if not len(values) or not len(haystack):
        return np.zeros(len(values), dtype=bool)
    needles = _as_string_array(values)
    found = pc.is_in(needles, value_set=haystack, skip_nulls=False)
    return found.to_numpy(zero_copy_only=False).astype(bool)


def positions(keys: pd.Series, index: pd.Series) -> np.ndarray:
    """Where each key is in `index` (string-like, unique), -1 where it is not: one Arrow lookup."""
    if not len(keys):
        return np.zeros(0, dtype="int64")
    found = pc.index_in(_as_string_array(keys), value_set=_as_string_array(index), skip_nulls=True)
    return np.asarray(found.fill_null(-1).to_numpy(zero_copy_only=False), dtype="int64")


def sorted_by(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """`frame.sort_values(column).reset_index(drop=True)` for a column of unique values, one
    column copied at a time (sort_values holds two whole frames: at a million persons the
    facts are most of a GB). `frame` is emptied (its columns are taken out as they are moved)."""
    order = frame[column].argsort().to_numpy()
    ordered = {}
    for name in list(frame.columns):
        ordered[name] = frame.pop(name).take(order).reset_index(drop=True)
    return pd.DataFrame(ordered)


def looked_up(keys: pd.Series, index: pd.Series, values: pd.Series) -> pd.Series:
    """`keys.map(pd.Series(values.to_numpy(), index=index))` for string-like keys and float
    values, with a unique `index`: NaN where a key is missing or not in the index. One Arrow
    hash lookup (pandas' string-index lookup of millions of keys was most of counted_once)."""
    if not len(keys):
        return pd.Series([], index=keys.index, dtype="float64")
    positions = np.asarray(pc.index_in(_as_string_array(keys), value_set=_as_string_array(index), skip_nulls=True)
                           .fill_null(-1).to_numpy(zero_copy_only=False), dtype="int64")
    table = values.to_numpy(dtype="float64", na_value=np.nan)
    found = positions >= 0
    result = np.full(len(keys), np.nan)
    result[found] = table[positions[found]]
    return pd.Series(result, index=keys.index, dtype="float64")


def hashed_keys(prefix: str, texts: pd.Series) -> pd.Series:
    """keys.hashed_key(prefix, text) for every text (prefix + 12 hex of SHA-256 of its UTF-8),
    aligned on texts' index, as a str column like `texts.map(hashed_key)` gave."""
    if not len(texts):
        return pd.Series([], index=texts.index, dtype="str")
    con = duck.connect()
    try:
        con.register("texts", pa.table({"text": _as_string_array(texts), "position": np.arange(len(texts))}))
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
