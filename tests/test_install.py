"""A plain `pip install .` (not editable) runs the contract's sync from another folder.

What a deployment does: install the package, then run `dagster job execute -m
pipelines.definitions -j sync_all` from wherever its service starts, with no source checkout
on the path. Everything the code reads at run time (schemas/, expectations/, the mart and
example SQL) must have shipped inside the package and be found with importlib.resources.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from sandbox import SandboxServers, generate_world

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("pipelines", "assets", "schemas", "expectations")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The python of a fresh virtual environment with the project installed, not editable.

    Its dependencies are the test environment's, reached through a `.pth` line (a folder
    named there is put on the path, but its own `.pth` files, the editable finder of the
    checkout among them, are not run): they are not what this test is about.
    """
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip())
    dependencies = sysconfig.get_paths()["purelib"]
    (site / "test_environment.pth").write_text(dependencies + "\n")
    # built from a copy: pip builds a local project in place, and the checkout stays clean
    source = tmp_path_factory.mktemp("source") / "project"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "data", "build", "*.egg-info", "__pycache__", ".tmp_dagster_home_*", ".dagster_home"))
    completed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", str(source)],
        capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return python


def test_the_installed_package_is_the_one_imported_and_carries_its_data(installed, tmp_path):
    probe = (
        "import importlib, json\n"
        f"mods = {{m: importlib.import_module(m).__file__ for m in {PACKAGES!r}}}\n"
        "from pipelines.schemas import table_names, load_mapping\n"
        "from pipelines.warehouse.spec import load_spec\n"
        "from pipelines.warehouse.dictionary import render_dictionary\n"
        "from pipelines.quality.gx_runner import check_specs\n"
        "from pipelines.warehouse.marts import mart_sql\n"
        "spec = load_spec()\n"
        "print(json.dumps({'mods': mods, 'tables': table_names(),\n"
        "  'streams': sorted(load_mapping('provincial')), 'marts': len(spec.marts),\n"
        "  'checks': len(check_specs('volunteers')), 'dictionary': len(render_dictionary()),\n"
        "  'mart_sql': len(mart_sql(spec.marts[0].name))}))\n"
    )
    completed = subprocess.run(
        [installed, "-c", probe], cwd=tmp_path, env=os.environ,
        capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    found = json.loads(completed.stdout.strip().splitlines()[-1])
    for module, path in found["mods"].items():
        assert Path(path).is_relative_to(installed.parents[1]), f"{module} came from {path}, not the install"
    assert found["tables"] == [
        "volunteers", "organizations", "projects", "services", "evaluations", "stations", "redemptions",
    ]
    assert found["streams"] == ["activities", "redemptions", "service_logs", "stations", "teams", "volunteers"]
    assert found["marts"] >= 18 and found["checks"] >= 5
    assert found["dictionary"] > 10_000 and found["mart_sql"] > 50


def test_the_installed_package_runs_the_sync_from_another_folder(installed, tmp_path):
    world = generate_world(tmp_path / "world", persons=300, seed=5, as_of=datetime(2026, 11, 1, 12))
    elsewhere = tmp_path / "service"
    elsewhere.mkdir()
    with SandboxServers(world) as servers:
        env = dict(
            os.environ, **servers.env(),
            DATA_DIR=str(tmp_path / "data"), DAGSTER_HOME=str(tmp_path / "dagster_home"),
            PII_HASH_KEY="an-installed-deployment-key-of-32-bytes",
        )
        (tmp_path / "dagster_home").mkdir()
        completed = subprocess.run(
            [installed, "-m", "dagster", "job", "execute", "-m", "pipelines.definitions", "-j", "sync_all"],
            cwd=elsewhere, env=env, capture_output=True, text=True, timeout=900,
        )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'data' / 'warehouse.duckdb'}")
    try:
        with engine.connect() as con:
            volunteers = con.execute(sa.text("select count(*) from dim_volunteer")).scalar_one()
            hours = con.execute(sa.text("select sum(hours) from fact_service")).scalar_one()
    finally:
        engine.dispose()
    assert volunteers > 200 and hours > 0
    assert list(elsewhere.iterdir()) == []  # everything went to DATA_DIR and DAGSTER_HOME
