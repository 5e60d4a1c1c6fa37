"""One small synced warehouse shared by the report and certificate tests.

A 250-person sandbox world, served over real HTTP, synced by the contract's `sync_all` job
(every asset, the statistics report included) into a real DuckDB file, once per session.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from pipelines.config import Settings
from pipelines.reports import REPORT_PREFIX
from pipelines.warehouse.reader import read_only_engine
from sandbox import Truth, generate_world, load_truth
from tests.sandbox_sync import sync_world

PERSONS = 100
SEED = 13
AS_OF = dt.datetime(2026, 6, 30, 18, 0)  # Beijing
PII_KEY = "reports-test-pii-key-of-at-least-32-bytes"
CERTIFICATE_KEY = "reports-test-certificate-key-of-32-bytes"


@dataclass
class Synced:
    root: Path
    settings: Settings
    truth: Truth
    instance: dg.DagsterInstance
    result: dg.ExecuteInJobResult
    env: dict[str, str]

    def engine(self) -> sa.Engine:
        return read_only_engine(self.settings.resolved_warehouse_url)

    def report_path(self) -> Path:
        materialization = self.result.asset_materializations_for_node("reports__statistics")[0]
        return Path(materialization.metadata["path"].value)


@pytest.fixture(scope="session")
def synced(tmp_path_factory) -> Synced:
    root = tmp_path_factory.mktemp("reports")
    world = Path(generate_world(root / "world", persons=PERSONS, seed=SEED, as_of=AS_OF))
    settings = Settings(
        data_dir=root / "data", warehouse_url=f"duckdb:///{root / 'warehouse.duckdb'}",
        pii_hash_key=PII_KEY, certificate_key=CERTIFICATE_KEY,
    )
    env = {"DATA_DIR": str(settings.data_dir), "WAREHOUSE_URL": settings.warehouse_url,
           "PII_HASH_KEY": PII_KEY, "CERTIFICATE_KEY": CERTIFICATE_KEY}
    instance = dg.DagsterInstance.ephemeral()
    result = sync_world(world, env, tags={"as_of": AS_OF.isoformat()}, instance=instance)
    assert list((settings.reports_dir).glob(f"{REPORT_PREFIX}*.html")), "no report written"
    return Synced(root=root, settings=settings, truth=load_truth(world), instance=instance,
                  result=result, env=env)
