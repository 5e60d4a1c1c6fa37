"""Settings: the contract's variable names, sandbox defaults, and no secret in a repr."""

import warnings

import pytest

from pipelines.config import DevelopmentKeyWarning, Settings


def test_defaults_point_at_the_sandbox_and_a_local_duckdb(tmp_path):
    with pytest.warns(DevelopmentKeyWarning):
        settings = Settings.from_env({"DATA_DIR": str(tmp_path)})
    assert settings.national_api_url == "http://127.0.0.1:8601"
    assert settings.provincial_api_url == "http://127.0.0.1:8602"
    assert settings.national_region == "52"
    assert settings.resolved_warehouse_url == f"duckdb:///{tmp_path.resolve()}/warehouse.duckdb"
    assert settings.uses_development_key


def test_every_contract_variable_is_read():
    env = {
        "NATIONAL_API_URL": "https://nat.example/api/",
        "NATIONAL_CLIENT_ID": "cid",
        "NATIONAL_CLIENT_SECRET": "csecret",
        "NATIONAL_REGION": "5201",
        "PROVINCIAL_API_URL": "https://prov.example/gw",
        "PROVINCIAL_APP_KEY": "ak",
        "PROVINCIAL_APP_SECRET": "asecret",
        "WAREHOUSE_URL": "postgresql+psycopg://etl:pw@db.example/wh",
        "PII_HASH_KEY": "production-key-of-at-least-32-bytes",
        "DATA_DIR": "/srv/etl",
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a real key: no development-key warning
        settings = Settings.from_env(env)
    assert settings.national_api_url == "https://nat.example/api"
    assert (settings.national_client_id, settings.national_client_secret) == ("cid", "csecret")
    assert settings.national_region == "5201"
    assert settings.provincial_api_url == "https://prov.example/gw"
    assert (settings.provincial_app_key, settings.provincial_app_secret) == ("ak", "asecret")
    assert settings.pii_hash_key == "production-key-of-at-least-32-bytes" and not settings.uses_development_key
    assert str(settings.raw_dir) == "/srv/etl/raw"
    assert settings.resolved_warehouse_url == env["WAREHOUSE_URL"]


def test_no_secret_in_repr_or_display():
    settings = Settings.from_env({
        "NATIONAL_CLIENT_SECRET": "csecret-123",
        "PROVINCIAL_APP_SECRET": "asecret-456",
        "PII_HASH_KEY": "hash-key-789-long-enough-to-be-accepted",
        "WAREHOUSE_URL": "postgresql+psycopg://etl:pw-000@db.example/wh",
    })
    shown = repr(settings) + settings.warehouse_display
    for secret in ("csecret-123", "asecret-456", "hash-key-789", "pw-000"):
        assert secret not in shown
