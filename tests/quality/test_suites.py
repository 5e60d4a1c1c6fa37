"""The Great Expectations suites: their size, and that they catch broken staged frames."""

from __future__ import annotations

import json
import re

import pytest

from pipelines.quality import gx_runner
from pipelines.schemas import table_names, table_spec
from pipelines.staging import read_staged, stage_all
from tests.staging.rawpages import (
    AS_OF,
    land,
    national_service,
    national_volunteer,
    provincial_log,
    provincial_volunteer,
    resident_id,
    settings_for,
)

# GX drops an entry it cannot parse with only a log line: the counts are pinned here.
EXPECTED_COUNTS = {
    "volunteers": 18,
    "organizations": 15,
    "projects": 11,
    "services": 14,
    "evaluations": 12,
    "stations": 10,
    "redemptions": 9,
}


@pytest.mark.parametrize("table", sorted(EXPECTED_COUNTS))
def test_each_suite_keeps_every_expectation(table):
    document = gx_runner.load_suite_json(table)
    assert len(document["expectations"]) == EXPECTED_COUNTS[table]
    assert len(gx_runner.build_suite(table).expectations) == EXPECTED_COUNTS[table]


def test_there_is_one_suite_per_staged_table():
    assert set(EXPECTED_COUNTS) == set(table_names())


@pytest.mark.parametrize("table", sorted(EXPECTED_COUNTS))
def test_suites_name_only_canonical_columns_and_declare_blocking_basics(table):
    columns = set(table_spec(table).column_names)
    for expectation in gx_runner.load_suite_json(table)["expectations"]:
        kwargs = expectation["kwargs"]
        named = [kwargs.get(k) for k in ("column", "column_A", "column_B") if kwargs.get(k)]
        named += kwargs.get("column_list") or []
        assert set(named) <= columns, expectation
        words = set(re.findall(r"[A-Za-z_]+", kwargs.get("row_condition", ""))) - {
            "notna",
            "resident_id",
            "False",
        }
        assert words <= columns, expectation
    checks = {spec.name: spec for spec in gx_runner.check_specs(table)}
    assert checks["key_unique"].blocking and checks["required_fields"].blocking
    if "region_code" in columns:
        assert checks["region_in_guizhou"].blocking
    if table in ("services", "redemptions"):
        assert checks["hours_in_range"].blocking


def test_a_malformed_entry_is_noticed(tmp_path):
    document = gx_runner.load_suite_json("redemptions")
    broken = dict(
        document,
        expectations=document["expectations"]
        + [
            {
                "type": "expect_column_values_to_be_bogus",
                "kwargs": {"column": "hours"},
                "meta": {"severity": "blocking", "check": "hours_in_range"},
            },
        ],
    )
    (tmp_path / "redemptions.json").write_text(json.dumps(broken), encoding="utf-8")
    assert (
        len(gx_runner.build_suite("redemptions", tmp_path).expectations)
        == EXPECTED_COUNTS["redemptions"]
    )
    with pytest.raises(ValueError, match="dropped"):
        gx_runner.validate("redemptions", read_staged_frame_for_redemptions(), tmp_path)


def read_staged_frame_for_redemptions():
    import pandas as pd

    return pd.DataFrame({"source": ["provincial"], "source_id": ["1"], "hours": [1.0]})


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    settings = settings_for(tmp_path_factory.mktemp("suites") / "data")
    number = resident_id("52010219900307123")
    land(
        settings.data_dir,
        "national",
        "volunteers",
        [national_volunteer(f"{i:04d}", number) for i in range(1, 6)],
    )
    land(
        settings.data_dir,
        "provincial",
        "volunteers",
        [provincial_volunteer(i, number, sex="男") for i in range(1, 6)],
    )
    land(
        settings.data_dir,
        "national",
        "service_records",
        [national_service(f"R{i}") for i in range(1, 6)],
    )
    land(settings.data_dir, "provincial", "service_logs", [provincial_log(i) for i in range(1, 6)])
    stage_all(settings, as_of=AS_OF)
    return {table: read_staged(settings, table) for table in ("volunteers", "services")}


def test_good_frames_pass_every_check(staged):
    for table, frame in staged.items():
        result = gx_runner.validate(table, frame)
        assert result.success, result.failed()
        assert result.failed() == [], table


def test_duplicate_key_fails_key_unique(staged):
    frame = staged["services"]
    broken = frame.copy()
    broken.loc[1, ["source", "source_id"]] = broken.loc[0, ["source", "source_id"]].to_numpy()
    result = gx_runner.validate("services", broken)
    assert not result.success and result.failed() == ["key_unique"]
    assert result.check("key_unique").metadata()["unexpected_source,source_id"] == 2


def test_missing_required_field_fails_required_fields(staged):
    broken = staged["services"].copy()
    broken.loc[2, "volunteer_source_id"] = None
    result = gx_runner.validate("services", broken)
    assert result.failed() == ["required_fields"]
    # a deleted row is not held to the content rules
    broken.loc[2, "is_deleted"] = True
    broken.loc[2, "is_effective"] = False
    assert gx_runner.validate("services", broken).success


def test_thirty_hours_fails_hours_in_range(staged):
    broken = staged["services"].copy()
    broken.loc[3, "hours"] = 30.0
    result = gx_runner.validate("services", broken)
    assert result.failed() == ["hours_in_range"]
    assert not result.check("hours_in_range").passed


def test_region_outside_guizhou_and_clear_numbers_fail(staged):
    broken = staged["volunteers"].copy()
    broken.loc[0, "region_code"] = "110101"
    broken.loc[1, "cert_hash"] = resident_id("52010219900307123")
    result = gx_runner.validate("volunteers", broken)
    assert set(result.failed("blocking")) == {"region_in_guizhou", "no_clear_numbers"}


def test_warning_checks_report_the_figure(staged):
    frame = staged["volunteers"].copy()
    frame.loc[:3, "cert_valid"] = False  # 4 of 10 clear numbers invalid
    result = gx_runner.validate("volunteers", frame)
    share = result.check("valid_id_share")
    assert not share.passed and not share.blocking
    assert share.metadata()["observed_cert_valid"] == pytest.approx(0.6)
    assert result.success  # warnings do not block


def test_an_empty_table_passes(staged):
    assert gx_runner.validate("services", staged["services"].iloc[0:0]).success
