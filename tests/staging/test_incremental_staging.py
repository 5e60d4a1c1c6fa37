"""Incremental staging gives exactly what a full restage of the same pages gives.

A small sandbox world is synced over HTTP (the real clients and landing) and staged in full;
a row is landed broken by hand so that it sits in quarantine. Then a change set at the
sources (new persons and services, deletions, changed phones, suspended teams) is synced,
and a hand-landed page brings: the broken row fixed (it leaves quarantine), a staged row
broken (it goes to quarantine) and an older version of a row the change set changed, sent
again after the newer one (a full restage takes the version fetched last: so must a merge).
The data folder is copied; one copy is merged (`merge_stage`), the other restaged in full
(`stage_table`): every table, its quarantine part and its accounting must be equal.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipelines.clock import BEIJING, AsOf
from pipelines.landing import land_stream, raw_files
from pipelines.reuse import ReuseRecord
from pipelines.schemas import table_names
from pipelines.sources import NationalApi, ProvincialApi
from pipelines.staging import stage_table
from pipelines.staging.incremental import merge_stage, why_not_incremental
from pipelines.staging.tables import ledger_path, quarantine_part_path
from sandbox import Faults, SandboxServers, generate_world
from tests.staging.rawpages import land, settings_for

WORLD_AS_OF = datetime(2026, 11, 1, 12, 0)
FIRST = AsOf(datetime(2026, 11, 1, 13, 0, tzinfo=BEIJING))
CHANGED_AT = datetime(2026, 11, 2, 9, 0, tzinfo=BEIJING)
AFTER_CHANGE = AsOf(datetime(2026, 11, 2, 10, 0, tzinfo=BEIJING))
VOLUNTEERS = ("national", "volunteers")


def sync(servers: SandboxServers, data_dir: Path, sync_id: str) -> None:
    apis = [
        NationalApi(servers.national_url, servers.national_client_id, servers.national_client_secret, "52"),
        ProvincialApi(servers.provincial_url, servers.provincial_app_key, servers.provincial_app_secret),
    ]
    for api in apis:
        for stream in api.streams.values():
            land_stream(api, stream, data_dir, sync_id)


def landed_records(data_dir: Path, source: str, stream: str) -> pd.DataFrame:
    files = raw_files(data_dir, source, stream)
    return pd.concat([pq.read_table(f, columns=["id", "record", "sync_id"]).to_pandas() for f in files])


def broken(record: str) -> dict:
    """The row with a change time no one can read: landed, and quarantined by staging."""
    row = json.loads(record)
    row["updated_at"] = "not a time"
    return row


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("incremental_staging")
    world = generate_world(root / "world", persons=120, seed=11, as_of=WORLD_AS_OF)
    data = root / "merged"
    settings = settings_for(data)
    with SandboxServers(world, faults=Faults(retry_after=0)) as servers:
        sync(servers, data, "sync-1")
        first = landed_records(data, *VOLUNTEERS)
        # row A lands broken after its good version: quarantined at the first staging
        row_a = first.iloc[0]
        land(data, *VOLUNTEERS, [broken(row_a["record"])], sync_id="sync-1b",
             fetched_at=datetime.now(UTC))
        before = {table: stage_table(table, settings, FIRST) for table in table_names()}
        servers.apply_changeset(seed=3, now=CHANGED_AT)
        sync(servers, data, "sync-2")
    now = landed_records(data, *VOLUNTEERS)
    changed = now[now["sync_id"] == "sync-2"]
    # row C: changed by the change set; its first version is sent again, after the newer one
    row_c = first[first["id"].isin(changed["id"]) & (first["id"] != row_a["id"])].iloc[0]
    row_b = first[~first["id"].isin([row_a["id"], row_c["id"]])].iloc[1]  # staged, then broken
    land(data, *VOLUNTEERS,
         [json.loads(row_a["record"]), broken(row_b["record"]), json.loads(row_c["record"])],
         sync_id="sync-2b", fetched_at=datetime.now(UTC) + timedelta(seconds=1))
    full = root / "full"
    shutil.copytree(data, full)
    in_small_batches = root / "small_batches"
    shutil.copytree(data, in_small_batches)
    relocate_ledgers(data, in_small_batches)
    return {"merged": settings, "full": settings_for(full), "small_batches": settings_for(in_small_batches),
            "before": before,
            "ids": {"a": row_a["id"], "b": row_b["id"], "c": row_c["id"]}}


def relocate_ledgers(old: Path, new: Path) -> None:
    """A copied DATA_DIR's ledgers name the pages under the copy (a ledger names pages by path)."""
    import pyarrow.compute as pc

    for ledger in (new / "state" / "staging_ledger").glob("*.parquet"):
        table = pq.read_table(ledger)
        names = pc.replace_substring(table["filename"], str(old) + "/", str(new) + "/")
        pq.write_table(table.set_column(table.schema.get_field_index("filename"), "filename", names), ledger)


