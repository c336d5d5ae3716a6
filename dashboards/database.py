"""Datastores (EcoEco's "Database"): Postgres connections against max_connections, lock waits,
long transactions, cache hit ratio and query duration; PgBouncer waiting clients where a
PgBouncer is exported; PostgreSQL health from postgres_exporter (up, deadlocks, rollbacks, buffer
cache, dead rows, transaction ID age, replication lag); Redis from redis_exporter (up, memory
against maxmemory, hit ratio against the inventory's target, evictions, clients, replication); the
volumes datastores keep their data on; and the exporters that read them.

The `datastore` variable narrows every panel to the datastores it selects; the datastore alerts'
links set it (`var-datastore`). The standard exporters' series carry `service=<datastore>` (the
generated monitors' contract), so their panels match it directly. The pool & queue exporter's and
the kubelet's carry a source or a claim instead: each datastore gets its own query there, kept only
while the variable selects that datastore (`_while_selected`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from obsbundle.dashboards import queries as q
from obsbundle.dashboards.common import sibling_links, tags, variables
from obsbundle.dashboards.config import DashboardConfig
from obsbundle.dashboards.panels import (
    GOOD_BELOW,
    Query,
    Row,
    Unit,
    dashboard,
    higher_is_worse,
    lower_is_worse,
    state_timeline,
    timeseries,
)
from obsbundle.dashboards.variables import inventory_variable
from obsbundle.links import Board, PanelId, dashboard_uid
from obsbundle.model import Datastore, DatastoreKind, System
from obsbundle.monitors.workloads import EXPORTED_KINDS
from obsbundle.promql import any_of, quote
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.datastore_health import USER_DATABASES, XID_SPACE, health_datastores

DATASTORE_VARIABLE = "datastore"
UP_STATES: dict[float, str] = {0: "down", 1: "up"}
DEAD_ROWS = "pg_stat_user_tables_n_dead_tup"
XID_AGE = "pg_database_wraparound_age_datfrozenxid_seconds"
REPLICATION_LAG = "pg_replication_lag_seconds"


def database_dashboard(system: System, config: DashboardConfig) -> dict[str, Any]:
    postgres = _of_kind(system.datastores, DatastoreKind.POSTGRES)
    redis = _of_kind(system.datastores, DatastoreKind.REDIS)
    bouncers = [store for store in postgres if store.pgbouncer_source]
    exported = [store for store in system.datastores if store.kind in EXPORTED_KINDS]
    healthy = health_datastores(system)
    postgres_health = _of_kind(healthy, DatastoreKind.POSTGRES)
    redis_health = _of_kind(healthy, DatastoreKind.REDIS)
    # Redis without redis_exporter: the pool & queue exporter's keyspace counters are all there is.
    redis_pooled = [store for store in redis if store not in redis_health]
    rows: list[Row] = []
    if postgres:
        rows += [Row("PostgreSQL connections", _connections(postgres)), Row("PostgreSQL queries", _queries(postgres))]
    if postgres_health:
        rows.append(Row("PostgreSQL health", _postgres_health(postgres_health, config.exporters)))
    if bouncers:
        rows.append(Row("PgBouncer", _pgbouncer(bouncers)))
    if redis_health:
        rows.append(Row("Redis", _redis_health(redis_health, config.exporters)))
    if redis_pooled:
        rows.append(Row("Redis (pool & queue exporter)", [_redis_hit_ratio(redis_pooled, config)]))
    with_volume = [store for store in system.datastores if store.volume]
    if with_volume:
        rows.append(Row("Volumes", [_volumes(with_volume, config)]))
    if exported or healthy:
        rows.append(Row("Exporters", _exporters(exported, healthy)))
    names = ", ".join(f"{store.name} ({store.kind.value})" for store in system.datastores)
    board_variables = variables(system, config)
    if system.datastores:
        board_variables.append(
            inventory_variable(DATASTORE_VARIABLE, "Datastore", (store.name for store in system.datastores))
        )
    return dashboard(
        uid=dashboard_uid(system, Board.DATABASE),
        title=f"{system.name} / Database",
        description=f"Datastores {names}: connections, queries, health, caches and volumes",
        tags=tags(system, "database"),
        rows=rows,
        variables=board_variables,
        links=sibling_links(system),
        config=config,
    )


def _of_kind(stores: Sequence[Datastore], kind: DatastoreKind) -> list[Datastore]:
    return [store for store in stores if store.kind is kind]


# --- narrowing by the datastore variable ---------------------------------------------------------


def _selected(store: Datastore) -> str:
    """One sample while `$datastore` selects `store`, none otherwise. PromQL cannot test a string
    against a regex, but label_replace sets a label only where its regex matches the source label:
    the store's name is put in a label, marked where `$datastore` matches it, and kept if marked."""
    named = f'label_replace(vector(1), "datastore", {quote(store.name)}, "", "")'
    marked = f'label_replace({named}, "selected", "yes", "datastore", "${DATASTORE_VARIABLE}")'
    return f'({marked} and on (selected) label_replace(vector(1), "selected", "yes", "", ""))'


