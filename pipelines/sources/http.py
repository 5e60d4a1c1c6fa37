"""Shared HTTP behaviour of the source clients: timeouts, bounded retries, backoff, errors.

Both source systems fail in the same ways (rate limits with a wait to honour, transient
5xx from a proxy, bodies cut short, connections dropped), but announce them differently:
the national interface with HTTP status codes and `Retry-After`, the provincial platform with
envelope codes inside HTTP 200 and `data.retry_after`. Each client turns its own signals into
a `Transient` (try again, maybe after a delay) or a `SourceError` (give up now); the loop here
owns everything else, once: how many attempts, how long to wait, and what the final error
says. The final error names the system, the endpoint and the last cursor landed, and never
carries a secret or a server message that has not been through `scrub`.

A source is a server on the other side of a network, so nothing it says is trusted to be
sane: an announced wait is capped (`max_retry_after`: `Retry-After: 1e9` or `inf` waits ten
minutes, not forever), a stream has an overall deadline (`stream_deadline`), a body has a
size limit (`max_body_bytes`, counted after decompression) and a time limit, redirects are
not followed (a 307 would carry the token request's form body, secret included, elsewhere),
and plain `http://` is refused unless the host is loopback (the sandbox) or
`SOURCES_ALLOW_PLAIN_HTTP` says so. `SOURCES_CA_BUNDLE` names the CAs to trust.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar
from urllib.parse import urlsplit

import orjson
import requests
import urllib3

from pipelines.config import ConfigurationError, display_url
from pipelines.guard import is_loopback_host
from pipelines.logging_privacy import install_log_redaction, scrub

T = TypeVar("T")

# One logger for all connector code, scrubbed as a second line of defence: messages are
# built from endpoints, counts and cursors only, but a server's error text may echo anything.
log = logging.getLogger("pipelines.sources")
install_log_redaction()


@dataclass(frozen=True)
class RetrySettings:
    """How patient a client is with one request."""

    max_attempts: int = 8
    base_delay: float = 0.5  # seconds before the 2nd attempt; doubles each time
    max_delay: float = 60.0
    connect_timeout: float = 5.0
    read_timeout: float = 60.0  # between two bytes of an answer
    max_retry_after: float = 600.0  # the longest wait a server may ask for (Retry-After)
    request_deadline: float = 600.0  # one answer, headers to last byte (a trickling body)
    stream_deadline: float = 4 * 3600.0  # one stream's walk; a rerun resumes from the checkpoint
    max_body_bytes: int = 64 * 1024 * 1024  # one answer, decompressed (a page is ~1-2 MB)

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)


class Transient(Exception):
    """A failure worth another attempt (rate limit, 5xx, truncated body, dropped connection)."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class SourceError(RuntimeError):
    """A source could not be read. The message says which system, endpoint and cursor."""

    def __init__(self, system: str, endpoint: str, reason: str, cursor: str | None = None):
        self.system = system
        self.endpoint = endpoint
        self.reason = scrub(reason)
        self.cursor = cursor
        super().__init__(
            f"{system} source, endpoint {endpoint}: {self.reason} "
            f"(last cursor landed: {cursor or 'none, walk from the beginning'})"
        )


class AuthenticationError(SourceError):
    """The source refused our credentials or signature: retrying will not help."""


class SourceUnreachable(SourceError):
    """A request's last attempt could not connect or timed out (refused, unreachable, DNS,
    timeouts): the server or the way to it is down, so the system's other streams would
    fail alike."""


class CursorExpired(Exception):
    """The provincial platform expired a paging cursor (40010): walk again from the checkpoint."""


@dataclass
class ClientStats:
    """Counters a client keeps for run metadata."""

    requests: int = 0
    retries: int = 0
    token_fetches: int = 0
    restarts: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def note_retry(self, reason: str) -> None:
        self.retries += 1
        kind = reason.split(":", 1)[0]
        self.reasons[kind] = self.reasons.get(kind, 0) + 1

    def snapshot(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "retries": self.retries,
            "token_fetches": self.token_fetches,
            "restarts": self.restarts,
        }


