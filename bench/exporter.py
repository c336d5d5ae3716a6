"""The pool & queue exporter against the raw fetch of the same data, Debian's exporters and
RabbitMQ's own endpoint, on the same servers, in one run.

    python -m bench.exporter [--scrapes 40] [--rabbitmq-queues 1000,10000] [--postgres-backends 500,2000]
                             [--pgbouncer-pools 100,1000] [--redis-lists 1000] [--json bench/results/exporter.json]

Per source kind and size (an empty list of sizes skips the kind), the servers are filled — idle
client connections to PostgreSQL, PgBouncer pools each holding a server connection, RabbitMQ
queues with one timestamped message each, Redis lists — and then every target is scraped in
turns, one scrape each per round, so that whatever else the machine does falls on all of them
alike:

- obsbundle's exporter, one process per kind of source, scraped over keep-alive HTTP with gzip
  accepted, as Prometheus scrapes (for RabbitMQ also with `prometheus_plugin: false`, the
  management API path);
- the raw fetch: the exporter's own requests made directly from this process on one kept-alive
  connection, one after the other, with nothing parsed or served — PostgreSQL and PgBouncer: its
  statements and console commands through psycopg; RabbitMQ: its HTTP GETs through requests (the
  plugin's families, the vhost check and the named queues' head messages); Redis: INFO stats and
  LLEN of every list, pipelined. For PostgreSQL also "in one message": its statements sent together
  in one simple-protocol message, as the exporter sends them;
- Debian's prometheus-postgres-exporter, prometheus-pgbouncer-exporter and
  prometheus-redis-exporter (`-check-single-keys` for the lists);
- RabbitMQ's own /metrics/detailed for the same two queue families and vhost, and /metrics/per-object;
- the exporter's answer served alone (bench/answer_server.py): read from it once, then served per
  scrape through the exporter's own HTTP handler and gzip, with nothing collected or written. The
  raw fetch plus that is the least an exporter of the same series over HTTP can cost ("floors").

Per row: latency p50/p99 of a scrape (until its last byte; a gzip answer is not unpacked in the
timed part); the scraping side's CPU per scrape (the exporter's process, or this process's
thread for the raw fetch); the server's CPU per scrape (its idle rate, measured beforehand, taken
off); the exporter's resident memory and its TCP connections to the server; and the answer's size.
Absolute numbers belong to the machine; the ratios, taken in one run, are the result.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import http.client
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pika
import psycopg
import redis
import requests
import yaml
from prometheus_client import generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from obsbundle.exporters import families as f
from obsbundle.exporters.sources.pgsession import fetch_together
from obsbundle.exporters.sources.postgres import CONNECTIONS_SQL, DATABASES_SQL, SETTINGS_SQL, statements_query
from obsbundle.tools.processes import free_port, require_binary, wait_until
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

RESULTS = Path(__file__).resolve().parent / "results"
WARM_UP = 5
NAMED_QUEUES = 5
"""Queues whose head message age the RabbitMQ source reads (an inventory names a handful per broker)."""
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TIMEOUT = 30.0
"""Scrape timeout sent to, and configured in, every exporter: the slow rows must finish, not fail."""
PASSWORDS = {"monitor": "bench-monitor-pw", "app": "bench-app-pw", "stats": "bench-stats-pw",
             "rabbit": "bench-rabbit-pw", "redis": "bench-redis-pw"}
"""Throwaway credentials of throwaway servers on loopback."""
OURS = "obsbundle-exporter"
RAW = "raw fetch"
RAW_WRITTEN = "raw fetch + prometheus-client's writer"
RAW_ONE_MESSAGE = "raw fetch, in one message"
ANSWER_ALONE = "the exporter's answer served alone"
"""The exporter's answer, read from it once and served per scrape as it serves it (bench/answer_server.py)."""
PGBOUNCER_POOL_FAMILIES = (
    ("cl_active", f.PGBOUNCER_CLIENT_ACTIVE.name), ("cl_waiting", f.PGBOUNCER_CLIENT_WAITING.name),
    ("sv_active", f.PGBOUNCER_SERVER_ACTIVE.name), ("sv_idle", f.PGBOUNCER_SERVER_IDLE.name),
    ("maxwait", f.PGBOUNCER_CLIENT_MAXWAIT.name),
)
"""SHOW POOLS columns and the exporter's families they become."""
BROKER_ENDPOINT = "rabbitmq /metrics/detailed (the same families)"


