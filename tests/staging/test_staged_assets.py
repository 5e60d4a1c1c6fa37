"""The staged Dagster assets: materialize over hand-landed raw pages, checks and metadata."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from assets import staged as staged_assets
from pipelines.resources import PipelineSettings
from pipelines.schemas import table_names
from pipelines.staging import read_quarantine

from .rawpages import (
    TEST_KEY,
    land,
    national_service,
    national_volunteer,
    provincial_log,
    provincial_volunteer,
    resident_id,
)

NUMBER = resident_id("52010219900307123")


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PII_HASH_KEY", TEST_KEY)
    data = tmp_path / "data"
    land(
        data,
        "national",
        "volunteers",
        [
            national_volunteer("0001", NUMBER),
            national_volunteer("0002", NUMBER, albp0020="110101"),
        ],
    )
    land(data, "provincial", "volunteers", [provincial_volunteer(1, NUMBER, sex="男")])
    land(
        data,
        "national",
        "service_records",
        [national_service("R1"), national_service("R2", albx0172=30)],
    )
    land(data, "provincial", "service_logs", [provincial_log(1)])
    return data


def test_every_table_has_an_asset_with_checks_and_raw_deps():
    (definition,) = staged_assets.assets
    keys = {key.to_user_string() for key in definition.keys}
    assert keys == {f"staged/{table}" for table in table_names()} | {"staged/quarantine"}
    volunteers = dg.AssetKey(["staged", "volunteers"])
    assert definition.asset_deps[volunteers] == {
        dg.AssetKey(["raw", "national_volunteers"]),
        dg.AssetKey(["raw", "provincial_volunteers"]),
    }
    checks = {(spec.asset_key.to_user_string(), spec.name): spec for spec in definition.check_specs}
    assert checks[("staged/volunteers", "key_unique")].blocking
    assert checks[("staged/volunteers", "region_in_guizhou")].blocking
    assert not checks[("staged/volunteers", "valid_id_share")].blocking
    assert not checks[("staged/volunteers", "quarantined_rows")].blocking
    assert checks[("staged/services", "hours_in_range")].blocking
    assert checks[("staged/services", "required_fields")].blocking


def test_one_table_can_be_staged_alone(data_dir):
    result = dg.materialize(
        staged_assets.assets,
        selection=["staged/services"],
        resources={"pipeline_settings": PipelineSettings(data_dir=str(data_dir))},
    )
    assert result.success
    assert [m.asset_key.to_user_string() for m in result.get_asset_materialization_events()] == [
        "staged/services"
    ]
    assert {e.asset_key.to_user_string() for e in result.get_asset_check_evaluations()} == {
        "staged/services"
    }


def test_materializing_stages_validates_and_reports(data_dir):
    result = dg.materialize(
        staged_assets.assets,
        resources={"pipeline_settings": PipelineSettings(data_dir=str(data_dir))},
    )
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    failed = [(e.asset_key.to_user_string(), e.check_name) for e in evaluations if not e.passed]
    # one row in three is quarantined: above the warning share; nothing blocking fails
    assert sorted(failed) == [
        ("staged/services", "quarantined_rows"),
        ("staged/volunteers", "quarantined_rows"),
    ]
    assert all(e.passed for e in evaluations if e.check_name != "quarantined_rows")

    materializations = {
        m.asset_key.to_user_string(): m for m in result.get_asset_materialization_events()
    }
    volunteers = materializations["staged/volunteers"].materialization.metadata
    assert volunteers["rows_national"].value == 1 and volunteers["rows_provincial"].value == 1
    assert volunteers["quarantined_per_rule"].value == {"region_outside_province": 1}
    quarantine = materializations["staged/quarantine"].materialization.metadata
    assert quarantine["per_rule"].value == {"hours_out_of_range": 1, "region_outside_province": 1}
    assert (
        len(read_quarantine(PipelineSettings(data_dir=str(data_dir)).settings())) == 2
    )

    # no clear number, phone or full name anywhere in the run's metadata
    shown = json.dumps(
        [
            {k: str(v.value) for k, v in m.materialization.metadata.items()}
            for m in materializations.values()
        ]
        + [{k: str(v.value) for k, v in e.metadata.items()} for e in evaluations],
        ensure_ascii=False,
    )
    for clear in (NUMBER, "13812345678", "13900001111", "张小明", "李娜"):
        assert clear not in shown
