"""Name normalizer: the seed document's dirt, legitimate brackets kept, and the properties
(never raises, idempotent, valid names unchanged, vectorized == scalar)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.normalize.names import normalize_name, normalize_name_one

from .strategies import (
    PROPERTY,
    SIMPLIFIED,
    any_text,
    any_value,
    dirty_text,
    latin_name,
    legit_bracket_name,
    simplified_name,
)

# The Guizhou measures this project serves, as published (traditional characters and the
# conversion debris real data carries): a fixture of the repository.
SEED = Path(__file__).resolve().parents[1] / "fixtures" / "seed_measures.txt"
ROMANISATION_IN_BRACKETS = re.compile(r"[\(\[（［]\s*[a-zA-Zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜü'\s]+\d?\s*[\)\]）］]")
DOUBLED_PUNCTUATION = re.compile(r"[,，、。;；:：!！?？]\s*[,，、。;；:：!！?？]")


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("共青團(tuán)貴州省委", "共青团贵州省委"),
        ("貴州省婦聯(lián)", "贵州省妇联"),
        ("近日,,中共", "近日,中共"),
        ("宣傳部,、貴州省", "宣传部、贵州省"),
        ("組織,。服務", "组织。服务"),
        ("貴州省婦聯,", "贵州省妇联"),  # separators at the ends of a name go
        ("服務(wù)組織", "服务组织"),
        ("共青團（tuán）貴州省委", "共青团贵州省委"),  # full-width brackets
        ("張 偉", "张伟"),
        ("　ＡＢＣ　志愿服务队　", "ABC志愿服务队"),
        ("Guizhou   Youth  Volunteers", "Guizhou Youth Volunteers"),
        ("阿依古丽 • 买买提", "阿依古丽·买买提"),
        # a dot typed for the middle dot, ASCII or full-width; parts of one character too
        ("阿依古丽.买买提", "阿依古丽·买买提"), ("阿依古丽．买买提", "阿依古丽·买买提"),
        ("甲.乙.丙.丁", "甲·乙·丙·丁"), ("Co., Ltd.", "Co., Ltd."),
        ("贵州省妇联\u200b", "贵州省妇联"),
        ("乡镇(街道)服务站", "乡镇(街道)服务站"),
        ("贵阳市志愿者协会(筹)", "贵阳市志愿者协会(筹)"),
        ("志愿服务站(点、岗)", "志愿服务站(点、岗)"),
        ("黔东南州(GZ)志愿者", "黔东南州(GZ)志愿者"),
        ("王芳(Wáng Fāng)", "王芳"),  # a person's own romanisation, each syllable capitalized
        ("王芳 (Wang Fang)", "王芳"),
        ("欧阳娜娜(Ōuyáng Nàna)", "欧阳娜娜"),
        ("张三(WANG)", "张三(WANG)"),  # capitals throughout: an acronym, kept
        ("贵阳(NGO)服务队", "贵阳(NGO)服务队"),
    ],
)
def test_typed_names_become_the_normalized_name(raw, expected):
    assert normalize_name_one(raw) == expected
    assert normalize_name(pd.Series([raw])).iloc[0] == expected


def test_seed_document_has_no_romanisation_or_doubled_punctuation_left():
    text = SEED.read_text(encoding="utf-8")
    assert ROMANISATION_IN_BRACKETS.search(text) and DOUBLED_PUNCTUATION.search(text)  # dirt is there

    whole = normalize_name_one(text)
    lines = normalize_name(pd.Series(text.splitlines()))

    for normalized in [whole, *lines.dropna()]:
        assert not ROMANISATION_IN_BRACKETS.search(normalized)
        assert not DOUBLED_PUNCTUATION.search(normalized)
    assert "共青团贵州省委" in whole and "贵州省妇联" in whole
    assert "貴" not in whole and "務" not in whole  # simplified throughout
    # legitimate brackets survive: the CJK ones of the document
    for kept in ["(以下简称《实施意见》)", "(点、岗)", "(街道)", "(中心)", "(志愿服务组织)"]:
        assert kept in whole
    # the vectorized form gives the scalar result line by line
    assert lines.tolist() == [normalize_name_one(line) for line in text.splitlines()]


def test_missing_and_empty_values_are_missing():
    values = pd.Series([None, np.nan, "", "   ", ",,", "\u200b"], dtype=object)
    assert normalize_name(values).isna().all()
    assert all(normalize_name_one(v) is None for v in values)


def test_index_and_length_are_kept_with_repeated_values():
    values = pd.Series(["貴州", "貴州", None, "貴州"], index=[10, 10, 3, 7])
    result = normalize_name(values)
    assert list(result.index) == [10, 10, 3, 7]
    assert result.tolist()[0] == "贵州" and result.tolist()[3] == "贵州"
    assert pd.isna(result.iloc[2])


def test_lone_surrogates_do_not_break_either_form():
    raw = "贵州\ud800省"
    assert normalize_name_one(raw) == normalize_name(pd.Series([raw], dtype=object)).iloc[0]


def test_the_valid_name_alphabet_of_the_strategies_is_stable_under_opencc():
    assert normalize_name_one(SIMPLIFIED) == SIMPLIFIED


@PROPERTY
@given(any_value)
def test_never_raises_and_returns_text_or_none(value):
    result = normalize_name_one(value)
    assert result is None or (isinstance(result, str) and result)
    vector = normalize_name(pd.Series([value], dtype=object))
    assert len(vector) == 1


@PROPERTY
@given(st.one_of(any_text, dirty_text))
def test_idempotent(value):
    once = normalize_name_one(value)
    assert normalize_name_one(once) == once


@PROPERTY
@given(st.lists(st.one_of(any_text, dirty_text), min_size=1, max_size=8))
def test_vectorized_equals_scalar_and_is_idempotent(values):
    series = pd.Series(values, dtype=object)
    vector = normalize_name(series)
    expected = [normalize_name_one(v) for v in values]
    assert [None if pd.isna(v) else v for v in vector] == expected
    again = normalize_name(vector)
    assert again.equals(vector)


@PROPERTY
@given(st.one_of(simplified_name, latin_name, legit_bracket_name))
def test_valid_names_round_trip_unchanged(name):
    assert normalize_name_one(name) == name
    assert normalize_name(pd.Series([name])).iloc[0] == name


@PROPERTY
@given(dirty_text)
def test_no_romanisation_or_doubled_punctuation_survives(value):
    result = normalize_name_one(value) or ""
    assert not DOUBLED_PUNCTUATION.search(result)
    # romanisation right after a Chinese character is gone
    assert not re.search(r"[\u4e00-\u9fff]\s?[\(\[][a-zāáǎàēéěèīíǐìōóǒòūúǔùü ]+\d?[\)\]]", result)
