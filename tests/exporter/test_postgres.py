"""The Postgres server source against a real PostgreSQL holding connections in known states."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from obsbundle.tools.processes import wait_until
from tests.exporter.conftest import (
    APP,
    MONITOR,
    Passwords,
    collect_once,
    config_from,
    exporter_of,
    fresh_registry,
    parse_samples,
    postgres_entry,
    serve,
    unique,
    value,
)
from tests.support.servers_db import PostgresServer

pytestmark = pytest.mark.servers


@contextmanager
def busy_database(postgres: PostgresServer, passwords: Passwords) -> Iterator[tuple[str, float]]:
    """A fresh database with 2 idle sessions, 1 idle in a transaction holding a lock, 1 session
    waiting on that lock and 1 running a long query. Yields its name and when the lock was taken."""
    database = unique("busy")
    postgres.create_database(database, owner=APP)
    postgres.execute("CREATE TABLE locked (id int)", dbname=database)
    postgres.execute(sql.SQL("GRANT ALL ON locked TO {}").format(sql.Identifier(APP)), dbname=database)
    with ExitStack() as stack:
        sessions = [stack.enter_context(postgres.tcp_connect(APP, passwords.app, database)) for _ in range(5)]
        idle_1, idle_2, holder, waiter, sleeper = sessions
        del idle_1, idle_2  # connected and doing nothing
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE locked IN ACCESS EXCLUSIVE MODE")
        locked_at = time.time()
        threads = [
            threading.Thread(target=_ignore_cancel, args=(waiter, "SELECT count(*) FROM locked")),
            threading.Thread(target=_ignore_cancel, args=(sleeper, "SELECT pg_sleep(300)")),
        ]
        for thread in threads:
            thread.start()
        wait_until(lambda: _states(postgres, database) == {"idle": 2, "idle in transaction": 1, "active": 2},
                   10, "the sessions to reach their states")
        try:
            yield database, locked_at
        finally:
            for session in (waiter, sleeper):
                postgres.execute("SELECT pg_cancel_backend(%s)", [session.info.backend_pid])
            holder.execute("ROLLBACK")
            for thread in threads:
                thread.join(timeout=10)


def _ignore_cancel(conn: psycopg.Connection[Any], query: str) -> None:
    with suppress(psycopg.errors.QueryCanceled):
        conn.execute(query.encode())


def _states(postgres: PostgresServer, database: str) -> dict[str, int]:
    rows = postgres.execute("SELECT state, count(*) FROM pg_stat_activity WHERE datname = %s GROUP BY 1", [database])
    return {state: count for state, count in rows}


def test_connections_are_counted_by_database_role_and_state(
    postgres: PostgresServer, passwords: Passwords, tmp_path: Path
) -> None:
    config = config_from(tmp_path, {"postgres": [postgres_entry(postgres, passwords)]})
    with busy_database(postgres, passwords) as (database, _), exporter_of(config) as exporter:
        registry = fresh_registry(exporter)

        def connections(state: str) -> float | None:
            labels = {"source": "main", "datname": database, "usename": APP, "state": state}
            return registry.get_sample_value("poolq_pg_connections", labels)

        assert registry.get_sample_value("poolq_up", {"source": "main", "kind": "postgres"}) == 1
        assert connections("idle") == 2
        assert connections("idle in transaction") == 1
        assert connections("active") == 2
        assert registry.get_sample_value("poolq_pg_waiting_connections", {"source": "main", "datname": database}) == 1
        assert registry.get_sample_value("poolq_pg_max_connections", {"source": "main"}) == 100
        # PostgreSQL 15: superuser_reserved_connections (3); reserved_connections arrives in 16.
        assert registry.get_sample_value("poolq_pg_reserved_connections", {"source": "main"}) == 3


def test_the_exporter_counts_its_own_session_as_one_active_connection(
    postgres: PostgresServer, passwords: Passwords, tmp_path: Path
) -> None:
    config = config_from(tmp_path, {"postgres": [postgres_entry(postgres, passwords)]})
    with exporter_of(config) as exporter:
        registry = fresh_registry(exporter)
        own = {"source": "main", "datname": "postgres", "usename": "monitor", "state": "active"}
        assert registry.get_sample_value("poolq_pg_connections", own) == 1


def test_transaction_and_query_ages_grow_from_when_they_started(
    postgres: PostgresServer, passwords: Passwords, tmp_path: Path
) -> None:
    config = config_from(tmp_path, {"postgres": [postgres_entry(postgres, passwords)]})
    with busy_database(postgres, passwords) as (database, locked_at), exporter_of(config) as exporter:
        samples = collect_once(fresh_registry(exporter))
        upper_bound = time.time() - locked_at + 1
        oldest = value(samples, "poolq_pg_oldest_transaction_seconds", source="main", datname=database)
        longest = value(samples, "poolq_pg_longest_query_seconds", source="main", datname=database)
        assert oldest is not None and longest is not None
        # The lock holder began its transaction before the two queries started, and all of it
        # happened after `locked_at` was read (less a rounding second).
        assert 0 < longest <= oldest < upper_bound


def test_a_quiet_database_reports_zero_waits_and_ages(
    postgres: PostgresServer, passwords: Passwords, tmp_path: Path
) -> None:
    database = unique("quiet")
    postgres.create_database(database)
    config = config_from(tmp_path, {"postgres": [postgres_entry(postgres, passwords)]})
    with exporter_of(config) as exporter:
        registry = fresh_registry(exporter)
        labels = {"source": "main", "datname": database}
        assert registry.get_sample_value("poolq_pg_waiting_connections", labels) == 0
        assert registry.get_sample_value("poolq_pg_oldest_transaction_seconds", labels) == 0
        assert registry.get_sample_value("poolq_pg_longest_query_seconds", labels) == 0
        assert registry.get_sample_value("poolq_pg_connections", {**labels, "usename": APP, "state": "idle"}) is None


def test_block_counters_are_those_of_pg_stat_database(
    postgres: PostgresServer, passwords: Passwords, tmp_path: Path
) -> None:
    query = "SELECT blks_hit, blks_read FROM pg_stat_database WHERE datname = 'postgres'"
    config = config_from(tmp_path, {"postgres": [postgres_entry(postgres, passwords)]})
    with exporter_of(config) as exporter:
        registry = fresh_registry(exporter)
        (hit_before, read_before), = postgres.execute(query)
        labels = {"source": "main", "datname": "postgres"}
        hit = registry.get_sample_value("poolq_pg_blocks_hit_total", labels)
        read = registry.get_sample_value("poolq_pg_blocks_read_total", labels)
        (hit_after, read_after), = postgres.execute(query)
    assert hit is not None and read is not None
    # Both are cumulative counters, so the exporter's reading lies between two direct readings.
    assert hit_before <= hit <= hit_after
    assert read_before <= read <= read_after
    assert hit > 0


def test_statement_totals_come_from_pg_stat_statements_when_it_is_installed(
    postgres: PostgresServer, passwords: Passwords, tmp_path: Path
) -> None:
    database = unique("stmts")
    postgres.create_database(database, owner=APP)
    with postgres.tcp_connect(APP, passwords.app, database) as conn:
        for _ in range(7):
            conn.execute("SELECT pg_sleep(0.01)")
    config = config_from(tmp_path, {"postgres": [
        postgres_entry(postgres, passwords),  # connects to `postgres`, where the extension is
        postgres_entry(postgres, passwords, name="without", dbname=database),  # no extension there
    ]})
    with exporter_of(config) as exporter:
        registry = fresh_registry(exporter)
        labels = {"source": "main", "datname": database}
        calls = registry.get_sample_value("poolq_pg_statements_calls_total", labels)
        seconds = registry.get_sample_value("poolq_pg_statements_seconds_total", labels)
        assert calls is not None and calls >= 7
        assert seconds is not None and seconds >= 7 * 0.01
        assert registry.get_sample_value("poolq_up", {"source": "without", "kind": "postgres"}) == 1
        without = {"source": "without", "datname": database}
        assert registry.get_sample_value("poolq_pg_statements_calls_total", without) is None
        assert registry.get_sample_value("poolq_pg_statements_seconds_total", without) is None


def test_every_series_carries_the_source_label_and_build_info_is_served(
    postgres: PostgresServer, passwords: Passwords, tmp_path: Path
) -> None:
    config = config_from(tmp_path, {"postgres": [postgres_entry(postgres, passwords)]})
    with serve(config) as endpoint:
        response = endpoint.scrape()
    assert response.status_code == 200
    samples = parse_samples(response.text)
    names = {name for name, _ in samples}
    assert {"poolq_up", "poolq_scrape_duration_seconds", "poolq_build_info", "poolq_pg_connections",
            "poolq_pg_max_connections", "poolq_pg_reserved_connections", "poolq_pg_waiting_connections",
            "poolq_pg_oldest_transaction_seconds", "poolq_pg_longest_query_seconds", "poolq_pg_blocks_hit_total",
            "poolq_pg_blocks_read_total", "poolq_pg_statements_seconds_total",
            "poolq_pg_statements_calls_total"} <= names
    for (name, labels), _ in samples.items():
        if name != "poolq_build_info":
            assert ("source", "main") in labels, name
    build = [labels for name, labels in samples if name == "poolq_build_info"]
    assert len(build) == 1 and {key for key, _ in build[0]} == {"version", "python"}
    assert value(samples, "poolq_up", source="main", kind="postgres") == 1


def test_statement_totals_follow_pg_stat_statements_as_it_is_dropped_and_installed_elsewhere(
    postgres: PostgresServer, passwords: Passwords, tmp_path: Path
) -> None:
    database = unique("stmtlife")
    postgres.create_database(database, owner=APP)
    postgres.execute("CREATE EXTENSION pg_stat_statements", dbname=database)
    config = config_from(tmp_path, {"postgres": [postgres_entry(postgres, passwords, name="life", dbname=database)]})
    up = {"source": "life", "kind": "postgres"}
    with exporter_of(config) as exporter:
        registry = fresh_registry(exporter)

        def calls() -> float | None:
            return registry.get_sample_value("poolq_pg_statements_calls_total", {"source": "life", "datname": database})

        # Read apart on the first scrape, then in the same message as the other queries.
        first, second = calls(), calls()
        assert first is not None and second is not None and second > first
        postgres.execute("DROP EXTENSION pg_stat_statements", dbname=database)
        for _ in range(2):  # the scrape that finds it gone, and the one after
            assert calls() is None
            assert registry.get_sample_value("poolq_up", up) == 1
            assert registry.get_sample_value("poolq_pg_max_connections", {"source": "life"}) is not None
        postgres.execute(f"CREATE SCHEMA stats; GRANT USAGE ON SCHEMA stats TO {MONITOR}", dbname=database)
        postgres.execute("CREATE EXTENSION pg_stat_statements SCHEMA stats", dbname=database)
        again = [calls(), calls()]
        assert all(value is not None for value in again)
        assert registry.get_sample_value("poolq_up", up) == 1
