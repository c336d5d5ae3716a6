"""A local stand-in for Slack's incoming webhooks: records every JSON payload posted to it.

Slack is the one component the tests cannot run. Alertmanager posts to this server exactly as it
would post to `https://hooks.slack.com/services/…`; the server answers like Slack (`200 ok`) and
keeps each request's path and body for the test to read. Any path is accepted, so one receiver
can stand in for several webhooks (one path per team) and for the dead man's switch.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from obsbundle.tools.processes import wait_until


@dataclass(frozen=True)
class Delivery:
    """One recorded POST: the path it went to, its JSON body, and when it arrived (time.monotonic())."""

    path: str
    payload: dict[str, Any]
    received_at: float


class SlackReceiver:
    """Started with `start()`, stopped with `stop()`; `deliveries()` lists what was posted so far."""

    def __init__(self) -> None:
        self._deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name="slack-receiver", daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                try:
                    payload = json.loads(body)
                except json.JSONDecodeError:
                    self.send_response(400)
                    self.end_headers()
                    self.wfile.write(b"invalid_payload")
                    return
                receiver._record(Delivery(self.path, payload, time.monotonic()))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                return

        return Handler

    def _record(self, delivery: Delivery) -> None:
        with self._lock:
            self._deliveries.append(delivery)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> SlackReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def deliveries(self, path: str | None = None) -> list[Delivery]:
        """Everything recorded so far (only what went to `path`, when given), oldest first."""
        with self._lock:
            return [d for d in self._deliveries if path is None or d.path == path]

    def wait_for(self, check: Callable[[Delivery], bool], timeout: float, what: str) -> Delivery:
        """The first delivery for which `check` holds; fails the test after `timeout` seconds."""
        found: list[Delivery] = []

        def arrived() -> bool:
            found[:] = [d for d in self.deliveries() if check(d)]
            return bool(found)

        wait_until(arrived, timeout=timeout, what=what, interval=0.05)
        return found[0]
