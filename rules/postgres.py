"""Postgres and PgBouncer alerts from the pool & queue exporter's `poolq_pg_*` and `poolq_pgbouncer_*`.

Per Postgres datastore: connections above `max_connections_alert` of the usable slots
(max_connections minus the superuser reserve, the slots applications can actually get), sessions
waiting on locks, and an old open transaction (it holds back vacuum). Per PgBouncer in front of it:
clients waiting for a server connection, and the longest wait. Every alert carries `datastore` and
`exporter`, so that PoolQueueExporterDown and PoolQueueSourceDown can inhibit them.
"""

from __future__ import annotations

from obsbundle import naming
from obsbundle.links import Board, PanelId
from obsbundle.model import Datastore, DatastoreKind, System
from obsbundle.promql import selector
from obsbundle.rules.alert_labels import AlertSubject, datastore_labels, exporter_labels
from obsbundle.rules.cases import postgres as cases
from obsbundle.rules.commands import pgbouncer_console, psql
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.definitions import Alert, AlertDoc, RuleGroup, RunbookCheck
from obsbundle.rules.templating import Description, ValueFormat

CONNECTIONS_HIGH = AlertDoc(
    name="PostgresConnectionsHigh",
    summary="Postgres is running out of connection slots.",
    meaning="Open connections exceed the datastore's `max_connections_alert` share of the slots "
    "applications can use (max_connections minus superuser_reserved_connections). When they run out, "
    "new connections fail with 'too many clients'.",
    actions=(
        "See which databases and users hold them, and in which state (idle ones are pool leaks): "
        "`SELECT datname, usename, state, count(*) FROM pg_stat_activity GROUP BY 1, 2, 3 ORDER BY 4 DESC;`",
        "Lower application pool sizes or put PgBouncer in front; kill idle-in-transaction sessions.",
        "Raise max_connections only with the memory it costs (work_mem per connection).",
    ),
)
LOCK_WAITS = AlertDoc(
    name="PostgresLockWaits",
    summary="Postgres sessions keep waiting on locks.",
    meaning="At every evaluation for a while, some sessions were waiting on a lock: a long transaction or a "
    "migration holds locks others need. Requests queue up behind it.",
    actions=(
        "Find the blockers: `SELECT pid, pg_blocking_pids(pid), wait_event_type, query FROM pg_stat_activity "
        "WHERE cardinality(pg_blocking_pids(pid)) > 0;`",
        "End the blocking session if it is stuck (`SELECT pg_terminate_backend(<pid>);`).",
        "Fix the access pattern (lock ordering, shorter transactions, `lock_timeout` on migrations).",
    ),
)
LONG_TRANSACTION = AlertDoc(
    name="PostgresLongTransaction",
    summary="A Postgres transaction has been open for too long.",
    meaning="The oldest open transaction is older than the threshold. It keeps vacuum from removing dead "
    "rows (tables and indexes bloat) and may hold locks.",
    actions=(
        "Find it: `SELECT pid, usename, state, xact_start, query FROM pg_stat_activity ORDER BY xact_start LIMIT 5;`",
        "An application stuck 'idle in transaction': fix the code path, set idle_in_transaction_session_timeout.",
        "Terminate it if it is not a backup or migration you expect.",
    ),
)
PGBOUNCER_WAITING = AlertDoc(
    name="PgBouncerClientsWaiting",
    summary="PgBouncer clients keep waiting for a server connection.",
    meaning="Clients have been queued for a server connection at every evaluation for a while: the pool is "
    "too small for the load, or server connections are held by slow queries.",
    actions=(
        "`SHOW POOLS;` on PgBouncer's admin console (under How to check): cl_waiting, sv_active, maxwait "
        "per database and user.",
        "Look for slow queries holding server connections; raise default_pool_size if Postgres has room.",
    ),
)
PGBOUNCER_MAX_WAIT = AlertDoc(
    name="PgBouncerMaxWaitHigh",
    summary="A PgBouncer client has waited too long for a server connection.",
    meaning="The oldest queued client of a pool has waited longer than the threshold: requests behind it time out.",
    actions=(
        "`SHOW POOLS;` and `SHOW SERVERS;` on PgBouncer's admin console (under How to check): which pool, and "
        "what holds its server connections?",
        "Raise the pool size or cut query time; check Postgres for lock waits and long transactions.",
    ),
)


