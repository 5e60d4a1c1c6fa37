"""Source connectors: the national interface and the 志愿贵州 platform, read over HTTP.

`national/` and `provincial/` each hold a plain client (`NationalApi`, `ProvincialApi`) and
their stream declarations; `streams.py` the shared stream model and incremental walk;
`http.py` retries, backoff and errors; `resources.py` the Dagster resources.
"""

from pipelines.sources.http import (
    AuthenticationError,
    CursorExpired,
    RetrySettings,
    SourceError,
)
from pipelines.sources.national.client import NationalApi
from pipelines.sources.national.streams import NATIONAL_STREAMS
from pipelines.sources.provincial.client import ProvincialApi, beijing_text
from pipelines.sources.provincial.streams import PROVINCIAL_STREAMS
from pipelines.sources.streams import Checkpoint, Page, Stream, walk

STREAMS = {"national": NATIONAL_STREAMS, "provincial": PROVINCIAL_STREAMS}

__all__ = [
    "AuthenticationError",
    "Checkpoint",
    "CursorExpired",
    "NATIONAL_STREAMS",
    "NationalApi",
    "PROVINCIAL_STREAMS",
    "Page",
    "ProvincialApi",
    "RetrySettings",
    "STREAMS",
    "SourceError",
    "Stream",
    "beijing_text",
    "walk",
]
