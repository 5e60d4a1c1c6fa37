"""The production guard, tried the way a skeptical engineer would try to get around it.

The public development PII_HASH_KEY (and a key set by hand but under 32 bytes) may only be
used where everything is provably this machine. Each bypass below is a configuration an operator could write (a URL, variables of
the environment) that sends the warehouse, or the sources, somewhere else; each goes
through `Settings.from_env` and the real `publish`, which must refuse it before it touches
anything. The README's reliability table counts them:
`.venv/bin/python -m pytest -q tests/test_guard.py -k bypass`.
"""

from __future__ import annotations

import datetime as dt
import logging
import warnings

import pytest
import sqlalchemy as sa

from pipelines.config import (
    DEVELOPMENT_PII_HASH_KEY,
    DevelopmentKeyWarning,
    Settings,
)
from pipelines.guard import DevelopmentKeyRefused, is_local_warehouse
from pipelines.warehouse.publish import publish

PASSWORD = "pw-8f3a1c-secret"
REMOTE = "db.gz.example.cn"

# (what was tried, WAREHOUSE_URL, other variables of the environment)
BYPASSES = [
    ("hostaddr= beside a loopback host", f"postgresql+psycopg://etl:{PASSWORD}@127.0.0.1/wh?hostaddr=10.2.3.4", {}),
    ("hostaddr= with no host", "postgresql+psycopg://etl@/wh?hostaddr=10.2.3.4", {}),
    ("service= (the host is in pg_service.conf)", "postgresql+psycopg://etl@localhost/wh?service=warehouse", {}),
    ("host= query parameter, no URL host", f"postgresql+psycopg://etl:{PASSWORD}@/wh?host={REMOTE}", {}),
    ("host= query parameter beside a loopback host", f"postgresql+psycopg://etl@127.0.0.1/wh?host={REMOTE}", {}),
    ("host= twice, a remote second", f"postgresql+psycopg://etl@/wh?host=localhost:5432&host={REMOTE}:5432", {}),
    ("host= as a libpq list", f"postgresql+psycopg://etl@/wh?host=/var/run/postgresql,{REMOTE}", {}),
    ("PGHOST under a URL without host", "postgresql+psycopg://etl@/wh", {"PGHOST": REMOTE}),
    ("PGHOSTADDR under a loopback host", "postgresql+psycopg://etl@localhost/wh", {"PGHOSTADDR": "10.2.3.4"}),
    ("PGSERVICE", "postgresql+psycopg://etl@/wh", {"PGSERVICE": "warehouse"}),
    ("a host name that starts like loopback", "postgresql+psycopg://etl@127.0.0.1.nip.io/wh", {}),
    ("a host name that starts with localhost", "postgresql+psycopg://etl@localhost.gz.example.cn/wh", {}),
    ("psycopg2 driver with hostaddr=", "postgresql+psycopg2://etl@localhost/wh?hostaddr=10.2.3.4", {}),
    ("duckdb:///md: (MotherDuck)", "duckdb:///md:volunteers", {}),
    ("duckdb:///MD: in capitals", "duckdb:///MD:volunteers", {}),
    ("duckdb:///motherduck:", "duckdb:///motherduck:volunteers", {}),
    ("duckdb:///md: with a token", "duckdb:///md:volunteers?motherduck_token=abc", {}),
    ("a DuckDB URL with an option the guard does not know", "duckdb:////srv/etl/w.duckdb?motherduck_token=abc", {}),
    ("a DuckDB file on S3", "duckdb:///s3://bucket/warehouse.duckdb", {}),
    ("a DuckDB URL with a host", f"duckdb://{REMOTE}/warehouse.duckdb", {}),
    ("MySQL read_default_file= (the host is in an option file)",
     "mysql+pymysql://etl@localhost/wh?read_default_file=/etc/mysql/warehouse.cnf", {}),
    ("a URL that does not parse", f"postgresql+psycopg://etl:{PASSWORD}@[{REMOTE}/wh", {}),
    ("the national source not on loopback", None, {"NATIONAL_API_URL": "https://data.zyfw.example.cn"}),
    ("the provincial source not on loopback", None, {"PROVINCIAL_API_URL": "http://10.20.30.40:8602/gw"}),
]