def _reads(query: str) -> tuple[RunbookCheck, ...]:
    return (RunbookCheck("What the exporter reads", query, "promql"),)


# What to run in the database for each alert, through psql in its StatefulSet's first pod.
_CONNECTIONS_SQL = (
    "SELECT datname, usename, application_name, state, count(*) FROM pg_stat_activity "
    "GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC LIMIT 20;"
)
_BLOCKERS_SQL = (
    "SELECT pid, pg_blocking_pids(pid) AS blocked_by, wait_event_type, now() - query_start AS waiting, "
    "left(query, 80) FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0;"
)
_OLDEST_SQL = (
    "SELECT pid, usename, application_name, state, now() - xact_start AS open_for, left(query, 80) "
    "FROM pg_stat_activity WHERE xact_start IS NOT NULL ORDER BY xact_start LIMIT 5;"
)


def _in_database(store: Datastore, title: str, sql: str) -> tuple[RunbookCheck, ...]:
    command = psql(store, sql)
    return () if command is None else (RunbookCheck(f"{title} ({store.namespace}/{store.statefulset}-0)", command),)


def postgres_datastores(system: System) -> list[Datastore]:
    return sorted((s for s in system.datastores if s.kind is DatastoreKind.POSTGRES), key=lambda s: s.name)


