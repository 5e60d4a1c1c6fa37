"""The normalizers a mapping names (`via:`), one per kind of source value, that never raise.

Each takes the extracted source values of one field (a Series) and returns a `Normalized`:
the canonical values and `failed`, the rows where a value was there but could not be made
canonical (an unreadable date, a region that is no division code, a star level of 1e30).
What happens to a failed row is the mapping's decision, not the transform's
(`on_error: quarantine` or `on_error: null`, see `pipelines/staging/adapter.py`).

A `Transform` also says which JSON kinds it accepts (a name must be text; a region code may
come as a number; an ID number must never come as a number, whose digits a float may have
rounded) and, for details, what a valid value is. The adapter rejects a value of another
kind before the normalizer sees it, so a list where a name belongs fails here instead of
becoming the text `["张", "三"]`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from pipelines.clock import AsOf
from pipelines.config import Settings
from pipelines.name_seal import sealed_names
from pipelines.normalize import as_text as normalize_text
from pipelines.normalize import INVISIBLE_CLASS, fold_fullwidth, to_arrow, visible_text
from pipelines.normalize import categories, durations, names, phones, regions, statuses
from pipelines.normalize.dates import (
    BEIJING_OFFSET,
    beijing_text_to_utc,
    iso_to_utc,
    minutes_to_hours,
    PLACEHOLDER_WHY,
    SERIAL_WHY,
    numbers_no_date_reads,
    parse_date,
    placeholder_dates,
    plausible,
    utc_to_beijing_date,
)
from pipelines.privacy import (
    hmac_hex,
    identifiers_holding_a_personal_number,
    mask_names_in,
    redact_values,
    shaped_like_a_personal_number,
)
from pipelines.schemas import StreamMapping

TEXT = frozenset({"text"})
TEXT_OR_NUMBER = frozenset({"text", "number"})
NUMBER_OR_TEXT = frozenset({"number", "text"})
ANY_SCALAR = frozenset({"text", "number", "bool"})
LIST = frozenset({"list"})
ANY_KIND = frozenset({"text", "number", "bool", "list", "object"})
# The range a whole number must fit in to stay exact through float64 (JSON numbers arrive
# as doubles): beyond it, digits have been lost on the way.
EXACT_INTEGERS = 2.0**53


@dataclass
class Context:
    """What the transforms of one chunk share, and the soft flags they raise."""

    mapping: StreamMapping
    settings: Settings
    as_of: AsOf
    index: pd.Index
    is_deleted: pd.Series
    soft_flags: dict[str, pd.Series] = field(default_factory=dict)
    # the first instant (UTC) after `as_of` at which a value judged against `as_of` would be
    # judged differently (a birth date not yet lived): how long the staged output holds
    changes_at: pd.Timestamp | None = None

    def note_change_at(self, instant: pd.Timestamp | None) -> None:
        if instant is not None and not pd.isna(instant):
            self.changes_at = instant if self.changes_at is None else min(self.changes_at, instant)

    def flag(self, name: str, mask: pd.Series) -> None:
        """Count `mask` rows under soft flag `name` (kept, not quarantined)."""
        mask = mask.reindex(self.index, fill_value=False).fillna(False).astype(bool)
        previous = self.soft_flags.get(name)
        self.soft_flags[name] = mask if previous is None else (previous | mask)


@dataclass(frozen=True)
class Reason:
    """Rows of a normalizer's `failed` that failed for a reason of their own, which the
    quarantine detail and the soft flag name instead of the normalizer's `expected`."""

    rows: pd.Series  # bool, within `failed`
    why: str  # what the value is, for the quarantine detail
    flag: str  # the soft flag is `<flag>_<column>`


@dataclass
class Normalized:
    values: pd.Series
    failed: pd.Series  # bool: a value was there but could not be made canonical
    reason: Reason | list[Reason] | None = None


def reasons_of(reason: Reason | list[Reason] | None) -> list[Reason]:
    """A normalizer's reasons as a list (none, one, or several, told apart in that order)."""
    return [] if reason is None else reason if isinstance(reason, list) else [reason]


