"""Helpers shared by the connector tests: fast clients, expected and landed rows, hooks."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import pyarrow.parquet as pq

from pipelines.landing import LandingResult, land_stream, raw_files
from pipelines.sources import NATIONAL_STREAMS, PROVINCIAL_STREAMS, NationalApi, ProvincialApi
from pipelines.sources.http import RetrySettings

PERSONS = 400
SEED = 7
BEIJING = timezone(timedelta(hours=8))
# A world dated a while back, so change sets stamped "now" are clearly later.
AS_OF = datetime(2026, 6, 30, 18, 0, tzinfo=BEIJING)
# Small pages so that a few hundred persons still make many pages to walk.
NATIONAL_TEST_PAGE = 30
PROVINCIAL_TEST_PAGE = 20
FAST_RETRY = RetrySettings(max_attempts=8, base_delay=0.005, max_delay=0.05, read_timeout=30)

ALL_STREAMS = [("national", name) for name in NATIONAL_STREAMS] + [
    ("provincial", name) for name in PROVINCIAL_STREAMS
]


def national_api(servers, page_size: int = NATIONAL_TEST_PAGE, **kwargs) -> NationalApi:
    return NationalApi(
        servers.national_url,
        servers.national_client_id,
        servers.national_client_secret,
        "52",
        page_size=page_size,
        retry=kwargs.pop("retry", FAST_RETRY),
        **kwargs,
    )


def provincial_api(servers, page_size: int = PROVINCIAL_TEST_PAGE, **kwargs) -> ProvincialApi:
    return ProvincialApi(
        servers.provincial_url,
        servers.provincial_app_key,
        servers.provincial_app_secret,
        page_size=page_size,
        retry=kwargs.pop("retry", FAST_RETRY),
        **kwargs,
    )


def land_all(
    apis: dict, data_dir: Path, sync_id: str, **kwargs
) -> dict[tuple[str, str], LandingResult]:
    return {
        (source, stream): land_stream(apis[source], stream, data_dir, sync_id, **kwargs)
        for source, stream in ALL_STREAMS
    }


def source_keys(world: Path, source: str, stream: str) -> set[tuple[str, str]]:
    """(id, updated_at) of every row the server would serve now (national: region 52)."""
    con = sqlite3.connect(world / f"{source}.sqlite")
    try:
        where = " WHERE region GLOB '52*'" if source == "national" else ""
        rows = con.execute(f"SELECT id, updated_at FROM {stream}{where}").fetchall()
    finally:
        con.close()
    return {(str(row_id), updated_at) for row_id, updated_at in rows}


def source_bodies(world: Path, source: str, stream: str) -> list[str]:
    """The JSON bodies of every row of a stream, as stored."""
    con = sqlite3.connect(world / f"{source}.sqlite")
    try:
        return [body for (body,) in con.execute(f"SELECT body FROM {stream}")]
    finally:
        con.close()


def landed_keys(data_dir: Path, source: str, stream: str) -> list[tuple[str, str]]:
    """(id, updated_at) of every landed row, duplicates included."""
    keys: list[tuple[str, str]] = []
    for path in raw_files(data_dir, source, stream):
        table = pq.read_table(path, columns=["id", "updated_at"])
        keys.extend(zip(table["id"].to_pylist(), table["updated_at"].to_pylist()))
    return keys


def latest_landed(data_dir: Path, source: str, stream: str) -> set[tuple[str, str]]:
    """The newest landed version of each id, as (id, updated_at)."""
    newest: dict[str, str] = {}
    for row_id, updated_at in landed_keys(data_dir, source, stream):
        if row_id not in newest or updated_at > newest[row_id]:  # one text format per source
            newest[row_id] = updated_at
    return set(newest.items())


class PageHook:
    """A source client that runs `hook` once after the consumer has taken `after_pages` pages
    (a token expiry, a cursor expiry, a crash) and otherwise is the real client."""

    def __init__(self, api, after_pages: int, hook: Callable[[], None]):
        self.api = api
        self.after_pages = after_pages
        self.hook = hook
        self.pages = 0
        self.system = api.system
        self.stats = api.stats
        self.streams = api.streams

    def iter_window(self, stream, start):
        for rows in self.api.iter_window(stream, start):
            yield rows
            self.pages += 1
            if self.pages == self.after_pages:
                self.hook()


class Killed(BaseException):
    """Stands for the process dying: not an Exception, so nothing on the way catches it."""