def ledgers_of(table: str, *settings) -> list[pd.DataFrame]:
    """The table's ledger in each DATA_DIR, its page paths relative to that folder."""
    ledgers = []
    for each in settings:
        ledger = pq.read_table(ledger_path(each, table)).to_pandas()
        ledger["filename"] = ledger["filename"].str.removeprefix(str(each.data_dir))
        ledgers.append(ledger)
    return ledgers


def sorted_frame(frame: pd.DataFrame) -> pd.DataFrame:
    text = frame.astype(str)
    return frame.loc[text.sort_values(list(text.columns)).index].reset_index(drop=True)


def test_a_merge_stages_exactly_what_a_full_restage_stages(folders):
    merged_settings, full_settings = folders["merged"], folders["full"]
    restaged, deleted = 0, 0
    for table in table_names():
        merged = merge_stage(table, merged_settings, AFTER_CHANGE)
        full = stage_table(table, full_settings, AFTER_CHANGE)
        assert merged.incremental
        restaged += merged.restaged
        deleted += merged.deleted_rows - folders["before"][table].deleted_rows
        assert merged.restaged < full.rows + full.quarantined or full.rows == 0
        # the staged table: every row, every column
        pd.testing.assert_frame_equal(sorted_frame(merged.read()), sorted_frame(full.read()))
        assert pq.read_table(merged.path).equals(pq.read_table(full.path))  # the order too
        # the quarantine part, first_seen_at carried the same way
        assert pq.read_table(quarantine_part_path(merged_settings, table)).equals(
            pq.read_table(quarantine_part_path(full_settings, table)))
        # the accounting, per stream and sync, and every count the asset reports
        assert merged.accounting == full.accounting
        assert merged.balanced()
        for name in ("rows", "rows_per_source", "deleted_rows", "soft_flags",
                     "superseded_duplicates", "quarantined_per_rule"):
            assert getattr(merged, name) == getattr(full, name), (table, name)
        # the ledger the next merge starts from
        pd.testing.assert_frame_equal(*ledgers_of(table, merged_settings, full_settings))
        if table == "volunteers":
            volunteers = merged
        # merged a few rows at a time (the previous files are streamed batch by batch at scale)
        small = merge_stage(table, folders["small_batches"], AFTER_CHANGE, chunk_rows=7)
        assert pq.read_table(small.path).equals(pq.read_table(full.path))
        assert pq.read_table(quarantine_part_path(folders["small_batches"], table)).equals(
            pq.read_table(quarantine_part_path(full_settings, table)))
        assert (small.accounting, small.soft_flags, small.restaged) == (full.accounting, full.soft_flags,
                                                                        merged.restaged)
    assert 0 < restaged
    assert deleted > 0  # the change set deleted rows, which the merge staged as deleted

    def quarantined_ids(result) -> set:
        return set(result.quarantine["record"].map(lambda r: json.loads(r).get("id")))

    ids = folders["ids"]
    assert ids["a"] in quarantined_ids(folders["before"]["volunteers"])
    assert ids["b"] in quarantined_ids(volunteers) and ids["a"] not in quarantined_ids(volunteers)
    # A (fixed) and C (its older version, sent last) are staged from the hand-landed page
    assert volunteers.accounting["national/volunteers"]["sync-2b"]["staged"] == 2
    ledger = pq.read_table(ledger_path(merged_settings, "volunteers")).to_pandas()
    assert ledger.loc[ledger["id"] == ids["c"], "sync_id"].tolist() == ["sync-2b"]


