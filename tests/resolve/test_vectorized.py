"""The column operations of pipelines/resolve/vectorized.py against the pandas calls they stand for."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.resolve.vectorized import mapped

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
