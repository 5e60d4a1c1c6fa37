"""The production deployment, as an operator meets it: `deploy/dagster.yaml` on PostgreSQL,
`dagster-daemon` and `dagster-webserver` running, everything seen and driven through the
webserver's GraphQL interface (what the UI itself uses).

One deployment for the module (tests/ops/deployment.py); at its start two runs are launched
as an operator would: a sync that fails (a step with no input) and then a whole sync. The
daemon dequeues both; the failure reaches the local group robot; the sync completes on the
PostgreSQL instance. Headless Chromium takes pictures of the asset graph and the finished
run, kept in tests/artifacts/ (not in git). Then the weekly full reconciliation, launched the
same way, walks every stream again and, the sources unchanged, publishes the same warehouse.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines.schemas import table_names
from sandbox import generate_world
from tests.contract.tables import CONTRACT_TABLES, snapshot
from tests.ops.deployment import ROBOT_KEY, Deployment, deployment, wait_until

# A whole sync through the daemon, on a machine shared with other jobs, can outlast the
# suite's default per-test timeout (600 s); the waits below have their own limits.
pytestmark = pytest.mark.timeout(1800)

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

LAUNCH = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
  }
}
"""
RUN_STATUS = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status jobName } } }"
RUN_TIMES = "query($id: ID!) { runOrError(runId: $id) { ... on Run { startTime endTime } } }"
WORKSPACE = """
{
  workspaceOrError { ... on Workspace { locationEntries {
    name
    locationOrLoadError { __typename
      ... on PythonError { message }
      ... on RepositoryLocation { repositories {
        name
        jobs { name }
        schedules { name cronSchedule executionTimezone scheduleState { status } }
        sensors { name sensorState { status } }
      } }
    }
  } } }
  assetNodes { assetKey { path } groupName
    assetChecksOrError { ... on AssetChecks { checks { name blocking } } } }
}
"""


def launch(site: Deployment, location: str, job: str, assets: list[list[str]] | None = None,
           run_config: dict | None = None) -> str:
    selector = {"repositoryLocationName": location, "repositoryName": "__repository__", "jobName": job}
    if assets:
        selector["assetSelection"] = [{"path": path} for path in assets]
    answer = site.graphql(LAUNCH, {"params": {"selector": selector, "runConfigData": run_config or {}}})["launchRun"]
    assert answer["__typename"] == "LaunchRunSuccess", answer
    return answer["run"]["runId"]


STAGED_IN_FULL = """
query ($id: ID!) { logsForRun(runId: $id, limit: 100000) { ... on EventConnection { events {
  ... on MaterializationEvent { assetKey { path }
    metadataEntries { label ... on TextMetadataEntry { text } ... on BoolMetadataEntry { boolValue } } }
} } } }
"""


def staged_in_full_because(site: Deployment, run_id: str) -> dict[str, str | None]:
    """{staged table: why the run staged it in full (None: merged into the last staging)}."""
    reasons = {}
    for event in site.graphql(STAGED_IN_FULL, {"id": run_id})["logsForRun"]["events"]:
        path = event.get("assetKey", {}).get("path", [])
        if len(path) == 2 and path[0] == "staged":
            entries = {entry["label"]: entry for entry in event["metadataEntries"]}
            if "incremental" in entries:
                reason = entries.get("staged_in_full_because")
                reasons[path[1]] = None if entries["incremental"]["boolValue"] else (reason or {}).get("text")
    return reasons


def finished(site: Deployment, run_id: str, timeout: float) -> str:
    def status():
        state = site.graphql(RUN_STATUS, {"id": run_id})["runOrError"]["status"]
        return state if state in {"SUCCESS", "FAILURE", "CANCELED"} else None

    return wait_until(status, f"run {run_id}", timeout=timeout, every=2.0)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    work = tmp_path_factory.mktemp("deployment")
    world = generate_world(work / "world", persons=200, seed=5, as_of=datetime(2026, 11, 1, 12))
    with deployment(world, work) as deployed:
        yield deployed


