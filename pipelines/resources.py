"""The Dagster resources of the pipeline, declared once, typed, and assembled once in
`pipelines/definitions.py` (`RESOURCES`).

* `PipelineSettings`: where a run works (DATA_DIR, the warehouse), for every layer;
* `SourceApis`: the clients of both source systems, one nested resource per source, with the
  retry policy declared once (`SourceResource`).

Every field defaults to None, meaning "as the environment says" (`Settings.from_env()`, read
at run time, never at import). Tests and one-off runs set a field instead of patching the
environment: `PipelineSettings(data_dir=str(tmp_path))`,
`SourceApis(national=NationalSource(api_url=...), provincial=ProvincialSource(...))`.
"""

from __future__ import annotations

import dataclasses
import threading
import warnings
from pathlib import Path
from typing import Optional

from dagster import ConfigurableResource
from pydantic import Field

from pipelines.config import DevelopmentKeyWarning, Settings
from pipelines.sources.http import ApiClient, RetrySettings
from pipelines.sources.national.client import NationalApi
from pipelines.sources.national.streams import NATIONAL_PAGE_SIZE
from pipelines.sources.provincial.client import ProvincialApi
from pipelines.sources.provincial.streams import PROVINCIAL_PAGE_SIZE


class PipelineSettings(ConfigurableResource):
    """Settings for a run: the environment, with any field set here taking precedence."""

    data_dir: Optional[str] = None
    # may hold a password: never in a repr (WAREHOUSE_URL in the environment is better still)
    warehouse_url: Optional[str] = Field(default=None, repr=False)
    warehouse_schema: Optional[str] = None  # default: DuckDB main, PostgreSQL the current schema
    sandbox_truth_dir: Optional[str] = None
    # Skip a staging, resolution or publish step whose inputs are unchanged since it last ran
    # (pipelines/reuse.py); false rebuilds everything from the landed pages.
    reuse_unchanged: bool = True
    # A staging or resolution step with work to do runs it in a child process of its own when
    # its input files hold at least this many MiB (0: always; -1: never): the sync's process
    # then stays small and the sync's peak memory is its largest step's (assets/step_process.py).
    # Below it (100k persons: 35 MiB landed, 23 MiB staged) the child's own imports cost more
    # memory than the leftovers it avoids (measured: README, "Whole sync").
    step_process_min_mb: float = 64.0
    # How many tables a staging step that runs in step processes stages side by side, each in
    # a process of its own (1: one after another). Two keep both cores of the machine busy;
    # the step's peak memory is then its two largest tables' at once (README, "Whole sync").
    staging_processes: int = 2

    def setup_for_execution(self, context) -> None:
        # every step that writes DATA_DIR has this resource: in a step process of its own
        # (the multiprocess executor), it must not outlive the run's process and its lock
        from pipelines.locks import die_with_the_run

        die_with_the_run()

    def settings(self) -> Settings:
        overrides = {
            "data_dir": Path(self.data_dir) if self.data_dir else None,
            "warehouse_url": self.warehouse_url,
            "sandbox_truth_dir": self.sandbox_truth_dir,
        }
        with warnings.catch_warnings():
            if _development_key_warned.is_set():
                warnings.simplefilter("ignore", DevelopmentKeyWarning)
            environment = Settings.from_env()
        _development_key_warned.set()
        return dataclasses.replace(environment, **{k: v for k, v in overrides.items() if v is not None})


# Dagster shows a warning again in every step (each step resets Python's record of warnings
# shown): the development key's is said by the first step that reads the settings, not by all
# thirteen of a sync.
_development_key_warned = threading.Event()


def _environment() -> Settings:
    with warnings.catch_warnings():
        # the connectors hash nothing: the PII key warning belongs to the steps that do
        warnings.simplefilter("ignore", DevelopmentKeyWarning)
        return Settings.from_env()


class SourceResource(ConfigurableResource):
    """What both source resources share: how patient a client is (see `RetrySettings`)."""

    max_attempts: int = 8
    base_delay_seconds: float = 0.5
    max_delay_seconds: float = 60.0
    read_timeout_seconds: float = 60.0
    max_retry_after_seconds: float = 600.0
    stream_deadline_seconds: float = 4 * 3600.0
    max_body_bytes: int = 64 * 1024 * 1024

    def retry_settings(self) -> RetrySettings:
        return RetrySettings(
            max_attempts=self.max_attempts,
            base_delay=self.base_delay_seconds,
            max_delay=self.max_delay_seconds,
            read_timeout=self.read_timeout_seconds,
            max_retry_after=self.max_retry_after_seconds,
            stream_deadline=self.stream_deadline_seconds,
            max_body_bytes=self.max_body_bytes,
        )

    def transport(self, env: Settings) -> dict:
        """TLS options of the client: SOURCES_CA_BUNDLE, SOURCES_ALLOW_PLAIN_HTTP."""
        return {"ca_bundle": env.sources_ca_bundle or None, "allow_plain_http": env.allow_plain_http}

    def api(self) -> ApiClient:
        raise NotImplementedError


class NationalSource(SourceResource):
    """The national interface (OAuth2, keyset paging). Unset fields come from Settings."""

    api_url: Optional[str] = Field(default=None, repr=False)  # may carry user:password@
    client_id: Optional[str] = None
    client_secret: Optional[str] = Field(default=None, repr=False)
    region: Optional[str] = None
    page_size: int = NATIONAL_PAGE_SIZE

    def api(self) -> NationalApi:
        env = _environment()
        return NationalApi(
            self.api_url or env.national_api_url,
            self.client_id or env.national_client_id,
            self.client_secret or env.national_client_secret,
            self.region or env.national_region,
            page_size=self.page_size,
            retry=self.retry_settings(),
            **self.transport(env),
        )


class ProvincialSource(SourceResource):
    """The 志愿贵州 interface (signed requests, cursors). Unset fields come from Settings."""

    api_url: Optional[str] = Field(default=None, repr=False)
    app_key: Optional[str] = None
    app_secret: Optional[str] = Field(default=None, repr=False)
    page_size: int = PROVINCIAL_PAGE_SIZE

    def api(self) -> ProvincialApi:
        env = _environment()
        return ProvincialApi(
            self.api_url or env.provincial_api_url,
            self.app_key or env.provincial_app_key,
            self.app_secret or env.provincial_app_secret,
            page_size=self.page_size,
            retry=self.retry_settings(),
            **self.transport(env),
        )


class SourceApis(ConfigurableResource):
    """Both source systems; a raw asset asks for the client of its stream's source."""

    national: NationalSource
    provincial: ProvincialSource

    def api(self, source: str) -> ApiClient:
        resource = {"national": self.national, "provincial": self.provincial}[source]
        return resource.api()


RESOURCES = {
    "pipeline_settings": PipelineSettings(),
    "sources": SourceApis(national=NationalSource(), provincial=ProvincialSource()),
}
