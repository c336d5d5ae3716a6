"""Real PostgreSQL, PgBouncer, RabbitMQ and Redis servers on loopback, for the exporter's tests and bench.

Each server lives in its own temporary folder, listens on free ports of 127.0.0.1 only, and is
stopped by its own process id. PostgreSQL and PgBouncer refuse to run as root, so when the tests
run as root they are started as the `postgres` user (created by the postgresql package) through
`setpriv`, which replaces itself with the server: the process id we hold is the server's own.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pika
import psycopg
import redis
import requests
from psycopg import sql

from obsbundle.tools.processes import ManagedProcess, free_port, port_open, require_binary, wait_until

SERVICE_USER = "postgres"
"""Unprivileged account that runs PostgreSQL and PgBouncer when the tests run as root."""


def postgres_bin_dirs() -> list[str]:
    """`/usr/lib/postgresql/<version>/bin` folders, newest version first."""
    root = Path("/usr/lib/postgresql")
    if not root.is_dir():
        return []
    versions = sorted((p for p in root.iterdir() if p.name.isdigit()), key=lambda p: int(p.name), reverse=True)
    return [str(p / "bin") for p in versions]


def _running_as_root() -> bool:
    return os.geteuid() == 0


def _as_service_user(argv: Sequence[str]) -> list[str]:
    if not _running_as_root():
        return list(argv)
    setpriv = require_binary("setpriv", "util-linux")
    return [setpriv, f"--reuid={SERVICE_USER}", f"--regid={SERVICE_USER}", "--init-groups", "--", *argv]


def service_temp_dir(prefix: str) -> Path:
    """A fresh folder under the system temp dir that the service user owns (pytest's own tmp_path is
    private to root, so the postgres user could not reach into it)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if _running_as_root():
        entry = pwd.getpwnam(SERVICE_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def _chown_to_service_user(path: Path) -> None:
    if _running_as_root():
        entry = pwd.getpwnam(SERVICE_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _write_private(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    _chown_to_service_user(path)


def _stop(process: ManagedProcess | None, first_signal: signal.Signals, timeout: float) -> None:
    """Send `first_signal` to the server's own pid, wait, then let ManagedProcess finish the job."""
    if process is None or not process.alive():
        return
    os.kill(process.pid, first_signal)
    try:
        assert process.process is not None
        process.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.stop(timeout=5)


# --- PostgreSQL ------------------------------------------------------------------------------------


@dataclass
class PostgresServer:
    """A PostgreSQL cluster: TCP on 127.0.0.1 with SCRAM passwords, a Unix socket with trust for admin."""

    root: Path
    port: int = field(default_factory=free_port)
    max_connections: int = 100
    process: ManagedProcess | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    def init(self) -> PostgresServer:
        initdb = require_binary("initdb", "postgresql", postgres_bin_dirs())
        self.socket_dir.mkdir()
        _chown_to_service_user(self.socket_dir)
        subprocess.run(
            _as_service_user(
                [initdb, "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]
            ),
            check=True, capture_output=True, cwd=self.root,
        )
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "max_connections": str(self.max_connections),
            # A throwaway cluster: durability costs time and buys nothing here.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_preload_libraries": "'pg_stat_statements'",
            "log_min_messages": "warning",
        }
        with (self.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        (self.data_dir / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n", encoding="utf-8"
        )
        return self

    def start(self) -> PostgresServer:
        postgres = require_binary("postgres", "postgresql", postgres_bin_dirs())
        self.process = ManagedProcess("postgres", _as_service_user([postgres, "-D", str(self.data_dir)]), self.root)
        self.process.start()
        wait_until(self._ready, 30, f"PostgreSQL on port {self.port} ({self.process.log_tail()})")
        return self

    def _ready(self) -> bool:
        if self.process is None or not self.process.alive():
            raise RuntimeError(f"postgres exited: {self.process.log_tail() if self.process else ''}")
        with self.connect():
            return True

    def stop(self) -> None:
        """Fast shutdown (SIGINT): open sessions are ended, unlike SIGTERM's wait for every client."""
        _stop(self.process, signal.SIGINT, timeout=30)

    def connect(self, dbname: str = "postgres", autocommit: bool = True) -> psycopg.Connection[Any]:
        """A superuser session over the Unix socket."""
        return psycopg.connect(
            host=str(self.socket_dir), port=self.port, user="postgres", dbname=dbname,
            autocommit=autocommit, connect_timeout=5,
        )

    def execute(self, statement: str | sql.SQL | sql.Composed, params: Sequence[Any] | Mapping[str, Any] | None = None,
                dbname: str = "postgres") -> list[tuple[Any, ...]]:
        """Run one statement as superuser; the rows it returns, if any."""
        query = statement.encode() if isinstance(statement, str) else statement
        with self.connect(dbname) as conn, conn.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def create_role(self, name: str, password: str, *grants: str) -> None:
        """A login role; `grants` are roles it becomes a member of, e.g. `pg_monitor`."""
        self.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name), sql.Literal(password))
        )
        for grant in grants:
            self.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(grant), sql.Identifier(name)))

    def create_database(self, name: str, owner: str = "postgres") -> None:
        self.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(owner)))

    def tcp_connect(self, user: str, password: str, dbname: str, **kwargs: Any) -> psycopg.Connection[Any]:
        """A client session over TCP, as an application would open one."""
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=user, password=password, dbname=dbname,
            autocommit=True, connect_timeout=5, **kwargs,
        )


