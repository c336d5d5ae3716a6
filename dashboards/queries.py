"""PromQL of every dashboard panel, as small named functions of the inventory model.

Recorded series (names from `obsbundle.naming`) wherever the rules record one, so that a panel
shows exactly what an alert evaluates; raw series for breakdowns the rules do not record (by
endpoint, by pod, per database). Every inventory value enters a query through
`obsbundle.promql`; every selector carries `cluster=~"$cluster"`, and rates use
`$__rate_interval` so that Grafana picks a window of at least four scrapes. Queries of the standard
exporters take the rules' section of the configuration (`exporters`): its job selectors, so that a
panel reads the series its alert reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from obsbundle import naming
from obsbundle.dashboards.variables import group_variable
from obsbundle.model import Datastore, Instrumentation, NodePool, Queue, Service, Slo, System
from obsbundle.promql import any_of, quote, selector
from obsbundle.rules.alert_labels import recorded_service_labels
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.sli import REQUEST_METRICS, target_labels

CLUSTER_MATCHER = 'cluster=~"$cluster"'
NAMESPACE_MATCHER = 'namespace=~"$namespace"'
RATE_INTERVAL = "$__rate_interval"
CONTAINERS = ('container!=""', 'container!="POD"')
"""cAdvisor also reports the pod's cgroup (container="") and its pause container (POD)."""


def sel(metric: str, labels: Mapping[str, str] | None = None, *raw: str) -> str:
    """`metric{labels…, cluster=~"$cluster", raw…}`: the one way panels select series."""
    return selector(metric, labels or {}, CLUSTER_MATCHER, *raw)


def ksm(exporters: RuleConfig, metric: str, labels: Mapping[str, str] | None = None, *raw: str) -> str:
    """A kube-state-metrics series."""
    return sel(metric, {**exporters.kube_state_metrics, **(labels or {})}, *raw)


def node_exporter(exporters: RuleConfig, metric: str, *raw: str) -> str:
    return sel(metric, exporters.node_exporter, *raw)


def cadvisor(exporters: RuleConfig, metric: str, labels: Mapping[str, str], *raw: str) -> str:
    return sel(metric, {**exporters.cadvisor, **labels}, *raw)


def kubelet(exporters: RuleConfig, metric: str, labels: Mapping[str, str], *raw: str) -> str:
    return sel(metric, {**exporters.kubelet, **labels}, *raw)


def rate(series: str) -> str:
    return f"rate({series}[{RATE_INTERVAL}])"


def recorded_system_labels(system: System) -> dict[str, str]:
    """Labels that keep recorded series to one system (a service's add namespace and service:
    `recorded_service_labels`)."""
    return {naming.SYSTEM_LABEL: system.name}


def pod_matcher(workload: str) -> str:
    """`pod=~…` for the pods of a Deployment, Job or CronJob named `workload`.

    Deployments name pods `<name>-<replicaset hash>-<suffix>`, Jobs `<name>-<suffix>` and CronJobs
    `<name>-<schedule time>-<suffix>`; the pattern takes one or two generated parts.
    """
    return f"pod=~{quote(re.escape(workload) + '-[a-z0-9]+(-[a-z0-9]+)?')}"


# --- RED from recorded series -----------------------------------------------------------------


def request_rate(system: System, service: Service) -> str:
    return f"sum({sel(naming.SERVICE_REQUESTS_RATE, recorded_service_labels(system, service))})"


def error_rate(system: System, service: Service) -> str:
    return f"sum({sel(naming.SERVICE_ERRORS_RATE, recorded_service_labels(system, service))})"


def error_ratio(system: System, service: Service) -> str:
    return f"max({sel(naming.SERVICE_ERROR_RATIO, recorded_service_labels(system, service))})"


def latency_quantiles(system: System, service: Service) -> str:
    """P50, P95 and P99 of one service, one series per `quantile` label."""
    recorded = sel(naming.SERVICE_LATENCY_QUANTILE, recorded_service_labels(system, service))
    return f"max by (quantile) ({recorded})"


def latency_buckets(system: System, service: Service) -> str:
    """Requests per second in each latency bucket (`le`), for a heatmap."""
    recorded = sel(naming.SERVICE_DURATION_BUCKETS_RATE, recorded_service_labels(system, service))
    return f"sum by (le) ({recorded})"


def system_request_rates(system: System) -> str:
    """Request rate of every service of the system in the chosen namespaces."""
    recorded = sel(naming.SERVICE_REQUESTS_RATE, recorded_system_labels(system), NAMESPACE_MATCHER)
    return f"sum by (service) ({recorded})"


