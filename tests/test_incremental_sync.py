"""A rerun costs what changed, and publishes what a full rebuild publishes.

A small world synced in process (the real assets, sandbox servers over HTTP, DuckDB), then:
a rerun with nothing changed at the sources, which reuses every staging, resolution and
publish step; then a change set, after which the tables the change touched are staged again
and the others reused. After each, the warehouse is compared table by table (content hashes)
with a full rebuild of the same landed pages from the same starting state with reuse off.
The pure parts (fingerprints, windows, the instant a future date stops being one) are tested
directly below.
"""

from __future__ import annotations

import hashlib
import shutil
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from dagster import DagsterInstance, materialize

from assets import raw, resolved, staged, warehouse
from pipelines import reuse
from pipelines.clock import BEIJING, AsOf
from pipelines.config import Settings
from pipelines.quality.rules import RuleInputs, future_verdicts_change_at
from pipelines.resources import NationalSource, PipelineSettings, ProvincialSource, SourceApis
from sandbox import Faults, SandboxServers, generate_world

WORLD_AS_OF = datetime(2026, 11, 1, 12, 0)
FIRST = datetime(2026, 11, 1, 13, 0, tzinfo=BEIJING)
RERUN = datetime(2026, 11, 1, 18, 0, tzinfo=BEIJING)
NEXT_NIGHT = datetime(2026, 11, 2, 2, 0, tzinfo=BEIJING)  # the next nightly sync, nothing changed
CHANGED_AT = datetime(2026, 11, 2, 9, 0, tzinfo=BEIJING)
AFTER_CHANGE = datetime(2026, 11, 2, 10, 0, tzinfo=BEIJING)
PROCESSING = [*staged.assets, *resolved.assets, *warehouse.assets]
# the assets whose steps decide whether to reuse their last output
STEPS = [f"staged/{t}" for t in ("volunteers", "organizations", "projects", "services",
                                 "evaluations", "stations", "redemptions")] + [
    "staged/quarantine", "resolved/volunteers", "resolved/organizations", "resolved/services",
    "warehouse/publish"]


def resources(servers: SandboxServers, data_dir: Path, reuse_unchanged: bool = True) -> dict:
    fast = {"base_delay_seconds": 0.005, "max_delay_seconds": 0.05}
    return {
        "sources": SourceApis(
            national=NationalSource(api_url=servers.national_url, client_id=servers.national_client_id,
                                    client_secret=servers.national_client_secret, **fast),
            provincial=ProvincialSource(api_url=servers.provincial_url, app_key=servers.provincial_app_key,
                                        app_secret=servers.provincial_app_secret, **fast),
        ),
        "pipeline_settings": PipelineSettings(data_dir=str(data_dir), reuse_unchanged=reuse_unchanged),
    }


def run(assets, res: dict, as_of: datetime, merged: set | None = None, published: dict | None = None,
        checks: dict | None = None) -> dict[str, bool]:
    """Materialize in process at `as_of`; returns, per asset, whether its step was reused
    (and adds to `merged` the staged tables merged into their last staging, with the rows
    Great Expectations judged one by one, to `published` the publish's metadata, to `checks`
    each staged check's verdict and figures)."""
    result = materialize(assets, resources=res, instance=DagsterInstance.ephemeral(),
                         tags={"as_of": as_of.isoformat()})
    assert result.success
    for check in result.get_asset_check_evaluations():
        assert check.passed or check.severity.value == "WARN", (check.asset_key, check.check_name)
        if checks is not None and check.asset_key.path[0] == "staged":
            figures = {name: value.value for name, value in check.metadata.items()}
            checks[(check.asset_key.to_user_string(), check.check_name)] = (check.passed, figures)
    for event in result.get_asset_materialization_events():
        metadata = event.materialization.metadata
        incremental = metadata.get("incremental")
        if merged is not None and incremental is not None and incremental.value:
            merged[event.asset_key.to_user_string()] = (
                metadata["gx_rows_judged"].value, metadata["dagster/row_count"].value
            )
        if published is not None and event.asset_key.to_user_string() == "warehouse/publish":
            published.update({name: value.value for name, value in event.materialization.metadata.items()})
    return {
        event.asset_key.to_user_string(): "reused_from_as_of" in event.materialization.metadata
        for event in result.get_asset_materialization_events()
    }


