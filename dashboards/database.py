"""Datastores (EcoEco's "Database"): Postgres connections against max_connections, lock waits,
long transactions, cache hit ratio and query duration; PgBouncer waiting clients where a
PgBouncer is exported; Redis cache hit ratio; the volumes datastores keep their data on."""

from __future__ import annotations

from collections.abc import Sequence
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
from obsbundle.links import Board, PanelId, dashboard_uid
from obsbundle.model import Datastore, DatastoreKind, System
from obsbundle.monitors.workloads import EXPORTED_KINDS


def database_dashboard(system: System, config: DashboardConfig) -> dict[str, Any]:
    postgres = [store for store in system.datastores if store.kind is DatastoreKind.POSTGRES]
    redis = [store for store in system.datastores if store.kind is DatastoreKind.REDIS]
    bouncers = [store for store in postgres if store.pgbouncer_source]
    exported = [store for store in system.datastores if store.kind in EXPORTED_KINDS]
    rows: list[Row] = []
    if postgres:
        rows += [Row("PostgreSQL connections", _connections(postgres)), Row("PostgreSQL queries", _queries(postgres))]
    if bouncers:
        rows.append(Row("PgBouncer", _pgbouncer(bouncers)))
    if redis:
        rows.append(Row("Redis", [_redis_hit_ratio(redis, config)]))
    with_volume = [store for store in system.datastores if store.volume]
    if with_volume:
        rows.append(Row("Volumes", [_volumes(with_volume, config)]))
    if exported:
        rows.append(Row("Exporter", [_exporter_up(exported)]))
    names = ", ".join(f"{store.name} ({store.kind.value})" for store in system.datastores)
    return dashboard(
        uid=dashboard_uid(system, Board.DATABASE),
        title=f"{system.name} / Database",
        description=f"Datastores {names}: connections, queries, caches and volumes",
        tags=tags(system, "database"),
        rows=rows,
        variables=variables(system, config),
        links=sibling_links(system),
        config=config,
    )


def _connections(stores: Sequence[Datastore]) -> list[Any]:
    limits = {float(store.max_connections_alert) for store in stores}
    shared = limits.pop() if len(limits) == 1 else None
    return [
        timeseries(
            "Connections used / available",
            "Client connections of each PostgreSQL over max_connections minus the reserved ones; at 100 % "
            "new clients are refused. "
            + ", ".join(f"{store.name} alerts above {store.max_connections_alert:.0%}" for store in stores) + ".",
            [Query(q.pg_connections_ratio(stores), "{{source}}")],
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
                Query(q.pg_connections_by_state(store), f"{store.source} {{{{state}}}}"),
                Query(q.pg_max_connections(store), f"{store.source} max"),
            )],
            Unit.COUNT,
            dashed=[f"{store.source} max" for store in stores],
            width=8,
        ),
        timeseries(
            "Waiting on a lock",
            "Backends waiting for a lock: a steady number means contention or a stuck transaction.",
            [Query(q.pg_waiting(stores), "{{source}}")],
            Unit.COUNT,
            panel_id=PanelId.DB_WAITING,
            width=4,
        ),
        timeseries(
            "Oldest transaction",
            "Age of the oldest open transaction: long ones hold locks and stop vacuum.",
            [Query(q.pg_oldest_transaction(stores), "{{source}}")],
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
            [Query(q.pg_cache_hit_ratio(stores), "{{source}}")],
            Unit.RATIO,
            min_value=None,
            max_value=1,
            width=6,
        ),
        timeseries(
            "Mean query duration",
            "Mean statement duration from pg_stat_statements (total time over calls).",
            [Query(q.pg_mean_query_duration(stores), "{{source}}")],
            Unit.SECONDS,
            width=6,
        ),
        timeseries(
            "Statements per second",
            "Statements executed per second, from pg_stat_statements.",
            [Query(q.pg_queries_per_second(stores), "{{source}}")],
            Unit.OPS,
            width=6,
        ),
        timeseries(
            "Longest running query",
            "Duration of the longest query running now, per database.",
            [Query(q.pg_longest_query(stores), "{{source}} {{datname}}")],
            Unit.SECONDS,
            width=6,
        ),
    ]


def _pgbouncer(stores: Sequence[Datastore]) -> list[Any]:
    return [
        timeseries(
            "Clients waiting",
            "Clients waiting in PgBouncer for a server connection: the pool is too small or queries too slow.",
            [Query(q.pgbouncer(stores, "client_waiting"), "{{source}} {{database}}")],
            Unit.COUNT,
            panel_id=PanelId.DB_PGBOUNCER_WAITING,
            width=8,
        ),
        timeseries(
            "Longest client wait",
            "How long the oldest waiting client has waited for a server connection.",
            [Query(q.pgbouncer(stores, "client_maxwait_seconds", "max"), "{{source}} {{database}}")],
            Unit.SECONDS,
            panel_id=PanelId.DB_PGBOUNCER_MAXWAIT,
            width=8,
        ),
        timeseries(
            "Server connections in use",
            "Active server connections over the pool size, per database.",
            [Query(q.pgbouncer_server_use(stores), "{{source}} {{database}}")],
            Unit.RATIO,
            max_value=1,
            width=8,
        ),
    ]


def _redis_hit_ratio(stores: Sequence[Datastore], config: DashboardConfig) -> Any:
    return timeseries(
        "Redis cache hit ratio",
        f"Keyspace hits over lookups per Redis; the dashed line is the {config.redis_hit_ratio_target:.0%} target.",
        [Query(q.redis_hit_ratio(stores), "{{source}}")],
        Unit.RATIO,
        thresholds=lower_is_worse(config.redis_hit_ratio_target),
        show_thresholds=True,
        max_value=1,
        width=12,
    )


def _volumes(stores: Sequence[Datastore], config: DashboardConfig) -> Any:
    by_namespace: dict[str, list[str]] = {}
    for store in stores:
        assert store.volume is not None
        by_namespace.setdefault(store.namespace, []).append(store.volume)
    return timeseries(
        "Volume usage",
        "Used share of each datastore's PersistentVolumeClaim: "
        + ", ".join(f"{store.name} on {store.volume}" for store in stores) + ". A full volume stops writes.",
        [
            Query(q.volume_usage(config.exporters, namespace, claims), "{{namespace}}/{{persistentvolumeclaim}}")
            for namespace, claims in sorted(by_namespace.items())
        ],
        Unit.RATIO,
        panel_id=PanelId.DB_VOLUME_USAGE,
        thresholds=higher_is_worse(None, config.volume_usage_threshold),
        show_thresholds=True,
        max_value=1,
        width=12,
    )


def _exporter_up(stores: Sequence[Datastore]) -> Any:
    sources = [*stores, *(_bouncer(store) for store in stores if store.pgbouncer_source)]
    return state_timeline(
        "Exporter sources up",
        "Whether the pool & queue exporter could read each source (poolq_up): red means its panels above "
        "are stale and its alerts are held back.",
        [Query(q.exporter_up(sources), "{{source}}")],
        Unit.COUNT,
        panel_id=PanelId.DB_EXPORTER_UP,
        thresholds=lower_is_worse(1),
        states={0: "down", 1: "up"},
        width=12,
    )


def _bouncer(store: Datastore) -> Datastore:
    """A stand-in datastore whose exporter source is the store's PgBouncer."""
    return store.model_copy(update={"exporter_source": store.pgbouncer_source})
