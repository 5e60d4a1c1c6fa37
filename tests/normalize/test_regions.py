"""Region codes: the county list of Guizhou derived from stdnum's table, retired codes mapped
to their successors, 12-digit statistical codes cut to 6.

The expected county list is the one typed in tests/reference.py from GB/T 2260, not the
module's own derivation."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.normalize.regions import (
    guizhou_counties,
    is_guizhou,
    normalize_region,
    normalize_region_one,
)

from tests.reference import CONTRACT_RENAMES, GUIZHOU_COUNTIES, GUIZHOU_PREFECTURES

from .strategies import PROPERTY, any_text, any_value


def test_county_list_is_the_current_one():
    counties = guizhou_counties()
    assert list(counties.columns) == ["region_code", "region_name", "prefecture_code", "prefecture_name"]
    assert len(counties) == 88
    assert counties["region_code"].is_unique
    # every current county with its name, and its prefecture: the published list
    assert dict(counties[["region_code", "region_name"]].values) == GUIZHOU_COUNTIES
    assert (counties["prefecture_code"] == counties["region_code"].str.slice(0, 4)).all()
    assert dict(counties[["prefecture_code", "prefecture_name"]].drop_duplicates().values) == GUIZHOU_PREFECTURES
    assert not counties["region_name"].eq("市辖区").any()
    assert not counties["region_code"].str.endswith("00").any()
    names = dict(counties[["region_code", "region_name"]].values)
    # current ones, including new ones and xx01 codes that are real counties
    assert names["520115"] == "观山湖区" and names["520204"] == "水城区"
    assert names["520281"] == "盘州市" and names["520581"] == "黔西市"
    assert names["520201"] == "钟山区" and names["522301"] == "兴义市" and names["522601"] == "凯里市"
    # retired ones are not listed
    for retired in ["520114", "520221", "520222", "520522", "522101", "522401"]:
        assert retired not in names


def test_contract_retired_codes_map_to_their_successors():
    assert normalize_region(pd.Series(["520114", "520221", "520222", "520522"])).tolist() == [
        "520115", "520204", "520281", "520581"]
    for retired, successor in CONTRACT_RENAMES.items():
        assert normalize_region_one(retired) == successor
        assert normalize_region_one(retired + "003002") == successor


def test_retired_codes_take_their_successor_and_uncertain_splits_none():
    assert normalize_region_one("522423") == "520581"  # 黔西县 of 毕节地区 -> 黔西市
    assert normalize_region_one("520321") == "520304"  # 遵义县 -> 播州区
    assert normalize_region_one("522230") == "520603"  # 万山特区 -> 万山区
    assert normalize_region_one("522101") == "522101"  # county-level 遵义市 was split: kept as given


@pytest.mark.parametrize("written", ["520102.0", "520102001001.00", "５２０１０２．０", "520114.0"])
def test_a_code_a_spreadsheet_made_a_decimal_is_the_code(written):
    # a spreadsheet export writes 520102.0: its point and zeros are no digits of the code
    expected = "520115" if written.startswith("520114") else "520102"
    assert normalize_region_one(written) == expected
    assert normalize_region(pd.Series([written])).tolist() == [expected]


def test_statistical_codes_are_cut_and_cleaned():
    values = pd.Series(["520102001001", "520114003002", " 520102 ", "５２０１０２", 520102, 520102.0,
                        "520102001", None, "", "52", "110101"], dtype=object)
    assert normalize_region(values).tolist()[:7] == ["520102", "520115", "520102", "520102",
                                                       "520102", "520102", "520102"]
    tail = normalize_region(values).tolist()[7:]
    assert pd.isna(tail[0]) and pd.isna(tail[1]) and tail[2:] == ["52", "110101"]


def test_is_guizhou():
    flags = is_guizhou(pd.Series(["520102001001", "520114", "520100", "110101", None, "5201"]))
    assert flags.tolist() == [True, True, False, False, False, False]


@PROPERTY
@given(st.sampled_from(sorted(GUIZHOU_COUNTIES)), st.text(alphabet="0123456789", min_size=6, max_size=6))
def test_current_codes_round_trip_and_12_digit_forms_cut(code, town_village):
    assert normalize_region_one(code) == code
    assert normalize_region(pd.Series([code, code + town_village])).tolist() == [code, code]


@PROPERTY
@given(st.lists(st.one_of(any_value, any_text, st.text(alphabet="0123456789", max_size=14)), min_size=1, max_size=6))
def test_never_raises_idempotent_and_vectorized_equals_scalar(values):
    codes = normalize_region(pd.Series(values, dtype=object))
    assert [None if pd.isna(v) else v for v in codes] == [normalize_region_one(v) for v in values]
    assert normalize_region(codes).equals(codes)