# provably local: the guard must not refuse these (or the sandbox and the tests could not run)
LOCAL = [
    ("duckdb:////srv/etl/warehouse.duckdb", {}),
    ("duckdb:///:memory:", {}),
    ("duckdb:////srv/etl/w.duckdb?access_mode=read_write&threads=2", {}),
    ("sqlite:////srv/etl/w.db", {}),
    ("postgresql+psycopg://postgres@127.0.0.1:5432/test", {}),
    ("postgresql+psycopg://postgres@127.8.9.10/test", {}),
    ("postgresql+psycopg://postgres@localhost/test", {}),
    ("postgresql+psycopg://postgres@[::1]:5432/test", {}),
    ("postgresql+psycopg:///test?host=/var/run/postgresql", {}),
    ("postgresql+psycopg://postgres@/test?host=localhost&hostaddr=127.0.0.1", {}),
    ("postgresql+psycopg://postgres@/test", {}),
    ("postgresql+psycopg://postgres@/test", {"PGHOST": "/var/run/postgresql"}),
    ("postgresql+psycopg://postgres@localhost/test", {"PGHOSTADDR": "127.0.0.1"}),
]

AS_OF = dt.date(2026, 12, 4)


def settings_from(environment: dict[str, str], data_dir) -> Settings:
    """The settings an operator's environment makes, without PII_HASH_KEY: the development key."""
    with pytest.warns(DevelopmentKeyWarning):
        return Settings.from_env({"DATA_DIR": str(data_dir), **environment})


@pytest.mark.parametrize("what, url, environment", BYPASSES, ids=[b[0] for b in BYPASSES])
def test_bypass_is_refused(what, url, environment, tmp_path, caplog):
    environment = {**environment, **({"WAREHOUSE_URL": url} if url else {})}
    settings = settings_from(environment, tmp_path)
    with caplog.at_level(logging.DEBUG), pytest.raises(DevelopmentKeyRefused) as refused:
        publish(settings, as_of=AS_OF)
    message = str(refused.value)
    assert "PII_HASH_KEY" in message and PASSWORD not in message + caplog.text
    assert not any(tmp_path.iterdir())  # refused before anything was built or written


@pytest.mark.parametrize("url, environment", LOCAL, ids=[u for u, _ in LOCAL])
def test_what_is_provably_local_stays_allowed(url, environment):
    assert is_local_warehouse(url, environment)


def test_with_a_real_key_the_guard_stays_out_of_the_way(tmp_path):
    """The guard is about the development key only: a production key publishes anywhere."""
    from pipelines.guard import development_key_refusal

    for _, url, environment in BYPASSES:
        env = {**environment, **({"WAREHOUSE_URL": url} if url else {}), "PII_HASH_KEY": "k" * 32}
        assert development_key_refusal(Settings.from_env(env)) is None


def test_libpq_goes_where_hostaddr_and_pghost_say_not_where_the_url_says(monkeypatch):
    """Why the guard reads query parameters and the environment: against the real server,
    a URL whose host names no machine at all connects (hostaddr= decides), and a URL
    without a host connects over TCP once PGHOST is set."""
    hostaddr = sa.create_engine("postgresql+psycopg://postgres@no-such-host.invalid:5432/test?hostaddr=127.0.0.1")
    with hostaddr.connect() as connection:
        assert connection.execute(sa.text("SELECT inet_server_addr()::text")).scalar_one().startswith("127.0.0.1")
    hostaddr.dispose()
    monkeypatch.setenv("PGHOST", "127.0.0.1")
    environment = sa.create_engine("postgresql+psycopg://postgres@/test")
    with environment.connect() as connection:  # a Unix socket would answer NULL
        assert connection.execute(sa.text("SELECT inet_server_addr()::text")).scalar_one().startswith("127.0.0.1")
    environment.dispose()


# --- the key ------------------------------------------------------------------------------


SHORT_KEYS = [
    "k" * 31,
    "密" * 10,  # 30 bytes in UTF-8: bytes count, not characters
    "test-key",
    " " + "k" * 26 + " ",  # 28 bytes: spaces around the key are part of it
]


@pytest.mark.parametrize("key", SHORT_KEYS)
def test_a_short_pii_hash_key_hashes_on_this_machine_and_publishes_nowhere_else(key, tmp_path):
    """The contract takes the variable's value, its UTF-8 bytes, as the key: a test's short
    key makes the contract's id_hash on this machine (with a warning). A key that short is
    guessed offline from the hashes, so a warehouse or source elsewhere is refused, as with
    the development key."""
    from pipelines.guard import development_key_refusal

    with pytest.warns(DevelopmentKeyWarning, match="bytes long"):
        local = Settings.from_env({"PII_HASH_KEY": key, "DATA_DIR": str(tmp_path)})
    assert local.pii_hash_key == key  # as set, spaces and all
    assert development_key_refusal(local) is None
    for what, url, environment in BYPASSES:
        with pytest.warns(DevelopmentKeyWarning):
            remote = Settings.from_env({**environment, **({"WAREHOUSE_URL": url} if url else {}),
                                        "PII_HASH_KEY": key, "DATA_DIR": str(tmp_path)})
        refusal = development_key_refusal(remote)
        assert refusal is not None, what
        assert "bytes" in refusal and key.strip() not in refusal and PASSWORD not in refusal


