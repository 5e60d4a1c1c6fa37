"""The report and the certificates read PostgreSQL as they read DuckDB: the shared world's
files published to a throwaway PostgreSQL schema give the same figures and the same service
record (the server of the test suite: 127.0.0.1:5432, trust auth, database `test`)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from pipelines.certificates.record import find_volunteer, read_service_record
from pipelines.clock import AsOf
from pipelines.reports.figures import read_figures
from pipelines.warehouse.publish import publish
from pipelines.warehouse.reader import read_only_engine
from tests.reports.conftest import AS_OF
from tests.warehouse.conftest import PostgresDatabases


@pytest.fixture(scope="module")
def postgresql_url(synced):
    databases = PostgresDatabases()
    try:
        url = databases.new()
        publish(dataclasses.replace(synced.settings, warehouse_url=url), as_of=AsOf.parse(AS_OF.isoformat()))
        yield url
    finally:
        databases.drop_all()


def _records(frame) -> list[tuple]:
    rows = [
        # NaN -> None first: round() keeps a NaN, and NaN != NaN (a year not known is null)
        tuple(None if v != v else (round(v, 6) if isinstance(v, float) else v) for v in row)
        for row in frame.astype(object).itertuples(index=False)
    ]
    return sorted(rows, key=lambda row: tuple((v is None, str(v)) for v in row))


def test_report_figures_are_the_same_on_postgresql(synced, postgresql_url):
    duckdb_engine, pg_engine = synced.engine(), read_only_engine(postgresql_url)
    try:
        on_duckdb, on_pg = read_figures(duckdb_engine), read_figures(pg_engine)
    finally:
        duckdb_engine.dispose()
        pg_engine.dispose()
    assert on_duckdb.frames.keys() == on_pg.frames.keys()
    for name in on_duckdb.frames:
        assert _records(on_duckdb[name]) == _records(on_pg[name]), name
    assert on_duckdb.key_figures() == on_pg.key_figures()


def test_service_record_is_the_same_on_postgresql(synced, postgresql_url):
    duckdb_engine, pg_engine = synced.engine(), read_only_engine(postgresql_url)
    try:
        with duckdb_engine.connect() as connection:
            id_hash = connection.exec_driver_sql(
                "SELECT v.id_hash FROM dim_volunteer v JOIN fact_service s USING (volunteer_key) "
                "WHERE v.id_hash IS NOT NULL AND s.source = 'both' ORDER BY v.volunteer_key LIMIT 1"
            ).scalar_one()
        through = dt.date(2026, 6, 30)
        records = [read_service_record(engine, find_volunteer(engine, id_hash), through)
                   for engine in (duckdb_engine, pg_engine)]
    finally:
        duckdb_engine.dispose()
        pg_engine.dispose()
    assert records[0] == records[1]
    assert records[0].services_in_both_systems >= 1
