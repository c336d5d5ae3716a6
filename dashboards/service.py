"""One dashboard per service: RED, latency distribution, saturation against limits and replicas,
its SLOs, the queues it consumes, and links to its node pool, datastores and runbooks."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from obsbundle import naming
from obsbundle.dashboards import queries as q
from obsbundle.dashboards.alerts import AlertRow, alerts_panel
from obsbundle.dashboards.common import board_link, runbook_index, sibling_links, tags, variables
from obsbundle.dashboards.config import DashboardConfig
from obsbundle.dashboards.dependencies import dependencies_of, dependency_panels
from obsbundle.dashboards.panels import (
    GOOD_BELOW,
    Link,
    Query,
    Row,
    Step,
    Unit,
    dashboard,
    heatmap,
    higher_is_worse,
    link,
    lower_is_worse,
    stat,
    text,
    timeseries,
)
from obsbundle.dashboards.queues import queue_panels
from obsbundle.dashboards.variables import inventory_variable
from obsbundle.durations import parse_duration_ms
from obsbundle.links import Board, PanelId, dashboard_uid, dashboard_url
from obsbundle.model import Controller, DatastoreKind, Service, System, WorkloadKind
from obsbundle.slo_math import BURN_TIERS

QUANTILE_LEGEND = "P{{quantile}}"
LIMIT_LEGEND = "limit"


def service_dashboard(
    system: System, service: Service, config: DashboardConfig, alerts: Sequence[AlertRow] = ()
) -> dict[str, Any]:
    """The service's dashboard; `alerts` are the rules' alerts about it, listed with their runbooks."""
    rows: list[Row] = []
    if q.endpoint_metrics(service) is not None:
        rows.append(Row("Requests, errors, duration", red_panels(system, service, linked=True)))
        rows.append(Row("By endpoint", endpoint_panels(system, service)))
    if service.kind in (WorkloadKind.API, WorkloadKind.WORKER):
        rows.append(Row("Saturation", saturation_panels(service, config)))
    else:
        rows.append(Row("Runs", job_panels(service, config)))
    if service.slos:
        rows.append(Row("SLOs", slo_panels(system, service, config)))
    consumed = [queue for queue in system.queues if service.name in queue.consumers]
    if consumed:
        rows.append(Row("Queues consumed", queue_panels(system, consumed, config, linked=False)))
    used = dependencies_of(system, service)
    if used:
        rows.append(Row("External dependencies", dependency_panels(system, used, config.exporters)))
    rows.append(Row("Where it runs and what it uses", [_dependencies(system, service)]))
    if alerts:
        rows.append(Row("Alerts", [alerts_panel(alerts, service.name)]))
    kind = "API" if service.has_http_api else service.kind.value
    return dashboard(
        uid=dashboard_uid(system, Board.SERVICE, service.name),
        title=f"{system.name} / {service.name}",
        description=f"{kind} {service.name} in namespace {service.namespace}"
        + (f": {service.description}" if service.description else ""),
        tags=tags(system, service.name, "service"),
        rows=rows,
        variables=_variables(system, service, config),
        links=sibling_links(system, *_links(system, service)),
        config=config,
    )


def _variables(system: System, service: Service, config: DashboardConfig) -> list[dict[str, Any]]:
    """The common variables, and `slo` over the service's SLOs: an SLO alert's link opens its SLO alone."""
    found = variables(system, config)
    if service.slos:
        found.append(inventory_variable("slo", "SLO", (slo.name for slo in service.slos)))
        found.extend(q.slo_group_variables(system, service))
    return found


def seconds(duration: str) -> float:
    return parse_duration_ms(duration) / 1000


def _above(limit: Decimal | float | None) -> list[Step]:
    """Red above `limit` when there is one."""
    return higher_is_worse(None, float(limit)) if limit is not None else GOOD_BELOW


def _service_link(system: System, service: Service) -> list[Link]:
    return [Link(f"{service.name} dashboard", dashboard_url(system, Board.SERVICE, service.name))]


def red_panels(system: System, service: Service, *, linked: bool, width: int = 6) -> list[Any]:
    """Request rate, P50/P95/P99, 5xx ratio and 5xx rate of one API from the recorded series.

    `linked` gives them the PanelIds that alerts link to (only on the service's own dashboard);
    elsewhere each panel links to that dashboard instead.
    """
    latency = service.latency_alert
    ratio = service.error_rate_alert
    per_second = service.errors_per_second_alert
    panel_links = [] if linked else _service_link(system, service)
    return [
        timeseries(
            "Request rate",
            f"Requests per second served by {service.name} (all pods, recorded 5-minute rate).",
            [Query(q.request_rate(system, service), "requests/s")],
            Unit.REQUESTS_PER_SECOND,
            panel_id=PanelId.SERVICE_REQUEST_RATE if linked else None,
            width=width,
            links=panel_links,
        ),
        timeseries(
            "Latency P50 / P95 / P99",
            f"Request duration quantiles of {service.name} from its histogram"
            + (f"; the dashed line is the {latency} P95 alert threshold." if latency else "."),
            [Query(q.latency_quantiles(system, service), QUANTILE_LEGEND)],
            Unit.SECONDS,
            panel_id=PanelId.SERVICE_LATENCY if linked else None,
            thresholds=_above(seconds(latency) if latency else None),
            show_thresholds=latency is not None,
            width=width,
            links=panel_links,
        ),
        timeseries(
            "Error ratio (5xx)",
            f"Share of {naming.possessive(service.name)} requests answered with a server error"
            + (f"; the alert fires above {ratio:.1%}." if ratio is not None else "."),
            [Query(q.error_ratio(system, service), "5xx ratio")],
            Unit.RATIO,
            panel_id=PanelId.SERVICE_ERROR_RATIO if linked else None,
            thresholds=_above(ratio),
            show_thresholds=ratio is not None,
            width=width,
            links=panel_links,
        ),
        timeseries(
            "5xx rate",
            f"Server errors per second of {service.name}"
            + (f"; the alert fires above {per_second}/s." if per_second is not None else "."),
            [Query(q.error_rate(system, service), "5xx/s")],
            Unit.OPS,
            thresholds=_above(per_second),
            show_thresholds=per_second is not None,
            width=width,
            links=panel_links,
        ),
    ]


def endpoint_panels(system: System, service: Service) -> list[Any]:
    """Breakdowns the rules do not record: by method and endpoint, by status, the latency heatmap."""
    metrics = q.endpoint_metrics(service)
    assert metrics is not None, "only services with request metrics have endpoint panels"
    method, route, status = (f"{{{{{label}}}}}" for label in (metrics.method_label, metrics.route_label,
                                                                  metrics.status_label))
    return [
        timeseries(
            "Requests by method and endpoint",
            f"Requests per second by {metrics.method_label} and {metrics.route_label}.",
            [Query(q.requests_by_route(service, metrics), f"{method} {route}")],
            Unit.REQUESTS_PER_SECOND,
            stacked=True,
            width=8,
        ),
        timeseries(
            "P95 latency by endpoint",
            f"95th percentile request duration per {metrics.route_label}.",
            [Query(q.latency_by_route(service, metrics, 0.95), route)],
            Unit.SECONDS,
            width=8,
        ),
        timeseries(
            "Responses by status",
            f"Responses per second by {metrics.status_label}.",
            [Query(q.requests_by_status(service, metrics), status)],
            Unit.REQUESTS_PER_SECOND,
            stacked=True,
            width=8,
        ),
        timeseries(
            "5xx by endpoint",
            f"Server errors per second by {metrics.method_label}, {metrics.route_label} and {metrics.status_label}.",
            [Query(q.errors_by_route(service, metrics), f"{method} {route} {status}")],
            Unit.OPS,
            width=12,
        ),
        heatmap(
            "Latency distribution",
            "Requests per second in each latency bucket (upper bound `le`): a band moving up means slower requests.",
            Query(q.latency_buckets(system, service)),
            Unit.SECONDS,
            width=12,
        ),
    ]


def _limit(service: Service, resource: str) -> str | None:
    limits = service.resources.limits if service.resources else None
    return getattr(limits, resource) if limits else None


def saturation_panels(service: Service, config: DashboardConfig) -> list[Any]:
    """Targets up, CPU and memory per pod against limits, restarts, replicas, volumes."""
    panels = [
        stat(
            "Scrape targets up",
            f"Pods of {service.name} that Prometheus scrapes successfully, out of all its targets.",
            [Query(q.targets_up(service), "up"), Query(q.targets_total(service), "targets")],
            Unit.COUNT,
            panel_id=PanelId.SERVICE_TARGETS_UP,
            thresholds=lower_is_worse(1),
            width=4,
            height=8,
        )
    ]
    cpu_queries = [Query(q.cpu_by_pod(config.exporters, service), "{{pod}}")]
    if _limit(service, "cpu"):
        cpu_queries.append(Query(q.limit_per_pod(config.exporters, service, "cpu"), LIMIT_LEGEND))
    memory_queries = [Query(q.memory_by_pod(config.exporters, service), "{{pod}}")]
    if _limit(service, "memory"):
        memory_queries.append(Query(q.limit_per_pod(config.exporters, service, "memory"), LIMIT_LEGEND))
    panels += [
        timeseries(
            "CPU per pod",
            "CPU cores used by each pod" + ("; dashed: the pod's CPU limit (throttled above)." if len(cpu_queries) > 1
                                            else " (no CPU limit is set)."),
            cpu_queries,
            Unit.CORES,
            panel_id=PanelId.SERVICE_CPU,
            dashed=[LIMIT_LEGEND],
            width=10,
        ),
        timeseries(
            "Memory per pod",
            "Working set of each pod" + ("; dashed: the memory limit (OOM-killed above)." if len(memory_queries) > 1
                                         else " (no memory limit is set)."),
            memory_queries,
            Unit.BYTES,
            panel_id=PanelId.SERVICE_MEMORY,
            dashed=[LIMIT_LEGEND],
            width=10,
        ),
    ]
    if _limit(service, "memory"):
        panels.append(
            timeseries(
                "Memory / limit",
                f"Working set over memory limit per pod; the alert fires above {service.memory_limit_alert:.0%}.",
                [Query(q.memory_limit_ratio(config.exporters, service), "{{pod}}")],
                Unit.RATIO,
                thresholds=_above(service.memory_limit_alert),
                show_thresholds=True,
                width=8,
            )
        )
    panels.append(
        timeseries(
            "Restarts (15m)",
            "Container restarts per pod over the last 15 minutes: repeated restarts mean CrashLoopBackOff.",
            [Query(q.restarts_by_pod(config.exporters, service), "{{pod}}")],
            Unit.COUNT,
            panel_id=PanelId.SERVICE_RESTARTS,
            thresholds=_above(1),
            bars=True,
            width=8,
        )
    )
    panels.append(_containers(service, config))
    if _limit(service, "cpu"):
        panels.append(_cpu_throttling(service, config))
    panels.append(_replicas(service, config))
    if service.volumes:
        panels.append(_volumes(service, config))
    return panels


def _containers(service: Service, config: DashboardConfig) -> Any:
    """Containers waiting to start (other than crash looping) and OOM kills, as WorkloadContainerWaiting
    and WorkloadOomKilled see them."""
    labels = {naming.NAMESPACE_LABEL: service.namespace}
    pods = q.pod_matcher(service.name)
    waiting = q.ksm(
        config.exporters, "kube_pod_container_status_waiting_reason", labels, pods, 'reason!="CrashLoopBackOff"'
    )
    restarts = q.ksm(config.exporters, "kube_pod_container_status_restarts_total", labels, pods)
    oom = q.ksm(
        config.exporters, "kube_pod_container_status_last_terminated_reason", labels, pods, 'reason="OOMKilled"'
    )
    return timeseries(
        "Waiting and OOM-killed containers",
        "Containers waiting to start, by reason (ImagePullBackOff, CreateContainerConfigError, ContainerCreating…; "
        "an hour of it alerts), and restarts over 15 minutes whose last run was OOM-killed.",
        [
            Query(f"sum by (pod, reason) ({waiting})", "{{pod}}: {{reason}}"),
            Query(
                f"sum by (pod) (increase({restarts}[15m]) and on (namespace, pod, container) {oom} == 1)",
                "{{pod}}: OOM-killed",
            ),
        ],
        Unit.COUNT,
        panel_id=PanelId.SERVICE_CONTAINERS,
        thresholds=_above(1),
        bars=True,
        width=8,
    )


def _cpu_throttling(service: Service, config: DashboardConfig) -> Any:
    """Share of CFS periods throttled per container, against WorkloadCpuThrottlingHigh's threshold."""
    labels = {naming.NAMESPACE_LABEL: service.namespace}
    pods = q.pod_matcher(service.name)
    throttled = q.cadvisor(config.exporters, "container_cpu_cfs_throttled_periods_total", labels, pods, *q.CONTAINERS)
    periods = q.cadvisor(config.exporters, "container_cpu_cfs_periods_total", labels, pods, *q.CONTAINERS)
    by = "sum by (pod, container)"
    threshold = config.exporters.cpu_throttling
    return timeseries(
        "CPU throttling",
        f"Share of CPU periods in which the CFS quota (the CPU limit) paused each container; the alert fires "
        f"above {threshold:.0%} for {config.exporters.cpu_throttling_for}.",
        [Query(f"{by} ({q.rate(throttled)})\n/ {by} ({q.rate(periods)})", "{{pod}} {{container}}")],
        Unit.RATIO,
        panel_id=PanelId.SERVICE_CPU_THROTTLING,
        thresholds=_above(threshold),
        show_thresholds=True,
        width=8,
    )


def _replicas(service: Service, config: DashboardConfig) -> Any:
    autoscaling = service.autoscaling
    if autoscaling is not None:
        return timeseries(
            "Replicas (HPA)",
            f"Current and desired replicas of the HorizontalPodAutoscaler; dashed: its bounds "
            f"{autoscaling.min}–{autoscaling.max}. Current at max means it cannot scale out further.",
            [
                Query(q.hpa_replicas(config.exporters, service, "status_current_replicas"), "current"),
                Query(q.hpa_replicas(config.exporters, service, "status_desired_replicas"), "desired"),
                Query(q.hpa_replicas(config.exporters, service, "spec_min_replicas"), "min"),
                Query(q.hpa_replicas(config.exporters, service, "spec_max_replicas"), "max"),
            ],
            Unit.COUNT,
            panel_id=PanelId.SERVICE_REPLICAS,
            dashed=["min", "max"],
            width=8,
        )
    if service.workload_controller is Controller.ROLLOUT:
        # A Rollout has no kube_deployment_* series: the Rollouts controller counts its replicas.
        rollout = {naming.NAMESPACE_LABEL: service.namespace, "name": service.name}
        return timeseries(
            "Replicas (Argo Rollout)",
            f"Available replicas of Rollout {service.name}, stable and canary together, against the replicas it "
            "asks for, as the Argo Rollouts controller reports them.",
            [
                Query(f"max({q.sel('rollout_info_replicas_available', rollout)})", "available"),
                Query(f"max({q.sel('rollout_info_replicas_desired', rollout)})", "wanted"),
            ],
            Unit.COUNT,
            panel_id=PanelId.SERVICE_REPLICAS,
            dashed=["wanted"],
            width=8,
        )
    return timeseries(
        "Replicas",
        f"Available replicas of Deployment {service.name} against the replicas it asks for"
        + (f" ({service.replicas} in the inventory)." if service.replicas is not None else "."),
        [
            Query(q.deployment_replicas(config.exporters, service, "status_replicas_available"), "available"),
            Query(q.deployment_replicas(config.exporters, service, "spec_replicas"), "wanted"),
        ],
        Unit.COUNT,
        panel_id=PanelId.SERVICE_REPLICAS,
        dashed=["wanted"],
        width=8,
    )


def _volumes(service: Service, config: DashboardConfig) -> Any:
    return timeseries(
        "Volume usage",
        f"Used share of {', '.join(service.volumes)}: a full volume stops writes.",
        [Query(q.volume_usage(config.exporters, service.namespace, service.volumes), "{{persistentvolumeclaim}}")],
        Unit.RATIO,
        panel_id=PanelId.SERVICE_PVC_USAGE,
        thresholds=higher_is_worse(None, config.volume_usage_threshold),
        show_thresholds=True,
        max_value=1,
        width=8,
    )


def job_panels(service: Service, config: DashboardConfig) -> list[Any]:
    """Succeeded and failed runs; for a CronJob also time since its last success and to its next run."""
    panels = [
        timeseries(
            "Job runs",
            f"Pods of {naming.possessive(service.name)} Jobs that succeeded and failed, per Job"
            + (f" (a Job gives up after {service.backoff_limit} retries)." if service.backoff_limit is not None
               else "."),
            [
                Query(q.job_runs(config.exporters, service, "succeeded"), "{{job_name}} succeeded"),
                Query(q.job_runs(config.exporters, service, "failed"), "{{job_name}} failed"),
            ],
            Unit.COUNT,
            panel_id=PanelId.SERVICE_JOBS,
            width=12,
        )
    ]
    if service.kind is WorkloadKind.CRONJOB:
        panels += [
            stat(
                "Since last success",
                f"Time since {service.name} last completed successfully (schedule `{service.schedule}`).",
                [Query(q.cronjob_since_last_success(config.exporters, service))],
                Unit.SECONDS,
                graph=False,
                width=6,
                height=8,
            ),
            stat(
                "Next run in",
                f"Time until the next scheduled run of {service.name}.",
                [Query(q.cronjob_next_run(config.exporters, service))],
                Unit.SECONDS,
                graph=False,
                width=6,
                height=8,
            ),
        ]
    if service.volumes:
        panels.append(_volumes(service, config))
    return panels


def slo_panels(system: System, service: Service, config: DashboardConfig) -> list[Any]:
    """Budget remaining, burn rate over each alert's long window, and the SLI against its objective;
    a grouped SLO's series one per group, as its variables select."""
    legend = "{{slo}}" + q.group_legend(system.slo_group_labels(service))
    return [
        timeseries(
            "Error budget remaining",
            "Share of each SLO's error budget left over its window: 1 untouched, 0 spent, below 0 overspent.",
            [Query(q.slo_series(naming.SLO_ERROR_BUDGET_REMAINING, system, service, None, q.SLO_MATCHER), legend)],
            Unit.RATIO,
            panel_id=PanelId.SERVICE_SLO_BUDGET,
            thresholds=lower_is_worse(0, config.budget_warning),
            show_thresholds=True,
            min_value=None,
            width=8,
        ),
        timeseries(
            "Burn rate",
            "How fast each SLO spends its budget, over the long window of each alert tier: 1 spends exactly "
            "the budget in the SLO window; the page alerts fire at 14.4 (1h) and 6 (6h) for 30 days.",
            [
                Query(q.slo_series(naming.slo_burn_rate(tier.long_window), system, service, None, q.SLO_MATCHER),
                      f"{legend} {tier.long_window}")
                for tier in BURN_TIERS
            ],
            Unit.FACTOR,
            panel_id=PanelId.SERVICE_SLO_BURN_RATE,
            width=8,
        ),
        timeseries(
            "SLI (5m) against objective",
            "Share of good events over 5 minutes per SLO; dashed: the objective.",
            [
                Query(q.slo_good_ratio(system, service, "5m", q.SLO_MATCHER), legend),
                Query(
                    q.slo_series(naming.SLO_OBJECTIVE, system, service, None, q.SLO_MATCHER, grouped=False),
                    "{{slo}} objective",
                ),
            ],
            Unit.RATIO,
            dashed=[f"{slo.name} objective" for slo in service.slos],
            min_value=None,
            width=8,
        ),
    ]


def _links(system: System, service: Service) -> list[Any]:
    found = []
    if service.node_pool:
        found.append(board_link(system, f"Node pool {service.node_pool}", Board.NODE_POOL, service.node_pool))
    kinds = {system.datastore(name).kind for name in service.datastores}
    if kinds & {DatastoreKind.POSTGRES, DatastoreKind.REDIS, DatastoreKind.SQLITE}:
        found.append(board_link(system, "Database", Board.DATABASE))
    if kinds & {DatastoreKind.RABBITMQ, DatastoreKind.KAFKA}:
        found.append(board_link(system, "Queues", Board.QUEUES))
    if service.slos:
        found.append(board_link(system, "SLOs", Board.SLOS))
    found.append(link("Runbooks", runbook_index(system), icon="doc"))
    return found


def _dependencies(system: System, service: Service) -> Any:
    lines = [f"**{service.name}** ({service.kind.value}, namespace `{service.namespace}`)", ""]
    owner = system.owner_of(service)
    lines.append(f"- Owner: team `{owner.team}`, Slack {owner.slack_channel}")
    if service.node_pool:
        pool = system.node_pool(service.node_pool)
        url = dashboard_url(system, Board.NODE_POOL, pool.name)
        lines.append(f"- Node pool: [{pool.name}]({url})" + (f" ({pool.instance_type})" if pool.instance_type else ""))
    for name in service.datastores:
        store = system.datastore(name)
        board = Board.QUEUES if store.kind in (DatastoreKind.RABBITMQ, DatastoreKind.KAFKA) else Board.DATABASE
        lines.append(f"- Datastore: [{store.name}]({dashboard_url(system, board)}) ({store.kind.value})")
    for queue in system.queues:
        if service.name in queue.consumers:
            url = dashboard_url(system, Board.QUEUES)
            lines.append(f"- Consumes queue: [{queue.name}]({url}) ({queue.broker.value})")
    lines.append(f"- Runbooks: [{runbook_index(system)}]({runbook_index(system)})")
    return text(
        "Dependencies",
        "What this service runs on and uses, from the inventory, with links to their dashboards.",
        "\n".join(lines),
        width=24,
        height=3 + len(lines) // 2,
    )
