"""PostgreSQL server side: connections against max_connections, lock waits, transaction and query
ages, buffer cache hits, and pg_stat_statements totals when that extension is installed.

Needs a role with `pg_monitor` (or pg_read_all_stats): without it other roles' sessions show no
state or timestamps.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg import errors, sql

from obsbundle.exporters import families as f
from obsbundle.exporters.config import PostgresSource
from obsbundle.exporters.families import Sample
from obsbundle.exporters.sources.pgsession import Connection, PgSource, fetch_together

log = logging.getLogger(__name__)

# reserved_connections arrived in PostgreSQL 16; current_setting(…, true) is NULL before that.
SETTINGS_SQL = b"""
SELECT current_setting('max_connections')::int,
       current_setting('superuser_reserved_connections')::int,
       coalesce(nullif(current_setting('reserved_connections', true), '')::int, 0),
       current_setting('server_version_num')::int,
       (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
         WHERE e.extname = 'pg_stat_statements')
"""

# Only client backends take a max_connections slot that applications compete for.
CONNECTIONS_SQL = b"""
SELECT coalesce(datname, ''), coalesce(usename, ''), coalesce(state, 'unknown'), count(*)
  FROM pg_stat_activity
 WHERE backend_type = 'client backend'
 GROUP BY 1, 2, 3
"""

# One row per connectable database, so that quiet databases report zeros rather than nothing.
# The exporter's own session is left out of the ages: it is always running a query.
DATABASES_SQL = b"""
SELECT d.datname, s.blks_hit, s.blks_read,
       coalesce(a.waiting, 0),
       coalesce(a.oldest_transaction, 0),
       coalesce(a.longest_query, 0)
  FROM pg_database d
  JOIN pg_stat_database s ON s.datid = d.oid
  LEFT JOIN (
        SELECT datid,
               count(*) FILTER (WHERE wait_event_type = 'Lock') AS waiting,
               greatest(0, extract(epoch FROM clock_timestamp() - min(xact_start)
                                                 FILTER (WHERE pid <> pg_backend_pid()))) AS oldest_transaction,
               greatest(0, extract(epoch FROM clock_timestamp() - min(query_start)
                                                 FILTER (WHERE state = 'active' AND pid <> pg_backend_pid())))
                 AS longest_query
          FROM pg_stat_activity
         WHERE backend_type = 'client backend'
         GROUP BY datid
       ) a ON a.datid = d.oid
 WHERE d.datallowconn AND NOT d.datistemplate
"""

# total_exec_time replaced total_time in PostgreSQL 13.
_EXEC_TIME_SINCE = 130000


def statements_query(schema: str, version: int) -> sql.Composed:
    """Execution time and calls per database from pg_stat_statements installed in `schema`, on a
    server of `version` (server_version_num)."""
    time_column = "total_exec_time" if version >= _EXEC_TIME_SINCE else "total_time"
    return sql.SQL(
        "SELECT d.datname, sum(s.{}) / 1000.0, sum(s.calls)"
        " FROM {} s JOIN pg_database d ON d.oid = s.dbid GROUP BY d.datname"
    ).format(sql.Identifier(time_column), sql.Identifier(schema, "pg_stat_statements"))


_STATEMENTS_UNREADABLE = (errors.ObjectNotInPrerequisiteState, errors.InsufficientPrivilege)
"""pg_stat_statements installed but not in shared_preload_libraries, or not readable by the role."""


class PostgresServerSource(PgSource):
    kind = "postgres"

    def __init__(self, settings: PostgresSource) -> None:
        super().__init__(settings)
        self._statements_unavailable_logged = False
        self._statements_read: tuple[str, int] | None = None
        """pg_stat_statements' schema and the server's version when the extension was last read:
        its query then goes in the same message as the others."""

    def _read(self, conn: Connection) -> list[Sample]:
        # One message, one round trip, one transaction: the statements run back to back on the
        # server, and the connection counts and per-database ages come from the same snapshot of
        # pg_stat_activity, taken once.
        known = self._statements_read
        queries: list[bytes] = [SETTINGS_SQL, CONNECTIONS_SQL, DATABASES_SQL]
        if known is not None:
            queries.append(statements_query(*known).as_bytes(conn))
        try:
            answers = fetch_together(conn, queries)
        except (*_STATEMENTS_UNREADABLE, errors.UndefinedTable):
            if known is None:
                raise
            # The extension was dropped or made unreadable since the last scrape: read it apart.
            self._statements_read = known = None
            answers = fetch_together(conn, queries[:3])
        settings, connections, databases = answers[0][0], answers[1], answers[2]
        max_connections, superuser_reserved, reserved, version, statements_schema = settings
        samples = [
            Sample(f.PG_MAX_CONNECTIONS, (), max_connections),
            Sample(f.PG_RESERVED_CONNECTIONS, (), superuser_reserved + reserved),
        ]
        for datname, usename, state, count in connections:
            samples.append(Sample(f.PG_CONNECTIONS, (datname, usename, state), count))
        for datname, hit, read, waiting, oldest, longest in databases:
            labels = (datname,)
            samples += [
                Sample(f.PG_BLOCKS_HIT, labels, hit),
                Sample(f.PG_BLOCKS_READ, labels, read),
                Sample(f.PG_WAITING_CONNECTIONS, labels, waiting),
                Sample(f.PG_OLDEST_TRANSACTION, labels, float(oldest)),
                Sample(f.PG_LONGEST_QUERY, labels, float(longest)),
            ]
        if statements_schema is None:
            self._statements_read = None
        elif known == (statements_schema, version):
            samples += _statements(answers[3])
        else:
            samples += self._statements(conn, statements_schema, version)
        return samples

    def _statements(self, conn: Connection, schema: str, version: int) -> list[Sample]:
        try:
            rows = conn.execute(statements_query(schema, version)).fetchall()
        except _STATEMENTS_UNREADABLE as error:
            # The extension's metrics are optional, so the source stays up without them.
            if not self._statements_unavailable_logged:
                log.info("source %s: pg_stat_statements is installed but unreadable (%s); its metrics are left out",
                         self.name, type(error).__name__)
                self._statements_unavailable_logged = True
            return []
        except psycopg.errors.UndefinedTable:
            return []  # dropped between the two queries
        self._statements_read = (schema, version)
        return _statements(rows)


def _statements(rows: list[tuple[Any, ...]]) -> list[Sample]:
    samples: list[Sample] = []
    for datname, seconds, calls in rows:
        samples.append(Sample(f.PG_STATEMENTS_SECONDS, (datname,), float(seconds)))
        samples.append(Sample(f.PG_STATEMENTS_CALLS, (datname,), float(calls)))
    return samples
