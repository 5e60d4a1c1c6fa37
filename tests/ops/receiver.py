"""A local stand-in for a WeCom / DingTalk group robot: an HTTP server on loopback that
keeps every message posted to it and answers as the robots do (HTTP 200, JSON `errcode`)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Posted:
    path: str
    query: dict[str, list[str]]
    body: dict


@dataclass
class RobotReceiver:
    """`errcode` is what the robot answers (0: taken; 93000 e.g. is WeCom's invalid key)."""

    errcode: int = 0
    messages: list[Posted] = field(default_factory=list)

    def __post_init__(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length).decode("utf-8"))
                split = urlsplit(self.path)
                owner.messages.append(Posted(split.path, parse_qs(split.query), body))
                answer = json.dumps({"errcode": owner.errcode,
                                     "errmsg": "ok" if owner.errcode == 0 else "invalid webhook url"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> "RobotReceiver":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def wait_for(self, count: int = 1, timeout: float = 90.0) -> list[Posted]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.2)
        return list(self.messages)
