"""Service records: one fact row per service actually given, counted once.

A provincial log and a national record are one service when the log's nationalRecordId is the
record's id or the record's origin names the log (contract). Such a service takes the
national record's hours, date and project (source 'both'). Copies linked through each other (a
log pushed up twice, two logs naming one record) are one service too, made by one of their
links (`tangled_choice`); the other copies make no fact and are counted in the summary
(`service_copies`). Only services that count are kept: the national copy decides where there
is one (it is the record the hours come from), the provincial copy otherwise. Likely
duplicates without a reference (same person, same day, same team, same hours) are flagged in
service_duplicate_candidates with their evidence, never merged.

Incremental (a nightly change set): a fact is a function of its records (one, or two paired),
their pairing, and what its records look up: the volunteer and team keys of their accounts,
their project's category and team key. With the previous sync's facts and state
(`ServiceState`: a fingerprint of every prepared record, the pairing, the projects), only the
records for which one of those changed, and their partners, are resolved again; every other
fact is carried over as it was. The caller (store.py) hands the previous state only when it is
the one the previous facts were computed with, by the same code; anything else is a full run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines import duck
from pipelines.resolve.clustering import connected_components
from pipelines.resolve.vectorized import hashed_keys, is_in, mapped, positions, sorted_by, with_full_run_types

SERVICE_COLUMNS = [
    "source", "source_id", "updated_at", "is_deleted", "volunteer_source_id", "project_source_id",
    "org_source_id", "service_date", "hours", "is_effective", "national_record_id", "origin_log_id",
]
# service records per block of facts (_facts)
FACT_BLOCK_RECORDS = 500_000
# what the facts take from a record of either side, once the two sides are paired
SIDE_COLUMNS = [
    "source_id", "volunteer_source_id", "project_source_id", "org_source_id", "service_date", "hours", "is_effective",
]
# the columns of a staged project the facts take (category, and the team of a record naming none)
PROJECT_COLUMNS = ["source", "source_id", "category", "org_source_id"]
FACT_COLUMNS = [
    "service_key", "volunteer_key", "org_key", "project_key", "project_source", "project_source_id",
    "service_date", "hours", "category", "source", "national_source_id", "provincial_source_id",
]
DUPLICATE_COLUMNS = [
    "left_service_key", "right_service_key", "volunteer_key", "org_key", "service_date", "hours",
    "left_source", "right_source", "left_national_source_id", "left_provincial_source_id",
    "right_national_source_id", "right_provincial_source_id", "evidence",
]

# a copy of a service (source, source_id), the pair of records its fact is made of, and that
# fact's key (null when the service counts in neither system)
COPY_COLUMNS = ["source", "source_id", "national_source_id", "provincial_source_id", "service_key"]

# a prepared record's columns its fingerprint covers: every column a fact can take from it
FINGERPRINT_COLUMNS = [c for c in SERVICE_COLUMNS if c not in ("source", "source_id")]


@dataclass
class ServiceState:
    """What one sync's services hand the next (DATA_DIR/state/resolve/): as made, Arrow
    tables and a frame; as read back, their files (or, in tests, frames)."""

    records: pa.Table | pd.DataFrame | Path  # source, source_id, fingerprint (of FINGERPRINT_COLUMNS, prepared)
    pairs: pa.Table | pd.DataFrame | Path  # national_source_id, provincial_source_id (_pair)
    projects: pd.DataFrame | Path  # PROJECT_COLUMNS, one row per (source, source_id) as looked up


@dataclass
class PreviousServices:
    """The previous sync's facts and state, and the accounts whose key changed since."""

    facts: pd.DataFrame | Path  # a file is read in part: only the facts carried over
    state: ServiceState  # its parts may be their files (DuckDB reads them)
    changed_volunteer_accounts: pd.DataFrame  # source, source_id: key new, gone or changed
    changed_org_accounts: pd.DataFrame


@dataclass
class ServiceResolution:
    facts: pd.DataFrame
    duplicates: pd.DataFrame
    summary: dict = field(default_factory=dict)
    state: ServiceState | None = None
    # how the facts were made: "full" or "incremental", and how many records were resolved
    work: dict = field(default_factory=dict)
    # records of a service another pair stands for (COPY_COLUMNS): no fact of their own
    copies: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=COPY_COLUMNS))


def opaque_key(prefix: str, values: pd.Series) -> pd.Series:
    """prefix + 12 hex of SHA-256 of each value (service and project keys)."""
    return hashed_keys(prefix, values)


def service_keys(national_ids: pd.Series, provincial_ids: pd.Series) -> pd.Series:
    """The key of the fact each pair of records makes (either may be missing): keyed by the
    provincial log when there is one, as logs exist before they are pushed up."""
    basis = ("provincial:" + provincial_ids.astype("string")).where(
        provincial_ids.notna(), "national:" + national_ids.astype("string"))
    return opaque_key("S", basis.astype(str))


