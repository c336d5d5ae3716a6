"""Real servers for the exporter's tests, started once per session, and helpers to run the exporter.

Passwords are random per session, written to files the way a mounted Secret would be, so that a
test can look for them in everything the exporter says.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql

from obsbundle.exporters.config import ExporterConfig, load_config
from obsbundle.exporters.exporter import Exporter
from obsbundle.exporters.server import ExporterServer
from obsbundle.exporters.webconfig import BasicAuth
from tests.support.servers_db import (
    PgBouncerServer,
    PostgresServer,
    RabbitMQServer,
    RedisServer,
    pgbouncer_server,
    postgres_server,
    rabbitmq_server,
    redis_server,
)

MONITOR = "monitor"
"""Postgres role of the exporter (pg_monitor), RabbitMQ user of the exporter (tag monitoring)."""
APP = "app"
"""Postgres role of the applications, also a PgBouncer user."""
STATS = "stats"
"""PgBouncer stats_users entry the exporter logs in as."""


@dataclass(frozen=True)
class Passwords:
    folder: Path
    monitor: str
    app: str
    stats: str
    rabbitmq: str
    redis: str

    def file(self, name: str) -> Path:
        return self.folder / f"{name}.password"

    def all(self) -> list[str]:
        return [self.monitor, self.app, self.stats, self.rabbitmq, self.redis]


@pytest.fixture(scope="session")
def passwords() -> Iterator[Passwords]:
    folder = Path(tempfile.mkdtemp(prefix="obsbundle-secrets-"))
    values = {name: f"{name}-{secrets.token_urlsafe(18)}" for name in ("monitor", "app", "stats", "rabbitmq", "redis")}
    for name, value in values.items():
        path = folder / f"{name}.password"
        path.write_text(value + "\n", encoding="utf-8")  # a trailing newline, as `echo` writes it
        path.chmod(0o600)
    yield Passwords(folder, **values)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(passwords: Passwords) -> Iterator[PostgresServer]:
    with postgres_server() as server:
        server.create_role(MONITOR, passwords.monitor, "pg_monitor")
        server.create_role(APP, passwords.app)
        server.execute("CREATE EXTENSION pg_stat_statements")
        yield server


@pytest.fixture(scope="session")
def pgbouncer(postgres: PostgresServer, passwords: Passwords) -> Iterator[PgBouncerServer]:
    users = {APP: passwords.app, STATS: passwords.stats}
    with pgbouncer_server(postgres, users, [STATS], default_pool_size=2,
                          databases={"fixed": "dbname=postgres pool_size=7"}) as server:
        yield server


@pytest.fixture(scope="session")
def rabbitmq(passwords: Passwords) -> Iterator[RabbitMQServer]:
    with rabbitmq_server() as server:
        server.add_user(MONITOR, passwords.rabbitmq, "monitoring")
        yield server


@pytest.fixture(scope="session")
def redis_db(passwords: Passwords) -> Iterator[RedisServer]:
    with redis_server(passwords.redis) as server:
        yield server


@dataclass(frozen=True)
class Servers:
    postgres: PostgresServer
    pgbouncer: PgBouncerServer
    rabbitmq: RabbitMQServer
    redis: RedisServer


@pytest.fixture(scope="session")
def servers(postgres: PostgresServer, pgbouncer: PgBouncerServer, rabbitmq: RabbitMQServer,
            redis_db: RedisServer) -> Servers:
    """All four kinds of server, for tests that read every kind of source."""
    return Servers(postgres, pgbouncer, rabbitmq, redis_db)


def unique(prefix: str) -> str:
    """A fresh lower-case name, so that tests sharing a server never see each other's state."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


# --- Job tables -------------------------------------------------------------------------------------------

# queue, status, age in seconds
JOBS = [
    ("email", "queued", 100), ("email", "queued", 50), ("email", "queued", 10),
    ("email", "running", 200), ("email", "running", 5),
    ("sms", "queued", 5),
    ("email", "done", 1000), ("sms", "done", 1000), ("push", "done", 1000), ("push", "failed", 1000),
]


def jobs_database(postgres: PostgresServer, tables: tuple[str, ...] = ("jobs",)) -> str:
    """A fresh database whose tables (`jobs` unless told) each hold JOBS, readable by the exporter."""
    database = unique("jobs")
    postgres.create_database(database)
    for table in tables:
        name = sql.Identifier(table)
        postgres.execute(
            sql.SQL("CREATE TABLE {} (id serial PRIMARY KEY, queue text, status text NOT NULL,"
                    " created_at timestamptz NOT NULL)").format(name), dbname=database,
        )
        for queue, status, age in JOBS:
            postgres.execute(
                sql.SQL("INSERT INTO {} (queue, status, created_at)"
                        " VALUES (%s, %s, now() - make_interval(secs => %s))").format(name),
                [queue, status, age], dbname=database,
            )
        postgres.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(name, sql.Identifier(MONITOR)), dbname=database)
    return database


