"""A scrape target whose health and request outcomes a test controls.

It serves prometheus-client's request counter (`http_requests_total{status}`), as the fleet's
FastAPI services do; every scrape counts one more batch of requests, of which `error_share` fail
with 500. While `healthy` is False it answers 503, so Prometheus records `up == 0`, as for a
crashed pod.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REQUESTS_PER_SCRAPE = 20


class MetricsTarget:
    def __init__(self) -> None:
        self.healthy = True
        self.error_share = 0.0
        self._ok = 0
        self._errors = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-target", daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def start(self) -> MetricsTarget:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def _exposition(self) -> bytes:
        with self._lock:
            errors = round(REQUESTS_PER_SCRAPE * self.error_share)
            self._errors += errors
            self._ok += REQUESTS_PER_SCRAPE - errors
            ok, failed = self._ok, self._errors
        return (
            "# HELP http_requests_total Requests served.\n"
            "# TYPE http_requests_total counter\n"
            f'http_requests_total{{method="GET",status="200"}} {ok}\n'
            f'http_requests_total{{method="GET",status="500"}} {failed}\n'
        ).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if not target.healthy:
                    self.send_response(503)
                    self.end_headers()
                    return
                body = target._exposition()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler
