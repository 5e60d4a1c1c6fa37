"""Fixtures for the connector tests: a small sandbox world, real servers, fast clients.

Every test talks HTTP to `SandboxServers` over its own copy of one generated world (tests
change the world: change sets, rows re-stamped during a walk). Expected rows are read
straight from the world's SQLite files, which is what the servers serve.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import pytest

from .helpers import AS_OF, PERSONS, SEED, national_api, provincial_api


@pytest.fixture(scope="session")
def pristine_world(tmp_path_factory) -> Path:
    from sandbox import generate_world

    out = tmp_path_factory.mktemp("connectors-world") / "world"
    return Path(generate_world(out, persons=PERSONS, seed=SEED, as_of=AS_OF))


@pytest.fixture
def world(pristine_world: Path, tmp_path: Path) -> Path:
    """A private copy of the world (SQLite + truth) that a test may change."""
    return Path(shutil.copytree(pristine_world, tmp_path / "world"))


@pytest.fixture
def servers(world: Path) -> Iterator:
    from sandbox import SandboxServers

    with SandboxServers(world) as running:
        yield running


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def apis(servers) -> dict:
    return {"national": national_api(servers), "provincial": provincial_api(servers)}
