"""Certificate numbers: resident ID numbers (GB 11643), other certificates, USCC (GB 32100).

Resident ID numbers as typed: full-width digits, spaces, a lower-case x, 15-digit legacy
numbers, masked numbers from the national system (`5201**********123X`). The normalized
number is 18 characters whenever it can be (legacy numbers get "19" and a computed check
character); it is *valid* when the check character is right and the birth date it holds is
a real date after 1900 and not in the future.

Why not `stdnum.cn.ric.validate`: it also requires the county code to have existed in the
birth year, which rejects real numbers of people born before their county got its current
code. The check character and the birth date are what make a number trustworthy; the
county part is an old address, not a validity rule.

Everything here is vectorized over the distinct values of a column and never raises.
"""

from __future__ import annotations

import datetime as dt
import functools
import re

import numpy as np
import pandas as pd
import pyarrow as pa

from pipelines.normalize import (
    ASCII_UPPER,
    FULLWIDTH_TO_ASCII,
    WHITESPACE_CHARS,
    WHITESPACE_CLASS,
    arrow_ascii_upper,
    arrow_replace,
    as_text,
    fold_fullwidth,
    is_missing,
    map_each_distinct,
    map_unique,
    map_unique_frame,
    to_arrow,
)
from pipelines.privacy import SOURCE_MASKED

# GB 11643 weights of the first 17 digits; the check character indexes this string by the
# weighted sum modulo 11.
_RESIDENT_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
_RESIDENT_ID_CHECK = "10X98765432"

# After full-width folding (which may yield a lower-case letter or a space): spaces of any
# kind, the dashes people put between digit groups and the invisible characters a copy from
# a web page carries (zero-width space and joiners, direction marks, word joiner, BOM) go,
# ASCII letters are upper-cased.
_DASHES = "-\u2010\u2011\u2012\u2013\u2014"
_INVISIBLE = "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff"
# The check character X as an input method offers it for "x": the multiplication sign, the
# Roman numeral ten (52010219900101123× is 52010219900101123X).
_X_LOOKALIKES = "×Ⅹⅹ"
_AFTER_FULLWIDTH = {
    **{ord(c): None for c in WHITESPACE_CHARS + _DASHES + _INVISIBLE},
    **{ord(c): "X" for c in _X_LOOKALIKES},
    **ASCII_UPPER,
}

# What operators wrap a number in, taken off its ends once it is cleaned: Excel's text
# marker (a leading '), quotes, brackets, a label (身份证号：), a full stop or a note after
# it (52010219900101123X。). No resident ID number starts or ends with anything but a digit,
# X or a masking '*'; a leading letter stays (E12345678 is a passport number, kept as typed).
_WRAPPING = re.compile(r"^[^0-9A-Z*]+|[^0-9A-Z*]+$")

_LEGACY_15 = re.compile(r"[0-9]{15}")
_SHAPE_18 = re.compile(r"[0-9]{17}[0-9X]")

CERT_TYPES = ("resident_id", "hk_macao", "taiwan", "passport", "military", "other")

_NATIONAL_CERT_TYPES = {
    "01": "resident_id", "02": "hk_macao", "03": "hk_macao", "04": "taiwan",
    "05": "passport", "06": "military", "07": "military", "08": "other", "99": "other",
}
_PROVINCIAL_CERT_TYPES = {
    "身份证": "resident_id", "居民身份证": "resident_id", "内地居民身份证": "resident_id",
    # how operators write it besides the interface's label
    "身份证号": "resident_id", "身份证号码": "resident_id", "居民身份证号码": "resident_id",
    "二代身份证": "resident_id", "第二代居民身份证": "resident_id", "大陆身份证": "resident_id",
    "港澳居民来往内地通行证": "hk_macao", "港澳居民居住证": "hk_macao",
    "香港居民身份证": "hk_macao", "澳门居民身份证": "hk_macao",
    "台湾居民来往大陆通行证": "taiwan", "台湾居民居住证": "taiwan", "台湾居民身份证": "taiwan",
    "护照": "passport", "军官证": "military", "士兵证": "military", "其他": "other",
    "其它": "other",
}