def test_a_merge_is_taken_only_on_the_basis_it_was_made_for(tmp_path):
    from pipelines.landing import sync_folders
    from pipelines.reuse import files_manifest
    from tests.staging.rawpages import national_volunteer, resident_id

    output = tmp_path / "staged.parquet"
    output.write_bytes(b"x")
    number = resident_id("52010219900307123")
    land(tmp_path, *VOLUNTEERS, [national_volunteer("0001", number)])
    folders = [sync_folders(tmp_path, *VOLUNTEERS)]
    record = ReuseRecord(step="staged/t", fingerprint="f", as_of=FIRST.isoformat(),
                         valid_until=AFTER_CHANGE.isoformat(), outputs=files_manifest([output]),
                         report={"incremental": {"base": "b", "folders": folders}})
    between = AsOf(datetime(2026, 11, 1, 18, 0, tzinfo=BEIJING))
    assert why_not_incremental(record, "b", folders, between) == "no new pages"
    land(tmp_path, *VOLUNTEERS, [national_volunteer("0002", number)], sync_id="sync-2")
    more = [sync_folders(tmp_path, *VOLUNTEERS)]
    assert why_not_incremental(record, "b", more, between) is None
    assert why_not_incremental(None, "b", more, between) == "no previous staging"
    assert why_not_incremental(record, "other code", more, between) == "code or settings changed"
    assert "window" in why_not_incremental(record, "b", more, AFTER_CHANGE)
    assert "disappeared" in why_not_incremental(record, "b", [more[0][1:]], between)
    old_form = ReuseRecord(**{**record.__dict__, "report": {"incremental": {"base": "b", "pages": []}}})
    assert why_not_incremental(old_form, "b", more, between) == "the previous staging kept no ledger"
    # the first page rewritten (another size: a time alone may fall in the same tick of the clock)
    land(tmp_path, *VOLUNTEERS, [national_volunteer(f"000{i}", number) for i in (7, 8, 9)])
    assert "changed or disappeared" in why_not_incremental(record, "b", [sync_folders(tmp_path, *VOLUNTEERS)],
                                                           between)
    output.write_bytes(b"changed by hand")
    assert "changed since" in why_not_incremental(record, "b", more, between)


def _record_of(settings, table: str, folders: list) -> ReuseRecord:
    """A staging record as the asset keeps it (pipelines/reuse.py), made now."""
    from pipelines.reuse import files_manifest
    from pipelines.staging.incremental import basis
    from pipelines.staging.tables import staged_path

    outputs = [staged_path(settings, table), quarantine_part_path(settings, table), ledger_path(settings, table)]
    return ReuseRecord(step=f"staged/{table}", fingerprint="f", as_of=FIRST.isoformat(), valid_until=None,
                       outputs=files_manifest(outputs), report={"incremental": basis("b", folders)})


