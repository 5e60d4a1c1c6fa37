"""Privacy helpers: pseudonymise and mask personal data (志愿服务条例 art. 20, the contract).

No certificate number, phone or full name may appear in clear in the warehouse, the logs,
exception messages or Dagster metadata. This module is the one place that knows how:
* `hmac_hex`: the keyed hash that stands for a number (HMAC-SHA256 under PII_HASH_KEY);
* `mask_id` / `mask_phone` / `mask_name` (and vectorized `mask_ids`, ...): what may be shown
  (first 4 + last 4 of a certificate, first 3 + last 4 of a phone, the family name);
* `mask_record`: a source row with its personal fields masked, for the quarantine table;
* `redact`: free text with anything shaped like an ID number or a mobile masked, for log
  lines and error messages (`pipelines.logging_privacy` applies it to every log record).

No Dagster here; the key is passed in by the caller (it comes from `Settings`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

from pipelines.normalize import as_text, is_missing, map_unique

# The contract's list: a two-character family name counts as one where it is one of these.
COMPOUND_SURNAMES: frozenset[str] = frozenset(
    "欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 夏侯 令狐 端木 独孤".split()
)

# Field names of either source that hold personal data.
NAME_FIELDS = frozenset({"albp0003", "realName", "albe0018", "leader"})
CERT_FIELDS = frozenset({"albp0005", "certNo"})
PHONE_FIELDS = frozenset({"albp0010", "mobile", "albe0019", "leaderMobile"})
# Record identifiers (row ids, volunteer / team / project numbers, cross-system links):
# never personal, and needed in clear to find the row again, so the free-text scan skips
# them even if a source made them 15 or 18 digits long.
IDENTIFIER_FIELDS = frozenset({
    "id", "albp0029", "albe0001", "albx0001", "albx0175", "userId", "teamId", "activityId",
    "stationId", "nationalVolunteerNo", "nationalTeamNo", "nationalRecordId", "origin",
})


# ---------------------------------------------------------------------------------------
# Keyed hash.


def _hmac_one(value: str, key_bytes: bytes) -> str:
    return hmac.new(key_bytes, value.encode("utf-8", "replace"), hashlib.sha256).hexdigest()


def hmac_hex(values: pd.Series | str | None, key: str):
    """Lowercase hex HMAC-SHA256 of each value's UTF-8 bytes under the UTF-8 `key`.

    A scalar gives a str (None for None/NaN); a Series gives a str Series (NaN where
    missing), computed once per distinct value. Hash what you mean to compare: the
    *normalized* number (18-character resident ID, 11-digit phone).
    """
    key_bytes = key.encode("utf-8")
    if not isinstance(values, pd.Series):
        if is_missing(values):
            return None
        return _hmac_one(values if isinstance(values, str) else str(values), key_bytes)
    return map_unique(
        as_text(values),
        lambda distinct: distinct.map(lambda v: _hmac_one(v, key_bytes)).astype("str"),
    )


# ---------------------------------------------------------------------------------------
# Masking, scalar.


def mask_id(value) -> str | None:
    """A certificate number with all but the first 4 and the last 4 characters as '*'
    (5201**********123X); numbers of 8 characters or fewer are masked whole. An already
    masked number comes back unchanged. Give it the normalized number."""
    if is_missing(value):
        return None
    text = value if isinstance(value, str) else str(value)
    if len(text) <= 8:
        return "*" * len(text)
    return text[:4] + "*" * (len(text) - 8) + text[-4:]


def mask_phone(value) -> str | None:
    """A phone with all but the first 3 and the last 4 digits as '*' (138****5678); the
    number is normalized first (+86, spaces, dashes); 7 characters or fewer are masked whole."""
    from pipelines.normalize.phones import normalize_phone_one

    if is_missing(value):
        return None
    text = normalize_phone_one(value if isinstance(value, str) else str(value))
    if text is None:
        return None
    if len(text) <= 7:
        return "*" * len(text)
    return text[:3] + "*" * (len(text) - 7) + text[-4:]


def _family_name_length(name: str) -> int:
    # A two-character name starting with a compound surname is a single-character family
    # name plus a given name (欧阳 alone is 欧 + 阳).
    return 2 if len(name) > 2 and name[:2] in COMPOUND_SURNAMES else 1


def _mask_normalized_name(name: str) -> str:
    if len(name) <= 1:
        return "*" * len(name)  # a one-character name is all family name: show nothing
    keep = _family_name_length(name)
    return name[:keep] + "*" * (len(name) - keep)


def mask_name(value, normalized: bool = False) -> str | None:
    """The family name kept, a '*' for every other character: 张小明 -> 张**, 欧阳娜娜 ->
    欧阳**. Applied to the normalized (simplified) name; pass `normalized=True` to skip
    normalizing a value that already is."""
    from pipelines.normalize.names import normalize_name_one

    name = value if normalized and isinstance(value, str) else normalize_name_one(value)
    if name is None or is_missing(name):
        return None
    return _mask_normalized_name(name)


# ---------------------------------------------------------------------------------------
# Masking, vectorized.


def mask_ids(values: pd.Series) -> pd.Series:
    """`mask_id` over a column (str, NaN where missing)."""
    return map_unique(as_text(values), lambda d: d.map(mask_id).astype("str"))


def mask_names(values: pd.Series, normalized: bool = False) -> pd.Series:
    """`mask_name` over a column (str, NaN where missing); names are normalized first
    (vectorized) unless `normalized=True`."""
    from pipelines.normalize.names import normalize_name

    names = as_text(values) if normalized else normalize_name(values)
    return map_unique(names, lambda d: d.map(_mask_normalized_name).astype("str"))


# ---------------------------------------------------------------------------------------
# Free text and whole records.

# ID-number shapes: 17 digits + check character, or 15 digits, optionally in groups split
# by a space or a dash (how people write them in messages). Python's \d also matches
# full-width digits, which is what is wanted here. Bounded so that part of a longer digit
# string is not taken for a number.
_ID_LIKE = re.compile(
    r"(?<![0-9A-Za-z０-９])"
    r"(?:\d(?:[ -]?\d){16}[ -]?[\dXxＸｘ]|\d(?:[ -]?\d){14})"
    r"(?![0-9A-Za-z０-９])"
)
# Mainland mobiles, with or without +86 and separators.
_MOBILE_LIKE = re.compile(
    r"(?<![0-9０-９])(?:(?:\+|00)?86[ -]?)?[1１][3-9３-９]\d[ -]?\d{4}[ -]?\d{4}(?![0-9０-９])"
)


_ANY_DIGIT = re.compile(r"\d")


def _mask_id_match(match: re.Match) -> str:
    from pipelines.normalize.ids import normalize_resident_id_one

    return mask_id(normalize_resident_id_one(match.group(0))) or ""


def _mask_mobile_match(match: re.Match) -> str:
    return mask_phone(match.group(0)) or ""


def redact(text) -> str:
    """`text` with every ID-number-like (15 or 18 characters) or mobile-like substring
    replaced by its masked form. For log lines and error messages; never raises."""
    if text is None:
        return ""
    if not isinstance(text, str):
        text = str(text)
    if not _ANY_DIGIT.search(text):  # the common case: nothing to look for
        return text
    text = _ID_LIKE.sub(_mask_id_match, text)
    return _MOBILE_LIKE.sub(_mask_mobile_match, text)


def _mask_value(field: str | None, value: Any) -> Any:
    if isinstance(value, Mapping):
        return mask_record(value)
    if isinstance(value, (list, tuple)):
        return [_mask_value(field, item) for item in value]
    if not isinstance(value, str):
        # a number could be a phone or an ID that lost its quotes
        if field in CERT_FIELDS | PHONE_FIELDS | NAME_FIELDS and not is_missing(value):
            value = str(value)
        elif isinstance(value, int) and not isinstance(value, bool) and field not in IDENTIFIER_FIELDS:
            redacted = redact(str(value))
            return value if redacted == str(value) else redacted
        else:
            return value
    if field in NAME_FIELDS:
        return mask_name(value)
    if field in CERT_FIELDS:
        from pipelines.normalize.ids import normalize_resident_id_one

        return mask_id(normalize_resident_id_one(value))
    if field in PHONE_FIELDS:
        return mask_phone(value)
    if field in IDENTIFIER_FIELDS:
        return value
    return redact(value)


def mask_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a source row (national or provincial, any entity) with personal fields
    masked by field name (names, certificate numbers, phones, contacts) and any other value
    that looks like an ID number or a mobile redacted. Nested objects and lists included."""
    if not isinstance(record, Mapping):
        return record  # type: ignore[return-value]
    return {key: _mask_value(key, value) for key, value in record.items()}
