"""The column operations of pipelines/resolve/vectorized.py against the pandas calls they stand for."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.resolve import vectorized
from pipelines.resolve.vectorized import is_in, mapped, strictly_increasing

KEYS = {
    "string": pd.Series(["a", "x", None, "c", "a"], dtype="string", index=[5, 6, 7, 8, 9]),
    "str": pd.Series(["a", "x", np.nan, "c"], dtype="str"),
    "object": pd.Series(["a", "x", None, "c"], dtype=object),
    "none known": pd.Series(["y", None, "z"], dtype="str"),
    "empty": pd.Series([], dtype="string"),
}
VALUES = {
    "str": pd.Series(["K1", "K2", np.nan, "K4"], dtype="str"),
    "string": pd.Series(["1", "2", None, "4"], dtype="string"),
    "object": pd.Series(["社区服务", None, "x", np.nan], dtype=object),
}


@pytest.mark.parametrize("keys", KEYS, ids=str)
@pytest.mark.parametrize("values", VALUES, ids=str)
@pytest.mark.parametrize("index", ["a b c d", "d c b a", ""], ids=["index", "reversed", "empty"])
def test_mapped_is_series_map(keys, values, index):
    """Same values, missing values and type as pandas' map, whatever the keys' and values' types."""
    labels = index.split()
    mapper = VALUES[values].iloc[: len(labels)].set_axis(pd.Index(labels, dtype="str"))
    expected = KEYS[keys].map(mapper)
    got = mapped(KEYS[keys], mapper)
    pd.testing.assert_series_equal(got, expected)
    assert [repr(v) for v in got] == [repr(v) for v in expected]  # NaN stays NaN, <NA> stays <NA>


ALLOWED = {
    "with a missing value": pd.Series(["a", None, "社区", "7"], dtype="string"),
    "without": pd.Series(["a", "社区", "7", "a"], dtype="str"),
    "set": {"x", "7"},
    "numbers": pd.Series([7, 8], dtype="int64"),
}


@pytest.mark.parametrize("keys", KEYS, ids=str)
@pytest.mark.parametrize("allowed", ALLOWED, ids=str)
@pytest.mark.parametrize("by", ["arrow", "duckdb"])
def test_is_in_is_series_isin(keys, allowed, by, monkeypatch):
    """Same answers as pandas' isin (values compared as text, a missing value found only among
    missing values) whether Arrow looks them up or, for large inputs, a DuckDB semi join."""
    monkeypatch.setattr(vectorized, "JOIN_FROM_ALLOWED", 0 if by == "duckdb" else 10**9)
    values, among = KEYS[keys], ALLOWED[allowed]
    expected = values.astype("string").isin(
        pd.Series(list(among) if isinstance(among, set) else among).astype("string")).to_numpy(dtype=bool)
    assert is_in(values, among).tolist() == expected.tolist()


PAIRS = {
    "in order": (["national", "national", "provincial"], ["1", "2", "1"]),
    "a repeated pair": (["national", "national"], ["1", "1"]),
    "out of order": (["national", "national"], ["2", "10"]),  # as text, "10" < "2"
    "sources out of order": (["provincial", "national"], ["1", "2"]),
    "Chinese and Latin": (["a", "a", "a"], ["Z", "b", "社"]),
    "beyond the BMP": (["a", "a"], ["\uffff", "\U00010000"]),
    "a missing id": (["a", "a"], ["1", None]),
    "one row": (["a"], ["1"]),
    "one missing": (["a"], [None]),
    "none": ([], []),
}


@pytest.mark.parametrize("pair", PAIRS, ids=str)
def test_strictly_increasing_is_sorted_and_unique(pair):
    """True exactly where dropping duplicates and sorting (as pandas does) would change
    nothing, and no value is missing."""
    first, second = (pd.Series(values, dtype="str") for values in PAIRS[pair])
    frame = pd.DataFrame({"a": first, "b": second})
    untouched = frame.drop_duplicates(["a", "b"]).sort_values(["a", "b"], kind="stable").reset_index(drop=True)
    expected = untouched.equals(frame) and not frame.isna().any().any()
    assert strictly_increasing(first, second) == expected
