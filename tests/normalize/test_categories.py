"""Service categories: national codes and provincial labels onto the national label list."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from hypothesis import given
from hypothesis import strategies as st

from pipelines.normalize.categories import (
    NATIONAL_CATEGORIES,
    first_category,
    national_code_to_label,
    national_codes_to_categories,
    provincial_labels_to_categories,
)

from .strategies import PROPERTY_SEVERAL, any_text, any_value

CONTRACT_SYNONYMS = {
    "卫健": "卫生健康", "扶贫": "扶贫减贫", "乡村振兴": "扶贫减贫", "助残": "助老助残", "助老": "助老助残",
    "环保": "生态环保", "文旅": "文化旅游", "司法": "法律服务", "支教": "支教助学", "科普": "科技科普",
    "体育": "体育健身", "应急": "应急救援", "消防": "消防安全", "禁毒": "禁毒宣传", "交通": "交通引导",
}


def test_national_list_matches_the_national_contract():
    spec = yaml.safe_load(open(Path(__file__).resolve().parents[2] / "schemas" / "sources" / "national.openapi.yaml", encoding="utf-8"))
    labels = spec["components"]["schemas"]["ServiceCategory"]["x-labels"]
    assert NATIONAL_CATEGORIES == {str(k): v for k, v in labels.items()}
    assert list(NATIONAL_CATEGORIES) == sorted(NATIONAL_CATEGORIES)  # code order


def test_every_contract_synonym_maps():
    result = provincial_labels_to_categories(pd.Series(list(CONTRACT_SYNONYMS)))
    assert result["categories"].tolist() == list(CONTRACT_SYNONYMS.values())
    assert result["unmapped_categories"].isna().all()


def test_provincial_labels_split_mapped_ordered_deduplicated():
    values = pd.Series(["助残,应急", "应急，助老、助残", "衛健 扶貧", "文化,卫生健康", "", None, "神秘"])
    result = provincial_labels_to_categories(values)
    assert result["categories"].tolist()[:4] == ["助老助残,应急救援", "助老助残,应急救援",
                                                 "扶贫减贫,卫生健康", "卫生健康"]
    assert result["categories"].iloc[4:].isna().all()
    assert result["unmapped_categories"].tolist()[3] == "文化"  # ambiguous: left for a person
    assert result["unmapped_categories"].tolist()[6] == "神秘"


def test_national_code_lists_in_every_shape_they_arrive():
    values = pd.Series([["0010", "0001", "0010"], np.array(["0004"]), '["0002", "0003"]', "0016,0099",
                        [], None, ["9999"], [4, 11]], index=[7, 7, 1, 2, 3, 4, 5, 6], dtype=object)
    result = national_codes_to_categories(values)
    assert list(result.index) == [7, 7, 1, 2, 3, 4, 5, 6]
    assert result["categories"].tolist()[:4] == ["社区服务,助老助残", "卫生健康", "扶贫减贫,支教助学", "文化旅游,其他"]
    assert result["categories"].iloc[4:7].isna().all()
    assert result["unmapped_categories"].tolist()[6] == "9999"
    assert result["categories"].iloc[7] == "卫生健康,应急救援"


def test_single_codes_and_first_category():
    assert national_code_to_label(pd.Series(["0004", "4", "0099", "卫健", "x", None])).tolist()[:4] == [
        "卫生健康", "卫生健康", "其他", "卫生健康"]
    first = first_category(pd.Series(["助残,应急", "应急,助残", "0006", "神秘,卫健", None]))
    assert first.tolist()[:3] == ["助老助残", "应急救援", "生态环保"]
    assert first.iloc[3:].isna().all()


@PROPERTY_SEVERAL
@given(st.lists(st.lists(st.sampled_from(list(NATIONAL_CATEGORIES)), max_size=5), min_size=1, max_size=5))
def test_outputs_are_national_labels_in_code_order_and_idempotent(code_lists):
    result = national_codes_to_categories(pd.Series(code_lists, dtype=object))
    order = list(NATIONAL_CATEGORIES.values())
    for codes, categories in zip(code_lists, result["categories"]):
        expected = [NATIONAL_CATEGORIES[c] for c in sorted(set(codes))]
        assert (categories.split(",") if isinstance(categories, str) else []) == expected
        if isinstance(categories, str):
            labels = categories.split(",")
            assert labels == sorted(labels, key=order.index)
    again = provincial_labels_to_categories(result["categories"])
    assert again["categories"].equals(result["categories"])


@PROPERTY_SEVERAL
@given(st.lists(st.one_of(any_value, any_text), min_size=1, max_size=5))
def test_never_raises_on_any_text(values):
    series = pd.Series(values, dtype=object)
    result = provincial_labels_to_categories(series)
    assert len(result) == len(values)
    assert provincial_labels_to_categories(result["categories"])["categories"].equals(result["categories"])
    national_codes_to_categories(series)
    first_category(series)
    labels = national_code_to_label(series)
    assert national_code_to_label(labels).equals(labels)
