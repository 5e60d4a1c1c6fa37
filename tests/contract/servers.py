"""Two minimal source servers written from schemas/sources/*.openapi.yaml alone.

They serve a fixed list of rows and are strict where the contracts are strict, so that the
pipeline is tested against the interface as written, not against the project's own sandbox:

National (`NationalContractServer`):
- POST /oauth/token takes the client credentials in the form body only (HTTP Basic is a 401);
  a token is refused (401) after `token_uses` requests although `expires_in` says an hour,
  as after a server restart: the client must fetch a new token and repeat the request;
- listings need `region` and return only rows whose region starts with it (service records
  and evaluations by the region of their project / team);
- keyset: (updated_at, id) > (updated_since, after_id), or updated_at >= updated_since;
  `after_id` without `updated_since` is a 400; an `updated_since` without an offset is
  Beijing time; a malformed one (a '+' sent unencoded arrives as a space) is a 400;
- `page` / `page_size` apply after the key; the server serves at most `max_page` rows
  whatever page_size asks (a server may serve fewer rows than asked); `total` counts the
  rows after the key; ids are fixed-width strings;
- scripted faults: 429 with Retry-After, 502/503/504.

Provincial (`ProvincialContractServer`), behind a path prefix (`/gateway`, or `prefix`):
- every request is signed: METHOD\\nPATH\\nCANONICAL_QUERY\\nX-Timestamp\\nX-Nonce with PATH
  the path as sent, byte for byte as it arrives (prefix included, percent-escapes and all), and CANONICAL_QUERY sorted by name then value, RFC 3986
  with upper-case hex; query values are decoded with unquote (a '+' stays a '+');
  timestamp (ms) within 300 s; a nonce is spent once the signature checks out;
- envelope codes: 40101/40102/40103, 40010 (cursor expired), 42900 (data.retry_after),
  50000; HTTP 502/503 from a proxy (nothing spent);
- opaque cursors holding characters that need encoding ('+', '/', '=');
- `modified_after` inclusive, Beijing time, rows ordered by (updateTime, id).

Both record every request (`requests`) so tests can check what the client sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl, unquote, urlsplit

BEIJING = timezone(timedelta(hours=8))

NATIONAL_CLIENT_ID = "contract-client"
NATIONAL_CLIENT_SECRET = "contract-secret-n"
PROVINCIAL_APP_KEY = "contract-app"
PROVINCIAL_APP_SECRET = "contract-secret-p"
PROVINCIAL_PREFIX = "/gateway"


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    params: list[tuple[str, str]]
    headers: dict[str, str]
    at: float
    answer: str = ""


class _Server:
    """A stdlib threaded HTTP server calling `app(method, raw_path, raw_query, headers, body)`."""

    def __init__(self, app: Callable[..., tuple[int, dict, bytes]]):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, extra, payload = app(method, split.path, split.query, headers, body)
                self.send_response(status)
                content_type = extra.pop("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Type", content_type)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self):  # noqa: N802
                self._serve("GET")

            def do_POST(self):  # noqa: N802
                self._serve("POST")

            def log_message(self, *args):  # quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.port = self.httpd.server_address[1]
        del owner

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _json(status: int, payload: Any, headers: dict | None = None) -> tuple[int, dict, bytes]:
    return status, dict(headers or {}), json.dumps(payload, ensure_ascii=False).encode("utf-8")


def _html(status: int) -> tuple[int, dict, bytes]:
    return status, {"Content-Type": "text/html"}, f"<html><h1>{status}</h1></html>".encode()


def parse_updated_since(text: str) -> datetime:
    """ISO 8601; with an offset as given, without one as Beijing time. ValueError if bad."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=BEIJING)
    return moment


# -- national --------------------------------------------------------------------------


NATIONAL_PATHS = {
    "/api/v1/volunteers": "volunteers",
    "/api/v1/teams": "teams",
    "/api/v1/projects": "projects",
    "/api/v1/service-records": "service_records",
    "/api/v1/evaluations": "evaluations",
}