def jobs_entry(postgres: PostgresServer, passwords: Passwords, database: str, name: str = "jobs",
               **extra: object) -> dict[str, object]:
    settings: dict[str, object] = {
        "dbname": database, "table": "jobs", "status_column": "status", "ready_statuses": ["queued"],
        "running_statuses": ["running"], "created_column": "created_at",
    }
    return postgres_entry(postgres, passwords, name=name, **{**settings, **extra})




# --- Configuration of the exporter under test ---------------------------------------------------------


def postgres_entry(server: PostgresServer, passwords: Passwords, name: str = "main", **extra: Any) -> dict[str, Any]:
    return {"name": name, "host": "127.0.0.1", "port": server.port, "user": MONITOR,
            "password_file": str(passwords.file("monitor")), "application_name": f"exporter-{name}", **extra}


def pgbouncer_entry(server: PgBouncerServer, passwords: Passwords, name: str = "pool", **extra: Any) -> dict[str, Any]:
    return {"name": name, "host": "127.0.0.1", "port": server.port, "user": STATS,
            "password_file": str(passwords.file("stats")), "application_name": f"exporter-{name}", **extra}


def rabbitmq_entry(server: RabbitMQServer, passwords: Passwords, vhost: str, name: str = "broker",
                   **extra: Any) -> dict[str, Any]:
    # The test broker's plugin listens on a free port, not on 15692 beside the management API.
    return {"name": name, "url": server.management_url, "user": MONITOR,
            "password_file": str(passwords.file("rabbitmq")), "vhost": vhost,
            "prometheus_url": f"http://127.0.0.1:{server.prometheus_port}", **extra}


def redis_entry(server: RedisServer, passwords: Passwords, queues: list[str], name: str = "celery",
                **extra: Any) -> dict[str, Any]:
    return {"name": name, "url": server.url, "password_file": str(passwords.file("redis")), "queues": queues,
            **extra}


def write_config(folder: Path, data: dict[str, Any], name: str = "exporter.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def config_from(folder: Path, data: dict[str, Any]) -> ExporterConfig:
    """The configuration as the exporter reads it: written to a YAML file and loaded from there."""
    return load_config(write_config(folder, data))


# --- Running the exporter ---------------------------------------------------------------------------------


@contextmanager
def exporter_of(config: ExporterConfig) -> Iterator[Exporter]:
    exporter = Exporter(config, process_metrics=False)
    try:
        yield exporter
    finally:
        exporter.close()


def fresh_registry(exporter: Exporter) -> CollectorRegistry:
    """A registry holding only the exporter's collector, for get_sample_value."""
    registry = CollectorRegistry()
    registry.register(exporter.collector)
    return registry


@dataclass
class Endpoint:
    """The exporter served over HTTP in this process, on a free port of 127.0.0.1."""

    exporter: Exporter
    server: ExporterServer

    @property
    def url(self) -> str:
        scheme = "https" if self.server.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.server.port}/metrics"

    def scrape(self, timeout_header: float | None = None, **kwargs: Any) -> requests.Response:
        headers = {} if timeout_header is None else {"X-Prometheus-Scrape-Timeout-Seconds": str(timeout_header)}
        return requests.get(self.url, headers=headers, timeout=30, **kwargs)


@contextmanager
def serve(config: ExporterConfig, auth: BasicAuth | None = None, ssl_context: Any = None) -> Iterator[Endpoint]:
    with exporter_of(config) as exporter:
        server = ExporterServer(("127.0.0.1", 0), exporter.registry, auth, ssl_context)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield Endpoint(exporter, server)
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_samples(text: str) -> Samples:
    """Every sample of an exposition, keyed by (name, labels)."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def collect_once(registry: CollectorRegistry) -> Samples:
    """Every sample of one collection (each get_sample_value call would collect anew)."""
    samples: Samples = {}
    for family in registry.collect():
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def backends(postgres: PostgresServer, application_name: str, waiting_on_lock: bool = False) -> int:
    """Server sessions open under `application_name` (the exporter names its sessions per source)."""
    query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
    if waiting_on_lock:
        query += " AND wait_event_type = 'Lock'"
    (count,), = postgres.execute(query, [application_name])
    return int(count)


# --- Faults ---------------------------------------------------------------------------------------------

SCRAPE_TIMEOUT = 3.0
"""What the tests send as X-Prometheus-Scrape-Timeout-Seconds; the answer must come before it."""


def scrape_within_deadline(endpoint: Endpoint, timeout: float = SCRAPE_TIMEOUT) -> dict[str, float]:
    """Scrape with Prometheus's timeout header; the answer is a 200 within the timeout. Returns {source: up}."""
    started = time.monotonic()
    response = endpoint.scrape(timeout_header=timeout)
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert elapsed < timeout, f"answered after {elapsed:.2f}s, past the {timeout}s scrape timeout"
    return {dict(labels)["source"]: count for (name, labels), count in parse_samples(response.text).items()
            if name == "poolq_up"}


@contextmanager
def silent_server() -> Iterator[tuple[int, list[socket.socket]]]:
    """A TCP port that accepts connections and never says a word. Yields the port and the accepted sockets."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    accepted: list[socket.socket] = []
    running = True

    def accept() -> None:
        while running:
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], accepted
    finally:
        running = False
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        listener.close()
