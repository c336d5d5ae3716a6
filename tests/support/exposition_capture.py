"""Exposition fixtures captured live from the real exporters, and the servers they read.

Each exporter is started for real on a free port of 127.0.0.1, in a temporary folder of its own,
and stopped by its own process id (obsbundle.tools.processes); its answer is kept exactly as
served, headed by where it came from. The fixtures under tests/fixtures/exposition/<exporter>/
are written by

    python -m tests.support.exposition_capture --write

and tests/test_exposition_live.py starts the same components to prove that every series shape
(metric name, label names) of a committed fixture is still what the installed binary serves.

Label sets are only ever what the components print: nothing here writes a series.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pika
import requests
import yaml
from fastapi import FastAPI, HTTPException, Request, Response
from prometheus_client import Counter, Histogram, make_asgi_app
from prometheus_fastapi_instrumentator import Instrumentator
from psycopg import sql
from starlette.middleware.base import RequestResponseEndpoint

from obsbundle.monitors.probes import HTTP_REACHABLE, MODULES
from obsbundle.tools.processes import ManagedProcess, free_port, port_open, require_binary, wait_until
from tests.support.probe_targets import Certificates, make_certificates, status_server
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

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "exposition"
MODULE = "tests.support.exposition_capture"
"""This module by its import name (it is also run as __main__, and uvicorn imports its app factories)."""
WRITE_COMMAND = f"python -m {MODULE} --write"

DROPPED_PREFIXES = ("go_gc_", "go_memstats_", "process_")
"""Runtime families of the Go and Python clients: large, host-dependent, and read by no rule."""

MONITOR = "monitor"
"""PostgreSQL role (pg_monitor) and RabbitMQ user (tag monitoring) that the exporters log in as."""
APP = "app"
"""PostgreSQL role and database of the application, also a PgBouncer user."""
STATS = "stats"
"""PgBouncer stats_users entry."""

RABBITMQ_QUEUES = ("storage-uploads", "ai-inference")
"""Queue names of the EcoEco fleet (inventory/ecoeco.yaml)."""
REDIS_LISTS = {"celery": 3, "scan": 1}
"""Redis lists (Celery queues) and how many items each holds."""
REDIS_MISSING_LIST = "empty"
"""A queue name with no list behind it: both exporters report such a key as 0."""
JOBS = (
    ("email", "queued", 100), ("email", "queued", 10), ("email", "running", 200),
    ("sms", "queued", 5), ("email", "done", 1000),
)
"""Rows of the job table: queue, status, age in seconds."""


# --- What a capture is -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exposition:
    """One answer of one component, exactly as served, and where it came from."""

    exporter: str
    """Folder under tests/fixtures/exposition/."""
    name: str
    """File name without `.prom`."""
    source: str
    version: str
    capture: Callable[..., Any]
    """The function of this module that started the component."""
    text: str

    @property
    def captured(self) -> str:
        return f"{WRITE_COMMAND} ({self.capture.__name__} in tests/support/exposition_capture.py)"

    @property
    def path(self) -> Path:
        return FIXTURES / self.exporter / f"{self.name}.prom"

    def fixture_text(self) -> str:
        """The fixture file: the three header lines, then the served text less DROPPED_PREFIXES families."""
        header = f"# source: {self.source}\n# version: {self.version}\n# captured: {self.captured}\n"
        return header + drop_families(self.text, DROPPED_PREFIXES)


def drop_families(text: str, prefixes: Sequence[str]) -> str:
    """`text` without the whole families (HELP, TYPE and samples) whose name starts with one of `prefixes`;
    every other line is kept byte for byte."""
    kept: list[str] = []
    family = ""
    for line in text.splitlines(keepends=True):
        if line.startswith(("# HELP ", "# TYPE ")):
            family = line.split(" ", 3)[2]
        elif line.strip() and not line.startswith("#"):
            sample = re.split(r"[{ ]", line, maxsplit=1)[0]
            if not sample.startswith(family):  # a sample with no HELP or TYPE of its own
                family = sample
        if not family.startswith(tuple(prefixes)):
            kept.append(line)
    return "".join(kept)


@dataclass
class Live:
    """A running component; `scrape()` asks it for its expositions now."""

    scrape: Callable[[], list[Exposition]]


def _get(url: str, **params: str) -> str:
    response = requests.get(url, params=params, timeout=30, headers={"Accept": "text/plain"})
    response.raise_for_status()
    return response.text


def _answers(url: str) -> bool:
    return requests.get(url, timeout=5).ok


def debian_version(package: str) -> str:
    """The installed version of a Debian package, as dpkg knows it."""
    dpkg = require_binary("dpkg-query", "dpkg")
    result = subprocess.run([dpkg, "-W", "-f=${Version}", package], capture_output=True, text=True, check=True)
    return result.stdout.strip()


def binary_version(binary: str) -> str:
    """The upstream version a Prometheus exporter prints for `--version` (`..., version 1.5.0 (...)` or
    redis_exporter's `Redis Metrics Exporter 1.45.0-2+b4 ...`)."""
    result = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30, check=False)
    found = re.search(r"(?:version|Exporter)\s+v?([0-9][^\s,)]*)", result.stdout + result.stderr)
    if found is None:
        raise RuntimeError(f"{binary} --version printed no version: {result.stdout}{result.stderr}")
    # Debian's redis_exporter build reports its package version (1.45.0-2+b4): keep the upstream part.
    return re.sub(r"-[0-9]+(\+\w+)?$", "", found.group(1))


