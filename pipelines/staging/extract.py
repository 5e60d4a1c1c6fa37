"""Landed pages -> the latest version of each source row, its mapped fields extracted.

The one path from raw pages to "each source row as the source last sent it": staging, the
tests and the benchmarks all read through `raw_batches`.

1. Versions: every landed row of the stream, across syncs. The latest version of a row id
   is the one fetched last (a source never sends a row back in time; a re-landed row is the
   same version or a newer one). A row landed without a usable id (not an object, no id
   field) is identified by the hash of its text, so it is counted and quarantined once.
2. One row per source key (the id the contract's source maps use, e.g. `albp0029`): a row
   re-created at the source under a new row id keeps one staged row, a live one if any.
3. Fields: one JSON parse per row extracts every field the mapping reads, each with its JSON
   type, so a list where a name belongs or a number where an ID number belongs is seen for
   what it is (a hostile value is judged by the adapter, never coerced here).

Output columns: `__id`, `__updated_at` (text as landed), `__updated_utc` (naive UTC),
`__is_deleted`, `__record` (the row as landed, JSON text), `__fetched_at`, `__sync_id`,
`__problem` (what landing found wrong with the row, or null), `__key_versions`,
`__source_key` (the key the dedup used: the staged `source_id`, so it is unique),
`__filename` and `__file_row` (which landed row it is), then per
mapped field `<field>` (text; DOUBLE for fields only read as numbers, +Infinity where
text no number reads; a list for list fields) and `__type__<field>` (`text`, `number`, `bool`, `list`, `object`, `null`, or null
when the field is absent); a numeric field also `__text__<field>`, its value where it came as
text (90分钟: `text_column`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines import duck
from pipelines.config import Settings
from pipelines.files import atomic_path, private_dir, write_text
from pipelines.landing import folder_pages, landed_since, raw_files, sync_folders, updated_at_utc_sql
from pipelines.normalize import INVISIBLE_CLASS, WHITESPACE_CHARS, char_class
from pipelines.schemas import StreamMapping
from pipelines.sources.streams import DECIMAL_PATTERN, DELETED_TEXTS, EXACT_INTEGERS, WHOLE_DECIMAL_PATTERN
from pipelines.sql import literal

TYPE_PREFIX = "__type__"
SPILL_FOLDER = ".duckdb_spill"  # under DATA_DIR/staged: a folder per process (duck.process_spill_dir)
# DuckDB's json_type names -> the kinds a transform accepts
JSON_KINDS = {
    "VARCHAR": "text", "BIGINT": "number", "UBIGINT": "number", "DOUBLE": "number",
    "BOOLEAN": "bool", "ARRAY": "list", "OBJECT": "object", "NULL": "null",
}


def type_column(field: str) -> str:
    return TYPE_PREFIX + field


TEXT_PREFIX = "__text__"


def text_column(field: str) -> str:
    """The column holding a numeric field's value as sent where it came as text (null where
    it came as a number): what reads a duration written with its unit (90分钟)."""
    return TEXT_PREFIX + field


def _json_path(key: str) -> str:
    return "$." + json.dumps(key)  # "$.\"albp0029\"": quoting copes with any key


def _kind_sql(expression: str) -> str:
    cases = " ".join(f"WHEN {literal(name)} THEN {literal(kind)}" for name, kind in JSON_KINDS.items())
    return f"CASE json_type({expression}) {cases} END"


def _versions_cte(mapping: StreamMapping, has_problem_column: bool) -> str:
    """The CTE `versions`: every landed row of the page files `$files` (a list of paths, never
    a glob: a DATA_DIR holding `[`, `*` or a quote is read as the folder it is)."""
    flag = f"lower(trim(replace(json_extract_string(record, {literal(_json_path(mapping.deleted_field))}), '１', '1')))"
    # what `streams.flags_a_deletion` reads as deleted, for pages landed before the landing
    # wrote its own `is_deleted`
    deleted_texts = ", ".join(literal(text) for text in sorted(DELETED_TEXTS))
    problem = "problem" if has_problem_column else "CAST(NULL AS VARCHAR)"
    return f"""