def _while_selected(expr: str, store: Datastore) -> str:
    return f"({expr}) and on () {_selected(store)}"


def _per_store(
    stores: Sequence[Datastore], build: Callable[[Datastore], str], legend: str
) -> list[Query]:
    """One query per datastore, each kept while the variable selects its datastore."""
    return [Query(_while_selected(build(store), store), legend) for store in stores]


def _exporter(stores: Sequence[Datastore], metric: str, *raw: str) -> str:
    """`metric` of these datastores' standard exporters, narrowed to those `$datastore` selects."""
    namespaces = any_of(store.namespace for store in stores)
    return q.sel(metric, None, f"namespace=~{namespaces}", q.DATASTORE_MATCHER, *raw)


def _by(labels: str, aggregate: str, series: str) -> str:
    return f"{aggregate} by ({labels}) ({series})"


# --- pool & queue exporter ------------------------------------------------------------------------


def _connections(stores: Sequence[Datastore]) -> list[Any]:
    limits = {float(store.max_connections_alert) for store in stores}
    shared = limits.pop() if len(limits) == 1 else None
    return [
        timeseries(
            "Connections used / available",
            "Client connections of each PostgreSQL over max_connections minus the reserved ones; at 100 % "
            "new clients are refused. "
            + ", ".join(f"{store.name} alerts above {store.max_connections_alert:.0%}" for store in stores) + ".",
            _per_store(stores, lambda store: q.pg_connections_ratio([store]), "{{source}}"),
            Unit.RATIO,
            panel_id=PanelId.DB_CONNECTIONS,
            thresholds=higher_is_worse(None, shared) if shared is not None else GOOD_BELOW,
            show_thresholds=shared is not None,
            max_value=1,
            width=8,
        ),
        timeseries(
            "Connections by state",
            "Connections of each PostgreSQL by state (active, idle, idle in transaction); dashed: max_connections.",
            [query for store in stores for query in (
                Query(_while_selected(q.pg_connections_by_state(store), store), f"{store.source} {{{{state}}}}"),
                Query(_while_selected(q.pg_max_connections(store), store), f"{store.source} max"),
            )],
            Unit.COUNT,
            dashed=[f"{store.source} max" for store in stores],
            width=8,
        ),
        timeseries(
            "Waiting on a lock",
            "Backends waiting for a lock: a steady number means contention or a stuck transaction.",
            _per_store(stores, lambda store: q.pg_waiting([store]), "{{source}}"),
            Unit.COUNT,
            panel_id=PanelId.DB_WAITING,
            width=4,
        ),
        timeseries(
            "Oldest transaction",
            "Age of the oldest open transaction: long ones hold locks and stop vacuum.",
            _per_store(stores, lambda store: q.pg_oldest_transaction([store]), "{{source}}"),
            Unit.SECONDS,
            panel_id=PanelId.DB_OLDEST_TRANSACTION,
            width=4,
        ),
    ]


def _queries(stores: Sequence[Datastore]) -> list[Any]:
    return [
        timeseries(
            "Cache hit ratio",
            "Share of block reads served from shared buffers rather than disk; OLTP databases usually stay above 99 %.",
            _per_store(stores, lambda store: q.pg_cache_hit_ratio([store]), "{{source}}"),
            Unit.RATIO,
            min_value=None,
            max_value=1,
            width=6,
        ),
        timeseries(
            "Mean query duration",
            "Mean statement duration from pg_stat_statements (total time over calls).",
            _per_store(stores, lambda store: q.pg_mean_query_duration([store]), "{{source}}"),
            Unit.SECONDS,
            width=6,
        ),
        timeseries(
            "Statements per second",
            "Statements executed per second, from pg_stat_statements.",
            _per_store(stores, lambda store: q.pg_queries_per_second([store]), "{{source}}"),
            Unit.OPS,
            width=6,
        ),
        timeseries(
            "Longest running query",
            "Duration of the longest query running now, per database.",
            _per_store(stores, lambda store: q.pg_longest_query([store]), "{{source}} {{datname}}"),
            Unit.SECONDS,
            width=6,
        ),
    ]