def system_error_ratios(system: System) -> str:
    recorded = sel(naming.SERVICE_ERROR_RATIO, recorded_system_labels(system), NAMESPACE_MATCHER)
    return f"max by (service) ({recorded})"


def system_latency(system: System, quantile: str) -> str:
    quantile_matcher = f"quantile={quote(quantile)}"
    recorded = sel(naming.SERVICE_LATENCY_QUANTILE, recorded_system_labels(system), NAMESPACE_MATCHER, quantile_matcher)
    return f"max by (service) ({recorded})"


# --- RED from raw series, by endpoint -------------------------------------------------------------


@dataclass(frozen=True)
class EndpointMetrics:
    """Where a client library puts request counts and latencies, and which labels break them down
    by endpoint.

    Metric names and the server-error matcher are the rules' (`obsbundle.rules.sli`), so a panel
    counts errors exactly as the alerts and SLOs do; the breakdown labels are the dashboards' own.
    """

    requests: str
    """Counter of handled requests."""
    buckets: str
    """Latency histogram buckets, in seconds."""
    bucket_labels: Mapping[str, str]
    """Matchers the histogram needs (gRPC: unary calls only, a stream's duration is its lifetime)."""
    errors: str
    """Matcher of server errors."""
    status_label: str
    method_label: str
    route_label: str


# (status, method, route) labels: prometheus-client as FastAPI services use it,
# prometheus-fastapi-instrumentator, Micrometer's http.server.requests, go-grpc-prometheus, and
# grpc-spring, whose gRPC `service` tag arrives as `exported_service` (the target's `service` wins).
_BREAKDOWN: dict[Instrumentation, tuple[str, str, str]] = {
    Instrumentation.PROMETHEUS_CLIENT: ("status", "method", "handler"),
    Instrumentation.FASTAPI_INSTRUMENTATOR: ("status", "method", "handler"),
    Instrumentation.MICROMETER: ("status", "method", "uri"),
    Instrumentation.GRPC: ("grpc_code", "grpc_method", "grpc_service"),
    Instrumentation.GRPC_SPRING: ("statusCode", "method", "exported_service"),
}

ENDPOINT_METRICS: dict[Instrumentation, EndpointMetrics] = {
    instrumentation: EndpointMetrics(
        metrics.requests, f"{metrics.duration}_bucket", metrics.duration_labels, metrics.error_matcher,
        *_BREAKDOWN[instrumentation],
    )
    for instrumentation, metrics in REQUEST_METRICS.items()
}


def endpoint_metrics(service: Service) -> EndpointMetrics | None:
    """The raw request metrics of a service, or None when its instrumentation is custom."""
    if service.metrics is None or not service.has_http_api:
        return None
    return ENDPOINT_METRICS.get(service.metrics.instrumentation)


def requests_by_route(service: Service, metrics: EndpointMetrics) -> str:
    counter = sel(metrics.requests, target_labels(service))
    return f"sum by ({metrics.method_label}, {metrics.route_label}) ({rate(counter)})"


def errors_by_route(service: Service, metrics: EndpointMetrics) -> str:
    counter = sel(metrics.requests, target_labels(service), metrics.errors)
    return f"sum by ({metrics.method_label}, {metrics.route_label}, {metrics.status_label}) ({rate(counter)})"


def requests_by_status(service: Service, metrics: EndpointMetrics) -> str:
    counter = sel(metrics.requests, target_labels(service))
    return f"sum by ({metrics.status_label}) ({rate(counter)})"


def latency_by_route(service: Service, metrics: EndpointMetrics, quantile: float) -> str:
    buckets = sel(metrics.buckets, {**target_labels(service), **metrics.bucket_labels})
    return f"histogram_quantile({quantile}, sum by (le, {metrics.route_label}) ({rate(buckets)}))"


# --- workload saturation --------------------------------------------------------------------------


def _pods(service: Service, *raw: str) -> tuple[dict[str, str], tuple[str, ...]]:
    return {naming.NAMESPACE_LABEL: service.namespace}, (pod_matcher(service.name), *raw)


def cpu_by_pod(exporters: RuleConfig, service: Service) -> str:
    labels, raw = _pods(service, *CONTAINERS)
    return f"sum by (pod) ({rate(cadvisor(exporters, 'container_cpu_usage_seconds_total', labels, *raw))})"


def memory_by_pod(exporters: RuleConfig, service: Service) -> str:
    labels, raw = _pods(service, *CONTAINERS)
    return f"sum by (pod) ({cadvisor(exporters, 'container_memory_working_set_bytes', labels, *raw)})"