@dataclass
class NationalContractServer:
    rows: dict[str, list[dict]]
    max_page: int = 3
    token_uses: int = 7
    # path -> list of fault answers to give, one per request, before serving normally
    faults: dict[str, list[tuple[int, dict]]] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)

    def __post_init__(self):
        self._lock = threading.Lock()
        self._tokens: dict[str, int] = {}
        self._issued = 0
        self._server = _Server(self.app)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.port}"

    def __enter__(self):
        self._server.start()
        return self

    def __exit__(self, *exc):
        self._server.stop()

    # region of a row, for the province filter
    def _region_of(self, stream: str, row: dict) -> str:
        if stream == "volunteers":
            return row["albp0020"]
        if stream == "teams":
            return row["albe0012"]
        if stream == "projects":
            return row["albx0021"]
        if stream == "service_records":
            for project in self.rows["projects"]:
                if project["albx0001"] == row["albx0001"]:
                    return project["albx0021"]
            return ""
        if stream == "evaluations":
            for team in self.rows["teams"]:
                if team["albe0001"] == row["albe0001"]:
                    return team["albe0012"]
            return ""
        raise KeyError(stream)

    def app(self, method, path, query, headers, body):
        params = parse_qsl(query, keep_blank_values=True)
        seen = Seen(method, path, params, headers, time.monotonic())
        with self._lock:
            self.requests.append(seen)
            answer = self._answer(method, path, dict(params), headers, body)
        seen.answer = str(answer[0])
        return answer

    def _answer(self, method, path, params, headers, body):
        if path == "/oauth/token":
            if method != "POST" or "authorization" in headers:
                return _json(401, {"error": "invalid_client", "message": "form body only"})
            form = dict(parse_qsl(body.decode("utf-8")))
            if (
                form.get("grant_type") != "client_credentials"
                or form.get("client_id") != NATIONAL_CLIENT_ID
                or form.get("client_secret") != NATIONAL_CLIENT_SECRET
            ):
                return _json(401, {"error": "invalid_client"})
            self._issued += 1
            token = f"tok-{self._issued}"
            self._tokens[token] = 0
            return _json(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})
        if path not in NATIONAL_PATHS:
            return _json(404, {"error": "not_found"})
        auth = headers.get("authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
        if token not in self._tokens or self._tokens[token] >= self.token_uses:
            return _json(401, {"error": "invalid_token", "message": "expired"})
        self._tokens[token] += 1
        pending = self.faults.get(path)
        if pending:
            status, extra = pending.pop(0)
            if status in (502, 503, 504):
                return _html(status)
            return _json(status, {"error": "rate_limited"}, extra)
        region = params.get("region")
        if not region or not region.isdigit() or not 2 <= len(region) <= 6:
            return _json(400, {"error": "bad_request", "message": "region"})
        stream = NATIONAL_PATHS[path]
        try:
            since = parse_updated_since(params["updated_since"]) if "updated_since" in params else None
            page = int(params.get("page", "1"))
            page_size = int(params.get("page_size", "100"))
        except ValueError:
            return _json(400, {"error": "bad_request", "message": "parameter"})
        after_id = params.get("after_id")
        if after_id is not None and since is None:
            return _json(400, {"error": "bad_request", "message": "after_id needs updated_since"})
        if page < 1 or not 1 <= page_size <= 1000:
            return _json(400, {"error": "bad_request", "message": "paging"})
        rows = [r for r in self.rows[stream] if self._region_of(stream, r).startswith(region)]
        keyed = sorted(
            ((datetime.fromisoformat(r["updated_at"]), r["id"], r) for r in rows),
            key=lambda t: (t[0], t[1]),
        )
        if since is not None and after_id is not None:
            keyed = [t for t in keyed if (t[0], t[1]) > (since, after_id)]
        elif since is not None:
            keyed = [t for t in keyed if t[0] >= since]
        served = min(page_size, self.max_page)  # this server serves fewer rows than asked
        start = (page - 1) * served
        items = [t[2] for t in keyed[start : start + served]]
        return _json(200, {"items": items, "page": page, "page_size": served, "total": len(keyed)})


# -- provincial ------------------------------------------------------------------------

PROVINCIAL_PATHS = {
    "/open/v2/teams": "teams",
    "/open/v2/volunteers": "volunteers",
    "/open/v2/activities": "activities",
    "/open/v2/service-logs": "service_logs",
    "/open/v2/stations": "stations",
    "/open/v2/timebank/redemptions": "redemptions",
}
UNRESERVED = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def rfc3986(text: str) -> str:
    """Percent-encoding as the contract writes it: unreserved kept, upper-case hex."""
    return "".join(chr(b) if b in UNRESERVED else f"%{b:02X}" for b in text.encode("utf-8"))


def contract_signature(secret: str, method: str, path: str, params, ts: str, nonce: str) -> str:
    canonical = "&".join(f"{rfc3986(k)}={rfc3986(v)}" for k, v in sorted(params))
    message = "\n".join([method, path, canonical, ts, nonce])
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def beijing_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S")


@dataclass
class ProvincialContractServer:
    rows: dict[str, list[dict]]
    max_page: int = 4
    # the path prefix of PROVINCIAL_API_URL, as an operator writes it (may need escapes)
    prefix: str = PROVINCIAL_PREFIX
    # path -> list of faults, one per request: ("http", 502) / ("code", 42900) /
    # ("cursor_code", 40010): the latter applies to the next request that carries a cursor
    faults: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)

    def __post_init__(self):
        self._lock = threading.Lock()
        self._nonces: set[str] = set()
        self._cursors: dict[str, tuple[str, str, float, int]] = {}
        self._server = _Server(self.app)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.port}{self.prefix}"

    def __enter__(self):
        self._server.start()
        return self

    def __exit__(self, *exc):
        self._server.stop()

    def app(self, method, path, query, headers, body):
        # strict decoding: '+' is a plus, not a space (only %20 is a space)
        params = [
            (unquote(k, errors="strict"), unquote(v, errors="strict"))
            for k, _, v in (pair.partition("=") for pair in query.split("&") if pair)
        ]
        seen = Seen(method, path, params, headers, time.monotonic())
        with self._lock:
            self.requests.append(seen)
            answer = self._answer(method, path, params, headers)
        seen.answer = answer[2][:60].decode("utf-8", "replace")
        return answer

    def _envelope(self, code: int, msg: str = "", data: dict | None = None):
        payload = {"code": code, "msg": msg}
        if data is not None:
            payload["data"] = data
        return _json(200, payload)

    def _answer(self, method, path, params, headers):
        # routed on the decoded path; signed over `path` exactly as it arrived
        decoded, prefix = unquote(path), unquote(self.prefix)
        if not decoded.startswith(prefix + "/"):
            return _html(404)
        route = decoded[len(prefix):]
        pending = self.faults.get(route)
        if pending and pending[0][0] == "http":  # the proxy answers; nothing reaches the platform
            return _html(pending.pop(0)[1])
        if headers.get("x-app-key") != PROVINCIAL_APP_KEY:
            return self._envelope(40101, "unknown app key")
        ts, nonce = headers.get("x-timestamp", ""), headers.get("x-nonce", "")
        expected = contract_signature(PROVINCIAL_APP_SECRET, method, path, params, ts, nonce)
        if not hmac.compare_digest(expected, headers.get("x-signature", "")):
            return self._envelope(40101, "bad signature")
        if not ts.isdigit() or abs(int(ts) - time.time() * 1000) > 300_000:
            return self._envelope(40102, "stale timestamp")
        if nonce in self._nonces:
            return self._envelope(40103, "nonce reused")
        self._nonces.add(nonce)  # spent, whatever the answer
        if route not in PROVINCIAL_PATHS:
            return self._envelope(40000, "no such endpoint")
        values = dict(params)
        if pending:
            kind, code = pending[0]
            if kind == "code":
                pending.pop(0)
                return self._envelope(code, "fault", {"retry_after": 1} if code == 42900 else None)
            if kind == "cursor_code" and "cursor" in values:
                pending.pop(0)
                return self._envelope(code, "cursor fault")
        stream = PROVINCIAL_PATHS[route]
        try:
            limit = int(values.get("limit", "100"))
            since = beijing_time(values["modified_after"]) if "modified_after" in values else None
        except ValueError:
            return self._envelope(40000, "bad parameter")
        if not 1 <= limit <= 500:
            return self._envelope(40000, "bad limit")
        ordered = sorted(self.rows[stream], key=lambda r: (beijing_time(r["updateTime"]), r["id"]))
        if "cursor" in values:
            issued = self._cursors.get(values["cursor"])
            if issued is None or issued[0] != stream or time.time() - issued[2] > 600:
                return self._envelope(40010, "cursor expired")
            since_text, offset = issued[1], issued[3]
            since = beijing_time(since_text) if since_text else None
        else:
            offset = 0
            since_text = values.get("modified_after", "")
        if since is not None:
            ordered = [r for r in ordered if beijing_time(r["updateTime"]) >= since]
        served = min(limit, self.max_page)
        page = ordered[offset : offset + served]
        has_more = offset + served < len(ordered)
        next_cursor = None
        if has_more:
            # opaque, and full of characters that must be percent-encoded
            raw = f"{stream}|{since_text}|{offset + served}|{len(self._cursors)}".encode()
            next_cursor = base64.b64encode(b"\xfb\xff" + raw).decode()
            self._cursors[next_cursor] = (stream, since_text, time.time(), offset + served)
        return self._envelope(
            0, "ok", {"list": page, "has_more": has_more, "next_cursor": next_cursor}
        )