# Each staged row typed as the facts take it: ids as text, missing flags false, a deleted record
# never effective, the service date a timestamp while records are paired and copied (a Python
# date per row is ~10x the memory; the facts take calendar dates). `staged_in` holds
# SERVICE_COLUMNS and `rn`, each row's place in the staged order. A record staged twice keeps
# its last row (_register_prepared).
PREPARED_SQL = """
    CREATE TEMP TABLE prepared AS
    SELECT rn, source, CAST(source_id AS VARCHAR) AS source_id, updated_at,
           coalesce(CAST(is_deleted AS BOOLEAN), false) AS is_deleted,
           CAST(volunteer_source_id AS VARCHAR) AS volunteer_source_id,
           CAST(project_source_id AS VARCHAR) AS project_source_id,
           CAST(org_source_id AS VARCHAR) AS org_source_id,
           TRY_CAST(service_date AS TIMESTAMP) AS service_date,
           CAST(hours AS DOUBLE) AS hours,
           coalesce(CAST(is_effective AS BOOLEAN), false)
               AND NOT coalesce(CAST(is_deleted AS BOOLEAN), false) AS is_effective,
           CAST(national_record_id AS VARCHAR) AS national_record_id,
           CAST(origin_log_id AS VARCHAR) AS origin_log_id
    FROM staged_in
"""
# (national_source_id, provincial_source_id, method) of live records that name each other
# (contract: either reference suffices). A reference to a record that is not there
# (quarantined, not yet landed, deleted at its source) links nothing: the live copy stands
# alone, counted as its own system's (a log deleted after it was pushed leaves the national
# record, a national record deleted leaves the approved log; `invariants.service_count_problems`
# counts the same way). A pair named both ways keeps the first method by name.
LINKS_SQL = """
    CREATE TEMP TABLE links AS
    WITH named AS (
        SELECT national_record_id AS national_source_id, source_id AS provincial_source_id,
               'national_record_id' AS method
        FROM prepared WHERE source = 'provincial' AND national_record_id IS NOT NULL
        UNION ALL
        SELECT source_id, origin_log_id, 'origin'
        FROM prepared WHERE source = 'national' AND origin_log_id IS NOT NULL
    )
    SELECT national_source_id, provincial_source_id, min(method) AS method FROM named
    WHERE national_source_id IN (SELECT source_id FROM prepared WHERE source = 'national' AND NOT is_deleted)
      AND provincial_source_id IN (SELECT source_id FROM prepared WHERE source = 'provincial' AND NOT is_deleted)
    GROUP BY national_source_id, provincial_source_id
"""
# The links of records linked more than once (a log pushed up twice, two logs naming one
# record): each such link is in a group of copies larger than a pair, and only those are.
TANGLED_SQL = """
    WITH national_twice AS (
        SELECT national_source_id FROM links GROUP BY national_source_id HAVING count(*) > 1
    ), provincial_twice AS (
        SELECT provincial_source_id FROM links GROUP BY provincial_source_id HAVING count(*) > 1
    )
    SELECT l.national_source_id, l.provincial_source_id,
           n.is_effective AS national_effective, p.is_effective AS provincial_effective
    FROM links l
    JOIN prepared n ON n.source = 'national' AND n.source_id = l.national_source_id
    JOIN prepared p ON p.source = 'provincial' AND p.source_id = l.provincial_source_id
    WHERE l.national_source_id IN (SELECT national_source_id FROM national_twice)
       OR l.provincial_source_id IN (SELECT provincial_source_id FROM provincial_twice)
"""


