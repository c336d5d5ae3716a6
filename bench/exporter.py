"""The pool & queue exporter against the usual exporters, on the same servers, in one run.

    python -m bench.exporter [--scrapes 200] [--json bench/results/exporter.json]

Sets up PostgreSQL with 500 idle client connections (max_connections 700), PgBouncer with 100
pools, and RabbitMQ with 1,000 queues holding one timestamped message each; then scrapes, one
after the other and each for `--scrapes` rounds after a warm-up:

- obsbundle's exporter, once per kind of source (so each row's process reads one server)
- Debian's prometheus-postgres-exporter and prometheus-pgbouncer-exporter, with their defaults
- RabbitMQ's own /metrics/per-object (rabbitmq_prometheus), which serves the queues' data, and
  its /metrics/detailed endpoint filtered to the queue families that carry the same numbers

Per row: scrape latency p50/p99 over keep-alive HTTP, as Prometheus scrapes; the exporter
process's CPU per scrape; the server's CPU per scrape (its idle rate measured beforehand and
taken off); the exporter's resident memory; its TCP connections to the server afterwards; and
the size of the answer. Absolute numbers belong to the machine; the ratios are the result.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pika
import requests
import yaml

from obsbundle.tools.processes import free_port, require_binary, wait_until
from tests.support.servers_db import (
    PgBouncerServer,
    PostgresServer,
    RabbitMQServer,
    pgbouncer_server,
    postgres_server,
    rabbitmq_server,
)

RESULTS = Path(__file__).resolve().parent / "results"
BACKENDS = 500
POOLS = 100
QUEUES = 1_000
WARM_UP = 10
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PASSWORDS = {"monitor": "bench-monitor-pw", "app": "bench-app-pw", "stats": "bench-stats-pw",
             "rabbit": "bench-rabbit-pw"}
"""Throwaway credentials of throwaway servers on loopback."""


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
    series: int
    bytes: int


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


def tcp_connections(pid: int, remote_port: int) -> int:
    """Established TCP connections of `pid` to `remote_port` on loopback."""
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
            if state == "01" and inode in inodes and int(remote.rsplit(":", 1)[1], 16) == remote_port:
                count += 1
    return count


@dataclass(frozen=True)
class Server:
    """What a row's exporter reads: the processes to charge CPU to, and the port it connects to."""

    pids: Callable[[], list[int]]
    port: int


# --- Set-up -----------------------------------------------------------------------------------------


def hold_backends(stack: ExitStack, postgres: PostgresServer) -> None:
    for _ in range(BACKENDS):
        stack.enter_context(postgres.tcp_connect("app", PASSWORDS["app"], "postgres"))


def open_pools(stack: ExitStack, pgbouncer: PgBouncerServer) -> None:
    """One client per pooled database, each having run a query, so every pool has a server connection."""
    for index in range(POOLS):
        client = stack.enter_context(pgbouncer.connect("app", f"db{index:03d}"))
        client.execute("SELECT 1")


def fill_queues(rabbitmq: RabbitMQServer) -> None:
    with rabbitmq.amqp() as connection:
        channel = connection.channel()
        stamp = int(time.time()) - 60
        for index in range(QUEUES):
            name = f"queue-{index:04d}"
            channel.queue_declare(name)
            channel.basic_publish("", name, b"job", pika.BasicProperties(timestamp=stamp))

    def listed() -> bool:
        response = rabbitmq.api("GET", "/api/queues/%2F?page=1&page_size=500&columns=name,messages_ready")
        body = response.json()
        return bool(body["total_count"] == QUEUES and all(item.get("messages_ready") == 1 for item in body["items"]))

    wait_until(listed, 60, "RabbitMQ to report every queue's message")


class StartFailedError(Exception):
    """The exporter exited or never served; the message is the last line of its log."""


