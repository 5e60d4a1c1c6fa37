"""The simulated 志愿贵州 provincial platform (source 2).

Serves a world's `provincial.sqlite` exactly as `schemas/sources/provincial.openapi.yaml`
describes: every request signed (HMAC-SHA256 over method, path, canonical query,
timestamp and nonce), every platform answer HTTP 200 with an envelope `{code, msg, data}`,
opaque cursors that expire, `modified_after` in Beijing time without an offset.

Order of checks, as the real system has it: the reverse proxy in front may answer HTTP
502/503 before the platform sees anything (no nonce spent); then the signature; once it
checks out the nonce is spent whatever the answer; then the timestamp window, the nonce's
reuse, rate limiting, transient 50000, and the parameters.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

from sandbox.faults import Faults
from sandbox.serving import JSON_TYPE, App, Request, Response, json_response
from sandbox.store import PROVINCIAL_LAYOUT, WorldStore

ROUTES = {
    "/open/v2/teams": "teams",
    "/open/v2/volunteers": "volunteers",
    "/open/v2/activities": "activities",
    "/open/v2/service-logs": "service_logs",
    "/open/v2/stations": "stations",
    "/open/v2/timebank/redemptions": "redemptions",
}
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
TIMESTAMP_WINDOW_MS = 300_000
NONCE_MEMORY_S = 600
MODIFIED_AFTER_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")

OK = 0
BAD_PARAMETER = 40000
CURSOR_EXPIRED = 40010
BAD_SIGNATURE = 40101
STALE_TIMESTAMP = 40102
NONCE_REUSED = 40103
RATE_LIMITED = 42900
INTERNAL_ERROR = 50000
MESSAGES = {
    BAD_PARAMETER: "参数错误",
    CURSOR_EXPIRED: "游标已过期",
    BAD_SIGNATURE: "签名错误",
    STALE_TIMESTAMP: "时间戳已过期",
    NONCE_REUSED: "nonce 重复",
    RATE_LIMITED: "请求过于频繁",
    INTERNAL_ERROR: "系统繁忙",
}


class EnvelopeError(Exception):
    """A platform refusal: HTTP 200 with a non-zero code."""

    def __init__(self, code: int, detail: str = "", data: dict | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.data = data


def rfc3986(text: str) -> str:
    """Percent-encode all but the RFC 3986 unreserved characters, upper-case hex."""
    return quote(text, safe="")  # quote keeps A-Z a-z 0-9 - . _ ~ and writes upper-case hex


def canonical_query(params: list[tuple[str, str]]) -> str:
    """Decoded pairs sorted by name then value, each encoded, joined by '&'."""
    return "&".join(f"{rfc3986(name)}={rfc3986(value)}" for name, value in sorted(params))


def signature(app_secret: str, method: str, path: str, query: str, timestamp: str, nonce: str) -> str:
    message = "\n".join([method.upper(), path, query, timestamp, nonce])
    return hmac.new(app_secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def envelope(code: int, data: dict | None = None, detail: str = "") -> Response:
    payload: dict[str, Any] = {"code": code, "msg": "success" if code == OK else MESSAGES[code]}
    if detail:
        payload["msg"] += f": {detail}"
    if data is not None:
        payload["data"] = data
    return json_response(200, payload)


class CursorCodec:
    """Opaque cursors: the last key, the stream and the issue time, HMAC-protected.

    Stateless, so a cursor can be retried until it expires; a forged or altered cursor
    is a bad parameter, an old one (or one issued before `expire_all`) is 40010.
    """

    def __init__(self, key: bytes) -> None:
        self._key = key
        self.valid_from_ms = 0  # cursors issued before this are expired

    def issue(self, stream: str, updated_at: str, row_id: int) -> str:
        payload = json.dumps(
            {"s": stream, "u": updated_at, "i": row_id, "t": int(time.time() * 1000)},
            separators=(",", ":"),
        ).encode()
        tag = hmac.new(self._key, payload, hashlib.sha256).digest()[:16]
        return _b64(payload) + "." + _b64(tag)

    def read(self, cursor: str, stream: str, ttl_s: int) -> tuple[str, int]:
        try:
            payload_text, tag_text = cursor.split(".")
            payload = _unb64(payload_text)
            tag = _unb64(tag_text)
        except ValueError as error:
            raise EnvelopeError(BAD_PARAMETER, "cursor is malformed") from error
        expected = hmac.new(self._key, payload, hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(tag, expected):
            raise EnvelopeError(BAD_PARAMETER, "cursor is not one this platform issued")
        fields = json.loads(payload)
        if fields["s"] != stream:
            raise EnvelopeError(BAD_PARAMETER, "cursor belongs to another list")
        now_ms = int(time.time() * 1000)
        if fields["t"] < self.valid_from_ms or now_ms - fields["t"] > ttl_s * 1000:
            raise EnvelopeError(CURSOR_EXPIRED, "start again from your last checkpoint")
        return fields["u"], int(fields["i"])

    def expire_all(self) -> None:
        self.valid_from_ms = int(time.time() * 1000) + 1


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]+", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class NonceLedger:
    """Nonces seen in the last 10 minutes (spent once a signature checks out)."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._next_sweep = time.monotonic() + 60

    def spend(self, nonce: str) -> bool:
        """Record the nonce; True when it was already spent within the memory window."""
        now = time.monotonic()
        with self._lock:
            if now >= self._next_sweep:
                cutoff = now - NONCE_MEMORY_S
                self._seen = {key: seen for key, seen in self._seen.items() if seen >= cutoff}
                self._next_sweep = now + 60
            previous = self._seen.get(nonce)
            self._seen[nonce] = now
        return previous is not None and now - previous < NONCE_MEMORY_S