WITH versions AS (
    SELECT coalesce(id, '#' || md5(record)) AS id, updated_at, record, fetched_at, sync_id,
           filename, file_row_number, {problem} AS problem,
           COALESCE(is_deleted, try({flag}) IN ({deleted_texts})) AS deleted,
           -- try(): an unreadable timestamp makes a quarantined row, not a failed step
           try({updated_at_utc_sql()}) AS updated_utc
    FROM read_parquet($files, union_by_name = true, filename = true, file_row_number = true)
)"""


# The dedup, one definition for the landed pages and for the kept identities: per row id the
# version fetched last; within a page that holds an id twice (a source's join or paging
# gone wrong), the one with the later change time, then the later in the page (a readable
# change time before none); then per source key (two row ids with one key: an account
# re-created at the source) a live row if any, else the latest. The versions left out are
# `superseded`, counted per sync (`every_row_accounted`).
LATEST_PER_ROW = """QUALIFY row_number() OVER (
        PARTITION BY id ORDER BY fetched_at DESC, filename DESC, updated_utc DESC NULLS LAST,
        file_row_number DESC) = 1"""
LATEST_PER_KEY = """SELECT *, count(*) OVER (PARTITION BY source_key) AS key_versions
    FROM latest_per_row
    QUALIFY row_number() OVER (
        PARTITION BY source_key ORDER BY deleted ASC, fetched_at DESC, id DESC) = 1"""


def _latest_versions(mapping: StreamMapping, has_problem_column: bool) -> str:
    """The CTEs `versions` (every landed row) and `latest_per_key` (the rows staged)."""
    return f"""{_versions_cte(mapping, has_problem_column)}, latest_per_row AS (
    SELECT *, {_source_key_or_identity_sql(mapping)} AS source_key
    FROM versions
    {LATEST_PER_ROW}
), latest_per_key AS (
    {LATEST_PER_KEY}
)"""


# What Python's str.strip takes off a value's ends (and so the landing off a row id and the
# adapter off a staged key): DuckDB's trim takes spaces only, so a key "V0001\n" or one after
# an ideographic space was a key of its own to the dedup and the same staged source id as
# V0001, and the blocking key_unique check stopped the publish. The invisible characters a
# paste carries (zero-width space, BOM, direction marks: `normalize.INVISIBLE_CLASS`) go from
# anywhere in a key, as the landing takes them off a row id and references lose them: V0001
# with a zero-width space is the account V0001, not another.
_WHITESPACE = char_class([(ord(c), ord(c)) for c in WHITESPACE_CHARS])
_WHITESPACE_ENDS = literal(f"^{_WHITESPACE}+|{_WHITESPACE}+$")
_INVISIBLE = literal(INVISIBLE_CLASS)


def _stripped_sql(expression: str) -> str:
    visible = f"regexp_replace({expression}, {_INVISIBLE}, '', 'g')"
    return f"regexp_replace({visible}, {_WHITESPACE_ENDS}, '', 'g')"


def _source_key_or_identity_sql(mapping: StreamMapping) -> str:
    """The key the dedup keeps one row per: the source key, its ends stripped as Python strips
    them, else the row's identity."""
    key = f"CAST(try({_source_key_sql(mapping)}) AS VARCHAR)"
    return f"COALESCE(NULLIF({_stripped_sql(key)}, ''), '#' || id)"