def tangled_choice(tangled: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Of the links in groups of copies larger than a pair (national_source_id,
    provincial_source_id, national_effective, provincial_effective): the one link each group's
    fact is made of, and the group's other records (source, source_id, and the
    national_source_id and provincial_source_id of that link), copies of its service.

    Copies linked through each other are one service (the contract's "same service" holds
    between any two of them through the links), so a group makes one fact at most. Its link
    is the first with an effective national record, else with an effective log, else any, by
    ids (national first): a push retried after its first copy was rejected counts by the
    approved copy. The national copy then decides whether the service counts, as for a pair."""
    pair_columns = ["national_source_id", "provincial_source_id"]
    if tangled.empty:
        return (pd.DataFrame({c: pd.Series(dtype="string") for c in pair_columns}),
                pd.DataFrame({c: pd.Series(dtype="string") for c in ("source", "source_id", *pair_columns)}))
    # every record of the links, each once (the two systems' ids may coincide)
    records = pd.DataFrame({
        "source": ["national"] * len(tangled) + ["provincial"] * len(tangled),
        "source_id": pd.concat([tangled["national_source_id"], tangled["provincial_source_id"]], ignore_index=True),
    })
    named = records["source"] + ":" + records["source_id"]
    codes, _ = pd.factorize(named)
    national_at, provincial_at = codes[:len(tangled)], codes[len(tangled):]
    group_of = connected_components(codes.max() + 1, national_at, provincial_at)
    ranked = tangled.assign(
        group=group_of[national_at],
        rank=np.select([tangled["national_effective"].fillna(False).to_numpy(bool),
                        tangled["provincial_effective"].fillna(False).to_numpy(bool)], [0, 1], 2),
    ).sort_values(["group", "rank", *pair_columns], kind="stable")
    chosen = ranked.drop_duplicates("group")[["group", *pair_columns]]
    in_chosen = pd.concat([chosen[pair_columns[0]].radd("national:"), chosen[pair_columns[1]].radd("provincial:")])
    copies = (records.assign(group=group_of[codes]).loc[~named.isin(in_chosen).to_numpy()]
              .drop_duplicates(["source", "source_id"]).merge(chosen, on="group").drop(columns="group"))
    return chosen[pair_columns].reset_index(drop=True), copies.astype("string").reset_index(drop=True)


def _pair(con: duckdb.DuckDBPyConnection) -> None:
    """Tables `now_pairs` (national_source_id, provincial_source_id, method: the records each
    fact of both systems is made of) and `copies` (source, source_id: live records of a service
    another pair stands for, which make no fact; national_source_id, provincial_source_id:
    that pair) from `prepared`."""
    con.execute(LINKS_SQL)
    con.execute(f"CREATE TEMP TABLE tangled AS {TANGLED_SQL}")
    chosen, copies = tangled_choice(_fetched(con, "SELECT * FROM tangled"))
    con.register("tangled_chosen", pa.Table.from_pandas(chosen, preserve_index=False))
    con.register("copies_found", pa.Table.from_pandas(copies, preserve_index=False))
    con.execute("CREATE TEMP TABLE copies AS SELECT * FROM copies_found")
    con.execute("""
        CREATE TEMP TABLE now_pairs AS
        SELECT * FROM (
            SELECT * FROM links ANTI JOIN tangled USING (national_source_id, provincial_source_id)
            UNION ALL
            SELECT * FROM links SEMI JOIN tangled_chosen USING (national_source_id, provincial_source_id)
        ) ORDER BY national_source_id, provincial_source_id
    """)
    for name in ("tangled_chosen", "copies_found"):
        con.unregister(name)


def _register_prepared(con: duckdb.DuckDBPyConnection, staged_services: pd.DataFrame | Path) -> int:
    """Table `prepared` (PREPARED_SQL) of the staged records: from their Parquet file, which
    DuckDB reads itself (millions of records never held as a frame), or from a frame.
    Returns how many records there are."""
    if isinstance(staged_services, Path):
        present = set(pq.read_schema(staged_services).names)
        records = con.read_parquet(str(staged_services), file_row_number=True)
        columns = [c if c in present else f"NULL AS {c}" for c in SERVICE_COLUMNS]
        records.project(f"file_row_number AS rn, {', '.join(columns)}").create_view("staged_in")
    else:
        frame = pd.DataFrame({c: staged_services[c] if c in staged_services else pd.NA for c in SERVICE_COLUMNS},
                             index=staged_services.index)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        con.register("staged_in", table.append_column("rn", pa.array(np.arange(len(frame), dtype=np.int64))))
    con.execute(PREPARED_SQL)
    # staging keeps one row per record, so this finds none: counted first, as the window that
    # drops them costs a sort of every record
    repeated = con.execute("SELECT count(*) FROM (SELECT 1 FROM prepared GROUP BY source, source_id "
                           "HAVING count(*) > 1)").fetchall()[0][0]
    if repeated:
        con.execute("""DELETE FROM prepared WHERE rn IN (SELECT rn FROM prepared QUALIFY
                       row_number() OVER (PARTITION BY source, source_id ORDER BY rn DESC) > 1)""")
    _pair(con)
    # whether a record is a copy of a service another pair stands for is part of what its fact
    # depends on: a record that becomes one (or stops being one) is resolved again
    values = ", ".join(FINGERPRINT_COLUMNS)
    con.execute(f"""CREATE TEMP TABLE now_fp AS
                    SELECT source, source_id, hash({values}, c.source_id IS NOT NULL) AS fingerprint
                    FROM prepared LEFT JOIN copies c USING (source, source_id) ORDER BY rn""")
    return con.execute("SELECT count(*) FROM prepared").fetchall()[0][0]


def _fetched(con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None) -> pd.DataFrame:
    """A query's rows as pandas, its text columns typed "string" (as the lookups and merges of
    the facts expect them, whatever pandas would infer)."""
    frame = con.sql(sql, params=params).to_arrow_table().to_pandas()
    return frame.astype({column: "string" for column in frame.columns if pd.api.types.is_string_dtype(frame[column])})


def _side(con: duckdb.DuckDBPyConnection, source: str, only_dirty: bool) -> pd.DataFrame:
    """The prepared records of one side that the facts are made of (all, or those in table
    `dirty`; never a copy of a service another pair stands for), SIDE_COLUMNS, in the staged order."""
    dirty = "AND (source, source_id) IN (SELECT (source, source_id) FROM dirty)" if only_dirty else ""
    return _fetched(con, f"""SELECT {', '.join(SIDE_COLUMNS)} FROM prepared ANTI JOIN copies USING (source, source_id)
                             WHERE source = $source {dirty} ORDER BY rn""", {"source": source})


def _memoized(memo: dict | None, key: tuple, make):
    """make(), kept in `memo` under `key` (the blocks of one _facts call share the lookups'
    indexes: built once, not once per block)."""
    if memo is None:
        return make()
    if key not in memo:
        memo[key] = make()
    return memo[key]


def _key_of(source_map: pd.DataFrame, source: str, key_column: str, memo: dict | None = None) -> pd.Series:
    """source_id -> key_column of a source map's `source` accounts (the first row of an id)."""
    return _memoized(memo, ("key", id(source_map), source, key_column), lambda: source_map.loc[
        source_map["source"] == source].drop_duplicates("source_id").set_index("source_id")[key_column])


