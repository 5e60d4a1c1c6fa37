"""The HTTP plumbing both sandbox servers share: request/response values, a threaded
stdlib server, body truncation, the admin surface and per-server statistics.

Each server is an "app" with `handle(Request) -> Response`; this module turns HTTP into
those values and back, and cuts bodies short when the app asks for it (the client must see
a body that is not valid JSON: either an honest Content-Length for the cut body, or the
full Content-Length and a connection closed early).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl

from sandbox.faults import FaultDice, Faults

JSON_TYPE = "application/json; charset=utf-8"
ADMIN_PREFIX = "/_sandbox/"


@dataclass
class Request:
    method: str
    path: str  # the path exactly as sent (percent-escapes kept), without the query
    query_string: str
    params: list[tuple[str, str]]  # decoded pairs, in order ("+" and "%20" both a space)
    headers: dict[str, str]  # lower-case names
    body: bytes

    def param(self, name: str) -> str | None:
        """The last value given for a parameter, or None."""
        value = None
        for key, given in self.params:
            if key == name:
                value = given
        return value


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)
    truncate: str | None = None  # None, "short" (honest length) or "close" (early close)


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(status=status, body=body, headers=headers or {})


def proxy_error(status: int) -> Response:
    """What a reverse proxy in front of the system answers: HTML, not the API's JSON."""
    reason = {502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}
    title = f"{status} {reason[status]}"
    text = (
        f"<html><head><title>{title}</title></head><body><center><h1>{title}</h1></center>"
        "<hr><center>nginx</center></body></html>\n"
    )
    return Response(status=status, body=text.encode(), content_type="text/html")


def parse_query(query_string: str) -> list[tuple[str, str]]:
    """Decoded query pairs; raises ValueError on malformed escapes or bad UTF-8."""
    return parse_qsl(
        query_string, keep_blank_values=True, strict_parsing=False, encoding="utf-8", errors="strict"
    )


class Stats:
    """Requests per endpoint and faults per kind, counted under a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()

    def request(self, endpoint: str) -> None:
        with self._lock:
            self.requests[endpoint] += 1

    def fault(self, kind: str, amount: int = 1) -> None:
        with self._lock:
            self.faults[kind] += amount

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {"requests": dict(self.requests), "faults": dict(self.faults)}


class App:
    """What both interfaces share: a world store, faults, seeded dice, counters, and the
    sandbox's own hooks. Subclasses add `handle` (the contract) and their own admin actions."""

    def __init__(self, store: Any, faults: Faults | None, seed: int) -> None:
        self.store = store
        self.faults = faults or Faults()
        self.dice = FaultDice(seed)
        self.stats = Stats()

    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    def set_faults(self, faults: Faults) -> None:
        self.faults = faults

    def touch(self, stream: str, n: int) -> list:
        """Re-stamp n random rows of a stream as updated now (the offset-paging trap)."""
        ids = self.store.touch_random_rows(stream, n, self.dice.randint)
        self.stats.fault("rows_touched", len(ids))
        return ids

    # -- faults of a request, in the order each interface meets them ----------------------

    def proxy_failure(self, probability: float, statuses: tuple[int, ...]) -> Response | None:
        """With `probability`, the reverse proxy's HTML error in place of an answer."""
        if not self.dice.roll(probability):
            return None
        status = self.dice.choice(statuses)
        self.stats.fault(f"http_{status}")
        return proxy_error(status)

    def touch_during_walk(self, stream: str, faults: Faults) -> None:
        """With `faults.updates_during_walk`, 1-3 rows of the stream re-stamped now.

        Done before the page is read: the moved rows are met later in this walk (or in this
        very page when it is the last one), never lost between walks.
        """
        if self.dice.chance(faults.updates_during_walk):
            self.touch(stream, self.dice.randint(1, 3))

    def deliver(self, response: Response, faults: Faults) -> Response:
        """A page as sent: cut short with `faults.truncated`, else the run of faults ends."""
        if self.dice.roll(faults.truncated):
            response.truncate = self.dice.choice(("short", "close"))
            self.stats.fault(f"truncated_{response.truncate}")
        else:
            self.dice.served_clean()
        return response

    def admin_actions(self) -> dict[str, Callable[[dict], Any]]:
        return {
            "touch": lambda payload: self.touch(str(payload["stream"]), int(payload.get("n", 1))),
        }

    def release_thread_resources(self) -> None:
        self.store.release_reader()

    def close(self) -> None:
        self.store.close()


