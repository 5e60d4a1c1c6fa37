"""Client of the 志愿贵州 provincial platform's open interface (source 2).

Every request is signed (HMAC-SHA256 over METHOD, PATH, the canonical query, timestamp and
nonce). The canonical query is built from exactly the values sent, and the URL carries that
very string: letting `requests` encode `params=` would turn a space into `+` and break the
signature. Each attempt is signed anew with a fresh nonce (the platform spends a nonce once
the signature checks out, whatever the answer).

Answers come in an envelope `{code, msg, data}` inside HTTP 200: 42900 (rate limited, wait
`data.retry_after`) and 50000 are retried like HTTP 429/5xx; 40010 (cursor expired) raises
`CursorExpired` so that the walk restarts from the last row landed; 401xx (signature, stale
timestamp, nonce reused) and 40000 fail at once with a clear error.

`modified_after` is Beijing wall-clock time without an offset; the checkpoint keeps the
`updateTime` text exactly as the platform wrote it, so it goes back unchanged (a row written
in another readable form goes back in the contract's: `modified_after_text`). `beijing_text`
turns an aware datetime into that form when a time has to be computed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from datetime import datetime
from typing import Any, Iterator
from urllib.parse import quote, urlsplit

import requests

from pipelines.logging_privacy import register_secret, scrub
from pipelines.normalize.dates import utc_to_beijing_text
from pipelines.sources.http import (
    ApiClient,
    AuthenticationError,
    CursorExpired,
    SourceError,
    Transient,
    decode_json,
    parse_retry_after,
    raise_if_transient,
)
from pipelines.sources.provincial.streams import PROVINCIAL_PAGE_SIZE, PROVINCIAL_STREAMS
from pipelines.sources.streams import Checkpoint, Paging, Stream, change_time

log = logging.getLogger("pipelines.sources")

CODE_OK = 0
CODE_CURSOR_EXPIRED = 40010
CODE_RATE_LIMITED = 42900
CODE_INTERNAL = 50000
AUTH_CODES = {40101: "bad signature", 40102: "stale timestamp", 40103: "nonce reused"}
# What an operator fixes for each refusal: a bad signature is a wrong key or secret, a
# stale timestamp this machine's clock (the platform allows a few minutes' skew).
KEY_ADVICE = "check PROVINCIAL_APP_KEY / PROVINCIAL_APP_SECRET"
AUTH_ADVICE = {
    40101: KEY_ADVICE,
    40102: "check this machine's clock (NTP): the platform refuses a timestamp far from its own",
    40103: "the platform saw this nonce before: is another process replaying our requests?",
}


def refusal_reason(code: int, message: str) -> str:
    """The reason of an `AuthenticationError` for envelope code `code` (401xx), with what to
    check; `message` is the platform's text, already scrubbed."""
    name = f" ({AUTH_CODES[code]})" if code in AUTH_CODES else ""
    return f"request refused, code {code}{name}: {message}; {AUTH_ADVICE.get(code, KEY_ADVICE)}"


def beijing_text(moment: datetime) -> str:
    """An aware datetime as the platform writes time: Beijing wall clock, no offset."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime is ambiguous here: give it a time zone")
    return utc_to_beijing_text(moment)


CONTRACT_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


def modified_after_text(update_time: str) -> str:
    """The checkpoint's `updateTime` as `modified_after` takes it ("yyyy-MM-dd HH:mm:ss",
    Beijing): unchanged when the platform wrote it so (every row, by the contract); a row
    that came with another readable form (a `T`, fractions, an offset) goes back in the
    contract's form, its second floored (the start is inclusive: nothing is skipped), so
    that one such row cannot make the platform refuse every later walk (40000)."""
    if CONTRACT_TIME.fullmatch(update_time):
        return update_time
    moment = change_time(update_time)
    if moment is None:
        return update_time  # no plausible time: the landing never checkpoints one
    return beijing_text(moment)


def rfc3986(text: str) -> str:
    """Percent-encode all but the RFC 3986 unreserved characters, upper-case hex."""
    return quote(text, safe="")  # urllib leaves A-Z a-z 0-9 - . _ ~ alone, escapes in upper case


def canonical_query(params: list[tuple[str, str]]) -> str:
    """The contract's CANONICAL_QUERY: pairs sorted by name then value, encoded, joined by &."""
    return "&".join(f"{rfc3986(name)}={rfc3986(value)}" for name, value in sorted(params))


def path_as_sent(url: str) -> str:
    """The path of `url` as requests puts it on the wire. It re-quotes a URL as it prepares
    the request (non-ASCII and spaces escaped, escapes of unreserved characters undone, hex
    upper-cased), and the contract signs PATH as sent: a prefix in PROVINCIAL_API_URL written
    any other way would be signed as written, and every request refused (40101)."""
    return urlsplit(requests.Request("GET", url).prepare().url).path


