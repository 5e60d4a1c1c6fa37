"""A small sandbox world, landed over HTTP by the real connectors, then staged and validated.

Every invalid row the generator planted (truth/invalid_rows.parquet) must be in quarantine
under its rule, no valid row may be, every valid source row must be staged, and the staged
tables must pass their Great Expectations checks.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from pipelines.config import Settings
from pipelines.quality import gx_runner
from pipelines.schemas import table_names, table_spec
from pipelines.staging import read_quarantine, read_staged, stage_all

PERSONS = 500
SEED = 11
KEY = "sandbox-sync-test-key-of-32-bytes-or-more"
ENTITY_TABLES = {table_spec(t).entity: t for t in table_names()}


def _world_as_of(truth) -> datetime:
    """The time the world stands at: the sync's "now" for future_date."""
    return pd.Timestamp(truth.world["as_of"]).to_pydatetime()


def _sync(world: Path, data_dir: Path, sync_id: str) -> None:
    """Land every stream of both sources over HTTP (incremental from the stored state)."""
    from pipelines.landing import land_stream
    from pipelines.sources import NATIONAL_STREAMS, PROVINCIAL_STREAMS, NationalApi, ProvincialApi
    from sandbox import SandboxServers

    with SandboxServers(world) as servers:
        apis = {
            "national": NationalApi(
                servers.national_url,
                servers.national_client_id,
                servers.national_client_secret,
                "52",
            ),
            "provincial": ProvincialApi(
                servers.provincial_url, servers.provincial_app_key, servers.provincial_app_secret
            ),
        }
        try:
            for source, streams in (
                ("national", NATIONAL_STREAMS),
                ("provincial", PROVINCIAL_STREAMS),
            ):
                for stream in streams:
                    land_stream(apis[source], stream, data_dir, sync_id=sync_id)
        finally:
            for api in apis.values():
                api.close()


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    from sandbox import generate_world, load_truth

    root = tmp_path_factory.mktemp("sandbox-sync")
    world = Path(generate_world(root / "world", persons=PERSONS, seed=SEED))
    settings = Settings(data_dir=root / "data", pii_hash_key=KEY)
    _sync(world, settings.data_dir, "sync-1")
    truth = load_truth(world)
    results = stage_all(settings, as_of=_world_as_of(truth))
    return settings, truth, results, world


def _keys(frame: pd.DataFrame) -> dict[tuple[str, str, str], str]:
    return {
        (row.source, row.entity, str(row.source_id)): row.rule
        for row in frame[["source", "entity", "source_id", "rule"]].itertuples(index=False)
    }


def test_every_planted_invalid_row_is_quarantined_under_its_rule_and_no_valid_row_is(synced):
    settings, truth, _, _ = synced
    planted = _keys(truth.invalid_rows)
    assert planted, "the world planted no invalid rows"
    found = _keys(read_quarantine(settings))
    missing = {key: rule for key, rule in planted.items() if key not in found}
    wrong_rule = {
        key: (rule, found[key])
        for key, rule in planted.items()
        if key in found and found[key] != rule
    }
    unexpected = {key: rule for key, rule in found.items() if key not in planted}
    assert missing == {}
    assert wrong_rule == {}
    assert unexpected == {}


def test_every_valid_source_row_is_staged_and_no_quarantined_row_is(synced):
    settings, truth, _, _ = synced
    accounts = truth.accounts
    for entity, table in ENTITY_TABLES.items():
        expected = accounts[accounts["entity"] == entity]
        staged = read_staged(settings, table, columns=["source", "source_id"])
        staged_keys = set(zip(staged["source"], staged["source_id"]))
        expected_keys = set(zip(expected["source"], expected["source_id"].astype(str)))
        assert expected_keys - staged_keys == set(), entity
        quarantined = read_quarantine(settings)
        rejected = quarantined[quarantined["entity"] == entity]
        assert staged_keys & set(zip(rejected["source"], rejected["source_id"])) == set(), entity