def pypi_versions(*packages: str) -> str:
    return ", ".join(f"{package}=={metadata.version(package)}" for package in packages)


@contextmanager
def _temp_dir(prefix: str) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def _running(process: ManagedProcess, ready: Callable[[], bool], what: str, timeout: float = 30) -> Iterator[None]:
    process.start()
    try:
        def check() -> bool:
            if not process.alive():
                raise RuntimeError(f"{process.name} exited: {process.log_tail()}")
            return ready()

        wait_until(check, timeout, what)
        yield
    finally:
        process.stop()


# --- The servers the exporters read ------------------------------------------------------------------


@dataclass(frozen=True)
class Secrets:
    """Random passwords, each also in a file the way a mounted Secret holds it."""

    folder: Path
    passwords: Mapping[str, str]

    def file(self, name: str) -> Path:
        return self.folder / f"{name}.password"


@contextmanager
def secrets_folder() -> Iterator[Secrets]:
    with _temp_dir("obsbundle-expo-secrets-") as folder:
        passwords = {name: secrets.token_urlsafe(18) for name in ("monitor", "app", "stats", "rabbitmq", "redis")}
        for name, password in passwords.items():
            path = folder / f"{name}.password"
            path.write_text(password + "\n", encoding="utf-8")
            path.chmod(0o600)
        yield Secrets(folder, passwords)


@contextmanager
def postgres(keys: Secrets) -> Iterator[PostgresServer]:
    """PostgreSQL with a monitoring role, pg_stat_statements, and an `app` database holding a job table."""
    with postgres_server() as server:
        server.create_role(MONITOR, keys.passwords["monitor"], "pg_monitor")
        server.create_role(APP, keys.passwords["app"])
        server.execute("CREATE EXTENSION pg_stat_statements")
        server.create_database(APP, owner=APP)
        server.execute(
            "CREATE TABLE jobs (id serial PRIMARY KEY, queue text, status text NOT NULL,"
            " created_at timestamptz NOT NULL)", dbname=APP,
        )
        for queue, status, age in JOBS:
            server.execute(
                "INSERT INTO jobs (queue, status, created_at) VALUES (%s, %s, now() - make_interval(secs => %s))",
                [queue, status, age], dbname=APP,
            )
        server.execute(sql.SQL("GRANT SELECT ON jobs TO {}").format(sql.Identifier(MONITOR)), dbname=APP)
        yield server


@contextmanager
def pgbouncer(server: PostgresServer, keys: Secrets) -> Iterator[PgBouncerServer]:
    """PgBouncer in front of `server`, with one application session open so that a pool exists."""
    users = {APP: keys.passwords["app"], STATS: keys.passwords["stats"]}
    with pgbouncer_server(server, users, [STATS]) as bouncer, bouncer.connect(APP, APP) as session:
        session.execute("SELECT 1")
        yield bouncer


@dataclass
class Broker:
    """RabbitMQ with the EcoEco queues: each holds ready messages, `ai-inference` also one unacked
    message held by a consumer that never acknowledges it."""

    server: RabbitMQServer
    consumer: pika.BlockingConnection


