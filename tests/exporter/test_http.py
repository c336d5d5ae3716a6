"""The HTTP side: TLS with basic auth, probes, compression, the timeout header, and the command's life."""

from __future__ import annotations

import datetime
import gzip
import ipaddress
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import bcrypt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from obsbundle.exporters.webconfig import BasicAuth, load_web_config
from obsbundle.tools.processes import free_port, wait_until
from tests.exporter.conftest import (
    Passwords,
    backends,
    config_from,
    parse_samples,
    postgres_entry,
    serve,
    value,
    write_config,
)
from tests.support.servers_db import PostgresServer

pytestmark = pytest.mark.servers


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "obsbundle-exporter test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "tls.crt", folder / "tls.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def test_tls_with_basic_auth_serves_only_the_right_credentials(
    postgres: PostgresServer, passwords: Passwords, tmp_path: Path
) -> None:
    cert_file, key_file = self_signed_certificate(tmp_path)
    hashed = bcrypt.hashpw(b"scrape-secret", bcrypt.gensalt(10)).decode()
    web_file = write_config(tmp_path, {"tls_server_config": {"cert_file": str(cert_file), "key_file": str(key_file)},
                                       "basic_auth_users": {"prometheus": hashed}}, "web.yaml")
    web, context = load_web_config(web_file)
    config = config_from(tmp_path, {"postgres": [postgres_entry(postgres, passwords)]})
    with serve(config, BasicAuth(web.basic_auth_users), context) as endpoint:
        assert endpoint.url.startswith("https://")
        good = endpoint.scrape(verify=str(cert_file), auth=("prometheus", "scrape-secret"))
        assert good.status_code == 200
        assert value(parse_samples(good.text), "poolq_up", source="main", kind="postgres") == 1
        again = endpoint.scrape(verify=str(cert_file), auth=("prometheus", "scrape-secret"))
        assert again.status_code == 200
        for auth in (None, ("prometheus", "wrong"), ("someone", "scrape-secret")):
            refused = endpoint.scrape(verify=str(cert_file), auth=auth)
            assert refused.status_code == 401
            assert refused.headers["WWW-Authenticate"] == 'Basic realm="obsbundle-exporter"'
            assert "poolq_" not in refused.text
        with pytest.raises(requests.exceptions.SSLError):
            endpoint.scrape(auth=("prometheus", "scrape-secret"))  # the certificate is not trusted by default
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(endpoint.url.replace("https://", "http://"), timeout=10)
        # Probes need no credentials and reveal nothing.
        healthy = requests.get(endpoint.url.replace("/metrics", "/-/healthy"), verify=str(cert_file), timeout=10)
        assert (healthy.status_code, healthy.text) == (200, "OK\n")
        # A failed handshake or plain-text client does not stop the server.
        assert endpoint.scrape(verify=str(cert_file), auth=("prometheus", "scrape-secret")).status_code == 200


def test_paths_compression_and_an_unusable_timeout_header(
    postgres: PostgresServer, passwords: Passwords, tmp_path: Path
) -> None:
    config = config_from(tmp_path, {"postgres": [postgres_entry(postgres, passwords)]})
    with serve(config) as endpoint:
        base = endpoint.url.removesuffix("/metrics")
        assert requests.get(base + "/nothing", timeout=10).status_code == 404
        landing = requests.get(base + "/", timeout=10)
        assert landing.status_code == 200 and 'href="/metrics"' in landing.text
        raw = requests.get(endpoint.url, headers={"Accept-Encoding": "gzip"}, stream=True, timeout=10)
        assert raw.headers["Content-Encoding"] == "gzip"
        assert b"poolq_up" in gzip.decompress(raw.raw.read())
        bad_header = requests.get(endpoint.url, headers={"X-Prometheus-Scrape-Timeout-Seconds": "soon"}, timeout=10)
        assert bad_header.status_code == 200
        assert value(parse_samples(bad_header.text), "poolq_up", source="main", kind="postgres") == 1
        openmetrics = requests.get(endpoint.url, headers={"Accept": "application/openmetrics-text"}, timeout=10)
        assert openmetrics.headers["Content-Type"].startswith("application/openmetrics-text")
        assert openmetrics.text.endswith("# EOF\n")


@contextmanager
def exporter_process(config: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "obsbundle.exporters", "--config", str(config), "--listen", f"127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def test_the_command_serves_until_sigterm_then_closes_its_connections_and_exits_0(
    postgres: PostgresServer, passwords: Passwords, tmp_path: Path
) -> None:
    config = write_config(tmp_path, {"postgres": [postgres_entry(postgres, passwords, name="cli")]})
    port = free_port()
    log = tmp_path / "exporter.log"
    with exporter_process(config, port, log) as process:
        wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/-/healthy", timeout=2).ok, 30, "the exporter")
        response = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        assert value(parse_samples(response.text), "poolq_up", source="cli", kind="postgres") == 1
        assert "process_resident_memory_bytes" in response.text
        assert backends(postgres, "exporter-cli") == 1
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    wait_until(lambda: backends(postgres, "exporter-cli") == 0, 10, "the exporter's session to end")
    text = log.read_text()
    assert f"serving 1 sources on http://127.0.0.1:{port}/metrics" in text
    assert "received SIGTERM, shutting down" in text
    assert passwords.monitor not in text


def test_the_command_exits_1_when_its_port_is_taken(
    postgres: PostgresServer, passwords: Passwords, tmp_path: Path
) -> None:
    config = write_config(tmp_path, {"postgres": [postgres_entry(postgres, passwords)]})
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with exporter_process(config, port, tmp_path / "exporter.log") as process:
            assert process.wait(timeout=30) == 1
    log = (tmp_path / "exporter.log").read_text()
    assert f"error: cannot listen on 127.0.0.1:{port}: Address already in use" in log