@dataclass(frozen=True)
class Row:
    target: str
    data: str
    p50_ms: float
    p99_ms: float
    exporter_cpu_ms: float | None
    server_cpu_ms: float
    rss_mib: float | None
    connections: int | None
    series: int | None
    bytes: int | None


# --- /proc readings ---------------------------------------------------------------------------------


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU of the given live processes."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def process_tree(root: int) -> list[int]:
    """`root` and every process below it (a postmaster and its backends, a broker and its helpers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, ()))
    return found


def resident_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def tcp_connections(pid: int, remote_ports: Sequence[int]) -> int:
    """Established TCP connections of `pid` to any of `remote_ports` on loopback."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            remote, state, inode = fields[2], fields[3], fields[9]
            if state == "01" and inode in inodes and int(remote.rsplit(":", 1)[1], 16) in remote_ports:
                count += 1
    return count


@dataclass
class Server:
    """What a data set's targets read: the processes to charge CPU to, and the ports they connect to."""

    pids: Callable[[], list[int]]
    ports: tuple[int, ...]


# --- Targets ----------------------------------------------------------------------------------------


class StartFailedError(Exception):
    """The exporter exited or never served; the message is the last line of its log."""


def _serves(url: str) -> bool:
    try:
        return requests.get(url, timeout=TIMEOUT).status_code == 200
    except requests.RequestException:
        return False


@contextmanager
def process(argv: Sequence[str], env: dict[str, str], log: Path, ready_url: str) -> Iterator[int]:
    with log.open("wb") as output:
        child = subprocess.Popen(list(argv), env={**os.environ, **env}, stdout=output, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not _serves(ready_url):
            if child.poll() is not None or time.monotonic() > deadline:
                lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
                raise StartFailedError(lines[-1].strip() if lines else f"exit code {child.poll()}")
            time.sleep(0.2)
        yield child.pid
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=5)


@dataclass
class Target:
    """Something to scrape: an exporter process to start (argv), or a fetch this process makes."""

    name: str
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    fetch: Callable[[], int] | None = None
    """For the raw fetch and the broker's endpoints: one scrape, returning the bytes it received."""
    series_url: str | None = None
    """Where a fetch's series can be counted (the broker's endpoints); an exporter's is its /metrics."""


def ours(folder: Path, section: str, entry: dict[str, Any], name: str = OURS) -> Target:
    config = folder / f"ours-{section}-{len(list(folder.iterdir()))}.yaml"
    config.write_text(yaml.safe_dump({"timeout": f"{TIMEOUT:g}s", section: [entry]}), encoding="utf-8")
    port = free_port()
    argv = [sys.executable, "-m", "obsbundle.exporters", "--config", str(config),
            "--listen", f"127.0.0.1:{port}", "--log-level", "warning"]
    return Target(name, argv, {}, port)