# ---------------------------------------------------------------------------------------
# Resident ID numbers: scalar forms.


def resident_id_check_char(first17: str) -> str:
    """The GB 11643 check character for 17 digits ('0'..'9' or 'X').

    Raises ValueError when `first17` is not 17 ASCII digits: a caller that passes anything
    else has a bug worth seeing.
    """
    if not (isinstance(first17, str) and len(first17) == 17 and first17.isascii()
            and first17.isdigit()):
        raise ValueError("resident_id_check_char takes exactly 17 digits")
    total = sum(int(digit) * weight for digit, weight in zip(first17, _RESIDENT_ID_WEIGHTS))
    return _RESIDENT_ID_CHECK[total % 11]


def _clean_id_text(text: str) -> str:
    return _WRAPPING.sub("", text.translate(FULLWIDTH_TO_ASCII).translate(_AFTER_FULLWIDTH))


def normalize_resident_id_one(value) -> str | None:
    """One resident ID number normalized (see module docstring); None when empty.

    >>> normalize_resident_id_one("52010219900101123x")
    '52010219900101123X'
    >>> normalize_resident_id_one("520102900101123")
    '52010219900101123X'
    """
    if is_missing(value):
        return None
    text = _clean_id_text(value if isinstance(value, str) else str(as_text([value]).iloc[0]))
    if not text:
        return None
    if _LEGACY_15.fullmatch(text):
        first17 = text[:6] + "19" + text[6:]
        return first17 + resident_id_check_char(first17)
    return text


def _birth_date_of(number: str) -> dt.date | None:
    try:
        return dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return None


# The province-level codes (GB/T 2260) a resident ID number starts with: 11-15 north, 21-23
# north-east, 31-37 east, 41-46 centre and south, 50-54 south-west, 61-65 north-west, 71
# Taiwan, 81-82 Hong Kong and Macao.
PROVINCE_CODES = frozenset(
    {"11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
     "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
     "65", "71", "81", "82"}
)
LAST_BIRTH_YEAR = 2099
# A resident ID number written whole, as a source's record number may be: 15 digits, or 17
# and a check character.
WHOLE_RESIDENT_ID = r"[0-9]{15}|[0-9]{17}[0-9Xx]"


def could_be_a_resident_id(digits: str) -> bool:
    """Whether 15 digits, or 17 and a check character (plain ASCII, as
    `pipelines.privacy.find_personal_numbers` gives them), could be somebody's resident ID
    number: a province's code first and a real birth date from 1900 on. The check character
    is not asked: a mistyped number is still somebody's. What this tells apart are the
    numbers sources give their own records, of any width the contract allows: zero-padded
    or sequential, they start with no province's code or hold no date.

    >>> could_be_a_resident_id("52010219900307001X"), could_be_a_resident_id("000000000000000011")
    (True, False)
    """
    if len(digits) == 15 and digits.isdigit():
        birth = _birth_date_of(digits[:6] + "19" + digits[6:])
    elif len(digits) == 18 and digits[:17].isdigit():
        birth = _birth_date_of(digits)
    else:
        return False
    return digits[:2] in PROVINCE_CODES and birth is not None and 1900 <= birth.year <= LAST_BIRTH_YEAR


def could_be_resident_ids(numbers: pd.Series) -> pd.Series:
    """`could_be_a_resident_id` over a column of 15- or 18-character numbers (vectorized:
    the sources' record numbers come by the million)."""
    text = as_text(numbers)
    legacy = (text.str.len() == 15).fillna(False).astype(bool)
    births = text.str.slice(6, 14).where(~legacy, "19" + text.str.slice(6, 12))
    born = pd.to_datetime(births, format="%Y%m%d", errors="coerce")
    plausible = born.notna() & (born.dt.year >= 1900) & (born.dt.year <= LAST_BIRTH_YEAR)
    shaped = text.str.fullmatch(WHOLE_RESIDENT_ID).fillna(False).astype(bool)
    return (shaped & text.str.slice(0, 2).isin(PROVINCE_CODES) & plausible).astype(bool)