def _lookup(frame: pd.DataFrame, source: str, id_column: str, source_map: pd.DataFrame, key_column: str,
            memo: dict | None = None) -> pd.Series:
    """The key of (source, frame[id_column]) in a source map, aligned on frame's index."""
    return mapped(frame[id_column], _key_of(source_map, source, key_column, memo))


def _project_lookup(staged_projects: pd.DataFrame, source: str, project_ids: pd.Series, column: str,
                    memo: dict | None = None) -> pd.Series:
    """`column` of the `source` project each id names, aligned on project_ids' index."""
    if not len(staged_projects):
        return pd.Series(np.nan, index=project_ids.index, dtype=object)

    def value_of() -> pd.Series:
        projects = staged_projects.loc[staged_projects["source"] == source]
        return projects.assign(source_id=projects["source_id"].astype(str)).drop_duplicates(
            "source_id", keep="last").set_index("source_id")[column]

    return mapped(project_ids.astype("string"), _memoized(memo, ("project", source, column), value_of))


def projects_as_looked_up(staged_projects: pd.DataFrame) -> pd.DataFrame:
    """The projects the facts look up: one row per (source, source_id as text), the last one,
    as _project_lookup takes it."""
    projects = staged_projects[PROJECT_COLUMNS].copy() if len(staged_projects) else pd.DataFrame(columns=PROJECT_COLUMNS)
    projects["source_id"] = projects["source_id"].astype(str)
    return projects.drop_duplicates(["source", "source_id"], keep="last").reset_index(drop=True)


def _register_previous(con: duckdb.DuckDBPyConnection, name: str, part: pd.DataFrame | pa.Table | Path,
                       as_text: bool = False) -> None:
    """A part of the previous state as table `name`: a frame or Arrow table, or its Parquet
    file, which DuckDB then reads itself (millions of rows never held as a frame)."""
    if isinstance(part, Path):
        columns = "*" if not as_text else ", ".join(f"CAST({c} AS VARCHAR) AS {c}" for c in PROJECT_COLUMNS)
        con.execute(f"CREATE TEMP VIEW {name} AS SELECT {columns} FROM read_parquet(?)".replace("?", _quoted(part)))
    elif isinstance(part, pa.Table):
        con.register(name, part.cast(pa.schema([(f.name, pa.string()) for f in part.schema])) if as_text else part)
    else:
        con.register(name, pa.Table.from_pandas(part.astype("string") if as_text else part, preserve_index=False))


def _quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def carried_facts(facts: pd.DataFrame | Path, redone: dict[str, pd.Series]) -> pd.DataFrame:
    """The previous facts that name none of the records in `redone` (per source, the ids of
    the records resolved again or gone). From a file, only those rows are read."""
    if isinstance(facts, Path):
        keep = None
        for source, ids in redone.items():
            column = pc.field(f"{source}_source_id")
            side = column.is_null() | ~column.isin(pa.array(ids.astype(str).tolist(), pa.string()))
            keep = side if keep is None else keep & side
        return pd.read_parquet(facts, filters=keep)
    keep = np.ones(len(facts), dtype=bool)
    for source, ids in redone.items():
        keep &= ~is_in(facts[f"{source}_source_id"], ids)
    return facts.loc[keep]