@contextmanager
def rabbitmq(keys: Secrets) -> Iterator[Broker]:
    with rabbitmq_server() as server:
        server.add_user(MONITOR, keys.passwords["rabbitmq"], "monitoring")
        server.grant(MONITOR, "/")
        publisher = server.amqp()
        try:
            channel = publisher.channel()
            for queue in RABBITMQ_QUEUES:
                channel.queue_declare(queue, durable=True)
                for _ in range(2):
                    # An AMQP timestamp, so that the head message's age can be known.
                    properties = pika.BasicProperties(timestamp=int(time.time()), delivery_mode=2)
                    channel.basic_publish("", queue, b"{}", properties)
        finally:
            publisher.close()
        # No heartbeats: this connection is not serviced while the captures run.
        consumer = pika.BlockingConnection(pika.ConnectionParameters(
            "127.0.0.1", server.amqp_port, "/", pika.PlainCredentials("guest", "guest"), heartbeat=0,
        ))
        try:
            channel = consumer.channel()
            channel.basic_qos(prefetch_count=1)
            channel.basic_consume(RABBITMQ_QUEUES[1], lambda *_: None, auto_ack=False)
            consumer.process_data_events(time_limit=1)
            server.wait_for_totals("/", RABBITMQ_QUEUES[1], {"messages_ready": 1, "messages_unacknowledged": 1})
            server.wait_for_totals("/", RABBITMQ_QUEUES[0], {"messages_ready": 2})
            yield Broker(server, consumer)
        finally:
            consumer.close()


@contextmanager
def redis(keys: Secrets) -> Iterator[RedisServer]:
    """Redis with the Celery lists of REDIS_LISTS."""
    with redis_server(keys.passwords["redis"]) as server:
        client = server.client()
        for name, length in REDIS_LISTS.items():
            client.rpush(name, *[json.dumps({"task": name, "n": n}) for n in range(length)])
        yield server


@dataclass(frozen=True)
class Backends:
    keys: Secrets
    postgres: PostgresServer
    pgbouncer: PgBouncerServer
    rabbitmq: Broker
    redis: RedisServer


def _postgres_version(server: PostgresServer) -> str:
    (version,), = server.execute("SHOW server_version")
    return str(version).split()[0]


def _pgbouncer_version() -> str:
    binary = require_binary("pgbouncer", "pgbouncer", ["/usr/sbin"])
    result = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    found = re.search(r"PgBouncer ([0-9.]+)", result.stdout + result.stderr)
    return found.group(1) if found else debian_version("pgbouncer")


def _rabbitmq_version(server: RabbitMQServer) -> str:
    response = server.api("GET", "/api/overview")
    response.raise_for_status()
    return str(response.json()["rabbitmq_version"])


def _redis_version(server: RedisServer) -> str:
    info: dict[str, Any] = server.client().info("server")
    return str(info["redis_version"])


# --- The exporters -----------------------------------------------------------------------------------


@contextmanager
def node_exporter() -> Iterator[Live]:
    """prometheus-node-exporter with its default collectors."""
    binary = require_binary("prometheus-node-exporter", "prometheus-node-exporter")
    version = binary_version(binary)
    port = free_port()
    with _temp_dir("obsbundle-expo-node-") as root:
        process = ManagedProcess("node-exporter", [binary, f"--web.listen-address=127.0.0.1:{port}"], root)
        url = f"http://127.0.0.1:{port}/metrics"
        with _running(process, lambda: _answers(url), f"node_exporter on port {port}"):
            source = (f"{binary} (Debian prometheus-node-exporter {debian_version('prometheus-node-exporter')}),"
                      " default collectors, --web.listen-address=127.0.0.1:<free port>; GET /metrics")
            yield Live(lambda: [Exposition("node-exporter", "default", source, version, node_exporter,
                                           _get(url))])