def handle_admin(app: App, request: Request) -> Response:
    """The sandbox's own hooks, outside the contract paths (used by the CLI and demos).

    GET  /_sandbox/faults         current fault settings
    POST /_sandbox/faults         JSON {"preset": "all"|"none", <field>: value, ...}
    GET  /_sandbox/stats          requests per endpoint, faults per kind
    POST /_sandbox/<action>       the server's own actions (expire-tokens, expire-cursors,
                                  touch {"stream": ..., "n": ...})
    """
    action = request.path[len(ADMIN_PREFIX) :]
    try:
        payload = json.loads(request.body or b"{}")
        if not isinstance(payload, dict):
            raise ValueError("the body must be a JSON object")
    except ValueError as error:
        return json_response(400, {"error": "invalid_request", "message": str(error)})
    if action == "faults":
        if request.method == "POST":
            try:
                app.set_faults(merge_faults(app.faults, payload))
            except (TypeError, ValueError) as error:
                return json_response(400, {"error": "invalid_request", "message": str(error)})
        return json_response(200, app.faults.to_dict())
    if action == "stats" and request.method == "GET":
        return json_response(200, app.stats.snapshot())
    actions = app.admin_actions()
    if action in actions and request.method == "POST":
        try:
            return json_response(200, {"ok": True, "result": actions[action](payload)})
        except (KeyError, TypeError, ValueError) as error:
            return json_response(400, {"error": "invalid_request", "message": str(error)})
    return json_response(404, {"error": "not_found", "message": f"no admin action {action!r}"})


def merge_faults(current: Faults, payload: dict) -> Faults:
    """Apply an admin request: an optional preset, then individual fields."""
    values = dict(payload)
    preset = values.pop("preset", None)
    if preset == "all":
        base = Faults.all_on()
    elif preset == "none":
        base = Faults()
    elif preset is None:
        base = current
    else:
        raise ValueError(f"unknown preset {preset!r} (all or none)")
    merged = base.to_dict()
    merged.update(values)
    return Faults.from_dict(merged)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a client's session reuses its connection
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms stall
    server_version = "sandbox"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        # Quiet: the request lines would flood the test output; stats count instead.
        return

    def do_GET(self) -> None:  # noqa: N802
        self._serve()

    def do_POST(self) -> None:  # noqa: N802
        self._serve()

    def do_PUT(self) -> None:  # noqa: N802
        self._serve()

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            # One SQLite connection per serving thread: the thread ends with the connection.
            release = getattr(self.server.app, "release_thread_resources", None)
            if release is not None:
                release()

    def _serve(self) -> None:
        path, _, query_string = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        app: App = self.server.app  # type: ignore[attr-defined]
        try:
            params = parse_query(query_string)
        except (ValueError, UnicodeDecodeError):
            params = None
        request = Request(self.command, path, query_string, params or [], headers, body)
        if params is None:
            response = app.bad_query(request)  # type: ignore[attr-defined]
        elif path.startswith(ADMIN_PREFIX):
            response = handle_admin(app, request)
        else:
            response = app.handle(request)
        self._send(response)

    def _send(self, response: Response) -> None:
        body = response.body
        sent = body
        length = len(body)
        if response.truncate == "short":
            sent = body[: len(body) // 2]
            length = len(sent)
        elif response.truncate == "close":
            sent = body[: len(body) // 2]
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(length))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        try:
            self.wfile.write(sent)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        if response.truncate == "close":
            # The promised length never arrives: the client reads an incomplete body.
            self.close_connection = True


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, host: str, port: int, app: App) -> None:
        self.app = app
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"