def debian_postgres_exporter(postgres: PostgresServer) -> Target:
    port = free_port()
    binary = require_binary("prometheus-postgres-exporter", "prometheus-postgres-exporter")
    env = {"DATA_SOURCE_URI": f"127.0.0.1:{postgres.port}/postgres?sslmode=disable",
           "DATA_SOURCE_USER": "monitor", "DATA_SOURCE_PASS": PASSWORDS["monitor"]}
    argv = [binary, f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    return Target("prometheus-postgres-exporter", argv, env, port)


def debian_pgbouncer_exporter(pgbouncer: PgBouncerServer) -> Target:
    port = free_port()
    binary = require_binary("prometheus-pgbouncer-exporter", "prometheus-pgbouncer-exporter")
    argv = [binary, "--host", "127.0.0.1", "--port", str(port), "--pgbouncer-host", "127.0.0.1",
            "--pgbouncer-port", str(pgbouncer.port), "--pgbouncer-user", "stats"]
    return Target("prometheus-pgbouncer-exporter", argv, {"PGPASSWORD": PASSWORDS["stats"]}, port)


def debian_redis_exporter(redis_db: RedisServer, lists: Sequence[str]) -> Target:
    port = free_port()
    binary = require_binary("prometheus-redis-exporter", "prometheus-redis-exporter")
    argv = [binary, "-redis.addr", f"redis://127.0.0.1:{redis_db.port}", "-web.listen-address", f"127.0.0.1:{port}",
            "-check-single-keys", ",".join(f"db0={name}" for name in lists)]
    return Target("prometheus-redis-exporter", argv, {"REDIS_PASSWORD": PASSWORDS["redis"]}, port)


def http_fetch(url: str, headers: dict[str, str]) -> Callable[[], int]:
    """A GET on one kept-alive connection, read to its last byte without unpacking gzip, by the
    standard library's client: like Prometheus's, it adds next to nothing to what it measures."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=TIMEOUT)
    target = parts.path + (f"?{parts.query}" if parts.query else "")

    def fetch() -> int:
        connection.request("GET", target, headers=headers)
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status} from {url}")
        return len(body)

    return fetch


# --- Measuring --------------------------------------------------------------------------------------


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    scraper_cpu: float = 0.0
    server_cpu: float = 0.0
    bytes: int = 0


@dataclass(frozen=True)
class Run:
    """What every data set of one run shares."""

    folder: Path
    """Where the exporters' configurations and logs go."""
    secrets: Path
    """Password files, one per entry of PASSWORDS."""
    scrapes: int
    failures: list[dict[str, str]]
    """Targets that did not start, with the reason."""


def with_answer_alone(targets: Sequence[Target]) -> list[Target]:
    """`targets`, and after obsbundle's exporter the server of its answer alone."""
    listed: list[Target] = []
    for target in targets:
        listed.append(target)
        if target.name == OURS:
            port = free_port()
            listed.append(Target(ANSWER_ALONE, [sys.executable, "-m", "bench.answer_server", "--from",
                                                f"http://127.0.0.1:{target.port}/metrics", "--listen",
                                                f"127.0.0.1:{port}"], {}, port))
    return listed


def measure(run: Run, data: str, targets: Sequence[Target], server: Server) -> list[Row]:
    """Start every target (and the exporter's answer alone), then scrape them in turns, `run.scrapes`
    rounds after a warm-up."""
    targets = with_answer_alone(targets)
    rows: list[Row] = []
    folder, scrapes, failures = run.folder, run.scrapes, run.failures
    with ExitStack() as stack:
        running: list[tuple[Target, int | None, Callable[[], int]]] = []
        session = requests.Session()
        stack.callback(session.close)
        headers = {"X-Prometheus-Scrape-Timeout-Seconds": f"{TIMEOUT:g}", "Accept-Encoding": "gzip"}
        for target in targets:
            if target.fetch is not None:
                running.append((target, None, target.fetch))
                continue
            url = f"http://127.0.0.1:{target.port}/metrics"
            target.series_url = url
            try:
                pid: int | None = stack.enter_context(
                    process(target.argv, target.env, folder / f"{target.port}.log", url))
            except StartFailedError as error:
                print(f"    {target.name} did not start: {error}", file=sys.stderr)
                failures.append({"target": target.name, "data": data, "reason": str(error)})
                continue
            running.append((target, pid, http_fetch(url, headers)))
        for _ in range(WARM_UP):
            for _, _, fetch in running:
                fetch()
        # The servers' own background work (stats timers, checkpoints) over quiet seconds; the
        # pids are listed after the warm-up, which opened the exporters' sessions.
        pids = server.pids()
        idle_start = cpu_seconds(pids)
        time.sleep(3)
        idle_rate = (cpu_seconds(pids) - idle_start) / 3
        tallies = {target.name: Tally() for target, _, _ in running}
        for _ in range(scrapes):
            for target, pid, fetch in running:
                tally = tallies[target.name]
                server_before = cpu_seconds(pids)
                scraper_before = cpu_seconds([pid]) if pid is not None else time.thread_time()
                began = time.perf_counter()
                tally.bytes = fetch()
                took = time.perf_counter() - began
                scraper_after = cpu_seconds([pid]) if pid is not None else time.thread_time()
                tally.server_cpu += cpu_seconds(pids) - server_before - idle_rate * took
                tally.scraper_cpu += scraper_after - scraper_before
                tally.latencies.append(took)
        for target, pid, _ in running:
            series = None
            if target.series_url is not None:
                text = session.get(target.series_url, timeout=TIMEOUT).content.decode("utf-8", errors="replace")
                series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
            rows.append(row(target.name, data, tallies[target.name], scrapes=scrapes, pid=pid, server=server,
                            series=series))
    return rows


def row(name: str, data: str, tally: Tally, *, scrapes: int, pid: int | None, server: Server,
        series: int | None) -> Row:
    latencies = sorted(tally.latencies)
    is_process = pid is not None
    scraper_cpu = tally.scraper_cpu / scrapes * 1000
    # The broker's own endpoints have no scraper of their own: what this process spends on them
    # is the client's, not an exporter's.
    own_scraper = is_process or name in (RAW, RAW_WRITTEN, RAW_ONE_MESSAGE)
    return Row(
        target=name, data=data,
        p50_ms=round(statistics.median(latencies) * 1000, 2),
        p99_ms=round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 2),
        exporter_cpu_ms=round(scraper_cpu, 2) if own_scraper else None,
        server_cpu_ms=round(max(0.0, tally.server_cpu) / scrapes * 1000, 2),
        rss_mib=round(resident_mib(pid), 1) if pid is not None else None,
        connections=tcp_connections(pid, server.ports) if pid is not None else None,
        series=series, bytes=tally.bytes,
    )


