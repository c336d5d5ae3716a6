"""Node pools (EcoEco's "Node Resources"): utilisation, saturation and errors (USE) of CPU, memory,
disk and network for every pool with its min/max node counts, and one dashboard per pool; the
nodes' clocks, the kubelet's pressure conditions and inodes beside them, and the claims of the
platform workloads on the pool (their volume alerts link here)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from obsbundle import naming
from obsbundle.dashboards import queries as q
from obsbundle.dashboards.alerts import AlertRow, alerts_panel
from obsbundle.dashboards.common import board_link, sibling_links, tags, variables
from obsbundle.dashboards.config import DashboardConfig
from obsbundle.dashboards.overview import pool_bars
from obsbundle.dashboards.panels import (
    Query,
    Row,
    Unit,
    bar_gauge,
    dashboard,
    higher_is_worse,
    lower_is_worse,
    steps,
    text,
    timeseries,
)
from obsbundle.links import Board, PanelId, dashboard_uid, dashboard_url
from obsbundle.model import NodePool, System

RECEIVE, TRANSMIT = "receive", "transmit"


def node_pools_dashboard(system: System, config: DashboardConfig) -> dict[str, Any]:
    rows = [
        Row(
            "Pools",
            [
                text(
                    "Pools",
                    "Every node pool of the inventory with its instance type, size bounds and what it runs.",
                    _pools_table(system),
                    width=12,
                    height=max(6, len(system.node_pools) + 3),
                ),
                bar_gauge(
                    "Ready nodes per pool",
                    "Ready nodes of each pool: each bar is as long as the pool's max_nodes and turns red below "
                    "its min_nodes.",
                    [Query(q.recorded_pool(naming.POOL_NODES_READY, system), "{{node_pool}}")],
                    Unit.COUNT,
                    panel_id=PanelId.POOL_NODES_READY,
                    per_series=pool_bars(system),
                    width=12,
                    height=max(6, len(system.node_pools) + 3),
                ),
            ],
        ),
        Row("Utilisation", _utilisation(system, None, config)),
        Row("Saturation and errors", _saturation(system, None, config)),
        Row("Clock, kubelet and inodes", _node_health(system, None, config)),
    ]
    claims = platform_claims(system, None)
    if claims:
        rows.append(Row("Platform volumes", _volumes(claims, config, "platform workloads that run on no named pool")))
    return dashboard(
        uid=dashboard_uid(system, Board.NODE_POOLS),
        title=f"{system.name} / Node pools",
        description="USE of every node pool: CPU, memory, disk and network utilisation, saturation and errors",
        tags=tags(system, "node-pools"),
        rows=rows,
        variables=variables(system, config),
        links=sibling_links(system),
        config=config,
    )


def node_pool_dashboard(
    system: System, pool: NodePool, config: DashboardConfig, alerts: Sequence[AlertRow] = ()
) -> dict[str, Any]:
    """The pool's dashboard; `alerts` are the rules' alerts about the pool, listed with their runbooks."""
    rows = [
        Row("Nodes", [_ready(system, pool), _pods(system, pool, config), _about(system, pool)]),
        Row("Utilisation", _utilisation(system, pool, config)),
        Row("Saturation and errors", _saturation(system, pool, config)),
        Row("Clock, kubelet and inodes", _node_health(system, pool, config)),
    ]
    claims = platform_claims(system, pool)
    if claims:
        rows.append(Row("Platform volumes", _volumes(claims, config, f"platform workloads on pool {pool.name}")))
    if alerts:
        rows.append(Row("Alerts", [alerts_panel(alerts, pool.name)]))
    return dashboard(
        uid=dashboard_uid(system, Board.NODE_POOL, pool.name),
        title=f"{system.name} / node pool {pool.name}",
        description=f"Node pool {pool.name}"
        + (f" ({pool.instance_type})" if pool.instance_type else "")
        + f", {pool.min_nodes}–{pool.max_nodes} nodes"
        + (f": {pool.description}" if pool.description else ""),
        tags=tags(system, "node-pool", pool.name),
        rows=rows,
        variables=variables(system, config),
        links=sibling_links(system, board_link(system, "All node pools", Board.NODE_POOLS)),
        config=config,
    )


def _size(pool: NodePool) -> str:
    return f"{pool.min_nodes}–{pool.max_nodes}" if pool.min_nodes != pool.max_nodes else str(pool.min_nodes)


def _shape(pool: NodePool) -> str:
    parts = [f"{pool.vcpu:g} vCPU" if pool.vcpu else "", f"{pool.memory_gib:g} GiB" if pool.memory_gib else "",
             f"{pool.disk_gib:g} GiB disk" if pool.disk_gib else ""]
    return ", ".join(part for part in parts if part) or "–"


def _pools_table(system: System) -> str:
    lines = ["| pool | instance | shape | nodes | runs |", "|---|---|---|---|---|"]
    for pool in system.node_pools:
        url = dashboard_url(system, Board.NODE_POOL, pool.name)
        lines.append(
            f"| [{pool.name}]({url}) | {pool.instance_type or '–'} | {_shape(pool)} | {_size(pool)} | "
            f"{pool.description or '–'} |"
        )
    return "\n".join(lines)


def _ready(system: System, pool: NodePool) -> Any:
    return timeseries(
        "Nodes ready",
        f"Ready nodes of pool {pool.name} out of its nodes; it should hold {_size(pool)} nodes, and the "
        "dashed line is its min_nodes.",
        [
            Query(q.recorded_pool(naming.POOL_NODES_READY, system, pool), "ready"),
            Query(q.recorded_pool(naming.POOL_NODES, system, pool), "nodes"),
        ],
        Unit.COUNT,
        panel_id=PanelId.POOL_NODES_READY,
        thresholds=lower_is_worse(pool.min_nodes) if pool.min_nodes else steps("green"),
        show_thresholds=pool.min_nodes > 0,
        max_value=pool.max_nodes,
        width=8,
    )


def _pods(system: System, pool: NodePool, config: DashboardConfig) -> Any:
    return timeseries(
        "Pods per node",
        f"Pods scheduled on each node of pool {pool.name}, DaemonSets included.",
        [Query(q.pods_per_node(config.exporters, system, pool), "{{node}}")],
        Unit.COUNT,
        width=8,
    )


def _about(system: System, pool: NodePool) -> Any:
    lines = [
        f"**{pool.name}**: {pool.instance_type or 'instance type not given'} ({_shape(pool)}), "
        f"{_size(pool)} nodes",
        "",
    ]
    if pool.description:
        lines += [pool.description, ""]
    for service in system.services:
        if service.node_pool == pool.name:
            url = dashboard_url(system, Board.SERVICE, service.name)
            lines.append(f"- service [{service.name}]({url}) ({service.kind.value})")
    for store in system.datastores:
        if store.node_pool == pool.name:
            lines.append(f"- datastore {store.name} ({store.kind.value})")
    return text(
        "What runs here",
        "The pool's size from the inventory and the workloads pinned to it, with links to their dashboards.",
        "\n".join(lines),
        width=8,
        height=8,
    )


def _utilisation(system: System, pool: NodePool | None, config: DashboardConfig) -> list[Any]:
    """Per node on a pool's dashboard (with the pool's mean), per pool on the system's."""

    def series(node_metric: str, pool_metric: str) -> list[Query]:
        if pool is None:
            return [Query(q.recorded_pool(pool_metric, system), "{{node_pool}}")]
        return [
            Query(q.recorded_nodes(node_metric, system, pool), "{{node}}"),
            Query(q.recorded_pool(pool_metric, system, pool), "pool mean"),
        ]

    scope = f"each node of pool {pool.name} and their mean" if pool else "each pool (mean of its nodes)"
    return [
        timeseries(
            "CPU utilisation",
            f"Share of CPU time not idle, for {scope}.",
            series(naming.NODE_CPU_UTILISATION, naming.POOL_CPU_UTILISATION),
            Unit.RATIO,
            panel_id=PanelId.POOL_CPU if pool else None,
            thresholds=higher_is_worse(None, config.node_cpu_threshold),
            show_thresholds=True,
            max_value=1,
            width=6,
        ),
        timeseries(
            "Memory utilisation",
            f"1 − available / total memory, for {scope}.",
            series(naming.NODE_MEMORY_UTILISATION, naming.POOL_MEMORY_UTILISATION),
            Unit.RATIO,
            panel_id=PanelId.POOL_MEMORY if pool else None,
            thresholds=higher_is_worse(None, config.node_memory_threshold),
            show_thresholds=True,
            max_value=1,
            width=6,
        ),
        timeseries(
            "Disk usage",
            "Used share of the fullest real filesystem of "
            + (f"each node of pool {pool.name}." if pool else "each pool's nodes."),
            [Query(q.recorded_nodes(naming.NODE_FILESYSTEM_USAGE, system, pool), "{{node}}")] if pool
            else [Query(q.recorded_pool(naming.POOL_FILESYSTEM_USAGE, system), "{{node_pool}}")],
            Unit.RATIO,
            panel_id=PanelId.POOL_DISK if pool else None,
            thresholds=higher_is_worse(None, config.disk_usage_threshold),
            show_thresholds=True,
            max_value=1,
            width=6,
        ),
        timeseries(
            "Network",
            "Bytes per second received and transmitted by the pool's nodes (loopback excluded).",
            [
                Query(q.recorded_pool(naming.POOL_NETWORK_RECEIVE, system, pool),
                      RECEIVE if pool else "{{node_pool}} " + RECEIVE),
                Query(q.recorded_pool(naming.POOL_NETWORK_TRANSMIT, system, pool),
                      TRANSMIT if pool else "{{node_pool}} " + TRANSMIT),
            ],
            Unit.BYTES_PER_SECOND,
            panel_id=PanelId.POOL_NETWORK if pool else None,
            width=6,
        ),
    ]


