"""The Dagster asset publishes, reports figures and the dictionary, and its checks pass."""

from __future__ import annotations

import dagster as dg

from assets.warehouse import asset_checks, assets, warehouse_publish
from pipelines.resources import PipelineSettings
from tests.reference import GUIZHOU_COUNTIES
from tests.warehouse.conftest import TEST_KEY
from tests.warehouse.world import make_world


def test_the_publish_asset_reports_figures_checks_and_the_dictionary(tmp_path, monkeypatch):
    world = make_world(tmp_path, persons=150, services=800)
    monkeypatch.setenv("PII_HASH_KEY", TEST_KEY)
    result = dg.materialize(
        [warehouse_publish],
        resources={"pipeline_settings": PipelineSettings(data_dir=str(tmp_path))},
    )
    assert result.success
    metadata = result.asset_materializations_for_node("warehouse__publish")[0].metadata
    volunteers = world.frames["resolved/volunteers"]
    assert metadata["volunteers"].value == (volunteers["status"] != "deleted").sum()
    assert metadata["organizations"].value == 39
    assert metadata["stations"].value == 27
    assert 0 < metadata["registration_rate"].value < 1
    stations = world.frames["staged/stations"]
    with_station = set(stations.loc[~stations["is_deleted"], "region_code"])
    assert metadata["counties_without_station"].value == len(set(GUIZHOU_COUNTIES) - with_station)
    assert metadata["total_hours"].value > 0
    assert metadata["warehouse"].value.startswith("duckdb:///")
    assert "dim_volunteer" in metadata["data_dictionary"].value
    evaluations = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert evaluations == {"tables_and_columns": True, "no_clear_personal_numbers": True, "hours_add_up": True}
    shown = " ".join(str(getattr(v, "value", v)) for v in metadata.values())
    for secret_values in (world.id_numbers, world.phones, world.names):
        assert not any(value in shown for value in secret_values)


def test_the_module_exports_what_definitions_assembles():
    keys = {key for a in assets for key in a.keys}
    assert keys == {dg.AssetKey(["warehouse", "publish"])}
    # the freshness check of the marts' publish time is evaluated apart from the asset
    assert [key for checks in asset_checks for key in checks.check_keys] == [
        dg.AssetCheckKey(dg.AssetKey(["warehouse", "publish"]), "freshness_check")
    ]
    spec = warehouse_publish.specs_by_key[dg.AssetKey(["warehouse", "publish"])]
    assert spec.group_name == "warehouse"
    assert warehouse_publish.op.pool == "warehouse"
    assert dg.AssetKey(["resolved", "services"]) in {dep.asset_key for dep in spec.deps}
