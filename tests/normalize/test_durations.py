"""Durations typed with their unit (90分钟, 1.5小时, 2h, 半小时) read in the field's unit; what
says a duration but not exactly (约2小时, 2-3小时, 1:30) gets no number and a reason."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.normalize.durations import (
    APPROXIMATE_WHY,
    RANGE_WHY,
    UNIT_WHY,
    duration_one,
    read_durations,
)

from .strategies import PROPERTY, any_text, any_value


@pytest.mark.parametrize(("written", "minutes"), [
    ("90分钟", 90), ("90分", 90), ("90 min", 90), ("45mins", 45), ("90 minutes", 90),
    ("1.5小时", 90), ("1.5个小时", 90), ("2h", 120), ("2H", 120), ("２ｈ", 120), ("3 hours", 180),
    ("0.5 hr", 30), (".5h", 30), ("３.５小时", 210), ("两个钟头", 120),
    ("半小时", 30), ("半个小时", 30), ("一个半小时", 90), ("一小时半", 90), ("一个半钟头", 90),
    ("1小时30分钟", 90), ("1h30m", 90), ("1h 30min", 90), ("2小时15分", 135),
    ("两小时", 120), ("九十分钟", 90), ("十五分钟", 15), ("二十五分钟", 25), ("一百二十分钟", 120),
])
def test_a_duration_with_its_unit_is_read(written, minutes):
    assert duration_one(written, "minutes") == (minutes, None)
    assert duration_one(written, "hours") == (minutes / 60, None)


def test_chinese_numerals_alone_are_a_number_in_the_fields_unit():
    assert duration_one("二十", "minutes") == (20, None)
    assert duration_one("二十", "hours") == (20, None)


@pytest.mark.parametrize(("written", "why"), [
    ("约2小时", APPROXIMATE_WHY), ("2小时左右", APPROXIMATE_WHY), ("两个多小时", APPROXIMATE_WHY),
    ("1小时以上", APPROXIMATE_WHY), ("大概90分钟", APPROXIMATE_WHY),
    ("2-3小时", RANGE_WHY), ("1至2小时", RANGE_WHY), ("30~45分钟", RANGE_WHY),
    ("1:30", UNIT_WHY), ("2天", UNIT_WHY), ("5400秒", UNIT_WHY), ("3周", UNIT_WHY), ("二二小时", UNIT_WHY),
    ("一个半小时半", UNIT_WHY), ("90分钟abc", UNIT_WHY),
])
def test_what_is_no_exact_duration_says_why(written, why):
    assert duration_one(written) == (None, why)


@pytest.mark.parametrize("value", [None, "", "   ", "90", "1.5", 90, 1.5, "abc", "NaN", "Infinity", "小时"])
def test_plain_numbers_and_text_without_a_figure_are_not_durations(value):
    """A plain number is the field's own unit (read by the caller); text without any figure
    is no duration at all (the caller's `expected` says what belongs)."""
    assert duration_one(value) == (None, None)


def test_the_column_form_keeps_the_index_and_reads_each_value_once():
    values = pd.Series(["90分钟", None, "约2小时", "90分钟", "2h"], index=[5, 6, 7, 8, 9])
    read = read_durations(values, "hours")
    assert list(read.index) == [5, 6, 7, 8, 9]
    assert read["value"].tolist()[0] == 1.5 and pd.isna(read["value"][6]) and read["value"][9] == 2.0
    assert read["why"].tolist()[2] == APPROXIMATE_WHY and read["why"].isna().sum() == 4


@PROPERTY
@given(st.lists(st.one_of(any_value, any_text, st.from_regex(r"[0-9一二两三半十]{1,3}(小时|分钟|h|min)?", fullmatch=True)),
                min_size=1, max_size=6))
def test_never_raises_and_column_equals_scalar(values):
    read = read_durations(pd.Series(values, dtype=object), "minutes")
    for value, (got, why) in zip(values, read.itertuples(index=False)):
        expected = duration_one(value, "minutes")
        assert (None if pd.isna(got) else got, None if pd.isna(why) else why) == expected
