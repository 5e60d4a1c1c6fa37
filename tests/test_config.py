"""Settings: the contract's variable names, sandbox defaults, and no secret in a repr."""

import dataclasses
import threading
import warnings
from pathlib import Path

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


def test_data_dir_is_one_folder_however_it_is_spelled(tmp_path, monkeypatch):
    # staging and reuse keep the landed folders' paths: `data` from the project's folder and
    # its absolute path must be the same folder to them, or a sync after the demo redoes all
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    spellings = ["data", "./data/", str(tmp_path / "data"), str(tmp_path / "data" / ".." / "data")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DevelopmentKeyWarning)
        folders = {Settings.from_env({"DATA_DIR": spelling}).data_dir for spelling in spellings}
    # and as a run's `pipeline_settings.data_dir` sets it (dataclasses.replace)
    folders |= {dataclasses.replace(Settings(), data_dir=Path(spelling)).data_dir for spelling in spellings}
    assert folders == {(tmp_path / "data").resolve()}


def test_a_sync_says_the_development_key_warning_once_not_once_a_step(tmp_path, monkeypatch):
    from dagster import asset, materialize

    from pipelines import resources
    from pipelines.resources import PipelineSettings

    monkeypatch.setattr(resources, "_development_key_warned", threading.Event())  # a new process
    monkeypatch.delenv("PII_HASH_KEY", raising=False)

    @asset
    def first(pipeline_settings: PipelineSettings) -> None:
        pipeline_settings.settings()

    @asset(deps=[first])
    def second(pipeline_settings: PipelineSettings) -> None:
        pipeline_settings.settings()

    @asset(deps=[second])
    def third(pipeline_settings: PipelineSettings) -> None:
        pipeline_settings.settings()

    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        assert materialize([first, second, third],
                           resources={"pipeline_settings": PipelineSettings(data_dir=str(tmp_path))}).success
    assert [w.category for w in shown if issubclass(w.category, DevelopmentKeyWarning)] == [DevelopmentKeyWarning]