def records_to_resolve(
    con: duckdb.DuckDBPyConnection, projects: pd.DataFrame, previous: PreviousServices
) -> pd.DataFrame:
    """Makes table `dirty` (source, source_id: the records to resolve again) and returns the
    records gone since the previous sync (source, source_id).

    A record is resolved again when its fingerprint is new or changed, when its partner in the
    pairing changed, when its volunteer's or team's key changed, or when its project (or the
    key of the project's team) changed; its partner then too (a fact is both records). Gone:
    a record the previous sync fingerprinted that is no longer staged (its fact is dropped).
    `con` holds this sync's `prepared` records, their fingerprints (`now_fp`) and pairing
    (`now_pairs`); `projects` are this sync's, as looked up.
    """
    before = previous.state
    con.register("now_projects", pa.Table.from_pandas(projects.astype("string"), preserve_index=False))
    _register_previous(con, "before_fp", before.records)
    _register_previous(con, "before_pairs", before.pairs)
    _register_previous(con, "before_projects", before.projects, as_text=True)
    for name, frame in (("volunteers_changed", previous.changed_volunteer_accounts),
                        ("orgs_changed", previous.changed_org_accounts)):
        con.register(name, pa.Table.from_pandas(
            frame[["source", "source_id"]].astype("string"), preserve_index=False))
    # the records new, changed or gone, from one join of the two syncs' fingerprints (a join
    # for the new and changed and another for the gone read and hashed millions twice); a
    # record on one side only is unmatched, its other side's fingerprint missing
    con.execute("""
        CREATE TEMP TABLE fingerprints_differ AS
        SELECT source, source_id, n.fingerprint IS NULL AND b.fingerprint IS NOT NULL AS gone
        FROM now_fp n FULL JOIN before_fp b USING (source, source_id)
        WHERE b.fingerprint IS DISTINCT FROM n.fingerprint
    """)
    gone = con.execute("SELECT source, source_id FROM fingerprints_differ WHERE gone").df()
    con.execute("""
        CREATE TEMP TABLE dirty AS
        WITH changed AS (
            SELECT source, source_id FROM fingerprints_differ WHERE NOT gone
        ),
        national_partner AS (  -- a national record whose partner changed (or appeared, or went)
            SELECT coalesce(n.national_source_id, b.national_source_id) AS id
            FROM now_pairs n FULL JOIN before_pairs b USING (national_source_id)
            WHERE n.provincial_source_id IS DISTINCT FROM b.provincial_source_id
        ),
        provincial_partner AS (
            SELECT coalesce(n.provincial_source_id, b.provincial_source_id) AS id
            FROM now_pairs n FULL JOIN before_pairs b USING (provincial_source_id)
            WHERE n.national_source_id IS DISTINCT FROM b.national_source_id
        ),
        projects_changed AS (
            SELECT coalesce(n.source, b.source) AS source, coalesce(n.source_id, b.source_id) AS source_id
            FROM now_projects n FULL JOIN before_projects b USING (source, source_id)
            WHERE n.category IS DISTINCT FROM b.category OR n.org_source_id IS DISTINCT FROM b.org_source_id
               OR n.source IS NULL OR b.source IS NULL
            UNION
            SELECT p.source, p.source_id FROM now_projects p
            SEMI JOIN orgs_changed o ON o.source = p.source AND o.source_id = p.org_source_id
        ),
        by_lookup AS (
            SELECT r.source, r.source_id FROM prepared r
            WHERE EXISTS (SELECT 1 FROM volunteers_changed v
                          WHERE v.source = r.source AND v.source_id = r.volunteer_source_id)
               OR EXISTS (SELECT 1 FROM orgs_changed o WHERE o.source = r.source AND o.source_id = r.org_source_id)
               OR EXISTS (SELECT 1 FROM projects_changed p
                          WHERE p.source = r.source AND p.source_id = r.project_source_id)
        ),
        touched AS (
            SELECT source, CAST(source_id AS VARCHAR) AS source_id FROM changed
            UNION SELECT 'national', CAST(id AS VARCHAR) FROM national_partner
            UNION SELECT 'provincial', CAST(id AS VARCHAR) FROM provincial_partner
            UNION SELECT source, source_id FROM by_lookup
        )
        -- with their partners in this sync's pairing
        SELECT source, source_id FROM touched
        UNION SELECT 'provincial', p.provincial_source_id FROM now_pairs p
            SEMI JOIN touched d ON d.source = 'national' AND d.source_id = p.national_source_id
        UNION SELECT 'national', p.national_source_id FROM now_pairs p
            SEMI JOIN touched d ON d.source = 'provincial' AND d.source_id = p.provincial_source_id
    """)
    return gone


def _ids_of(frame: pd.DataFrame, source: str) -> pd.Series:
    return frame.loc[frame["source"] == source, "source_id"].astype("string")