def _source_key_sql(mapping: StreamMapping) -> str:
    """The key as the landing reads a row id (`streams._read_id`): text or an integer as
    sent, a float that is a whole number (4.0) as that integer, one that is not (4.5) none;
    where the contract's ids are integers, the text "4.0" as 4 too."""
    key_path = literal(_json_path(mapping.source_id_field))
    key_type = f"json_type(record, {key_path})"
    key_text = f"json_extract_string(record, {key_path})"
    number = f"TRY_CAST({key_text} AS DOUBLE)"
    whole_float = (f"CASE WHEN {number} = round({number}) AND abs({number}) < {EXACT_INTEGERS} "
                   f"THEN CAST(CAST({number} AS BIGINT) AS VARCHAR) END")
    text = key_text
    if mapping.integer_ids:
        stripped = _stripped_sql(key_text)
        text = (f"CASE WHEN regexp_full_match({stripped}, {literal(WHOLE_DECIMAL_PATTERN)}) "
                f"THEN split_part({stripped}, '.', 1) "
                f"WHEN regexp_full_match({stripped}, {literal(DECIMAL_PATTERN)}) THEN NULL "
                f"ELSE {key_text} END")
    # only text or a number is a key: rows whose key is a list, an object or true stay apart
    return (
        f"CASE WHEN {key_type} IN ('BIGINT', 'UBIGINT') THEN {key_text} "
        f"WHEN {key_type} = 'DOUBLE' THEN {whole_float} "
        f"WHEN {key_type} = 'VARCHAR' THEN {text} END"
    )


IDENTITY_TYPES = {"id": "VARCHAR", "fetched_at": "TIMESTAMPTZ", "filename": "VARCHAR", "file_row_number": "BIGINT",
                  "updated_utc": "TIMESTAMP", "deleted": "BOOLEAN", "source_key": "VARCHAR", "sync_id": "VARCHAR"}
# the columns as every part stores them, whatever types a page's columns came in
IDENTITY_TYPED = ", ".join(f"CAST({name} AS {kind}) AS {name}" for name, kind in IDENTITY_TYPES.items())


def identities_sql(mapping: StreamMapping, *, has_problem_column: bool = True) -> str:
    """DuckDB SQL: what the dedup reads of every landed row of the pages `$files` (no field,
    no record text): a few narrow columns a row, which never change once a page is landed
    (`identities` keeps them per stream, so a merge reads only new pages' records)."""
    return f"""{_versions_cte(mapping, has_problem_column)}
SELECT id, fetched_at, filename, file_row_number, updated_utc, deleted,
       {_source_key_or_identity_sql(mapping)} AS source_key,
       CAST(sync_id AS VARCHAR) AS sync_id
FROM versions"""


def _latest_of_identities(relation: str) -> str:
    """`_latest_versions`' dedup over a relation of `identities_sql`'s columns: the CTEs
    `latest_per_row` and `latest_per_key`, the same rows picked by the same orders."""
    return f"""WITH latest_per_row AS (
    SELECT * FROM {relation}
    {LATEST_PER_ROW}
), latest_per_key AS (
    {LATEST_PER_KEY}
)"""


def winners_of_identities_sql(relation: str) -> str:
    """`winners_sql`'s rows, from the identities in `relation`."""
    return f"""{_latest_of_identities(relation)}
SELECT id, filename, file_row_number AS file_row, source_key, key_versions, sync_id
FROM latest_per_key
"""


def versions_per_sync_of_identities_sql(relation: str) -> str:
    """`versions_per_sync_sql`'s rows, from the identities in `relation`."""
    return f"""{_latest_of_identities(relation)}
SELECT v.sync_id, count(*) AS landed, count(l.id) AS latest
FROM {relation} v
LEFT JOIN latest_per_key l ON l.filename = v.filename AND l.file_row_number = v.file_row_number
GROUP BY v.sync_id
"""


# Full-width digits and signs, as an input method types them, read as their ASCII forms.
_FULL_WIDTH_NUMBER = literal("０１２３４５６７８９．＋－，")
_ASCII_NUMBER = literal("0123456789.+-,")
# A number with its thousands grouped by commas, as a spreadsheet formats it (1,200).
_GROUPED_THOUSANDS = literal(r"[+-]?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?")
# What as_text strips from a value before calling it blank, written for RE2.
_NOT_BLANK = literal(r"[^\s\x{00A0}\x{3000}\x{200B}-\x{200D}\x{2060}\x{FEFF}]")