@contextmanager
def redis_exporter(server: RedisServer) -> Iterator[Live]:
    """prometheus-redis-exporter against `server`, told to report the lengths of the Celery lists."""
    binary = require_binary("prometheus-redis-exporter", "prometheus-redis-exporter")
    version = binary_version(binary)
    port = free_port()
    single_keys = ",".join(f"db0={name}" for name in [*REDIS_LISTS, REDIS_MISSING_LIST])
    flags = [f"--redis.addr=redis://127.0.0.1:{server.port}", f"--web.listen-address=127.0.0.1:{port}",
             f"--check-single-keys={single_keys}", "--check-keys=db0=sc*"]
    replica_port = free_port()
    replica_flags = ["--redis.addr=redis://127.0.0.1:{replica}", f"--web.listen-address=127.0.0.1:{replica_port}"]
    with (_temp_dir("obsbundle-expo-redis-exporter-") as root, redis_server(server.password) as replica,
          _temp_dir("obsbundle-expo-redis-exporter-replica-") as replica_root):
        # The password through the environment (REDIS_PASSWORD), never on the command line.
        process = ManagedProcess("redis-exporter", [binary, *flags], root, env={"REDIS_PASSWORD": server.password})
        _replicate(replica, server)
        replica_process = ManagedProcess(
            "redis-exporter-replica", [binary, *(flag.format(replica=replica.port) for flag in replica_flags)],
            replica_root, env={"REDIS_PASSWORD": server.password},
        )
        url = f"http://127.0.0.1:{port}/metrics"
        replica_url = f"http://127.0.0.1:{replica_port}/metrics"
        with (_running(process, lambda: _answers(url), f"redis_exporter on port {port}"),
              _running(replica_process, lambda: _answers(replica_url), f"redis_exporter on port {replica_port}")):
            package = f"{binary} (Debian prometheus-redis-exporter {debian_version('prometheus-redis-exporter')})"
            shown = " ".join(flags).replace(str(server.port), "<redis port>").replace(f":{port}", ":<free port>")
            source = (f"{package} {shown}, REDIS_PASSWORD in the environment; against redis-server"
                      f" {_redis_version(server)} holding lists"
                      f" {', '.join(f'{k} ({v} items)' for k, v in REDIS_LISTS.items())} and no"
                      f" key {REDIS_MISSING_LIST}; GET /metrics")
            shown_replica = " ".join(replica_flags).format(replica="<replica port>").replace(
                f":{replica_port}", ":<free port>")
            replica_source = (f"{package} {shown_replica}, REDIS_PASSWORD in the environment; against a redis-server"
                              f" {_redis_version(replica)} replica (replicaof, link up) of the check-keys capture's"
                              " server; GET /metrics")
            yield Live(lambda: [
                Exposition("redis-exporter", "check-keys", source, version, redis_exporter, _get(url)),
                Exposition("redis-exporter", "replica", replica_source, version, redis_exporter, _get(replica_url)),
            ])


def _replicate(replica: RedisServer, master: RedisServer) -> None:
    """Make `replica` a replica of `master` and wait until its link to the master is up."""
    client = replica.client()
    client.config_set("masterauth", master.password)
    client.replicaof("127.0.0.1", master.port)

    def linked() -> bool:
        return client.info("replication").get("master_link_status") == "up"

    wait_until(linked, 20, f"Redis replica on port {replica.port} linked to port {master.port}")


BLACKBOX_CONFIG = """\
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
"""


def _blackbox_config(certificates: Certificates) -> str:
    """http_2xx as above, and the generated http_reachable trusting the test CA."""
    reachable = copy.deepcopy(dict(MODULES[HTTP_REACHABLE]))
    reachable["http"]["tls_config"]["ca_file"] = str(certificates.ca)
    config = yaml.safe_load(BLACKBOX_CONFIG)
    config["modules"][HTTP_REACHABLE] = reachable
    return yaml.safe_dump(config, sort_keys=False)


