"""Smoke test of the benchmarks: `bench/run_all.py --quick` runs and every table reads sensibly.

The quick sizes are small (a 1,000-person world, 10,000 rows to normalize), so this checks
that each benchmark still runs against the current code and reports plausible figures; the
figures themselves are measured by `make bench`, not here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _number(text: str) -> float:
    return float(re.sub(r"[^0-9.]", "", text))


def _table_rows(section: str, first_header: str) -> list[list[str]]:
    """The body rows of the Markdown table whose header starts with `| first_header |`."""
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


@pytest.fixture(scope="module")
def sections(tmp_path_factory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("bench")
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run_all.py"), "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:] + completed.stdout[-3000:]
    results = (out / "results.md").read_text(encoding="utf-8")
    parts = re.split(r"^## (\w+)$", results, flags=re.MULTILINE)
    found = dict(zip(parts[1::2], parts[2::2]))
    for section in found.values():  # printed as well as written
        assert section.strip() in completed.stdout
    return found


def test_every_benchmark_reports(sections):
    assert set(sections) == {"pull", "normalize", "resolve", "publish"}
    for name, section in sections.items():
        assert "**failed**" not in section, name
        assert "load average" in section, name


def test_pull_rates(sections):
    (row,) = _table_rows(sections["pull"], "persons")
    persons, rows_pulled, bare_rate, landing_rate = row[:4]
    assert _number(persons) == 1000
    # both systems' volunteers alone are more rows than persons
    assert _number(rows_pulled) > 1000
    assert _number(bare_rate) > 0 and _number(landing_rate) > 0
    assert 0 < _number(row[4]) <= 200  # landing / bare, in percent


def test_normalize_and_validate_steps(sections):
    section = sections["normalize"]
    rows = {row[0]: row for row in _table_rows(section, "step")}
    assert "names" in rows and "resident ID numbers" in rows
    assert any(label.startswith("quarantine rules") for label in rows)
    assert any(label.startswith("GX suite") for label in rows)
    assert "**normalizing and validating**" in rows
    for label, row in rows.items():
        assert _number(row[1]) > 0, label  # vectorized seconds
        assert _number(row[3].split(" s")[0]) > 0, label  # row-by-row seconds
        assert _number(row[5]) > 0, label  # speed-up
    # the baselines do the same work as the project's validators
    assert "agree with the project's validators on their 2,000-row sample: yes" in section
    quarantined = re.search(r"quarantined: ([^;]+);", section).group(1)
    assert "region_outside_province" in quarantined and "missing_required" in quarantined


def test_resolve_scores(sections):
    rows = {row[0]: row for row in _table_rows(sections["resolve"], "engine")}
    assert set(rows) == {"ours", "splink_chinese", "splink_default"}
    for engine, row in rows.items():
        precision, recall, f1 = (float(cell) for cell in row[4:7])
        assert 0 <= precision <= 1 and 0 <= recall <= 1 and 0 <= f1 <= 1, engine
        assert int(row[1]) > 1000  # accounts: more than persons (both systems)
    # ours on a clean small world: essentially perfect, and the hours add up
    assert float(rows["ours"][6]) > 0.98
    assert '"province_hours_match": true' in sections["resolve"]


def test_publish_rates(sections):
    rows = {row[0]: row for row in _table_rows(sections["publish"], "phase")}
    build = rows["build (29 tables and marts -> Parquet)"]
    load = rows["load DuckDB (one transaction)"]
    for row in (build, load):
        assert _number(row[1]) > 0 and _number(row[2]) > 0
    assert "fact_service" in sections["publish"]
