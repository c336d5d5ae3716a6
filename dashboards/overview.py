"""The system's overview (EcoEco's "Cluster Overview"): node state per pool, total resource use,
pod distribution, services at a glance and the alerts firing now; over many clusters
(`--ruler global`), first the system's clusters side by side."""

from __future__ import annotations

from typing import Any

from obsbundle import naming
from obsbundle.dashboards import queries as q
from obsbundle.dashboards.common import api_services, sibling_links, tags, variables
from obsbundle.dashboards.config import DashboardConfig
from obsbundle.dashboards.panels import (
    Query,
    Row,
    Unit,
    bar_gauge,
    dashboard,
    higher_is_worse,
    lower_is_worse,
    series_thresholds,
    stat,
    state_timeline,
    steps,
    table,
    timeseries,
)
from obsbundle.links import Board, PanelId, dashboard_uid
from obsbundle.model import System
from obsbundle.promql_clusters import CLUSTER
from obsbundle.settings import Ruler


def overview(system: System, config: DashboardConfig, ruler: Ruler) -> dict[str, Any]:
    namespaces = {service.namespace for service in system.services} | {s.namespace for s in system.datastores}
    rows = [_clusters(system)] if ruler is Ruler.GLOBAL else []
    rows += [_nodes(system, config), _resources(system, config), _pods(system, config)]
    if api_services(system):
        rows.append(_services(system))
    rows.append(_alerts(system))
    return dashboard(
        uid=dashboard_uid(system, Board.OVERVIEW),
        title=f"{system.name} / Cluster overview",
        description=f"{system.description or system.name}: nodes, resources, pods, services and firing alerts",
        tags=tags(system, "overview"),
        rows=rows,
        variables=variables(system, config, namespaces),
        links=sibling_links(system),
        config=config,
    )


def pool_bars(system: System) -> dict[str, dict[str, Any]]:
    """Each pool's bar runs to its max_nodes and turns red below its min_nodes."""
    return {
        pool.name: {
            "max": pool.max_nodes,
            "thresholds": series_thresholds(lower_is_worse(pool.min_nodes) if pool.min_nodes else steps("green")),
        }
        for pool in system.node_pools
    }


def _clusters(system: System) -> Row:
    """One line per chosen cluster with the key stats of the system there, so that a cluster that
    differs from its siblings (the one failing, the one out of budget) stands out."""
    by_cluster = f"by ({CLUSTER})"
    queries: list[Query] = []
    columns: dict[str, str] = {}
    units: dict[str, str] = {}
    if api_services(system):
        queries += [
            Query(f"sum {by_cluster} ({q.sel(naming.SERVICE_REQUESTS_RATE, q.recorded_system_labels(system))})"),
            Query(f"max {by_cluster} ({q.sel(naming.SERVICE_ERROR_RATIO, q.recorded_system_labels(system))})"),
        ]
        columns |= {"Value #A": "Requests/s", "Value #B": "Worst error ratio"}
        units |= {"Requests/s": Unit.REQUESTS_PER_SECOND, "Worst error ratio": Unit.RATIO}
    if q.slo_ids(system):
        budget = q.sel(naming.SLO_ERROR_BUDGET_REMAINING, q.recorded_system_labels(system))
        columns[f"Value #{chr(ord('A') + len(queries))}"] = "Least SLO budget left"
        units["Least SLO budget left"] = Unit.RATIO
        queries.append(Query(f"min {by_cluster} ({budget})"))
    # Watchdog (severity none) fires in every cluster whose rules run: 0 where it alone fires, and
    # no number at all where even it is missing, which is how a cluster whose pipeline broke shows.
    firing = q.firing_alerts_by(system, [CLUSTER], 'severity!="none"')
    columns[f"Value #{chr(ord('A') + len(queries))}"] = "Firing alerts"
    queries.append(Query(f"{firing} or 0 * {q.firing_alerts_by(system, [CLUSTER])}"))
    return Row(
        "Clusters side by side",
        [
            table(
                "Clusters",
                "Each chosen cluster's total request rate, its worst API's share of 5xx responses, its least "
                "SLO error budget left and its alerts firing now (Watchdog aside).",
                queries,
                Unit.COUNT,
                columns={**columns, CLUSTER: "Cluster"},
                units=units,
                width=24,
            ),
        ],
    )


def _nodes(system: System, config: DashboardConfig) -> Row:
    expected = sum(pool.min_nodes for pool in system.node_pools)
    return Row(
        "Nodes",
        [
            stat(
                "Nodes ready",
                f"Nodes of the system's pools whose Ready condition is true. At least {expected} "
                "(the pools' min_nodes added up) should be.",
                [Query(f"sum({q.node_ready(config.exporters, system)})")],
                Unit.COUNT,
                thresholds=lower_is_worse(expected) if expected else steps("green"),
                width=4,
                height=8,
            ),
            bar_gauge(
                "Ready nodes per pool",
                "Ready nodes of each node pool; each bar is as long as the pool's max_nodes and turns "
                "red below its min_nodes.",
                [Query(q.recorded_pool(naming.POOL_NODES_READY, system), "{{node_pool}}")],
                Unit.COUNT,
                panel_id=PanelId.OVERVIEW_NODES,
                per_series=pool_bars(system),
                width=8,
                height=8,
            ),
            state_timeline(
                "Node state",
                "Ready condition of every node over time, labelled pool · node: green Ready, red NotReady.",
                [Query(q.node_ready(config.exporters, system), "{{node_pool}} · {{node}}")],
                Unit.COUNT,
                thresholds=lower_is_worse(1),
                states={0: "NotReady", 1: "Ready"},
                width=12,
                height=8,
            ),
        ],
    )