def is_valid_resident_id(value, *, today: dt.date) -> bool:
    """True when the normalized number has 18 characters, a right check character and a
    real birth date from 1900 on and not after `today` (the run's date: pipelines/clock.py)."""
    number = normalize_resident_id_one(value)
    if number is None or not _SHAPE_18.fullmatch(number):
        return False
    if number[17] != resident_id_check_char(number[:17]):
        return False
    birth = _birth_date_of(number)
    return birth is not None and dt.date(1900, 1, 1) <= birth <= today


# ---------------------------------------------------------------------------------------
# Resident ID numbers: vectorized.


_SEPARATORS_RE = WHITESPACE_CLASS[:-1] + "\\" + _DASHES + _INVISIBLE + "]"


def _clean_ids(text: pd.Series) -> pd.Series:
    """Full-width -> ASCII, spaces and dashes out, ASCII upper-case, the wrapping off its
    ends; '' -> NaN (vectorized `_clean_id_text`)."""
    cleaned = arrow_ascii_upper(arrow_replace(fold_fullwidth(text), _SEPARATORS_RE, ""))
    cleaned = arrow_replace(arrow_replace(cleaned, f"[{_X_LOOKALIKES}]", "X"), _WRAPPING.pattern, "")
    return cleaned.where(cleaned.str.len() > 0)