@contextmanager
def postgres_server(max_connections: int = 100) -> Iterator[PostgresServer]:
    root = service_temp_dir("obsbundle-pg-")
    server = PostgresServer(root, max_connections=max_connections)
    try:
        yield server.init().start()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


# --- PgBouncer -------------------------------------------------------------------------------------


@dataclass
class PgBouncerServer:
    """PgBouncer in transaction mode in front of a PostgresServer; every database name is pooled (`*`)."""

    root: Path
    postgres: PostgresServer
    users: Mapping[str, str]
    stats_users: Sequence[str]
    default_pool_size: int = 2
    databases: Mapping[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: ManagedProcess | None = None

    def write_config(self) -> PgBouncerServer:
        _write_private(
            self.root / "userlist.txt",
            "".join(f'"{user}" "{password}"\n' for user, password in sorted(self.users.items())),
        )
        backend = f"host=127.0.0.1 port={self.postgres.port}"
        databases = [f"{name} = {backend} {options}".rstrip() for name, options in sorted(self.databases.items())]
        config = "\n".join(
            [
                "[databases]",
                *databases,
                f"* = {backend}",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {self.port}",
                "unix_socket_dir =",
                "auth_type = scram-sha-256",
                f"auth_file = {self.root / 'userlist.txt'}",
                f"stats_users = {', '.join(self.stats_users)}",
                "pool_mode = transaction",
                f"default_pool_size = {self.default_pool_size}",
                "max_client_conn = 2000",
                "max_db_connections = 0",
                "ignore_startup_parameters = extra_float_digits",
                "",
            ]
        )
        _write_private(self.root / "pgbouncer.ini", config)
        return self

    def start(self) -> PgBouncerServer:
        pgbouncer = require_binary("pgbouncer", "pgbouncer", ["/usr/sbin"])
        self.process = ManagedProcess(
            "pgbouncer", _as_service_user([pgbouncer, str(self.root / "pgbouncer.ini")]), self.root
        )
        self.process.start()
        wait_until(self._ready, 20, f"PgBouncer on port {self.port}")
        return self

    def _ready(self) -> bool:
        if self.process is None or not self.process.alive():
            raise RuntimeError(f"pgbouncer exited: {self.process.log_tail() if self.process else ''}")
        return port_open(self.port)

    def stop(self) -> None:
        """SIGTERM is PgBouncer's immediate shutdown."""
        _stop(self.process, signal.SIGTERM, timeout=15)

    def connect(self, user: str, dbname: str, **kwargs: Any) -> psycopg.Connection[Any]:
        """A client session through the pooler."""
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=user, password=self.users[user], dbname=dbname,
            autocommit=True, connect_timeout=5, prepare_threshold=None, **kwargs,
        )

    def show(self, user: str, what: str) -> list[dict[str, Any]]:
        """Rows of an admin console `SHOW <what>` as dictionaries."""
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=user, password=self.users[user], dbname="pgbouncer",
            autocommit=True, prepare_threshold=None, cursor_factory=psycopg.ClientCursor,
        ) as conn, conn.cursor() as cursor:
            cursor.execute(f"SHOW {what}".encode())
            names = [column.name for column in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@contextmanager
def pgbouncer_server(postgres: PostgresServer, users: Mapping[str, str], stats_users: Sequence[str],
                     default_pool_size: int = 2,
                     databases: Mapping[str, str] | None = None) -> Iterator[PgBouncerServer]:
    root = service_temp_dir("obsbundle-pgbouncer-")
    server = PgBouncerServer(root, postgres, users, stats_users, default_pool_size, databases or {})
    try:
        yield server.write_config().start()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


# --- RabbitMQ --------------------------------------------------------------------------------------

RABBITMQ_BIN = "/usr/lib/rabbitmq/bin"
RABBITMQ_ADMIN = ("guest", "guest")
"""RabbitMQ's built-in administrator, which it accepts on loopback only."""


@dataclass
class RabbitMQServer:
    """A RabbitMQ node `rabbit@localhost` with the management and Prometheus plugins, all on 127.0.0.1."""

    root: Path
    amqp_port: int = field(default_factory=free_port)
    management_port: int = field(default_factory=free_port)
    prometheus_port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    epmd_port: int = field(default_factory=free_port)
    fast_statistics: bool = True
    """Refresh queue totals every 0.5 s at 1 s resolution (tests); False keeps RabbitMQ's 5 s defaults."""
    epmd: ManagedProcess | None = None
    process: ManagedProcess | None = None

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.management_port}"

    def write_config(self) -> RabbitMQServer:
        lines = [
            f"listeners.tcp.default = 127.0.0.1:{self.amqp_port}",
            f"management.tcp.port = {self.management_port}",
            "management.tcp.ip = 127.0.0.1",
            f"prometheus.tcp.port = {self.prometheus_port}",
            "prometheus.tcp.ip = 127.0.0.1",
        ]
        if self.fast_statistics:
            # Queue totals in the management API are refreshed at this interval and kept at this
            # resolution (defaults: 5 s each), which tests would otherwise wait out.
            lines += [
                "collect_statistics_interval = 500",
                "management.sample_retention_policies.global.minute = 1",
                "management.sample_retention_policies.basic.minute = 1",
                "management.sample_retention_policies.detailed.10 = 1",
            ]
        (self.root / "rabbitmq.conf").write_text("\n".join([*lines, ""]), encoding="utf-8")
        (self.root / "enabled_plugins").write_text("[rabbitmq_management,rabbitmq_prometheus].\n", encoding="utf-8")
        return self

    def _env(self) -> dict[str, str]:
        return {
            # The Erlang cookie is written to $HOME: keep it in the temp folder.
            "HOME": str(self.root),
            "RABBITMQ_MNESIA_BASE": str(self.root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.root / "log"),
            "RABBITMQ_NODENAME": "rabbit@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_CONFIG_FILE": str(self.root / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "enabled_plugins"),
        }

    def start(self, timeout: float = 90) -> RabbitMQServer:
        server = require_binary("rabbitmq-server", "rabbitmq-server", [RABBITMQ_BIN])
        if self.epmd is None or not self.epmd.alive():
            # Our own epmd in the foreground: one that Erlang starts by itself daemonizes, and
            # could then only be stopped by name.
            epmd = require_binary("epmd", "erlang-base", ["/usr/lib/erlang/bin"])
            self.epmd = ManagedProcess(
                "epmd", [epmd, "-port", str(self.epmd_port), "-address", "127.0.0.1"], self.root
            ).start()
            wait_until(lambda: port_open(self.epmd_port), 10, "epmd")
        # Run by its full path: the /usr/sbin wrapper switches user and drops the environment.
        server_path = str(Path(RABBITMQ_BIN) / "rabbitmq-server") if Path(RABBITMQ_BIN).is_dir() else server
        self.process = ManagedProcess("rabbitmq", [server_path], self.root, env=self._env()).start()
        wait_until(self._ready, timeout, f"RabbitMQ management API on port {self.management_port}")
        return self

    def _ready(self) -> bool:
        if self.process is None or not self.process.alive():
            raise RuntimeError(f"rabbitmq-server exited: {self.process.log_tail() if self.process else ''}")
        return self.api("GET", "/api/overview").ok

    def stop(self) -> None:
        """Stop the node (SIGTERM to its process group); epmd stays up for a restart."""
        if self.process is not None:
            self.process.stop(timeout=30)

    def close(self) -> None:
        self.stop()
        if self.epmd is not None:
            self.epmd.stop()

    def ctl(self, *arguments: str) -> str:
        """`rabbitmqctl` against this node (its cookie and epmd port); its output, or an error with it."""
        ctl = require_binary("rabbitmqctl", "rabbitmq-server", [RABBITMQ_BIN])
        # By its full path, as the server: the /usr/sbin wrapper switches user and drops the environment.
        ctl_path = str(Path(RABBITMQ_BIN) / "rabbitmqctl") if Path(RABBITMQ_BIN).is_dir() else ctl
        result = subprocess.run(
            [ctl_path, "-n", "rabbit@localhost", *arguments],
            env={**os.environ, **self._env()}, capture_output=True, text=True, timeout=60, check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(arguments)} failed: {result.stdout}{result.stderr}")
        return result.stdout

    def api(self, method: str, path: str, body: Any = None) -> requests.Response:
        """A management API call as the administrator."""
        return requests.request(method, self.management_url + path, json=body, auth=RABBITMQ_ADMIN, timeout=30)

    def add_vhost(self, vhost: str) -> None:
        self.api("PUT", f"/api/vhosts/{quote(vhost, safe='')}").raise_for_status()
        self.grant(RABBITMQ_ADMIN[0], vhost)

    def add_user(self, name: str, password: str, tags: str) -> None:
        self.api("PUT", f"/api/users/{quote(name, safe='')}", {"password": password, "tags": tags}).raise_for_status()

    def grant(self, user: str, vhost: str, configure: str = ".*", write: str = ".*", read: str = ".*") -> None:
        self.api(
            "PUT", f"/api/permissions/{quote(vhost, safe='')}/{quote(user, safe='')}",
            {"configure": configure, "write": write, "read": read},
        ).raise_for_status()

    def amqp(self, vhost: str = "/") -> pika.BlockingConnection:
        """An AMQP 0-9-1 connection as the administrator."""
        credentials = pika.PlainCredentials(*RABBITMQ_ADMIN)
        return pika.BlockingConnection(
            pika.ConnectionParameters("127.0.0.1", self.amqp_port, vhost, credentials, connection_attempts=3)
        )

    def queue_totals(self, vhost: str, queue: str) -> dict[str, Any]:
        response = self.api("GET", f"/api/queues/{quote(vhost, safe='')}/{quote(queue, safe='')}")
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def wait_for_totals(self, vhost: str, queue: str, expected: Mapping[str, int]) -> None:
        """Wait until the management API's (periodically refreshed) counts for `queue` read `expected`."""

        def settled() -> bool:
            totals = self.queue_totals(vhost, queue)
            return all(totals.get(key) == value for key, value in expected.items())

        wait_until(settled, 30, f"RabbitMQ queue {queue} to show {dict(expected)}")