def _resources(system: System, config: DashboardConfig) -> Row:
    return Row(
        "Total resource use",
        [
            stat(
                "CPU utilisation",
                "Mean CPU utilisation of the system's nodes (non-idle time over all cores).",
                [Query(q.system_average(naming.NODE_CPU_UTILISATION, system))],
                Unit.RATIO,
                thresholds=higher_is_worse(config.node_cpu_threshold * 0.8, config.node_cpu_threshold),
            ),
            stat(
                "Memory utilisation",
                "Mean memory utilisation of the system's nodes (1 − available / total).",
                [Query(q.system_average(naming.NODE_MEMORY_UTILISATION, system))],
                Unit.RATIO,
                thresholds=higher_is_worse(config.node_memory_threshold * 0.8, config.node_memory_threshold),
            ),
            stat(
                "CPU requested",
                "CPU requested by pods over the nodes' allocatable CPU: above 100 % new pods stay Pending.",
                [Query(q.requests_committed(config.exporters, system, "cpu"))],
                Unit.RATIO,
                thresholds=higher_is_worse(0.8, 1.0),
            ),
            stat(
                "Memory requested",
                "Memory requested by pods over the nodes' allocatable memory: above 100 % new pods stay Pending.",
                [Query(q.requests_committed(config.exporters, system, "memory"))],
                Unit.RATIO,
                thresholds=higher_is_worse(0.8, 1.0),
            ),
            timeseries(
                "CPU utilisation per pool",
                "Mean CPU utilisation of each node pool's nodes.",
                [Query(q.recorded_pool(naming.POOL_CPU_UTILISATION, system), "{{node_pool}}")],
                Unit.RATIO,
                thresholds=higher_is_worse(None, config.node_cpu_threshold),
                show_thresholds=True,
                max_value=1,
            ),
            timeseries(
                "Memory utilisation per pool",
                "Mean memory utilisation of each node pool's nodes.",
                [Query(q.recorded_pool(naming.POOL_MEMORY_UTILISATION, system), "{{node_pool}}")],
                Unit.RATIO,
                thresholds=higher_is_worse(None, config.node_memory_threshold),
                show_thresholds=True,
                max_value=1,
            ),
        ],
    )


def _pods(system: System, config: DashboardConfig) -> Row:
    return Row(
        "Pod distribution",
        [
            timeseries(
                "Pods per node pool",
                "Pods scheduled on each pool's nodes, whatever their namespace (DaemonSets included).",
                [Query(q.pods_per_pool(config.exporters, system), "{{node_pool}}")],
                Unit.COUNT,
                stacked=True,
                width=8,
            ),
            timeseries(
                "Pods by phase",
                "Pods of the chosen namespaces by phase: Pending or Failed pods need a look.",
                [Query(q.pods_by_phase(config.exporters), "{{phase}}")],
                Unit.COUNT,
                stacked=True,
                width=8,
            ),
            table(
                "Most restarted pods (1h)",
                "The ten pods of the chosen namespaces whose containers restarted most in the last hour.",
                [Query(q.restarts_by_namespace_pod(config.exporters))],
                Unit.COUNT,
                columns={"Value": "Restarts"},
                thresholds=higher_is_worse(1, 3),
                colour_cells=True,
                width=8,
            ),
        ],
    )


def _services(system: System) -> Row:
    return Row(
        "Services",
        [
            table(
                "Services at a glance",
                "Request rate, share of 5xx responses and P95 latency of every API in the chosen namespaces, "
                "from the recorded 5-minute rates.",
                [
                    Query(q.system_request_rates(system)),
                    Query(q.system_error_ratios(system)),
                    Query(q.system_latency(system, "0.95")),
                ],
                Unit.COUNT,
                columns={"Value #A": "Requests/s", "Value #B": "Error ratio", "Value #C": "P95 latency"},
                units={"Requests/s": Unit.REQUESTS_PER_SECOND, "Error ratio": Unit.RATIO, "P95 latency": Unit.SECONDS},
                width=24,
            ),
        ],
    )


def _alerts(system: System) -> Row:
    return Row(
        "Firing alerts",
        [
            stat(
                "Firing alerts by severity",
                "Alerts of this system firing now, by severity (Watchdog, severity none, always fires).",
                [Query(q.firing_alerts_by(system, ["severity"]), "{{severity}}", instant=True)],
                Unit.COUNT,
                graph=False,
                width=6,
                height=8,
            ),
            table(
                "Firing alerts",
                "Every alert of this system firing now, with what it concerns.",
                [Query(q.firing_alerts_by(system, ["alertname", "severity", "service", "node_pool"]))],
                Unit.COUNT,
                panel_id=PanelId.OVERVIEW_ALERTS,
                columns={"Value": "Series", "alertname": "Alert", "node_pool": "Node pool"},
                width=18,
                height=8,
            ),
        ],
    )
