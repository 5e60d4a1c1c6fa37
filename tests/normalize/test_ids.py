"""Resident ID numbers (GB 11643), other certificates, USCC (GB 32100)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from stdnum.cn import ric, uscc

from pipelines.normalize.ids import (
    cert_type_from_national,
    cert_type_from_provincial,
    identity_conflicts,
    is_valid_resident_id,
    normalize_other_cert,
    normalize_resident_id,
    normalize_resident_id_one,
    normalize_uscc,
    resident_id_check_char,
)
from tests.reference import RESIDENT_ID_EXAMPLES, resident_id

from .strategies import PROPERTY, any_text, any_value, valid_legacy_ids, valid_resident_ids

# A number built by the standard: 520102 + 1990-01-01 + 123, check character X (the sum is
# worked out in tests/reference.py).
VALID = "52010219900101123X"
FULLWIDTH = {str(d): chr(0xFF10 + d) for d in range(10)}

# the run's date the validity of a birth date is judged against (pipelines/clock.py)
TODAY = dt.date(2026, 7, 1)


def to_fullwidth(number: str) -> str:
    return "".join(FULLWIDTH.get(c, c) for c in number).replace("X", "ｘ")


@pytest.mark.parametrize("number, right", RESIDENT_ID_EXAMPLES)
def test_check_character_of_hand_checked_examples(number, right):
    # GB 11643's own example 11010519491231002X among them; right=False: a wrong check character
    assert (resident_id_check_char(number[:17]) == number[17]) is right
    assert is_valid_resident_id(number, today=TODAY) is right
    row = normalize_resident_id(pd.Series([number]), today=TODAY).iloc[0]
    assert bool(row["cert_valid"]) is right and row["cert_no"] == number


@PROPERTY
@given(st.text(alphabet="0123456789", min_size=17, max_size=17))
def test_check_character_agrees_with_stdnum(first17):
    # python-stdnum computes it its own way ((1 - 2 * int(digits, 13)) % 11); it reads the
    # number with a check character in place, so give it a placeholder
    assert resident_id_check_char(first17) == ric.calc_check_digit(first17 + "0")


def test_a_number_masked_by_its_source_keeps_its_ends_whatever_its_length():
    # the interface fixes the ends, not the number of stars: a legacy 15-character number
    # masked, a short mask; a clear number too short to be whole (mistyped) keeps no ends
    masked = ["5201*******1234", "5201**123X", "5201*123x", "５２０１＊＊１２３Ｘ"]
    frame = normalize_resident_id(pd.Series(masked + ["52010219900101", "5201**12"]), today=TODAY)
    assert frame["cert_masked"].tolist() == [True] * 4 + [False, True]
    assert not frame["cert_valid"].any() and frame["birth_date"].isna().all()
    assert frame["cert_prefix4"].tolist()[:4] == ["5201"] * 4
    assert frame["cert_suffix4"].tolist()[:4] == ["1234", "123X", "123X", "123X"]
    assert frame["cert_prefix4"].iloc[4:].isna().all() and frame["cert_suffix4"].iloc[4:].isna().all()


@pytest.mark.parametrize(
    "legacy, number",
    [("110105491231002", "11010519491231002X"), ("520102900101123", VALID),
     ("520102900101124", "520102199001011248")],
)
def test_legacy_numbers_of_hand_checked_examples(legacy, number):
    assert normalize_resident_id_one(legacy) == number
    assert normalize_resident_id(pd.Series([legacy]), today=TODAY)["cert_no"].iloc[0] == number


@pytest.mark.parametrize(
    "raw",
    [VALID, "52010219900101123x", " 520102 19900101 123X ", "520102-19900101-123x",
     to_fullwidth(VALID), "５２０１０２１９９００１０１１２３Ｘ\u3000",
     # copied from a web page: a zero-width space, a word joiner, a BOM, a direction mark
     "520102\u200b19900101\u2060123x\ufeff", "\u200e52010219900101123X",
     # the check character as an input method offers it for "x"
     "52010219900101123×", "52010219900101123Ⅹ", "52010219900101123ⅹ"],
)
def test_dirty_spellings_of_one_number_normalize_to_it(raw):
    assert normalize_resident_id_one(raw) == VALID
    row = normalize_resident_id(pd.Series([raw]), today=TODAY).iloc[0]
    assert row["cert_no"] == VALID and row["cert_valid"]
    assert row["birth_date"] == pd.Timestamp("1990-01-01") and row["gender"] == "M"
    assert (row["cert_prefix4"], row["cert_suffix4"]) == ("5201", "123X")


@pytest.mark.parametrize(
    "raw",
    # what operators wrap a number in: Excel's text marker, quotes, a label, a full stop, a
    # note after it; a legacy number wrapped alike
    ["'52010219900101123X", "\u201c52010219900101123x\u201d", "身份证号：52010219900101123X",
     "52010219900101123X。", "52010219900101123X（本人）", "'520102900101123"],
)
def test_a_number_wrapped_in_quotes_labels_or_punctuation_normalizes_to_it(raw):
    assert normalize_resident_id_one(raw) == VALID
    row = normalize_resident_id(pd.Series([raw]), today=TODAY).iloc[0]
    assert row["cert_no"] == VALID and row["cert_valid"]


def test_a_value_that_is_all_wrapping_holds_no_number():
    frame = normalize_resident_id(pd.Series(["无", "'", "（空）"]), today=TODAY)
    assert frame["cert_no"].isna().all() and not frame["cert_valid"].any()


def test_legacy_15_digit_number_becomes_its_18_digit_form():
    assert normalize_resident_id_one("520102900101123") == VALID
    frame = normalize_resident_id(pd.Series(["520102900101123", VALID]), today=TODAY)
    assert frame["cert_no"].nunique() == 1 and frame["cert_valid"].all()


def test_a_real_number_older_than_its_county_code_is_valid_though_stdnum_rejects_it():
    # 520115 (观山湖区) exists since 2012; someone born there in 1990 has this code today.
    number = "520115199001011231"  # check character worked out in tests/reference.py
    assert not ric.is_valid(number)
    assert is_valid_resident_id(number, today=TODAY)
    assert normalize_resident_id(pd.Series([number]), today=TODAY)["cert_valid"].iloc[0]


def test_masked_numbers_stay_masked_and_keep_what_masking_keeps():
    frame = normalize_resident_id(pd.Series(["5201**********123X", "5201 ****** ****123x"]), today=TODAY)
    assert frame["cert_no"].tolist() == ["5201**********123X"] * 2
    assert frame["cert_masked"].all() and not frame["cert_valid"].any()
    assert frame["birth_date"].isna().all() and frame["gender"].isna().all()
    assert frame["cert_prefix4"].tolist() == ["5201"] * 2
    assert frame["cert_suffix4"].tolist() == ["123X"] * 2


@pytest.mark.parametrize(
    "number, why",
    [
        ("520102199001011230", "wrong check character"),
        # right check characters (GB 11643 sums 201, 239, 107), impossible birth dates
        ("520102199002301239", "30 February"),
        ("520102189912311234", "before 1900"),
        ("520102210001011234", "in the future"),
        ("5201021990010112", "too short"),
        ("E12345678", "a passport number"),
    ],
)
def test_invalid_numbers_are_kept_but_not_valid(number, why):
    row = normalize_resident_id(pd.Series([number]), today=TODAY).iloc[0]
    assert row["cert_no"] == number, why
    assert not row["cert_valid"] and pd.isna(row["birth_date"]) and pd.isna(row["gender"]), why
    assert not is_valid_resident_id(number, today=TODAY), why


def test_gender_comes_from_the_17th_digit():
    female = "520102199001011248"  # 17th digit 4: even
    frame = normalize_resident_id(pd.Series([VALID, female]), today=TODAY)
    assert frame["gender"].tolist() == ["M", "F"]


def test_columns_and_types_for_the_staging_layer():
    frame = normalize_resident_id(pd.Series([VALID, None, "", np.nan], index=[4, 4, 9, 1], dtype=object), today=TODAY)
    assert list(frame.columns) == ["cert_no", "cert_masked", "cert_valid", "birth_date", "gender",
                                   "cert_prefix4", "cert_suffix4"]
    assert list(frame.index) == [4, 4, 9, 1]
    assert frame["cert_no"].isna().tolist() == [False, True, True, True]
    assert frame["cert_masked"].dtype == bool and frame["cert_valid"].dtype == bool
    assert str(frame["birth_date"].dtype) == "datetime64[us]"


def test_today_is_a_parameter_for_the_future_rule():
    number = "520102202406011232"  # GB 11643 sum 175 -> 2
    assert is_valid_resident_id(number, today=dt.date(2024, 6, 1))
    assert not is_valid_resident_id(number, today=dt.date(2024, 5, 31))
    assert not normalize_resident_id(pd.Series([number]), today=dt.date(2024, 5, 31))["cert_valid"].iloc[0]


def test_conflicts_with_stated_values_are_flagged_only_when_both_sides_are_known():
    flags = identity_conflicts(
        pd.Series(["M", "M", np.nan, "F"]),
        pd.Series(pd.to_datetime(["1990-01-01", "1990-01-01", None, "1985-05-05"])),
        pd.Series(["F", "M", "F", np.nan]),
        pd.Series(pd.to_datetime(["1990-01-01", "1990-01-02", "1990-01-01", None])),
    )
    assert flags["gender_conflict"].tolist() == [True, False, False, False]
    assert flags["birth_conflict"].tolist() == [False, True, False, False]


def test_certificate_types():
    national = cert_type_from_national(pd.Series(["01", "1", "02", "03", "04", "05", "06", "07", "08", "99", "42", None]))
    assert national.tolist()[:-1] == ["resident_id", "resident_id", "hk_macao", "hk_macao", "taiwan",
                                      "passport", "military", "military", "other", "other", "other"]
    assert pd.isna(national.iloc[-1])
    provincial = cert_type_from_provincial(pd.Series(
        ["身份证", "港澳居民来往内地通行证", "台湾居民来往大陆通行证", "護照", "其他", " 身份證 ", None]))
    assert provincial.tolist()[:-1] == ["resident_id", "hk_macao", "taiwan", "passport", "other", "resident_id"]
    assert cert_type_from_national(national).tolist()[:-1] == national.tolist()[:-1]  # idempotent


def test_other_certificates_are_cleaned_not_interpreted():
    assert normalize_other_cert(pd.Series([" ｅ１２３ ４５６７８ ", "H1234567", None])).tolist()[:2] == ["E12345678", "H1234567"]


# ---------------------------------------------------------------------------------------
# USCC

def test_uscc_cleaned_and_checked():
    frame = normalize_uscc(pd.Series(["91110000600037341L", " 9111 0000-6000 37341l ", "91110000600037341M",
                                      "A1110000600037341L", "abc", None, "９１１１００００６０００３７３４１Ｌ"]))
    assert frame["uscc"].tolist()[:3] == ["91110000600037341L", "91110000600037341L", "91110000600037341M"]
    assert frame["uscc_valid"].tolist() == [True, True, False, False, False, False, True]


@st.composite
def valid_usccs(draw):
    body = draw(st.text(alphabet="0123456789", min_size=8, max_size=8)) + draw(
        st.text(alphabet="0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=9, max_size=9))
    return body + uscc.calc_check_digit(body)


@PROPERTY
@given(valid_usccs())
def test_valid_usccs_round_trip_and_agree_with_stdnum(code):
    frame = normalize_uscc(pd.Series([code, code.lower()]))
    assert frame["uscc"].tolist() == [code, code] and frame["uscc_valid"].all()
    assert uscc.is_valid(code)


@PROPERTY
@given(st.one_of(any_text, any_value))
def test_uscc_never_raises_and_is_idempotent(value):
    once = normalize_uscc(pd.Series([value], dtype=object))
    twice = normalize_uscc(once["uscc"])
    assert once["uscc"].equals(twice["uscc"]) and once["uscc_valid"].equals(twice["uscc_valid"])
    if once["uscc_valid"].iloc[0]:
        assert uscc.is_valid(once["uscc"].iloc[0])


# ---------------------------------------------------------------------------------------
# Properties of the resident ID normalizer

@PROPERTY
@given(valid_resident_ids())
def test_valid_numbers_round_trip_unchanged_and_valid(number):
    assert normalize_resident_id_one(number) == number
    assert is_valid_resident_id(number, today=TODAY)
    row = normalize_resident_id(pd.Series([number]), today=TODAY).iloc[0]
    assert row["cert_no"] == number and row["cert_valid"]
    assert row["birth_date"] == pd.Timestamp(f"{number[6:10]}-{number[10:12]}-{number[12:14]}")


@PROPERTY
@given(valid_legacy_ids())
def test_legacy_numbers_convert_to_valid_18_digit_numbers(legacy):
    number = normalize_resident_id_one(legacy)
    assert number == resident_id(legacy[:6] + "19" + legacy[6:])  # the reference check character
    assert is_valid_resident_id(number, today=TODAY) and normalize_resident_id_one(number) == number


@PROPERTY
@given(valid_resident_ids(), st.integers(0, 16), st.integers(1, 9))
def test_a_single_mistyped_digit_breaks_the_check_character(number, position, shift):
    digit = (int(number[position]) + shift) % 10
    typo = number[:position] + str(digit) + number[position + 1:]
    assert not is_valid_resident_id(typo, today=TODAY)


@PROPERTY
@given(valid_resident_ids(), st.integers(0, 15))
def test_a_swap_of_two_adjacent_digits_breaks_the_check_character(number, position):
    assume(number[position] != number[position + 1])
    swapped = number[:position] + number[position + 1] + number[position] + number[position + 2:]
    assert not is_valid_resident_id(swapped, today=TODAY)


@PROPERTY
@given(st.lists(st.one_of(any_value, any_text, valid_resident_ids(), valid_legacy_ids(),
                          valid_resident_ids().map(to_fullwidth)), min_size=1, max_size=6))
def test_never_raises_idempotent_and_vectorized_equals_scalar(values):
    frame = normalize_resident_id(pd.Series(values, dtype=object), today=TODAY)
    scalar = [normalize_resident_id_one(v) for v in values]
    assert [None if pd.isna(v) else v for v in frame["cert_no"]] == scalar
    assert frame["cert_valid"].tolist() == [is_valid_resident_id(v, today=TODAY) for v in values]
    again = normalize_resident_id(frame["cert_no"], today=TODAY)
    assert again.equals(frame)
    assert [normalize_resident_id_one(s) for s in scalar] == scalar