def test_a_ledger_that_does_not_add_up_means_a_full_staging(tmp_path, caplog):
    from pipelines.landing import sync_folders
    from pipelines.staging.incremental import stage_table_or_merge
    from tests.staging.rawpages import national_volunteer, resident_id

    def folders() -> list:
        return [sync_folders(settings.data_dir, *VOLUNTEERS)]

    settings = settings_for(tmp_path / "data")
    number = resident_id("52010219900307123")
    land(settings.data_dir, *VOLUNTEERS, [national_volunteer(f"000{i}", number) for i in range(1, 4)])
    stage_table("volunteers", settings, FIRST)
    before = folders()
    land(settings.data_dir, *VOLUNTEERS, [national_volunteer("0004", number)], sync_id="sync-2",
         fetched_at=datetime(2026, 7, 2, tzinfo=UTC))
    merged = stage_table_or_merge("volunteers", settings, AFTER_CHANGE,
                                  previous=_record_of(settings, "volunteers", before),
                                  base_fingerprint="b", folders=folders())
    assert merged.incremental and merged.restaged == 1 and merged.rows == 4

    # the ledger loses a row (a bug, a hand edit): the merge cannot be trusted
    ledger = pq.read_table(ledger_path(settings, "volunteers"))
    pq.write_table(ledger.slice(1), ledger_path(settings, "volunteers"))
    before = folders()
    land(settings.data_dir, *VOLUNTEERS, [national_volunteer("0005", number)], sync_id="sync-3",
         fetched_at=datetime(2026, 7, 3, tzinfo=UTC))
    caplog.set_level("INFO", logger="pipelines.staging")
    full = stage_table_or_merge("volunteers", settings, AFTER_CHANGE,
                                previous=_record_of(settings, "volunteers", before),
                                base_fingerprint="b", folders=folders())
    assert not full.incremental and full.rows == 5 and full.balanced()
    assert "ledger names 3 staged rows, the file holds 4" in caplog.text
    assert number not in caplog.text


def test_the_dedup_over_kept_identities_picks_what_the_dedup_over_pages_picks(folders):
    """A merge dedups the identities kept per page (no record read for pages seen before):
    for every stream, the same staged rows and per-sync counts as the SQL over the pages."""
    import duckdb

    from pipelines.schemas import mappings_for_table
    from pipelines.staging.extract import (
        connect, load_identities, stream_winners, versions_per_sync, versions_per_sync_sql,
        winners_of_identities_sql,
    )

    settings = folders["full"]
    for table in table_names():
        for mapping in mappings_for_table(table):
            con = connect(settings)
            try:
                assert load_identities(con, mapping, settings, "identities")
                kept = con.execute(winners_of_identities_sql("identities")).df()
            finally:
                con.close()
            pages = stream_winners(mapping, settings)
            assert len(kept) == len(pages) > 0
            pd.testing.assert_frame_equal(sorted_frame(kept[pages.columns]), sorted_frame(pages))
            files = [str(f) for f in raw_files(settings.data_dir, mapping.source, mapping.stream)]
            from_pages = duckdb.connect().execute(versions_per_sync_sql(mapping), {"files": files}).fetchall()
            assert versions_per_sync(mapping, settings) == {
                str(s): (int(landed), int(latest)) for s, landed, latest in from_pages}


def test_the_two_pass_extract_reads_what_the_one_query_reads(folders):
    """A full staging dedups the identities alone, then reads the winners' records: for every
    stream of a DATA_DIR with superseded, broken and re-sent rows, the same rows in the same
    order as `extract_sql`, the dedup over the record text, with the identities kept in parts
    (the whole staging) or read from the pages (a prefecture's); and the same rows landed and
    read per sync as `versions_per_sync`."""
    import duckdb

    from pipelines.schemas import mappings_for_table
    from pipelines.staging import extract_sql, raw_batches
    from pipelines.staging.extract import versions_per_sync

    settings = folders["full"]
    for table in table_names():
        for mapping in mappings_for_table(table):
            files = [str(f) for f in raw_files(settings.data_dir, mapping.source, mapping.stream)]
            con = duckdb.connect()
            con.execute("SET TimeZone = 'UTC'")
            one_query = con.sql(extract_sql(mapping), params={"files": files}).to_arrow_table().to_pandas()
            for keep_identities in (True, False):
                versions: dict = {}
                two_passes = pd.concat(raw_batches(mapping, settings, 7, keep_identities=keep_identities,
                                                   versions=versions), ignore_index=True)
                pd.testing.assert_frame_equal(two_passes, one_query)
                # the counts the staging's accounting reads, from the same pass
                assert versions == versions_per_sync(mapping, settings)
            ids = one_query["__id"].tolist()  # sorted before the fields are read: still in id order
            assert ids == [i for (i,) in con.execute("SELECT unnest($ids) AS i ORDER BY i", {"ids": ids}).fetchall()]
            if (mapping.source, mapping.stream) == VOLUNTEERS:  # versions superseded, a row broken
                landed = con.execute("SELECT count(*) FROM read_parquet($files)", {"files": files}).fetchone()[0]
                assert landed > len(one_query)


