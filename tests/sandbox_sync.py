"""The contract's `sync_all`, run in this process against a sandbox world served over real HTTP.

Shared by the end-to-end tests that need a synced warehouse: the world's two servers are
started (no `Retry-After` waits), their URLs and keys joined to the test's own settings
(`DATA_DIR`, `WAREHOUSE_URL`, keys) as the environment the code location reads, and the job
run on an ephemeral instance unless the test keeps its own.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest


def sync_world(world: Path, env: dict[str, str], *, tags: dict[str, str] | None = None,
               instance: dg.DagsterInstance | None = None) -> dg.ExecuteInProcessResult:
    """Run `sync_all` over `world` with `env` set; fails the test unless the run succeeds."""
    from pipelines.definitions import defs
    from sandbox import Faults, SandboxServers

    with SandboxServers(world, faults=Faults(retry_after=0)) as servers:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in {**servers.env(), **env}.items():
                patch.setenv(name, value)
            result = defs.resolve_job_def("sync_all").execute_in_process(
                instance=instance or dg.DagsterInstance.ephemeral(), tags=tags)
    assert result.success
    return result
