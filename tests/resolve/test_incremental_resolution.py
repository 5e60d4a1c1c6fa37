"""After a change set, resolution redoes what changed and gives what a full run gives.

A small sandbox world is landed, staged and resolved; a change set at the sources (edits,
additions, deletions) is landed and staged; then the same resolution runs twice from copies
of that DATA_DIR: once as a nightly sync does (the previous facts, golden records and state
there: services and golden records carried over where nothing they depend on changed), once
with the manifests removed (every service record resolved, every golden record made). Every
output file must hold the same rows, column by column. And wherever the previous state cannot
be trusted (a file that is not the one the manifest vouches for, or carried rows that do not
add up) the run makes every row, and still gives the full run's answer.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipelines.config import Settings
from pipelines.files import write_parquet
from pipelines.resolve.store import (
    GOLDEN_MANIFEST,
    SERVICE_MANIFEST,
    SERVICE_STATE_FILES,
    resolve_all,
    save_service_state,
    service_state_files,
)
from pipelines.resolve.services import ServiceState
from pipelines.staging import stage_all
from tests.resolve.test_sandbox_chain import land_everything

PERSONS = 600
BEIJING = timezone(timedelta(hours=8))
AS_OF = datetime(2026, 6, 30, 18, 0, tzinfo=BEIJING)
AFTER = AS_OF + timedelta(hours=2)


def rows_differ(left: Path, right: Path) -> int:
    """Rows in one Parquet file and not the other (a multiset, every column), both ways."""
    con = duckdb.connect()
    found = 0
    for a, b in ((left, right), (right, left)):
        found += con.execute(f"SELECT count(*) FROM (SELECT * FROM read_parquet('{a}') EXCEPT ALL "
                             f"SELECT * FROM read_parquet('{b}'))").fetchone()[0]
    return found


def outputs_differ(left: Path, right: Path) -> list[str]:
    """The resolved files (and summary figures) that are not the same in both folders."""
    problems = []
    for path in sorted(left.glob("*.parquet")):
        other = right / path.name
        if not other.exists() or rows_differ(path, other):
            problems.append(path.name)
    summaries = [json.loads((folder / "summary.json").read_text()) for folder in (left, right)]
    for summary in summaries:
        summary.pop("seconds"), summary.pop("work")
    if summaries[0] != summaries[1]:
        problems.append("summary.json")
    return problems


@pytest.fixture(scope="module")
def changed(tmp_path_factory) -> Path:
    """A DATA_DIR after a first sync and a staged change set, before its resolution."""
    from sandbox import SandboxServers, generate_world

    root = tmp_path_factory.mktemp("incremental-services")
    world = Path(generate_world(root / "world", persons=PERSONS, seed=11, as_of=AS_OF))
    settings = Settings(data_dir=root / "data")
    with SandboxServers(world) as servers:
        land_everything(servers, settings.data_dir, "sync-1")
        stage_all(settings, as_of=AS_OF)
        resolve_all(settings, AS_OF)
        counts = servers.apply_changeset(seed=3, now=AS_OF + timedelta(hours=1))
        assert counts["persons_added"] > 0
        land_everything(servers, settings.data_dir, "sync-2")
    stage_all(settings, as_of=AFTER)
    return settings.data_dir


def resolved_copy(changed: Path, into: Path, prepare=None) -> tuple[dict, Path]:
    """Resolve a copy of `changed` (after `prepare(settings)`); the summary and resolved dir."""
    shutil.copytree(changed, into)
    settings = Settings(data_dir=into)
    if prepare:
        prepare(settings)
    return resolve_all(settings, AFTER), settings.resolved_dir


@pytest.fixture(scope="module")
def full(changed, tmp_path_factory) -> tuple[dict, Path]:
    def forget_manifests(settings: Settings) -> None:
        (settings.state_dir / "resolve" / SERVICE_MANIFEST).unlink()
        (settings.state_dir / "resolve" / GOLDEN_MANIFEST).unlink()

    return resolved_copy(changed, tmp_path_factory.mktemp("full") / "data", forget_manifests)


def test_a_change_set_resolves_only_the_records_it_touches_and_gives_the_full_answer(changed, full, tmp_path):
    summary, resolved = resolved_copy(changed, tmp_path / "data")
    work = summary["work"]["services"]
    assert work["mode"] == "incremental", work
    assert 0 < work["facts_resolved"] < work["facts_carried"] / 5, work
    golden = summary["work"]["volunteers"]
    assert golden["golden"] == "carried over" and 0 < golden["golden_made"] < summary["volunteers"]["persons"] / 5
    assert full[0]["work"]["services"]["mode"] == "full"
    assert full[0]["work"]["volunteers"]["golden"] == "full"
    assert outputs_differ(full[1], resolved) == []
    # and the next sync can rely on what this one left
    assert resolve_all(Settings(data_dir=tmp_path / "data"), AFTER + timedelta(hours=1))["work"]["services"][
        "mode"] == "incremental"


def test_facts_that_are_not_the_ones_the_manifest_vouches_for_are_not_carried(changed, full, tmp_path):
    def drop_a_fact(settings: Settings) -> None:
        facts = pd.read_parquet(settings.resolved_dir / "services.parquet")
        write_parquet(settings.resolved_dir / "services.parquet", facts.iloc[1:])

    summary, resolved = resolved_copy(changed, tmp_path / "data", drop_a_fact)
    assert summary["work"]["services"]["mode"] == "full"
    assert "manifest" in summary["work"]["services"]["reason"]
    assert outputs_differ(full[1], resolved) == []


def test_golden_records_that_are_not_the_ones_the_manifest_vouches_for_are_made_again(changed, full, tmp_path):
    def drop_a_golden_record(settings: Settings) -> None:
        golden = pd.read_parquet(settings.resolved_dir / "volunteers.parquet")
        write_parquet(settings.resolved_dir / "volunteers.parquet", golden.iloc[1:])

    summary, resolved = resolved_copy(changed, tmp_path / "data", drop_a_golden_record)
    assert summary["work"]["volunteers"]["golden"] == "full"
    assert outputs_differ(full[1], resolved) == []


def test_carried_facts_that_do_not_add_up_are_resolved_again_in_full(changed, full, tmp_path):
    def drop_a_fact_and_vouch_for_it(settings: Settings) -> None:
        state_dir = settings.state_dir / "resolve"
        facts = pd.read_parquet(settings.resolved_dir / "services.parquet")
        write_parquet(settings.resolved_dir / "services.parquet", facts.iloc[1:])
        state = ServiceState(**{name: pd.read_parquet(state_dir / file) for name, file in SERVICE_STATE_FILES.items()})
        save_service_state(service_state_files(state), state_dir, settings.resolved_dir)

    summary, resolved = resolved_copy(changed, tmp_path / "data", drop_a_fact_and_vouch_for_it)
    assert summary["work"]["services"]["mode"] == "full"
    assert "did not add up" in summary["work"]["services"]["reason"]
    assert not any(summary["invariants"]["services"].values())
    assert outputs_differ(full[1], resolved) == []


# ---- each kind of change, on a handful of records (the pure function)

from pipelines.resolve.services import PreviousServices, resolve_services  # noqa: E402
from pipelines.resolve.store import changed_accounts  # noqa: E402
from tests.resolve.test_organizations_services import service  # noqa: E402


def small_world() -> dict[str, pd.DataFrame]:
    return {
        "volunteers": pd.DataFrame([
            {"source": "national", "source_id": "NV1", "volunteer_key": "Vaaa"},
            {"source": "provincial", "source_id": "501", "volunteer_key": "Vaaa"},
            {"source": "national", "source_id": "NV2", "volunteer_key": "Vbbb"},
        ]),
        "organizations": pd.DataFrame([
            {"source": "national", "source_id": "T01", "org_key": "Oxx"},
            {"source": "national", "source_id": "T02", "org_key": "Oyy"},
            {"source": "provincial", "source_id": "901", "org_key": "Oxx"},
        ]),
        "projects": pd.DataFrame([
            {"source": "national", "source_id": "X1", "category": "社区服务", "org_source_id": "T01"},
            {"source": "provincial", "source_id": "77", "category": "助老助残", "org_source_id": "901"},
        ]),
        "services": pd.DataFrame([
            service("national", "R1", "NV1", 2.0, project="X1"),
            service("provincial", "L1", "501", 2.5, org="901", project="77", national_record_id="R1"),
            service("national", "R2", "NV2", 3.0, day="2026-03-05", org=None, project="X1"),
            service("national", "R3", "NV2", 1.0, day="2026-03-06", org="T02"),
            service("national", "R4", "NV1", 1.5, day="2026-03-09"),
            service("provincial", "L3", "501", 1.5, day="2026-03-09", org="901", project="77"),
            service("provincial", "L4", "501", 2.0, day="2026-03-10", org="901"),
            # L4 pushed up twice: one service, counted by R5 (the first by id), R6 a copy
            service("national", "R5", "NV1", 2.0, day="2026-03-10", origin_log_id="L4"),
            service("national", "R6", "NV1", 2.0, day="2026-03-10", origin_log_id="L4"),
        ]),
    }


def _set(frame: pd.DataFrame, where: tuple[str, str], column: str, value) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[frame["source_id"] == where[1], column] = value
    return frame


CHANGES = {
    "a volunteer's key changes (a merge)": lambda w: {**w, "volunteers": _set(w["volunteers"], ("national", "NV2"), "volunteer_key", "Vaaa")},
    "a team's key changes": lambda w: {**w, "organizations": _set(w["organizations"], ("national", "T01"), "org_key", "Ozz")},
    "a project's category changes": lambda w: {**w, "projects": _set(w["projects"], ("national", "X1"), "category", "环境保护")},
    "a project moves to another team": lambda w: {**w, "projects": _set(w["projects"], ("national", "X1"), "org_source_id", "T02")},
    "a log now names another national record": lambda w: {**w, "services": _set(w["services"], ("provincial", "L1"), "national_record_id", "R4")},
    "a record's hours change": lambda w: {**w, "services": _set(w["services"], ("national", "R3"), "hours", 4.0)},
    "a record becomes ineffective": lambda w: {**w, "services": _set(w["services"], ("national", "R1"), "is_effective", False)},
    "a record is gone": lambda w: {**w, "services": w["services"].loc[w["services"]["source_id"] != "R2"]},
    "a log is pushed up again (a copy of its service appears)": lambda w: {**w, "services": pd.concat([
        w["services"], pd.DataFrame([service("national", "R0", "NV1", 2.0, origin_log_id="L1")])], ignore_index=True)},
    "a second log names a counted record": lambda w: {**w, "services": pd.concat([
        w["services"], pd.DataFrame([service("provincial", "L0", "501", 2.0, national_record_id="R1")])],
        ignore_index=True)},
    "the counted copy of a log pushed up twice is deleted": lambda w: {**w, "services": _set(
        _set(w["services"], ("national", "R5"), "is_deleted", True), ("national", "R5"), "is_effective", False)},
    "the counted copy of a log pushed up twice becomes ineffective": lambda w: {
        **w, "services": _set(w["services"], ("national", "R5"), "is_effective", False)},
    "a record is added": lambda w: {**w, "services": pd.concat([w["services"], pd.DataFrame([
        service("national", "R9", "NV2", 5.0, day="2026-04-01", origin_log_id="L4")])], ignore_index=True)},
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_each_kind_of_change_resolves_its_records_again_and_gives_the_full_answer(change):
    before = small_world()
    previous = resolve_services(before["services"], before["projects"], before["volunteers"], before["organizations"])
    after = CHANGES[change](before)
    full = resolve_services(after["services"], after["projects"], after["volunteers"], after["organizations"])
    incremental = resolve_services(
        after["services"], after["projects"], after["volunteers"], after["organizations"],
        PreviousServices(previous.facts, previous.state,
                         changed_accounts(before["volunteers"], after["volunteers"], "volunteer_key"),
                         changed_accounts(before["organizations"], after["organizations"], "org_key")),
    )
    assert incremental.work["mode"] == "incremental"
    assert 0 < incremental.work["records_resolved"] + incremental.work["records_gone"] < len(after["services"])
    pd.testing.assert_frame_equal(incremental.facts, full.facts)
    pd.testing.assert_frame_equal(incremental.duplicates, full.duplicates)
    assert incremental.summary == full.summary
    # each service once: L1's and L4's copies make one fact between them, when a national copy
    # of it counts (the national copy decides), none otherwise
    records = after["services"].loc[~after["services"]["is_deleted"]]
    for log in ("L1", "L4"):
        named = records.loc[records["source_id"] == log, "national_record_id"]
        national = records.loc[(records["origin_log_id"] == log) | records["source_id"].isin(named.dropna())]
        counted = full.facts["provincial_source_id"].eq(log) | full.facts["national_source_id"].isin(national["source_id"])
        assert counted.sum() == int(national["is_effective"].any()), (change, log)


# ---- golden records: accounts that change, move between keys, come and go (the pure functions)

from pipelines.resolve.volunteers import (  # noqa: E402
    VolunteerState,
    account_row_fingerprints,
    golden_carried_over,
    golden_volunteers,
    prepare_accounts,
)
from tests.resolve.synthetic import make_world  # noqa: E402


def keyed_accounts(staged: pd.DataFrame) -> pd.DataFrame:
    """Prepared accounts keyed by their true person (as if resolution had found them)."""
    accounts = prepare_accounts(staged)
    person = staged.set_index(["source", staged["source_id"].astype(str)])["person_id"]
    accounts["volunteer_key"] = ["V" + str(p) for p in person.loc[list(zip(accounts["source"], accounts["source_id"]))]]
    return accounts


def _move(accounts: pd.DataFrame, rows: slice, key: str) -> pd.DataFrame:
    moved = accounts.copy()
    moved.loc[moved.index[rows], "volunteer_key"] = key
    return moved


GOLDEN_CHANGES = {
    "an account moves to another key (a merge)": lambda a: _move(a, slice(0, 1), a["volunteer_key"].iloc[5]),
    "an account leaves for a new key (a split)": lambda a: _move(a, slice(3, 4), "Vnew"),
    "an account's name changes": lambda a: a.assign(name=a["name"].where(a.index != 7, "改名")),
    "an account is deleted at its source": lambda a: a.assign(is_deleted=a["is_deleted"] | (a.index == 9)),
    "an account of a person with two is gone": lambda a: a.drop(
        index=a.index[a["volunteer_key"].duplicated(keep=False)][0]).reset_index(drop=True),
}


@pytest.mark.parametrize("change", list(GOLDEN_CHANGES))
def test_golden_records_made_for_changed_keys_and_carried_for_others_are_the_full_ones(change):
    staged, _ = make_world(persons=40, seed=5)
    before = keyed_accounts(staged)
    previous = VolunteerState(
        source_map=before[["source", "source_id", "volunteer_key"]], fingerprints=pd.DataFrame(),
        scored_pairs=pd.DataFrame(), params=None, rules_fingerprint="", key_history=pd.DataFrame(),
        account_rows=account_row_fingerprints(before), golden=golden_volunteers(before),
    )
    after = GOLDEN_CHANGES[change](before)
    carried, made = golden_carried_over(after, account_row_fingerprints(after), previous)
    assert 0 < made < len(carried)
    pd.testing.assert_frame_equal(carried, golden_volunteers(after))
