"""The HTTP(S) endpoint: `/metrics` with optional basic auth and TLS, `/-/healthy` for probes."""

from __future__ import annotations

import gzip
import logging
import socket
import socketserver
import ssl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from obsbundle.exporters.collector import SCRAPE_TIMEOUT
from obsbundle.exporters.exposition import CONTENT_TYPE, TextWriter
from obsbundle.exporters.webconfig import BasicAuth

log = logging.getLogger(__name__)

TIMEOUT_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"
_LANDING = b"""<!doctype html>
<html><head><title>obsbundle pool &amp; queue exporter</title></head>
<body><h1>obsbundle pool &amp; queue exporter</h1><p><a href="/metrics">Metrics</a></p></body></html>
"""
# A client that has not finished its TLS handshake or request by then is dropped.
_HANDSHAKE_SECONDS = 10
_IDLE_SECONDS = 120
_WRITE_BUFFER_BYTES = 64 * 1024


def parse_listen(text: str) -> tuple[str, int]:
    """`host:port`, `[v6]:port` or `:port` (every interface) → (host, port); port 0 picks a free one.
    ValueError when malformed."""
    host, separator, port_text = text.rpartition(":")
    if not separator or not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise ValueError(f"--listen must be HOST:PORT, e.g. 0.0.0.0:9187 (got {text!r})")
    host = host.removeprefix("[").removesuffix("]")
    return host or "0.0.0.0", int(port_text)


def requested_timeout(value: str | None) -> float | None:
    """Prometheus's scrape timeout header in seconds; None when absent or not a positive number."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds > 0 else None


class MetricsHandler(BaseHTTPRequestHandler):
    server: ExporterServer
    protocol_version = "HTTP/1.1"  # keep-alive: Prometheus reuses its connection
    timeout = _IDLE_SECONDS
    # An answer's headers and body are buffered and leave in one write (one packet, one wake-up of the
    # scraper) when they fit; a larger body follows its headers at once, as Nagle's algorithm would
    # otherwise hold it for the client's delayed ACK (40 ms) on every keep-alive scrape.
    wbufsize = _WRITE_BUFFER_BYTES
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/-/healthy":
            self._send(200, b"OK\n", "text/plain; charset=utf-8")
            return
        if self.server.auth is not None and not self.server.auth.allows(self.headers.get("Authorization")):
            self._send(401, b"Unauthorized\n", "text/plain; charset=utf-8",
                       {"WWW-Authenticate": 'Basic realm="obsbundle-exporter"'})
            return
        if path == "/metrics":
            self._metrics()
        elif path == "/":
            self._send(200, _LANDING, "text/html; charset=utf-8")
        else:
            self._send(404, b"Not Found\n", "text/plain; charset=utf-8")

    def _metrics(self) -> None:
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        if not content_type.startswith("application/openmetrics-text"):
            encoder, content_type = self.server.text_writer, CONTENT_TYPE
        token = SCRAPE_TIMEOUT.set(requested_timeout(self.headers.get(TIMEOUT_HEADER)))
        try:
            body = encoder(self.server.registry)
        except Exception:
            log.exception("rendering the metrics failed")
            self._send(500, b"Internal Server Error\n", "text/plain; charset=utf-8")
            return
        finally:
            SCRAPE_TIMEOUT.reset(token)
        self._send_answer(body, content_type)

    def _send_answer(self, body: bytes, content_type: str) -> None:
        """A scrape's answer, gzipped when the scraper accepts it (Prometheus always does)."""
        headers = {}
        if "gzip" in self.headers.get("Accept-Encoding", ""):
            # The fastest level: on exposition text it takes a third of level 6's CPU for about the same size.
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        self._send(200, body, content_type, headers)

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class ExporterServer(ThreadingHTTPServer):
    """One thread per connection; TLS handshakes happen on that thread, not in the accept loop."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], registry: CollectorRegistry, auth: BasicAuth | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.registry = registry
        self.text_writer = TextWriter()
        """Writes every text-format scrape, keeping the lines of unchanged pools and queues."""
        self.auth = auth
        self.ssl_context = ssl_context
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, MetricsHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can stall on a cluster's DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.ssl_context is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(_HANDSHAKE_SECONDS)
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as error:
            log.debug("TLS handshake with %s failed: %s", client_address[0], error)
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()

    @property
    def port(self) -> int:
        return int(self.server_address[1])