@contextmanager
def rabbitmq_server(fast_statistics: bool = True) -> Iterator[RabbitMQServer]:
    root = Path(tempfile.mkdtemp(prefix="obsbundle-rabbitmq-"))
    server = RabbitMQServer(root, fast_statistics=fast_statistics)
    try:
        yield server.write_config().start()
    finally:
        server.close()
        shutil.rmtree(root, ignore_errors=True)


# --- Redis -----------------------------------------------------------------------------------------


@dataclass
class RedisServer:
    """redis-server without persistence, password protected (`requirepass`)."""

    root: Path
    password: str
    port: int = field(default_factory=free_port)
    process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def write_config(self) -> RedisServer:
        # In a file, not on the command line, so that the password is not in the process list.
        _write_private(
            self.root / "redis.conf",
            "\n".join(
                [
                    "bind 127.0.0.1",
                    f"port {self.port}",
                    f"dir {self.root}",
                    'save ""',
                    "appendonly no",
                    f'requirepass "{self.password}"',
                    "",
                ]
            ),
        )
        return self

    def start(self) -> RedisServer:
        binary = require_binary("redis-server", "redis-server")
        self.process = ManagedProcess("redis", [binary, str(self.root / "redis.conf")], self.root).start()
        wait_until(self._ready, 20, f"Redis on port {self.port}")
        return self

    def _ready(self) -> bool:
        if self.process is None or not self.process.alive():
            raise RuntimeError(f"redis-server exited: {self.process.log_tail() if self.process else ''}")
        return bool(self.client().ping())

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_timeout=5)


@contextmanager
def redis_server(password: str) -> Iterator[RedisServer]:
    root = Path(tempfile.mkdtemp(prefix="obsbundle-redis-"))
    server = RedisServer(root, password)
    try:
        yield server.write_config().start()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def wait_for_port_closed(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while port_open(port) and time.monotonic() < deadline:
        time.sleep(0.1)