def backoff_delay(
    attempt: int, settings: RetrySettings, retry_after: float | None, rng: random.Random
) -> float:
    """Seconds to wait before attempt `attempt + 1`.

    Exponential with jitter (so many workers do not retry in step), never shorter than the
    server's announced wait, never longer than max_delay unless the server asks for more,
    and never longer than max_retry_after whatever it asks for.
    """
    exponential = min(settings.max_delay, settings.base_delay * 2 ** min(attempt - 1, 64))
    jittered = min(exponential * (0.5 + rng.random()), settings.max_delay)  # 50%..150%
    if retry_after is None or math.isnan(retry_after):
        return jittered
    return max(min(float(retry_after), settings.max_retry_after), jittered)


def parse_retry_after(value: object, now: datetime | None = None) -> float | None:
    """A Retry-After header or data.retry_after value as seconds (None when absent or odd).

    Seconds or an HTTP-date; negative is 0, `inf` stays inf (backoff_delay caps it), `nan`
    and anything unreadable are None (our own backoff).
    """
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()[:100]
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    if math.isnan(seconds):
        return None
    return max(0.0, seconds)


class DeadlineReached(Exception):
    """The stream's overall deadline passed (or the next wait would pass it)."""


def with_retries(
    attempt_once: Callable[[], T],
    *,
    system: str,
    endpoint: str,
    cursor: Callable[[], str | None],
    settings: RetrySettings,
    stats: ClientStats,
    rng: random.Random,
    sleep: Callable[[float], None] = time.sleep,
    deadline: float | None = None,
    stream: str | None = None,
    unreachable_advice: str = "",
) -> T:
    """Run `attempt_once` until it returns, retrying `Transient` failures with backoff.

    `attempt_once` builds and sends a fresh request each time (a new nonce and signature,
    the current token). Network errors from requests count as transient. After
    `settings.max_attempts` the last reason is raised as a `SourceError`, a
    `SourceUnreachable` (with `unreachable_advice` appended) when the last attempt could not
    connect or timed out; so it is at once when `deadline` (time.monotonic()) has passed or
    the next wait would pass it. `stream` names the stream in the per-attempt log lines (an
    endpoint such as /oauth/token serves every stream).
    """
    last_reason = "no attempt made"
    unreachable = False
    what = f"{system} {stream}" if stream else system

    def out_of_time(reason: str) -> SourceError:
        return SourceError(
            system, endpoint,
            f"stream deadline of {settings.stream_deadline:.0f}s reached ({reason}); "
            "the next sync resumes from the checkpoint", cursor(),
        )

    for attempt in range(1, settings.max_attempts + 1):
        if deadline is not None and time.monotonic() >= deadline:
            raise out_of_time(f"last failure: {last_reason}" if attempt > 1 else "before a request")
        unreachable = False
        try:
            return attempt_once()
        except Transient as failure:
            last_reason, retry_after = failure.reason, failure.retry_after
        except (requests.ConnectionError, requests.Timeout) as failure:
            # the exception text holds the URL; only its kind is useful and safe to keep
            last_reason, retry_after = f"network: {type(failure).__name__}", None
            unreachable = True
        except requests.RequestException as failure:
            last_reason, retry_after = f"transport: {type(failure).__name__}", None
        if attempt == settings.max_attempts:
            break
        stats.note_retry(last_reason)
        delay = backoff_delay(attempt, settings, retry_after, rng)
        if deadline is not None and time.monotonic() + delay > deadline:
            raise out_of_time(f"a wait of {delay:.0f}s asked; last failure: {last_reason}")
        log.warning(
            "%s %s: attempt %d/%d failed (%s); retrying in %.2fs",
            what,
            endpoint,
            attempt,
            settings.max_attempts,
            scrub(last_reason),
            delay,
        )
        sleep(delay)
    gave_up = f"gave up after {settings.max_attempts} attempts; last failure: {last_reason}"
    if unreachable:
        advice = f"; {unreachable_advice}" if unreachable_advice else ""
        raise SourceUnreachable(system, endpoint, gave_up + advice, cursor())
    raise SourceError(system, endpoint, gave_up, cursor())


TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})