def _pgbouncer(stores: Sequence[Datastore]) -> list[Any]:
    return [
        timeseries(
            "Clients waiting",
            "Clients waiting in PgBouncer for a server connection: the pool is too small or queries too slow.",
            _per_store(stores, lambda store: q.pgbouncer([store], "client_waiting"), "{{source}} {{database}}"),
            Unit.COUNT,
            panel_id=PanelId.DB_PGBOUNCER_WAITING,
            width=8,
        ),
        timeseries(
            "Longest client wait",
            "How long the oldest waiting client has waited for a server connection.",
            _per_store(
                stores, lambda store: q.pgbouncer([store], "client_maxwait_seconds", "max"), "{{source}} {{database}}"
            ),
            Unit.SECONDS,
            panel_id=PanelId.DB_PGBOUNCER_MAXWAIT,
            width=8,
        ),
        timeseries(
            "Server connections in use",
            "Active server connections over the pool size, per database.",
            _per_store(stores, lambda store: q.pgbouncer_server_use([store]), "{{source}} {{database}}"),
            Unit.RATIO,
            max_value=1,
            width=8,
        ),
    ]


def _redis_hit_ratio(stores: Sequence[Datastore], config: DashboardConfig) -> Any:
    return timeseries(
        "Redis cache hit ratio",
        f"Keyspace hits over lookups per Redis; the dashed line is the {config.redis_hit_ratio_target:.0%} target.",
        _per_store(stores, lambda store: q.redis_hit_ratio([store]), "{{source}}"),
        Unit.RATIO,
        thresholds=lower_is_worse(config.redis_hit_ratio_target),
        show_thresholds=True,
        max_value=1,
        width=12,
    )


# --- postgres_exporter ----------------------------------------------------------------------------


def _database_rate(stores: Sequence[Datastore], counter: str) -> str:
    series = _exporter(stores, f"pg_stat_database_{counter}", USER_DATABASES)
    return f"sum by (service, datname) ({q.rate(series)})"


def _postgres_health(stores: Sequence[Datastore], rules: RuleConfig) -> list[Any]:
    rollback, commit = _database_rate(stores, "xact_rollback"), _database_rate(stores, "xact_commit")
    hit, read = _database_rate(stores, "blks_hit"), _database_rate(stores, "blks_read")
    panels = [
        state_timeline(
            "PostgreSQL up",
            "Whether postgres_exporter could query each PostgreSQL pod (pg_up): red means the database refuses it.",
            [Query(_by("service, pod", "min", _exporter(stores, "pg_up")), "{{service}} {{pod}}")],
            Unit.COUNT,
            panel_id=PanelId.DB_POSTGRES_UP,
            thresholds=lower_is_worse(1),
            states=UP_STATES,
            width=8,
        ),
        timeseries(
            "Deadlocks a minute",
            f"Deadlocks PostgreSQL detected, per database; the alert fires above {rules.postgres_deadlocks_per_minute} "
            "a minute (the postgres mixin's threshold). The server's log names the two statements of each.",
            [Query(f"{_database_rate(stores, 'deadlocks')} * 60", "{{service}} {{datname}}")],
            Unit.COUNT,
            panel_id=PanelId.DB_DEADLOCKS,
            thresholds=higher_is_worse(None, rules.postgres_deadlocks_per_minute),
            show_thresholds=True,
            width=8,
        ),
        timeseries(
            "Rollback ratio",
            f"Share of each database's transactions that roll back; the alert fires above "
            f"{float(rules.postgres_rollback_ratio):.0%}.",
            [Query(f"{rollback} / ({commit} + {rollback})", "{{service}} {{datname}}")],
            Unit.RATIO,
            panel_id=PanelId.DB_ROLLBACKS,
            thresholds=higher_is_worse(None, float(rules.postgres_rollback_ratio)),
            show_thresholds=True,
            max_value=1,
            width=8,
        ),
        timeseries(
            "Buffer cache hit ratio",
            f"Share of each database's block reads served from shared buffers (postgres_exporter); the alert "
            f"fires below {float(rules.postgres_cache_hit_ratio):.0%}.",
            [Query(f"{hit} / ({hit} + {read})", "{{service}} {{datname}}")],
            Unit.RATIO,
            panel_id=PanelId.DB_CACHE_HIT,
            thresholds=lower_is_worse(float(rules.postgres_cache_hit_ratio)),
            show_thresholds=True,
            min_value=None,
            max_value=1,
            width=8,
        ),
        timeseries(
            "Dead rows",
            "The ten tables with the most dead rows: rows vacuum has yet to remove. A table whose dead rows "
            "pass its autovacuum trigger and that no vacuum has visited for hours bloats.",
            [Query(
                f"topk(10, {_by('service, datname, relname', 'max', _exporter(stores, DEAD_ROWS))})",
                "{{service}} {{datname}}.{{relname}}",
            )],
            Unit.COUNT,
            panel_id=PanelId.DB_DEAD_TUPLES,
            width=8,
        ),
        timeseries(
            "Transaction ID age",
            f"age(datfrozenxid) of each database over the 2^31 transaction IDs: PostgreSQL stops writing near "
            f"100 %; the alert fires above {float(rules.postgres_xid_age_share):.0%}.",
            [Query(
                f"{_by('service, datname', 'max', _exporter(stores, XID_AGE))}"
                f" / {XID_SPACE}",
                "{{service}} {{datname}}",
            )],
            Unit.RATIO,
            panel_id=PanelId.DB_XID_AGE,
            thresholds=higher_is_worse(None, float(rules.postgres_xid_age_share)),
            show_thresholds=True,
            max_value=1,
            width=8,
        ),
    ]
    replicated = [store for store in stores if store.replicas > 1]
    if replicated:
        panels.append(timeseries(
            "Replication lag",
            "How far each replica's replay is behind what it received (0 on a primary); the alert fires above "
            f"{rules.postgres_replication_lag_seconds} s (the postgres mixin's hour). Replicated: "
            + ", ".join(f"{store.name} ({store.replicas} pods)" for store in replicated) + ".",
            [Query(_by("service, pod", "max", _exporter(replicated, REPLICATION_LAG)), "{{service}} {{pod}}")],
            Unit.SECONDS,
            panel_id=PanelId.DB_REPLICATION_LAG,
            thresholds=higher_is_worse(None, rules.postgres_replication_lag_seconds),
            show_thresholds=True,
            width=24,
        ))
    return panels


