"""Jobs kept as rows of a PostgreSQL table: ready and running rows, and the oldest ready row's age.

Every name from the configuration enters the SQL as a quoted identifier and every status as a
quoted literal (psycopg.sql), never by string formatting. Statuses stay untyped literals so that
text, varchar, enum and integer status columns all compare without casts that would hide an index.
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from obsbundle.exporters import families as f
from obsbundle.exporters.config import PostgresQueueSource
from obsbundle.exporters.families import Sample
from obsbundle.exporters.sources.pgsession import Connection, PgSource

BROKER = "postgres"


def jobs_query(settings: PostgresQueueSource) -> sql.Composed:
    """`SELECT queue, ready, running, oldest_ready_age FROM table WHERE status IN (…) GROUP BY queue`."""
    status = sql.Identifier(settings.status_column)
    table = (
        sql.Identifier(settings.schema_name, settings.table)
        if settings.schema_name is not None
        else sql.Identifier(settings.table)
    )

    def among(statuses: Sequence[str]) -> sql.Composable:
        return sql.SQL("{} IN ({})").format(status, sql.SQL(", ").join(map(sql.Literal, statuses)))

    ready = among(settings.ready_statuses)
    wanted = among((*settings.ready_statuses, *settings.running_statuses))
    running: sql.Composable = (
        sql.SQL("count(*) FILTER (WHERE {})").format(among(settings.running_statuses))
        if settings.running_statuses
        else sql.SQL("NULL::bigint")
    )
    oldest: sql.Composable = (
        sql.SQL("greatest(0, extract(epoch FROM clock_timestamp() - min({}) FILTER (WHERE {})))").format(
            sql.Identifier(settings.created_column), ready
        )
        if settings.created_column is not None
        else sql.SQL("NULL::numeric")
    )
    # Rows whose queue is NULL count under the table's name, like a table without a queue column.
    queue: sql.Composable = (
        sql.SQL("coalesce({}::text, {})").format(sql.Identifier(settings.queue_column), sql.Literal(settings.table))
        if settings.queue_column is not None
        else sql.Literal(settings.table)
    )
    return sql.SQL(
        "SELECT {queue} AS queue, count(*) FILTER (WHERE {ready}) AS ready, {running} AS running,"
        " {oldest} AS oldest FROM {table} WHERE {wanted} GROUP BY 1"
    ).format(queue=queue, ready=ready, running=running, oldest=oldest, table=table, wanted=wanted)


class PostgresJobsSource(PgSource):
    kind = "postgres_queues"

    def __init__(self, settings: PostgresQueueSource) -> None:
        super().__init__(settings)
        self._settings = settings
        self._query = jobs_query(settings)

    def _read(self, conn: Connection) -> list[Sample]:
        rows = {str(queue): (ready, running, oldest) for queue, ready, running, oldest in conn.execute(self._query)}
        for expected in self._settings.queues:
            rows.setdefault(expected, (0, 0 if self._settings.running_statuses else None, 0))
        if not self._settings.queue_column:
            rows.setdefault(self._settings.table, (0, 0 if self._settings.running_statuses else None, 0))
        samples: list[Sample] = []
        for queue, (ready, running, oldest) in sorted(rows.items()):
            labels = (BROKER, queue)
            samples.append(Sample(f.QUEUE_READY, labels, float(ready)))
            if running is not None:
                samples.append(Sample(f.QUEUE_UNACKED, labels, float(running)))
            if self._settings.created_column is not None:
                samples.append(Sample(f.QUEUE_OLDEST_AGE, labels, float(oldest or 0)))
        return samples