def _identities(settings, mapping) -> list[tuple[str, str]]:
    """(row id, source key) of every landed row of the stream, from its identities' parts."""
    from pipelines.staging.extract import connect, load_identities

    con = connect(settings)
    try:
        load_identities(con, mapping, settings, "identities")
        return sorted(con.execute("SELECT id, source_key FROM identities").fetchall())
    finally:
        con.close()


def test_identities_of_a_page_that_changed_are_read_again(tmp_path):
    """Pages are never rewritten; if one were, nothing the cache holds is trusted."""
    import duckdb

    from pipelines.schemas import mappings_for_table
    from pipelines.staging.extract import identities_dir
    from tests.staging.rawpages import national_volunteer, resident_id

    settings = settings_for(tmp_path / "data")
    number = resident_id("52010219900307123")
    mapping = next(m for m in mappings_for_table("volunteers") if (m.source, m.stream) == VOLUNTEERS)

    def identities() -> list:
        return _identities(settings, mapping)

    land(settings.data_dir, *VOLUNTEERS, [national_volunteer(f"000{i}", number) for i in range(1, 3)])
    assert identities() == [("0001", "V0001"), ("0002", "V0002")]
    parts = identities_dir(settings, mapping)
    assert len(list(parts.glob("part-*.parquet"))) == 1
    land(settings.data_dir, *VOLUNTEERS, [national_volunteer("0003", number)], sync_id="sync-2")
    assert identities() == [("0001", "V0001"), ("0002", "V0002"), ("0003", "V0003")]  # kept + new page
    assert len(list(parts.glob("part-*.parquet"))) == 2  # the new page's part added
    assert identities() == [("0001", "V0001"), ("0002", "V0002"), ("0003", "V0003")]  # nothing new
    # the first page rewritten by hand: another row in it
    land(settings.data_dir, *VOLUNTEERS, [national_volunteer("0009", number)])
    assert identities() == [("0003", "V0003"), ("0009", "V0009")]

    def kept_rows() -> int:
        return duckdb.connect().execute("SELECT count(*) FROM read_parquet(?)",
                                        [str(parts / "part-*.parquet")]).fetchone()[0]
    assert kept_rows() == 2 and len(list(parts.glob("part-*.parquet"))) == 2
    # a part that cannot be read (a disk fault, a hand edit) is dropped and its pages read again
    for part in parts.glob("part-*.parquet"):
        part.write_bytes(b"not parquet")
    assert identities() == [("0003", "V0003"), ("0009", "V0009")]
    assert kept_rows() == 2


def test_a_part_written_before_the_change_time_was_kept_is_read_again(tmp_path):
    """The dedup orders one page's versions of an id by change time (session 5): a part of
    identities written before it kept the change time would fail every staging; it is
    dropped and its pages read again."""
    import pyarrow.parquet as pq

    from pipelines.schemas import mappings_for_table
    from pipelines.staging.extract import identities_dir
    from tests.staging.rawpages import national_volunteer, resident_id

    settings = settings_for(tmp_path / "data")
    mapping = next(m for m in mappings_for_table("volunteers") if (m.source, m.stream) == VOLUNTEERS)
    land(settings.data_dir, *VOLUNTEERS, [national_volunteer("0001", resident_id("52010219900307123"))])
    assert _identities(settings, mapping) == [("0001", "V0001")]
    (part,) = identities_dir(settings, mapping).glob("part-*.parquet")
    pq.write_table(pq.read_table(part).drop_columns(["updated_utc"]), part)  # as an older run wrote it
    assert _identities(settings, mapping) == [("0001", "V0001")]
    (part,) = identities_dir(settings, mapping).glob("part-*.parquet")
    assert "updated_utc" in pq.read_metadata(part).schema.names


