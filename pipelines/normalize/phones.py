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
    as_text,
    is_missing,
    map_unique,
)

MOBILE = re.compile(r"1[3-9][0-9]{9}")
MASKED_MOBILE = re.compile(r"1[3-9][0-9]\*{4}[0-9]{4}")

_SEPARATORS = {ord(c): None for c in WHITESPACE_CHARS + "-\u2010\u2011\u2012\u2013\u2014.()"}
# "+86", "0086" or "86" in front of a mobile (clear or masked); only removed when what is
# left is mobile-shaped, so a landline or a stray 86 in garbage is left alone.
_COUNTRY_PREFIX = re.compile(r"^(?:\+|00)?86(?=1[3-9][0-9](?:[0-9]{8}|\*{4}[0-9]{4})$)")


def normalize_phone_one(value) -> str | None:
    """One phone number cleaned (country code and separators removed); None when empty."""
    if is_missing(value):
        return None
    text = value if isinstance(value, str) else str(as_text([value]).iloc[0])
    text = text.translate(FULLWIDTH_TO_ASCII).translate(_SEPARATORS)
    text = _COUNTRY_PREFIX.sub("", text)
    return text or None


def _clean_phones(distinct: pd.Series) -> pd.Series:
    cleaned = distinct.str.translate(FULLWIDTH_TO_ASCII).str.translate(_SEPARATORS)
    cleaned = cleaned.str.replace(_COUNTRY_PREFIX.pattern, "", regex=True)
    return cleaned.where(cleaned.str.len() > 0)


def normalize_phone(values: pd.Series) -> pd.DataFrame:
    """Phones -> [phone (cleaned text, NaN when empty), phone_masked (bool), phone_valid
    (bool: a clear 11-digit mainland mobile), phone_prefix3, phone_suffix4 (from a clear or
    masked mobile, NaN otherwise)], index kept."""
    text = as_text(values)
    phone = map_unique(text, _clean_phones)
    valid = phone.str.fullmatch(MOBILE.pattern).fillna(False).astype(bool)
    masked = phone.str.contains("*", regex=False).fillna(False).astype(bool)
    mobile_shaped = valid | phone.str.fullmatch(MASKED_MOBILE.pattern).fillna(False).astype(bool)
    return pd.DataFrame(
        {
            "phone": phone,
            "phone_masked": masked,
            "phone_valid": valid,
            "phone_prefix3": phone.str.slice(0, 3).where(mobile_shaped).astype("str"),
            "phone_suffix4": phone.str.slice(-4).where(mobile_shaped).astype("str"),
        },
        index=text.index,
    )


def is_mobile(values: pd.Series) -> pd.Series:
    """True where the cleaned value is a clear mainland mobile number."""
    return normalize_phone(values)["phone_valid"]


__all__ = ["normalize_phone", "normalize_phone_one", "is_mobile", "MOBILE", "MASKED_MOBILE"]