@contextmanager
def blackbox_exporter() -> Iterator[Live]:
    """prometheus-blackbox-exporter with an http_2xx module, probing a local HTTP server (python -m http.server)."""
    binary = require_binary("prometheus-blackbox-exporter", "prometheus-blackbox-exporter")
    version = binary_version(binary)
    port, target_port = free_port(), free_port()
    with _temp_dir("obsbundle-expo-blackbox-") as root:
        certificates = make_certificates(root)
        (root / "blackbox.yml").write_text(_blackbox_config(certificates), encoding="utf-8")
        (root / "site").mkdir()
        (root / "site" / "index.html").write_text("<p>ok</p>\n", encoding="utf-8")
        target = ManagedProcess("http-server", [sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                                                "--directory", str(root / "site"), str(target_port)], root)
        exporter = ManagedProcess("blackbox-exporter", [binary, f"--config.file={root / 'blackbox.yml'}",
                                                        f"--web.listen-address=127.0.0.1:{port}"], root)
        base = f"http://127.0.0.1:{port}"
        target_url = f"http://127.0.0.1:{target_port}/"
        with (_running(target, lambda: port_open(target_port), f"http.server on port {target_port}"),
              status_server(401, certificates) as api,
              _running(exporter, lambda: _answers(f"{base}/metrics"), f"blackbox_exporter on port {port}")):
            package = f"{binary} (Debian prometheus-blackbox-exporter {debian_version('prometheus-blackbox-exporter')})"
            config = "module http_2xx {prober: http, timeout: 5s, http: {preferred_ip_protocol: ip4}}"

            def scrape() -> list[Exposition]:
                # The probe first: the exporter's own /metrics counts the probe's connections.
                probe = _get(f"{base}/probe", module="http_2xx", target=target_url)
                return [
                    Exposition("blackbox-exporter", "probe-http_2xx",
                               f"{package}, {config}; GET /probe?module=http_2xx&target=http://127.0.0.1:<port>/"
                               " of a python -m http.server that answers 200", version,
                               blackbox_exporter, probe),
                    Exposition("blackbox-exporter", "metrics", f"{package}, {config}; GET /metrics after one probe",
                               version, blackbox_exporter, _get(f"{base}/metrics")),
                    # After /metrics, so that it still counts the one probe above.
                    Exposition("blackbox-exporter", "probe-http_reachable-tls",
                               f"{package}, module {HTTP_REACHABLE} as obsbundle generates it (monitors/probes.py"
                               " MODULES) with tls_config.ca_file = a throwaway CA (tests/support/probe_targets.py);"
                               f" GET /probe?module={HTTP_REACHABLE}&target=https://127.0.0.1:<port>/ of an HTTPS"
                               " server whose certificate that CA signed, answering 401 as an API does without"
                               " credentials", version, blackbox_exporter,
                               _get(f"{base}/probe", module=HTTP_REACHABLE, target=api.url)),
                ]

            yield Live(scrape)


POSTGRES_EXPORTER_QUERIES = REPO / "deploy" / "postgres-exporter" / "queries.yaml"
"""The queries that give postgres_exporter 0.11 the later collectors' table, replication and
wraparound series (the datastore-health rules read them)."""
VACUUM_TABLE = "accounts"
"""A table of the `app` database with dead rows (rows deleted, not yet vacuumed)."""


@contextmanager
def postgres_exporter(server: PostgresServer, keys: Secrets) -> Iterator[Live]:
    """prometheus-postgres-exporter as the pg_monitor role: with its default collectors, and with
    deploy/postgres-exporter/queries.yaml against the `app` database, which holds a table with dead rows."""
    binary = require_binary("prometheus-postgres-exporter", "prometheus-postgres-exporter")
    version = binary_version(binary)
    server.execute(f"CREATE TABLE IF NOT EXISTS {VACUUM_TABLE} (id int)", dbname=APP)
    server.execute(f"INSERT INTO {VACUUM_TABLE} SELECT generate_series(1, 100)", dbname=APP)
    server.execute(f"DELETE FROM {VACUUM_TABLE} WHERE id <= 40", dbname=APP)
    dsn = "postgresql://{user}:{password}@127.0.0.1:{port}/{dbname}?sslmode=disable"
    package = f"{binary} (Debian prometheus-postgres-exporter {debian_version('prometheus-postgres-exporter')})"
    against = f"against PostgreSQL {_postgres_version(server)}; GET /metrics"
    with ExitStack() as stack:
        urls: list[str] = []
        for dbname, flags in (("postgres", []), (APP, [f"--extend.query-path={POSTGRES_EXPORTER_QUERIES}"])):
            port = free_port()
            root = stack.enter_context(_temp_dir("obsbundle-expo-postgres-exporter-"))
            env = {"DATA_SOURCE_NAME": dsn.format(user=MONITOR, password=keys.passwords["monitor"], port=server.port,
                                                  dbname=dbname)}
            process = ManagedProcess("postgres-exporter", [binary, f"--web.listen-address=127.0.0.1:{port}", *flags],
                                     root, env)
            urls.append(f"http://127.0.0.1:{port}/metrics")
            stack.enter_context(_running(process, functools.partial(_answers, urls[-1]),
                                         f"postgres_exporter on port {port}"))
        shown = {dbname: dsn.format(user=MONITOR, password="***", port="<port>", dbname=dbname)
                 for dbname in ("postgres", APP)}
        default = (f"{package}, default collectors, --web.listen-address=127.0.0.1:<free port>,"
                   f" DATA_SOURCE_NAME={shown['postgres']} (role in pg_monitor); {against}")
        queries = (f"{package}, default collectors and --extend.query-path=deploy/postgres-exporter/queries.yaml,"
                   f" --web.listen-address=127.0.0.1:<free port>, DATA_SOURCE_NAME={shown[APP]} (role in pg_monitor;"
                   f" database {APP} holds table {VACUUM_TABLE} with 40 of 100 rows deleted); {against}")
        yield Live(lambda: [
            Exposition("postgres-exporter", "default", default, version, postgres_exporter, _get(urls[0])),
            Exposition("postgres-exporter", "queries", queries, version, postgres_exporter, _get(urls[1])),
        ])