def limit_per_pod(exporters: RuleConfig, service: Service, resource: str) -> str:
    """The largest pod's limit of `resource` (cpu in cores, memory in bytes), summed over containers."""
    labels, raw = _pods(service, f"resource={quote(resource)}")
    return f"max(sum by (pod) ({ksm(exporters, 'kube_pod_container_resource_limits', labels, *raw)}))"


def memory_limit_ratio(exporters: RuleConfig, service: Service) -> str:
    """Working set over memory limit, per pod: what LogPilotHighMemoryUsage-style alerts compare."""
    labels, raw = _pods(service, *CONTAINERS)
    _, limit_raw = _pods(service, 'resource="memory"')
    usage = f"sum by (pod) ({cadvisor(exporters, 'container_memory_working_set_bytes', labels, *raw)})"
    limit = f"sum by (pod) ({ksm(exporters, 'kube_pod_container_resource_limits', labels, *limit_raw)})"
    return f"{usage} / {limit}"


def restarts_by_pod(exporters: RuleConfig, service: Service, window: str = "15m") -> str:
    labels, raw = _pods(service)
    restarts = ksm(exporters, "kube_pod_container_status_restarts_total", labels, *raw)
    return f"sum by (pod) (increase({restarts}[{window}]))"


def targets_up(service: Service) -> str:
    return f"sum({sel('up', target_labels(service))})"


def targets_total(service: Service) -> str:
    return f"count({sel('up', target_labels(service))})"


def hpa_name_matcher(service: Service) -> str:
    """The HPA's name: the inventory's, else `<service>` or `<service>-hpa`."""
    autoscaling = service.autoscaling
    assert autoscaling is not None
    if autoscaling.hpa_name:
        return f"horizontalpodautoscaler={quote(autoscaling.hpa_name)}"
    return f"horizontalpodautoscaler=~{any_of([service.name, service.name + '-hpa'])}"


def hpa_replicas(exporters: RuleConfig, service: Service, metric: str) -> str:
    """An HPA series (`status_current_replicas`, `spec_min_replicas`, …) of the service's HPA."""
    series = ksm(exporters, f"kube_horizontalpodautoscaler_{metric}", {naming.NAMESPACE_LABEL: service.namespace},
                 hpa_name_matcher(service))
    return f"max({series})"


def deployment_replicas(exporters: RuleConfig, service: Service, metric: str) -> str:
    """A Deployment series (`status_replicas_available`, `spec_replicas`) of the service."""
    labels = {naming.NAMESPACE_LABEL: service.namespace, "deployment": service.name}
    return f"max({ksm(exporters, f'kube_deployment_{metric}', labels)})"


def volume_usage(exporters: RuleConfig, namespace: str, claims: Sequence[str]) -> str:
    """Used share of each PersistentVolumeClaim, by namespace and claim."""
    labels = {naming.NAMESPACE_LABEL: namespace}
    matcher = f"persistentvolumeclaim=~{any_of(claims)}"
    used = kubelet(exporters, "kubelet_volume_stats_used_bytes", labels, matcher)
    capacity = kubelet(exporters, "kubelet_volume_stats_capacity_bytes", labels, matcher)
    return f"max by (namespace, persistentvolumeclaim) ({used} / {capacity})"


def job_runs(exporters: RuleConfig, service: Service, outcome: str) -> str:
    """Pods of the service's Jobs that ended in `outcome` (succeeded or failed), per Job."""
    labels = {naming.NAMESPACE_LABEL: service.namespace}
    job = f"job_name=~{quote(re.escape(service.name) + '(-[a-z0-9]+)?')}"
    return f"sum by (job_name) ({ksm(exporters, f'kube_job_status_{outcome}', labels, job)})"


def cronjob_since_last_success(exporters: RuleConfig, service: Service) -> str:
    labels = {naming.NAMESPACE_LABEL: service.namespace, "cronjob": service.name}
    return f"time() - max({ksm(exporters, 'kube_cronjob_status_last_successful_time', labels)})"


def cronjob_next_run(exporters: RuleConfig, service: Service) -> str:
    labels = {naming.NAMESPACE_LABEL: service.namespace, "cronjob": service.name}
    return f"max({ksm(exporters, 'kube_cronjob_next_schedule_time', labels)}) - time()"


# --- pods across the system ----------------------------------------------------------------------


def pods_by_phase(exporters: RuleConfig) -> str:
    return f"sum by (phase) ({ksm(exporters, 'kube_pod_status_phase', None, NAMESPACE_MATCHER)})"