@dataclass(frozen=True)
class Answer:
    """One HTTP answer read whole, within the limits: status, headers, body bytes."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes


def check_base_url(system: str, base_url: str, allow_plain_http: bool) -> None:
    """Refuse a base URL that would send credentials where they could be read or spoofed:
    not http(s), or plain http to a host other than loopback unless explicitly allowed."""
    try:
        parts = urlsplit(base_url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ConfigurationError(f"{system} API URL is not a URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigurationError(
            f"{system} API URL {display_url(base_url)!r} must be https:// (or http:// to loopback)"
        )
    if parts.scheme == "http" and not is_loopback_host(host) and not allow_plain_http:
        raise ConfigurationError(
            f"{system} API URL {display_url(base_url)!r} is plain http:// to a host that is not "
            "loopback: credentials and personal data would cross the network in clear. Use "
            "https://, or set SOURCES_ALLOW_PLAIN_HTTP=1 if the network is trusted."
        )


def server_address(base_url: str) -> str:
    """Where a base URL points, for an operator: scheme, host, port (written out even when it
    is the scheme's default) and path; user, password and query dropped."""
    try:
        parts = urlsplit(base_url)
        host = parts.hostname or ""
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme, "")
    except ValueError:
        return "<unreadable URL>"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}:{port}{parts.path}"


def raise_if_transient(response: requests.Response | Answer) -> None:
    """HTTP 429 and 5xx (a proxy in front of either system) as `Transient`, honouring the
    `Retry-After` header either of them may send."""
    status = response.status_code
    if status == 429 or status in TRANSIENT_STATUSES:
        kind = "rate limited" if status == 429 else "server"
        raise Transient(
            f"{kind}: HTTP {status}", parse_retry_after(response.headers.get("Retry-After"))
        )


