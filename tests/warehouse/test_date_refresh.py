"""A publish on a new day with the same inputs rebuilds only the tables that follow the date
(ages, the organization history's closing date) and carries the others from the files of the
last publish; the warehouse equals a full publish of the same day, table by table."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest
import sqlalchemy as sa

from pipelines.warehouse.build import date_dependent
from pipelines.warehouse.publish import published_build_dir, publish
from tests.warehouse.conftest import settings_for
from tests.warehouse.helpers import table_rows
from tests.warehouse.world import make_world

# a new year: every age moves a year, so a carried age mart would show
DAY_ONE, DAY_TWO = dt.date(2026, 12, 31), dt.date(2027, 1, 1)
AGE_MART = "mart_volunteers_by_county"


def test_the_tables_that_follow_the_date_are_the_history_the_age_marts_and_what_reads_them():
    dependent = date_dependent()
    assert {"organization_status_history", AGE_MART, "mart_organization_events_by_year"} <= set(dependent)
    assert not {"fact_service", "dim_volunteer", "volunteer_source_map", "dim_organization",
                "dim_station", "quarantine"} & set(dependent)


def _warehouse(settings, tables) -> dict[str, list[tuple]]:
    engine = sa.create_engine(settings.resolved_warehouse_url)
    try:
        return {table: table_rows(engine, table) for table in tables}
    finally:
        engine.dispose()


@pytest.mark.parametrize("target", ["duckdb", "postgresql"])
def test_a_new_day_rebuilds_what_follows_the_date_and_equals_a_full_publish(tmp_path, target, pg_databases):
    make_world(tmp_path / "refreshed", persons=150, services=800)
    shutil.copytree(tmp_path / "refreshed", tmp_path / "full")
    urls = (pg_databases.new(), pg_databases.new()) if target == "postgresql" else ("", "")
    refreshed, full = (settings_for(tmp_path / name, url) for name, url in zip(("refreshed", "full"), urls))
    publish(refreshed, as_of=DAY_ONE)
    first = publish(full, as_of=DAY_ONE)
    ages_day_one = _warehouse(full, [AGE_MART])[AGE_MART]

    partial = publish(refreshed, as_of=DAY_TWO, rebuild=date_dependent())
    whole = publish(full, as_of=DAY_TWO)

    assert partial.tables_built == date_dependent()
    assert whole.tables_built == list(whole.rows)
    assert partial.rows == whole.rows == first.rows
    assert partial.figures == whole.figures
    assert _warehouse(refreshed, whole.rows) == _warehouse(full, whole.rows)
    assert _warehouse(full, [AGE_MART])[AGE_MART] != ages_day_one  # the date did move the ages
    # the kept files are those of the tables as published now
    assert sorted(p.stem for p in published_build_dir(refreshed).glob("*.parquet")) == sorted(whole.rows)


def test_without_the_last_publish_s_files_every_table_is_built(tmp_path):
    make_world(tmp_path, persons=100, services=400)
    settings = settings_for(tmp_path)
    publish(settings, as_of=DAY_ONE)
    (published_build_dir(settings) / "fact_service.parquet").unlink()
    result = publish(settings, as_of=DAY_TWO, rebuild=date_dependent())
    assert result.tables_built == list(result.rows)
