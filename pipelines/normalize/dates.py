"""Dates, timestamps and durations of both sources -> dates, UTC timestamps, decimal hours.

* A date field holding a spreadsheet's serial day count (45356) is read as that day where
  the count is plausible (`SERIAL_DAYS`), else it is no date.
* The provincial platform writes dates three ways ("yyyy-MM-dd", "yyyy/MM/dd", "yyyyMMdd",
  depending on the client app) and timestamps as "yyyy-MM-dd HH:mm:ss" in Beijing time with
  no offset; the national system writes ISO 8601 with "+08:00".
* Staged timestamps are time-zone-aware UTC; a "date" is a naive datetime64 at midnight
  (Parquet date-compatible); the date of a service is its Beijing-time date.
* Beijing time is the fixed offset UTC+8 of `pipelines/clock.py` (the contract's rule).
* Provincial durations are whole minutes; hours are minutes / 60, unrounded, so sums stay
  exact to the minute.

Parsing is one regex extraction per column and arithmetic on the parts (no per-row
`strptime`, no format guessing); anything that is not a real date becomes NaT.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines import clock
from pipelines.normalize import as_text, fold_fullwidth, map_unique

BEIJING_OFFSET = pd.Timedelta(clock.BEIJING_OFFSET)
# Dates before this year are typing accidents (0200), not records of people. A date far in
# the future is read as written: the contract's future_date rule judges it.
EARLIEST_YEAR = 1900
MAX_OFFSET_HOURS = 14  # the widest offset any zone uses (UTC+14)
# The zeros of the tools that write dates: a spreadsheet's day 0 and 1 (1899-12-30 in Excel
# and LibreOffice, 1899-12-31 in older Excel), 1900-01-01 (a date cell left at its default),
# a database's least date (0001-01-01) and a clock's epoch (1970-01-01, written in UTC or as
# 08:00 Beijing time). No service, registration, team or birth of ours is told by one: such
# a value says "no date", and staging treats it as none (`placeholder_dates`).
PLACEHOLDER_DATES = frozenset(
    pd.Timestamp(day) for day in ("0001-01-01", "1899-12-30", "1899-12-31", "1900-01-01", "1970-01-01"))
PLACEHOLDER_WHY = ("a placeholder date (1900-01-01, 1970-01-01 and the like: a spreadsheet's, a database's "
                   "or a clock's zero), not a real one: nothing dated by it can be placed in a year")

# A date typed into a spreadsheet cell formatted as a number shows as its serial day count
# (45356 = 2024-03-05): days since 1899-12-30 (Excel's 1900 system and LibreOffice agree from
# 1900-03-01 on). Read only where the count has five digits, from 10000 (1927-05-18) to 73050
# (2099-12-31): a shorter number in a date field is more likely a year (2024 would read as
# 1905-07-16) or a typing accident than a date before 1927, and no record of ours is dated
# after 2099. A fraction is the time of day (45356.5 is noon): a date keeps its day. Each
# field's own rules still judge the date read (future_date; a birth before 1900 is none).
SERIAL_EPOCH = pd.Timestamp("1899-12-30")
SERIAL_DAYS = (10_000, 73_050)
_SERIAL = r"^[0-9]{5}(?:\.[0-9]+)?$"
_NUMBER_NO_DATE_READS = r"^[0-9]{1,7}(?:\.[0-9]+)?$"  # 8 digits are yyyyMMdd
SERIAL_WHY = ("a number where a date belongs: a spreadsheet's day count is read only from 10000 "
              "(1927-05-18) to 73050 (2099-12-31), and no date format reads it")


def serial_dates(values) -> pd.Series:
    """A spreadsheet's serial day count (`SERIAL_DAYS`, five digits, full-width too) -> its
    date, naive datetime64[us] at midnight; NaT for anything else."""
    text = fold_fullwidth(as_text(values)).str.strip()
    serial = text.str.match(_SERIAL).fillna(False).astype(bool)
    days = pd.to_numeric(text.where(serial), errors="coerce").astype("float64").map(np.floor)
    days = days.where(days.between(*SERIAL_DAYS))
    return (SERIAL_EPOCH + pd.to_timedelta(days, unit="D")).astype("datetime64[us]")


def numbers_no_date_reads(values, serials_read: bool = True) -> pd.Series:
    """Bare numbers of up to 7 digits (2024, 99999, 45.5) outside `SERIAL_DAYS`, or any when
    `serials_read` is false (a time field reads no day count): no format reads them. For the
    quarantine's detail, which says so rather than "expected a date"."""
    text = fold_fullwidth(as_text(values)).str.strip()
    bare = text.str.match(_NUMBER_NO_DATE_READS).fillna(False).astype(bool)
    return (bare & serial_dates(text).isna()).astype(bool) if serials_read else bare