# --- Data sets --------------------------------------------------------------------------------------


def postgres_rows(stack: ExitStack, run: Run, sizes: Sequence[int]) -> list[Row]:
    folder, secrets = run.folder, run.secrets
    rows: list[Row] = []
    postgres = stack.enter_context(postgres_server(max_connections=max(sizes) + 100))
    postgres.create_role("monitor", PASSWORDS["monitor"], "pg_monitor")
    postgres.create_role("app", PASSWORDS["app"])
    postgres.execute("CREATE EXTENSION pg_stat_statements")
    assert postgres.process is not None
    root = postgres.process.pid
    with ExitStack() as held:
        idle: set[int] = set()
        for size in sorted(sizes):
            print(f"PostgreSQL with {size} idle client connections…", file=sys.stderr)
            while len(idle) < size:
                conn = held.enter_context(postgres.tcp_connect("app", PASSWORDS["app"], "postgres"))
                idle.add(conn.info.backend_pid)
            # Idle sessions cost nothing while they are counted: charge the postmaster, its helpers
            # and the exporters' sessions, not thousands of sleeping backends.
            server = Server(lambda: [pid for pid in process_tree(root) if pid not in idle], (postgres.port,))
            raw = held.enter_context(psycopg.connect(
                host="127.0.0.1", port=postgres.port, user="monitor", password=PASSWORDS["monitor"],
                dbname="postgres", sslmode="disable", autocommit=True, prepare_threshold=None))
            targets = [
                ours(folder, "postgres", {"name": "pg", "host": "127.0.0.1", "sslmode": "disable",
                                          "port": postgres.port, "user": "monitor",
                                          "password_file": str(secrets / "monitor")}),
                Target(RAW, fetch=functools.partial(postgres_raw, raw)),
                Target(RAW_ONE_MESSAGE, fetch=functools.partial(postgres_raw_one_message, raw, one_message(raw))),
                debian_postgres_exporter(postgres),
            ]
            rows += measure(run, f"postgres, {size} backends", targets, server)
    return rows


def postgres_raw(conn: psycopg.Connection[Any]) -> int:
    """The exporter's SQL, as its PostgreSQL source runs it on each scrape."""
    conn.execute(b"SET statement_timeout = 29500")
    settings = conn.execute(SETTINGS_SQL).fetchone()
    assert settings is not None
    cells = len(conn.execute(CONNECTIONS_SQL).fetchall()) + len(conn.execute(DATABASES_SQL).fetchall())
    if settings[4] is not None:
        cells += len(conn.execute(statements_query(settings[4], settings[3])).fetchall())
    return cells


def one_message(conn: psycopg.Connection[Any]) -> list[bytes]:
    """The exporter's statements, as its PostgreSQL source sends them together on each scrape."""
    settings = conn.execute(SETTINGS_SQL).fetchone()
    assert settings is not None
    queries = [SETTINGS_SQL, CONNECTIONS_SQL, DATABASES_SQL]
    if settings[4] is not None:
        queries.append(statements_query(settings[4], settings[3]).as_bytes(conn))
    return queries


def postgres_raw_one_message(conn: psycopg.Connection[Any], queries: list[bytes]) -> int:
    """The exporter's statements sent in one message, as its PostgreSQL source sends them: one round trip."""
    return sum(map(len, fetch_together(conn, queries)))