def test_a_part_is_kept_by_its_folders_time_once_they_have_settled(tmp_path):
    """A part names the sync folders it holds beside it: page by page while a folder is
    fresh, by the folder's time alone once it has settled (so the next stagings look at no
    page of it); a part without that file is read again, never trusted."""
    import os
    import time

    from pipelines.landing import SETTLED_NS
    from pipelines.schemas import mappings_for_table
    from pipelines.staging.extract import identities_dir
    from tests.staging.rawpages import national_volunteer, resident_id

    settings = settings_for(tmp_path / "data")
    number = resident_id("52010219900307123")
    mapping = next(m for m in mappings_for_table("volunteers") if (m.source, m.stream) == VOLUNTEERS)
    parts = identities_dir(settings, mapping)

    def identities() -> list:
        return [row_id for row_id, _ in _identities(settings, mapping)]

    def held() -> list:
        return [json.loads(path.read_text()) for path in sorted(parts.glob("part-*.json"))]

    land(settings.data_dir, *VOLUNTEERS, [national_volunteer(f"000{i}", number) for i in (1, 2)])
    assert identities() == ["0001", "0002"]
    [[(folder, modified, states)]] = held()
    assert [state[0] for state in states] == ["page-000001.parquet"]  # fresh: page by page
    past = time.time_ns() - 10 * SETTLED_NS
    os.utime(folder, ns=(past, past))
    assert identities() == ["0001", "0002"]
    assert held() == [[[folder, past, None]]]  # settled: its time alone from now on
    first_part = next(parts.glob("part-*.parquet"))

    land(settings.data_dir, *VOLUNTEERS, [national_volunteer("0003", number)], sync_id="sync-2")
    assert identities() == ["0001", "0002", "0003"]
    assert first_part.exists() and len(held()) == 2  # kept, and a part for the new folder

    first_part.with_suffix(".json").unlink()  # a run killed between the part and its folders
    assert identities() == ["0001", "0002", "0003"]
    assert not first_part.exists() and len(held()) == 2 == len(list(parts.glob("part-*.parquet")))


def test_a_merge_in_a_data_dir_of_any_name(tmp_path):
    """The merge's own SQL (ledger, identities, staged file) takes paths as parameters: a
    DATA_DIR with quotes, brackets and a star is read as the folder it is, not a glob."""
    from tests.staging.rawpages import national_volunteer, resident_id
    from tests.test_sql_paths import HOSTILE_FOLDER

    settings = settings_for(tmp_path / HOSTILE_FOLDER)
    number = resident_id("52010219900307123")
    land(settings.data_dir, *VOLUNTEERS, [national_volunteer(f"000{i}", number) for i in range(1, 4)])
    stage_table("volunteers", settings, FIRST)
    land(settings.data_dir, *VOLUNTEERS, [national_volunteer("0004", number)], sync_id="sync-2",
         fetched_at=datetime(2026, 7, 2, tzinfo=UTC))
    merged = merge_stage("volunteers", settings, AFTER_CHANGE)
    assert merged.incremental and merged.restaged == 1 and merged.rows == 4 and merged.balanced()


