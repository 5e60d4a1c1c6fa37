"""The data dictionary: Markdown generated from schemas/warehouse.yaml and pipelines/warehouse/queries/.

`render_dictionary()` gives the text (also shown in the Dagster UI as the publishing asset's
metadata); `python -m pipelines.warehouse.dictionary` writes docs/DATA_DICTIONARY.md. The
file is never edited by hand: a test regenerates it and compares.

Example queries are the `pipelines/warehouse/queries/*.sql` files; each starts with `-- Question: ...` and
optional `-- ...` lines that the dictionary shows above the SQL.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from pipelines.warehouse.spec import Table, WarehouseSpec, load_spec

# The queries ship with the package (the dictionary is shown in the Dagster UI); the Markdown
# file is written into a source checkout, for readers of the repository.
QUERIES_DIR = Path(__file__).resolve().parent / "queries"
DICTIONARY_PATH = Path(__file__).resolve().parents[2] / "docs" / "DATA_DICTIONARY.md"


@dataclass(frozen=True)
class ExampleQuery:
    name: str  # file stem
    question: str
    notes: tuple[str, ...]
    sql: str  # the whole file, comments included


def load_queries(queries_dir: Path = QUERIES_DIR) -> list[ExampleQuery]:
    """The example queries, in file name order."""
    queries = []
    for path in sorted(queries_dir.glob("*.sql")):
        text = path.read_text(encoding="utf-8").strip()
        header = [line[2:].strip() for line in text.splitlines() if line.startswith("--")]
        if not header or not header[0].startswith("Question:"):
            raise ValueError(f"{path.name} must start with '-- Question: ...'")
        queries.append(
            ExampleQuery(
                name=path.stem,
                question=header[0].removeprefix("Question:").strip(),
                notes=tuple(header[1:]),
                sql=text,
            )
        )
    return queries


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def _anchor(name: str) -> str:
    return name.lower()


def _table_section(table: Table) -> list[str]:
    tag = " · contract" if table.contract else ""
    lines = [f"### `{table.name}`{tag}", ""]
    if table.question:
        lines += [f"**Question:** {table.question}", ""]
    lines += [f"**Grain:** {table.grain}", ""]
    lines += [table.description, ""]
    if table.key:
        lines += [f"**Key:** {', '.join(f'`{c}`' for c in table.key)}", ""]
    lines += ["| column | type | unit | meaning |", "| --- | --- | --- | --- |"]
    for column in table.columns:
        name = f"`{column.name}`" + (" ✱" if column.required else "")
        meaning = _cell(column.description)
        if column.pii:
            meaning += " *(personal data, only published " + _cell(column.pii) + ")*"
        lines.append(f"| {name} | {column.type} | {_cell(column.unit)} | {meaning} |")
    lines.append("")
    return lines


def render_dictionary(
    spec: WarehouseSpec | None = None, queries: list[ExampleQuery] | None = None
) -> str:
    """The whole data dictionary as Markdown."""
    spec = spec or load_spec()
    queries = load_queries() if queries is None else queries
    lines = [
        f"# Data dictionary · {spec.title}",
        "",
        "<!-- Generated from schemas/warehouse.yaml and pipelines/warehouse/queries/*.sql by "
        "`python -m pipelines.warehouse.dictionary`. Do not edit by hand. -->",
        "",
        "Every table and mart the pipeline publishes to the warehouse (`WAREHOUSE_URL`: DuckDB "
        "by default, PostgreSQL in production), with each column's type, unit and meaning. "
        "Tables marked *contract* are fixed by `docs/CONTRACT.md`; their columns "
        "marked ✱ are required there and are never renamed or dropped. Types: `text`, "
        "`integer`, `bigint`, `double`, `boolean`, `date`, `timestamp` (with time zone), "
        "`decimal(p,s)`. Hours are decimal hours; dates are Beijing dates. A provincial "
        "record's hours are its minutes / 60 to six decimals, each person's rounding carried "
        "from one service to the next (in service_key order), so that a person's records sum "
        "to the person's exact total: three records of 20 minutes are 0.333333, 0.333334 and "
        "0.333333, one hour in all (rounded alone they summed to 0.999999, and 6,000 minutes "
        "in odd parts fell short of the 100 hours of the first star). Every total is the exact "
        "sum of the published figures (dim_volunteer.total_hours = the sum of "
        "fact_service.hours); a sum across persons (a month, a team) may still end in ...999 "
        "or ...001: round totals to two decimals to show them. "
        "Text is UTF-8 and sorts by code point (DuckDB, and PostgreSQL in a database of locale "
        "`C` or `C.UTF-8`: 六盘水市 before 安顺市); for pinyin order on PostgreSQL write "
        "`ORDER BY prefecture_name COLLATE \"zh-x-icu\"` (安顺市 毕节市 贵阳市 ...).",
        "",
        "No certificate number, phone or full name is stored in clear: `id_hash` is an HMAC "
        "under `PII_HASH_KEY`, `id_masked` keeps the first and last four characters, "
        "`name_masked` keeps the family name (志愿服务条例 art. 20).",
        "",
        "Each publish replaces every table and mart in one transaction: a reader sees one "
        "sync or the next, never a mix. On PostgreSQL your own views on these tables and the "
        "privileges granted on them (`GRANT SELECT ON ALL TABLES IN SCHEMA ...`, `ALTER DEFAULT "
        "PRIVILEGES IN SCHEMA ...`) outlast every publish; a table a view reads is refilled in "
        "place. One exception, PostgreSQL's own: a `REPEATABLE READ` or `SERIALIZABLE` "
        "transaction whose first statement touched no published table (a catalog query, "
        "`SELECT 1`) and that reads a table only after a publish committed sees that table "
        "empty (its rows are newer than the snapshot); begin such a transaction with a query "
        "on a published table, whose lock then holds the next publish until you finish (30 s "
        "at most: the publish then fails and runs again the next night). The same comments are "
        "in the database "
        "(`COMMENT ON TABLE` / `COMMENT ON COLUMN`).",
        "",
        "## Contents",
        "",
        "| table | kind | one row per |",
        "| --- | --- | --- |",
    ]
    for table in spec.tables.values():
        kind = "mart" if table.kind == "mart" else ("contract table" if table.contract else "table")
        lines.append(f"| [`{table.name}`](#{_anchor(table.name)}) | {kind} | {_cell(table.grain)} |")
    lines += ["", "## Tables", ""]
    for table in spec.base_tables:
        lines += _table_section(table)
    lines += [
        "## Marts",
        "",
        "Statistics computed from the tables above in the same publish, each answering a "
        "question the provincial measures ask.",
        "",
    ]
    for mart in spec.marts:
        lines += _table_section(mart)
    lines += [
        "## Example queries",
        "",
        "Standard SQL that runs unchanged on DuckDB and PostgreSQL (files in `pipelines/warehouse/queries/`; "
        "the test suite runs each against a published warehouse). More worked queries, each checked against "
        "a sandbox world's truth on both targets, and what to know before writing your own (whose county, "
        "\"today\" in Beijing time, integer division, where NULL sorts, marts' counts that do not add up): "
        "[ANSWERING_QUESTIONS.md](ANSWERING_QUESTIONS.md).",
        "",
    ]
    for number, query in enumerate(queries, start=1):
        lines += [f"### {number}. {query.question}", ""]
        if query.notes:
            lines += [" ".join(query.notes), ""]
        lines += [f"`pipelines/warehouse/queries/{query.name}.sql`", "", "```sql", query.sql, "```", ""]
    return "\n".join(lines).rstrip() + "\n"


def write_dictionary(path: Path = DICTIONARY_PATH) -> Path:
    path.write_text(render_dictionary(), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.warehouse.dictionary",
        description="Write the data dictionary (Markdown) from schemas/warehouse.yaml and the example queries.",
    )
    parser.add_argument("path", nargs="?", type=Path, default=DICTIONARY_PATH,
                        help=f"where to write it (default: {DICTIONARY_PATH.relative_to(DICTIONARY_PATH.parents[1])})")
    print(f"wrote {write_dictionary(parser.parse_args(argv).path)}")


if __name__ == "__main__":
    main()