@pytest.fixture(scope="module")
def location(site) -> str:
    [entry] = site.graphql(WORKSPACE)["workspaceOrError"]["locationEntries"]
    return entry["name"]


@pytest.fixture(scope="module")
def runs(site, location, tmp_path_factory) -> dict[str, str]:
    """The two runs an operator launches: a sync whose one step has nothing to read (it
    fails), then a whole sync. Launched together; the queue runs them one after the other."""
    empty = tmp_path_factory.mktemp("empty_data_dir")
    failing = launch(site, location, "sync_all", assets=[["review", "volunteer_match_workbook"]],
                     run_config={"resources": {"pipeline_settings": {"config": {"data_dir": str(empty)}}}})
    whole = launch(site, location, "sync_all")
    return {"failing": failing, "sync": whole}


def test_the_webserver_serves_the_code_location(site, location):
    data = site.graphql(WORKSPACE)
    [entry] = data["workspaceOrError"]["locationEntries"]
    assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry
    [repository] = entry["locationOrLoadError"]["repositories"]
    assert {"sync_all", "full_reconciliation", "pull_raw"} <= {job["name"] for job in repository["jobs"]}
    schedules = {s["name"]: s for s in repository["schedules"]}
    assert schedules["nightly_sync"]["cronSchedule"] == "0 2 * * 1-6"
    assert schedules["weekly_full_reconciliation"]["cronSchedule"] == "0 2 * * 0"
    assert {s["executionTimezone"] for s in schedules.values()} == {"Asia/Shanghai"}
    sensors = {s["name"]: s["sensorState"]["status"] for s in repository["sensors"]}
    assert sensors["run_failure_alert"] == "RUNNING" and sensors["review_workbooks"] == "RUNNING"
    assert "marts_freshness" in sensors

    nodes = {"/".join(n["assetKey"]["path"]): n for n in data["assetNodes"]}
    assert {node["groupName"] for node in nodes.values()} >= {"raw", "staged", "resolved", "warehouse", "review"}
    assert sum(key.startswith("raw/") for key in nodes) == 11
    checks = {(key, c["name"]): c["blocking"] for key, n in nodes.items()
              for c in n["assetChecksOrError"].get("checks", [])}
    assert checks[("resolved/volunteers", "one_valid_number_per_person")] is True
    assert checks[("raw/national_volunteers", "newest_update_age")] is False
    assert ("warehouse/publish", "no_clear_personal_numbers") in checks


def test_a_failed_run_alerts_the_group_robot(site, runs):
    assert finished(site, runs["failing"], timeout=300) == "FAILURE"
    [message] = [m for m in site.robot.wait_for(1, timeout=120) if runs["failing"] in str(m.body)][:1]
    assert message.path == "/cgi-bin/webhook/send" and message.query == {"key": [ROBOT_KEY]}
    assert message.body["msgtype"] == "markdown"
    content = message.body["markdown"]["content"]
    assert "sync_all" in content and "`review__volunteer_match_workbook`" in content
    assert "no review pairs: run the resolution first" in content
    assert f"{site.env['DAGSTER_UI_URL']}/runs/{runs['failing']}" in content
    assert ROBOT_KEY not in content and site.env["PII_HASH_KEY"] not in content