def pgbouncer_rows(stack: ExitStack, run: Run, sizes: Sequence[int]) -> list[Row]:
    folder, secrets = run.folder, run.secrets
    rows: list[Row] = []
    largest = max(sizes)
    postgres = stack.enter_context(postgres_server(max_connections=largest + 100))
    postgres.create_role("app", PASSWORDS["app"])
    databases = {f"db{index:04d}": "dbname=postgres" for index in range(largest)}
    pgbouncer = stack.enter_context(pgbouncer_server(
        postgres, {"app": PASSWORDS["app"], "stats": PASSWORDS["stats"]}, ["stats"], 2, databases))
    assert pgbouncer.process is not None
    bouncer_pid = pgbouncer.process.pid
    server = Server(lambda: [bouncer_pid], (pgbouncer.port,))
    with ExitStack() as held:
        opened = 0
        for size in sorted(sizes):
            print(f"PgBouncer with {size} pools…", file=sys.stderr)
            # One client per pooled database, each having run a query, so every pool has a server connection.
            while opened < size:
                client = held.enter_context(pgbouncer.connect("app", f"db{opened:04d}"))
                client.execute("SELECT 1")
                opened += 1
            raw = held.enter_context(psycopg.connect(
                host="127.0.0.1", port=pgbouncer.port, user="stats", password=PASSWORDS["stats"], dbname="pgbouncer",
                autocommit=True, prepare_threshold=None, cursor_factory=psycopg.ClientCursor))
            targets = [
                ours(folder, "pgbouncer", {"name": "pool", "host": "127.0.0.1", "sslmode": "disable",
                                           "port": pgbouncer.port, "user": "stats",
                                           "password_file": str(secrets / "stats")}),
                Target(RAW, fetch=functools.partial(pgbouncer_raw, raw)),
                Target(RAW_WRITTEN, fetch=functools.partial(pgbouncer_raw_written, raw)),
                debian_pgbouncer_exporter(pgbouncer),
            ]
            rows += measure(run, f"pgbouncer, {size} pools", targets, server)
    return rows


def pgbouncer_raw(conn: psycopg.Connection[Any]) -> int:
    """The admin console commands the exporter's PgBouncer source runs on each scrape."""
    cells = 0
    for command in (b"SHOW POOLS", b"SHOW DATABASES"):
        with conn.cursor() as cursor:
            cursor.execute(command)
            cells += len(cursor.fetchall())
    return cells


def pgbouncer_raw_written(conn: psycopg.Connection[Any]) -> int:
    """The raw fetch, and the same series written as an exporter built the usual way writes them:
    prometheus-client metric families filled row by row, generate_latest, gzip at level 1 — in this
    process, without HTTP. What any prometheus-client exporter of these series pays at least."""
    with conn.cursor() as cursor:
        cursor.execute(b"SHOW POOLS")
        names = [column.name for column in cursor.description or ()]
        pools = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        cursor.execute(b"SHOW DATABASES")
        names = [column.name for column in cursor.description or ()]
        databases = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    families = {column: GaugeMetricFamily(name, "PgBouncer pools.", labels=("source", "database", "user"))
                for column, name in PGBOUNCER_POOL_FAMILIES}
    for pool in pools:
        if pool["database"] == "pgbouncer":
            continue
        labels = ("pool", pool["database"], pool["user"])
        for column, family in families.items():
            value = pool[column] + (pool.get("maxwait_us") or 0) / 1e6 if column == "maxwait" else pool[column]
            family.add_metric(labels, float(value))
    sizes = GaugeMetricFamily(f.PGBOUNCER_POOL_SIZE.name, "Pool sizes.", labels=("source", "database"))
    for database in databases:
        if database["name"] != "pgbouncer":
            sizes.add_metric(("pool", database["name"]), float(database["pool_size"]))
    body = generate_latest(_Families([*families.values(), sizes]))
    return len(gzip.compress(body, compresslevel=1))