class ApiClient:
    """What both source clients share: a session, retry settings, counters, and the one way
    a request is retried (`with_retries`). Subclasses say how to talk to their system."""

    system: str = ""
    # the environment variables an operator fixes when the server cannot be reached
    url_variable: str = ""

    def __init__(
        self,
        base_url: str,
        *,
        retry: RetrySettings | None = None,
        session: requests.Session | None = None,
        rng: random.Random | None = None,
        ca_bundle: str | None = None,
        allow_plain_http: bool = False,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.base_url = base_url.rstrip("/")
        check_base_url(self.system, self.base_url, allow_plain_http)
        if ca_bundle and not Path(ca_bundle).is_file():
            raise ConfigurationError("SOURCES_CA_BUNDLE names no readable file")
        # explicit on every request, so that REQUESTS_CA_BUNDLE cannot replace a bundle we set
        self.verify: bool | str = ca_bundle or True
        self.retry = retry or RetrySettings()
        self.session = session or requests.Session()
        self.rng = rng or random.Random()
        self.sleep = sleep
        self.stats = ClientStats()
        self._stream_deadlines: dict[str, float] = {}
        self._deadline: float | None = None
        self._stream: str | None = None  # the stream being walked, for log lines

    def __repr__(self) -> str:  # no secret through repr()
        return f"{type(self).__name__}(base_url={display_url(self.base_url)!r})"

    def close(self) -> None:
        self.session.close()

    def iter_window(self, stream: Any, start: Any) -> Iterator[list[dict]]:
        """The subclass's `window_pages`, under the stream's overall deadline: it starts at
        the first walk of the stream by this client and holds across restarts (cursor
        expiry), so a stream cannot run for ever, however the server behaves."""
        self._deadline = self._stream_deadlines.setdefault(
            stream.name, time.monotonic() + self.retry.stream_deadline
        )
        self._stream = stream.name
        yield from self.window_pages(stream, start)

    def unreachable_advice(self) -> str:
        """What an operator checks when no attempt could connect: the address tried (no
        credentials, no query) and the variable that sets it."""
        return (
            f"could not reach {server_address(self.base_url)} "
            f"(is the server up? check {self.url_variable})"
        )

    def window_pages(self, stream: Any, start: Any) -> Iterator[list[dict]]:
        raise NotImplementedError

    def retrying(self, attempt_once: Callable[[], T], endpoint: str, position: str | None) -> T:
        """`attempt_once` under this client's retry policy; failures name `position`."""
        return with_retries(
            attempt_once,
            system=self.system,
            endpoint=endpoint,
            cursor=lambda: position,
            settings=self.retry,
            stats=self.stats,
            rng=self.rng,
            sleep=self.sleep,
            deadline=self._deadline,
            stream=self._stream,
            unreachable_advice=self.unreachable_advice(),
        )

    def send(self, method: str, url: str, **options: Any) -> Answer:
        """One request, its answer read whole within the body's size and time limits.

        Redirects are not followed; the timeouts and the CA bundle are this client's.
        A body over `max_body_bytes` (announced or counted, after decompression) is a
        `SourceError`: the same page would be as large again. A body that trickles past
        `request_deadline` is `Transient`.
        """
        self.stats.requests += 1
        began = time.monotonic()
        response = self.session.request(
            method, url, timeout=self.retry.timeout, allow_redirects=False, stream=True,
            verify=self.verify, **options,
        )
        limit = self.retry.max_body_bytes
        endpoint = urlsplit(url).path
        try:
            announced = response.headers.get("Content-Length", "")
            if announced.strip().isdigit() and int(announced) > limit:
                raise SourceError(self.system, endpoint, f"answer of {int(announced)} bytes announced, over the limit of {limit}")
            chunks: list[bytes] = []
            size = 0
            while True:
                # read1: whatever has arrived (decompressed, at most 256 KiB), so a body that
                # trickles a byte at a time is looked at between bytes, not after all of them
                try:
                    chunk = response.raw.read1(256 * 1024, decode_content=True)
                except (urllib3.exceptions.HTTPError, OSError) as failure:
                    raise Transient(f"network: {type(failure).__name__}") from None
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise SourceError(self.system, endpoint, f"answer over the limit of {limit} bytes")
                if time.monotonic() - began > self.retry.request_deadline:
                    raise Transient(f"network: answer slower than {self.retry.request_deadline:g}s")
                chunks.append(chunk)
            # nothing left to read: a session hook may have read the body already (requests
            # then keeps it on the response); it is held to the same size limit
            body = b"".join(chunks) if chunks else (response.content or b"")
            if len(body) > limit:
                raise SourceError(self.system, endpoint, f"answer over the limit of {limit} bytes")
            return Answer(response.status_code, response.headers, body)
        finally:
            response.close()


def decode_json(response: requests.Response | Answer) -> object:
    """A response's body as JSON (`decode_body`)."""
    return decode_body(response.content)


UTF8_BOM = b"\xef\xbb\xbf"


def decode_body(body: bytes) -> object:
    """A body as JSON, or `Transient` when it is cut short or not JSON at all.

    Decoded from the bytes with orjson (UTF-8, as both interfaces send): several times
    faster than `response.json()`, which matters at a few million rows. orjson is strict: a
    body with one hostile row (an unpaired surrogate escape, invalid UTF-8 bytes, a raw
    control character, an integer beyond 64 bits) is read again by the lenient parser, so
    that the row is landed and judged on its own instead of failing its whole page. A UTF-8
    byte order mark before the body (what some gateways prepend; RFC 8259 lets a parser
    ignore it) is no part of the JSON: it made every page of a source "not JSON", retried
    until the sync failed. Duplicate keys in an object: the last wins, in both parsers.
    """
    if body[:3] == UTF8_BOM:
        body = body[3:]
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body.decode("utf-8", "surrogateescape"), strict=False)
    except (ValueError, RecursionError):
        raise Transient(f"body: truncated or not JSON ({len(body)} bytes)") from None


_SURROGATES = re.compile("[\ud800-\udfff]")


def _writable(value: object, replaced: list[int]) -> object:
    """`value` with unpaired surrogates (and invalid UTF-8 bytes, which the lenient parser
    keeps as surrogates) replaced by U+FFFD, counted in `replaced`; non-finite numbers null."""
    if isinstance(value, str):
        cleaned, count = _SURROGATES.subn("\ufffd", value)
        replaced[0] += count
        return cleaned
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {_writable(key, replaced): _writable(item, replaced) for key, item in value.items()}
    if isinstance(value, list):
        return [_writable(item, replaced) for item in value]
    return value


def record_text(row: object) -> tuple[str, bool]:
    """A row as compact JSON text, non-ASCII characters kept as they are (for landing), and
    whether text that is not valid Unicode had to be replaced to write it."""
    try:
        return orjson.dumps(row).decode("utf-8"), False
    except (orjson.JSONEncodeError, TypeError):
        replaced = [0]
        cleaned = _writable(row, replaced)
        return json.dumps(cleaned, ensure_ascii=False, separators=(",", ":"), allow_nan=False), replaced[0] > 0