def test_staged_tables_of_a_full_sync_pass_their_checks(synced):
    settings, _, _, _ = synced
    for table in table_names():
        frame = read_staged(settings, table, columns=gx_runner.suite_columns(table))
        assert len(frame) > 0, f"{table} is empty after a full sync"
        outcome = gx_runner.validate(table, frame)
        failures = {c.name: c.metadata() for c in outcome.checks if not c.passed}
        assert failures == {}, table


def test_staged_files_hold_no_clear_number_or_phone(synced):
    settings, truth, _, _ = synced
    persons = truth.persons
    numbers = [c for c in ("cert_no", "phone") if c in persons]
    secrets = set()
    for column in numbers:
        secrets |= set(persons[column].dropna().astype(str).head(200))
    assert secrets, "the truth names no numbers to look for"
    for table in table_names():
        frame = read_staged(settings, table)
        text_columns = [
            c
            for c in frame.columns
            if frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c])
        ]
        values = set()
        for column in text_columns:
            values |= set(frame[column].dropna().astype(str))
        assert values & secrets == set(), table


def _fix_a_nameless_provincial_volunteer(world: Path, truth, now: datetime) -> str:
    """Give one planted nameless provincial account a name at the source, stamped `now`."""
    planted = truth.invalid_rows
    nameless = planted[
        (planted["source"] == "provincial")
        & (planted["entity"] == "volunteer")
        & (planted["rule"] == "missing_required")
    ]
    source_id = str(nameless["source_id"].iloc[0])
    stamp = pd.Timestamp(now).tz_convert("Asia/Shanghai").strftime("%Y-%m-%d %H:%M:%S")
    with sqlite3.connect(world / "provincial.sqlite") as conn:
        (body,) = conn.execute(
            "SELECT body FROM volunteers WHERE id = ?", (int(source_id),)
        ).fetchone()
        row = json.loads(body)
        row.update(realName="王芳", updateTime=stamp)
        conn.execute(
            "UPDATE volunteers SET body = ?, updated_at = ? WHERE id = ?",
            (json.dumps(row, ensure_ascii=False), stamp, int(source_id)),
        )
    return source_id


def test_next_sync_keeps_first_seen_and_a_row_fixed_at_the_source_leaves(synced, tmp_path):
    from sandbox import apply_changeset, load_truth

    settings, truth, _, world = synced
    first = read_quarantine(settings).set_index(["source", "entity", "source_id"])
    # a private copy of the world and of the data folder (state included): the next sync
    world_copy = Path(shutil.copytree(world, tmp_path / "world"))
    next_settings = dataclasses.replace(
        settings, data_dir=Path(shutil.copytree(settings.data_dir, tmp_path / "data"))
    )
    now = _world_as_of(truth) + timedelta(hours=1)
    apply_changeset(world_copy, seed=3, now=now)
    fixed = _fix_a_nameless_provincial_volunteer(world_copy, truth, now)

    _sync(world_copy, next_settings.data_dir, "sync-2")
    stage_all(next_settings, as_of=now + timedelta(minutes=5))

    after_truth = load_truth(world_copy)
    expected = _keys(after_truth.invalid_rows)
    expected.pop(("provincial", "volunteer", fixed))
    after = read_quarantine(next_settings)
    assert _keys(after) == expected
    staged = read_staged(next_settings, "volunteers", columns=["source", "source_id", "name"])
    assert ("provincial", fixed) in set(zip(staged["source"], staged["source_id"]))
    kept = after.set_index(["source", "entity", "source_id"])
    pd.testing.assert_series_equal(kept["first_seen_at"], first.loc[kept.index, "first_seen_at"])
    # the change set's deletions are staged as deleted rows, not lost
    deleted = read_staged(next_settings, "services", columns=["is_deleted"])["is_deleted"]
    assert (
        deleted.sum()
        > read_staged(settings, "services", columns=["is_deleted"])["is_deleted"].sum()
    )