def _number_sql(value: str) -> str:
    """A field read only as a number: the number (full-width digits and thousands grouped by
    commas, 1,200, read too), null where
    absent or blank, and +Infinity where text is there that no number reads (2小时, NaN, 约50).
    Null would make such a value a missing one (a service quarantined as `missing_required`,
    a team's member count emptied without a flag); an infinite number is present and no
    quantity, so the numeric transforms judge it unusable, as they judge 'Infinity'."""
    text = f"({value} ->> '$')"

    def number(of: str) -> str:  # NaN read as no number
        return f"CASE WHEN NOT isnan(TRY_CAST({of} AS DOUBLE)) THEN TRY_CAST({of} AS DOUBLE) END"

    # COALESCE evaluates what follows only for the rows still null: the plain numbers (nearly
    # all) are cast once and never translated nor matched
    # full-width digits as ASCII, the characters that show nothing (a NUL, a zero-width space)
    # out, as staging takes them out of text
    ascii_text = f"trim(regexp_replace(translate({text}, {_FULL_WIDTH_NUMBER}, {_ASCII_NUMBER}), {_INVISIBLE}, '', 'g'))"
    ungrouped = f"CASE WHEN regexp_full_match({ascii_text}, {_GROUPED_THOUSANDS}) THEN replace({ascii_text}, ',', '') END"
    return (
        f"coalesce({number(text)}, CASE WHEN json_type({value}) = 'VARCHAR' "
        f"AND regexp_matches({text}, {_NOT_BLANK}) THEN coalesce("
        f"{number(ascii_text)}, {number(ungrouped)}, "
        "CAST('Infinity' AS DOUBLE)) END)"
    )


def _extract_select(mapping: StreamMapping) -> str:
    """The SELECT over `latest_per_key` that extracts the mapped fields (module docstring)."""
    fields = list(mapping.raw_fields)
    paths = ", ".join(literal(_json_path(name)) for name in fields)
    extracted = []
    for position, name in enumerate(fields, start=1):
        value = f"__j[{position}]"
        kind = mapping.raw_fields[name]
        if kind == "number":
            column = _number_sql(value)
            extracted.append(f"CASE WHEN json_type({value}) = 'VARCHAR' THEN {value} ->> '$' END "
                             f'AS "{text_column(name)}"')
        elif kind == "list":
            column = f"TRY_CAST({value} AS VARCHAR[])"
        else:
            column = f"{value} ->> '$'"
        extracted += [f'{column} AS "{name}"', f'{_kind_sql(value)} AS "{type_column(name)}"']
    return f"""
SELECT id AS __id, updated_at AS __updated_at, updated_utc AS __updated_utc,
       deleted AS __is_deleted, record AS __record, fetched_at AS __fetched_at,
       sync_id AS __sync_id, problem AS __problem, key_versions AS __key_versions,
       CASE WHEN source_key NOT LIKE '#%' THEN source_key END AS __source_key,
       filename AS __filename, file_row_number AS __file_row,
       {", ".join(extracted) if extracted else "NULL AS __nothing"}
FROM (
    SELECT *, json_extract(CASE WHEN json_valid(record) THEN record END, [{paths}]) AS __j
    -- sorted before the fields are extracted (projections keep the order): the sort carries
    -- the record, not the record and every field read from it (at 4.3M persons, 500 MB and
    -- two threads could not sort the wider rows)
    FROM (SELECT * FROM latest_per_key ORDER BY id)
)
"""


def extract_sql(mapping: StreamMapping, *, has_problem_column: bool = True) -> str:
    """DuckDB SQL: the latest version of each source row, mapped fields extracted (see the
    module docstring for the columns), over the page files given as `$files`. The definition
    in one query: `raw_batches` reads the same rows in two passes (tests compare them)."""
    return _latest_versions(mapping, has_problem_column) + _extract_select(mapping)