def resolve_services(
    staged_services: pd.DataFrame | Path,
    staged_projects: pd.DataFrame,
    volunteer_map: pd.DataFrame,
    organization_map: pd.DataFrame,
    previous: PreviousServices | None = None,
    spill_to: Path | None = None,
) -> ServiceResolution:
    """The fact table (one row per counted service) and the flagged likely duplicates.

    `staged_services`: the staged records, or their Parquet file. They are prepared, paired
    and fingerprinted by DuckDB (`PREPARED_SQL`, `_pair`), and only the records whose facts
    are made again come into pandas: every one in a full run; with `previous` (see
    PreviousServices), those a change touches, the other facts carried over (the module
    docstring says why that is the same). `spill_to`: a private folder where DuckDB's queries
    spill past their memory limit."""
    projects = projects_as_looked_up(staged_projects)
    con = duck.connect(spill_to=spill_to)
    try:
        service_records = _register_prepared(con, staged_services)
        del staged_services
        state = ServiceState(
            records=con.sql("SELECT * FROM now_fp").to_arrow_table(),  # (in the staged order)
            pairs=con.sql("SELECT national_source_id, provincial_source_id FROM now_pairs").to_arrow_table(),
            projects=projects,
        )
        pairs_by_reference = dict(con.execute(
            "SELECT method, count(*) FROM now_pairs GROUP BY method ORDER BY count(*) DESC, method").fetchall())
        copies = _fetched(con, "SELECT * FROM copies ORDER BY source, source_id")
        gone = None
        if previous is not None:
            gone = records_to_resolve(con, projects, previous)
            dirty = con.execute("SELECT source, source_id FROM dirty").df()
            pairs = _fetched(con, """SELECT * FROM now_pairs WHERE national_source_id IN (
                SELECT source_id FROM dirty WHERE source = 'national')""")
        else:
            pairs = _fetched(con, "SELECT * FROM now_pairs ORDER BY national_source_id, provincial_source_id")
        sides = {source: _side(con, source, only_dirty=previous is not None) for source in ("national", "provincial")}
    finally:
        con.close()

    work: dict = {"mode": "full", "records_resolved": service_records}
    if previous is not None:
        # the previous facts and state are let go as they are used (the caller's object
        # too: it holds millions of rows through the rest of the step otherwise)
        facts_before, previous.facts, previous.state = previous.facts, None, None
        redone = {source: pd.concat([_ids_of(dirty, source), _ids_of(gone, source)])
                  for source in ("national", "provincial")}
        carried = carried_facts(facts_before, redone)
        del facts_before, redone
        fresh = _facts(sides, pairs, staged_projects, volunteer_map, organization_map)
        work = {"mode": "incremental", "records_resolved": int(len(dirty)), "records_gone": int(len(gone)),
                "facts_carried": int(len(carried)), "facts_resolved": int(len(fresh))}
        facts = with_full_run_types(carried, fresh, FACT_COLUMNS)
        del carried, fresh  # before the sort's copy
        facts = sorted_by(facts, "service_key")
    else:
        facts = _facts(sides, pairs, staged_projects, volunteer_map, organization_map)

    duplicates = duplicate_candidates(facts, spill_to)
    copies = copies_with_keys(copies, facts["service_key"])
    summary = {
        "service_records": int(service_records),
        "services": int(len(facts)),
        "services_by_source": {k: int(v) for k, v in facts["source"].value_counts().items()},
        "services_without_volunteer": int(facts["volunteer_key"].isna().sum()),
        "services_without_org": int(facts["org_key"].isna().sum()),
        "pairs_by_reference": {k: int(v) for k, v in pairs_by_reference.items()},
        "service_copies": {k: int(v) for k, v in copies["source"].value_counts().sort_index().items()},
        "duplicate_candidates": int(len(duplicates)),
        "total_hours": round(float(facts["hours"].sum()), 2),
    }
    return ServiceResolution(facts, duplicates, summary, state, work, copies)


def copies_with_keys(copies: pd.DataFrame, fact_keys: pd.Series) -> pd.DataFrame:
    """COPY_COLUMNS: each copy with the key of the fact its pair made, or null where the
    service counts in neither system."""
    key = service_keys(copies["national_source_id"], copies["provincial_source_id"])
    return copies.assign(service_key=key.where(is_in(key, fact_keys)).astype("string"))[COPY_COLUMNS]