@dataclass(frozen=True)
class Transform:
    normalize: Callable[[pd.Series, dict, Context], Normalized]
    accepts: frozenset[str]  # the JSON kinds of a usable source value
    expected: str  # what a valid value is, for quarantine details and flags
    rule: str = "invalid_value"  # the quarantine rule when the mapping says quarantine


def as_text(values: pd.Series) -> pd.Series:
    """Stripped text (str dtype), NaN for missing or empty: a blank field is a missing one."""
    text = normalize_text(values).str.strip()
    return text.where(text.str.len() > 0)


def present(values: pd.Series) -> pd.Series:
    return as_text(values).notna()


def _none(index: pd.Index) -> pd.Series:
    return pd.Series(False, index=index)


def judged(raw: pd.Series, values: pd.Series) -> Normalized:
    """Failed where the source had a value and the normalizer made nothing of it."""
    values = pd.Series(values, index=raw.index)
    return Normalized(values, (present(raw) & values.isna()).astype(bool))


def _finite_numbers(raw: pd.Series) -> pd.Series:
    """Numbers (NaN where absent, unreadable or not finite: 'Infinity' is no quantity)."""
    if pd.api.types.is_numeric_dtype(raw.dtype):
        numbers = raw.astype("float64")
    else:
        numbers = pd.to_numeric(as_text(raw), errors="coerce").astype("float64")
    return numbers.where(np.isfinite(numbers))


def _number(raw: pd.Series, spec: dict, ctx: Context) -> Normalized:
    """A number in range. A duration field (`unit:` hours or minutes in the mapping) also
    reads text that gives its unit (90分钟, 1.5小时, 2h, 半小时: `durations.read_durations`),
    converted to the field's unit; text that says a duration but not exactly (约2小时, 2-3小时,
    1:30) fails with what it is."""
    numbers = _finite_numbers(raw)
    reasons = []
    sent_text = spec.get("sent_text")
    if spec.get("unit") and sent_text is not None:
        unread = numbers.isna() & sent_text.notna()
        if unread.any():
            read = durations.read_durations(sent_text[unread], spec["unit"])
            numbers = numbers.copy()
            numbers[unread] = read["value"]
            for why, rows in read["why"].dropna().groupby(read["why"].dropna()).groups.items():
                reasons.append(Reason(pd.Series(raw.index.isin(rows), index=raw.index), why, "inexact"))
    low, high = spec.get("range", (-np.inf, np.inf))
    in_range = numbers.between(low, high)
    return Normalized(numbers.where(in_range), (raw.notna() & ~in_range).astype(bool), reasons or None)


def _whole_number(raw: pd.Series, spec: dict, ctx: Context) -> Normalized:
    number = _number(raw, spec, ctx)
    exact = (number.values.round() == number.values) & (number.values.abs() < EXACT_INTEGERS)
    whole = number.values.where(exact)
    return Normalized(whole.astype("Int64"), (number.failed | (number.values.notna() & ~exact)).astype(bool),
                      number.reason)


def _minutes_to_hours(raw: pd.Series, spec: dict, ctx: Context) -> Normalized:
    """Whole minutes (the provincial durations) as hours; a duration typed with its unit is
    read in minutes first (`_number`)."""
    minutes = _number(raw, {"unit": "minutes", **spec}, ctx)
    return Normalized(pd.Series(minutes_to_hours(minutes.values), index=raw.index, dtype="float64"), minutes.failed,
                      minutes.reason)


# true and false as sources and the people typing into them write them
BOOL_WORDS = {"true": True, "1": True, "1.0": True, "yes": True, "y": True, "是": True,
              "false": False, "0": False, "0.0": False, "no": False, "n": False, "否": False}


def _bool(raw: pd.Series, spec: dict, ctx: Context) -> Normalized:
    text = as_text(raw).str.lower()
    return judged(raw, text.map(BOOL_WORDS).astype("boolean"))