@pytest.mark.parametrize("key", ["k" * 32, "密" * 11, "  " + "k" * 30 + "  "])  # the last: 34 bytes, spaces counted
def test_a_key_of_32_bytes_or_more_is_a_production_key(key):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        settings = Settings.from_env({"PII_HASH_KEY": key})
    assert settings.pii_hash_key == key and not settings.uses_short_key


def test_the_development_key_set_by_hand_is_still_the_development_key():
    with pytest.warns(DevelopmentKeyWarning, match="not set"):
        settings = Settings.from_env({"PII_HASH_KEY": DEVELOPMENT_PII_HASH_KEY})
    assert settings.uses_development_key and not settings.uses_short_key


def test_a_blank_pii_hash_key_is_unset():
    with pytest.warns(DevelopmentKeyWarning, match="not set"):
        assert Settings.from_env({"PII_HASH_KEY": "   "}).uses_development_key


# --- secrets never shown ------------------------------------------------------------------

SECRETS = ["natsecret-1a2b", "provsecret-3c4d", "hashkey-5e6f-" + "x" * 24, PASSWORD,
           "sslpw-7a8b", "mdtoken-9c0d", "urlpw-1111"]


def test_no_secret_in_any_repr_display_or_log(caplog):
    from pipelines.resources import NationalSource, PipelineSettings, ProvincialSource
    from pipelines.sources.national.client import NationalApi

    settings = Settings.from_env({
        "NATIONAL_API_URL": "https://etl:urlpw-1111@data.zyfw.example.cn/api?token=urlpw-1111",
        "NATIONAL_CLIENT_SECRET": SECRETS[0],
        "PROVINCIAL_APP_SECRET": SECRETS[1],
        "PII_HASH_KEY": SECRETS[2],
        "WAREHOUSE_URL": f"postgresql+psycopg://etl:{PASSWORD}@{REMOTE}/wh"
                         "?sslpassword=sslpw-7a8b&motherduck_token=mdtoken-9c0d&sslmode=require",
    })
    client = NationalApi(settings.national_api_url, "id", settings.national_client_secret)
    shown = [
        repr(settings), str(settings), f"{settings}", settings.warehouse_display, repr(client),
        repr(PipelineSettings(warehouse_url=settings.warehouse_url)),
        repr(NationalSource(api_url=settings.national_api_url, client_secret=SECRETS[0])),
        repr(ProvincialSource(app_secret=SECRETS[1])),
    ]
    with caplog.at_level(logging.INFO):
        logging.getLogger("pipelines.sources").info("settings %s / %r", settings, client)
    shown.append(caplog.text)
    leaked = [secret for secret in SECRETS for text in shown if secret in text]
    assert not leaked
    # still useful: where things are is shown
    assert REMOTE in settings.warehouse_display and "sslmode=require" in settings.warehouse_display
    assert "data.zyfw.example.cn" in repr(settings)



def test_a_sync_that_would_publish_with_the_development_key_is_refused_before_its_first_step(tmp_path):
    """Refused when the run starts (its executor, pipelines/definitions.py), not after a night
    of landing, staging and resolving; run as the contract runs it, by `dagster job execute`."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "PII_HASH_KEY")}
    env.update({"DATA_DIR": str(data_dir), "WAREHOUSE_URL": f"postgresql+psycopg://etl:{PASSWORD}@{REMOTE}/warehouse",
                "NATIONAL_API_URL": "http://127.0.0.1:9", "PROVINCIAL_API_URL": "http://127.0.0.1:9",
                "PYTHONPATH": str(Path(__file__).resolve().parents[1])})  # this checkout's code
    run = subprocess.run(
        [sys.executable, "-m", "dagster", "job", "execute", "-m", "pipelines.definitions", "-j", "sync_all"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert "DevelopmentKeyRefused" in output and "PII_HASH_KEY" in output and REMOTE in output
    assert "STEP_START" not in output and not (data_dir / "raw").exists()  # no source was called
    assert PASSWORD not in output