class _Datastore:
    def __init__(self, system: System, config: RuleConfig, store: Datastore) -> None:
        self.system, self.config, self.store = system, config, store
        labels = {**datastore_labels(system, store), **exporter_labels()}
        self.subject = AlertSubject(system, labels, store.name, Board.DATABASE, variables={"datastore": store.name})
        self.cases = cases.PostgresCases(system, config, store)

    def source(self, source: str) -> dict[str, str]:
        return {naming.SYSTEM_LABEL: self.system.name, "source": source}

    def connections(self) -> Alert:
        source = self.source(self.store.source)
        used = f"sum({selector('poolq_pg_connections', source)})"
        usable = (
            f"max({selector('poolq_pg_max_connections', source)})"
            f" - max({selector('poolq_pg_reserved_connections', source)})"
        )
        threshold = self.store.max_connections_alert
        return self.subject.alert(
            CONNECTIONS_HIGH,
            expr=f"{used}\n/ ({usable})\n> {format(threshold.normalize(), 'f')}",
            severity="warning",
            description=Description(
                f"{self.store.name} uses {{value}} of its usable connection slots "
                f"(alert above {float(threshold) * 100:g}%).",
                ValueFormat.PERCENT,
            ),
            panel=PanelId.DB_CONNECTIONS,
            for_=self.config.postgres_connections_for,
            case=self.cases.connections(),
            threshold=(
                f"> {float(threshold) * 100:g}% of max_connections − reserved "
                f"for {self.config.postgres_connections_for}"
            ),
            checks=(
                *_reads(f"{used} / ({usable})"),
                *_in_database(self.store, "Who holds the connections", _CONNECTIONS_SQL),
            ),
        )

    def lock_waits(self) -> Alert:
        waiting = selector("poolq_pg_waiting_connections", self.source(self.store.source))
        return self.subject.alert(
            LOCK_WAITS,
            expr=f"sum by (datname) ({waiting}) > 0",
            severity="warning",
            description=Description(
                f"{{value}} sessions of database {{datname}} on {self.store.name} are waiting on locks, "
                f"and some have been at every check for {self.config.postgres_lock_waits_for}."
            ),
            panel=PanelId.DB_WAITING,
            for_=self.config.postgres_lock_waits_for,
            case=self.cases.lock_waits(),
            threshold=f"> 0 for {self.config.postgres_lock_waits_for}",
            checks=(
                *_reads(waiting),
                *_in_database(self.store, "The blocked sessions and their blockers", _BLOCKERS_SQL),
            ),
        )

    def long_transaction(self) -> Alert:
        oldest = selector("poolq_pg_oldest_transaction_seconds", self.source(self.store.source))
        limit = self.config.postgres_oldest_transaction_seconds
        return self.subject.alert(
            LONG_TRANSACTION,
            expr=f"max by (datname) ({oldest}) > {limit}",
            severity="warning",
            description=Description(
                f"The oldest open transaction in database {{datname}} on {self.store.name} started {{value}} ago.",
                ValueFormat.DURATION,
            ),
            panel=PanelId.DB_OLDEST_TRANSACTION,
            for_=self.config.postgres_oldest_transaction_for,
            case=self.cases.long_transaction(),
            threshold=f"> {limit}s for {self.config.postgres_oldest_transaction_for}",
            checks=(*_reads(oldest), *_in_database(self.store, "The oldest open transactions", _OLDEST_SQL)),
        )

    def pgbouncer_waiting(self, bouncer: str) -> Alert:
        waiting = selector("poolq_pgbouncer_client_waiting", self.source(bouncer))
        return self.subject.alert(
            PGBOUNCER_WAITING,
            expr=f"sum by (database) ({waiting}) > 0",
            severity="warning",
            description=Description(
                f"{{value}} clients of database {{database}} wait for a server connection in PgBouncer "
                f"{bouncer} ({self.store.name})."
            ),
            panel=PanelId.DB_PGBOUNCER_WAITING,
            for_=self.config.pgbouncer_waiting_for,
            case=self.cases.pgbouncer_waiting(bouncer),
            threshold=f"> 0 for {self.config.pgbouncer_waiting_for}",
            checks=(*_reads(waiting), pgbouncer_console(self.system, bouncer, "SHOW POOLS;")),
        )

    def pgbouncer_max_wait(self, bouncer: str) -> Alert:
        maxwait = selector("poolq_pgbouncer_client_maxwait_seconds", self.source(bouncer))
        limit = self.config.pgbouncer_max_wait_seconds
        return self.subject.alert(
            PGBOUNCER_MAX_WAIT,
            expr=f"max by (database) ({maxwait}) > {limit}",
            severity="warning",
            description=Description(
                f"A client of database {{database}} has waited {{value}} for a server connection in "
                f"PgBouncer {bouncer} ({self.store.name}).",
                ValueFormat.DURATION,
            ),
            panel=PanelId.DB_PGBOUNCER_MAXWAIT,
            for_=self.config.pgbouncer_max_wait_for,
            case=self.cases.pgbouncer_max_wait(bouncer),
            threshold=f"> {limit}s for {self.config.pgbouncer_max_wait_for}",
            checks=(
                *_reads(maxwait),
                pgbouncer_console(self.system, bouncer, "SHOW POOLS;"),
                pgbouncer_console(self.system, bouncer, "SHOW SERVERS;"),
            ),
        )


def postgres_groups(system: System, config: RuleConfig) -> list[RuleGroup]:
    alerts: list[Alert] = []
    for store in postgres_datastores(system):
        build = _Datastore(system, config, store)
        alerts += [build.connections(), build.lock_waits(), build.long_transaction()]
        if store.pgbouncer_source is not None:
            alerts += [
                build.pgbouncer_waiting(store.pgbouncer_source),
                build.pgbouncer_max_wait(store.pgbouncer_source),
            ]
    if not alerts:
        return []
    return [RuleGroup(f"{system.name}-postgres", config.interval, tuple(alerts))]