class ProvincialApp(App):
    """Request handling of the provincial interface over one world's provincial.sqlite."""

    def __init__(
        self,
        db_path: Path,
        app_key: str,
        app_secret: str,
        faults: Faults | None = None,
        seed: int = 2,
    ) -> None:
        super().__init__(WorldStore(db_path, PROVINCIAL_LAYOUT), faults, seed)
        self.app_key = app_key
        self.app_secret = app_secret
        self.nonces = NonceLedger()
        # Derived from the secret, so cursors survive a restart of the sandbox.
        self.cursors = CursorCodec(hashlib.sha256(b"cursor:" + app_secret.encode()).digest())

    # -- control -------------------------------------------------------------------------

    def expire_cursors(self) -> None:
        """Every cursor issued so far answers 40010 from now on."""
        self.cursors.expire_all()

    def admin_actions(self) -> dict[str, Callable[[dict], Any]]:
        return {**super().admin_actions(), "expire-cursors": lambda payload: self.expire_cursors()}

    # -- requests ------------------------------------------------------------------------

    def bad_query(self, request: Request) -> Response:
        return envelope(BAD_PARAMETER, detail="query string is not valid UTF-8 percent-encoding")

    def handle(self, request: Request) -> Response:
        stream = ROUTES.get(request.path)
        if stream is None:
            return json_response(404, {"code": 40400, "msg": f"no such interface: {request.path}"})
        self.stats.request(request.path)
        if request.method != "GET":
            return json_response(405, {"code": 40500, "msg": "use GET"})
        faults = self.faults
        # Half of the transient errors come from the proxy, before the platform (and its
        # nonce ledger) sees the request; the other half is the platform's own 50000.
        failure = self.proxy_failure(faults.server_error / 2, (502, 503))
        if failure is not None:
            return failure
        try:
            self._authenticate(request)
            if self.dice.roll(faults.rate_limit):
                self.stats.fault("rate_limited")
                raise EnvelopeError(RATE_LIMITED, data={"retry_after": faults.retry_after})
            if self.dice.roll(faults.server_error / 2):
                self.stats.fault("code_50000")
                raise EnvelopeError(INTERNAL_ERROR)
            self.touch_during_walk(stream, faults)
            response = self._list(stream, request)
        except EnvelopeError as refusal:
            if refusal.code == CURSOR_EXPIRED:
                self.stats.fault("cursor_expired")
            return envelope(refusal.code, refusal.data, refusal.detail)
        return self.deliver(response, faults)

    def _authenticate(self, request: Request) -> None:
        headers = request.headers
        app_key = headers.get("x-app-key")
        timestamp = headers.get("x-timestamp")
        nonce = headers.get("x-nonce")
        given = headers.get("x-signature")
        if not (app_key and timestamp and nonce and given):
            self.stats.fault("bad_signature")
            raise EnvelopeError(BAD_SIGNATURE, "X-App-Key, X-Timestamp, X-Nonce and X-Signature are required")
        if not hmac.compare_digest(app_key.encode(), self.app_key.encode()):
            self.stats.fault("bad_signature")
            raise EnvelopeError(BAD_SIGNATURE, "unknown app key")
        expected = signature(
            self.app_secret, request.method, request.path,
            canonical_query(request.params), timestamp, nonce,
        )
        if not hmac.compare_digest(given.encode(), expected.encode()):
            self.stats.fault("bad_signature")
            raise EnvelopeError(BAD_SIGNATURE)
        reused = self.nonces.spend(nonce)  # spent now, whatever the answer
        if not re.fullmatch(r"[0-9]{1,15}", timestamp) or abs(
            time.time() * 1000 - int(timestamp)
        ) > TIMESTAMP_WINDOW_MS:
            self.stats.fault("stale_timestamp")
            raise EnvelopeError(STALE_TIMESTAMP, "X-Timestamp must be within 300 s of the platform clock")
        if reused:
            self.stats.fault("nonce_reused")
            raise EnvelopeError(NONCE_REUSED)

    def _list(self, stream: str, request: Request) -> Response:
        limit_text = request.param("limit")
        if limit_text is None:
            limit = DEFAULT_LIMIT
        elif re.fullmatch(r"[0-9]{1,6}", limit_text.strip()) and 1 <= int(limit_text) <= MAX_LIMIT:
            limit = int(limit_text)
        else:
            raise EnvelopeError(BAD_PARAMETER, f"limit must be an integer from 1 to {MAX_LIMIT}")
        modified_after = request.param("modified_after")
        if modified_after is not None:
            if not MODIFIED_AFTER_PATTERN.match(modified_after):
                raise EnvelopeError(BAD_PARAMETER, "modified_after must be yyyy-MM-dd HH:mm:ss")
            try:
                datetime.strptime(modified_after, "%Y-%m-%d %H:%M:%S")
            except ValueError as error:
                raise EnvelopeError(BAD_PARAMETER, "modified_after is not a real time") from error
        cursor = request.param("cursor")
        if cursor:
            key = self.cursors.read(cursor, stream, self.faults.cursor_ttl)
        else:
            key = self.store.lowest_key(modified_after)  # inclusive: updateTime >= modified_after
        rows = self.store.page(stream, key, limit + 1)
        has_more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = (
            json.dumps(self.cursors.issue(stream, rows[-1][1], rows[-1][0])) if has_more else "null"
        )
        body = (
            b'{"code":0,"msg":"success","data":{"list":['
            + b",".join(row[2] for row in rows)
            + f'],"next_cursor":{next_cursor},"has_more":{"true" if has_more else "false"}}}}}'.encode()
        )
        return Response(status=200, body=body, content_type=JSON_TYPE)


__all__ = ["ProvincialApp", "ROUTES", "canonical_query", "signature", "rfc3986"]