def winners_sql(mapping: StreamMapping, *, has_problem_column: bool = True) -> str:
    """DuckDB SQL: which landed row each staged row is (the dedup of `extract_sql`, no field
    read): its id, page file and row in it, source key and key versions."""
    return f"""{_latest_versions(mapping, has_problem_column)}
SELECT id, filename, file_row_number AS file_row, source_key, key_versions, sync_id
FROM latest_per_key
"""


def picked_extract_sql(mapping: StreamMapping, *, has_problem_column: bool = True) -> str:
    """DuckDB SQL: `extract_sql`'s output for the rows named in the relation `picked`
    (filename, file_row, source_key, key_versions: the dedup already done by `winners_sql`
    over every page), reading only the page files `$files` that hold them."""
    return f"""{_versions_cte(mapping, has_problem_column)}, latest_per_key AS (
    SELECT v.*, p.source_key, p.key_versions
    FROM versions v
    JOIN picked p ON p.filename = v.filename AND p.file_row = v.file_row_number
)""" + _extract_select(mapping)


def versions_per_sync_sql(mapping: StreamMapping, *, has_problem_column: bool = True) -> str:
    """Per sync id: rows landed, and how many of them are the version staging reads
    (page files as `$files`)."""
    return f"""{_latest_versions(mapping, has_problem_column)}
SELECT v.sync_id, count(*) AS landed, count(l.id) AS latest
FROM versions v
LEFT JOIN latest_per_key l ON l.filename = v.filename AND l.file_row_number = v.file_row_number
GROUP BY v.sync_id
"""


def connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    # The dedup sorts every landed version: DuckDB spills to a private folder next to the
    # staged files rather than hold 5M rows in memory.
    con = duck.connect(spill_to=private_dir(settings.staged_dir / SPILL_FOLDER))
    con.execute("SET TimeZone = 'UTC'")
    return con


def page_files(mapping: StreamMapping, settings: Settings) -> list[str]:
    return [str(path) for path in raw_files(settings, mapping.source, mapping.stream)]


def has_problem_column(con: duckdb.DuckDBPyConnection, files: list[str]) -> bool:
    """Pages landed before the `problem` column existed lack it."""
    described = con.execute(
        "DESCRIBE SELECT * FROM read_parquet($files, union_by_name = true)", {"files": files}
    ).fetchall()
    return any(row[0] == "problem" for row in described)


IDENTITIES_DIR = "staging_identities"


def identities_dir(settings: Settings, mapping: StreamMapping) -> Path:
    """The identities of a stream's landed rows (`identities_sql`), in parts: each part holds
    the rows of the sync folders one staging read first, and names them with their state
    beside it (`_held_path`). Parts are only added (a page is never rewritten), so a merge
    writes the new folders' identities, never the whole stream's again."""
    return settings.state_dir / IDENTITIES_DIR / f"{mapping.source}__{mapping.stream}"


def _held_path(part: Path) -> Path:
    """Where a part names the sync folders it holds (`landing.sync_folders` entries): beside
    it, so that a folder fresh when the part was written is kept by its time once it has
    settled (`_part_folders` rewrites it), not by a look at each of its pages every time."""
    return part.with_suffix(".json")


def _part_folders(part: Path, folders_now: list[list]) -> list[str] | None:
    """The sync folders a part holds when every one of them is still landed as it was (no
    page added, removed or rewritten since: `landing.landed_since`); else None (the part is
    not trusted, its folders are read again)."""
    try:
        # a part that cannot be read (a disk fault, a hand edit), or one written before a column
        # of the identities existed, is not kept
        if not set(IDENTITY_TYPES) <= set(pq.read_metadata(part).schema.names):
            return None
        held = json.loads(_held_path(part).read_text(encoding="utf-8"))
        now = {entry[0]: entry for entry in folders_now}
        unchanged = landed_since(held, [now[entry[0]] for entry in held if entry[0] in now]) == []
    except (OSError, ValueError, TypeError, AttributeError, pa.ArrowException):  # missing, damaged, other code's
        return None
    if not unchanged or not held:
        return None
    if any(entry[2] is not None for entry in held) and all(now[entry[0]][2] is None for entry in held):
        write_text(_held_path(part), json.dumps([now[entry[0]] for entry in held]), durable=False)
    return sorted(entry[0] for entry in held)


