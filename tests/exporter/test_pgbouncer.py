"""The PgBouncer source against a real PgBouncer whose pool is full and has clients queued."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg
import pytest

from obsbundle.exporters.sources.pgsession import ConsoleRead, read_console
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


def test_the_console_is_read_as_it_writes_its_answers_and_an_error_leaves_the_connection_usable(
    postgres: PostgresServer, pgbouncer: PgBouncerServer
) -> None:
    database = unique("read")
    postgres.create_database(database, owner=APP)
    reads = (ConsoleRead("SHOW POOLS", ("database", "user", "cl_active", "maxwait_us", "no_such_column"),
                         without=("database", "pgbouncer")),
             ConsoleRead("SHOW DATABASES", ("name", "pool_size", "force_user"), without=("name", "pgbouncer")))
    with pgbouncer.connect(APP, database) as client, pgbouncer.connect(STATS, "pgbouncer") as console:
        client.execute("SELECT 1")
        pools, databases = read_console(console, reads)
        # What psycopg reads of the same answers, row by row, as text.
        shown_pools = [row for row in pgbouncer.show(STATS, "POOLS") if row["database"] != "pgbouncer"]
        shown_databases = [row for row in pgbouncer.show(STATS, "DATABASES") if row["name"] != "pgbouncer"]
        assert set(pools) == {"database", "user", "cl_active", "maxwait_us"}
        assert list(pools["database"]) == [row["database"] for row in shown_pools]
        assert list(pools["cl_active"]) == [str(row["cl_active"]) for row in shown_pools]
        ours = pools["database"].index(database)
        assert (pools["user"][ours], pools["cl_active"][ours], pools["maxwait_us"][ours]) == (APP, "1", "0")
        assert set(databases) == {"name", "pool_size", "force_user"}
        assert list(databases["name"]) == [row["name"] for row in shown_databases]
        assert list(databases["pool_size"]) == [str(row["pool_size"]) for row in shown_databases]
        assert None in databases["force_user"]  # NULL stays None
        assert "pgbouncer" not in databases["name"]

        # A console error in the command sent ahead is raised as PgBouncer worded it, and the
        # connection answers the next read.
        with pytest.raises(psycopg.Error, match="invalid command"):
            read_console(console, (reads[0], ConsoleRead("SHOW NO_SUCH_THING", ("name",))))
        assert read_console(console, reads[1:])[0]["name"] == databases["name"]
        with pytest.raises(psycopg.Error, match="invalid command"):
            read_console(console, (ConsoleRead("SHOW NO_SUCH_THING", ("name",)),))
        assert not console.broken