def restarts_by_namespace_pod(exporters: RuleConfig, window: str = "1h") -> str:
    counter = ksm(exporters, "kube_pod_container_status_restarts_total", None, NAMESPACE_MATCHER)
    return f"topk(10, sum by (namespace, pod) (increase({counter}[{window}])))"


# --- nodes and node pools -------------------------------------------------------------------------


def pool_labels(system: System, pool: NodePool | None = None) -> dict[str, str]:
    labels = recorded_system_labels(system)
    if pool is not None:
        labels[naming.NODE_POOL_LABEL] = pool.name
    return labels


def pool_series(metric: str, system: System, pool: NodePool | None = None) -> str:
    """A recorded node or pool series of one pool, or of every pool the inventory names.

    Without a pool, the series is still kept to the inventory's pools: on a cluster shared with
    other teams, nodes of pools the system does not own may carry the same node label.
    """
    if pool is not None:
        return sel(metric, pool_labels(system, pool))
    names = [known.name for known in system.node_pools]
    return sel(metric, recorded_system_labels(system), f"{naming.NODE_POOL_LABEL}=~{any_of(names)}")


def membership(system: System, pool: NodePool | None = None) -> str:
    """The recorded node → pool series of the system's pools (or of one pool)."""
    return pool_series(naming.NODE_POOL_MEMBERSHIP, system, pool)


def on_pool_nodes(expr: str, system: System, pool: NodePool | None = None) -> str:
    """A kube-state-metrics expression with a `node` label, kept to the pool's nodes, labelled by pool."""
    return f"{expr} * on (node) group_left (node_pool) {membership(system, pool)}"


def exporter_pods(system: System, pool: NodePool | None = None) -> str:
    """The recorded node-exporter pod → node and pool series of the system's pools (or of one pool)."""
    return pool_series(naming.NODE_EXPORTER_PODS, system, pool)


def on_pool_exporters(per_pod: str, system: System, pool: NodePool | None = None) -> str:
    """A node-exporter expression by (namespace, pod, …) kept to the pool's nodes, with node and pool.

    node-exporter's `instance` is never read: kube-prometheus-stack leaves it at `<host IP>:9100`,
    kube-prometheus relabels it to the node's name. The pod leads to the node under both.
    """
    return f"({per_pod}) * on (namespace, pod) group_left (node, node_pool) {exporter_pods(system, pool)}"


def recorded_pool(metric: str, system: System, pool: NodePool | None = None) -> str:
    """A recorded per-pool series (labels system, node_pool), by pool."""
    return f"max by (node_pool) ({pool_series(metric, system, pool)})"


def recorded_nodes(metric: str, system: System, pool: NodePool | None = None) -> str:
    """A recorded per-node series (labels system, node, node_pool), by node."""
    return f"max by (node, node_pool) ({pool_series(metric, system, pool)})"


def system_average(metric: str, system: System) -> str:
    """The mean of a recorded per-node ratio over every node of the system's pools."""
    return f"avg({pool_series(metric, system)})"


def node_ready(exporters: RuleConfig, system: System, pool: NodePool | None = None) -> str:
    condition = ksm(exporters, "kube_node_status_condition", None, 'condition="Ready"', 'status="true"')
    return f"max by (node, node_pool) ({on_pool_nodes(condition, system, pool)})"


def pods_per_pool(exporters: RuleConfig, system: System) -> str:
    return f"count by (node_pool) ({on_pool_nodes(ksm(exporters, 'kube_pod_info'), system)})"


def pods_per_node(exporters: RuleConfig, system: System, pool: NodePool) -> str:
    return f"count by (node) ({on_pool_nodes(ksm(exporters, 'kube_pod_info'), system, pool)})"


def requests_committed(
    exporters: RuleConfig, system: System, resource: str, pool: NodePool | None = None, *, by_pool: bool = False
) -> str:
    """Share of allocatable `resource` (cpu, memory) that pods on the nodes have requested.

    Over the whole system, or per pool when `by_pool` or when one `pool` is given.
    """
    resource_matcher = f"resource={quote(resource)}"
    requested = ksm(exporters, "kube_pod_container_resource_requests", None, resource_matcher)
    requests = on_pool_nodes(requested, system, pool)
    allocatable = on_pool_nodes(ksm(exporters, "kube_node_status_allocatable", None, resource_matcher), system, pool)
    if pool is None and not by_pool:
        return f"sum({requests}) / sum({allocatable})"
    return f"sum by (node_pool) ({requests}) / sum by (node_pool) ({allocatable})"