@contextmanager
def rabbitmq_prometheus(broker: Broker) -> Iterator[Live]:
    """rabbitmq-server's rabbitmq_prometheus plugin: aggregated /metrics and /metrics/per-object."""
    server = broker.server
    version = _rabbitmq_version(server)
    base = f"http://127.0.0.1:{server.prometheus_port}"
    package = (f"rabbitmq-server (Debian rabbitmq-server {debian_version('rabbitmq-server')}) with"
               " rabbitmq_management and rabbitmq_prometheus, node rabbit@localhost, queues"
               f" {' and '.join(RABBITMQ_QUEUES)} (2 messages each; one consumer holding one {RABBITMQ_QUEUES[1]}"
               " message unacknowledged)")

    def scrape() -> list[Exposition]:
        return [
            Exposition("rabbitmq", name, f"{package}; GET {path}", version, rabbitmq_prometheus,
                       _get(base + path))
            for name, path in (("metrics", "/metrics"), ("per-object", "/metrics/per-object"))
        ]

    yield Live(scrape)


def obsbundle_exporter_config(backends: Backends) -> dict[str, Any]:
    """A configuration with every source kind of docs/exporter.md, one entry each."""
    keys = backends.keys
    return {
        "postgres": [{"name": "postgresql", "host": "127.0.0.1", "port": backends.postgres.port, "user": MONITOR,
                      "dbname": "postgres", "password_file": str(keys.file("monitor"))}],
        "pgbouncer": [{"name": "pgbouncer", "host": "127.0.0.1", "port": backends.pgbouncer.port, "user": STATS,
                       "password_file": str(keys.file("stats"))}],
        "rabbitmq": [{"name": "rabbitmq", "url": backends.rabbitmq.server.management_url, "user": MONITOR,
                      "password_file": str(keys.file("rabbitmq")), "vhost": "/"}],
        "redis": [{"name": "redis", "url": backends.redis.url, "password_file": str(keys.file("redis")),
                   "queues": [*REDIS_LISTS, REDIS_MISSING_LIST]}],
        "postgres_queues": [{"name": "jobs", "host": "127.0.0.1", "port": backends.postgres.port, "dbname": APP,
                             "user": MONITOR, "password_file": str(keys.file("monitor")), "table": "jobs",
                             "queue_column": "queue", "status_column": "status", "ready_statuses": ["queued"],
                             "running_statuses": ["running"], "created_column": "created_at"}],
    }


@contextmanager
def obsbundle_exporter(backends: Backends) -> Iterator[Live]:
    """The project's own exporter, as its console entry runs it, reading every kind of source."""
    version = metadata.version("obsbundle")
    port = free_port()
    with _temp_dir("obsbundle-expo-poolq-") as root:
        config = root / "exporter.yaml"
        config.write_text(yaml.safe_dump(obsbundle_exporter_config(backends), sort_keys=False), encoding="utf-8")
        process = ManagedProcess("obsbundle-exporter", [sys.executable, "-m", "obsbundle.exporters", "--config",
                                                        str(config), "--listen", f"127.0.0.1:{port}"], root)
        base = f"http://127.0.0.1:{port}"
        with _running(process, lambda: _answers(f"{base}/-/healthy"), f"obsbundle exporter on port {port}"):
            servers = (f"PostgreSQL {_postgres_version(backends.postgres)}, PgBouncer {_pgbouncer_version()},"
                       f" RabbitMQ {_rabbitmq_version(backends.rabbitmq.server)},"
                       f" Redis {_redis_version(backends.redis)}")
            source = (f"python -m obsbundle.exporters --config exporter.yaml --listen 127.0.0.1:<free port>"
                      f" (obsbundle {version}, this repository) with one source of each kind (postgres, pgbouncer,"
                      f" rabbitmq, redis, postgres_queues: obsbundle_exporter_config) against {servers}; GET /metrics")
            yield Live(lambda: [Exposition("obsbundle-exporter", "all-sources", source, version,
                                           obsbundle_exporter, _get(f"{base}/metrics"))])


