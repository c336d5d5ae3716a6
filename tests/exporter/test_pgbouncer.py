"""The PgBouncer source against a real PgBouncer whose pool is full and has clients queued."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from obsbundle.tools.processes import wait_until
from tests.exporter.conftest import (
    APP,
    STATS,
    Passwords,
    collect_once,
    config_from,
    exporter_of,
    fresh_registry,
    parse_samples,
    pgbouncer_entry,
    serve,
    unique,
    value,
)
from tests.support.servers_db import PgBouncerServer, PostgresServer

pytestmark = pytest.mark.servers


@contextmanager
def full_pool(postgres: PostgresServer, pgbouncer: PgBouncerServer) -> Iterator[tuple[str, float]]:
    """A database whose pool (size 2) is held by 2 open transactions while 3 more clients wait.
    Yields the database and when the waiting clients were started."""
    database = unique("pooled")
    postgres.create_database(database, owner=APP)
    with ExitStack() as stack:
        holders = [stack.enter_context(pgbouncer.connect(APP, database)) for _ in range(2)]
        for holder in holders:
            holder.execute("BEGIN")
            holder.execute("SELECT 1")
        waiters = [stack.enter_context(pgbouncer.connect(APP, database)) for _ in range(3)]
        started = time.monotonic()
        threads = [threading.Thread(target=waiter.execute, args=("SELECT 1",)) for waiter in waiters]
        for thread in threads:
            thread.start()

        def queued() -> bool:
            pools = [row for row in pgbouncer.show(STATS, "POOLS") if row["database"] == database]
            return len(pools) == 1 and pools[0]["cl_waiting"] == 3

        wait_until(queued, 10, "three clients to queue in PgBouncer")
        try:
            yield database, started
        finally:
            for holder in holders:
                holder.execute("COMMIT")
            for thread in threads:
                thread.join(timeout=10)


def test_a_full_pool_reports_active_and_waiting_clients_and_busy_servers(
    postgres: PostgresServer, pgbouncer: PgBouncerServer, passwords: Passwords, tmp_path: Path
) -> None:
    config = config_from(tmp_path, {"pgbouncer": [pgbouncer_entry(pgbouncer, passwords)]})
    with full_pool(postgres, pgbouncer) as (database, started), exporter_of(config) as exporter:
        samples = collect_once(fresh_registry(exporter))
        waited_at_most = time.monotonic() - started
    pool = {"source": "pool", "database": database, "user": APP}
    assert value(samples, "poolq_up", source="pool", kind="pgbouncer") == 1
    assert value(samples, "poolq_pgbouncer_client_active", **pool) == 2
    assert value(samples, "poolq_pgbouncer_client_waiting", **pool) == 3
    assert value(samples, "poolq_pgbouncer_server_active", **pool) == 2
    assert value(samples, "poolq_pgbouncer_server_idle", **pool) == 0
    maxwait = value(samples, "poolq_pgbouncer_client_maxwait_seconds", **pool)
    assert maxwait is not None and 0 < maxwait <= waited_at_most
    assert value(samples, "poolq_pgbouncer_pool_size", source="pool", database=database) == 2


def test_an_idle_pool_keeps_its_server_connections_idle_and_nobody_waiting(
    postgres: PostgresServer, pgbouncer: PgBouncerServer, passwords: Passwords, tmp_path: Path
) -> None:
    database = unique("calm")
    postgres.create_database(database, owner=APP)
    config = config_from(tmp_path, {"pgbouncer": [pgbouncer_entry(pgbouncer, passwords)]})
    with pgbouncer.connect(APP, database) as client, exporter_of(config) as exporter:
        client.execute("SELECT 1")
        samples = collect_once(fresh_registry(exporter))
    pool = {"source": "pool", "database": database, "user": APP}
    assert value(samples, "poolq_pgbouncer_client_active", **pool) == 1
    assert value(samples, "poolq_pgbouncer_client_waiting", **pool) == 0
    assert value(samples, "poolq_pgbouncer_server_active", **pool) == 0
    assert value(samples, "poolq_pgbouncer_server_idle", **pool) == 1
    assert value(samples, "poolq_pgbouncer_client_maxwait_seconds", **pool) == 0


def test_pool_sizes_come_from_each_database_and_the_console_itself_is_left_out(
    pgbouncer: PgBouncerServer, passwords: Passwords, tmp_path: Path
) -> None:
    config = config_from(tmp_path, {"pgbouncer": [pgbouncer_entry(pgbouncer, passwords)]})
    with serve(config) as endpoint:
        samples = parse_samples(endpoint.scrape().text)
    assert value(samples, "poolq_pgbouncer_pool_size", source="pool", database="fixed") == 7
    assert not [labels for name, labels in samples if ("database", "pgbouncer") in labels]