def _with_fast_path(raw: pd.Series, strict_format: str, parse: Callable, *, utc: bool, shift=None) -> pd.Series:
    """`parse` (the normalize function: every format the sources write) over the values a
    strict `pd.to_datetime` of the common format does not read.

    Why: the general parser is a regex extraction per value; at millions of rows the one
    format nearly every value has is read ten times faster by pandas' own parser, and what
    it reads it reads the same way (same format, same offset rule).
    """
    text = as_text(raw)
    if utc and shift is None:
        quick = pd.to_datetime(text, format=strict_format, errors="coerce", utc=True)
    else:
        quick = pd.to_datetime(text, format=strict_format, errors="coerce")
        if shift is not None:  # Beijing wall-clock time without an offset -> UTC
            quick = (quick - shift).dt.tz_localize("UTC")
    quick = quick.astype("datetime64[us, UTC]" if utc else "datetime64[us]")
    slow = text.notna() & quick.isna()
    if slow.any():
        quick[slow] = pd.Series(parse(text[slow]), index=text[slow].index).astype(quick.dtype)
    return plausible(quick)


# A bare number where a time belongs: the spreadsheet day count a date field reads
# (`dates.serial_dates`) is not read as a time, which would need its time zone and its
# clock's rounding guessed.
SERIAL_TIME_WHY = "a number where a time belongs (a spreadsheet's day count?): no time is read from a bare number"


def dated(raw: pd.Series, moments: pd.Series, number_why: str = SERIAL_WHY) -> Normalized:
    """Dates or times as read, judged: a tool's zero (1900-01-01, the epoch: PLACEHOLDER_DATES)
    is no date, and fails for that reason of its own. A service dated so cannot be placed in
    a year; a birth or registration dated so was never told. A bare number no date reads
    (2024, a spreadsheet day count out of `SERIAL_DAYS`) fails saying so (`number_why`)."""
    moments = pd.Series(moments, index=raw.index)
    placeholder = placeholder_dates(moments)
    judged_moments = judged(raw, moments.where(~placeholder))
    number = numbers_no_date_reads(raw, serials_read=number_why == SERIAL_WHY) & judged_moments.failed
    return Normalized(judged_moments.values, judged_moments.failed,
                      [Reason(placeholder & judged_moments.failed, PLACEHOLDER_WHY, "placeholder"),
                       Reason(number, number_why, "number_for")])


def _date(raw: pd.Series, spec: dict, ctx: Context) -> Normalized:
    return dated(raw, _with_fast_path(raw, "%Y-%m-%d", parse_date, utc=False))


def _iso_timestamp(raw: pd.Series, spec: dict, ctx: Context) -> Normalized:
    return dated(raw, _with_fast_path(raw, "%Y-%m-%dT%H:%M:%S%z", iso_to_utc, utc=True), SERIAL_TIME_WHY)


def _beijing_timestamp(raw: pd.Series, spec: dict, ctx: Context) -> Normalized:
    return dated(raw, beijing_timestamps(raw), SERIAL_TIME_WHY)


def beijing_timestamps(raw: pd.Series) -> pd.Series:
    return _with_fast_path(raw, "%Y-%m-%d %H:%M:%S", beijing_text_to_utc, utc=True, shift=BEIJING_OFFSET)


def _beijing_date_of_text(raw: pd.Series, spec: dict, ctx: Context) -> Normalized:
    """A Beijing-time timestamp's calendar date; a bare date in any known format as is."""
    dates = pd.Series(utc_to_beijing_date(beijing_timestamps(raw)), index=raw.index)
    missing = dates.isna()
    if missing.any():
        dates = dates.astype(object)
        dates[missing] = pd.Series(parse_date(raw[missing]), index=raw[missing].index).astype(object)
    return dated(raw, pd.to_datetime(dates).astype("datetime64[us]"))


def _beijing_date(values: pd.Series, spec: dict, ctx: Context) -> Normalized:
    """The Beijing date of a canonical timestamp column (its failures are the column's)."""
    return Normalized(utc_to_beijing_date(values), _none(values.index))


def masked_personal_numbers(values: pd.Series, column: str, ctx: Context) -> pd.Series:
    """Free text with any ID or phone number in it masked, and any person's name standing
    next to one, the rows counted under the flag `personal_number_in_<column>`: a skill
    written 急救,王芳 13812345678 keeps 急救, never the number or the name."""
    redacted, changed = redact_values(values)
    ctx.flag(f"personal_number_in_{column}", changed)
    if changed.any():
        redacted[changed] = redacted[changed].map(mask_names_in)
    return redacted.where(values.notna())