# --- Python services (the fleet's FastAPI apps) ------------------------------------------------------

FASTAPI_REQUESTS = (("GET", "/items/1", 200), ("GET", "/items/2", 200), ("POST", "/items", 201),
                    ("GET", "/items/0", 404), ("GET", "/nowhere", 404), ("GET", "/fail", 500))
"""The requests made before capturing: answered, created, not found (templated and not), failed."""


def _routes(app: FastAPI) -> None:
    @app.get("/items/{item_id}")
    def read_item(item_id: int) -> dict[str, int]:
        if item_id == 0:
            raise HTTPException(status_code=404, detail="no such item")
        return {"id": item_id}

    @app.post("/items", status_code=201)
    def create_item() -> dict[str, int]:
        return {"id": 3}

    @app.get("/fail")
    def fail() -> dict[str, int]:
        raise RuntimeError("a bug in the handler")


def fastapi_instrumentator_app() -> FastAPI:
    """A FastAPI app with prometheus-fastapi-instrumentator's defaults (uvicorn --factory target)."""
    app = FastAPI()
    _routes(app)
    Instrumentator().instrument(app).expose(app)
    return app


def prometheus_client_app() -> FastAPI:
    """A FastAPI app counting requests by hand with prometheus_client (uvicorn --factory target).

    The names and label names follow what the Aegis deployment guide's dashboard and alerts query
    (`http_requests_total` by `method`, `endpoint`, `status`; `http_request_duration_seconds`) and
    the example of client_python's docs (instrumenting/labels) `Counter('my_requests_total', ...,
    ['method', 'endpoint'])`; the histogram keeps the library's default buckets. /metrics is
    prometheus_client's ASGI app, mounted as its docs' FastAPI page shows.
    """
    requests_total = Counter("http_requests_total", "Total HTTP requests", ["method", "endpoint", "status"])
    duration = Histogram("http_request_duration_seconds", "HTTP request duration in seconds", ["method", "endpoint"])
    app = FastAPI()

    @app.middleware("http")
    async def measure(request: Request, call_next: RequestResponseEndpoint) -> Response:
        if request.url.path.startswith("/metrics"):
            return await call_next(request)
        start = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            duration.labels(request.method, request.url.path).observe(time.perf_counter() - start)
            requests_total.labels(request.method, request.url.path, str(status)).inc()

    _routes(app)
    app.mount("/metrics", make_asgi_app())
    return app


@contextmanager
def _uvicorn(factory: Callable[[], FastAPI]) -> Iterator[str]:
    """`factory`'s app served by uvicorn in a process of its own; the app's base URL after FASTAPI_REQUESTS."""
    port = free_port()
    with _temp_dir("obsbundle-expo-uvicorn-") as root:
        target = f"{MODULE}:{factory.__name__}"
        process = ManagedProcess(
            "uvicorn", [sys.executable, "-m", "uvicorn", "--factory", target, "--host", "127.0.0.1", "--port",
                        str(port), "--no-access-log"], root, env={"PYTHONPATH": str(REPO)},
        )
        base = f"http://127.0.0.1:{port}"
        with _running(process, lambda: port_open(port), f"uvicorn serving {target} on port {port}"):
            for method, path, status in FASTAPI_REQUESTS:
                got = requests.request(method, base + path, timeout=10).status_code
                if got != status:
                    raise RuntimeError(f"{method} {path} answered {got}, not {status}")
            yield base


def _requests_made() -> str:
    return ", ".join(f"{method} {path} → {status}" for method, path, status in FASTAPI_REQUESTS)


@contextmanager
def fastapi_instrumentator() -> Iterator[Live]:
    with _uvicorn(fastapi_instrumentator_app) as base:
        packages = pypi_versions("prometheus-fastapi-instrumentator", "fastapi", "starlette", "prometheus-client",
                                 "uvicorn")
        source = (f"PyPI {packages}; app: fastapi_instrumentator_app in tests/support/exposition_capture.py,"
                  " Instrumentator().instrument(app).expose(app) with default settings, served by uvicorn;"
                  f" after {_requests_made()}; GET /metrics")
        version = metadata.version("prometheus-fastapi-instrumentator")
        yield Live(lambda: [Exposition("fastapi-instrumentator", "default", source, version,
                                       fastapi_instrumentator, _get(f"{base}/metrics"))])


