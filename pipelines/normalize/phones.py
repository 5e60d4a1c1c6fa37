"""Phone numbers as typed (13812345678, +86 138 1234 5678, 138-1234-5678, masked 138****5678)
-> 11 digits.

The country code, spaces, dashes, dots and brackets go; a mainland mobile is checked against
^1[3-9]\\d{9}$. A masked number stays masked, exactly as sent: its hidden digits are never
guessed. First three and last four digits are kept separately (they are what masking keeps,
and what matching may compare).
"""

from __future__ import annotations

import re

import pandas as pd

from pipelines.normalize import (
    FULLWIDTH_TO_ASCII,
    WHITESPACE_CHARS,
    arrow_replace,
    as_text,
    char_class,
    fold_fullwidth,
    is_missing,
    map_unique_frame,
)

MOBILE = re.compile(r"1[3-9][0-9]{9}")
MASKED_MOBILE = re.compile(r"1[3-9][0-9]\*{4}[0-9]{4}")

_SEPARATOR_CHARS = WHITESPACE_CHARS + "-\u2010\u2011\u2012\u2013\u2014.()"
_SEPARATORS = {ord(c): None for c in _SEPARATOR_CHARS}
_SEPARATORS_RE = char_class([(ord(c), ord(c)) for c in _SEPARATOR_CHARS])
# "+86", "0086" or "86" in front of a mobile (clear or masked); only removed when what is
# left is mobile-shaped, so a landline or a stray 86 in garbage is left alone. (A whole-
# string match with a group rather than a look-ahead: RE2 has no look-arounds.)
_COUNTRY_PREFIX = re.compile(r"^(?:\+|00)?86(1[3-9][0-9](?:[0-9]{8}|\*{4}[0-9]{4}))$")
# What operators wrap a number in, taken off its ends: Excel's text marker ('13812345678),
# quotes, a label (手机：), a full stop after it. A number starts with a digit, + or a masking
# '*' and ends with a digit or '*'.
_WRAPPING = re.compile(r"^[^0-9*+]+|[^0-9*]+$")


def normalize_phone_one(value) -> str | None:
    """One phone number cleaned (country code and separators removed); None when empty."""
    if is_missing(value):
        return None
    text = value if isinstance(value, str) else str(as_text([value]).iloc[0])
    text = _WRAPPING.sub("", text.translate(FULLWIDTH_TO_ASCII).translate(_SEPARATORS))
    text = _COUNTRY_PREFIX.sub(r"\1", text)
    return text or None


def _clean_phones(distinct: pd.Series) -> pd.Series:
    """Vectorized `normalize_phone_one` (Arrow RE2 over the column)."""
    cleaned = arrow_replace(arrow_replace(fold_fullwidth(distinct), _SEPARATORS_RE, ""), _WRAPPING.pattern, "")
    cleaned = arrow_replace(cleaned, _COUNTRY_PREFIX.pattern, r"\1")
    return cleaned.where(cleaned.str.len() > 0)


def _phone_columns(distinct: pd.Series) -> pd.DataFrame:
    phone = _clean_phones(distinct)
    valid = phone.str.fullmatch(MOBILE.pattern).fillna(False).astype(bool)
    masked = phone.str.contains("*", regex=False).fillna(False).astype(bool)
    mobile_shaped = valid | phone.str.fullmatch(MASKED_MOBILE.pattern).fillna(False).astype(bool)
    return pd.DataFrame(
        {
            "phone": phone.astype("str"),
            "phone_masked": masked,
            "phone_valid": valid,
            "phone_prefix3": phone.str.slice(0, 3).where(mobile_shaped).astype("str"),
            "phone_suffix4": phone.str.slice(-4).where(mobile_shaped).astype("str"),
        },
        index=distinct.index,
    )


def normalize_phone(values: pd.Series) -> pd.DataFrame:
    """Phones -> [phone (cleaned text, NaN when empty), phone_masked (bool), phone_valid
    (bool: a clear 11-digit mainland mobile), phone_prefix3, phone_suffix4 (from a clear or
    masked mobile, NaN otherwise)], index kept."""
    return map_unique_frame(as_text(values), _phone_columns)


def is_mobile(values: pd.Series) -> pd.Series:
    """True where the cleaned value is a clear mainland mobile number."""
    return normalize_phone(values)["phone_valid"]


__all__ = ["normalize_phone", "normalize_phone_one", "is_mobile", "MOBILE", "MASKED_MOBILE"]
