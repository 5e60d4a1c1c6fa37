"""Privacy helpers: pseudonymise and mask personal data (志愿服务条例 art. 20, the contract).

No certificate number, phone or full name may appear in clear in the warehouse, the logs,
exception messages or Dagster metadata, wherever the value stands (an ID number typed into
an area-code box is still an ID number). This module is the one place that knows how:
* `hmac_hex`: the keyed hash that stands for a number (HMAC-SHA256 under PII_HASH_KEY);
* `mask_id` / `mask_phone` / `mask_name` (and vectorized `mask_ids`, `mask_names`): what
  may be shown. One masking function serves every certificate type and never shows more
  than half of a number (an 18-character resident ID keeps its first and last 4);
* `find_personal_numbers`: ID-shaped and phone-shaped runs (mobiles and fixed lines) in any
  form people write them (groups, dots, brackets, a dash with spaces around it, zero-width
  characters, full-width digits, letters glued to them: SFZ52010219900101123X);
* `redact`: free text with every such run masked (log lines, error messages);
* `mask_record`: a source row with every value masked by what it looks like (ID-shaped,
  phone-shaped, name-shaped) in whichever field it stands, for the quarantine table.

No Dagster here; the key is passed in by the caller (it comes from `Settings`).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import yaml

from pipelines.normalize import WHITESPACE_CHARS, as_text, char_class, is_missing, map_unique
from schemas import schema_file


@functools.lru_cache(maxsize=1)
def _surnames() -> dict[str, frozenset[str]]:
    document = yaml.safe_load(schema_file("surnames.yaml").read_text(encoding="utf-8"))
    return {kind: frozenset(document[kind]) for kind in ("compound", "common")}


# The contract's list: a two-character family name counts as one where it is one of these.
COMPOUND_SURNAMES: frozenset[str] = _surnames()["compound"]

# Field names of either source that hold personal data: masked whatever they hold.
NAME_FIELDS = frozenset({"albp0003", "realName", "albe0018", "leader"})
CERT_FIELDS = frozenset({"albp0005", "certNo"})
PHONE_FIELDS = frozenset({"albp0010", "mobile", "albe0019", "leaderMobile"})
# Birth dates keep their year alone, as dim_volunteer does (birth_year): beside the ID
# number's first and last four characters and the account's county, a full birth date gives
# the number away (6 county + 8 birth date + 4 shown = 18).
BIRTH_DATE_FIELDS = frozenset({"birthday"})
# Record identifiers (row ids, volunteer / team / project numbers, cross-system links): kept
# in clear to find the row again, unless what they hold is a real resident ID number.
IDENTIFIER_FIELDS = frozenset({
    "id", "albp0029", "albe0001", "albx0001", "albx0175", "userId", "teamId", "activityId",
    "stationId", "nationalVolunteerNo", "nationalTeamNo", "nationalRecordId", "origin",
})
# A quarantined record keeps this much of a long text (a 300-character paste is evidence
# enough at 200) and this much nesting.
MAX_TEXT = 200
MAX_DEPTH = 8


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


# A number its source masked itself: 4 characters, one or more '*', 4 characters. The
# national interface fixes the ends, not the number of stars (5201**********123X, a legacy
# 5201*******1234, a short 5201**123X).
SOURCE_MASKED = re.compile(r"[^*]{4}\*+[^*]{4}")


def visible_ends(number: str) -> tuple[str, str]:
    """The first and last characters masking may show of a certificate number: 4 and 4 of
    an 18-character resident ID (the contract), never more than a quarter each of a shorter
    one (an 8-character permit shows 2 and 2), nothing of 3 characters or fewer. A number
    its source masked (`SOURCE_MASKED`) shows its 4 and 4 whatever its length: they are
    what the source already published, so showing them reveals nothing more."""
    if SOURCE_MASKED.fullmatch(number):
        return number[:4], number[-4:]
    keep = min(4, len(number) // 4)
    return (number[:keep], number[len(number) - keep:]) if keep else ("", "")


def mask_id(value) -> str | None:
    """A certificate number of any type with all but `visible_ends` as '*'
    (52010219900101123X -> 5201**********123X; a passport E12345678 -> E1*****78). An already
    masked number comes back unchanged. Give it the normalized number."""
    if is_missing(value):
        return None
    text = value if isinstance(value, str) else str(value)
    head, tail = visible_ends(text)
    return head + "*" * (len(text) - len(head) - len(tail)) + tail


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
# Personal numbers in free text, in any form people write them.

_DIGIT = "[0-9０-９]"
# The check character X as typed: Latin or full-width, the multiplication sign an input
# method offers for "x" (×), the Roman numeral (Ⅹ ⅹ).
_X_FORMS = "XxＸｘ×Ⅹⅹ"
_CHECK = f"[0-9０-９{_X_FORMS}]"
# What people put between the digits of a number: spaces of any width and invisible format
# characters (zero-width space, joiners, BOM), up to two; or a dash, a dot, a slash or a
# bracket (one or two), with up to two spaces on either side (520102 - 19900101 - 123X).
# The marks are also what the same keys type in a Chinese input mode: 。 for the dot, 、 for
# the backslash, ～ for the tilde (138。1234。5678 is a phone typed with the IME left on).
# Commas and colons are no gaps: amounts (13,800,000,000) and times stay what they are. One
# way only to read a given gap (spaces, marks, spaces): a run that is no number fails in
# time linear in its length, whatever its separators.
_INVISIBLE = "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff"
_GAP_SPACES = char_class([(ord(c), ord(c)) for c in WHITESPACE_CHARS + _INVISIBLE])
_GAP_MARKS = char_class([(ord(c), ord(c)) for c in "-‐‑‒–—―−－﹣_.．。·・/／\\、~～()（）"])
_GAP = f"{_GAP_SPACES}{{0,2}}(?:{_GAP_MARKS}{{1,2}}{_GAP_SPACES}{{0,2}})?"
# Any of those characters, and how many stand between two digits of a number at most (a gap
# and a bracket): what the cheap searches look for, here and in the warehouse scan (written
# with `char_class`, so RE2 and PostgreSQL read it as Python does).
SEPARATOR = _GAP_SPACES[:-1] + _GAP_MARKS[1:]
MAX_SEPARATORS = 7
# Only a digit beside a run stops it being a number: a letter does not (SFZ52010219900101123X,
# tel13812345678), so a number glued to a word is found like any other.
_EDGE_BEFORE = "(?<![0-9０-９])"
_EDGE_AFTER = "(?![0-9０-９])"
# Resident ID numbers: 17 digits and a check character (X or x there only), or 15 digits
# (before 1999).
_ID_SHAPED = re.compile(
    f"{_EDGE_BEFORE}(?:{_DIGIT}(?:{_GAP}{_DIGIT}){{16}}{_GAP}{_CHECK}|{_DIGIT}(?:{_GAP}{_DIGIT}){{14}}){_EDGE_AFTER}"
)
# An ID number with its check character left off or masked alone (52010219900101123,
# 52010219900101123*): its 17 digits are the number whole (the check character follows from
# them). Taken only where they could be somebody's (a province's code and a real birth date:
# `_could_be_17_of_an_id`), so a source's 17-digit record numbers stay what they are.
_ID_17 = re.compile(f"{_EDGE_BEFORE}{_DIGIT}(?:{_GAP}{_DIGIT}){{16}}{_EDGE_AFTER}")
# Numbers glued together with nothing between them (two mobiles pasted from two cells of a
# spreadsheet: 1381234567813912345678). The patterns take no digit beside another, so a run
# longer than any one number is read as numbers end to end (`_glued_numbers`), taken only
# when it splits wholly into mobiles and numbers that could be somebody's ID number.
_GLUED = re.compile(f"{_EDGE_BEFORE}{_DIGIT}{{22,}}{_CHECK}?{_EDGE_AFTER}")
_MOBILE = re.compile("1[3-9][0-9]{9}")
# Mainland mobiles, with or without +86 / 0086, in any grouping: 138.1234.5678, (138)12345678.
_PHONE_SHAPED = re.compile(
    f"{_EDGE_BEFORE}(?:(?:\\+|00)?86{_GAP})?[(（]?[1１]{_GAP}[3-9３-９]{_GAP}{_DIGIT}[)）]?"
    f"(?:{_GAP}{_DIGIT}){{8}}{_EDGE_AFTER}"
)
# Fixed lines: an area code (0 and 2 digits, then a number of 8 digits: 010, 020-029; or 0
# and 3 digits, then 7 or 8: 0851 Guiyang) written whole, in brackets or not, and a local
# number that starts with 2-9, in any grouping: 0851-86812345, (0851)86812345, 0851 8681 2345.
# Or +86 / 0086 and the area code without its 0. 11 or 12 digits (up to 15 with 0086): never
# fewer than a mobile's 11, which the cheap passes count. The area code's digits written
# together and the local number's first 2-9 keep dates, times and zero-padded numbers out.
_LOCAL_7 = f"[2-9２-９](?:{_GAP}{_DIGIT}){{6}}"
_LANDLINE_SHAPED = re.compile(
    f"{_EDGE_BEFORE}(?:(?:\\+|00)86{_GAP}[(（]?|[(（]?[0０])[1-9１-９]{_DIGIT}"
    f"(?:[)）]?{_GAP}{_LOCAL_7}{_GAP}{_DIGIT}|{_DIGIT}[)）]?{_GAP}{_LOCAL_7}(?:{_GAP}{_DIGIT})?)"
    f"{_EDGE_AFTER}"
)
# What every one of them holds: 11 digits or more, `MAX_SEPARATORS` at most between two.
# Searched first, possessively: most texts hold no such run, and in a run id or a hash the
# patterns would start at every digit after a letter.
_ELEVEN_DIGITS = re.compile(f"{_DIGIT}(?:{SEPARATOR}{{0,{MAX_SEPARATORS}}}+{_DIGIT}){{10}}")
# A hash, a run id, a UUID: hexadecimal of one case, 16 characters or more with a letter
# among them, or a UUID's 8-4-4-4-12. A run of digits inside one is no number (1 run id or
# hash in 60 to 135 held a run shaped like an ID number or a phone once letters stopped
# nothing); a person's number is not written inside one.
_HEX_TOKEN = re.compile(
    "(?<![0-9A-Za-z])(?:[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}|[0-9A-F]{8}(?:-[0-9A-F]{4}){3}-[0-9A-F]{12}"
    "|(?=[0-9]*[a-f])[0-9a-f]{16,}|(?=[0-9]*[A-F])[0-9A-F]{16,})(?![0-9A-Za-z])"
)
_FULLWIDTH = str.maketrans("０１２３４５６７８９ＸｘＹｙ×Ⅹⅹ", "0123456789XxYyXXx")
_NOT_ID_CHARACTER = re.compile(r"[^0-9Xx]")


@dataclass(frozen=True)
class PersonalNumber:
    kind: str  # "id" or "phone" (a mobile or a fixed line)
    start: int
    end: int
    digits: str  # the number as plain ASCII, separators removed (a fixed line with its 0)

    def masked(self) -> str:
        return mask_id(self.digits.upper()) if self.kind == "id" else mask_phone(self.digits) or ""


def _plain(text: str) -> str:
    return _NOT_ID_CHARACTER.sub("", text.translate(_FULLWIDTH))


def _mobile_digits(digits: str) -> str:
    return digits[-11:]  # without +86 / 0086


def _landline_digits(digits: str) -> str:
    # as dialled at home: +86 / 0086 gives way to the area code's 0 (no area code starts 00)
    if digits.startswith("00"):
        return "0" + digits[4:]
    return digits if digits.startswith("0") else "0" + digits[2:]


# In this order: a run two patterns take is the first one's (an ID number before a phone).
_PATTERNS = (
    ("id", _ID_SHAPED, str),
    ("id", _ID_17, str),
    ("phone", _PHONE_SHAPED, _mobile_digits),
    ("phone", _LANDLINE_SHAPED, _landline_digits),
)


# A decimal number as a program prints it: a short whole part and ten fraction digits or
# more (Dagster's `retry in 5.588188188188188 seconds`). A person's number written with a dot
# has a region code or a mobile's prefix before it and its groups are shorter.
_DECIMAL_FRACTION = re.compile("(?<![0-9０-９.])[0-9]{1,3}\\.[0-9]{10,}(?![0-9０-９])")
# what either needs: a text without one (most) is searched as it is
_HEX_LETTER_OR_POINT = re.compile("[a-fA-F.]")


def _not_numbers_blanked(text: str) -> str:
    """`text` with every hash, run id or UUID (`_HEX_TOKEN`) and every long decimal fraction
    (`_DECIMAL_FRACTION`) blanked, its length kept: no number is read through one, wholly or
    in part (a run id's last digits and the process id after it in a log line,
    `...-e6e7ac087375 - 59584 -`, were once masked as a phone)."""
    if not _HEX_LETTER_OR_POINT.search(text):
        return text

    def blank(token: re.Match) -> str:
        return "\0" * len(token.group(0))

    return _DECIMAL_FRACTION.sub(blank, _HEX_TOKEN.sub(blank, text))


def find_personal_numbers(text: str) -> list[PersonalNumber]:
    """Every ID-shaped, mobile-shaped and fixed-line-shaped run in `text`, in order, not
    overlapping (a fixed line is a "phone"), none taking a digit of a hash, a run id or a long
    decimal fraction (`_not_numbers_blanked`). Shape only: no check character is verified (a
    mistyped number is still somebody's number)."""
    if not _ELEVEN_DIGITS.search(text):
        return []
    searched = _not_numbers_blanked(text)
    found: list[PersonalNumber] = []
    for kind, pattern, digits_of in _PATTERNS:
        for match in pattern.finditer(searched):
            if any(match.start() < other.end and other.start < match.end() for other in found):
                continue
            digits = digits_of(_plain(match.group(0)))
            if kind == "id" and len(digits) == 15 and digits.startswith("0086"):
                continue  # 0086 and a phone, for the phone patterns: no province's code starts 00
            if kind == "id" and len(digits) == 17 and not _could_be_17_of_an_id(digits):
                continue
            found.append(PersonalNumber(kind, match.start(), match.end(), digits))
    for match in _GLUED.finditer(searched):
        digits = _plain(match.group(0))  # one character a digit: positions kept
        for kind, start, end in _glued_numbers(digits) or ():
            found.append(PersonalNumber(kind, match.start() + start, match.start() + end, digits[start:end]))
    return sorted(found, key=lambda number: number.start)


def _glued_numbers(digits: str) -> list[tuple[str, int, int]] | None:
    """(kind, start, end) of the mobiles and ID numbers (15 or 18 characters) that `digits`
    is, end to end; None when it is not wholly such numbers (a long record number)."""
    from pipelines.normalize.ids import could_be_a_resident_id

    def is_number(kind: str, piece: str) -> bool:
        return bool(_MOBILE.fullmatch(piece)) if kind == "phone" else could_be_a_resident_id(piece)

    # ways[i]: the numbers digits[i:] is, end to end (filled from the end: each piece's
    # rest is decided before it)
    ways: dict[int, list[tuple[str, int, int]]] = {len(digits): []}
    for start in range(len(digits) - 11, -1, -1):
        for kind, width in (("phone", 11), ("id", 18), ("id", 15)):
            end = start + width
            if end in ways and is_number(kind, digits[start:end]):
                ways[start] = [(kind, start, end), *ways[end]]
                break
    return ways.get(0)


def _could_be_17_of_an_id(digits: str) -> bool:
    from pipelines.normalize.ids import could_be_a_resident_id

    return could_be_a_resident_id(digits + "0")  # its check character is not asked


_ANY_DIGIT = re.compile("[0-9０-９]")


def redact(text) -> str:
    """`text` with every ID-number-like or phone-like run (a mobile, a fixed line) masked,
    whatever separators or invisible characters sit between its digits and whatever letters
    stand beside it. For log lines, error messages, metadata; never raises."""
    if text is None:
        return ""
    if not isinstance(text, str):
        text = str(text)
    if not _ANY_DIGIT.search(text):  # the common case: nothing to look for
        return text
    pieces, position = [], 0
    for number in find_personal_numbers(text):
        pieces += [text[position:number.start], number.masked()]
        position = number.end
    return "".join(pieces) + text[position:]


# The runs of digits that are a number written whole: a mobile, 86 and a mobile, a fixed
# line (0 and 10 or 11 digits; 0086 and 10 more), any 15 digits (a 15-digit ID, 0086 and a
# mobile or a fixed line), 17 digits with a check character or without (`_ID_17`), and 22
# or more (numbers glued together: `_GLUED`).
WHOLE_NUMBER = (
    r"1[3-9][0-9]{9}|861[3-9][0-9]{9}|0[1-9][0-9]{9,10}|0086[1-9][0-9]{9}|[0-9]{15}|[0-9]{17}[0-9Xx]?"
    r"|[0-9]{22,}[0-9Xx]?"
)
# In a value of ASCII letters and digits alone, a number is a whole run between letters or
# the value's ends (the patterns refuse a digit beside a number, and there is no separator
# to join two runs). Decided for a column at once: the sources' record ids are of this kind,
# and most (14 or 16 digits, a letter and 10 or 12 digits that start 52) hold none.
_WHOLE_RUN = f"(?:^|[A-Za-z])(?:{WHOLE_NUMBER})(?:[A-Za-z]|$)"


def _may_hold_a_number(values: pd.Series) -> pd.Series:
    """Rows a personal number can hide in (cheap, vectorized): of the values of ASCII letters
    and digits alone, those with a run of digits that is a number whole (`_WHOLE_RUN`); of
    the others, those with at least 11 digits, counted as what is left once everything else
    is taken out (Arrow counts matches one by one: ten times slower)."""
    text = values.astype("string")
    plain = text.str.fullmatch("[0-9A-Za-z]+").fillna(False).astype(bool)
    may = pd.Series(False, index=text.index)
    may[plain] = text[plain].str.contains(_WHOLE_RUN).astype(bool)
    others = text[~plain & text.notna()]
    may[others.index] = others.str.replace("[^0-9０-９]", "", regex=True).str.len() >= 11
    return may


def redact_values(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """`redact` over a text column: (the redacted column, rows where something was masked)."""
    text = as_text(values)
    suspects = _may_hold_a_number(text)
    if not suspects.any():
        return text, pd.Series(False, index=values.index)
    redacted = text.copy()
    redacted[suspects] = map_unique(text[suspects], lambda d: d.map(redact).astype("str"))
    return redacted, (suspects & redacted.ne(text)).fillna(False).astype(bool)


def shaped_like_a_personal_number(values: pd.Series) -> pd.Series:
    """Rows whose value holds an ID-shaped or phone-shaped run (a name or a code a person
    typed a number into)."""
    return redact_values(values)[1]


def holds_a_personal_number(identifier: str) -> bool:
    """Whether a key, a record number or a reference holds a personal number: a mobile-shaped
    run, or an ID-shaped run that could be somebody's resident ID number
    (`ids.could_be_a_resident_id`). Shape alone would refuse the sources' own record numbers:
    the contract fixes their width, not which, and 15 or 18 digits is as likely as any; so
    would a fixed line's shape (0 and 10 or 11 digits: a zero-padded record number), which
    free text masks but a key keeps."""
    from pipelines.normalize.ids import could_be_a_resident_id

    numbers = find_personal_numbers(identifier)
    if any(number.digits.startswith("1") if number.kind == "phone" else could_be_a_resident_id(number.digits)
           for number in numbers):
        return True
    # a mobile and an extension (13812345678-8001) read as one ID-shaped run that is nobody's
    # ID number, and the mobile in it went unseen: a mobile followed by a gap is one
    return bool(numbers) and any(
        _MOBILE.fullmatch(_mobile_digits(_plain(match.group(0))))
        for match in _PHONE_SHAPED.finditer(_not_numbers_blanked(identifier)))


def identifiers_holding_a_personal_number(values: pd.Series) -> pd.Series:
    """`holds_a_personal_number` over a column of identifiers (False where missing). In a
    value of letters and digits alone a number is a whole run (`WHOLE_NUMBER`): those values,
    the common case, are passed over or judged a column at a time."""
    from pipelines.normalize.ids import WHOLE_RESIDENT_ID, could_be_resident_ids

    text = as_text(values)
    found = pd.Series(False, index=text.index)
    suspects = text[_may_hold_a_number(text) & text.notna()]
    whole_id = suspects.str.fullmatch(WHOLE_RESIDENT_ID).fillna(False).astype(bool)
    found[suspects.index[whole_id]] = could_be_resident_ids(suspects[whole_id]).to_numpy()
    others = suspects[~whole_id]
    if len(others):
        found[others.index] = map_unique(others, lambda d: d.map(holds_a_personal_number), dtype=None).astype(bool)
    return found


# ---------------------------------------------------------------------------------------
# Whole records.

_HAN = re.compile(r"^[\u3400-\u4dbf\u4e00-\u9fff·]{2,4}$")


# The provincial interface's own words for where a station is hosted (Station.hostType) and
# the level a team is managed at (Team.level): 车站, 景区, 文化馆, 纪念馆 and 单位 start with a
# family name and were masked in quarantined records (车*, 景*) as if they were persons.
PROVINCIAL_FIELD_WORDS = frozenset({
    "社区", "图书馆", "博物馆", "文化馆", "美术馆", "科技馆", "纪念馆", "车站", "码头", "空港", "医院",
    "景区", "高速公路服务区", "学校", "村委会", "物业", "其他",
    "省级", "市级", "县级", "乡镇", "单位",
})


@functools.lru_cache(maxsize=1)
def _known_words() -> frozenset[str]:
    """Words of the sources' own vocabularies (应急, 助老, 良好, 车站...): never a person."""
    from pipelines.normalize import categories, statuses

    words = set(categories.NATIONAL_LABELS) | set(categories.category_words()) | PROVINCIAL_FIELD_WORDS
    for spec in statuses.vocabularies().values():
        words |= {str(label) for label in (spec.get("provincial") or {})}
    return frozenset(words)


def looks_like_a_name(text: str) -> bool:
    """Two to four Han characters that start with a family name and are no word of the
    sources' vocabularies: a person's name, as far as masking is concerned (the safe
    mistake is masking a short place name)."""
    compact = re.sub(r"\s", "", text)
    if not _HAN.match(compact) or compact in _known_words():
        return False
    surnames = _surnames()
    return compact[:2] in surnames["compound"] or compact[0] in surnames["common"]


_TOKEN_SEPARATORS = re.compile(r"([\s,，、;；:：/|()（）\[\]【】<>《》\"'“”‘’]+)")


def mask_names_in(text: str) -> str:
    """`text` with every word that looks like a person's name masked (`looks_like_a_name`),
    words being what separators (spaces, commas, colons, brackets...) set apart."""
    return "".join(
        (mask_name(piece) or piece) if looks_like_a_name(piece) else piece
        for piece in _TOKEN_SEPARATORS.split(text)
    )


def year_only(text: str) -> str:
    """A date as typed ("1980-01-05", "1980/01/05", "19800105") with every digit after the
    year masked: "1980-**-**", "1980/**/**", "1980****"."""
    return text[:4] + re.sub(r"\d", "*", text[4:])


def _mask_text(field: str | None, text: str) -> str:
    if field in BIRTH_DATE_FIELDS:
        return year_only(text)
    if "*" in text:
        return redact(text)  # already masked (a second pass, or masked at the source)
    if field in CERT_FIELDS:
        from pipelines.normalize.ids import normalize_resident_id_one

        return mask_id(normalize_resident_id_one(text)) or ""
    if field in PHONE_FIELDS:
        return mask_phone(text) or ""
    numbers = find_personal_numbers(text)
    if field in NAME_FIELDS or looks_like_a_name(text) and not numbers:
        return mask_name(redact(text)) or ""
    length = len(text)
    if numbers:  # masked before the cut: cut first, a number across it kept its first digits
        text = redact(text)
    if len(text) > MAX_TEXT:  # cut to MAX_TEXT in all, so a second pass leaves it as it is
        said = f"…({length} characters)"
        text = text[: MAX_TEXT - len(said)] + said
    # and the names written around a number
    return mask_names_in(text) if numbers else text


def _mask_value(field: str | None, value: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        return "…(nested too deep)"
    if isinstance(value, Mapping):
        return {_mask_text(None, str(key)): _mask_value(str(key), item, depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask_value(field, item, depth + 1) for item in value]
    if isinstance(value, bool) or value is None or is_missing(value):
        return value
    if isinstance(value, (int, float)) and field in IDENTIFIER_FIELDS:
        return value if redact(str(value)) == str(value) else redact(str(value))
    if isinstance(value, (int, float)):
        # a number can be an ID number or a phone that lost its quotes
        text = str(value) if not isinstance(value, float) or not value.is_integer() else str(int(value))
        masked = _mask_text(field, text) if field in CERT_FIELDS | PHONE_FIELDS | BIRTH_DATE_FIELDS else redact(text)
        return value if masked == text else masked
    return _mask_text(field, str(value))


def mask_record(record: Any) -> Any:
    """A copy of a source row (national or provincial, any entity, or whatever stood in its
    place) with every value masked by where it stands and by what it looks like: names,
    certificate numbers and phones in their fields; ID-shaped and phone-shaped runs and
    name-shaped values anywhere, nested objects and lists included; long texts cut."""
    return _mask_value(None, record, 0)
