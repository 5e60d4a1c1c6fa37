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
_SEPARATORS_ONLY = re.compile(_SEPARATORS_RE)
# "+86", "0086" or "86" in front of a mobile (clear or masked); only removed when what is
# left is mobile-shaped, so a landline or a stray 86 in garbage is left alone. (A whole-
# string match with a group rather than a look-ahead: RE2 has no look-arounds.)
_COUNTRY_PREFIX = re.compile(r"^(?:\+|00)?86(1[3-9][0-9](?:[0-9]{8}|\*{4}[0-9]{4}))$")
# What operators wrap a number in, taken off its ends: Excel's text marker ('13812345678),
# quotes, a label (手机：), a full stop after it. A number starts with a digit, + or a masking
# '*' and ends with a digit or '*'.
_WRAPPING = re.compile(r"^[^0-9*+]+|[^0-9*]+$")
# An extension typed after a number (13812345678转123, -123, ext 123, 分机 8001, x12, #12): the
# number is what reaches the person, the extension only a desk behind it. Split off, then
# dropped only when what is left is a mobile (clear or masked): 138-1234-5678 ends in "-5678"
# too, and is no mobile with an extension. (RE2 and Python's re read the pattern alike.)
_EXTENSION = re.compile(
    r"(?i)^(.*?[0-9*])[\s,;:(（]*(?:转|轉|分机号?|分機號?|内线|ext(?:ension)?\.?|x|#|-|‐|–|—)"
    r"[\s:：.]*[0-9]{1,6}[\s)）]*$"
)
# A number a spreadsheet or a serializer turned into a float: 13812345678.0 is 13812345678
# (the point is a separator to the cleaning, which made it 12 digits, and 1381234567.0 the
# mobile 13812345670).
_FLOAT_TAIL = re.compile(r"^\s*([0-9]+)\.0+\s*$")


# A phone box holding several mobiles (13812345678/13912345678, 、 , ; | 或 和, spaces, or
# none): the first is the phone, the others are dropped, never kept (the contract has one
# phone an account, and the privacy rule no number in clear). Read only when every part is a
# mobile (clear or masked): a mobile beside a landline or a note stays as typed, invalid.
_LIST_SEPARATORS = re.compile(r"[/、,;|]+|或|和|及")
_NOT_DIGITS = re.compile(r"[^0-9*]")


def _first_of_several(text: str) -> str | None:
    """The first mobile of a text that is several mobiles and nothing else, else None."""
    parts = [part for part in _LIST_SEPARATORS.split(text) if part.strip()]
    if len(parts) >= 2:
        mobiles = [_cleaned_one(part) for part in parts]
        return mobiles[0] if all(_is_mobile_shaped(mobile) for mobile in mobiles) else None
    # separated by spaces alone, or typed end to end: digits that split wholly into mobiles
    digits = _NOT_DIGITS.sub("", text)
    if len(digits) in (22, 33) and _SEPARATORS_ONLY.sub("", text) == digits:
        chunks = [digits[at:at + 11] for at in range(0, len(digits), 11)]
        if all(_is_mobile_shaped(chunk) for chunk in chunks):
            return chunks[0]
    return None


def _cleaned_one(text: str) -> str:
    text = _WRAPPING.sub("", text.translate(_SEPARATORS))
    return _COUNTRY_PREFIX.sub(r"\1", text)


def _is_mobile_shaped(cleaned: str) -> bool:
    return bool(MOBILE.fullmatch(cleaned) or MASKED_MOBILE.fullmatch(cleaned))


def normalize_phone_one(value) -> str | None:
    """One phone number cleaned (country code, separators and an extension after a mobile
    removed, a mobile written as a float read); None when empty."""
    if is_missing(value):
        return None
    text = value if isinstance(value, str) else str(as_text([value]).iloc[0])
    text = _FLOAT_TAIL.sub(r"\1", text.translate(FULLWIDTH_TO_ASCII))
    cleaned = _cleaned_one(text)
    extension = None if _is_mobile_shaped(cleaned) else _EXTENSION.match(text)
    if extension is not None and _is_mobile_shaped(_cleaned_one(extension.group(1))):
        cleaned = _cleaned_one(extension.group(1))
    if cleaned and not _is_mobile_shaped(cleaned):
        cleaned = _first_of_several(text) or cleaned
    return cleaned or None


def _cleaned(folded: pd.Series) -> pd.Series:
    cleaned = arrow_replace(arrow_replace(folded, _SEPARATORS_RE, ""), _WRAPPING.pattern, "")
    return arrow_replace(cleaned, _COUNTRY_PREFIX.pattern, r"\1")


def _mobile_shaped(cleaned: pd.Series) -> pd.Series:
    shaped = cleaned.str.fullmatch(MOBILE.pattern) | cleaned.str.fullmatch(MASKED_MOBILE.pattern)
    return shaped.fillna(False).astype(bool)


def _clean_phones(distinct: pd.Series) -> pd.Series:
    """Vectorized `normalize_phone_one` (Arrow RE2 over the column)."""
    folded = arrow_replace(fold_fullwidth(distinct), _FLOAT_TAIL.pattern, r"\1")
    cleaned = _cleaned(folded)
    # nearly every phone is a mobile as it is: only the others are looked at for an extension
    others = cleaned.notna() & ~_mobile_shaped(cleaned)
    if others.any():
        base = folded[others].str.extract(_EXTENSION.pattern, expand=False)
        base_cleaned = _cleaned(base.fillna(""))
        extended = _mobile_shaped(base_cleaned) & base.notna()
        cleaned = cleaned.copy()
        cleaned[extended[extended].index] = base_cleaned[extended]
        several = others & ~extended.reindex(others.index, fill_value=False)
        if several.any():
            firsts = folded[several].map(_first_of_several)
            firsts = firsts[firsts.notna()]
            cleaned[firsts.index] = firsts.astype("str")
    return cleaned.where(cleaned.str.len() > 0)


def several_mobiles(values: pd.Series) -> pd.Series:
    """Whether each value is several mobiles that the phone is the first of (`_first_of_several`):
    what staging counts, the others being dropped."""
    text = fold_fullwidth(as_text(values))
    cleaned = _clean_phones(text)
    candidates = text.notna() & ~_mobile_shaped(_cleaned(text)) & _mobile_shaped(cleaned)
    result = pd.Series(False, index=text.index)
    if candidates.any():
        result[candidates] = text[candidates].map(lambda value: _first_of_several(value) is not None).astype(bool)
    return result


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