def _byte_matrix(text: pd.Series, width: int) -> np.ndarray:
    """A (rows, width) uint8 view of ASCII strings that all have exactly `width` characters:
    the Arrow string buffer already is that matrix, so no Python string is made."""
    if text.empty:
        return np.zeros((0, width), dtype=np.uint8)
    array = to_arrow(text).cast(pa.large_string())
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[array.offset : array.offset + len(array) + 1]
    data = np.frombuffer(array.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    if array.null_count or data.size != len(array) * width:  # not fixed-width: take the slow road
        data = np.frombuffer("".join(text.tolist()).encode("ascii"), dtype=np.uint8)
    return data.reshape(-1, width)


def _digit_matrix(first17: pd.Series) -> np.ndarray:
    """A (rows, 17) uint8 matrix of the digits of 17-digit ASCII strings."""
    return _byte_matrix(first17, 17) - np.uint8(ord("0"))


def _check_remainders(digits: np.ndarray) -> np.ndarray:
    """Weighted digit sums modulo 11, a column at a time (no wide intermediate matrix)."""
    total = np.zeros(len(digits), dtype=np.int32)
    for column, weight in enumerate(_RESIDENT_ID_WEIGHTS):
        total += digits[:, column].astype(np.int32) * int(weight)
    return total % 11


def _check_chars(first17: pd.Series) -> np.ndarray:
    """Check characters for a Series of 17-digit strings (all of them digits)."""
    return np.array(list(_RESIDENT_ID_CHECK), dtype=object)[_check_remainders(_digit_matrix(first17))]


def _convert_legacy(cleaned: pd.Series) -> pd.Series:
    legacy = cleaned.str.fullmatch(_LEGACY_15.pattern).fillna(False).astype(bool)
    if not legacy.any():
        return cleaned
    old = cleaned[legacy]
    first17 = old.str.slice(0, 6) + "19" + old.str.slice(6)
    converted = cleaned.copy()
    converted[legacy] = first17 + pd.Series(_check_chars(first17), index=first17.index)
    return converted


def _id_facts(numbers: pd.Series, today: dt.date) -> pd.DataFrame:
    """Validity, birth date and gender of normalized numbers (positional, numpy masks)."""
    count = len(numbers)
    valid = np.zeros(count, dtype=bool)
    birth = np.full(count, np.datetime64("NaT"), dtype="datetime64[us]")
    gender_code = np.zeros(count, dtype=np.int8)  # 0 unknown, 1 M, 2 F
    shaped = numbers.str.fullmatch(_SHAPE_18.pattern).fillna(False).to_numpy(dtype=bool)
    if shaped.any():
        candidates = numbers[shaped]
        characters = _byte_matrix(candidates, 18)
        digits = characters[:, :17] - np.uint8(ord("0"))
        expected = np.frombuffer(_RESIDENT_ID_CHECK.encode("ascii"), dtype=np.uint8)[
            _check_remainders(digits)
        ]
        check_ok = characters[:, 17] == expected
        born = pd.to_datetime(
            candidates.str.slice(6, 14), format="%Y%m%d", errors="coerce"
        ).to_numpy(dtype="datetime64[us]")
        latest = np.datetime64(pd.Timestamp(today).date(), "us")
        plausible = ~np.isnat(born) & (born >= np.datetime64("1900-01-01", "us")) & (born <= latest)
        ok = check_ok & plausible
        positions = np.flatnonzero(shaped)[ok]
        valid[positions] = True
        birth[positions] = born[ok]
        gender_code[positions] = np.where(digits[ok, 16] % 2 == 1, 1, 2)
    return pd.DataFrame(
        {
            "cert_valid": valid,
            "birth_date": birth,
            "gender": pd.Series(
                np.array([np.nan, "M", "F"], dtype=object)[gender_code], dtype="str"
            ).to_numpy(),
        },
        index=numbers.index,
    )


def _resident_id_columns(distinct: pd.Series, today: dt.date) -> pd.DataFrame:
    """Every output column for distinct raw values (any index)."""
    cert_no = _convert_legacy(_clean_ids(distinct))
    facts = _id_facts(cert_no.fillna(""), today)
    masked = cert_no.str.contains("*", regex=False).fillna(False).astype(bool)
    # Masking hides digits with '*': a '*' in the kept parts means they are not known. A
    # clear number shorter than 16 characters (a mistyped one) keeps no ends: 4 and 4 of it
    # would show more than half. One its source masked as 4 + '*'s + 4 keeps them whatever
    # its length: the source published them (pipelines.privacy.visible_ends).
    source_masked = cert_no.str.fullmatch(SOURCE_MASKED.pattern)
    ends_shown = ((cert_no.str.len() >= 16) | source_masked).fillna(False).astype(bool)
    prefix4 = cert_no.str.slice(0, 4)
    suffix4 = cert_no.str.slice(-4)
    prefix4 = prefix4.where(ends_shown & ~prefix4.str.contains("*", regex=False).fillna(True))
    suffix4 = suffix4.where(ends_shown & ~suffix4.str.contains("*", regex=False).fillna(True))
    return pd.DataFrame(
        {
            "cert_no": cert_no.astype("str"),
            "cert_masked": masked,
            "cert_valid": facts["cert_valid"].astype(bool),
            "birth_date": facts["birth_date"].astype("datetime64[us]"),
            "gender": facts["gender"].astype("str"),
            "cert_prefix4": prefix4.astype("str"),
            "cert_suffix4": suffix4.astype("str"),
        },
        index=distinct.index,
    )


def normalize_resident_id(values: pd.Series, *, today: dt.date) -> pd.DataFrame:
    """Resident ID numbers -> one row per input row (index kept), columns:

    cert_no (normalized text, NaN when empty), cert_masked (bool), cert_valid (bool),
    birth_date (datetime64 naive, NaT unless valid), gender ('M'/'F', NaN unless valid),
    cert_prefix4, cert_suffix4 (text from a clear or masked number, NaN where unknown).
    Each distinct raw value is worked out once.
    """
    return map_unique_frame(as_text(values), lambda distinct: _resident_id_columns(distinct, today))


def identity_conflicts(
    id_gender: pd.Series,
    id_birth_date: pd.Series,
    stated_gender: pd.Series,
    stated_birth_date: pd.Series,
) -> pd.DataFrame:
    """Flags where the stated gender / birth date disagree with the ones the ID number holds.

    All four inputs already normalized (gender 'M'/'F', dates datetime64). A conflict needs
    both sides known; a missing side is no conflict. Returns [gender_conflict, birth_conflict].
    """
    gender_conflict = (
        id_gender.notna() & stated_gender.notna()
        & (id_gender.astype(object) != stated_gender.astype(object))
    )
    id_day = pd.to_datetime(id_birth_date, errors="coerce").dt.normalize()
    stated_day = pd.to_datetime(stated_birth_date, errors="coerce").dt.normalize()
    birth_conflict = id_day.notna() & stated_day.notna() & (id_day != stated_day)
    return pd.DataFrame(
        {"gender_conflict": gender_conflict.astype(bool), "birth_conflict": birth_conflict.astype(bool)}
    )


# ---------------------------------------------------------------------------------------
# Certificate types and other certificates.


def _cert_type(mapping: dict[str, str], key: str | None) -> str | None:
    # Unknown but present -> 'other' (a type we cannot read is still a certificate); values
    # that already are canonical types pass through (idempotent).
    if not key:
        return None
    return mapping.get(key, key if key in CERT_TYPES else "other")


@functools.lru_cache(maxsize=1024)
def _national_cert_type(value: str) -> str | None:
    code = value.strip()
    if len(code) == 1 and code in "0123456789":  # "1" -> "01": the code lost its zero
        code = "0" + code
    return _cert_type(_NATIONAL_CERT_TYPES, code)


@functools.lru_cache(maxsize=1024)
def _provincial_cert_type(value: str) -> str | None:
    from pipelines.normalize.names import normalize_name_one

    return _cert_type(_PROVINCIAL_CERT_TYPES, normalize_name_one(value))


def cert_type_from_national(values: pd.Series) -> pd.Series:
    """National albp0004 codes ('01'..'99') -> resident_id, hk_macao, taiwan, passport,
    military, other. Codes that lost their leading zero (1 -> '01') are read too."""
    return map_each_distinct(values, _national_cert_type)


def cert_type_from_provincial(values: pd.Series) -> pd.Series:
    """Provincial certType labels (身份证, 护照, ...) -> the same six types."""
    return map_each_distinct(values, _provincial_cert_type)


def normalize_other_cert(values: pd.Series) -> pd.Series:
    """Passport and permit numbers: full-width -> ASCII, spaces and dashes out, upper-case."""
    return map_unique(as_text(values), _clean_ids)


# ---------------------------------------------------------------------------------------
# Unified social credit codes (GB 32100).

# Registration authority and entity type (digits, or letters such as Y), six digits of
# region, nine of organization code, one check character. stdnum's `validate` insists on
# eight leading digits and would reject codes of authorities lettered A, N or Y.
_USCC_ALPHABET = "0-9ABCDEFGHJKLMNPQRTUWXY"
_USCC_SHAPE = re.compile(f"[{_USCC_ALPHABET}]{{2}}[0-9]{{6}}[{_USCC_ALPHABET}]{{10}}")


def _uscc_valid_one(code: str) -> bool:
    from stdnum.cn import uscc

    if not _USCC_SHAPE.fullmatch(code):  # stdnum raises on anything else; decide here
        return False
    try:
        return uscc.calc_check_digit(code[:17]) == code[17]
    except Exception:  # noqa: BLE001 - a library quirk must not stop a sync
        return False


def uscc_identifies(codes: pd.Series) -> pd.Series:
    """Whether each cleaned code (`normalize_uscc`) can tell one organization from another:
    shaped like a USCC (its check not asked: the same code mistyped alike in both systems is
    still one organization's), and not one character repeated. What operators type where an
    organization has no code (无, 暂无, NULL, 000000000000000000) would join every team that
    has none."""
    text = as_text(codes)
    shaped = text.str.fullmatch(_USCC_SHAPE.pattern).fillna(False).astype(bool)
    repeated = text.str.fullmatch(r"(.)\1*").fillna(False).astype(bool)
    return shaped & ~repeated


def normalize_uscc(values: pd.Series) -> pd.DataFrame:
    """USCC -> [uscc (cleaned: ASCII, upper-case, no spaces or dashes; NaN when empty),
    uscc_valid (18 characters of the GB 32100 alphabet, digits 3-8 a region, check right)]."""
    text = as_text(values)
    cleaned = map_unique(text, _clean_ids)
    valid = map_unique(cleaned, lambda d: d.map(_uscc_valid_one), dtype=None)
    return pd.DataFrame(
        {"uscc": cleaned, "uscc_valid": valid.fillna(False).astype(bool)}, index=text.index
    )