def screenshot(url: str, target: Path, profile: Path) -> Path:
    """Headless Chromium's picture of a UI page, after its scripts ran."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    subprocess.run(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={profile}", "--window-size=1600,1000", "--virtual-time-budget=20000",
         f"--screenshot={target}", url],
        check=True, capture_output=True, timeout=180,
    )
    return target


def test_a_launched_sync_completes_on_the_postgresql_instance(site, runs, tmp_path):
    started = time.monotonic()
    assert finished(site, runs["sync"], timeout=1200) == "SUCCESS"
    # the runs, their events and the ticks live in the instance's PostgreSQL database
    engine = sa.create_engine(site.instance_db_url)
    with engine.connect() as con:
        stored = {row[0]: row[1] for row in con.execute(sa.text("select run_id, status from runs"))}
        events = con.execute(sa.text("select count(*) from event_logs where run_id = :r"),
                             {"r": runs["sync"]}).scalar()
        ticks = con.execute(sa.text("select count(*) from job_ticks")).scalar()
    engine.dispose()
    assert stored[runs["sync"]] == "SUCCESS" and stored[runs["failing"]] == "FAILURE"
    times = {name: site.graphql(RUN_TIMES, {"id": run_id})["runOrError"] for name, run_id in runs.items()}
    assert times["sync"]["startTime"] >= times["failing"]["endTime"]  # the queue: one sync at a time
    assert events > 100 and ticks > 0
    assert not list(site.dagster_home.glob("history/runs/*.db"))  # nothing in local SQLite
    # and the sync did its work: a warehouse, the stewards' workbook
    with duckdb.connect(str(site.data_dir / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from dim_volunteer").fetchone()[0] > 100
    assert (site.data_dir / "review" / "outbox" / "volunteer_match_review.xlsx").exists()

    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed (.ci/run installs it)")
    graph = screenshot(f"{site.url}/asset-groups", ARTIFACTS / "asset_graph.png", tmp_path / "profile")
    run_page = screenshot(f"{site.url}/runs/{runs['sync']}", ARTIFACTS / "finished_run.png", tmp_path / "profile")
    for picture in (graph, run_page):
        assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 20_000
    # the production instance shows no sign-up dialog over the pictures (nux: enabled: false)
    assert site.graphql("{ shouldShowNux }")["shouldShowNux"] is False
    print(f"sync completed {time.monotonic() - started:.0f}s after the alert test")


def landed_sync_ids(data_dir: Path) -> dict[str, set[str]]:
    """Each raw stream's sync folders (raw/<source>/<stream>/<sync_id>/)."""
    return {f"{stream.parent.name}_{stream.name}": {folder.name for folder in stream.iterdir() if folder.is_dir()}
            for stream in (data_dir / "raw").glob("*/*") if stream.is_dir()}


def test_the_weekly_reconciliation_walks_every_stream_again_and_changes_nothing(site, location, runs):
    assert finished(site, runs["sync"], timeout=1200) == "SUCCESS"
    warehouse = sa.create_engine(f"duckdb:///{site.data_dir / 'warehouse.duckdb'}")
    before, landed_before = snapshot(warehouse), landed_sync_ids(site.data_dir)
    warehouse.dispose()

    reconciliation = launch(site, location, "full_reconciliation")
    assert finished(site, reconciliation, timeout=1200) == "SUCCESS"
    # every stream walked again from its start, under a sync id of its own ...
    landed_after = landed_sync_ids(site.data_dir)
    assert len(landed_after) == 11
    assert all(len(landed_after[stream] - landed_before[stream]) == 1 for stream in landed_after)
    # every table staged in full, as on the first night, but told from the new pages'
    # footers before any merge began (the Dagster UI shows why on each staged asset)
    assert staged_in_full_because(site, runs["sync"]) == dict.fromkeys(table_names(), "no previous staging")
    reasons = staged_in_full_because(site, reconciliation)
    assert set(reasons) == set(table_names())
    assert all((why or "").startswith("a re-pull: ") for why in reasons.values()), reasons
    # ... and, the sources unchanged, the warehouse is what the nightly sync published, but
    # for the quarantined rows' `last_seen_at`: the walk saw each of them again
    warehouse = sa.create_engine(f"duckdb:///{site.data_dir / 'warehouse.duckdb'}")
    after = snapshot(warehouse)
    warehouse.dispose()
    assert len(before["quarantine"]) > 0
    seen_again = pd.to_datetime(after["quarantine"].pop("last_seen_at"), utc=True)
    seen_before = pd.to_datetime(before["quarantine"].pop("last_seen_at"), utc=True)
    assert (seen_again > seen_before.max()).all()
    after["quarantine"] = after["quarantine"].sort_values(list(after["quarantine"].columns)).reset_index(drop=True)
    before["quarantine"] = before["quarantine"].sort_values(list(before["quarantine"].columns)).reset_index(drop=True)
    for table in CONTRACT_TABLES:
        pd.testing.assert_frame_equal(after[table], before[table], check_dtype=False, obj=table)
