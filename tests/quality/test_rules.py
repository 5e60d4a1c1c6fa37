"""The quarantine rules on plain canonical frames: our own rules and the edges of the contract's."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from pipelines.quality.rules import RULE_ORDER, RuleInputs, evaluate, soft_flags

AS_OF = dt.datetime(2026, 7, 1, 0, 0, tzinfo=dt.UTC)  # 08:00 on 2026-07-01, Beijing time


def frame(**columns) -> pd.DataFrame:
    rows = len(next(iter(columns.values())))
    base = {
        "source": ["provincial"] * rows,
        "source_id": [str(i) for i in range(rows)],
        "updated_at": [pd.Timestamp("2026-06-01", tz="UTC")] * rows,
        "is_deleted": [False] * rows,
    }
    return pd.DataFrame({**base, **columns})


def rules_of(table: str, data: pd.DataFrame, **inputs) -> list:
    verdict = evaluate(data, RuleInputs(table=table, as_of=AS_OF, **inputs))
    return [None if pd.isna(rule) else rule for rule in verdict["rule"]]


def problems(rows: dict[int, tuple[str, str]]) -> pd.DataFrame:
    """The adapter's problems, as it reports them: (rule, detail) per row."""
    return pd.DataFrame([{"rule": rule, "detail": detail} for rule, detail in rows.values()], index=list(rows))


def test_region_rules_tell_malformed_from_outside():
    # the region normalizer judged rows 1 and 2 (malformed); the rules judge the codes
    stations = frame(name=["站"] * 4, region_code=["520102", None, None, "110101"])
    malformed = ("invalid_region", "region_code (areaCode): expected a 6-digit division code")
    inputs = {
        "problems": problems({1: malformed, 2: malformed}),
        "failed": {"region_code": pd.Series([False, True, True, False])},
    }
    assert rules_of("stations", stations, **inputs) == [
        None, "invalid_region", "invalid_region", "region_outside_province",
    ]


def test_redemptions_need_positive_hours_but_no_cap():
    redemptions = frame(volunteer_source_id=["1", "2", "3"], hours=[0.0, 50.0, -1.0])
    assert rules_of("redemptions", redemptions) == [
        "hours_out_of_range",
        None,
        "hours_out_of_range",
    ]


def test_future_is_judged_against_the_sync_in_beijing_time():
    services = frame(
        volunteer_source_id=["1", "2", "3"],
        hours=[1.0, 1.0, 1.0],
        # 07:59 Beijing on the sync's day is past; 08:30 the same day is after the sync
        start_at=pd.to_datetime(
            ["2026-06-30T23:59:00Z", "2026-07-01T00:30:00Z", "2026-06-01T00:00:00Z"], utc=True
        ),
        service_date=pd.to_datetime(["2026-07-01", "2026-07-01", "2026-07-02"]),
    )
    assert rules_of("services", services) == [None, "future_date", "future_date"]


def test_an_evaluation_period_after_the_sync_year_is_future():
    evaluations = frame(
        org_source_id=["T1", "T1"],
        evaluator=["self", "funder"],
        score=[80.0, 90.0],
        period=["2026", "2027"],
    )
    assert rules_of("evaluations", evaluations) == [None, "future_date"]


def test_a_future_birth_date_is_named_but_not_shown():
    volunteers = frame(
        name=["王芳"],
        region_code=["520102"],
        status=["active"],
        birth_date=pd.to_datetime(["2030-01-01"]),
    )
    verdict = evaluate(volunteers, RuleInputs(table="volunteers", as_of=AS_OF))
    assert verdict.loc[0, "rule"] == "future_date"
    assert "birth_date" in verdict.loc[0, "detail"] and "2030" not in verdict.loc[0, "detail"]


def test_an_unreadable_required_date_is_unparseable_not_missing():
    services = frame(volunteer_source_id=["1"], hours=[1.0], service_date=[pd.NaT])
    unreadable = {
        "problems": problems({0: ("unparseable_date", "service_date (serviceDate): expected a date")}),
        "failed": {"service_date": pd.Series([True])},
    }
    assert rules_of("services", services, **unreadable) == ["unparseable_date"]
    assert rules_of("services", services) == ["missing_required"]


def test_deleted_rows_are_not_judged_and_the_order_is_fixed():
    services = frame(volunteer_source_id=[None, None], hours=[30.0, 30.0])
    services["service_date"] = pd.to_datetime(["2026-06-01", "2026-06-01"])
    services.loc[1, "is_deleted"] = True
    verdict = evaluate(services, RuleInputs(table="services", as_of=AS_OF))
    assert verdict["rule"].tolist()[0] == "missing_required"
    assert "also broke: hours_out_of_range" in verdict.loc[0, "detail"]
    assert pd.isna(verdict.loc[1, "rule"])
    assert RULE_ORDER[:2] == ("unreadable_row", "missing_required") and RULE_ORDER[-1] == "future_date"


def test_soft_flags_count_without_quarantining():
    volunteers = frame(
        name=["a", "b", "c"],
        region_code=["520102", "520199", "520102"],
        status=["active"] * 3,
        cert_type=["resident_id"] * 3,
        cert_hash=["h1", "h2", None],
        cert_masked=[False, False, True],
        cert_valid=[True, False, False],
        gender_conflict=[False, True, False],
        birth_conflict=[False, False, False],
    )
    inputs = RuleInputs(table="volunteers", as_of=AS_OF)
    assert rules_of("volunteers", volunteers) == [None, None, None]
    counts = soft_flags(volunteers, inputs)  # 520199 is no county of Guizhou
    assert counts == {
        "cert_invalid": 1,
        "cert_masked": 1,
        "gender_conflict": 1,
        "unknown_county": 1,
    }