# y-M-d with '-', '/', '.' or 年月日, or 8 digits; then optionally a time and an offset.
_DATE_PART = (
    r"(?P<year>[0-9]{4})(?:[-/.](?P<month>[0-9]{1,2})[-/.](?P<day>[0-9]{1,2})"
    r"|年(?P<month_cn>[0-9]{1,2})月(?P<day_cn>[0-9]{1,2})日?"
    r"|(?P<month8>[0-9]{2})(?P<day8>[0-9]{2}))"
)
_TIME_PART = (
    r"(?:(?:T|\s+)(?P<hour>[0-9]{1,2}):(?P<minute>[0-9]{2})"
    r"(?::(?P<second>[0-9]{2})(?:[.,](?P<fraction>[0-9]{1,9}))?)?)?"
)
_OFFSET_PART = r"\s*(?P<offset>Z|[+-][0-9]{2}(?::?[0-9]{2})?)?"
_TIMESTAMP_PATTERN = f"^{_DATE_PART}{_TIME_PART}{_OFFSET_PART}$"


def _extract(values) -> pd.DataFrame:
    """The named parts of each value (NaN where absent or where the value does not match),
    extracted by Arrow's RE2 in one pass over the column."""
    text = fold_fullwidth(as_text(values)).str.strip()
    matches = pc.extract_regex(
        pa.array(text.to_numpy(dtype=object), type=pa.string(), from_pandas=True),
        pattern=_TIMESTAMP_PATTERN,
    )
    parts = {}
    for field in matches.type:
        column = pd.Series(
            pc.struct_field(matches, field.name).to_numpy(zero_copy_only=False),
            index=text.index, dtype="str",
        )
        parts[field.name] = column.where(column.str.len() > 0)  # RE2 gives "" for no group
    return pd.DataFrame(parts, index=text.index)


def _midnights(parts: pd.DataFrame) -> pd.Series:
    """The calendar dates of extracted parts, as naive datetime64[us]: NaT if not real, out
    of the years people and records live in, or written with an offset no zone has."""
    month = parts["month"].fillna(parts["month_cn"]).fillna(parts["month8"])
    day = parts["day"].fillna(parts["day_cn"]).fillna(parts["day8"])
    iso = parts["year"] + "-" + month.str.zfill(2) + "-" + day.str.zfill(2)
    dates = pd.to_datetime(iso, format="%Y-%m-%d", errors="coerce").astype("datetime64[us]")
    in_our_years = (dates.dt.year >= EARLIEST_YEAR) | dates.isin(list(PLACEHOLDER_DATES))
    return dates.where(in_our_years & _offset(parts, pd.Timedelta(0)).notna())


def _clock(parts: pd.DataFrame) -> pd.Series:
    """Time of day as a timedelta (0 when absent; NaT when out of range)."""
    hour = pd.to_numeric(parts["hour"], errors="coerce").fillna(0)
    minute = pd.to_numeric(parts["minute"], errors="coerce").fillna(0)
    second = pd.to_numeric(parts["second"], errors="coerce").fillna(0)
    micro = pd.to_numeric(parts["fraction"].str.slice(0, 6).str.ljust(6, "0"), errors="coerce")
    micro = micro.fillna(0)
    in_range = (hour < 24) & (minute < 60) & (second < 60)
    total = ((hour * 3600 + minute * 60 + second) * 1_000_000 + micro).where(in_range)
    return pd.to_timedelta(total, unit="us")


def _offset(parts: pd.DataFrame, default: pd.Timedelta) -> pd.Series:
    """The written UTC offset of each value, `default` where none was written, NaT where the
    written one is no offset any zone uses (+99:99)."""
    offset = parts["offset"]
    sign = np.where(offset.str.startswith("-").fillna(False), -1, 1)
    digits = offset.str.replace(r"[^0-9]", "", regex=True)
    hours = pd.to_numeric(digits.str.slice(0, 2), errors="coerce").fillna(0)
    minutes = pd.to_numeric(digits.str.slice(2, 4), errors="coerce").fillna(0)
    real = (hours <= MAX_OFFSET_HOURS) & (minutes < 60)
    written = pd.to_timedelta((sign * (hours * 60 + minutes)).where(real), unit="m")
    return written.where(offset.notna(), default)


def _is_datetime(values) -> bool:
    return isinstance(values, pd.Series) and pd.api.types.is_datetime64_any_dtype(values.dtype)


def parse_date(values) -> pd.Series:
    """Dates in any of the provincial formats (and ISO date-times, whose date as written is
    kept) -> naive datetime64[us] at midnight; NaT for anything else."""
    if _is_datetime(values):
        naive = values.dt.tz_localize(None) if values.dt.tz is not None else values
        return naive.dt.normalize().astype("datetime64[us]")
    # Dates repeat (birthdays, service days): each distinct text is parsed once.
    dates = map_unique(as_text(values), _dates_of_distinct, dtype=None)
    return plausible(dates.astype("datetime64[us]"))


def _dates_of_distinct(distinct: pd.Series) -> pd.Series:
    dates = _midnights(_extract(distinct))
    unread = dates.isna()
    if unread.any():
        dates[unread] = serial_dates(distinct[unread])
    return dates