class _Families(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self._metrics


def fill_queues(rabbitmq: RabbitMQServer, start: int, count: int) -> None:
    with rabbitmq.amqp() as connection:
        channel = connection.channel()
        stamp = int(time.time()) - 60
        for index in range(start, count):
            name = queue_name(index)
            channel.queue_declare(name)
            channel.basic_publish("", name, b"job", pika.BasicProperties(timestamp=stamp))

    def listed() -> bool:
        response = rabbitmq.api("GET", "/api/overview?columns=object_totals,queue_totals")
        body = response.json()
        return bool(body["object_totals"]["queues"] == count and body["queue_totals"].get("messages_ready") == count)

    wait_until(listed, 120, f"RabbitMQ to report {count} queues with a message each")


def queue_name(index: int) -> str:
    return f"queue-{index:05d}"


def rabbitmq_rows(stack: ExitStack, run: Run, sizes: Sequence[int]) -> list[Row]:
    folder, secrets = run.folder, run.secrets
    rows: list[Row] = []
    rabbitmq = stack.enter_context(rabbitmq_server(fast_statistics=False))
    rabbitmq.add_user("monitor", PASSWORDS["rabbit"], "monitoring")
    rabbitmq.grant("monitor", "/", "", "", "")
    assert rabbitmq.process is not None
    rabbit_pid = rabbitmq.process.pid
    server = Server(lambda: process_tree(rabbit_pid), (rabbitmq.management_port, rabbitmq.prometheus_port))
    named = [queue_name(index) for index in range(NAMED_QUEUES)]
    entry = {"name": "broker", "url": rabbitmq.management_url, "user": "monitor",
             "password_file": str(secrets / "rabbit"), "vhost": "/", "queues": named,
             "prometheus_url": f"http://127.0.0.1:{rabbitmq.prometheus_port}"}
    plugin = f"http://127.0.0.1:{rabbitmq.prometheus_port}"
    detailed = f"{plugin}/metrics/detailed?vhost=%2F&family=queue_coarse_metrics&family=queue_consumer_count"
    declared = 0
    for size in sorted(sizes):
        print(f"RabbitMQ with {size} queues…", file=sys.stderr)
        fill_queues(rabbitmq, declared, size)
        declared = size
        raw_session = requests.Session()
        targets = [
            ours(folder, "rabbitmq", entry),
            Target(RAW, fetch=functools.partial(rabbitmq_raw, raw_session, rabbitmq.management_url, detailed, named)),
            ours(folder, "rabbitmq", {**entry, "prometheus_plugin": False},
                 name=f"{OURS}, prometheus_plugin: false"),
            Target(BROKER_ENDPOINT, series_url=detailed, fetch=http_fetch(detailed, {"Accept-Encoding": "gzip"})),
            Target("rabbitmq /metrics/per-object", series_url=f"{plugin}/metrics/per-object",
                   fetch=http_fetch(f"{plugin}/metrics/per-object", {"Accept-Encoding": "gzip"})),
        ]
        rows += measure(run, f"rabbitmq, {size} queues", targets, server)
        raw_session.close()
    return rows


def rabbitmq_raw(session: requests.Session, management: str, detailed: str, named: Sequence[str]) -> int:
    """The exporter's GETs, one after the other: the plugin's families, the vhost check, the heads."""
    auth = ("monitor", PASSWORDS["rabbit"])
    received = len(session.get(detailed, headers={"Accept-Encoding": "identity"}, timeout=TIMEOUT).content)
    received += len(session.get(f"{management}/api/vhosts", params={"columns": "name", "disable_stats": "true"},
                                auth=auth, timeout=TIMEOUT).content)
    for queue in named:
        received += len(session.get(f"{management}/api/queues/%2F/{quote(queue, safe='')}",
                                    params={"columns": "name,head_message_timestamp"}, auth=auth,
                                    timeout=TIMEOUT).content)
    return received


def redis_rows(stack: ExitStack, run: Run, sizes: Sequence[int]) -> list[Row]:
    folder, secrets = run.folder, run.secrets
    rows: list[Row] = []
    redis_db = stack.enter_context(redis_server(PASSWORDS["redis"]))
    assert redis_db.process is not None
    redis_pid = redis_db.process.pid
    server = Server(lambda: [redis_pid], (redis_db.port,))
    client = redis_db.client()
    for size in sorted(sizes):
        print(f"Redis with {size} lists…", file=sys.stderr)
        lists = [f"celery-{index:05d}" for index in range(size)]
        pipe = client.pipeline(transaction=False)
        for index, name in enumerate(lists):
            pipe.delete(name)
            pipe.rpush(name, *(b"job" for _ in range(1 + index % 5)))
        pipe.execute()
        raw = redis.Redis(host="127.0.0.1", port=redis_db.port, password=PASSWORDS["redis"], socket_timeout=TIMEOUT)
        targets = [
            ours(folder, "redis", {"name": "celery", "url": redis_db.url, "password_file": str(secrets / "redis"),
                                   "queues": lists}),
            Target(RAW, fetch=functools.partial(redis_raw, raw, lists)),
            debian_redis_exporter(redis_db, lists),
        ]
        rows += measure(run, f"redis, {size} lists", targets, server)
        raw.close()
    return rows


def redis_raw(client: redis.Redis, lists: Sequence[str]) -> int:
    """INFO stats and every list's LLEN in one pipeline, as the exporter's Redis source sends them."""
    pipe = client.pipeline(transaction=False)
    pipe.info("stats")
    for name in lists:
        pipe.llen(name)
    return len(pipe.execute())


KINDS: dict[str, Callable[..., list[Row]]] = {
    "postgres": postgres_rows, "pgbouncer": pgbouncer_rows, "rabbitmq": rabbitmq_rows, "redis": redis_rows,
}


def run(scrapes: int, sizes: dict[str, list[int]]) -> dict[str, Any]:
    rows: list[Row] = []
    failures: list[dict[str, str]] = []
    started = time.monotonic()
    for kind, measure_kind in KINDS.items():
        if not sizes[kind]:
            continue
        # Each kind on servers of its own, stopped before the next kind starts.
        with ExitStack() as stack:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="obsbundle-bench-")))
            secrets = folder / "secrets"
            secrets.mkdir()
            for name, password in PASSWORDS.items():
                (secrets / name).write_text(password, encoding="utf-8")
            targets = folder / "targets"
            targets.mkdir()
            rows += measure_kind(stack, Run(targets, secrets, scrapes, failures), sizes[kind])
    return {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_at_end": os.getloadavg()[0]},
        "setup": {"sizes": sizes, "scrapes": scrapes, "warm_up": WARM_UP, "named_rabbitmq_queues": NAMED_QUEUES,
                  "minutes": round((time.monotonic() - started) / 60, 1)},
        "rows": [asdict(row) for row in rows],
        "failed_to_run": failures,
        "ratios": ratios(rows),
        "goals": goals(rows),
        "floors": floors(rows),
    }


