"""A production-shaped deployment on this machine, for the tests: the instance of
`deploy/dagster.yaml` on a fresh PostgreSQL database of the local server, `dagster-daemon` and
`dagster-webserver` as real subprocesses on loopback, both sandbox servers, a local group robot
for the alerts. Everything is started here and stopped (process groups killed, database
dropped) on the way out.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
import sqlalchemy as sa

from sandbox import Faults, SandboxServers
from tests.ops.receiver import RobotReceiver

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ROBOT_KEY = "robot-key-0123456789"


@dataclass
class Deployment:
    url: str  # the webserver
    env: dict[str, str]
    data_dir: Path
    dagster_home: Path
    instance_db_url: str
    robot: RobotReceiver
    servers: SandboxServers

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        response = requests.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}},
                                 timeout=120)
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def postgres_database(prefix: str):
    """A database of its own on the shared server, dropped afterwards whatever happened."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as con:
        con.execute(sa.text(f'create database "{name}"'))
    try:
        yield name
    finally:
        with admin.connect() as con:
            con.execute(sa.text(f'drop database if exists "{name}" with (force)'))
        admin.dispose()


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path):
    """A subprocess in its own process group (the daemon and the webserver start code
    servers and run workers of their own): the whole group is ended on the way out."""
    with open(log, "wb") as output:
        child = subprocess.Popen(args, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    try:
        yield child
    finally:
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(child.pid, sig)
            except ProcessLookupError:
                break
            try:
                child.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue


def wait_until(ready, what: str, timeout: float = 180.0, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = ready()
        except (requests.ConnectionError, requests.Timeout):
            value = None
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


DAEMON_HEALTH = "{ instance { daemonHealth { allDaemonStatuses { daemonType healthy required } } } }"


@contextmanager
def deployment(world: Path, work: Path):
    with ExitStack() as stack:
        database = stack.enter_context(postgres_database("dagster_ops"))
        servers = stack.enter_context(SandboxServers(world, faults=Faults(retry_after=0)))
        robot = stack.enter_context(RobotReceiver())
        dagster_home = work / "dagster_home"
        dagster_home.mkdir()
        shutil.copy(ROOT / "deploy" / "dagster.yaml", dagster_home / "dagster.yaml")
        data_dir = work / "data"
        port = free_port()
        env = {
            **os.environ,
            **servers.env(),
            "DAGSTER_HOME": str(dagster_home),
            "DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": "5432", "DAGSTER_PG_USER": "postgres",
            "DAGSTER_PG_PASSWORD": "", "DAGSTER_PG_DB": database,
            "DATA_DIR": str(data_dir),
            "WAREHOUSE_URL": f"duckdb:///{data_dir / 'warehouse.duckdb'}",
            "PII_HASH_KEY": "deployment-test-key-" + uuid.uuid4().hex,
            "ALERT_WEBHOOK_URL": f"{robot.url}/cgi-bin/webhook/send?key={ROBOT_KEY}",
            "DAGSTER_UI_URL": f"http://127.0.0.1:{port}",
        }
        bin_dir = Path(sys.executable).parent
        stack.enter_context(process(
            [str(bin_dir / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            env, work / "webserver.log"))
        stack.enter_context(process(
            [str(bin_dir / "dagster-daemon"), "run", "-w", "workspace.yaml"], env, work / "daemon.log"))
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: requests.get(f"{url}/server_info", timeout=5).ok, "the webserver")
        found = Deployment(url, env, data_dir, dagster_home,
                           f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}", robot, servers)

        def daemons_healthy():
            statuses = found.graphql(DAEMON_HEALTH)["instance"]["daemonHealth"]["allDaemonStatuses"]
            wanted = {"SCHEDULER", "SENSOR", "QUEUED_RUN_COORDINATOR"}
            return wanted <= {s["daemonType"] for s in statuses if s["healthy"]}

        wait_until(daemons_healthy, "the daemon's scheduler, sensor and run queue", every=1.0)
        yield found