def _saturation(system: System, pool: NodePool | None, config: DashboardConfig) -> list[Any]:
    node_legend = "{{node}}" if pool else "{{node_pool}} · {{node}}"
    return [
        timeseries(
            "Load per CPU",
            "1-minute load average over the node's CPU count: above 1, runnable tasks wait for a CPU.",
            [Query(q.load_per_cpu(config.exporters, system, pool), node_legend)],
            Unit.FACTOR,
            thresholds=higher_is_worse(None, 1.0),
            show_thresholds=True,
            width=6,
        ),
        timeseries(
            "Disk busy",
            "Share of time each node's busiest disk was serving I/O: near 100 % the disk is saturated.",
            [Query(q.disk_io_time(config.exporters, system, pool), node_legend)],
            Unit.RATIO,
            max_value=1,
            width=6,
        ),
        timeseries(
            "Requested / allocatable",
            "CPU and memory requested by pods over what the nodes can allocate: at 100 % new pods stay Pending "
            "until the pool grows.",
            [
                Query(q.requests_committed(config.exporters, system, "cpu", pool, by_pool=True), "{{node_pool}} cpu"),
                Query(
                    q.requests_committed(config.exporters, system, "memory", pool, by_pool=True), "{{node_pool}} memory"
                ),
            ],
            Unit.RATIO,
            thresholds=higher_is_worse(None, 1.0),
            show_thresholds=True,
            width=6,
        ),
        timeseries(
            "Network errors",
            "Receive and transmit errors per second on the nodes' interfaces: should be zero.",
            [Query(q.network_errors(config.exporters, system, pool), "{{node_pool}}")],
            Unit.OPS,
            width=6,
        ),
    ]


