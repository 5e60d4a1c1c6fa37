"""Durations written with their unit (90分钟, 1.5小时, 2h, 3 hours, 半小时, 一个半小时) -> minutes.

The contracts' duration fields are numbers in a fixed unit (national `albx0172` hours,
provincial `durationMinutes` and `minutes` whole minutes). An operator who types the unit
along with the number has said exactly what the duration is, in whichever unit: staging
reads the number of minutes and converts it to the field's unit (`transforms._number` with
the mapping's `unit:`). What cannot be read unambiguously gets no number and a reason:

* an approximation (约2小时, 2小时左右, 两个多小时, 1小时以上): no exact figure to count;
* a range (2-3小时, 1至2小时): no one figure;
* a clock-like or other unit (1:30, 2天, 5400秒, 3周): the unit says no hours or minutes,
  or says nothing (1:30 is an hour and a half or a minute and a half).

Pure functions, scalar and vectorized (over distinct values: few rows reach them, the
numbers SQL read as numbers never do).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from pipelines.normalize import FULLWIDTH_TO_ASCII, as_text, map_unique

# Chinese numerals people type for a number of hours or minutes: 两, 十五, 二十, 一百二十
_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
              "八": 8, "九": 9}
_D = "[一二两三四五六七八九]"
_CN_NUMBER = re.compile(
    f"(?:(?P<hundreds>{_D})?百(?:零(?P<units_after_zero>{_D})|(?P<tens_after_hundred>{_D})十(?P<units_after_tens>{_D})?)?"
    f"|(?P<tens>{_D})?十(?P<units>{_D})?"
    f"|(?P<digit>[零〇]|{_D}))"
)
_NUMBER = r"(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+|[零〇一二两三四五六七八九十百]+)"
_HOURS = r"(?:个?小时|个?钟头|个钟|hours?|hrs?|h)"
_MINUTES = r"(?:分钟|分|minutes?|mins?|m)"
# 1小时30分钟, 1h30m, 2h, 90分钟, 1.5小时; 一个半小时 / 一小时半 (and a half); 半小时 (half an hour)
_DURATION = re.compile(
    rf"(?:(?P<hours>{_NUMBER})?(?P<half_before>个?半)?(?P<hour_unit>{_HOURS})(?P<half_after>半)?)?"
    rf"(?:(?P<minutes>{_NUMBER})(?P<minute_unit>{_MINUTES}))?"
)
_APPROXIMATE = re.compile(r"约|大约|大概|左右|多|余|以上|以下|不到|不足|将近|近|差不多|about|approx|~$|\+$")
_RANGE = re.compile(rf"{_NUMBER}\s*(?:-|~|～|至|到|—|–)\s*{_NUMBER}")
_SPACES = re.compile(r"\s+")

APPROXIMATE_WHY = "an approximate duration (约, 左右, 多, 以上): no exact figure to count"
RANGE_WHY = "a range of durations (2-3小时): no one figure to count"
UNIT_WHY = ("text that is no number, nor a duration in hours or minutes with its unit (90分钟, 1.5小时, 2h, "
            "半小时 are read; 1:30, 2天, 5400秒 are not)")


def _chinese_number(text: str) -> float | None:
    match = _CN_NUMBER.fullmatch(text)
    if match is None:
        return None
    parts = {name: _CN_DIGITS[value] for name, value in match.groupdict().items() if value}
    if match.group("digit"):
        return float(parts["digit"])
    if "百" in text:
        tens = parts.get("tens_after_hundred", 0)
        units = parts.get("units_after_zero", parts.get("units_after_tens", 0))
        return float(parts.get("hundreds", 1) * 100 + tens * 10 + units)
    return float(parts.get("tens", 1) * 10 + parts.get("units", 0))


def _number(text: str | None) -> float | None:
    if not text:
        return None
    if text[0].isascii():
        return float(text)
    return _chinese_number(text)


MINUTES_PER = {"minutes": 1.0, "hours": 60.0}
_SAYS_A_NUMBER = re.compile(r"[0-9零〇一二两三四五六七八九十百半]")


def duration_one(value, unit: str = "minutes") -> tuple[float | None, str | None]:
    """(the duration in `unit`, None) for a duration written with its unit, or a number in
    Chinese numerals (二十: in `unit`, as a plain number is); (None, why) for text that says a
    number but no unambiguous duration; (None, None) for anything else (a plain number is the
    caller's to read, text with no figure in it is no duration)."""
    text = as_text(pd.Series([value], dtype=object)).iloc[0]
    if not isinstance(text, str):
        return None, None
    text = _SPACES.sub("", text.translate(FULLWIDTH_TO_ASCII)).lower()
    if not _SAYS_A_NUMBER.search(text) or re.fullmatch(r"[0-9.]+", text):
        return None, None
    if _RANGE.search(text):
        return None, RANGE_WHY
    if _APPROXIMATE.search(text):
        return None, APPROXIMATE_WHY
    numeral = _chinese_number(text)
    if numeral is not None:
        return numeral, None
    match = _DURATION.fullmatch(text)
    if match is None or not (match.group("hour_unit") or match.group("minute_unit")):
        return None, UNIT_WHY
    half = bool(match.group("half_before") or match.group("half_after"))
    hours = _number(match.group("hours"))
    minutes = _number(match.group("minutes"))
    unreadable = (
        (match.group("half_before") and match.group("half_after"))  # 一个半小时半
        or (match.group("hours") and hours is None)  # 二二小时: no numeral
        or (match.group("hour_unit") and hours is None and not half)  # 小时 alone
        or (match.group("minutes") and minutes is None)
    )
    if unreadable:
        return None, UNIT_WHY
    total = (hours or 0.0) * 60 + (30.0 if half else 0.0) + (minutes or 0.0)
    return total / MINUTES_PER[unit], None


def read_durations(values, unit: str = "minutes") -> pd.DataFrame:
    """`duration_one` over a column: DataFrame[value (float64, in `unit`), why (str)], on the
    input's index; each distinct value read once."""
    text = as_text(values)

    def each(position: int, dtype: str):
        return lambda distinct: pd.Series([duration_one(v, unit)[position] for v in distinct.tolist()],
                                          index=distinct.index, dtype=dtype)

    read = map_unique(text, each(0, "float64"), dtype="float64")
    why = map_unique(text, each(1, "str"))
    return pd.DataFrame({"value": read.where(np.isfinite(read)), "why": why}, index=text.index)
