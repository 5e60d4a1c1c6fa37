"""Dagster resources for the two source clients and the raw landing zone.

Each resource is a thin shell over a plain class (`NationalApi`, `ProvincialApi`, a data
folder): its fields default to None, meaning "the value of `Settings.from_env()` when the run
starts" — never read at import, so the code location loads without the environment. Tests and
benchmarks either set the fields or use the plain classes directly.
"""

from __future__ import annotations

import warnings
from typing import Optional

from dagster import ConfigurableResource

from pipelines.config import DevelopmentKeyWarning, Settings
from pipelines.sources.http import RetrySettings
from pipelines.sources.national.client import NationalApi
from pipelines.sources.national.streams import NATIONAL_PAGE_SIZE
from pipelines.sources.provincial.client import ProvincialApi
from pipelines.sources.provincial.streams import PROVINCIAL_PAGE_SIZE


def _settings() -> Settings:
    with warnings.catch_warnings():
        # the connectors do not hash anything: the PII key warning belongs to other steps
        warnings.simplefilter("ignore", DevelopmentKeyWarning)
        return Settings.from_env()


class _RetryingClient(ConfigurableResource):
    """The retry fields both source resources share (see `RetrySettings`)."""

    max_attempts: int = 8
    base_delay_seconds: float = 0.5
    max_delay_seconds: float = 60.0
    read_timeout_seconds: float = 60.0

    def retry_settings(self) -> RetrySettings:
        return RetrySettings(
            max_attempts=self.max_attempts,
            base_delay=self.base_delay_seconds,
            max_delay=self.max_delay_seconds,
            read_timeout=self.read_timeout_seconds,
        )


class NationalClient(_RetryingClient):
    """The national interface (OAuth2, keyset paging). Unset fields come from Settings."""

    api_url: Optional[str] = None
    client_id: Optional[str] = None
    client_secret: Optional[str] = None
    region: Optional[str] = None
    page_size: int = NATIONAL_PAGE_SIZE

    def api(self) -> NationalApi:
        settings = _settings()
        return NationalApi(
            self.api_url or settings.national_api_url,
            self.client_id or settings.national_client_id,
            self.client_secret or settings.national_client_secret,
            self.region or settings.national_region,
            page_size=self.page_size,
            retry=self.retry_settings(),
        )


class ProvincialClient(_RetryingClient):
    """The 志愿贵州 interface (signed requests, cursors). Unset fields come from Settings."""

    api_url: Optional[str] = None
    app_key: Optional[str] = None
    app_secret: Optional[str] = None
    page_size: int = PROVINCIAL_PAGE_SIZE

    def api(self) -> ProvincialApi:
        settings = _settings()
        return ProvincialApi(
            self.api_url or settings.provincial_api_url,
            self.app_key or settings.provincial_app_key,
            self.app_secret or settings.provincial_app_secret,
            page_size=self.page_size,
            retry=self.retry_settings(),
        )