def _node_health(system: System, pool: NodePool | None, config: DashboardConfig) -> list[Any]:
    """What the node alerts beyond USE read: clock offset, the kubelet's pressure conditions, inodes."""
    node_legend = "{{node}}" if pool else "{{node_pool}} · {{node}}"
    limits = config.exporters
    offset = float(limits.node_clock_offset_seconds)
    return [
        timeseries(
            "Clock offset",
            f"Each node's offset from its NTP reference (positive: ahead). Beyond ±{offset * 1000:g} ms tokens "
            "(JWT iat, nbf, exp) issued on one node and checked on another start to fail; NodeClockSkew warns.",
            [Query(q.clock_offset(limits, system, pool), node_legend)],
            Unit.SECONDS,
            panel_id=PanelId.POOL_CLOCK if pool else None,
            thresholds=higher_is_worse(None, offset),
            show_thresholds=True,
            min_value=None,
            width=8,
        ),
        timeseries(
            "Kubelet pressure",
            f"1 while the kubelet reports {', '.join(limits.node_pressure_conditions)} on a node: it is "
            "evicting pods and the scheduler places no new ones there.",
            [Query(q.node_pressure(limits, system, pool), node_legend + " {{condition}}")],
            Unit.COUNT,
            panel_id=PanelId.POOL_PRESSURE if pool else None,
            thresholds=higher_is_worse(None, 1),
            max_value=1,
            width=8,
        ),
        timeseries(
            "Inodes used",
            "Used share of the inodes of each node's fullest real filesystem: at 100 % no file can be created, "
            "whatever space is free.",
            [Query(q.inodes_used(limits, system, pool), node_legend)],
            Unit.RATIO,
            panel_id=PanelId.POOL_INODES if pool else None,
            thresholds=higher_is_worse(None, 1 - float(limits.node_inodes_warning_free)),
            show_thresholds=True,
            max_value=1,
            width=8,
        ),
    ]


def platform_claims(system: System, pool: NodePool | None) -> dict[str, list[str]]:
    """The claims of the platform workloads on `pool` (None: on no named pool), by namespace."""
    found: dict[str, list[str]] = {}
    for workload in system.platform.workloads:
        if workload.node_pool == (pool.name if pool else None):
            found.setdefault(workload.namespace, []).extend(workload.volumes)
    return {namespace: sorted(claims) for namespace, claims in sorted(found.items()) if claims}


def _volumes(claims: dict[str, list[str]], config: DashboardConfig, whose: str) -> list[Any]:
    """Space and inodes used of the claims (the panel their volume alerts open)."""
    names = ", ".join(claim for namespace_claims in claims.values() for claim in namespace_claims)
    return [
        timeseries(
            "Volume usage",
            f"Used share of the claims of the {whose} ({names}): a full volume stops writes.",
            [
                Query(q.volume_usage(config.exporters, namespace, namespace_claims), "{{persistentvolumeclaim}}")
                for namespace, namespace_claims in claims.items()
            ],
            Unit.RATIO,
            panel_id=PanelId.POOL_VOLUMES,
            thresholds=higher_is_worse(None, config.volume_usage_threshold),
            show_thresholds=True,
            max_value=1,
            width=12,
        ),
        timeseries(
            "Volume inodes used",
            f"Used share of the inodes of the same claims ({names}).",
            [
                Query(
                    q.volume_inodes_used(config.exporters, namespace, namespace_claims),
                    "{{persistentvolumeclaim}}",
                )
                for namespace, namespace_claims in claims.items()
            ],
            Unit.RATIO,
            thresholds=higher_is_worse(None, 1 - float(config.exporters.volume_inodes_warning_free)),
            show_thresholds=True,
            max_value=1,
            width=12,
        ),
    ]