def identity_parts(con: duckdb.DuckDBPyConnection, mapping: StreamMapping,
                   settings: Settings) -> tuple[list[str], list[str]] | None:
    """The parts that hold the identities of every landed row of the stream: (kept parts,
    new part). Kept parts are those whose sync folders are all still landed as they were; the
    folders no kept part holds are read and make a new part (the list is empty when there
    were none). None when nothing landed. Told per folder (`landing.sync_folders`), so the
    cost does not grow with the pages every earlier sync landed."""
    folders_now = sync_folders(settings.data_dir, mapping.source, mapping.stream)
    folder = private_dir(identities_dir(settings, mapping))
    kept: list[str] = []
    known: set[str] = set()
    for part in sorted(folder.glob("part-*.parquet")):
        held = _part_folders(part, folders_now)
        if held is None or known.intersection(held):
            part.unlink(missing_ok=True)  # its folders' identities are read again below
            _held_path(part).unlink(missing_ok=True)
            continue
        kept.append(str(part))
        known.update(held)
    for held_file in folder.glob("part-*.json"):  # of a part removed by a run killed meanwhile
        if not held_file.with_suffix(".parquet").exists():
            held_file.unlink(missing_ok=True)
    unread = [(entry, folder_pages(entry[0])) for entry in folders_now if entry[0] not in known]
    held = [entry for entry, pages in unread if pages]  # (a sync that landed nothing: no part)
    new = [page for _, pages in unread for page in pages]
    if not new:
        return (kept, []) if kept else None
    sql = identities_sql(mapping, has_problem_column=has_problem_column(con, new))
    target = folder / f"part-{time.time_ns():020d}.parquet"
    with atomic_path(target) as temp:
        con.execute(f"COPY (SELECT {IDENTITY_TYPED} FROM ({sql})) TO $temp (FORMAT parquet, COMPRESSION zstd)",
                    {"files": new, "temp": str(temp)})
    # named after the part is in place: a part without its folders is read again, never trusted
    write_text(_held_path(target), json.dumps(held))
    return kept, [str(target)]


def load_identities(con: duckdb.DuckDBPyConnection, mapping: StreamMapping, settings: Settings,
                    relation: str) -> bool:
    """The temporary table `relation`: the identities of every landed row of the stream,
    read from the kept parts for the pages they hold and from the pages for the others, which
    then make a new part (`identity_parts`). False (no table) when nothing landed."""
    parts = identity_parts(con, mapping, settings)
    if parts is None:
        return False
    con.execute(f"CREATE OR REPLACE TEMP TABLE {relation} AS SELECT {IDENTITY_TYPED} FROM read_parquet($parts)",
                {"parts": parts[0] + parts[1]})
    return True


def raw_batches(mapping: StreamMapping, settings: Settings, chunk_rows: int, *,
                keep_identities: bool = False, versions: dict | None = None) -> Iterator[pd.DataFrame]:
    """The stream's latest rows with mapped fields, as pandas chunks (none if nothing landed):
    `extract_sql`'s rows in its order, found in two passes. The dedup runs over the rows'
    identities alone (a few narrow columns), then the winners' records are read and their
    fields extracted: sorting the record text of every version through the dedup's windows
    was most of a full staging's memory and spilling.

    `keep_identities`: the identities come from and go to the stream's kept parts
    (`load_identities`: the one staging of the stream, which then counts its versions from
    them); else they are read from the pages into this connection alone (stagings running
    side by side, one per prefecture, never write the parts). `versions`: filled before the
    first chunk with `versions_per_sync`'s counts, taken from the same identities and winners
    (at 4.3M persons 13 s, where a second dedup of the identities took 57 s)."""
    files = page_files(mapping, settings)
    if not files:  # read_parquet fails on an empty list
        return
    con = connect(settings)
    try:
        problem_column = has_problem_column(con, files)
        if keep_identities:
            load_identities(con, mapping, settings, "identities")
        else:
            con.execute(f"CREATE TEMP TABLE identities AS SELECT {IDENTITY_TYPED} FROM "
                        f"({identities_sql(mapping, has_problem_column=problem_column)})", {"files": files})
        con.execute(f"""CREATE TEMP TABLE picked AS
            SELECT filename, file_row, source_key, key_versions FROM ({winners_of_identities_sql("identities")})""")
        if versions is not None:
            versions.update(_per_sync(con.execute("""
                SELECT i.sync_id, count(*), count(p.file_row) FROM identities i
                LEFT JOIN picked p ON p.filename = i.filename AND p.file_row = i.file_row_number
                GROUP BY i.sync_id""").fetchall()))
        con.execute("DROP TABLE identities")
        yield from _frames(con, picked_extract_sql(mapping, has_problem_column=problem_column), files, chunk_rows)
    finally:
        con.close()