def ratios(rows: Sequence[Row]) -> dict[str, dict[str, float | None]]:
    """Ours divided by each other row of the same data set: below 1 means obsbundle's exporter costs less."""
    result: dict[str, dict[str, float | None]] = {}
    for mine in (row for row in rows if row.target.startswith(OURS)):
        for theirs in (row for row in rows if row.data == mine.data and not row.target.startswith(OURS)):
            result[f"{mine.target} / {theirs.target} ({mine.data})"] = {
                "p50": _ratio(mine.p50_ms, theirs.p50_ms),
                "p99": _ratio(mine.p99_ms, theirs.p99_ms),
                "server_cpu": _ratio(mine.server_cpu_ms, theirs.server_cpu_ms),
                "cpu_total": _ratio((mine.exporter_cpu_ms or 0) + mine.server_cpu_ms,
                                    (theirs.exporter_cpu_ms or 0) + theirs.server_cpu_ms),
            }
    return result


def goals(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """The exporter's targets: p50 within 1.2× of the raw fetch for every source and size; for
    RabbitMQ, p50 and the broker's CPU per scrape within 1.5× of its own endpoint for the same families."""
    checks: list[dict[str, Any]] = []
    by_key = {(row.target, row.data): row for row in rows}
    for mine in (row for row in rows if row.target == OURS):
        raw = by_key.get((RAW, mine.data))
        if raw is not None:
            checks.append(_goal(f"p50 / raw fetch ({mine.data})", mine.p50_ms, raw.p50_ms, 1.2))
        broker = by_key.get((BROKER_ENDPOINT, mine.data))
        if broker is not None:
            checks.append(_goal(f"p50 / broker endpoint ({mine.data})", mine.p50_ms, broker.p50_ms, 1.5))
            checks.append(_goal(f"broker CPU / broker endpoint ({mine.data})", mine.server_cpu_ms,
                                broker.server_cpu_ms, 1.5))
    return checks


def floors(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """The exporter against the least an exporter of its series over HTTP costs: the raw fetch, plus
    its own answer served alone (the HTTP exchange and gzip, nothing collected or written)."""
    found: list[dict[str, Any]] = []
    by_key = {(row.target, row.data): row for row in rows}
    for mine in (row for row in rows if row.target == OURS):
        raw, alone = by_key.get((RAW, mine.data)), by_key.get((ANSWER_ALONE, mine.data))
        if raw is not None and alone is not None:
            least = raw.p50_ms + alone.p50_ms
            found.append({"data": mine.data, "raw_fetch_ms": raw.p50_ms, "answer_alone_ms": alone.p50_ms,
                          "least_ms": round(least, 2), "ours_ms": mine.p50_ms, "ratio": _ratio(mine.p50_ms, least)})
    return found


def _goal(name: str, mine: float, theirs: float, limit: float) -> dict[str, Any]:
    ratio = _ratio(mine, theirs)
    return {"goal": name, "ratio": ratio, "limit": limit, "met": ratio is not None and ratio <= limit}


def _ratio(mine: float, theirs: float) -> float | None:
    return round(mine / theirs, 2) if theirs > 0 else None


def table(result: dict[str, Any]) -> str:
    header = ("| target | data | p50 ms | p99 ms | scraper CPU ms/scrape | server CPU ms/scrape | RSS MiB "
              "| connections | series | bytes |")
    lines = [header, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def show(value: Any) -> str:
        return "—" if value is None else str(value)

    for row in result["rows"]:
        lines.append(
            f"| {row['target']} | {row['data']} | {row['p50_ms']} | {row['p99_ms']} | {show(row['exporter_cpu_ms'])} "
            f"| {row['server_cpu_ms']} | {show(row['rss_mib'])} | {show(row['connections'])} | {show(row['series'])} "
            f"| {show(row['bytes'])} |"
        )
    for failure in result["failed_to_run"]:
        lines.append(f"| {failure['target']} | {failure['data']} | did not start: `{failure['reason']}` "
                     "| | | | | | | |")
    lines += ["", "| ratio (ours / theirs) | p50 | p99 | server CPU | CPU (scraper + server) |",
              "|---|---:|---:|---:|---:|"]
    for name, values in result["ratios"].items():
        lines.append(f"| {name} | {show(values['p50'])} | {show(values['p99'])} | {show(values['server_cpu'])} "
                     f"| {show(values['cpu_total'])} |")
    lines += ["", "| goal | ratio | limit | met |", "|---|---:|---:|---|"]
    for goal in result["goals"]:
        lines.append(f"| {goal['goal']} | {show(goal['ratio'])} | {goal['limit']} | {'yes' if goal['met'] else 'no'} |")
    lines += ["", "| data | raw fetch p50 ms | + answer served alone ms | = least ms | ours ms | ours / least |",
              "|---|---:|---:|---:|---:|---:|"]
    for floor in result["floors"]:
        lines.append(f"| {floor['data']} | {floor['raw_fetch_ms']} | {floor['answer_alone_ms']} | {floor['least_ms']} "
                     f"| {floor['ours_ms']} | {show(floor['ratio'])} |")
    return "\n".join(lines)


def _sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scrapes", type=int, default=40, help="measured scrapes per target and size (default: 40)")
    parser.add_argument("--rabbitmq-queues", type=_sizes, default=[1_000, 10_000], metavar="N,N",
                        help="RabbitMQ queue counts (default: 1000,10000; empty: skip)")
    parser.add_argument("--postgres-backends", type=_sizes, default=[500, 2_000], metavar="N,N",
                        help="idle PostgreSQL client connections (default: 500,2000; empty: skip)")
    parser.add_argument("--pgbouncer-pools", type=_sizes, default=[100, 1_000], metavar="N,N",
                        help="PgBouncer pools (default: 100,1000; empty: skip)")
    parser.add_argument("--redis-lists", type=_sizes, default=[1_000], metavar="N,N",
                        help="Redis lists (default: 1000; empty: skip)")
    parser.add_argument("--json", type=Path, default=RESULTS / "exporter.json", help="where to write the results")
    args = parser.parse_args(argv)
    sizes = {"postgres": args.postgres_backends, "pgbouncer": args.pgbouncer_pools,
             "rabbitmq": args.rabbitmq_queues, "redis": args.redis_lists}
    result = run(args.scrapes, sizes)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