def load_per_cpu(exporters: RuleConfig, system: System, pool: NodePool | None = None) -> str:
    """1-minute load average over CPU count, per node: above 1 means runnable tasks queue.

    The CPU count is kube-state-metrics' capacity, not a count of node_cpu_seconds_total series.
    """
    load = on_pool_exporters(node_exporter(exporters, "node_load1"), system, pool)
    capacity = ksm(exporters, "kube_node_status_capacity", None, 'resource="cpu"')
    return f"max by (node, node_pool) ({load}) / on (node) max by (node) ({capacity})"


def disk_io_time(exporters: RuleConfig, system: System, pool: NodePool | None = None) -> str:
    """Share of time the busiest disk of each node was busy."""
    busy = f"max by (namespace, pod) ({rate(node_exporter(exporters, 'node_disk_io_time_seconds_total'))})"
    return f"max by (node, node_pool) ({on_pool_exporters(busy, system, pool)})"


def network_errors(exporters: RuleConfig, system: System, pool: NodePool | None = None) -> str:
    received = rate(node_exporter(exporters, "node_network_receive_errs_total", exporters.physical_devices))
    sent = rate(node_exporter(exporters, "node_network_transmit_errs_total", exporters.physical_devices))
    errors = f"sum by (namespace, pod) ({received} + {sent})"
    return f"sum by (node_pool) ({on_pool_exporters(errors, system, pool)})"


def clock_offset(exporters: RuleConfig, system: System, pool: NodePool | None = None) -> str:
    """Each node's offset from its NTP reference, in seconds (signed: ahead is positive)."""
    offset = node_exporter(exporters, "node_timex_offset_seconds")
    return f"max by (node, node_pool) ({on_pool_exporters(offset, system, pool)})"


def node_pressure(exporters: RuleConfig, system: System, pool: NodePool | None = None) -> str:
    """1 while the kubelet reports a pressure condition, per node and condition (0 otherwise)."""
    conditions = ksm(
        exporters,
        "kube_node_status_condition",
        None,
        f"condition=~{any_of(exporters.node_pressure_conditions)}",
        'status="true"',
    )
    return f"max by (node, node_pool, condition) ({on_pool_nodes(conditions, system, pool)})"


def inodes_used(exporters: RuleConfig, system: System, pool: NodePool | None = None) -> str:
    """Used share of the inodes of each node's fullest real filesystem."""
    free = node_exporter(exporters, "node_filesystem_files_free", exporters.real_filesystems)
    total = node_exporter(exporters, "node_filesystem_files", exporters.real_filesystems)
    per_pod = f"max by (namespace, pod) (1 - {free} / {total})"
    return f"max by (node, node_pool) ({on_pool_exporters(per_pod, system, pool)})"


def volume_inodes_used(exporters: RuleConfig, namespace: str, claims: Sequence[str]) -> str:
    """Used share of each PersistentVolumeClaim's inodes, by namespace and claim."""
    labels = {naming.NAMESPACE_LABEL: namespace}
    matcher = f"persistentvolumeclaim=~{any_of(claims)}"
    used = kubelet(exporters, "kubelet_volume_stats_inodes_used", labels, matcher)
    total = kubelet(exporters, "kubelet_volume_stats_inodes", labels, matcher)
    return f"max by (namespace, persistentvolumeclaim) ({used} / {total})"


# --- datastores -----------------------------------------------------------------------------------


def sources(stores: Iterable[Datastore]) -> str:
    """`source=~…` for the exporter sources of these datastores."""
    return f"source=~{any_of(store.source for store in stores)}"


def exporter_up(stores: Sequence[Datastore]) -> str:
    return f"max by (source) ({sel('poolq_up', None, sources(stores))})"


def pg_connections_ratio(stores: Sequence[Datastore]) -> str:
    """Connections in use over those available to clients (max_connections − reserved), per source."""
    matcher = sources(stores)
    used = f"sum by (source) ({sel('poolq_pg_connections', None, matcher)})"
    available = (
        f"(max by (source) ({sel('poolq_pg_max_connections', None, matcher)})"
        f" - max by (source) ({sel('poolq_pg_reserved_connections', None, matcher)}))"
    )
    return f"{used} / {available}"


def pg_connections_by_state(store: Datastore) -> str:
    return f"sum by (state) ({sel('poolq_pg_connections', {'source': store.source})})"


def pg_max_connections(store: Datastore) -> str:
    return f"max({sel('poolq_pg_max_connections', {'source': store.source})})"


