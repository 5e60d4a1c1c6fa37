"""What must hold after every resolution, with or without a sandbox truth to compare with.

The resolved assets' checks (assets/resolved.py) are these functions' counts; each is zero
when resolution is sound:

* `account_key_problems`: every staged account has exactly one key, every key a golden
  record, every golden record an account;
* `unexplained_key_changes`: an account whose key changed since the previous sync is
  explained by a merge or a split logged in this sync's key history;
* `service_count_problems`: every effective service record is counted exactly once, with
  its own hours (a record in both systems once, with the national hours), and every fact
  goes back to staged records.

Counts only: nothing here returns a name, a number or an id.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines import duck


ACCOUNT = ["source", "source_id"]
# the staged service columns service_count_problems reads
COUNT_COLUMNS = ["is_deleted", "source", "source_id", "is_effective", "national_record_id", "origin_log_id", "hours"]


def _accounts(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[ACCOUNT].astype("string")


def account_key_problems(
    staged: pd.DataFrame, source_map: pd.DataFrame, key: str, golden_keys: pd.Series
) -> dict[str, int]:
    """Accounts without a key or with several, map rows of no staged account, keys without a
    golden record and golden records without an account.

    Accounts and keys compare as text, a missing value equal to a missing value, as pandas'
    merge compares them. Where the map holds the staged accounts row for row (what resolution
    makes; `one_row_each_in_order` checks it), only the two sets of keys are compared; else one
    DuckDB query over Arrow views (pandas' merges and Python sets of a million keys were
    seconds at a million persons)."""
    staged_ids = [_text(staged[column]) for column in ACCOUNT]
    mapped_ids = [_text(source_map[column]) for column in ACCOUNT]
    if one_row_each_in_order(staged_ids, mapped_ids):
        return _key_problems_of_one_row_each(_text(source_map[key]), _text(golden_keys))
    return key_problems_by_query(staged, source_map, key, golden_keys)


def key_problems_by_query(
    staged: pd.DataFrame, source_map: pd.DataFrame, key: str, golden_keys: pd.Series
) -> dict[str, int]:
    """account_key_problems for any map: one DuckDB query."""
    con = duck.scratch()
    try:
        con.register("staged_accounts", pa.Table.from_pandas(_accounts(staged), preserve_index=False))
        mapped = source_map[ACCOUNT + [key]].astype("string").rename(columns={key: "key"})
        con.register("mapped", pa.Table.from_pandas(mapped, preserve_index=False))
        con.register("golden", pa.table({"key": pa.array(golden_keys.astype("string"), pa.string())}))
        same_account = "m.source IS NOT DISTINCT FROM a.source AND m.source_id IS NOT DISTINCT FROM a.source_id"
        counts = con.execute(f"""
            CREATE TEMP TABLE accounts AS SELECT DISTINCT source, source_id FROM staged_accounts;
            WITH per_account AS (
                SELECT count(m.key) AS keys, count(*) AS map_rows
                FROM accounts a LEFT JOIN mapped m ON {same_account}
                GROUP BY a.source, a.source_id
            )
            SELECT
                (SELECT count(*) FILTER (WHERE keys = 0) FROM per_account),
                (SELECT count(*) FILTER (WHERE map_rows > 1) FROM per_account),
                (SELECT count(*) FROM mapped m WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE {same_account})),
                (SELECT count(*) FROM (SELECT key FROM mapped WHERE key IS NOT NULL EXCEPT SELECT key FROM golden)),
                (SELECT count(*) FROM (SELECT key FROM golden WHERE key IS NOT NULL EXCEPT SELECT key FROM mapped))
        """).fetchone()
    finally:
        con.close()
    names = ["accounts_without_key", "accounts_with_several_keys", "mapped_accounts_not_staged",
             "keys_without_golden_record", "golden_records_without_account"]
    return {name: int(count) for name, count in zip(names, counts)}


def _text(values: pd.Series) -> pa.ChunkedArray:
    """A column as Arrow large text, missing values null, as `_accounts` types it (no copy
    of a column of Arrow strings)."""
    if values.dtype == object or not pd.api.types.is_string_dtype(values.dtype):
        values = values.astype("string")
    array = pa.array(values, from_pandas=True)
    array = array if isinstance(array, pa.ChunkedArray) else pa.chunked_array([array])
    return array if array.type == pa.large_string() else array.cast(pa.large_string())


def one_row_each_in_order(staged_ids: list[pa.ChunkedArray], mapped_ids: list[pa.ChunkedArray]) -> bool:
    """Whether the map holds the staged accounts, row for row: (source, source_id) of both,
    as text, equal at every row, none missing, and strictly increasing (so each account is
    there once). Resolution writes its maps so (one row per prepared account, in the staged
    order); this is checked on the values, never assumed."""
    if len(staged_ids[0]) != len(mapped_ids[0]):
        return False
    if any(column.null_count for column in staged_ids + mapped_ids):
        return False
    if not all(pc.all(pc.equal(a, b)).as_py() in (True, None) for a, b in zip(staged_ids, mapped_ids)):
        return False
    first, second = staged_ids
    if len(first) < 2:
        return True
    increasing = pc.or_(pc.greater(first[1:], first[:-1]),
                        pc.and_(pc.equal(first[1:], first[:-1]), pc.greater(second[1:], second[:-1])))
    return bool(pc.all(increasing).as_py())


def _key_problems_of_one_row_each(keys: pa.Array, golden_keys: pa.Array) -> dict[str, int]:
    """account_key_problems where the map holds each staged account once (one_row_each_in_order):
    then no account has several rows or none, and no map row is of an account not staged,
    so what is left to count are the missing keys and the two sets of keys. The same counts as
    the general query's, without its joins over every account (tests/resolve/test_invariants.py
    holds both to the same answers)."""
    con = duck.scratch()
    try:
        con.register("mapped_keys", pa.table({"key": keys}))
        con.register("golden", pa.table({"key": golden_keys}))
        without_golden, without_account = con.execute("""
            SELECT (SELECT count(*) FROM (SELECT key FROM mapped_keys WHERE key IS NOT NULL EXCEPT SELECT key FROM golden)),
                   (SELECT count(*) FROM (SELECT key FROM golden WHERE key IS NOT NULL EXCEPT SELECT key FROM mapped_keys))
        """).fetchone()
    finally:
        con.close()
    return {
        "accounts_without_key": keys.null_count,
        "accounts_with_several_keys": 0,
        "mapped_accounts_not_staged": 0,
        "keys_without_golden_record": int(without_golden),
        "golden_records_without_account": int(without_account),
    }


def unexplained_key_changes(
    previous_map: pd.DataFrame | None, current_map: pd.DataFrame, key: str, history: pd.DataFrame
) -> dict[str, int]:
    """Accounts whose key moved since the previous sync, and those of them no event of this
    sync's `history` (key, event, related_key) explains: `merged_into` and `moved_to` name
    (old key, new key), `split_from` names (new key, old key)."""
    if previous_map is None or not len(previous_map):
        return {"accounts_with_new_key": 0, "unexplained_key_changes": 0}
    before = previous_map.assign(**_accounts(previous_map))[ACCOUNT + [key]]
    after = current_map.assign(**_accounts(current_map))[ACCOUNT + [key]]
    moved = before.merge(after, on=ACCOUNT, suffixes=("_before", "_after"))
    moved = moved.loc[moved[f"{key}_before"] != moved[f"{key}_after"]]
    forward = history["event"].isin(["merged_into", "moved_to"])
    backward = history["event"] == "split_from"
    logged = set(zip(history.loc[forward, "key"], history.loc[forward, "related_key"])) | set(
        zip(history.loc[backward, "related_key"], history.loc[backward, "key"])
    )
    explained = sum(
        (old, new) in logged for old, new in zip(moved[f"{key}_before"], moved[f"{key}_after"])
    )
    return {
        "accounts_with_new_key": int(len(moved)),
        "unexplained_key_changes": int(len(moved) - explained),
    }


def _register_count_input(con: duckdb.DuckDBPyConnection, staged_services: pd.DataFrame | Path) -> None:
    """View `staged`: COUNT_COLUMNS and each row's position (`rn`), from a frame or from the
    staged Parquet file (DuckDB then reads the columns itself, in pieces: no copy in pandas)."""
    if isinstance(staged_services, Path):
        records = con.read_parquet(str(staged_services), file_row_number=True)
        records.project(f"file_row_number AS rn, {', '.join(COUNT_COLUMNS)}").create_view("staged")
        return
    table = pa.Table.from_pandas(staged_services[COUNT_COLUMNS], preserve_index=False)
    con.register("staged", table.append_column("rn", pa.array(np.arange(len(staged_services)))))


def service_count_problems(staged_services: pd.DataFrame | Path, facts: pd.DataFrame) -> dict[str, int | float]:
    """Each effective staged record counted exactly once, with its own hours, and each service
    once: no two facts count records that name each other.

    `staged_services`: the staged records (COUNT_COLUMNS), or their Parquet file. Counted by
    DuckDB over Arrow views of both (at a million persons the pandas copies of the staged
    columns were the step's peak). A record's id compares as text; a missing id names no
    record; a record's own hours are those of its first live row, and it is effective when
    any live row of it is. The records are made once (one read of the staged file), and each
    system's facts are set beside its records in one join, which finds the facts naming no
    record, the records no fact counts and the other hours together (a query per count, each
    reading and joining the staged file again, took 2.5 times as long at a million persons).
    Copies of one service linked to more than one other copy (a log pushed up twice, two logs
    naming one record) are counted by one fact: an effective national record among them that
    no fact counts is not a problem, two facts counting linked copies is."""
    # a database of its own (not duck.scratch): the view `staged` of the file is made by
    # create_view, which DuckDB keeps in the database, not in the connection
    con = duck.connect()
    try:
        _register_count_input(con, staged_services)
        con.register("facts_frame", pa.Table.from_pandas(
            facts[["national_source_id", "provincial_source_id", "hours"]], preserve_index=False))
        con.execute("""
            CREATE TEMP VIEW live AS
            SELECT rn, CAST(source AS VARCHAR) AS source, CAST(source_id AS VARCHAR) AS source_id,
                   coalesce(CAST(is_effective AS BOOLEAN), false) AS effective,
                   CAST(national_record_id AS VARCHAR) AS national_record_id,
                   CAST(origin_log_id AS VARCHAR) AS origin_log_id, CAST(hours AS DOUBLE) AS hours
            FROM staged WHERE NOT coalesce(CAST(is_deleted AS BOOLEAN), false);
            CREATE TEMP VIEW f AS
            SELECT CAST(national_source_id AS VARCHAR) AS national, CAST(provincial_source_id AS VARCHAR) AS provincial,
                   CAST(hours AS DOUBLE) AS hours
            FROM facts_frame;
            CREATE TEMP TABLE records AS  -- one row per record (all those of a missing id, one)
            SELECT source, source_id, arg_min_null(hours, rn) AS hours, bool_or(effective) AS effective
            FROM live GROUP BY source, source_id;
            CREATE TEMP TABLE linked AS  -- live records that name each other
            SELECT DISTINCT national, provincial FROM (
                SELECT national_record_id AS national, source_id AS provincial FROM live
                WHERE source = 'provincial' AND national_record_id IS NOT NULL
                UNION ALL
                SELECT source_id, origin_log_id FROM live WHERE source = 'national' AND origin_log_id IS NOT NULL
            ) l
            WHERE national IN (SELECT source_id FROM records WHERE source = 'national')
              AND provincial IN (SELECT source_id FROM records WHERE source = 'provincial');
        """)
        problems: dict[str, int] = {}
        uncounted, other_hours = {}, 0
        for source in ("national", "provincial"):
            # a fact's hours are the national record's where it names one
            own_hours = "true" if source == "national" else "f.national IS NULL"
            unknown, uncounted[source], other, twice = con.execute(f"""
                SELECT count(*) FILTER (WHERE r.is_record IS NULL),
                       count(*) FILTER (WHERE f.{source} IS NULL AND r.effective),
                       count(*) FILTER (WHERE r.is_record AND f.{source} IS NOT NULL AND {own_hours}
                                        AND abs(f.hours - r.hours) > 1e-9 AND NOT isnan(f.hours - r.hours)),
                       count(f.{source}) - count(DISTINCT f.{source})
                FROM (SELECT source_id, hours, effective, true AS is_record FROM records WHERE source = $source) r
                FULL JOIN (SELECT * FROM f WHERE {source} IS NOT NULL) f ON r.source_id = f.{source}
            """, {"source": source}).fetchall()[0]
            problems[f"facts_naming_unknown_{source}_records"] = unknown
            problems[f"{source}_records_counted_twice"] = twice
            other_hours += other
        # A national record among more than two linked copies is counted by one of them only:
        # asked only when an effective national record is counted by no fact (at a million
        # persons, none is).
        problems["effective_national_records_not_counted"] = 0 if not uncounted["national"] else con.execute("""
            WITH national_links AS (SELECT national, count(*) AS links FROM linked GROUP BY national),
                 provincial_links AS (SELECT provincial, count(*) AS links FROM linked GROUP BY provincial),
                 grouped AS (
                    SELECT DISTINCT l.national FROM linked l
                    JOIN national_links n USING (national) JOIN provincial_links p USING (provincial)
                    WHERE n.links > 1 OR p.links > 1)
            SELECT count(*) FROM records r
            WHERE r.source = 'national' AND r.effective
              AND NOT EXISTS (SELECT 1 FROM f WHERE f.national = r.source_id)
              AND NOT EXISTS (SELECT 1 FROM grouped g WHERE g.national = r.source_id)
        """).fetchall()[0][0]
        # A provincial record counts on its own only where no national copy decides for it (a
        # missing national_record_id matches a missing national id, as pandas' isin does):
        # asked only when an effective provincial record is counted by no fact (at a million
        # persons, none is).
        problems["effective_provincial_records_not_counted"] = 0 if not uncounted["provincial"] else con.execute("""
            WITH uncounted AS (
                SELECT source_id FROM records r WHERE source = 'provincial' AND effective
                  AND NOT EXISTS (SELECT 1 FROM f WHERE f.provincial = r.source_id)
            )
            SELECT count(*) FROM (
                SELECT DISTINCT p.source_id FROM live p
                SEMI JOIN uncounted u ON p.source_id IS NOT DISTINCT FROM u.source_id
                WHERE p.source = 'provincial' AND p.effective
                  AND NOT EXISTS (SELECT 1 FROM live n WHERE n.source = 'national'
                                  AND n.source_id IS NOT DISTINCT FROM p.national_record_id)
                  AND NOT EXISTS (SELECT 1 FROM live n WHERE n.source = 'national' AND n.origin_log_id = p.source_id)
            )
        """).fetchall()[0][0]
        problems["facts_with_other_hours"] = other_hours
        problems["services_counted_twice"] = con.execute("""
            SELECT count(*) FROM linked l
            WHERE EXISTS (SELECT 1 FROM f WHERE f.national = l.national)
              AND EXISTS (SELECT 1 FROM f WHERE f.provincial = l.provincial)
              AND NOT EXISTS (SELECT 1 FROM f WHERE f.national = l.national AND f.provincial = l.provincial)
        """).fetchall()[0][0]
    finally:
        con.close()
    return {name: int(count) for name, count in problems.items()}
