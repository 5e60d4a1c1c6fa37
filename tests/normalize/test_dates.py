"""Dates in the three provincial formats, Beijing time to UTC, minutes to hours."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.normalize.dates import (
    beijing_text_to_utc,
    iso_to_utc,
    minutes_to_hours,
    numbers_no_date_reads,
    parse_date,
    placeholder_dates,
    serial_dates,
    utc_to_beijing_date,
    utc_to_beijing_text,
)

from .strategies import PROPERTY, PROPERTY_SEVERAL, any_text, any_value


@pytest.mark.parametrize("raw", ["2024-03-09", "2024/03/09", "20240309", "2024/3/9", " 2024-03-09 ",
                                 "2024-03-09T10:00:00+08:00", "2024-03-09 23:59:59", "２０２４-０３-０９"])
def test_the_provincial_date_formats(raw):
    assert parse_date(pd.Series([raw])).iloc[0] == pd.Timestamp("2024-03-09")


@pytest.mark.parametrize("raw", ["2024-02-30", "20241301", "garbage", "", None, "2024-03", "1.5", "2024-03-09x"])
def test_not_a_date_is_nat(raw):
    assert pd.isna(parse_date(pd.Series([raw], dtype=object)).iloc[0])


def test_beijing_text_is_utc_plus_8():
    utc = beijing_text_to_utc(pd.Series(["2024-03-09 07:30:00", "2024-03-09 08:00:00", "2024/03/09 00:00:00", None],
                                        index=[5, 6, 7, 8], dtype=object))
    assert str(utc.dtype) == "datetime64[us, UTC]" and list(utc.index) == [5, 6, 7, 8]
    assert utc.iloc[0] == pd.Timestamp("2024-03-08 23:30:00", tz="UTC")
    assert utc.iloc[1] == pd.Timestamp("2024-03-09 00:00:00", tz="UTC")
    assert utc.iloc[2] == pd.Timestamp("2024-03-08 16:00:00", tz="UTC")
    assert pd.isna(utc.iloc[3])


def test_no_daylight_saving_in_1988():
    # Asia/Shanghai observed DST 1986-1991; the contract's Beijing time is plain UTC+8.
    utc = beijing_text_to_utc(pd.Series(["1988-07-01 12:00:00"]))
    assert utc.iloc[0] == pd.Timestamp("1988-07-01 04:00:00", tz="UTC")


def test_iso_with_offsets_and_without():
    utc = iso_to_utc(pd.Series(["2024-03-09T08:00:00+08:00", "2024-03-09T00:00:00Z", "2024-03-09T01:00:00+0100",
                                "2024-03-09T08:00:00", "2024-03-09T08:00:00.250+08:00"]))
    assert utc.tolist()[:4] == [pd.Timestamp("2024-03-09 00:00", tz="UTC")] * 4
    assert utc.iloc[4] == pd.Timestamp("2024-03-09 00:00:00.250", tz="UTC")


def test_service_date_is_the_beijing_date():
    utc = iso_to_utc(pd.Series(["2024-03-09T23:30:00+08:00", "2024-03-09T16:30:00Z", "2024-03-09T15:59:59Z"]))
    assert utc_to_beijing_date(utc).tolist() == [pd.Timestamp("2024-03-09"), pd.Timestamp("2024-03-10"),
                                                 pd.Timestamp("2024-03-09")]
    assert utc_to_beijing_date(pd.Series(["2024-03-09T16:30:00Z"])).iloc[0] == pd.Timestamp("2024-03-10")


def test_minutes_to_hours():
    assert minutes_to_hours(pd.Series([60, 90, 0, None])).tolist()[:3] == [1.0, 1.5, 0.0]
    assert minutes_to_hours(pd.Series(["45", "x", None], dtype=object)).tolist()[0] == 0.75
    assert minutes_to_hours(pd.Series([50])).iloc[0] * 60 == pytest.approx(50)


def test_modified_after_text():
    assert utc_to_beijing_text(pd.Timestamp("2024-03-09 16:30:05", tz="UTC")) == "2024-03-10 00:30:05"
    assert utc_to_beijing_text(dt.datetime(2024, 3, 9, 16, 30, 5, tzinfo=dt.timezone.utc)) == "2024-03-10 00:30:05"
    assert utc_to_beijing_text("2024-03-10T00:30:05+08:00") == "2024-03-10 00:30:05"


@PROPERTY_SEVERAL
@given(st.datetimes(min_value=dt.datetime(1950, 1, 1), max_value=dt.datetime(2100, 1, 1)))
def test_beijing_text_round_trips(moment):
    moment = moment.replace(microsecond=0)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    utc = beijing_text_to_utc(pd.Series([text]))
    assert utc_to_beijing_text(utc.iloc[0]) == text
    assert utc_to_beijing_date(utc).iloc[0] == pd.Timestamp(moment.date())
    assert iso_to_utc(utc).equals(utc)  # idempotent on its own output


@PROPERTY
@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 12, 31)),
       st.sampled_from(["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"]))
def test_every_format_of_a_real_date_parses_to_it(day, fmt):
    parsed = parse_date(pd.Series([day.strftime(fmt)]))
    assert parsed.iloc[0] == pd.Timestamp(day)
    assert parse_date(parsed).equals(parsed)


@PROPERTY_SEVERAL
@given(st.lists(st.one_of(any_value, any_text), min_size=1, max_size=6))
def test_never_raises_on_any_text(values):
    series = pd.Series(values, dtype=object)
    dates = parse_date(series)
    assert parse_date(dates).equals(dates)
    utc = beijing_text_to_utc(series)
    assert beijing_text_to_utc(utc).equals(utc)
    iso_to_utc(series)
    utc_to_beijing_date(series)
    hours = minutes_to_hours(series)
    assert hours.dtype == np.float64


@pytest.mark.parametrize("raw", ["1900-01-01", "1900/1/1", "19000101", "1899-12-30", "1899/12/31",
                                 "1970-01-01", "0001-01-01", "1970年1月1日"])
def test_a_tools_zero_reads_as_a_date_and_is_told_a_placeholder(raw):
    dates = parse_date(pd.Series([raw]))
    assert dates.notna().all() and placeholder_dates(dates).all()


@pytest.mark.parametrize("raw", ["1970-01-01T08:00:00+08:00", "1970-01-01T00:00:00Z", "1969-12-31T16:00:00Z",
                                 "1970-01-01 00:00:00", "1900-01-01 00:00:00", "1899-12-30T00:00:00+08:00"])
def test_the_epoch_and_a_spreadsheets_zero_are_placeholders_as_times(raw):
    assert placeholder_dates(iso_to_utc(pd.Series([raw]))).all()


@pytest.mark.parametrize("raw", ["1970-01-02", "1969-12-31", "1900-01-02", "1899-12-29", "1990-01-01"])
def test_days_beside_a_zero_are_no_placeholders(raw):
    assert not placeholder_dates(parse_date(pd.Series([raw]))).any()
    # a Beijing time on the day before the epoch is the epoch's day in no zone we read
    assert not placeholder_dates(beijing_text_to_utc(pd.Series([f"{raw} 23:00:00"]))).any()


# -- a spreadsheet's serial day count in a date field (session 6) -------------------------


@pytest.mark.parametrize(("written", "day"), [
    ("45356", "2024-03-05"), ("45356.75", "2024-03-05"), ("４５３５６", "2024-03-05"), (" 45356 ", "2024-03-05"),
    ("10000", "1927-05-18"), ("73050", "2099-12-31"), ("44927", "2023-01-01"), (45356, "2024-03-05"),
    (45356.0, "2024-03-05"),
])
def test_a_spreadsheet_serial_day_count_is_its_date(written, day):
    assert serial_dates(pd.Series([written], dtype=object)).iloc[0] == pd.Timestamp(day)
    assert parse_date(pd.Series([written], dtype=object)).iloc[0] == pd.Timestamp(day)


@pytest.mark.parametrize("written", ["2024", "9999", "73051", "99999", "123456", "45.5", "-45356", "4535６x"])
def test_a_number_outside_the_serial_days_is_no_date_and_says_so(written):
    assert pd.isna(parse_date(pd.Series([written])).iloc[0])
    assert numbers_no_date_reads(pd.Series([written])).iloc[0] == (written not in ("-45356", "4535６x"))


def test_a_serial_is_no_date_where_a_time_belongs_and_eight_digits_are_a_date():
    assert numbers_no_date_reads(pd.Series(["45356"]), serials_read=False).iloc[0]
    assert not numbers_no_date_reads(pd.Series(["45356"])).iloc[0]
    assert parse_date(pd.Series(["20240305"])).iloc[0] == pd.Timestamp("2024-03-05")
    assert not numbers_no_date_reads(pd.Series(["20240305"])).iloc[0]