def pg_waiting(stores: Sequence[Datastore]) -> str:
    return f"sum by (source) ({sel('poolq_pg_waiting_connections', None, sources(stores))})"


def pg_oldest_transaction(stores: Sequence[Datastore]) -> str:
    return f"max by (source) ({sel('poolq_pg_oldest_transaction_seconds', None, sources(stores))})"


def pg_longest_query(stores: Sequence[Datastore]) -> str:
    return f"max by (source, datname) ({sel('poolq_pg_longest_query_seconds', None, sources(stores))})"


def pg_cache_hit_ratio(stores: Sequence[Datastore]) -> str:
    """Share of block reads served from shared buffers, per source."""
    matcher = sources(stores)
    hits = f"sum by (source) ({rate(sel('poolq_pg_blocks_hit_total', None, matcher))})"
    reads = f"sum by (source) ({rate(sel('poolq_pg_blocks_read_total', None, matcher))})"
    return f"{hits} / ({hits} + {reads})"


def pg_mean_query_duration(stores: Sequence[Datastore]) -> str:
    """Mean statement duration from pg_stat_statements, per source."""
    matcher = sources(stores)
    seconds = f"sum by (source) ({rate(sel('poolq_pg_statements_seconds_total', None, matcher))})"
    calls = f"sum by (source) ({rate(sel('poolq_pg_statements_calls_total', None, matcher))})"
    return f"{seconds} / {calls}"


def pg_queries_per_second(stores: Sequence[Datastore]) -> str:
    return f"sum by (source) ({rate(sel('poolq_pg_statements_calls_total', None, sources(stores)))})"


def pgbouncer_sources(stores: Iterable[Datastore]) -> str:
    return f"source=~{any_of(store.pgbouncer_source for store in stores if store.pgbouncer_source)}"


def pgbouncer(stores: Sequence[Datastore], metric: str, aggregate: str = "sum") -> str:
    """A PgBouncer pool series (`client_waiting`, `client_maxwait_seconds`, …) by source and database."""
    series = sel(f"poolq_pgbouncer_{metric}", None, pgbouncer_sources(stores))
    return f"{aggregate} by (source, database) ({series})"


def pgbouncer_server_use(stores: Sequence[Datastore]) -> str:
    """Server connections in use over the pool size, by source and database."""
    matcher = pgbouncer_sources(stores)
    active = f"sum by (source, database) ({sel('poolq_pgbouncer_server_active', None, matcher)})"
    size = f"max by (source, database) ({sel('poolq_pgbouncer_pool_size', None, matcher)})"
    return f"{active} / {size}"


def redis_hit_ratio(stores: Sequence[Datastore]) -> str:
    matcher = sources(stores)
    hits = f"sum by (source) ({rate(sel('poolq_redis_keyspace_hits_total', None, matcher))})"
    misses = f"sum by (source) ({rate(sel('poolq_redis_keyspace_misses_total', None, matcher))})"
    return f"{hits} / ({hits} + {misses})"


# --- queues ---------------------------------------------------------------------------------------


QUEUE_MATCHER = 'queue=~"$queue"'
"""The queues dashboard's `queue` variable, on the pool & queue exporter's series."""
TOPIC_MATCHER = 'topic=~"$queue"'
"""The same variable on kafka_exporter's series: a Kafka queue's name is its topic."""


def _queue_selectors(system: System, queues: Sequence[Queue], metric: str, *raw: str) -> str:
    """`metric` for these queues, one selector per exporter source joined with `or`."""
    by_source: dict[str, list[str]] = {}
    for queue in queues:
        by_source.setdefault(system.datastore(queue.datastore).source, []).append(queue.name)
    return " or ".join(
        sel(metric, {"source": source}, f"queue=~{any_of(names)}", *raw) for source, names in sorted(by_source.items())
    )


def queue_series(system: System, queues: Sequence[Queue], metric: str, aggregate: str = "sum", *raw: str) -> str:
    """`poolq_queue_<metric>` by queue (`messages_ready`, `messages_unacked`, `consumers`, …); `raw`
    matchers narrow it further (QUEUE_MATCHER)."""
    return f"{aggregate} by (queue) ({_queue_selectors(system, queues, f'poolq_queue_{metric}', *raw)})"


def oldest_message_age(system: System, queues: Sequence[Queue], *raw: str) -> str:
    """Age of each queue's oldest waiting message; 0 for an empty queue.

    RabbitMQ reports the age only while the head message carries a timestamp, so an empty queue
    has no age series at all: counting it as 0 keeps the panel from showing "No data" when all is well.
    """
    age = queue_series(system, queues, "oldest_message_age_seconds", "max", *raw)
    empty = f"({queue_series(system, queues, 'messages_ready', 'max', *raw)} == 0)"
    return f"{age} or {empty}"