def _serves(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


@contextmanager
def process(argv: Sequence[str], env: dict[str, str], log: Path, ready_url: str) -> Iterator[int]:
    with log.open("wb") as output:
        child = subprocess.Popen(list(argv), env={**os.environ, **env}, stdout=output, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    try:
        deadline = time.monotonic() + 30
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


@dataclass(frozen=True)
class Target:
    """An exporter to start and scrape."""

    name: str
    data: str
    server: Server
    argv: list[str]
    env: dict[str, str]
    port: int


def ours(folder: Path, data: str, server: Server, section: str, entry: dict[str, Any], *,
         name: str = "obsbundle-exporter") -> Target:
    config = folder / f"ours-{section}-{len(list(folder.iterdir()))}.yaml"
    config.write_text(yaml.safe_dump({section: [entry]}), encoding="utf-8")
    port = free_port()
    argv = [sys.executable, "-m", "obsbundle.exporters", "--config", str(config),
            "--listen", f"127.0.0.1:{port}", "--log-level", "warning"]
    return Target(name, data, server, argv, {}, port)


def debian_postgres_exporter(data: str, server: Server, postgres: PostgresServer) -> Target:
    port = free_port()
    binary = require_binary("prometheus-postgres-exporter", "prometheus-postgres-exporter")
    env = {"DATA_SOURCE_URI": f"127.0.0.1:{postgres.port}/postgres?sslmode=disable",
           "DATA_SOURCE_USER": "monitor", "DATA_SOURCE_PASS": PASSWORDS["monitor"]}
    argv = [binary, f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    return Target("prometheus-postgres-exporter", data, server, argv, env, port)


def debian_pgbouncer_exporter(data: str, server: Server, pgbouncer: PgBouncerServer) -> Target:
    port = free_port()
    binary = require_binary("prometheus-pgbouncer-exporter", "prometheus-pgbouncer-exporter")
    argv = [binary, "--host", "127.0.0.1", "--port", str(port), "--pgbouncer-host", "127.0.0.1",
            "--pgbouncer-port", str(pgbouncer.port), "--pgbouncer-user", "stats"]
    return Target("prometheus-pgbouncer-exporter", data, server, argv, {"PGPASSWORD": PASSWORDS["stats"]}, port)


# --- Measuring --------------------------------------------------------------------------------------


def measure(target: str, data: str, url: str, *, scrapes: int, exporter_pid: int | None, server: Server) -> Row:
    session = requests.Session()
    headers = {"X-Prometheus-Scrape-Timeout-Seconds": "10"}
    for _ in range(WARM_UP):
        session.get(url, headers=headers, timeout=30).raise_for_status()
    # The server's own background work (stats timers, checkpoints) over a quiet second.
    pids = server.pids()
    idle_start = cpu_seconds(pids)
    time.sleep(2)
    idle_rate = (cpu_seconds(pids) - idle_start) / 2

    latencies: list[float] = []
    exporter_before = cpu_seconds([exporter_pid]) if exporter_pid else 0.0
    pids = server.pids()
    server_before, started = cpu_seconds(pids), time.monotonic()
    body = b""
    for _ in range(scrapes):
        began = time.perf_counter()
        response = session.get(url, headers=headers, timeout=30)
        body = response.content
        latencies.append(time.perf_counter() - began)
        response.raise_for_status()
    wall = time.monotonic() - started
    server_cpu = max(0.0, cpu_seconds(pids) - server_before - idle_rate * wall)
    exporter_cpu = cpu_seconds([exporter_pid]) - exporter_before if exporter_pid else None
    latencies.sort()
    series = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
    return Row(
        target=target, data=data,
        p50_ms=round(statistics.median(latencies) * 1000, 2),
        p99_ms=round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 2),
        exporter_cpu_ms=round(exporter_cpu / scrapes * 1000, 2) if exporter_cpu is not None else None,
        server_cpu_ms=round(server_cpu / scrapes * 1000, 2),
        rss_mib=round(resident_mib(exporter_pid), 1) if exporter_pid else None,
        connections=tcp_connections(exporter_pid, server.port) if exporter_pid else None,
        series=series, bytes=len(body),
    )


def run(scrapes: int) -> dict[str, Any]:
    rows: list[Row] = []
    failures: list[dict[str, str]] = []
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="obsbundle-bench-")))
        secrets = folder / "secrets"
        secrets.mkdir()
        for name, password in PASSWORDS.items():
            (secrets / name).write_text(password, encoding="utf-8")

        print(f"PostgreSQL with {BACKENDS} idle client connections…", file=sys.stderr)
        postgres = stack.enter_context(postgres_server(max_connections=BACKENDS + POOLS + 100))
        postgres.create_role("monitor", PASSWORDS["monitor"], "pg_monitor")
        postgres.create_role("app", PASSWORDS["app"])
        postgres.execute("CREATE EXTENSION pg_stat_statements")
        hold_backends(stack, postgres)

        print(f"PgBouncer with {POOLS} pools…", file=sys.stderr)
        databases = {f"db{index:03d}": "dbname=postgres" for index in range(POOLS)}
        pgbouncer = stack.enter_context(pgbouncer_server(
            postgres, {"app": PASSWORDS["app"], "stats": PASSWORDS["stats"]}, ["stats"], 2, databases))
        open_pools(stack, pgbouncer)

        print(f"RabbitMQ with {QUEUES} queues…", file=sys.stderr)
        rabbitmq = stack.enter_context(rabbitmq_server(fast_statistics=False))
        rabbitmq.add_user("monitor", PASSWORDS["rabbit"], "monitoring")
        rabbitmq.grant("monitor", "/", "", "", "")
        fill_queues(rabbitmq)

        assert postgres.process is not None and pgbouncer.process is not None and rabbitmq.process is not None
        pg_pid, bouncer_pid, rabbit_pid = postgres.process.pid, pgbouncer.process.pid, rabbitmq.process.pid
        pg = Server(lambda: process_tree(pg_pid), postgres.port)
        bouncer = Server(lambda: [bouncer_pid], pgbouncer.port)
        broker = Server(lambda: process_tree(rabbit_pid), rabbitmq.management_port)
        pg_data, pool_data, queue_data = (f"postgres, {BACKENDS} backends", f"pgbouncer, {POOLS} pools",
                                          f"rabbitmq, {QUEUES} queues")
        common = {"host": "127.0.0.1", "sslmode": "disable"}
        targets: list[Target] = [
            ours(folder, pg_data, pg, "postgres", {
                "name": "pg", **common, "port": postgres.port, "user": "monitor",
                "password_file": str(secrets / "monitor")}),
            debian_postgres_exporter(pg_data, pg, postgres),
            ours(folder, pool_data, bouncer, "pgbouncer", {
                "name": "pool", **common, "port": pgbouncer.port, "user": "stats",
                "password_file": str(secrets / "stats")}),
            debian_pgbouncer_exporter(pool_data, bouncer, pgbouncer),
            ours(folder, queue_data, broker, "rabbitmq", {
                "name": "broker", "url": rabbitmq.management_url, "user": "monitor",
                "password_file": str(secrets / "rabbit"), "vhost": "/"}),
            ours(folder, queue_data, broker, "rabbitmq", {
                "name": "broker", "url": rabbitmq.management_url, "user": "monitor",
                "password_file": str(secrets / "rabbit"), "vhost": "/", "queue_details": False},
                name="obsbundle-exporter, queue_details: false"),
        ]
        for target in targets:
            print(f"  {target.name}: {target.data}", file=sys.stderr)
            url = f"http://127.0.0.1:{target.port}/metrics"
            try:
                with process(target.argv, target.env, folder / f"{target.port}.log", url) as pid:
                    rows.append(measure(target.name, target.data, url, scrapes=scrapes, exporter_pid=pid,
                                        server=target.server))
            except StartFailedError as error:
                print(f"    did not start: {error}", file=sys.stderr)
                failures.append({"target": target.name, "data": target.data, "reason": str(error)})
        plugin = Server(broker.pids, rabbitmq.prometheus_port)
        for name, path in (
            ("rabbitmq /metrics/per-object", "/metrics/per-object"),
            # The plugin's filtered endpoint, limited to the families that carry the same data.
            ("rabbitmq /metrics/detailed (queue families)",
             "/metrics/detailed?vhost=%2F&family=queue_coarse_metrics&family=queue_consumer_count"),
        ):
            print(f"  rabbitmq_prometheus {path}: {queue_data}", file=sys.stderr)
            rows.append(measure(name, queue_data, f"http://127.0.0.1:{rabbitmq.prometheus_port}{path}",
                                scrapes=scrapes, exporter_pid=None, server=plugin))
    return {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "setup": {"postgres_backends": BACKENDS, "pgbouncer_pools": POOLS, "rabbitmq_queues": QUEUES,
                  "scrapes": scrapes, "warm_up": WARM_UP},
        "rows": [asdict(row) for row in rows],
        "failed_to_run": failures,
        "ratios": ratios(rows),
    }