def table_hashes(warehouse_file: Path) -> dict[str, str]:
    """Each table's content, rows sorted, as one hash."""
    with duckdb.connect(str(warehouse_file), read_only=True) as con:
        tables = [r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'main'").fetchall()]
        return {
            table: hashlib.sha256("\n".join(sorted(
                repr(row) for row in con.execute(f'select * from "{table}"').fetchall())).encode()).hexdigest()
            for table in sorted(tables)
        }


def rebuilt(state: Path, landed_from: Path, into: Path, as_of: datetime, checks: dict | None = None) -> dict[str, str]:
    """A full rebuild: `state` copied, the pages `landed_from` holds, every step run."""
    shutil.copytree(state, into)
    shutil.rmtree(into / "raw")
    shutil.copytree(landed_from / "raw", into / "raw")
    run(PROCESSING, {"pipeline_settings": PipelineSettings(data_dir=str(into), reuse_unchanged=False)}, as_of,
        checks=checks)
    return table_hashes(into / "warehouse.duckdb")


@pytest.fixture(scope="module")
def syncs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("incremental")
    world = generate_world(root / "world", persons=150, seed=5, as_of=WORLD_AS_OF)
    data = root / "data"
    found: dict = {}
    with SandboxServers(world, faults=Faults(retry_after=0)) as servers:
        everything = [*raw.assets, *PROCESSING]
        found["first"] = run(everything, resources(servers, data), FIRST)
        shutil.copytree(data, root / "after_first")
        found["rerun"] = run(everything, resources(servers, data), RERUN)
        found["rerun_warehouse"] = table_hashes(data / "warehouse.duckdb")
        shutil.copytree(data, root / "after_rerun")
        found["next_night_publish"] = {}
        found["next_night"] = run(everything, resources(servers, data), NEXT_NIGHT,
                                  published=found["next_night_publish"])
        found["next_night_warehouse"] = table_hashes(data / "warehouse.duckdb")
        shutil.copytree(data, root / "after_next_night")
        found["changed"] = servers.apply_changeset(seed=3, now=CHANGED_AT)
        found["merged"], found["after_change_checks"], found["after_change_publish"] = {}, {}, {}
        found["after_change"] = run(everything, resources(servers, data), AFTER_CHANGE, found["merged"],
                                    published=found["after_change_publish"], checks=found["after_change_checks"])
        found["after_change_warehouse"] = table_hashes(data / "warehouse.duckdb")
    found["rebuilt_rerun"] = rebuilt(root / "after_first", root / "after_rerun", root / "rebuild_rerun", RERUN)
    found["rebuilt_next_night"] = rebuilt(root / "after_rerun", root / "after_next_night", root / "rebuild_night",
                                          NEXT_NIGHT)
    found["rebuilt_after_change_checks"] = {}
    found["rebuilt_after_change"] = rebuilt(root / "after_next_night", data, root / "rebuild_change", AFTER_CHANGE,
                                            found["rebuilt_after_change_checks"])
    return found


def test_a_rerun_with_no_change_reuses_every_step_and_publishes_the_full_rebuild(syncs):
    assert not any(syncs["first"].values())
    assert {step: syncs["rerun"][step] for step in STEPS} == dict.fromkeys(STEPS, True)
    assert syncs["rerun_warehouse"] == syncs["rebuilt_rerun"]
    assert len(syncs["rerun_warehouse"]) >= 20


def test_the_next_night_with_no_change_rebuilds_only_the_tables_that_follow_the_date(syncs):
    """A nightly sync always starts a new Beijing day: the ages and the history's closing date
    move, nothing else does, so the publish builds those tables and carries the rest."""
    from pipelines.warehouse.build import date_dependent

    night = syncs["next_night"]
    assert not night["warehouse/publish"]
    assert syncs["next_night_publish"]["tables_built"] == len(date_dependent()) < len(syncs["next_night_warehouse"])
    assert all(night[step] for step in STEPS if step != "warehouse/publish")
    assert syncs["next_night_warehouse"] == syncs["rebuilt_next_night"]


def test_after_a_change_set_what_changed_is_redone_and_the_warehouse_is_the_full_rebuild(syncs):
    assert syncs["changed"]["persons_added"] > 0
    redone = {step for step in STEPS if not syncs["after_change"][step]}
    # volunteers, services and teams changed at the sources; evaluations did not
    assert {"staged/volunteers", "staged/services", "staged/organizations", "resolved/volunteers",
            "warehouse/publish"} <= redone
    assert "staged/evaluations" not in redone
    # the changed tables took the new pages into their last staging, rather than restaging
    assert {"staged/volunteers", "staged/services"} <= set(syncs["merged"])
    # the publish loaded only the tables that changed: the others (the counties at least) the
    # warehouse held already as built (pipelines/warehouse/delta.py)
    publish = syncs["after_change_publish"]
    assert 0 < publish["tables_unchanged"] < publish["tables_built"]
    assert syncs["after_change_warehouse"] == syncs["rebuilt_after_change"]


def test_after_a_change_set_the_checks_judge_only_the_changed_rows_and_find_what_a_full_validation_finds(syncs):
    # Great Expectations judged again only the rows the merge took out and put in ...
    for table, (judged, rows) in syncs["merged"].items():
        assert 0 < judged < rows, table
    # ... and every check of the merged tables has the verdict and figures of the whole file
    # (but the accounting's figures of "this sync", which the rebuild, another run, has not)
    merged = {key: verdict for key, verdict in syncs["after_change_checks"].items()
              if key[0] in syncs["merged"] and key[1] != staged.ACCOUNTED_CHECK}
    assert len(merged) >= 10
    assert merged == {key: syncs["rebuilt_after_change_checks"][key] for key in merged}


# ---- the pure parts


def test_a_record_holds_from_its_instant_until_its_window_ends(tmp_path):
    settings = Settings(data_dir=tmp_path)
    output = tmp_path / "out.parquet"
    output.write_bytes(b"x")
    made = AsOf(FIRST)
    record = reuse.ReuseRecord(step="s", fingerprint="f", as_of=made.isoformat(),
                               valid_until=AsOf(CHANGED_AT).isoformat(), outputs=reuse.files_manifest([output]))
    reuse.save_record(settings, record)
    loaded = reuse.load_record(settings, "s")
    assert reuse.reusable(loaded, "f", AsOf(RERUN))
    assert not reuse.reusable(loaded, "g", AsOf(RERUN))  # other inputs
    assert not reuse.reusable(loaded, "f", AsOf(CHANGED_AT))  # a future date is now past
    assert not reuse.reusable(loaded, "f", AsOf(datetime(2026, 10, 1, tzinfo=BEIJING)))  # a replay
    output.write_bytes(b"changed by hand")
    assert not reuse.reusable(loaded, "f", AsOf(RERUN))


def test_the_fingerprint_follows_the_hash_key_never_holding_it(tmp_path):
    one = Settings(data_dir=tmp_path, pii_hash_key="key-one")
    two = Settings(data_dir=tmp_path, pii_hash_key="key-two")
    assert reuse.fingerprint("s", inputs=[], settings=one, code="c") != reuse.fingerprint(
        "s", inputs=[], settings=two, code="c")
    reuse.save_record(one, reuse.ReuseRecord("s", reuse.fingerprint("s", inputs=[], settings=one, code="c"),
                                             AsOf(FIRST).isoformat(), None, []))
    assert "key-one" not in reuse.record_path(one, "s").read_text()


def test_another_warehouse_changes_the_publish_s_fingerprint_only(tmp_path):
    """Staging and resolution write the same files whatever the target: a sync pointed at
    another warehouse publishes again and stages nothing again."""
    here = Settings(data_dir=tmp_path)
    there = Settings(data_dir=tmp_path, warehouse_url="postgresql+psycopg://etl@db.example/warehouse")
    for step in ("staged/volunteers", "resolved"):
        assert reuse.fingerprint(step, inputs=[], settings=here, code="c") == reuse.fingerprint(
            step, inputs=[], settings=there, code="c")
    assert reuse.fingerprint("warehouse/publish", inputs=[], settings=here, code="c", warehouse=True) != \
        reuse.fingerprint("warehouse/publish", inputs=[], settings=there, code="c", warehouse=True)


def test_a_future_date_is_judged_again_from_the_midnight_that_starts_it():
    as_of = pd.Timestamp("2026-11-01 05:00", tz="UTC")  # 13:00 in Beijing
    services = pd.DataFrame({
        "service_date": pd.to_datetime(["2026-10-30", "2026-11-03", "2026-11-05"]),
        "start_at": pd.to_datetime(["2026-11-01 04:00", "2026-11-02 20:00", None], utc=True),
    })
    inputs = RuleInputs(table="services", as_of=as_of.to_pydatetime())
    # 3 Nov Beijing starts at 2 Nov 16:00 UTC, before the start at 2 Nov 20:00 UTC
    assert future_verdicts_change_at(services, inputs) == pd.Timestamp("2026-11-02 16:00", tz="UTC")
    assert future_verdicts_change_at(services.iloc[:1], inputs) is None


def test_a_period_whose_year_never_comes_has_no_instant_to_wait_for():
    """A period typed as 1e99 or inf is judged future for ever; a real future year from its
    first day (found by the fuzz test: an int too large for a timestamp stopped staging)."""
    inputs = RuleInputs(table="evaluations", as_of=pd.Timestamp("2026-11-01 05:00", tz="UTC").to_pydatetime())
    forever = pd.DataFrame({"period": ["1e99", "inf", "9999", "2025-Q1"]})
    assert future_verdicts_change_at(forever, inputs) is None
    nearer = pd.DataFrame({"period": ["2028", "1e99"]})
    assert future_verdicts_change_at(nearer, inputs) == pd.Timestamp("2027-12-31 16:00", tz="UTC")