def _text(raw: pd.Series, spec: dict, ctx: Context) -> Normalized:
    """Free text: its words kept, its numbers masked, the characters that show nothing out (a
    NUL in it stopped the publish to PostgreSQL: `normalize.INVISIBLE_RANGES`)."""
    return Normalized(masked_personal_numbers(visible_text(as_text(raw)), spec["column_name"], ctx), _none(raw.index))


def _identifier(raw: pd.Series, spec: dict, ctx: Context) -> Normalized:
    """A key or a reference to one: kept as text, unusable when it holds a personal number
    (it would be published in clear in a source map). A source's own record numbers of 15
    or 18 digits are no resident ID numbers (`privacy.holds_a_personal_number`)."""
    text = visible_text(as_text(raw))  # what the dedup takes out of a key (extract._stripped_sql)
    personal = identifiers_holding_a_personal_number(text)
    return Normalized(text.where(~personal), personal)


# What operators type where they have no name to give: no name. Kept as one, two teams
# "named" 无 or - in one county were one organization (name and county agree), and two
# people "named" NULL were alike in name.
NO_NAME_WORDS = frozenset({"无", "暂无", "没有", "不详", "未知", "空", "null", "none", "nil", "nan", "n/a", "na",
                           "undefined", "test", "测试"})


_ASCII_OR_IDEOGRAPH = f"[0-9A-Za-z]|{names.CJK}"  # the same for RE2 and Python's re
_WORD_CHARACTER = re.compile(r"[^\W_]")  # any script's letters and digits (Python's re)


def names_that_are_placeholders(normalized: pd.Series) -> pd.Series:
    """Normalized names that say there is none: a word of NO_NAME_WORDS (any case), or no
    letter, ideograph or digit of any script at all (-, /, **, ——)."""
    present_names = normalized.notna()
    words = normalized.str.lower().isin(NO_NAME_WORDS) & present_names
    # nearly every name has an ASCII letter or an ideograph: only the rest are read by `re`
    others = present_names & ~normalized.str.contains(_ASCII_OR_IDEOGRAPH, regex=True).fillna(False).astype(bool)
    no_word = pd.Series(False, index=normalized.index)
    if others.any():
        no_word[others] = normalized[others].map(lambda name: _WORD_CHARACTER.search(name) is None).astype(bool)
    return (words | no_word).astype(bool)


# What a reference loses before it is compared with the keys it names: invisible characters
# pasted along with it (`normalize.INVISIBLE_CLASS`, which keys lose too), and the ".0" a
# number gets when a serializer writes an integer id as a float (userId 7.0 named no
# volunteer "7": the service's hours went unattributed).
_INTEGER_AS_FLOAT = r"^([0-9]+)\.0+$"


def _reference(raw: pd.Series, spec: dict, ctx: Context) -> Normalized:
    """A reference to another row's key (a service's volunteer, team, project): an identifier
    as `_identifier` keeps it, full-width characters as ASCII, invisible characters out, an
    integer written as a float (7.0) as the integer. Keys lose their invisible characters too
    (the dedup's `extract._stripped_sql`), so "V0001" + U+200B names the account V0001; a key's
    full-width form or float form is kept as sent: two rows whose keys differ so are two rows
    of the source."""
    text = as_text(raw)
    # nearly every reference is plain ASCII without a point: only the others are rewritten
    # (4M service rows carry three references each)
    ascii_only = pd.Series(pc.string_is_ascii(to_arrow(text)).to_numpy(zero_copy_only=False), index=text.index)
    odd = text.notna() & (~ascii_only.fillna(True).astype(bool) | text.str.contains(".", regex=False).fillna(False))
    if odd.any():
        folded = fold_fullwidth(text[odd]).str.replace(INVISIBLE_CLASS, "", regex=True)
        folded = folded.str.replace(_INTEGER_AS_FLOAT, r"\1", regex=True).str.strip()
        text = text.copy()
        text[odd] = folded.where(folded.str.len() > 0)
    return _identifier(text, spec, ctx)


