"""Every metric the exporter serves: name, type, help and label names, in exposition order.

Sources emit `Sample`s of these families without the `source` label; the collector adds it and
merges the samples of all sources into one family each, so two Postgres sources share one
`poolq_pg_connections` family. Counter names omit `_total`, which the exposition adds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

SOURCE_LABEL = "source"
"""The label the collector puts first on every family: the name of the source it was read from."""


@dataclass(frozen=True)
class Family:
    name: str
    kind: Literal["gauge", "counter"]
    help: str
    labels: tuple[str, ...]
    """Label names after `source`, which every family has."""


class Sample(NamedTuple):
    """One value read from a source. A named tuple: a busy broker gives tens of thousands per scrape,
    and a tuple is the cheapest immutable record to make."""

    family: Family
    labels: tuple[str, ...]
    """Values of `family.labels`, in that order."""
    value: float


class WrittenNumbers(tuple[str, ...]):
    """Values as a server wrote them in text (PgBouncer's console, rabbitmq_prometheus), each a
    whole number of ASCII digits: the exposition writer copies them as they are instead of making a
    float of each and spelling it again, and `float(text)` is the value. Made by `written_numbers`,
    which checks that promise."""

    __slots__ = ()


def written_numbers(texts: Sequence[str]) -> WrittenNumbers | None:
    """`texts` as WrittenNumbers when every one is a whole number of ASCII digits (the counts that
    brokers and poolers write), else None: the caller then reads them as floats."""
    # One check over all of them, at C speed; an empty text would vanish in the join, so it is looked for apart.
    joined = "".join(texts)
    if joined.isascii() and joined.isdigit() and "" not in texts:
        return WrittenNumbers(texts)
    return None


@dataclass(frozen=True, slots=True)
class Batch:
    """Samples of one family that share the values of their first labels: a broker's ten thousand
    queues read as three batches, PgBouncer's thousand pools as five, not tens of thousands of
    Samples, because every object made per sample is paid for in each scrape."""

    family: Family
    labels: tuple[str, ...]
    """Values of the first labels of `family.labels`, shared by all the samples."""
    columns: tuple[Sequence[str], ...]
    """Values of the remaining labels: a column per label, in `family.labels` order, each with one
    entry per sample."""
    values: Sequence[float | str]
    """The samples' values, in the order of the columns: floats, or the numbers as the server wrote
    them, which are then a WrittenNumbers."""


# --- Exporter ----------------------------------------------------------------------------------------
UP = Family("poolq_up", "gauge", "1 if the source answered within the scrape's deadline, else 0.", ("kind",))
SCRAPE_DURATION = Family(
    "poolq_scrape_duration_seconds", "gauge", "Time spent collecting the source during this scrape.", ()
)
BUILD_INFO_NAME = "poolq_build_info"
BUILD_INFO_HELP = "Version of the pool & queue exporter and of the Python running it; always 1."

# --- PostgreSQL server ---------------------------------------------------------------------------------
PG_CONNECTIONS = Family(
    "poolq_pg_connections", "gauge", "Client connections by database, role and state (pg_stat_activity).",
    ("datname", "usename", "state"),
)
PG_MAX_CONNECTIONS = Family("poolq_pg_max_connections", "gauge", "The server's max_connections setting.", ())
PG_RESERVED_CONNECTIONS = Family(
    "poolq_pg_reserved_connections", "gauge",
    "Connection slots ordinary roles cannot use: superuser_reserved_connections plus reserved_connections.", (),
)
PG_WAITING_CONNECTIONS = Family(
    "poolq_pg_waiting_connections", "gauge", "Client connections waiting on a lock.", ("datname",)
)
PG_OLDEST_TRANSACTION = Family(
    "poolq_pg_oldest_transaction_seconds", "gauge", "Age of the oldest open transaction; 0 when there is none.",
    ("datname",),
)
PG_LONGEST_QUERY = Family(
    "poolq_pg_longest_query_seconds", "gauge", "Run time of the longest running active query; 0 when there is none.",
    ("datname",),
)
PG_BLOCKS_HIT = Family(
    "poolq_pg_blocks_hit", "counter", "Disk blocks found in shared buffers (pg_stat_database.blks_hit).", ("datname",)
)
PG_BLOCKS_READ = Family(
    "poolq_pg_blocks_read", "counter", "Disk blocks read from disk or the OS cache (pg_stat_database.blks_read).",
    ("datname",),
)
PG_STATEMENTS_SECONDS = Family(
    "poolq_pg_statements_seconds", "counter", "Execution time of the statements pg_stat_statements tracks.",
    ("datname",),
)
PG_STATEMENTS_CALLS = Family(
    "poolq_pg_statements_calls", "counter", "Executions of the statements pg_stat_statements tracks.", ("datname",)
)

# --- PgBouncer -----------------------------------------------------------------------------------------
_POOL = ("database", "user")
PGBOUNCER_CLIENT_ACTIVE = Family(
    "poolq_pgbouncer_client_active", "gauge", "Client connections linked to a server connection or idle (cl_active).",
    _POOL,
)
PGBOUNCER_CLIENT_WAITING = Family(
    "poolq_pgbouncer_client_waiting", "gauge", "Client connections waiting for a server connection (cl_waiting).",
    _POOL,
)
PGBOUNCER_SERVER_ACTIVE = Family(
    "poolq_pgbouncer_server_active", "gauge", "Server connections linked to a client (sv_active).", _POOL
)
PGBOUNCER_SERVER_IDLE = Family(
    "poolq_pgbouncer_server_idle", "gauge", "Server connections unused and ready for a client (sv_idle).", _POOL
)
PGBOUNCER_CLIENT_MAXWAIT = Family(
    "poolq_pgbouncer_client_maxwait_seconds", "gauge", "How long the oldest waiting client has waited.", _POOL
)
PGBOUNCER_POOL_SIZE = Family(
    "poolq_pgbouncer_pool_size", "gauge", "Server connections allowed per user of the database (pool_size).",
    ("database",),
)

# --- Queues (RabbitMQ, Redis lists, Postgres job tables) -------------------------------------------------
_QUEUE = ("broker", "queue")
QUEUE_READY = Family("poolq_queue_messages_ready", "gauge", "Messages waiting to be delivered.", _QUEUE)
QUEUE_UNACKED = Family(
    "poolq_queue_messages_unacked", "gauge", "Messages delivered and not yet acknowledged (jobs running).", _QUEUE
)
QUEUE_CONSUMERS = Family("poolq_queue_consumers", "gauge", "Consumers attached to the queue.", _QUEUE)
QUEUE_OLDEST_AGE = Family(
    "poolq_queue_oldest_message_age_seconds", "gauge",
    "Age of the oldest message waiting; 0 when none waits. Absent when the broker cannot tell.", _QUEUE,
)

# --- Redis ---------------------------------------------------------------------------------------------
REDIS_KEYSPACE_HITS = Family("poolq_redis_keyspace_hits", "counter", "Successful key lookups (INFO stats).", ())
REDIS_KEYSPACE_MISSES = Family("poolq_redis_keyspace_misses", "counter", "Failed key lookups (INFO stats).", ())

SOURCE_FAMILIES: tuple[Family, ...] = (
    PG_CONNECTIONS,
    PG_MAX_CONNECTIONS,
    PG_RESERVED_CONNECTIONS,
    PG_WAITING_CONNECTIONS,
    PG_OLDEST_TRANSACTION,
    PG_LONGEST_QUERY,
    PG_BLOCKS_HIT,
    PG_BLOCKS_READ,
    PG_STATEMENTS_SECONDS,
    PG_STATEMENTS_CALLS,
    PGBOUNCER_CLIENT_ACTIVE,
    PGBOUNCER_CLIENT_WAITING,
    PGBOUNCER_SERVER_ACTIVE,
    PGBOUNCER_SERVER_IDLE,
    PGBOUNCER_CLIENT_MAXWAIT,
    PGBOUNCER_POOL_SIZE,
    QUEUE_READY,
    QUEUE_UNACKED,
    QUEUE_CONSUMERS,
    QUEUE_OLDEST_AGE,
    REDIS_KEYSPACE_HITS,
    REDIS_KEYSPACE_MISSES,
)
"""Families the sources fill, in the order they are exposed (after up and scrape duration)."""