def consumer_replicas(exporters: RuleConfig, system: System, queue: Queue) -> str:
    """Available replicas of the Deployments that consume a queue."""
    consumers = [system.service(name) for name in queue.consumers]
    by_namespace: dict[str, list[str]] = {}
    for consumer in consumers:
        by_namespace.setdefault(consumer.namespace, []).append(consumer.name)
    parts = [
        ksm(exporters, "kube_deployment_status_replicas_available", {naming.NAMESPACE_LABEL: namespace},
            f"deployment=~{any_of(names)}")
        for namespace, names in sorted(by_namespace.items())
    ]
    return f"sum({' or '.join(parts)})"


def kafka_lag(queues: Sequence[Queue], *raw: str) -> str:
    """Consumer group lag per group and topic (kafka_exporter); a queue's name is its topic."""
    groups = any_of(queue.consumer_group or "" for queue in queues)
    topics = any_of(queue.name for queue in queues)
    lag = sel("kafka_consumergroup_lag", None, f"consumergroup=~{groups}", f"topic=~{topics}", *raw)
    return f"sum by (consumergroup, topic) ({lag})"


def kafka_produced(queues: Sequence[Queue], *raw: str) -> str:
    offsets = sel("kafka_topic_partition_current_offset", None, f"topic=~{any_of(q.name for q in queues)}", *raw)
    return f"sum by (topic) ({rate(offsets)})"


def kafka_consumed(queues: Sequence[Queue], *raw: str) -> str:
    groups = any_of(queue.consumer_group or "" for queue in queues)
    topics = any_of(queue.name for queue in queues)
    offsets = sel("kafka_consumergroup_current_offset", None, f"consumergroup=~{groups}", f"topic=~{topics}", *raw)
    return f"sum by (consumergroup, topic) ({rate(offsets)})"


# --- brokers (rabbitmq_prometheus, kafka_exporter) -------------------------------------------------


DATASTORE_MATCHER = 'service=~"$datastore"'
"""The queues dashboard's `datastore` variable: a datastore's exporter series carry `service` = its
name (the generated datastore monitors' contract)."""


def broker(stores: Sequence[Datastore], metric: str, *raw: str) -> str:
    """`metric` of these brokers' exporters, narrowed to the datastores the variable selects."""
    namespaces = any_of(store.namespace for store in stores)
    return sel(metric, None, f"namespace=~{namespaces}", DATASTORE_MATCHER, *raw)


def broker_nodes_up(stores: Sequence[Datastore]) -> str:
    """Nodes (pods) per broker with a target that answers."""
    return f"count by (service) (max by (service, pod) ({broker(stores, 'up')}) == 1)"


def broker_by_pod(stores: Sequence[Datastore], metric: str, aggregate: str = "max") -> str:
    return f"{aggregate} by (service, pod) ({broker(stores, metric)})"


def broker_ratio_by_pod(stores: Sequence[Datastore], used: str, limit: str) -> str:
    """`used` over `limit`, per broker pod (memory against the watermark, descriptors against the limit)."""
    return f"{broker_by_pod(stores, used)} / {broker_by_pod(stores, limit)}"


def broker_total(stores: Sequence[Datastore], metric: str) -> str:
    return f"sum by (service) ({broker(stores, metric)})"


def broker_rate(stores: Sequence[Datastore], metric: str) -> str:
    return f"sum by (service) ({rate(broker(stores, metric))})"


def kafka_offline_partitions(stores: Sequence[Datastore]) -> str:
    """Partitions with replicas but no leader series, per Kafka (0 while its exporter answers)."""
    replicas = broker(stores, "kafka_topic_partition_replicas")
    leaders = broker(stores, "kafka_topic_partition_leader")
    offline = f"count by (service) ({replicas} unless on (namespace, service, topic, partition) {leaders})"
    return f"{offline} or 0 * count by (service) ({replicas})"


# --- SLOs -----------------------------------------------------------------------------------------


def slo_labels(system: System, service: Service | None = None, slo: Slo | None = None) -> dict[str, str]:
    labels = recorded_service_labels(system, service) if service is not None else recorded_system_labels(system)
    if slo is not None:
        labels[naming.SLO_LABEL] = slo.name
    return labels


SLO_MATCHER = 'slo=~"$slo"'
"""The service dashboard's `slo` variable (which alert links set) applied to a recorded SLO series."""