def ratios(rows: Sequence[Row]) -> dict[str, dict[str, float | None]]:
    """Theirs divided by ours, per data set: above 1 means obsbundle's exporter costs less."""
    result: dict[str, dict[str, float | None]] = {}
    for mine in (row for row in rows if row.target.startswith("obsbundle-exporter")):
        others = (row for row in rows if row.data == mine.data and not row.target.startswith("obsbundle-exporter"))
        for theirs in others:
            result[f"{theirs.target} / {mine.target} ({mine.data})"] = {
                "p50": _ratio(theirs.p50_ms, mine.p50_ms),
                "p99": _ratio(theirs.p99_ms, mine.p99_ms),
                "cpu_total": _ratio((theirs.exporter_cpu_ms or 0) + theirs.server_cpu_ms,
                                    (mine.exporter_cpu_ms or 0) + mine.server_cpu_ms),
                "bytes": _ratio(theirs.bytes, mine.bytes),
            }
    return result


def _ratio(theirs: float, mine: float) -> float | None:
    return round(theirs / mine, 2) if mine > 0 else None


def table(result: dict[str, Any]) -> str:
    header = ("| exporter | data | p50 ms | p99 ms | exporter CPU ms/scrape | server CPU ms/scrape | RSS MiB "
              "| connections | series | bytes |")
    lines = [header, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in result["rows"]:
        def show(value: Any) -> str:
            return "—" if value is None else str(value)
        lines.append(
            f"| {row['target']} | {row['data']} | {row['p50_ms']} | {row['p99_ms']} | {show(row['exporter_cpu_ms'])} "
            f"| {row['server_cpu_ms']} | {show(row['rss_mib'])} | {show(row['connections'])} | {row['series']} "
            f"| {row['bytes']} |"
        )
    for failure in result["failed_to_run"]:
        lines.append(f"| {failure['target']} | {failure['data']} | did not start: `{failure['reason']}` "
                     "| | | | | | | |")
    lines += ["", "| ratio (theirs / ours) | p50 | p99 | CPU (exporter + server) | bytes |",
              "|---|---:|---:|---:|---:|"]
    for name, values in result["ratios"].items():
        lines.append(f"| {name} | {values['p50']} | {values['p99']} | {values['cpu_total']} | {values['bytes']} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scrapes", type=int, default=200, help="measured scrapes per exporter (default: 200)")
    parser.add_argument("--json", type=Path, default=RESULTS / "exporter.json", help="where to write the results")
    args = parser.parse_args(argv)
    result = run(args.scrapes)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