# --- redis_exporter -------------------------------------------------------------------------------


def _redis_health(stores: Sequence[Datastore], rules: RuleConfig) -> list[Any]:
    used = _by("service, pod", "max", _exporter(stores, "redis_memory_used_bytes"))
    limit = _by("service, pod", "max", _exporter(stores, "redis_memory_max_bytes"))
    panels = [
        state_timeline(
            "Redis up",
            "Whether redis_exporter could reach each Redis pod (redis_up).",
            [Query(_by("service, pod", "min", _exporter(stores, "redis_up")), "{{service}} {{pod}}")],
            Unit.COUNT,
            panel_id=PanelId.DB_REDIS_UP,
            thresholds=lower_is_worse(1),
            states=UP_STATES,
            width=8,
        ),
        timeseries(
            "Memory used / maxmemory",
            f"Used memory over maxmemory per pod (none without a maxmemory); the alert fires above "
            f"{float(rules.redis_memory_share):.0%}. At maxmemory Redis evicts keys or refuses writes, by its policy.",
            [Query(f"{used} / ({limit} > 0)", "{{service}} {{pod}}")],
            Unit.RATIO,
            panel_id=PanelId.DB_REDIS_MEMORY,
            thresholds=higher_is_worse(None, float(rules.redis_memory_share)),
            show_thresholds=True,
            max_value=1,
            width=8,
        ),
        _hit_ratio(stores),
        timeseries(
            "Evicted keys",
            "Keys Redis dropped to stay under maxmemory, per second: any eviction alerts.",
            [Query(_by("service, pod", "sum", q.rate(_exporter(stores, "redis_evicted_keys_total"))),
                   "{{service}} {{pod}}")],
            Unit.OPS,
            panel_id=PanelId.DB_REDIS_EVICTIONS,
            width=8,
        ),
        timeseries(
            "Clients",
            "Connected clients per pod, and connections refused at maxclients (per second): any refusal alerts.",
            [
                Query(_by("service, pod", "max", _exporter(stores, "redis_connected_clients")), "{{service}} {{pod}}"),
                Query(
                    _by("service, pod", "sum", q.rate(_exporter(stores, "redis_rejected_connections_total"))),
                    "{{service}} {{pod}} rejected",
                ),
            ],
            Unit.COUNT,
            panel_id=PanelId.DB_REDIS_CLIENTS,
            width=8,
        ),
    ]
    replicated = [store for store in stores if store.replicas > 1]
    if replicated:
        masters = _exporter(replicated, "redis_instance_info", 'role="master"')
        panels.append(timeseries(
            "Replication",
            "Replicas connected to the masters (the alert fires below the inventory's pods less the masters: "
            + ", ".join(f"{store.name} {store.replicas}" for store in replicated)
            + "), and each replica's link to its master (1 up, 0 down).",
            [
                Query(
                    f"sum by (service) ({_exporter(replicated, 'redis_connected_slaves')} and on (pod) {masters})",
                    "{{service}} replicas connected",
                ),
                Query(_by("service, pod", "min", _exporter(replicated, "redis_master_link_up")),
                      "{{service}} {{pod}} link"),
            ],
            Unit.COUNT,
            panel_id=PanelId.DB_REDIS_REPLICATION,
            width=8,
        ))
    return panels