@contextmanager
def prometheus_client_http() -> Iterator[Live]:
    with _uvicorn(prometheus_client_app) as base:
        packages = pypi_versions("prometheus-client", "fastapi", "starlette", "uvicorn")
        source = (f"PyPI {packages}; app: prometheus_client_app in tests/support/exposition_capture.py. The"
                  " Aegis guide shows no prometheus_client code, only queries: metric and label names follow"
                  " those queries (http_requests_total by method, endpoint, status;"
                  " http_request_duration_seconds) and the Counter example of client_python's docs"
                  " (instrumenting/labels: ['method', 'endpoint']), default Histogram buckets, /metrics mounted"
                  " from make_asgi_app() as its docs' FastAPI page does;"
                  f" after {_requests_made()}; GET /metrics/")
        version = metadata.version("prometheus-client")
        yield Live(lambda: [Exposition("prometheus-client", "http-requests", source, version,
                                       prometheus_client_http, _get(f"{base}/metrics/"))])


# --- Writing the fixtures ----------------------------------------------------------------------------


@contextmanager
def backends() -> Iterator[Backends]:
    """Every server the exporters read, set up as the captures describe them."""
    with ExitStack() as stack:
        keys = stack.enter_context(secrets_folder())
        database = stack.enter_context(postgres(keys))
        yield Backends(keys, database, stack.enter_context(pgbouncer(database, keys)),
                       stack.enter_context(rabbitmq(keys)), stack.enter_context(redis(keys)))


def capture_all() -> list[Exposition]:
    """Start every component, scrape each once, stop them all."""
    captured: list[Exposition] = []
    with ExitStack() as stack:
        servers = stack.enter_context(backends())
        for live in (
            stack.enter_context(node_exporter()),
            stack.enter_context(redis_exporter(servers.redis)),
            stack.enter_context(blackbox_exporter()),
            stack.enter_context(postgres_exporter(servers.postgres, servers.keys)),
            stack.enter_context(rabbitmq_prometheus(servers.rabbitmq)),
            stack.enter_context(obsbundle_exporter(servers)),
            stack.enter_context(fastapi_instrumentator()),
            stack.enter_context(prometheus_client_http()),
        ):
            captured.extend(live.scrape())
    return captured


def live_table(captured: Sequence[Exposition]) -> str:
    """tests/fixtures/exposition/LIVE.md: which fixture came from which component, and how."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    rows = [
        f"| {e.exporter} | `{e.exporter}/{e.name}.prom` | {cell(e.source)} | {cell(e.version)} |"
        f" `{WRITE_COMMAND}` ({e.capture.__name__}) |"
        for e in sorted(captured, key=lambda e: (e.exporter, e.name))
    ]
    return "\n".join([
        "# Exposition fixtures captured live",
        "",
        "These fixtures are what the real components served on this project's test machine (Debian",
        "packages, or PyPI packages for the Python services), started on loopback by",
        "`tests/support/exposition_capture.py`. Each file is the answer exactly as served, headed by",
        "`# source:`, `# version:` and `# captured:` lines; only the Go and Python runtime families",
        f"({', '.join(f'`{p}*`' for p in DROPPED_PREFIXES)}) are left out. Values (counts, timings, host",
        "names) are this machine's and mean nothing; the metric names and label sets are the facts.",
        "",
        f"Rewrite them all with `{WRITE_COMMAND}`",
        "(as root on Debian, after `scripts/setup-tests.sh`).",
        "`tests/test_exposition_live.py` starts the same components and fails when a series shape (metric",
        "name and label names) of a fixture is no longer served, so the fixtures stay true to the",
        "installed binaries.",
        "",
        "| exporter | file | source | version | captured by |",
        "|---|---|---|---|---|",
        *rows,
        "",
    ])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.exposition_capture", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true",
                        help="rewrite the fixture files and LIVE.md (without it: list what would be written)")
    args = parser.parse_args(argv)
    captured = capture_all()
    for exposition in captured:
        text = exposition.fixture_text()
        if args.write:
            exposition.path.parent.mkdir(parents=True, exist_ok=True)
            exposition.path.write_text(text, encoding="utf-8")
        print(f"{exposition.path.relative_to(REPO)}: {text.count(chr(10))} lines, version {exposition.version}")
    if args.write:
        (FIXTURES / "LIVE.md").write_text(live_table(captured), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
