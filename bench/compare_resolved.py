"""Are two copies of the resolution's outputs the same? (bench/resolve_step.py --copy-outputs)

Every file of the two folders (and of their state/ subfolders): Parquet files must have the
same schema (column names and Arrow types) and the same rows as a multiset, every column
compared (DuckDB EXCEPT ALL both ways, so the row order does not matter); summary.json must be
equal but for its timing and `work` (full or incremental); any other file byte for byte.

  .venv/bin/python bench/compare_resolved.py /work/bench-data/baseline-100k-resolved /tmp/after
Exit status 1 and one line per difference when they differ.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq


def parquet_differences(left: Path, right: Path) -> list[str]:
    left_schema, right_schema = pq.read_schema(left), pq.read_schema(right)
    problems = []
    left_types = {f.name: str(f.type) for f in left_schema}
    right_types = {f.name: str(f.type) for f in right_schema}
    if list(left_types) != list(right_types):
        return [f"columns differ: {list(left_types)} vs {list(right_types)}"]
    for name in left_types:
        if left_types[name] != right_types[name]:
            problems.append(f"column {name}: type {left_types[name]} vs {right_types[name]}")
    con = duckdb.connect()
    counts = []
    for a, b in ((left, right), (right, left)):
        counts.append(con.execute(
            f"SELECT count(*) FROM (SELECT * FROM read_parquet('{a}') EXCEPT ALL "
            f"SELECT * FROM read_parquet('{b}'))").fetchone()[0])
    rows = [con.execute(f"SELECT count(*) FROM read_parquet('{p}')").fetchone()[0] for p in (left, right)]
    if rows[0] != rows[1]:
        problems.append(f"rows {rows[0]} vs {rows[1]}")
    if counts != [0, 0]:
        problems.append(f"rows only on the left: {counts[0]}, only on the right: {counts[1]}")
    return problems


def differences(left: Path, right: Path) -> list[str]:
    names = sorted({p.relative_to(left) for p in left.rglob("*") if p.is_file()}
                   | {p.relative_to(right) for p in right.rglob("*") if p.is_file()})
    problems = []
    for name in names:
        a, b = left / name, right / name
        if not (a.exists() and b.exists()):
            problems.append(f"{name}: only in {left if a.exists() else right}")
        elif name.suffix == ".parquet":
            problems += [f"{name}: {p}" for p in parquet_differences(a, b)]
        elif name.name == "summary.json":
            sa, sb = json.loads(a.read_text()), json.loads(b.read_text())
            for how in ("seconds", "work"):  # how the run went about it, not what it found
                sa.pop(how, None), sb.pop(how, None)
            if sa != sb:
                problems.append(f"{name}: summaries differ")
        elif a.read_bytes() != b.read_bytes():
            problems.append(f"{name}: content differs")
    return problems


def main() -> None:
    left, right = Path(sys.argv[1]), Path(sys.argv[2])
    problems = differences(left, right)
    for problem in problems:
        print(problem)
    print(f"{'DIFFERENT' if problems else 'identical'}: {left} vs {right}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
