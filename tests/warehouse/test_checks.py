"""The publish asset's checks and the marts' freshness check: each passes on a sound
warehouse and fails, naming what broke, on one a person or a bug has damaged."""

from __future__ import annotations

import shutil
import time
from datetime import timedelta

import dagster as dg
import sqlalchemy as sa

from assets.warehouse import PUBLISH, marts_freshness_checks, warehouse_checks
from pipelines.warehouse.publish import publish
from tests.warehouse.conftest import AS_OF, settings_for


def published_copy(world, tmp_path):
    """A warehouse of its own to damage: the world's files published into tmp_path."""
    data_dir = tmp_path / "data"
    shutil.copytree(world.data_dir, data_dir)
    (data_dir / "warehouse.duckdb").unlink(missing_ok=True)
    settings = settings_for(data_dir)
    result = publish(settings, as_of=AS_OF)
    return settings, result.schema, sa.create_engine(settings.resolved_warehouse_url)


def outcomes(settings, schema) -> dict[str, dg.AssetCheckResult]:
    return {check.check_name: check for check in warehouse_checks(settings, schema)}


def test_every_check_passes_on_the_published_warehouse(world, tmp_path):
    settings, schema, engine = published_copy(world, tmp_path)
    engine.dispose()
    assert {name: check.passed for name, check in outcomes(settings, schema).items()} == {
        "tables_and_columns": True, "no_clear_personal_numbers": True, "hours_add_up": True,
    }


def test_a_dropped_column_fails_tables_and_columns(world, tmp_path):
    settings, schema, engine = published_copy(world, tmp_path)
    with engine.begin() as con:
        con.execute(sa.text("ALTER TABLE dim_station DROP COLUMN host_type"))
    engine.dispose()
    check = outcomes(settings, schema)["tables_and_columns"]
    assert not check.passed and check.severity.value == "ERROR"
    assert "dim_station" in check.metadata["details"].value and "host_type" in check.metadata["details"].value


def test_a_clear_number_typed_into_a_name_fails_the_privacy_check(world, tmp_path):
    settings, schema, engine = published_copy(world, tmp_path)
    with engine.begin() as con:  # a station named with its keeper's ID number and phone
        con.execute(sa.text("UPDATE dim_station SET name = :name WHERE station_key = "
                            "(SELECT min(station_key) FROM dim_station)"),
                    {"name": f"服务站 联系 {world.id_numbers[0]} 电话 {world.phones[0]}"})
    engine.dispose()
    check = outcomes(settings, schema)["no_clear_personal_numbers"]
    assert not check.passed
    details = check.metadata["details"].value
    assert "dim_station.name" in details and world.id_numbers[0] not in details
    assert world.phones[0] not in details


def test_hours_given_to_nobody_fail_hours_add_up(world, tmp_path):
    settings, schema, engine = published_copy(world, tmp_path)
    with engine.begin() as con:  # a fact whose person is not in dim_volunteer
        con.execute(sa.text("UPDATE fact_service SET volunteer_key = 'V-nobody' WHERE service_key = "
                            "(SELECT min(service_key) FROM fact_service WHERE volunteer_key IS NOT NULL)"))
    engine.dispose()
    check = outcomes(settings, schema)["hours_add_up"]
    assert not check.passed
    assert check.metadata["orphaned_hours"].value > 0


def test_the_marts_freshness_check_fails_when_no_publish_is_recent():
    checks = marts_freshness_checks(max_age=timedelta(seconds=2), deadline_cron=None)
    instance = dg.DagsterInstance.ephemeral()

    def evaluate() -> dg.AssetCheckEvaluation:
        result = dg.materialize(checks, instance=instance, selection=dg.AssetSelection.checks(*checks))
        (evaluation,) = result.get_asset_check_evaluations()
        return evaluation

    assert not evaluate().passed  # never published
    instance.report_runless_asset_event(dg.AssetMaterialization(PUBLISH))
    fresh = evaluate()
    assert fresh.passed and fresh.asset_key == PUBLISH
    time.sleep(2.5)
    stale = evaluate()
    assert not stale.passed and stale.severity.value == "WARN"
    assert "dagster/last_updated_timestamp" in stale.metadata
