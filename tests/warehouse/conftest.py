"""Fixtures for the warehouse tests: a small world, and it published to DuckDB and PostgreSQL.

PostgreSQL is the server on 127.0.0.1:5432 (trust auth, database test, user postgres): each
warehouse is a schema of its own, dropped at the end, so runs never see each other.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from pipelines.config import Settings
from pipelines.warehouse.publish import PublishResult, publish
from tests.warehouse.world import World, make_world

PG_ADMIN = "host=127.0.0.1 port=5432 dbname=test user=postgres"
TEST_KEY = "test-pii-key-of-at-least-32-bytes-long"
AS_OF = dt.date(2026, 3, 1)


def pg_url(schema: str) -> str:
    """A URL whose connections work in `schema` (search_path), in the server's `test` database."""
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"


class PostgresDatabases:
    """Throwaway warehouses on the test server: one schema each in database `test`, dropped
    at the end (schemas, not databases: dropping a database forces a checkpoint)."""

    def __init__(self) -> None:
        self.created: list[str] = []

    def new(self) -> str:
        name = f"wh_test_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'CREATE SCHEMA "{name}"')
        self.created.append(name)
        return pg_url(name)

    def drop_all(self) -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            for name in self.created:
                admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture(scope="session")
def pg_databases():
    databases = PostgresDatabases()
    yield databases
    databases.drop_all()


def settings_for(data_dir: Path, warehouse_url: str = "", key: str = TEST_KEY) -> Settings:
    return Settings(data_dir=data_dir, warehouse_url=warehouse_url, pii_hash_key=key)


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> World:
    return make_world(tmp_path_factory.mktemp("world"), key=TEST_KEY)


@pytest.fixture(scope="session")
def duckdb_published(world: World) -> tuple[sa.Engine, PublishResult]:
    """The world published once to a DuckDB file (read-only use)."""
    settings = settings_for(world.data_dir)
    result = publish(settings, as_of=AS_OF)
    engine = sa.create_engine(settings.resolved_warehouse_url)
    yield engine, result
    engine.dispose()


@pytest.fixture(scope="session")
def pg_published(world: World, pg_databases: PostgresDatabases, tmp_path_factory):
    """The same world published to a fresh PostgreSQL database (read-only use)."""
    url = pg_databases.new()
    result = publish(settings_for(world.data_dir, url), as_of=AS_OF)
    engine = sa.create_engine(url)
    yield engine, result
    engine.dispose()


@pytest.fixture(params=["duckdb", "postgresql"])
def published(request, duckdb_published, pg_published):
    """Each test that takes it runs against both targets."""
    return duckdb_published if request.param == "duckdb" else pg_published
