"""Both sandbox servers in background threads of the current process, for tests and demos.

    with SandboxServers(world_dir, faults=Faults.all_on(retry_after=0)) as servers:
        env = servers.env()   # NATIONAL_* / PROVINCIAL_* pointing at these servers
        ...

Port 0 picks a free port. The servers read the world's SQLite files, so a change set
applied while they serve (`apply_changeset`) is visible on the next request.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from sandbox.faults import Faults
from sandbox.national import NationalApp
from sandbox.provincial import ProvincialApp
from sandbox.serving import SandboxHTTPServer

NATIONAL_CLIENT_ID = "guizhou-etl"
NATIONAL_CLIENT_SECRET = "sandbox-national-secret"
PROVINCIAL_APP_KEY = "guizhou-etl"
PROVINCIAL_APP_SECRET = "sandbox-provincial-secret"
DEFAULT_NATIONAL_PORT = 8601
DEFAULT_PROVINCIAL_PORT = 8602
NATIONAL_REGION = "52"


def world_credentials(world_dir: Path) -> dict[str, str]:
    """The credentials a world declares in world.json, else the sandbox defaults."""
    credentials = {
        "national_client_id": NATIONAL_CLIENT_ID,
        "national_client_secret": NATIONAL_CLIENT_SECRET,
        "provincial_app_key": PROVINCIAL_APP_KEY,
        "provincial_app_secret": PROVINCIAL_APP_SECRET,
    }
    manifest = Path(world_dir) / "world.json"
    if manifest.exists():
        declared = json.loads(manifest.read_text(encoding="utf-8")).get("credentials") or {}
        credentials.update(_flatten_credentials(declared))
    return credentials


def _flatten_credentials(declared: dict) -> dict[str, str]:
    """Accept {"national": {"client_id": ..}, ...} as well as flat national_client_id keys."""
    flat: dict[str, str] = {}
    for name, value in declared.items():
        if isinstance(value, dict):
            for inner, inner_value in value.items():
                flat[f"{name}_{inner}".lower()] = str(inner_value)
        else:
            flat[name.lower()] = str(value)
    wanted = (
        "national_client_id",
        "national_client_secret",
        "provincial_app_key",
        "provincial_app_secret",
    )
    return {name: flat[name] for name in wanted if flat.get(name)}


class SandboxServers:
    """The national and provincial sandbox servers, started on enter, stopped on exit."""

    def __init__(
        self,
        world_dir: Path | str,
        faults: Faults | None = None,
        national_port: int = 0,
        provincial_port: int = 0,
        host: str = "127.0.0.1",
        seed: int = 1,
    ) -> None:
        self.world_dir = Path(world_dir)
        credentials = world_credentials(self.world_dir)
        self.national_client_id = credentials["national_client_id"]
        self.national_client_secret = credentials["national_client_secret"]
        self.provincial_app_key = credentials["provincial_app_key"]
        self.provincial_app_secret = credentials["provincial_app_secret"]
        self._faults = faults or Faults()
        self.national = NationalApp(
            self.world_dir / "national.sqlite",
            self.national_client_id,
            self.national_client_secret,
            self._faults,
            seed=seed,
        )
        self.provincial = ProvincialApp(
            self.world_dir / "provincial.sqlite",
            self.provincial_app_key,
            self.provincial_app_secret,
            self._faults,
            seed=seed + 1,
        )
        self._host = host
        self._ports = (national_port, provincial_port)
        self._servers: list[SandboxHTTPServer] = []
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self.national_url = ""
        self.provincial_url = ""

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> "SandboxServers":
        if self._servers:
            return self
        national = SandboxHTTPServer(self._host, self._ports[0], self.national)
        provincial = SandboxHTTPServer(self._host, self._ports[1], self.provincial)
        self._servers = [national, provincial]
        self.national_url = national.url
        self.provincial_url = provincial.url
        # The national `total` counts need one pass over each table: done now, in the
        # background, for the province's region, rather than on a client's first page.
        self._stopping.clear()
        warm = threading.Thread(
            target=self.national.store.warm, args=(NATIONAL_REGION, self._stopping),
            name="sandbox-warm-counts", daemon=True,
        )
        warm.start()
        self._threads.append(warm)
        for server, name in ((national, "sandbox-national"), (provincial, "sandbox-provincial")):
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.1}, name=name, daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping.set()
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=60)  # the warm-up stops between tables
        self._servers, self._threads = [], []
        self.national.close()
        self.provincial.close()

    def __enter__(self) -> "SandboxServers":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def wait(self) -> None:
        """Block until the servers stop (the CLI's `serve`)."""
        for thread in self._threads[1:]:
            while thread.is_alive():
                thread.join(timeout=0.5)

    # -- control -------------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        return self._faults

    def set_faults(self, faults: Faults) -> None:
        """New fault settings for both servers, effective from the next request."""
        self._faults = faults
        self.national.set_faults(faults)
        self.provincial.set_faults(faults)

    def expire_cursors(self) -> None:
        """Every provincial cursor issued so far answers 40010."""
        self.provincial.expire_cursors()

    def expire_tokens(self) -> None:
        """Every national token issued so far answers 401."""
        self.national.expire_tokens()

    def touch(self, source: str, stream: str, n: int) -> list:
        """Re-stamp n random rows of one stream as updated now (moves them to the end)."""
        app = self.national if source == "national" else self.provincial
        return app.touch(stream, n)

    def apply_changeset(self, seed: int = 1, **kwargs: Any) -> dict:
        """Apply a change set to the world being served (sandbox/changes.py)."""
        from sandbox.changes import apply_changeset

        counts = apply_changeset(self.world_dir, seed=seed, **kwargs)
        self.national.store.forget_counts()
        self.provincial.store.forget_counts()
        return counts

    def env(self) -> dict[str, str]:
        """The contract's NATIONAL_* / PROVINCIAL_* variables pointing at these servers."""
        return {
            "NATIONAL_API_URL": self.national_url,
            "NATIONAL_CLIENT_ID": self.national_client_id,
            "NATIONAL_CLIENT_SECRET": self.national_client_secret,
            "NATIONAL_REGION": NATIONAL_REGION,
            "PROVINCIAL_API_URL": self.provincial_url,
            "PROVINCIAL_APP_KEY": self.provincial_app_key,
            "PROVINCIAL_APP_SECRET": self.provincial_app_secret,
        }

    @property
    def stats(self) -> dict[str, dict[str, dict[str, int]]]:
        """{"national"|"provincial": {"requests": {path: n}, "faults": {kind: n}}}."""
        return {
            "national": self.national.stats.snapshot(),
            "provincial": self.provincial.stats.snapshot(),
        }