def sign(app_secret: str, method: str, path: str, query: str, timestamp: str, nonce: str) -> str:
    """Lower-case hex HMAC-SHA256 of the string the contract defines."""
    message = "\n".join((method.upper(), path, query, timestamp, nonce))
    return hmac.new(app_secret.encode(), message.encode(), hashlib.sha256).hexdigest()


class ProvincialApi(ApiClient):
    """Reads the provincial platform: signing, envelope codes, opaque cursors, retries."""

    system = "provincial"
    url_variable = "PROVINCIAL_API_URL"
    streams: dict[str, Stream] = PROVINCIAL_STREAMS

    def __init__(
        self,
        base_url: str,
        app_key: str,
        app_secret: str,
        *,
        page_size: int = PROVINCIAL_PAGE_SIZE,
        **client_options: Any,
    ):
        super().__init__(base_url, **client_options)
        self.app_key = app_key
        self._app_secret = app_secret
        register_secret(app_secret)
        self.page_size = min(max(1, page_size), PROVINCIAL_PAGE_SIZE)

    def signed_request(
        self, path: str, params: list[tuple[str, str]]
    ) -> tuple[str, dict[str, str]]:
        """The URL (carrying exactly the canonical query) and headers of one signed GET."""
        query = canonical_query(params)
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        # PATH in the signature is the URL path as sent, prefix of the base URL included
        sent_path = path_as_sent(url)
        timestamp = str(int(time.time() * 1000))
        nonce = secrets.token_hex(16)
        headers = {
            "X-App-Key": self.app_key,
            "X-Timestamp": timestamp,
            "X-Nonce": nonce,
            "X-Signature": sign(self._app_secret, "GET", sent_path, query, timestamp, nonce),
            "Accept": "application/json",
        }
        return url, headers

    def _get_page_once(
        self, stream: Stream, params: list[tuple[str, str]], position: str | None
    ) -> dict[str, Any]:
        url, headers = self.signed_request(stream.path, params)  # new nonce every attempt
        response = self.send("GET", url, headers=headers)
        raise_if_transient(response)  # a proxy's 429 / 5xx, Retry-After honoured
        status = response.status_code
        if status != 200:
            raise SourceError(self.system, stream.path, f"unexpected HTTP {status}", position)
        envelope = decode_json(response)
        if not isinstance(envelope, dict) or not isinstance(envelope.get("code"), int):
            raise Transient("body: not an envelope")
        code = envelope["code"]
        data = envelope.get("data") if isinstance(envelope.get("data"), dict) else {}
        if code == CODE_OK:
            rows = data.get("list")
            if rows is None:  # an empty answer may leave the list out
                return {"list": [], "has_more": False, "next_cursor": None}
            if not isinstance(rows, list):
                raise Transient("body: envelope with a malformed list")
            return data
        message = scrub(str(envelope.get("msg", ""))[:200])
        if code == CODE_RATE_LIMITED:
            raise Transient("rate limited: code 42900", parse_retry_after(data.get("retry_after")))
        if code == CODE_INTERNAL:  # a wait it announces is honoured too (capped like any)
            raise Transient("server: code 50000", parse_retry_after(data.get("retry_after")))
        if code == CODE_CURSOR_EXPIRED:
            raise CursorExpired(stream.path)
        if 40100 <= code < 40200:
            raise AuthenticationError(
                self.system, stream.path, refusal_reason(code, message), position
            )
        raise SourceError(self.system, stream.path, f"code {code}: {message}", position)

    def get_page(
        self,
        stream: Stream,
        modified_after: str | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """The `data` of one page: after `cursor` if given, else from `modified_after`."""
        params = [("limit", str(self.page_size))]
        if cursor is not None:
            params.append(("cursor", cursor))
        elif modified_after is not None:
            params.append(("modified_after", modified_after))
        # the opaque cursor is not ours to print; the checkpoint time is what a person needs
        position = f"modified_after={modified_after}" if modified_after else None
        return self.retrying(
            lambda: self._get_page_once(stream, params, position), stream.path, position
        )

    def window_pages(self, stream: Stream, start: Checkpoint | None) -> Iterator[list[dict]]:
        """Walk `stream` from `modified_after` = the checkpoint's updateTime (inclusive) to
        the end, following `next_cursor`. A 40010 surfaces as `CursorExpired`."""
        if stream.paging is not Paging.CURSOR:
            raise ValueError(f"the provincial interface pages by cursor, not {stream.paging}")
        modified_after = modified_after_text(start.updated_at) if start is not None else None
        cursor: str | None = None
        while True:
            data = self.get_page(stream, modified_after, cursor)
            rows: list[dict] = data["list"]
            if rows:
                yield rows
            if not data.get("has_more"):
                return
            cursor = data.get("next_cursor")
            if not cursor:
                raise SourceError(
                    self.system,
                    stream.path,
                    "has_more is true but next_cursor is empty",
                    f"modified_after={modified_after}" if modified_after else None,
                )