def fact_blocks(national: pd.DataFrame, provincial: pd.DataFrame, pairs: pd.DataFrame,
                block_count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The block of each national record, provincial record and pair (records in slices of
    their order; a paired provincial record goes with its national partner), or None when a
    pair names a record that is not there (one block then: what _block_facts makes of it)."""
    national_block = np.arange(len(national)) * block_count // max(len(national), 1)
    provincial_block = np.arange(len(provincial)) * block_count // max(len(provincial), 1)
    national_at = positions(pairs["national_source_id"], national["source_id"])
    provincial_at = positions(pairs["provincial_source_id"], provincial["source_id"])
    if (national_at < 0).any() or (provincial_at < 0).any():
        return None
    pair_block = national_block[national_at]
    provincial_block[provincial_at] = pair_block
    return national_block, provincial_block, pair_block


def _facts(
    sides: dict[str, pd.DataFrame],
    pairs: pd.DataFrame,
    staged_projects: pd.DataFrame,
    volunteer_map: pd.DataFrame,
    organization_map: pd.DataFrame,
) -> pd.DataFrame:
    """The facts of the prepared records in `sides` (taken out of it: freed as they are used),
    paired by `pairs`, sorted by service_key.

    Made FACT_BLOCK_RECORDS records at a time: a fact is a function of its record (or its
    pair of records) and of the lookups, so a block that holds each record with its partner
    makes the same facts as the whole; only one block's paired rows, lookups and keys are
    held at once (at a million persons the whole province's were most of the services' peak).
    """
    look = (staged_projects, volunteer_map, organization_map, {})
    records = len(sides["national"]) + len(sides["provincial"])
    block_count = max(1, -(-records // FACT_BLOCK_RECORDS))
    blocks = fact_blocks(sides["national"], sides["provincial"], pairs, block_count) if block_count > 1 else None
    if blocks is None:
        return _finished(_block_facts(sides, pairs, *look))
    # only what a fact takes of a record is held through the blocks
    national, provincial = sides.pop("national")[SIDE_COLUMNS], sides.pop("provincial")[SIDE_COLUMNS]
    national_block, provincial_block, pair_block = blocks
    parts = [
        _block_facts({"national": national.loc[national_block == block],
                      "provincial": provincial.loc[provincial_block == block]},
                     pairs.loc[pair_block == block], *look)
        for block in range(block_count)
    ]
    # pandas types a column by its values: a block whose column holds only missing values may
    # type it otherwise than the whole would; then the whole is made in one piece
    if len({tuple(part.dtypes) for part in parts if len(part)}) != 1:
        return _finished(_block_facts({"national": national, "provincial": provincial}, pairs, *look))
    del national, provincial
    parts = [part for part in parts if len(part)]
    # one column at a time: the blocks' copy of a column goes as the whole's is made
    facts = pd.DataFrame({column: pd.concat([part.pop(column) for part in parts], ignore_index=True)
                          for column in FACT_COLUMNS})
    del parts
    return _finished(facts)


def _finished(facts: pd.DataFrame) -> pd.DataFrame:
    """The facts sorted by service_key, their service dates as calendar dates (a Python date
    per fact, ~10x a datetime64: made once the blocks are put together, not held by each)."""
    facts = sorted_by(facts, "service_key")
    facts["service_date"] = facts["service_date"].dt.date
    return facts


def _block_facts(
    sides: dict[str, pd.DataFrame],
    pairs: pd.DataFrame,
    staged_projects: pd.DataFrame,
    volunteer_map: pd.DataFrame,
    organization_map: pd.DataFrame,
    memo: dict | None = None,
) -> pd.DataFrame:
    """The facts of the prepared records in `sides` (taken out of it: freed as they are used),
    paired by `pairs` (each record's partner among them), in no particular order; `memo`
    keeps the lookups' indexes from one block to the next."""
    # once paired, a record's references, times and flags but `is_effective` are not read again
    national = sides.pop("national")[SIDE_COLUMNS].add_prefix("n_")
    provincial = sides.pop("provincial")[SIDE_COLUMNS].add_prefix("p_")
    combined = (
        pairs.merge(national, left_on="national_source_id", right_on="n_source_id")
        .merge(provincial, left_on="provincial_source_id", right_on="p_source_id")
    )
    national_only = national.loc[~is_in(national["n_source_id"], pairs["national_source_id"])].copy()
    national_only["national_source_id"] = national_only["n_source_id"]
    provincial_only = provincial.loc[~is_in(provincial["p_source_id"], pairs["provincial_source_id"])].copy()
    provincial_only["provincial_source_id"] = provincial_only["p_source_id"]
    rows = pd.concat([combined, national_only, provincial_only], ignore_index=True)
    del combined, national_only, provincial_only, national, provincial
    has_national = rows["n_source_id"].notna()
    has_provincial = rows["p_source_id"].notna()
    rows["source"] = np.select([has_national & has_provincial, has_national], ["both", "national"], "provincial")

    # the national copy is the one whose hours count; it decides whether the service counts
    counts = np.where(has_national, rows["n_is_effective"].fillna(False), rows["p_is_effective"].fillna(False)).astype(bool)
    rows = rows.loc[counts].copy()
    has_national = rows["n_source_id"].notna()

    def prefer_national(column: str) -> pd.Series:
        return rows[f"n_{column}"].where(has_national, rows[f"p_{column}"])

    rows["hours"] = prefer_national("hours").astype("float64")
    rows["service_date"] = prefer_national("service_date")  # datetime64: _facts makes it dates
    rows["project_source"] = np.where(has_national & rows["n_project_source_id"].notna(), "national",
                                      np.where(rows["p_project_source_id"].notna(), "provincial", None))
    rows["project_source_id"] = rows["n_project_source_id"].where(rows["project_source"] == "national", rows["p_project_source_id"])

    volunteer_national = _lookup(rows, "national", "n_volunteer_source_id", volunteer_map, "volunteer_key", memo)
    volunteer_provincial = _lookup(rows, "provincial", "p_volunteer_source_id", volunteer_map, "volunteer_key", memo)
    rows["volunteer_key"] = volunteer_national.where(volunteer_national.notna(), volunteer_provincial)
    del volunteer_national, volunteer_provincial  # (each a column of millions of keys)
    org_national = _lookup(rows, "national", "n_org_source_id", organization_map, "org_key", memo)
    org_provincial = _lookup(rows, "provincial", "p_org_source_id", organization_map, "org_key", memo)
    rows["org_key"] = org_national.where(org_national.notna(), org_provincial)
    del org_national, org_provincial

    def from_projects(column: str, source_map: pd.DataFrame | None = None) -> pd.Series:
        """A value of the row's project: the national project first, else the activity."""
        found = []
        for source in ("national", "provincial"):
            values = _project_lookup(staged_projects, source, rows[f"{source[0]}_project_source_id"], column, memo)
            if source_map is not None:
                values = mapped(values, _key_of(source_map, source, "org_key", memo))
            found.append(values)
        return found[0].where(found[0].notna(), found[1])

    rows["category"] = from_projects("category")
    # a record that names no team of its own was given for its project's team
    rows["org_key"] = rows["org_key"].where(rows["org_key"].notna(), from_projects("org_source_id", organization_map))

    rows["service_key"] = service_keys(rows["national_source_id"], rows["provincial_source_id"])
    project_basis = rows["project_source"].astype("string") + ":" + rows["project_source_id"].astype("string")
    rows["project_key"] = opaque_key("P", project_basis.fillna("")).where(project_basis.notna())
    del project_basis
    facts = rows[FACT_COLUMNS].reset_index(drop=True)
    rows = None  # the paired sides' columns go before the facts are sorted into a copy
    facts["hours"] = facts["hours"].astype("float64")
    return facts


def duplicate_candidates(facts: pd.DataFrame, spill_to: Path | None = None) -> pd.DataFrame:
    """Pairs of counted services with the same person, day, team and hours and no reference.

    The groups are found in DuckDB, which holds a few columns of every fact and spills to
    `spill_to` past duck.SPILL_MEMORY_MB (pandas' groupby held a copy of them and its codes:
    the step's peak at 4.3M persons); only the pairs' rows are then taken from `facts`."""
    known = pa.table({
        "row_at": pa.array(np.arange(len(facts), dtype=np.int64)),
        **{column: pa.array(facts[column], from_pandas=True)
           for column in ("service_key", "volunteer_key", "service_date", "org_key", "hours")},
    })
    con = duck.connect(spill_to=spill_to)
    try:
        con.register("facts", known)
        # hours in cents, rounded half to even as pandas rounds; a fact with no team groups
        # with the others with none
        pairs = con.execute("""
            WITH known AS (
                SELECT row_at, service_key, volunteer_key, service_date, coalesce(CAST(org_key AS VARCHAR), '') AS org_group,
                       CAST(round_even(hours * 100, 0) AS BIGINT) AS hours_cents
                FROM facts WHERE volunteer_key IS NOT NULL AND service_date IS NOT NULL
            ), repeated AS (
                SELECT volunteer_key, service_date, org_group, hours_cents
                FROM known GROUP BY ALL HAVING count(*) > 1
            ), grouped AS (
                SELECT k.* FROM known k SEMI JOIN repeated USING (volunteer_key, service_date, org_group, hours_cents)
            )
            SELECT l.row_at AS left_at, r.row_at AS right_at
            FROM grouped l JOIN grouped r USING (volunteer_key, service_date, org_group, hours_cents)
            WHERE l.service_key < r.service_key
            ORDER BY l.service_key, r.service_key
        """).fetchnumpy()
    finally:
        con.close()
    del known
    left, right = facts.iloc[pairs["left_at"]], facts.iloc[pairs["right_at"]]
    out = pd.DataFrame({
        "left_service_key": left["service_key"].array, "right_service_key": right["service_key"].array,
        "volunteer_key": left["volunteer_key"].array, "org_key": left["org_key"].array,
        "service_date": left["service_date"].array, "hours": left["hours"].array,
        "left_source": left["source"].array, "right_source": right["source"].array,
        "left_national_source_id": left["national_source_id"].array,
        "left_provincial_source_id": left["provincial_source_id"].array,
        "right_national_source_id": right["national_source_id"].array,
        "right_provincial_source_id": right["provincial_source_id"].array,
    })
    hours_text = pd.Series([f"{h:.2f}" for h in out["hours"]], index=out.index, dtype="str")
    out["evidence"] = (
        "same volunteer, same service date, same team, same hours ("
        + hours_text + " h); no nationalRecordId/origin reference between them; "
        + out["left_source"] + " vs " + out["right_source"]
    )
    return out[DUPLICATE_COLUMNS]
