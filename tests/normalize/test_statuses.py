"""Statuses of both sources onto one vocabulary each (the contract's rules)."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.normalize import statuses

from .strategies import PROPERTY_SEVERAL, any_text, any_value

CASES = [
    (("volunteer_status", "national"), ["1", "2", "3", 1, "1.0"], ["active", "deregistered", "frozen", "active", "active"]),
    (("organization_status", "national"), ["0", "1", "2", "3", "4", "5"],
     ["suspended", "active", "active", "suspended", "deleted", "suspended"]),
    (("organization_status", "provincial"), ["正常", "停用", "退出", " 停用 "], ["active", "suspended", "exited", "suspended"]),
    (("registration_status", "national"), ["1", "2", "3"], ["unregistered", "registered", "registered"]),
    (("registration_status", "provincial"), ["已登记", "已备案", "未登记", "已登記"], ["registered", "filed", "unregistered", "registered"]),
    (("service_status", "national"), ["0", "1", "2", "3", "4", "5"],
     ["pending", "unsigned", "effective", "deleted", "rejected", "failed"]),
    (("service_status", "provincial"), ["待审核", "已通过", "已驳回", "已撤销"], ["pending", "effective", "rejected", "revoked"]),
    (("gender", "national"), ["1", "2", "男", "女", "M", "f", 1.0], ["M", "F", "M", "F", "M", "F", "M"]),
    (("evaluator", "provincial"), ["registration_authority", "funder", "beneficiary", "self", "third_party", "第三方"],
     ["registration_authority", "funder", "beneficiary", "self", "third_party", "third_party"]),
    (("project_status", "national"), ["1", "5"], ["recruiting", "void"]),
]


def translate(vocabulary: tuple[str, str], values: pd.Series) -> pd.Series:
    kind, side = vocabulary
    return statuses.map_vocabulary(values, kind, side)


def case_id(vocabulary: tuple[str, str]) -> str:
    return "-".join(vocabulary)


@pytest.mark.parametrize("vocabulary, raw, expected", CASES, ids=[case_id(c[0]) for c in CASES])
def test_source_values_map_onto_the_vocabulary(vocabulary, raw, expected):
    result = translate(vocabulary, pd.Series(raw, dtype=object))
    assert result.tolist() == expected
    assert translate(vocabulary, result).tolist() == expected  # idempotent


@pytest.mark.parametrize("vocabulary", [c[0] for c in CASES], ids=[case_id(c[0]) for c in CASES])
def test_unknown_and_missing_values_are_missing(vocabulary):
    assert translate(vocabulary, pd.Series(["9", "", None, "unknown"], dtype=object)).isna().all()


@PROPERTY_SEVERAL
@given(st.lists(st.one_of(any_value, any_text), min_size=1, max_size=5))
def test_never_raises_and_only_vocabulary_words_come_out(values):
    for vocabulary, _, _ in CASES:
        result = translate(vocabulary, pd.Series(values, dtype=object))
        assert set(result.dropna()) <= set(statuses.vocabularies()[vocabulary[0]]["words"])
        assert translate(vocabulary, result).equals(result)
