"""Normalizers: raw source values -> the canonical forms of the staged tables.

One module per kind of value (ids, names, phones, regions, categories, dates, statuses).
Every normalizer is a plain function over a pandas Series (pandas 3: missing strings are
NaN), vectorized, that never raises on any input, is idempotent (f(f(x)) == f(x)) and leaves
an already valid value unchanged; most also have a scalar `*_one` form for tests and for the
row-by-row baseline of bench/normalize.py. No Dagster here: these run in a notebook as well.

This file holds the few helpers every normalizer needs: turning any input column into text,
the full-width -> half-width table, and the "normalize each distinct value once" pattern.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

# Full-width ASCII variants (U+FF01..U+FF5E) and the ideographic space map one to one onto
# ASCII. A translation table (not NFKC) because it is character for character, so it can
# never compose or reorder anything and stays trivially idempotent.
FULLWIDTH_TO_ASCII: dict[int, int] = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
FULLWIDTH_TO_ASCII[0x3000] = 0x20

# ASCII upper-casing only: str.upper() would also touch letters like 'ß' or 'ǆ', which could
# then compose differently on a second pass.
ASCII_UPPER: dict[int, int] = {code: code - 32 for code in range(ord("a"), ord("z") + 1)}

# The characters Python's str.split() treats as whitespace; listed so the scalar (re) and
# vectorized (Arrow RE2) forms agree on exactly the same set.
WHITESPACE_CHARS = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def _scrub_surrogates(text: str) -> str:
    """A lone surrogate (possible in str built from bad JSON) cannot be UTF-8 encoded."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _scalar_to_text(value: Any) -> str | None:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (float, np.floating)):
        if np.isnan(value):
            return None
        # An integral float is how a numeric code column arrives after a NaN forced float.
        return str(int(value)) if float(value).is_integer() else str(value)
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    return str(value)


def as_text(values: Any) -> pd.Series:
    """Any column (or list, or scalar) as a pandas string Series; missing values are NaN.

    Integral floats lose their '.0' (520102.0 -> '520102'); lone surrogates become U+FFFD so
    the Arrow-backed string dtype can hold them.
    """
    if not isinstance(values, pd.Series):
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            values = [values]
        values = pd.Series(list(values), dtype=object)
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.na_value is np.nan:
        return values
    if pd.api.types.is_integer_dtype(values.dtype) and not isinstance(
        values.dtype, pd.ArrowDtype
    ):
        return values.astype("str")
    converted = [_scalar_to_text(value) for value in values.tolist()]
    try:
        return pd.Series(converted, index=values.index, dtype="str")
    except (UnicodeEncodeError, ValueError):
        cleaned = [None if v is None else _scrub_surrogates(v) for v in converted]
        return pd.Series(cleaned, index=values.index, dtype="str")


def is_missing(value: Any) -> bool:
    """True for None, NaN, pd.NA, NaT (the scalar forms of a missing value)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, (float, np.floating)) and bool(np.isnan(value))


def map_unique(
    text: pd.Series, transform: Callable[[pd.Series], pd.Series], dtype: str | None = "str"
) -> pd.Series:
    """Apply a vectorized `transform` to the distinct non-missing values only, map back.

    Source columns repeat a lot (the same team name, the same label on thousands of rows):
    transforming each distinct value once is what makes the expensive normalizers cheap.
    """
    present = text.dropna()
    if present.empty:
        return pd.Series(np.nan, index=text.index, dtype=dtype or object)
    distinct = pd.Series(pd.unique(present), dtype=text.dtype)
    transformed = transform(distinct.reset_index(drop=True))
    lookup = pd.Series(transformed.to_numpy(), index=distinct.to_numpy())
    mapped = text.map(lookup)
    return mapped.astype(dtype) if dtype else mapped


def map_each_distinct(values: Any, function: Callable[[str], str | None]) -> pd.Series:
    """A scalar `function` applied once per distinct non-missing value of a column (str dtype
    result, None -> NaN). For code lists and labels: few distinct values, where a plain
    Python call per value costs less than a chain of vectorized operations."""

    def each(distinct: pd.Series) -> pd.Series:
        return pd.Series([function(v) for v in distinct.tolist()], index=distinct.index, dtype="str")

    return map_unique(as_text(values), each)


def fixed_point(step: Callable[[str], str | None], value: str | None, max_rounds: int = 6):
    """Apply `step` until the value stops changing (bounded): makes a pipeline of individually
    idempotent steps idempotent as a whole, even where one step's output feeds another's
    pattern (removing a space can create a doubled comma)."""
    for _ in range(max_rounds):
        if value is None:
            return None
        following = step(value)
        if following == value:
            return value
        value = following
    return value