def _name(raw: pd.Series, spec: dict, ctx: Context) -> Normalized:
    """A name; one that carries an ID number or a phone (a contact pasted into the name box)
    or only says there is none (无, NULL, -) is no name: unusable, for the mapping's
    `on_error` to decide."""
    normalized = names.normalize_name(raw)
    unusable = shaped_like_a_personal_number(normalized) | names_that_are_placeholders(normalized)
    return Normalized(normalized.where(~unusable), (present(raw) & (normalized.isna() | unusable)).astype(bool))


def _person_name(raw: pd.Series, spec: dict, ctx: Context) -> Normalized:
    """A person's full name: a name as `_name` makes it, sealed under PII_HASH_KEY
    (pipelines/name_seal.py), so no staged or resolved file holds it in clear."""
    named = _name(raw, spec, ctx)
    return Normalized(sealed_names(named.values, ctx.settings.pii_hash_key), named.failed)


def _region(raw: pd.Series, spec: dict, ctx: Context) -> Normalized:
    """A current 6-digit county code; anything else (`52`, an ID number, a phone, a place
    name with no code: 贵阳市南明区) fails: there but unusable, not missing. A province's or
    a prefecture's code of elsewhere (`11`, `4403`) is a region code that does not start
    with 52: kept, for the contract's `region_outside_province` to judge."""
    codes = as_text(regions.normalize_region(as_text(raw)))
    well_formed = codes.str.fullmatch(r"\d{6}").fillna(False).astype(bool)
    elsewhere = (codes.str.fullmatch(r"\d{2}|\d{4}") & ~codes.str.startswith("52")).fillna(False).astype(bool)
    usable = well_formed | elsewhere
    return Normalized(codes.where(usable), (present(raw) & ~usable).astype(bool))


def _vocabulary(raw: pd.Series, spec: dict, ctx: Context) -> Normalized:
    """A source code or label -> the staged word (schemas/vocabularies.yaml, one place)."""
    words = statuses.map_vocabulary(as_text(raw), spec["kind"], ctx.mapping.source)
    return judged(raw, as_text(pd.Series(words, index=raw.index)))


def _const(raw: pd.Series, spec: dict, ctx: Context) -> Normalized:
    return Normalized(pd.Series(spec["value"], index=ctx.index, dtype="str"), _none(ctx.index))


def _equals_live(raw: pd.Series, spec: dict, ctx: Context) -> Normalized:
    """Whether a live row's code is `value`. With a `kind`, the code is read through that
    vocabulary, as the status column reads it: a national 2.0 or a provincial 已通過 is a
    status of `effective`, and must count as one (compared as typed, they counted nothing)."""
    codes = as_text(raw)
    if "kind" in spec:
        codes = as_text(pd.Series(statuses.map_vocabulary(codes, spec["kind"], ctx.mapping.source), index=raw.index))
    counts = (codes.eq(str(spec["value"])).fillna(False) & ~ctx.is_deleted).astype(bool)
    return Normalized(counts, _none(raw.index))


def _strip_prefix(raw: pd.Series, spec: dict, ctx: Context) -> Normalized:
    """The identifier a reference names after its prefix (`provincial:<logId>` -> the log
    id), the prefix's case, spaces and a full-width colon as people and systems write them.
    A value without the prefix names no record of ours (an origin elsewhere): no reference,
    not an error; a bare number taken for a log id would join two different services."""
    text = as_text(raw)
    word = re.escape(spec["prefix"].rstrip(":："))
    named = text.str.extract(f"(?i)^\\s*{word}\\s*[:：]\\s*(.*?)\\s*$", expand=False)
    return _identifier(named.where(named.str.len() > 0), spec, ctx)


def hashed(values: pd.Series, ctx: Context) -> pd.Series:
    """The keyed hash of each present value (PII_HASH_KEY): the only form a number is kept in."""
    present_values = values.notna()
    result = pd.Series(np.nan, index=values.index, dtype="str")
    if present_values.any():
        result[present_values] = pd.Series(
            hmac_hex(values[present_values], ctx.settings.pii_hash_key), index=values[present_values].index
        ).to_numpy()
    return result