# The forms the two sources actually send, parsed by pandas' compiled strptime first; only
# what they miss (other date formats, offsets like "Z", missing seconds) goes through the
# regex path. Both read a value the same way where both accept it.
_COMMON_NAIVE = "%Y-%m-%d %H:%M:%S"  # provincial, Beijing time
_WRITTEN_OFFSET = r"[0-9](?:Z|[+-][0-9]{2}:?[0-9]{2})$"  # national: ISO 8601 with an offset


def _to_utc(values, default_offset: pd.Timedelta) -> pd.Series:
    if _is_datetime(values):
        if values.dt.tz is not None:
            return values.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
        return (values - default_offset).dt.tz_localize("UTC").astype("datetime64[us, UTC]")
    text = fold_fullwidth(as_text(values)).str.strip()
    utc = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us, UTC]")
    with_offset = text.str.contains(_WRITTEN_OFFSET, regex=True).fillna(False).astype(bool)
    without_offset = text.notna() & ~with_offset
    if without_offset.any():
        naive = pd.to_datetime(text[without_offset], format=_COMMON_NAIVE, errors="coerce")
        utc[without_offset] = (naive.astype("datetime64[us]") - default_offset).dt.tz_localize("UTC")
    if with_offset.any():
        aware = pd.to_datetime(text[with_offset], format="ISO8601", errors="coerce", utc=True)
        utc[with_offset] = aware.astype("datetime64[us, UTC]")
    rest = utc.isna() & text.notna()
    if rest.any():
        parts = _extract(text[rest])
        parsed = _midnights(parts) + _clock(parts) - _offset(parts, default_offset)
        utc[rest] = parsed.astype("datetime64[us]").dt.tz_localize("UTC")
    return plausible(utc)


def placeholder_dates(moments: pd.Series) -> pd.Series:
    """Whether each date or time is a tool's zero (PLACEHOLDER_DATES): a date as written, a
    time by its Beijing date (1970-01-01T00:00:00Z, the epoch, is 08:00 in Beijing)."""
    if not _is_datetime(moments):
        return pd.Series(False, index=getattr(moments, "index", None), dtype=bool)
    if moments.dt.tz is not None:
        moments = moments.dt.tz_convert("UTC").dt.tz_localize(None) + BEIJING_OFFSET
    days = moments.dt.normalize().astype("datetime64[us]")
    return days.isin(list(PLACEHOLDER_DATES)).astype(bool)


def plausible(moments: pd.Series) -> pd.Series:
    """Dates or times from EARLIEST_YEAR on, NaT before: whichever parser read them, the
    year 0200 is no date of ours. A tool's zero (PLACEHOLDER_DATES, 0001-01-01 too) is kept as
    read, for staging to tell it from a typing accident (`placeholder_dates`)."""
    return moments.where((moments.dt.year >= EARLIEST_YEAR) | placeholder_dates(moments))


def beijing_text_to_utc(values) -> pd.Series:
    """Provincial "yyyy-MM-dd HH:mm:ss" (Beijing time, no offset written; '/' and the other
    date formats accepted, seconds optional) -> datetime64[us, UTC]. A value that does carry
    an offset is read with its offset."""
    return _to_utc(values, BEIJING_OFFSET)


def iso_to_utc(values) -> pd.Series:
    """ISO 8601 with an offset (national "2024-03-01T09:00:00+08:00", 'Z') -> datetime64[us,
    UTC]; without an offset the value is Beijing time (the contract's rule for both
    systems)."""
    return _to_utc(values, BEIJING_OFFSET)


def utc_to_beijing_date(values) -> pd.Series:
    """UTC timestamps (tz-aware; naive ones are taken as UTC; text is parsed as by
    `iso_to_utc`) -> the Beijing-time calendar date, naive datetime64[us] at midnight."""
    if _is_datetime(values):
        utc = values.dt.tz_convert("UTC") if values.dt.tz is not None else values.dt.tz_localize("UTC")
    else:
        utc = iso_to_utc(values)
    beijing = utc.dt.tz_localize(None) + BEIJING_OFFSET
    return beijing.dt.normalize().astype("datetime64[us]")


def minutes_to_hours(values) -> pd.Series:
    """Whole minutes (numbers or numeric text) -> decimal hours as float64; NaN elsewhere."""
    if isinstance(values, pd.Series) and pd.api.types.is_numeric_dtype(values.dtype):
        minutes = values.astype("float64")
    else:
        minutes = pd.to_numeric(as_text(values).str.strip(), errors="coerce").astype("float64")
    return minutes / 60.0


def utc_to_beijing_text(ts) -> str:
    """A UTC instant (Timestamp, datetime, or ISO text; naive = UTC) -> "yyyy-MM-dd HH:mm:ss"
    in Beijing time, the format of the provincial `modified_after` parameter."""
    stamp = pd.Timestamp(ts)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return stamp.tz_convert(clock.BEIJING).strftime("%Y-%m-%d %H:%M:%S")
