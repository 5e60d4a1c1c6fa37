"""Phones: +86, spaces and dashes removed; mobiles checked; masked numbers kept masked."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.normalize.phones import normalize_phone, normalize_phone_one, several_mobiles
from pipelines.privacy import mask_phone

from .strategies import PROPERTY, any_text, any_value, mobile


@pytest.mark.parametrize(
    "raw",
    ["13812345678", "+86 138 1234 5678", "138-1234-5678", "+86-138-1234-5678", "(+86)13812345678",
     "008613812345678", "8613812345678", "１３８１２３４５６７８", " 138 1234 5678 ",
     # wrapped: Excel's text marker, quotes, a label, a full stop
     "'13812345678", "“13812345678”", "手机：13812345678", "13812345678。", "'+86 138 1234 5678"],
)
def test_the_ways_people_type_one_mobile(raw):
    row = normalize_phone(pd.Series([raw])).iloc[0]
    assert row["phone"] == "13812345678" and row["phone_valid"] and not row["phone_masked"]
    assert (row["phone_prefix3"], row["phone_suffix4"]) == ("138", "5678")
    assert normalize_phone_one(raw) == "13812345678"


@pytest.mark.parametrize(
    "raw",
    ["13812345678转123", "13812345678-123", "13812345678 ext 123", "13812345678 ext.123", "13812345678 EXT 8001",
     "13812345678分机123", "13812345678 分机号：8001", "13812345678(转123)", "13812345678，转123", "13812345678#12",
     "+86 138 1234 5678 x12", "138-1234-5678-123", "１３８１２３４５６７８转１２３", "13812345678 - 123"],
)
def test_a_mobile_with_an_extension_is_the_mobile(raw):
    """The session-4 review: a desk's extension after a mobile made the number invalid (no
    hash, no match on the phone); the extension is dropped, the mobile read."""
    row = normalize_phone(pd.Series([raw])).iloc[0]
    assert row["phone"] == "13812345678" and row["phone_valid"] and not row["phone_masked"]
    assert normalize_phone_one(raw) == "13812345678"


@pytest.mark.parametrize("raw", ["13812345678-1234567", "0851-86812345-123"])
def test_what_is_no_mobile_with_an_extension_stays_invalid(raw):
    assert not normalize_phone(pd.Series([raw])).iloc[0]["phone_valid"]


@pytest.mark.parametrize(("raw", "read", "valid"), [("13812345678.0", "13812345678", True),
                                                   ("１３８１２３４５６７８．００", "13812345678", True),
                                                   ("1381234567.0", "1381234567", False)])
def test_a_number_written_as_a_float_is_its_integer(raw, read, valid):
    """A spreadsheet's or a serializer's float: the point was a separator to the cleaning, so
    13812345678.0 was 12 digits (invalid) and 1381234567.0 the mobile 13812345670."""
    row = normalize_phone(pd.Series([raw])).iloc[0]
    assert (row["phone"], row["phone_valid"]) == (read, valid) and normalize_phone_one(raw) == read


def test_a_masked_mobile_with_an_extension_stays_masked():
    row = normalize_phone(pd.Series(["138****5678转12"])).iloc[0]
    assert row["phone"] == "138****5678" and row["phone_masked"] and not row["phone_valid"]


def test_masked_numbers_are_kept_as_masked_never_guessed():
    frame = normalize_phone(pd.Series(["138****5678", "+86 138****5678"]))
    assert frame["phone"].tolist() == ["138****5678", "138****5678"]
    assert frame["phone_masked"].all() and not frame["phone_valid"].any()
    assert frame["phone_prefix3"].tolist() == ["138", "138"]
    assert frame["phone_suffix4"].tolist() == ["5678", "5678"]


@pytest.mark.parametrize("raw", ["12345678901", "1381234567", "0851-85551234", "phone", "23812345678"])
def test_not_a_mobile(raw):
    row = normalize_phone(pd.Series([raw])).iloc[0]
    assert not row["phone_valid"] and pd.isna(row["phone_prefix3"]) and pd.isna(row["phone_suffix4"])


def test_missing_values_and_index():
    frame = normalize_phone(pd.Series([None, "", "  ", "13812345678"], index=[3, 3, 1, 0], dtype=object))
    assert list(frame.index) == [3, 3, 1, 0]
    assert frame["phone"].isna().tolist() == [True, True, True, False]
    assert frame["phone_valid"].tolist() == [False, False, False, True]


@PROPERTY
@given(mobile)
def test_valid_mobiles_round_trip(number):
    row = normalize_phone(pd.Series([number, "+86 " + number])).iloc[1]
    assert row["phone"] == number and row["phone_valid"]


@PROPERTY
@given(st.lists(st.one_of(any_value, any_text, mobile), min_size=1, max_size=6))
def test_never_raises_idempotent_and_vectorized_equals_scalar(values):
    frame = normalize_phone(pd.Series(values, dtype=object))
    scalar = [normalize_phone_one(v) for v in values]
    assert [None if pd.isna(v) else v for v in frame["phone"]] == scalar
    assert normalize_phone(frame["phone"]).equals(frame)


# -- a phone box holding several mobiles (session 6) --------------------------------------


@pytest.mark.parametrize("raw", [
    "13812345678/13912345678", "13812345678、13912345678", "13812345678,13912345678", "13812345678，13912345678",
    "13812345678 13912345678", "13812345678;13912345678", "1381234567813912345678", "138 1234 5678 / 139 1234 5678",
    "+86 13812345678 或 13912345678", "13812345678/13912345678/13712345678", "１３８１２３４５６７８／１３９１２３４５６７８",
])
def test_a_box_of_several_mobiles_is_the_first(raw):
    """The contract has one phone an account: the first is kept (hashed by staging), the
    others dropped, never kept in clear anywhere."""
    row = normalize_phone(pd.Series([raw])).iloc[0]
    assert (row["phone"], row["phone_valid"], row["phone_suffix4"]) == ("13812345678", True, "5678")
    assert normalize_phone_one(raw) == "13812345678"
    assert several_mobiles(pd.Series([raw])).iloc[0]
    assert "1234567" not in mask_phone(raw)


@pytest.mark.parametrize("raw", ["13812345678/0851-86812345", "13812345678/1391234567",
                                 "138123456781391234567"])
def test_a_mobile_beside_something_else_stays_invalid(raw):
    row = normalize_phone(pd.Series([raw])).iloc[0]
    assert not row["phone_valid"] and pd.isna(row["phone_suffix4"])
    assert not several_mobiles(pd.Series([raw])).iloc[0]


def test_one_mobile_is_not_several_and_a_masked_first_stays_masked():
    assert not several_mobiles(pd.Series(["13812345678", "138 1234 5678", "13812345678转123"])).any()
    row = normalize_phone(pd.Series(["138****5678/13912345678"])).iloc[0]
    assert row["phone"] == "138****5678" and row["phone_masked"] and not row["phone_valid"]
