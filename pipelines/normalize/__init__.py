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
import pyarrow as pa
import pyarrow.compute as pc

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


def _factorized(text: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """(codes, distinct values): codes index into the distinct values, missing -> last."""
    codes, distinct = pd.factorize(text)
    codes = np.where(codes < 0, len(distinct), codes)
    return codes, pd.Series(np.asarray(distinct, dtype=object), dtype=text.dtype)


def map_unique(
    text: pd.Series, transform: Callable[[pd.Series], pd.Series], dtype: str | None = "str"
) -> pd.Series:
    """Apply a vectorized `transform` to the distinct non-missing values only, map back.

    Source columns repeat a lot (the same team name, the same label on thousands of rows):
    transforming each distinct value once is what makes the expensive normalizers cheap,
    and mapping back is a positional take (no second hash lookup).
    """
    if text.empty or text.isna().all():
        return pd.Series(np.nan, index=text.index, dtype=dtype or object)
    codes, distinct = _factorized(text)
    transformed = transform(distinct)
    if dtype:
        transformed = transformed.astype(dtype)
    transformed = transformed.reset_index(drop=True)
    # one missing value of the transform's own dtype (NaN for str, NaT for datetimes)
    with_missing = transformed.reindex(range(len(transformed) + 1))
    mapped = with_missing.take(codes)
    mapped.index = text.index
    return mapped


def map_unique_frame(text: pd.Series, compute: Callable[[pd.Series], pd.DataFrame]) -> pd.DataFrame:
    """Like `map_unique` for a transform that returns several columns: `compute` gets the
    distinct values plus one missing value (last), and must handle it."""
    codes, distinct = _factorized(text)
    with_missing = pd.concat([distinct, pd.Series([np.nan], dtype=distinct.dtype)], ignore_index=True)
    computed = compute(with_missing).reset_index(drop=True)
    mapped = computed.take(codes)
    mapped.index = text.index
    return mapped


# ---------------------------------------------------------------------------------------
# Arrow helpers: RE2 regexes and ASCII-only operations over a whole column, in C++.


def to_arrow(text: pd.Series) -> pa.Array:
    array = pa.array(text, from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array


def from_arrow(array: pa.Array | pa.ChunkedArray, index: pd.Index) -> pd.Series:
    """A string Arrow array as a pandas str Series (NaN for null) on `index`."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if not pa.types.is_large_string(array.type):
        array = array.cast(pa.large_string())
    return pd.Series(pd.arrays.ArrowStringArray(array), index=index, dtype="str")


def arrow_replace(text: pd.Series, pattern: str, replacement: str) -> pd.Series:
    """Regex replace (RE2 syntax, `\\1` for groups) over a str Series, in Arrow."""
    replaced = pc.replace_substring_regex(to_arrow(text), pattern=pattern, replacement=replacement)
    return from_arrow(replaced, text.index)


def arrow_ascii_upper(text: pd.Series) -> pd.Series:
    """Upper-case ASCII letters only (see ASCII_UPPER), in Arrow."""
    return from_arrow(pc.ascii_upper(to_arrow(text)), text.index)


def fold_fullwidth(text: pd.Series) -> pd.Series:
    """Full-width -> ASCII (FULLWIDTH_TO_ASCII); only non-ASCII strings pay for the Python
    translation, the (usual) all-ASCII ones are left as they are."""
    ascii_only = pc.string_is_ascii(to_arrow(text)).to_numpy(zero_copy_only=False)
    ascii_only = np.asarray(ascii_only, dtype=object)
    needs_folding = ~pd.Series(ascii_only, index=text.index).fillna(True).astype(bool)
    if not needs_folding.any():
        return text
    folded = text.copy()
    folded[needs_folding] = text[needs_folding].str.translate(FULLWIDTH_TO_ASCII)
    return folded


def char_class(ranges: list[tuple[int, int]], extra: str = "") -> str:
    """A regex character class of code-point ranges, written so that Python's `re` and RE2
    read it the same way (controls as \\xhh, specials escaped, the rest literal)."""

    def render(code: int) -> str:
        char = chr(code)
        if code < 0x20 or 0x7F <= code <= 0xA0:
            return f"\\x{code:02x}"
        if char in "\\]^-[":
            return "\\" + char
        return char

    parts = [render(a) if a == b else f"{render(a)}-{render(b)}" for a, b in ranges]
    parts.extend(render(ord(c)) for c in extra)
    return "[" + "".join(parts) + "]"


WHITESPACE_CLASS = char_class([(ord(c), ord(c)) for c in WHITESPACE_CHARS])

# Characters that show nothing and that no operator types on purpose: control characters
# other than whitespace (NUL, BEL, ESC, DEL, the C1 block: PostgreSQL refuses a NUL in text, so
# one NUL in a team's credit status stopped the publish), the soft hyphen, the Arabic letter
# mark, the Mongolian vowel separator, zero-width space, joiners and direction marks
# (U+200B-U+200F), bidirectional embeddings and isolates, the word joiner and invisible
# operators, the BOM (U+FEFF). A copy from a web page, a chat or an Excel cell carries them
# along; in an identifier or free text they are never part of it (`without_invisible`).
INVISIBLE_RANGES = [(0x00, 0x08), (0x0E, 0x1B), (0x7F, 0x84), (0x86, 0x9F),
                    (0xAD, 0xAD), (0x61C, 0x61C), (0x180E, 0x180E), (0x200B, 0x200F), (0x202A, 0x202E),
                    (0x2060, 0x2064), (0x2066, 0x206F), (0xFEFF, 0xFEFF)]
INVISIBLE_CLASS = char_class(INVISIBLE_RANGES)  # the same for Python's re, Arrow's and DuckDB's RE2
_INVISIBLE_TABLE = {code: None for low, high in INVISIBLE_RANGES for code in range(low, high + 1)}


def without_invisible(text: str) -> str:
    """`text` without INVISIBLE_RANGES characters (printable ASCII, nearly every key, as it is)."""
    return text if text.isascii() and text.isprintable() else text.translate(_INVISIBLE_TABLE)


def visible_text(text: pd.Series) -> pd.Series:
    """`without_invisible` over a str column, stripped, NaN where nothing is left; only the
    values holding such a character are rewritten (Arrow's RE2 finds them)."""
    holding = text.str.contains(INVISIBLE_CLASS, regex=True).fillna(False).astype(bool)
    if not holding.any():
        return text
    cleaned = text[holding].str.replace(INVISIBLE_CLASS, "", regex=True).str.strip()
    text = text.copy()
    text[holding] = cleaned.where(cleaned.str.len() > 0)
    return text


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