def group_matchers(labels: Sequence[str]) -> tuple[str, ...]:
    """`handler=~"$handler"` per group label: the dashboard's group variables applied to a series.
    Their All (`.*`) also matches the series of ungrouped SLOs, which lack the label."""
    return tuple(f'{label}=~"${label}"' for label in labels)


def group_legend(labels: Sequence[str]) -> str:
    """` {{handler}}` per group label, for the legends of grouped SLOs' series."""
    return "".join(f" {{{{{label}}}}}" for label in labels)


def slo_group_variables(system: System, service: Service | None = None) -> list[dict[str, Any]]:
    """A variable per group label of the grouped SLOs in scope, over their recorded totals' values."""
    recorded = sel(naming.SLO_TOTAL_EVENTS, slo_labels(system, service))
    return [group_variable(label, recorded) for label in system.slo_group_labels(service)]


def slo_series(
    metric: str,
    system: System,
    service: Service | None = None,
    slo: Slo | None = None,
    *raw: str,
    grouped: bool = True,
) -> str:
    """A recorded SLO series by service, slo and the group labels in scope, narrowed by the
    dashboard's group variables; `raw` matchers such as SLO_MATCHER narrow it further. `grouped`
    False: a series recorded once per SLO (its objective), which has no group labels."""
    groups = system.slo_group_labels(service) if grouped else ()
    by = ", ".join(("service", "slo", *groups))
    return f"max by ({by}) ({sel(metric, slo_labels(system, service, slo), *raw, *group_matchers(groups))})"


def slo_good_ratio(system: System, service: Service, window: str, *raw: str) -> str:
    """Share of good events over `window`, by slo: 1 − the recorded error ratio."""
    return f"1 - {slo_series(naming.slo_error_ratio(window), system, service, None, *raw)}"


def slo_ids(system: System, window_seconds: int | None = None) -> list[tuple[Service, Slo]]:
    """Every (service, SLO) of the system, optionally only those with this window length."""
    return [
        (service, slo)
        for service in system.services
        for slo in service.slos
        if window_seconds is None or slo.window_seconds == window_seconds
    ]


def slo_group_selector(metric: str, system: System, window_seconds: int) -> str:
    """`metric` for the SLOs of one window length: the system's whole set when all share it."""
    group = slo_ids(system, window_seconds)
    if len(group) == len(slo_ids(system)):
        return sel(metric, recorded_system_labels(system))
    return " or ".join(sel(metric, slo_labels(system, service, slo)) for service, slo in group)


def alert_margin(system: System, window_seconds: int, long_window: str, short_window: str, factor: str) -> str:
    """min(long burn, short burn) / factor per SLO: at 1 and above, that tier's alert fires."""
    groups = system.slo_group_labels()
    by = ", ".join(("service", "slo", *groups))
    long_burn, short_burn = (
        f"max by ({by}) ({slo_group_selector(naming.slo_burn_rate(window), system, window_seconds)})"
        for window in (long_window, short_window)
    )
    # `(a < b) or b` is the element-wise minimum of two vectors with the same labels.
    return f"(({long_burn} < {short_burn}) or {short_burn}) / {factor}"


# --- GitOps ---------------------------------------------------------------------------------------


def argocd(namespace: str, metric: str) -> str:
    return sel(metric, {naming.NAMESPACE_LABEL: namespace})


def argocd_apps_by(namespace: str, label: str) -> str:
    return f"count by ({label}) ({argocd(namespace, 'argocd_app_info')})"


def argocd_app_states(namespace: str) -> str:
    return f"max by (name, sync_status, health_status) ({argocd(namespace, 'argocd_app_info')})"


def argocd_syncs(namespace: str, window: str = RATE_INTERVAL) -> str:
    return f"sum by (name, phase) (increase({argocd(namespace, 'argocd_app_sync_total')}[{window}]))"


def rollouts(exporters: RuleConfig, window: str = RATE_INTERVAL) -> str:
    """Deployments whose spec changed (a new generation): each one is a rollout."""
    generation = ksm(exporters, "kube_deployment_metadata_generation", None, NAMESPACE_MATCHER)
    return f"sum by (namespace, deployment) (changes({generation}[{window}])) > 0"


# --- alerts ---------------------------------------------------------------------------------------


def firing_alerts(system: System, *raw: str) -> str:
    return sel("ALERTS", recorded_system_labels(system), 'alertstate="firing"', *raw)


def firing_alerts_by(system: System, labels: Sequence[str], *raw: str) -> str:
    return f"count by ({', '.join(labels)}) ({firing_alerts(system, *raw)})"
