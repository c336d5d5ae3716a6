"""HTTP(S) endpoints for blackbox_exporter to probe: a server in a thread of the test process, on
a free loopback port, that answers every GET with the status the test sets (200, 401, 500), or
not at all once stopped; optionally over TLS with a certificate of a throwaway CA.

Everything is stopped by the test that started it: the thread by `shutdown()`, never by a name.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from obsbundle.tools.processes import free_port

LEAF_DAYS = 90
"""The leaf certificate's lifetime: Let's Encrypt's."""


@dataclass(frozen=True)
class Certificates:
    """A CA and a leaf certificate for 127.0.0.1 signed by it, as PEM files."""

    ca: Path
    cert: Path
    key: Path
    not_after: datetime.datetime


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificates(folder: Path) -> Certificates:
    """A throwaway CA and a leaf for 127.0.0.1 valid for LEAF_DAYS, written into `folder`."""
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("obsbundle test CA"))
        .issuer_name(_name("obsbundle test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2 * LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    not_after = now + datetime.timedelta(days=LEAF_DAYS)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = Certificates(folder / "ca.pem", folder / "leaf.pem", folder / "leaf.key", not_after)
    paths.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths.cert.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


class StatusServer:
    """Answers every GET with `status` (settable while it runs) and a short body."""

    def __init__(self, status: int, certificates: Certificates | None = None) -> None:
        self.status = status
        self.port = free_port()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = f"status {owner.status}\n".encode()
                self.send_response(owner.status)
                if owner.status == 401:
                    self.send_header("WWW-Authenticate", 'Bearer realm="api"')
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: blackbox_exporter probes every second."""

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.scheme = "http"
        if certificates is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(certificates.cert, certificates.key)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"status-server-{self.port}")

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/"

    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        """Stop answering and close the port: probes then fail with connection refused."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@contextmanager
def status_server(status: int, certificates: Certificates | None = None) -> Iterator[StatusServer]:
    server = StatusServer(status, certificates)
    server.start()
    try:
        yield server
    finally:
        if server.running:
            server.stop()