def _phone_hash(raw: pd.Series, spec: dict, ctx: Context) -> Normalized:
    """A contact phone as its keyed hash; a phone that is no clear mobile fails. A box of
    several mobiles is its first (`phones.several_mobiles`, counted under `several_phones`)."""
    cleaned = phones.normalize_phone(as_text(raw))
    cleaned.index = raw.index
    usable = cleaned["phone_valid"].fillna(False).astype(bool) & ~cleaned["phone_masked"].fillna(False).astype(bool)
    ctx.flag("several_phones", phones.several_mobiles(as_text(raw)) & usable)
    failed = present(raw) & ~usable & ~cleaned["phone_masked"].fillna(False).astype(bool)
    return Normalized(hashed(cleaned["phone"].where(usable), ctx), failed.astype(bool))


def _brand(raw: pd.Series, spec: dict, ctx: Context) -> Normalized:
    """Brand programmes as one label each (脱贫攻坚夜校 -> 夜校), else the cleaned text."""
    cleaned = masked_personal_numbers(names.normalize_name(raw), spec["column_name"], ctx)
    branded = pd.Series(np.nan, index=raw.index, dtype="str")
    for brand in categories.brand_programmes():
        hit = cleaned.str.contains(brand, regex=False).fillna(False) & branded.isna()
        branded[hit] = brand
    return judged(raw, branded.fillna(cleaned))


def _national_category(raw: pd.Series, spec: dict, ctx: Context) -> Normalized:
    return judged(raw, as_text(pd.Series(categories.national_code_to_label(as_text(raw)), index=raw.index)))


def _first_category(raw: pd.Series, spec: dict, ctx: Context) -> Normalized:
    return judged(raw, as_text(pd.Series(categories.first_category(as_text(raw)), index=raw.index)))


DATE_EXPECTED = "a real calendar date in a known format"
TRANSFORMS: dict[str, Transform] = {
    "text": Transform(_text, TEXT_OR_NUMBER, "text or a number"),
    "id": Transform(_identifier, TEXT_OR_NUMBER, "an identifier, not a personal number"),
    "reference": Transform(_reference, TEXT_OR_NUMBER, "an identifier, not a personal number"),
    "name": Transform(_name, TEXT, "a name"),
    "person_name": Transform(_person_name, TEXT, "a name"),
    "region": Transform(_region, TEXT_OR_NUMBER, "a 6-digit division code", "invalid_region"),
    # a number too: a spreadsheet's day count (45356) or yyyyMMdd written as one
    "date": Transform(_date, TEXT_OR_NUMBER, DATE_EXPECTED, "unparseable_date"),
    "iso_timestamp": Transform(_iso_timestamp, TEXT, "an ISO 8601 time", "unparseable_date"),
    "beijing_timestamp": Transform(_beijing_timestamp, TEXT, "a Beijing time", "unparseable_date"),
    "beijing_date_of_text": Transform(_beijing_date_of_text, TEXT_OR_NUMBER, DATE_EXPECTED, "unparseable_date"),
    "beijing_date": Transform(_beijing_date, frozenset(), "a time"),
    "float": Transform(_number, NUMBER_OR_TEXT, "a finite number in range"),
    "int": Transform(_whole_number, NUMBER_OR_TEXT, "a whole number in range"),
    "bool": Transform(_bool, ANY_SCALAR, "true or false"),
    "minutes_to_hours": Transform(_minutes_to_hours, NUMBER_OR_TEXT, "a number of minutes"),
    "vocabulary": Transform(_vocabulary, ANY_SCALAR, "a code of its list"),
    "const": Transform(_const, frozenset(), "nothing"),
    # whether a row counts: anything but the one code is "no", never "unknown"
    "equals_live": Transform(_equals_live, ANY_KIND, "a code"),
    "strip_prefix": Transform(_strip_prefix, TEXT, "text"),
    "brand": Transform(_brand, TEXT, "a programme name"),
    "phone_hash": Transform(_phone_hash, TEXT_OR_NUMBER, "a mainland mobile number"),
    "national_category": Transform(_national_category, TEXT_OR_NUMBER, "a service category code"),
    "first_category": Transform(_first_category, TEXT, "a service category label"),
}
