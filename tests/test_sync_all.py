"""The contract's sync command, end to end, as an operator runs it.

`dagster job execute -m pipelines.definitions -j sync_all` against both sandbox servers over
real HTTP, into a real DuckDB file and into PostgreSQL; then again with no change (nothing
in the warehouse may change), then after a change set. Figures are checked against the
sandbox's truth: a person in both systems counts once, an hour pushed up counts once (pairs of
accounts recounted here against the truth with tests/reference.py, not taken from the
pipeline's own quality report, which is only checked to agree).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
import requests
import sqlalchemy as sa

from sandbox import Faults, SandboxServers, generate_world, load_truth
from tests.contract.tables import CONTRACT_TABLES, snapshot
from tests.reference import pair_confusion

ROOT = Path(__file__).resolve().parent.parent
AS_OF = datetime(2026, 11, 1, 12, 0, 0)



@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    return generate_world(tmp_path_factory.mktemp("world"), persons=600, seed=11, as_of=AS_OF)


def run_sync(servers: SandboxServers, data_dir: Path, warehouse_url: str, dagster_home: Path):
    env = {
        **os.environ,
        **servers.env(),
        # The resolved assets then show precision and recall against the sandbox's truth.
        "SANDBOX_TRUTH_DIR": str(Path(servers.world_dir) / "truth"),
        "DATA_DIR": str(data_dir),
        "WAREHOUSE_URL": warehouse_url,
        "DAGSTER_HOME": str(dagster_home),
    }
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "job", "execute",
         "-m", "pipelines.definitions", "-j", "sync_all"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def check_against_truth(tables: dict[str, pd.DataFrame], world: Path) -> dict[str, float]:
    """Asserts the published tables against the world's truth; returns the recounted
    precision and recall of the volunteer resolution."""
    truth = load_truth(world)
    for table, columns in CONTRACT_TABLES.items():
        assert set(columns) <= set(tables[table].columns), table

    # Every planted invalid row is in quarantine under its rule.
    planted = truth.invalid_rows[["source", "entity", "source_id", "rule"]]
    quarantined = tables["quarantine"][["source", "entity", "source_id", "rule"]]
    missing = planted.merge(quarantined, how="left", indicator=True)
    assert (missing["_merge"] == "both").all(), missing[missing["_merge"] != "both"]

    # The province's hours: every effective service counted once.
    province_hours = tables["fact_service"]["hours"].astype(float).sum()
    assert province_hours == pytest.approx(truth.persons["true_hours"].sum(), abs=0.01)
    # One volunteer per natural person who has a live account.
    assert tables["dim_volunteer"]["volunteer_key"].is_unique
    assert tables["dim_volunteer"]["total_hours"].astype(float).sum() == pytest.approx(
        province_hours, abs=0.01)
    # Accounts of one person share a key, accounts of two people never do: pairs of the
    # published source map against the truth's accounts.
    accounts = truth.accounts.loc[truth.accounts["entity"] == "volunteer"]
    true_person = dict(zip(zip(accounts["source"], accounts["source_id"].astype(str)), accounts["true_id"]))
    source_map = tables["volunteer_source_map"]
    published = dict(zip(zip(source_map["source"], source_map["source_id"].astype(str)), source_map["volunteer_key"]))
    counts = pair_confusion(published, true_person)
    assert counts["accounts"] == len(true_person)  # every valid account is in the map
    precision = counts["tp"] / (counts["tp"] + counts["fp"])
    recall = counts["tp"] / (counts["tp"] + counts["fn"])
    assert precision >= 0.99 and recall >= 0.98, counts
    return {"precision": precision, "recall": recall}


@contextmanager
def dagster_webserver(dagster_home: Path):
    """The real Dagster webserver over the runs recorded in `dagster_home`."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "dagster_webserver", "-w", "workspace.yaml",
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, env={**os.environ, "DAGSTER_HOME": str(dagster_home)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/server_info", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        else:
            raise AssertionError("the Dagster webserver did not come up")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


DASHBOARD_QUERY = """
{
  runsOrError(filter: {pipelineName: "sync_all"}) {
    ... on Runs { results { runId status } }
  }
  assetNodes {
    assetKey { path } isPartitioned
    assetMaterializations(limit: 1) { metadataEntries { label __typename
      ... on TextMetadataEntry { text } ... on MarkdownMetadataEntry { mdStr }
      ... on JsonMetadataEntry { jsonString } ... on IntMetadataEntry { intValue }
      ... on FloatMetadataEntry { floatValue } } }
    assetChecksOrError { ... on AssetChecks { checks { name blocking
      executionForLatestMaterialization { status } } } }
  }
}
"""


def check_dashboard(dagster_home: Path, world: Path, recounted: dict[str, float]) -> None:
    """What an official sees: the runs, every asset's checks and figures (the resolution's
    as recounted against the truth), and no clear personal data anywhere in what the
    webserver serves."""
    with dagster_webserver(dagster_home) as url:
        response = requests.post(f"{url}/graphql", json={"query": DASHBOARD_QUERY}, timeout=120)
    response.raise_for_status()
    data = response.json()["data"]
    statuses = [run["status"] for run in data["runsOrError"]["results"]]
    assert statuses == ["SUCCESS", "SUCCESS"]

    nodes = {"/".join(n["assetKey"]["path"]): n for n in data["assetNodes"]}
    assert {"raw/national_volunteers", "staged/volunteers", "resolved/volunteers",
            "warehouse/publish"} <= set(nodes)
    for key, node in nodes.items():
        if node["isPartitioned"]:
            continue  # the by-prefecture staging is the scale-out jobs', not sync_all's
        assert node["assetMaterializations"], f"{key} was never materialized"
        for check in node["assetChecksOrError"].get("checks", []):
            status = check["executionForLatestMaterialization"]["status"]
            # Blocking checks must pass; warnings may report drift but must have run.
            allowed = {"SUCCEEDED"} if check["blocking"] else {"SUCCEEDED", "FAILED"}
            assert status in allowed, (key, check["name"], status)
    figures = {e["label"]: e for e in nodes["resolved/volunteers"]["assetMaterializations"][0]["metadataEntries"]}
    assert figures["precision"]["floatValue"] == pytest.approx(recounted["precision"], abs=1e-6)
    assert figures["recall"]["floatValue"] == pytest.approx(recounted["recall"], abs=1e-6)

    served = json.dumps(data, ensure_ascii=False)
    persons = load_truth(world).persons
    for column in ("cert_no", "phone"):
        clear = [v for v in persons[column].dropna() if "*" not in v]
        assert clear and not any(v in served for v in clear), column
    full_names = [n for n in persons["name"].dropna() if len(n) >= 3]
    assert not any(n in served for n in full_names)


def test_sync_all_into_duckdb_is_right_and_idempotent(world, tmp_path):
    warehouse_url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    with SandboxServers(world, faults=Faults(retry_after=0)) as servers:
        run_sync(servers, tmp_path / "data", warehouse_url, tmp_path / "home")
        engine = sa.create_engine(warehouse_url)
        first = snapshot(engine)
        engine.dispose()
        recounted = check_against_truth(first, world)

        run_sync(servers, tmp_path / "data", warehouse_url, tmp_path / "home")
        engine = sa.create_engine(warehouse_url)
        second = snapshot(engine)
        engine.dispose()
    for table in CONTRACT_TABLES:
        pd.testing.assert_frame_equal(first[table], second[table], check_dtype=False)
    check_dashboard(tmp_path / "home", world, recounted)


def test_sync_all_into_postgresql_with_faults_then_a_change_set(world, tmp_path):
    database = f"sync_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test",
                             isolation_level="AUTOCOMMIT")
    with admin.connect() as con:
        con.execute(sa.text(f'create database "{database}"'))
    warehouse_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"
    try:
        with SandboxServers(world, faults=Faults.all_on()) as servers:
            run_sync(servers, tmp_path / "data", warehouse_url, tmp_path / "home")
            engine = sa.create_engine(warehouse_url)
            check_against_truth(snapshot(engine), world)
            keys_before = snapshot(engine)["volunteer_source_map"]

            servers.apply_changeset(seed=3)
            run_sync(servers, tmp_path / "data", warehouse_url, tmp_path / "home")
            after = snapshot(engine)
            engine.dispose()
        check_against_truth(after, world)
        # A person whose accounts did not change keeps their key.
        merged = keys_before.merge(after["volunteer_source_map"],
                                   on=["source", "source_id"], suffixes=("_before", "_after"))
        kept = (merged["volunteer_key_before"] == merged["volunteer_key_after"]).mean()
        assert kept > 0.98
    finally:
        with admin.connect() as con:
            con.execute(sa.text(f'drop database if exists "{database}" with (force)'))
        admin.dispose()