def _frames(con: duckdb.DuckDBPyConnection, sql: str, files: list[str], chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The query's rows as pandas chunks of at most `chunk_rows`, empty batches skipped."""
    for batch in con.sql(sql, params={"files": files}).to_arrow_reader(chunk_rows):
        if batch.num_rows:
            yield batch.to_pandas()


def versions_per_sync(mapping: StreamMapping, settings: Settings) -> dict[str, tuple[int, int]]:
    """{sync id: (rows landed, rows staging reads)} of the stream (empty if nothing landed),
    counted from the identities (`load_identities`, which keeps them for the next merge)."""
    con = connect(settings)
    try:
        if not load_identities(con, mapping, settings, "identities"):
            return {}
        rows = con.execute(versions_per_sync_of_identities_sql("identities")).fetchall()
    finally:
        con.close()
    return _per_sync(rows)


def _per_sync(rows: list[tuple]) -> dict[str, tuple[int, int]]:
    return {str(sync_id): (int(landed), int(latest)) for sync_id, landed, latest in rows}


WINNER_COLUMNS = ["id", "filename", "file_row", "source_key", "key_versions", "sync_id"]


def stream_winners(mapping: StreamMapping, settings: Settings) -> pd.DataFrame:
    """Which landed row each staged row of the stream is (`winners_sql` over every page):
    what incremental staging compares with the rows staged before."""
    files = page_files(mapping, settings)
    if not files:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in WINNER_COLUMNS})
    con = connect(settings)
    try:
        sql = winners_sql(mapping, has_problem_column=has_problem_column(con, files))
        return con.execute(sql, {"files": files}).df()[WINNER_COLUMNS]
    finally:
        con.close()


def picked_batches(
    mapping: StreamMapping, settings: Settings, picked: pd.DataFrame, chunk_rows: int
) -> Iterator[pd.DataFrame]:
    """`raw_batches` for the rows `picked` (columns of `stream_winners`) alone, reading only
    the page files that hold them."""
    if picked.empty:
        return
    files = sorted(picked["filename"].unique().tolist())
    con = connect(settings)
    try:
        con.register("picked", picked[["filename", "file_row", "source_key", "key_versions"]])
        sql = picked_extract_sql(mapping, has_problem_column=has_problem_column(con, files))
        yield from _frames(con, sql, files, chunk_rows)
    finally:
        con.close()


def landed_per_sync(mapping: StreamMapping, settings: Settings) -> dict[str, int]:
    """{sync id: rows landed} of the stream, without reading a record (incremental staging
    counts the rows staging reads from its ledger): counted from the pages' identities
    (`identity_parts`: a few files, where the pages are thousands)."""
    con = connect(settings)
    try:
        parts = identity_parts(con, mapping, settings)
        if parts is None:
            return {}
        rows = con.execute("SELECT sync_id, count(*) FROM read_parquet($parts) GROUP BY sync_id",
                           {"parts": parts[0] + parts[1]}).fetchall()
    finally:
        con.close()
    return {str(sync_id): int(landed) for sync_id, landed in rows}