def _hit_ratio(stores: Sequence[Datastore]) -> Any:
    """Keyspace hits over lookups, with each inventory target as a threshold line (one shared target)
    or a dashed series per datastore (different targets)."""
    hits = f"sum by (service) ({q.rate(_exporter(stores, 'redis_keyspace_hits_total'))})"
    misses = f"sum by (service) ({q.rate(_exporter(stores, 'redis_keyspace_misses_total'))})"
    targets = {store.name: float(store.cache_hit_target) / 100 for store in stores if store.cache_hit_target}
    shared = set(targets.values())
    queries = [Query(f"{hits} / ({hits} + {misses})", "{{service}}")]
    dashed: list[str] = []
    if len(shared) > 1:
        stores_with_target = [store for store in stores if store.name in targets]
        queries += [
            Query(_while_selected(f"vector({targets[store.name]})", store), f"{store.name} target")
            for store in stores_with_target
        ]
        dashed = [f"{store.name} target" for store in stores_with_target]
    described = ", ".join(f"{name} {share:.0%}" for name, share in sorted(targets.items())) or "none set"
    return timeseries(
        "Redis cache hit ratio",
        f"Keyspace lookups that found their key, per Redis, against the inventory's cache_hit_target ({described}); "
        "the alert fires below it.",
        queries,
        Unit.RATIO,
        panel_id=PanelId.DB_REDIS_HIT_RATIO,
        thresholds=lower_is_worse(shared.pop()) if len(shared) == 1 else GOOD_BELOW,
        show_thresholds=len(targets) > 0 and len(set(targets.values())) == 1,
        dashed=dashed,
        max_value=1,
        width=8,
    )


# --- volumes and exporters ------------------------------------------------------------------------


def _volumes(stores: Sequence[Datastore], config: DashboardConfig) -> Any:
    def usage(store: Datastore) -> str:
        assert store.volume is not None
        return q.volume_usage(config.exporters, store.namespace, [store.volume])

    return timeseries(
        "Volume usage",
        "Used share of each datastore's PersistentVolumeClaim: "
        + ", ".join(f"{store.name} on {store.volume}" for store in stores) + ". A full volume stops writes.",
        _per_store(stores, usage, "{{namespace}}/{{persistentvolumeclaim}}"),
        Unit.RATIO,
        panel_id=PanelId.DB_VOLUME_USAGE,
        thresholds=higher_is_worse(None, config.volume_usage_threshold),
        show_thresholds=True,
        max_value=1,
        width=12,
    )


def _exporters(pooled: Sequence[Datastore], standard: Sequence[Datastore]) -> list[Any]:
    panels = []
    if pooled:
        sources = [*pooled, *(_bouncer(store) for store in pooled if store.pgbouncer_source)]
        panels.append(state_timeline(
            "Exporter sources up",
            "Whether the pool & queue exporter could read each source (poolq_up): red means its panels above "
            "are stale and its alerts are held back.",
            _per_store(sources, lambda store: q.exporter_up([store]), "{{source}}"),
            Unit.COUNT,
            panel_id=PanelId.DB_EXPORTER_UP,
            thresholds=lower_is_worse(1),
            states=UP_STATES,
            width=12,
        ))
    if standard:
        panels.append(state_timeline(
            "Datastore exporters up",
            "Whether Prometheus scrapes each datastore's own exporter (postgres_exporter, redis_exporter), per "
            "pod: while none answers, the datastore's health alerts are muted and its exporter-down alert fires.",
            [Query(_by("service, pod", "max", _exporter(standard, "up")), "{{service}} {{pod}}")],
            Unit.COUNT,
            panel_id=PanelId.DB_DATASTORE_EXPORTER_UP,
            thresholds=lower_is_worse(1),
            states=UP_STATES,
            width=12,
        ))
    return panels


def _bouncer(store: Datastore) -> Datastore:
    """A stand-in datastore whose exporter source is the store's PgBouncer (and whose name stays the
    store's, so that the variable selects it with its datastore)."""
    return store.model_copy(update={"exporter_source": store.pgbouncer_source})
