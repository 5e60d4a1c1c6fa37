"""Statuses of both sources onto one vocabulary each (the contract's rules)."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.normalize import statuses

from .strategies import PROPERTY_SEVERAL, any_text, any_value

CASES = [
    (statuses.volunteer_status_from_national, ["1", "2", "3", 1, "1.0"], ["active", "deregistered", "frozen", "active", "active"]),
    (statuses.organization_status_from_national, ["0", "1", "2", "3", "4", "5"],
     ["suspended", "active", "active", "suspended", "deleted", "suspended"]),
    (statuses.organization_status_from_provincial, ["正常", "停用", "退出", " 停用 "], ["active", "suspended", "exited", "suspended"]),
    (statuses.registration_status_from_national, ["1", "2", "3"], ["unregistered", "registered", "registered"]),
    (statuses.registration_status_from_provincial, ["已登记", "已备案", "未登记", "已登記"], ["registered", "filed", "unregistered", "registered"]),
    (statuses.service_status_from_national, ["0", "1", "2", "3", "4", "5"],
     ["pending", "unsigned", "effective", "deleted", "rejected", "failed"]),
    (statuses.service_status_from_provincial, ["待审核", "已通过", "已驳回", "已撤销"], ["pending", "effective", "rejected", "revoked"]),
    (statuses.gender_from_code, ["1", "2", "男", "女", "M", "f", 1.0], ["M", "F", "M", "F", "M", "F", "M"]),
    (statuses.evaluator_type, ["registration_authority", "funder", "beneficiary", "self", "third_party", "第三方"],
     ["registration_authority", "funder", "beneficiary", "self", "third_party", "third_party"]),
    (statuses.project_status_from_national, ["1", "5"], ["recruiting", "void"]),
]


@pytest.mark.parametrize("function, raw, expected", CASES, ids=[c[0].__name__ for c in CASES])
def test_source_values_map_onto_the_vocabulary(function, raw, expected):
    result = function(pd.Series(raw, dtype=object))
    assert result.tolist() == expected
    assert function(result).tolist() == expected  # idempotent


@pytest.mark.parametrize("function", [c[0] for c in CASES], ids=[c[0].__name__ for c in CASES])
def test_unknown_and_missing_values_are_missing(function):
    assert function(pd.Series(["9", "", None, "unknown"], dtype=object)).isna().all()


@PROPERTY_SEVERAL
@given(st.lists(st.one_of(any_value, any_text), min_size=1, max_size=5))
def test_never_raises_and_only_vocabulary_words_come_out(values):
    for function, _, expected in CASES:
        result = function(pd.Series(values, dtype=object))
        words = set(statuses.vocabularies()[next(
            kind for kind, spec in statuses.vocabularies().items() if set(expected) <= set(spec["words"]))]["words"])
        assert set(result.dropna()) <= words
        assert function(result).equals(result)