def test_a_merge_follows_rows_that_move_between_source_keys(tmp_path):
    """A merge dedups only the source keys the new pages touch: the keys their rows carry and
    the keys earlier versions of the same row ids carried. A row that moves to another key
    changes both keys' staged rows (and version counts), while a key it never carried keeps
    its staged row unread; the merge still equals a full staging of the same pages."""
    from tests.staging.rawpages import national_volunteer, resident_id

    number = resident_id("52010219900307123")

    def row(row_id: str, key: str, **fields) -> dict:
        return national_volunteer(row_id, number, albp0029=key, **fields)

    merged_settings = settings_for(tmp_path / "merged")
    land(merged_settings.data_dir, *VOLUNTEERS, [
        row("0001", "VA"), row("0002", "VA"),  # an account re-created at the source: 0002 wins VA
        row("0003", "VB"), row("0004", "VC"),
        row("0005", "VD"), row("0006", "VD", isdelete=1),  # the live row wins VD
        *(row(f"00{n}", f"VK{n}") for n in range(10, 16)),  # keys no new page touches
    ])
    first = stage_table("volunteers", merged_settings, FIRST)
    assert first.rows == 10 and first.superseded_duplicates == 2
    land(merged_settings.data_dir, *VOLUNTEERS, [
        row("0002", "VB", updated_at="2026-06-02T10:00:00+08:00"),  # moves: VA keeps 0001 alone
        row("0005", "VD", isdelete=1, updated_at="2026-06-02T10:00:00+08:00"),
    ], sync_id="sync-2", fetched_at=datetime(2026, 7, 2, tzinfo=UTC))
    full_settings = settings_for(tmp_path / "full")
    shutil.copytree(merged_settings.data_dir, full_settings.data_dir)
    relocate_ledgers(merged_settings.data_dir, full_settings.data_dir)

    merged = merge_stage("volunteers", merged_settings, AFTER_CHANGE)
    full = stage_table("volunteers", full_settings, AFTER_CHANGE)
    assert merged.incremental and full.rows == 10
    assert pq.read_table(merged.path).equals(pq.read_table(full.path))
    assert merged.accounting == full.accounting and merged.balanced()
    ledgers = ledgers_of("volunteers", merged_settings, full_settings)
    pd.testing.assert_frame_equal(*ledgers)
    staged = ledgers[0].set_index("source_key")
    assert staged.loc["VA", "id"] == "0001" and staged.loc["VA", "key_versions"] == 1
    assert staged.loc["VB", "id"] == "0002" and staged.loc["VB", "key_versions"] == 2
    # VA (0001: unchanged itself, its key touched by 0002's move), VB and VD restaged; the rest kept
    assert merged.restaged == 3


def test_a_re_pull_of_every_row_is_staged_in_full(tmp_path, caplog):
    """A re-pull (full_refresh, the weekly reconciliation) lands every row again: each staged
    row's landed version changes, so a merge would restage them all. The pages' footers say
    so before the merge's dedup runs, and the merge's own count (before it fetches a row)
    says so when it is called alone; either way the table is staged in full. A row landed
    again alone is still merged."""
    from pipelines.landing import sync_folders
    from pipelines.staging.incremental import IncrementalUnavailable, stage_table_or_merge
    from tests.staging.rawpages import national_volunteer, resident_id

    def folders() -> list:
        return [sync_folders(settings.data_dir, *VOLUNTEERS)]

    def stage_since(before: list):
        return stage_table_or_merge("volunteers", settings, AFTER_CHANGE, base_fingerprint="b", folders=folders(),
                                    previous=_record_of(settings, "volunteers", before))

    settings = settings_for(tmp_path / "data")
    number = resident_id("52010219900307123")
    rows = [national_volunteer(f"000{i}", number) for i in range(1, 5)]
    land(settings.data_dir, *VOLUNTEERS, rows)
    stage_table("volunteers", settings, FIRST)
    before = folders()
    land(settings.data_dir, *VOLUNTEERS, rows, sync_id="re-pull", fetched_at=datetime(2026, 7, 2, tzinfo=UTC))
    with pytest.raises(IncrementalUnavailable, match="^4 of 4 rows changed$"):
        merge_stage("volunteers", settings, AFTER_CHANGE)
    caplog.set_level("INFO", logger="pipelines.staging")
    full = stage_since(before)
    assert not full.incremental and full.rows == 4 and full.balanced()
    # said in the log and, through the result, in the staged asset's metadata
    assert full.why_in_full == "a re-pull: 4 rows landed since the last staging, which staged or quarantined 4"
    assert full.why_in_full in caplog.text

    before = folders()
    land(settings.data_dir, *VOLUNTEERS, rows[:1], sync_id="one-row", fetched_at=datetime(2026, 7, 3, tzinfo=UTC))
    merged = stage_since(before)
    assert merged.incremental and merged.restaged == 1 and merged.rows == 4 and merged.balanced()


def test_a_merge_stopped_before_its_quarantine_part_is_followed_by_a_full_staging(tmp_path, monkeypatch):
    """A merge writes the staged table, then the ledger (gathering the quarantine entries),
    then the quarantine part. Stopped between the last two, even with the last staging's
    record still at hand (the asset forgets it before staging), the next staging does not
    merge into files that do not belong together: it stages in full, and its outputs are a
    full staging's, the row quarantined by the change set included."""
    from pipelines.landing import sync_folders
    from pipelines.staging import incremental
    from tests.staging.rawpages import national_volunteer, resident_id

    def folders() -> list:
        return [sync_folders(settings.data_dir, *VOLUNTEERS)]

    settings = settings_for(tmp_path / "data")
    number = resident_id("52010219900307123")
    land(settings.data_dir, *VOLUNTEERS, [national_volunteer(f"{i:04}", number) for i in range(1, 11)])
    stage_table("volunteers", settings, FIRST)
    record = _record_of(settings, "volunteers", folders())
    land(settings.data_dir, *VOLUNTEERS,
         [national_volunteer("0011", number), {**national_volunteer("0002", number), "updated_at": "not a time"}],
         sync_id="sync-2", fetched_at=datetime(2026, 7, 2, tzinfo=UTC))
    reference = tmp_path / "reference"
    shutil.copytree(settings.data_dir, reference)

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt("stopped between the ledger and the quarantine part")

    with monkeypatch.context() as patched:
        patched.setattr(incremental, "_merge_quarantine", stopped)
        with pytest.raises(KeyboardInterrupt):
            incremental.stage_table_or_merge("volunteers", settings, AFTER_CHANGE, previous=record,
                                             base_fingerprint="b", folders=folders())
    assert len(pq.read_table(ledger_path(settings, "volunteers"))) == 11  # the new ledger is in place

    again = incremental.stage_table_or_merge("volunteers", settings, AFTER_CHANGE, previous=record,
                                             base_fingerprint="b", folders=folders())
    full = stage_table("volunteers", settings_for(reference), AFTER_CHANGE)
    assert not again.incremental and "changed since" in again.why_in_full
    assert again.quarantined == full.quarantined == 1 and again.balanced()
    assert pq.read_table(again.path).equals(pq.read_table(full.path))
    assert pq.read_table(quarantine_part_path(settings, "volunteers")).equals(
        pq.read_table(quarantine_part_path(settings_for(reference), "volunteers")))


def test_a_merge_into_a_merged_ledger_equals_a_full_staging(tmp_path):
    """A merged ledger is written as it was read (its page paths as dictionaries, no Arrow
    schema): the next merge reads it as a full staging's, and two merges in a row stage what
    a full staging of the same pages stages."""
    from tests.staging.rawpages import national_volunteer, resident_id

    settings = settings_for(tmp_path / "data")
    number = resident_id("52010219900307123")
    land(settings.data_dir, *VOLUNTEERS, [national_volunteer(f"{i:04}", number) for i in range(1, 11)])
    stage_table("volunteers", settings, FIRST)
    for night, rows in ((2, [national_volunteer("0011", number)]),
                        (3, [national_volunteer("0012", number), {**national_volunteer("0003", number),
                                                                  "updated_at": "not a time"}])):
        land(settings.data_dir, *VOLUNTEERS, rows, sync_id=f"sync-{night}",
             fetched_at=datetime(2026, 7, night, tzinfo=UTC))
        merged = merge_stage("volunteers", settings, AFTER_CHANGE)
        assert merged.incremental and merged.balanced()
    assert pq.read_schema(ledger_path(settings, "volunteers")).field("filename").type == "string"

    reference = settings_for(tmp_path / "reference")
    shutil.copytree(settings.data_dir, reference.data_dir)
    full = stage_table("volunteers", reference, AFTER_CHANGE)
    assert (merged.rows, merged.quarantined, merged.accounting) == (11, 1, full.accounting) == (
        full.rows, full.quarantined, full.accounting)
    assert pq.read_table(merged.path).equals(pq.read_table(full.path))
    pd.testing.assert_frame_equal(*ledgers_of("volunteers", settings, reference))
