"""Which component provides each series the generated rules and dashboards read, and what it needs.

One catalogue, read by the series contract test (which fixture must hold the series), by the
exporter-absence alerts (which alerts an absent exporter explains), by `--verify` (the fix to
print for a missing series) and by docs/rules.md ("Where each series comes from", rendered by
`markdown_table`). A metric is looked up by exact name first, then by the longest prefix; names
with a colon are recording rules' outputs and have no provider.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from obsbundle.model import DatastoreKind, Instrumentation


class Provider(StrEnum):
    """A component whose series obsbundle reads."""

    PROMETHEUS = "prometheus"
    """Prometheus itself: `up` for every target, `ALERTS` for every alerting rule."""
    NODE_EXPORTER = "node-exporter"
    KUBE_STATE_METRICS = "kube-state-metrics"
    CADVISOR = "cadvisor"
    """The kubelet's embedded cAdvisor, at /metrics/cadvisor."""
    KUBELET = "kubelet"
    """The kubelet's own /metrics."""
    KAFKA_EXPORTER = "kafka-exporter"
    POSTGRES_EXPORTER = "postgres-exporter"
    """prometheus-community/postgres_exporter, scraped by a generated datastore monitor."""
    REDIS_EXPORTER = "redis-exporter"
    """oliver006/redis_exporter, scraped by a generated datastore monitor."""
    RABBITMQ = "rabbitmq"
    """RabbitMQ's own rabbitmq_prometheus plugin, scraped by a generated datastore monitor."""
    ARGOCD = "argocd"
    APISERVER = "apiserver"
    """kube-apiserver of a self-managed control plane (stacks.py: job `apiserver`)."""
    ETCD = "etcd"
    """etcd of a self-managed control plane, at its metrics URL (kubeadm: `--listen-metrics-urls`, port 2381)."""
    KUBE_SCHEDULER = "kube-scheduler"
    """Scraped for `up` only: no rule or panel reads its own series."""
    KUBE_CONTROLLER_MANAGER = "kube-controller-manager"
    """Scraped for `up` only: no rule or panel reads its own series."""
    CERT_MANAGER = "cert-manager"
    """cert-manager's controller (port 9402), scraped by the generated ServiceMonitor."""
    ARGO_ROLLOUTS = "argo-rollouts"
    """The Argo Rollouts controller's own /metrics (port 8090): every Rollout's replicas and phase."""
    BLACKBOX_EXPORTER = "blackbox-exporter"
    """prometheus/blackbox_exporter, through the generated Probes (monitors/probes.py)."""
    POOL_QUEUE_EXPORTER = "obsbundle-exporter"
    SERVICE = "service"
    """The service's own instrumentation (rules/sli.py has each instrumentation's names)."""


DATASTORE_EXPORTERS: Mapping[DatastoreKind, Provider] = {
    DatastoreKind.POSTGRES: Provider.POSTGRES_EXPORTER,
    DatastoreKind.REDIS: Provider.REDIS_EXPORTER,
    DatastoreKind.RABBITMQ: Provider.RABBITMQ,
    DatastoreKind.KAFKA: Provider.KAFKA_EXPORTER,
}
"""The standard exporter behind a datastore's `metrics` (monitors/datastores.py), by its kind: its
series carry the datastore's namespace and `service=<datastore name>`."""


@dataclass(frozen=True)
class Source:
    """The component behind a series and what it must be told to publish it."""

    provider: Provider
    needs: str = ""
    """The flag or setting that makes the provider publish the series, where its defaults do not."""
    instrumentations: tuple[Instrumentation, ...] = ()
    """For a service's series: the client libraries that name them so."""
    on_event: str = ""
    """For a counter the provider creates only when what it counts first happens: that event. A
    healthy cluster has no such series, so `--verify` does not count them missing while their
    provider is scraped."""


@dataclass(frozen=True)
class Entry:
    """One line of the catalogue: a metric name, or every metric that starts with `name`."""

    name: str
    prefix: bool
    source: Source


def _exact(name: str, provider: Provider, needs: str = "", *by: Instrumentation) -> Entry:
    return Entry(name, False, Source(provider, needs, by))


def _prefix(name: str, provider: Provider, needs: str = "", *by: Instrumentation) -> Entry:
    return Entry(name, True, Source(provider, needs, by))


_HTTP_CLIENTS = (Instrumentation.PROMETHEUS_CLIENT, Instrumentation.FASTAPI_INSTRUMENTATOR)


_MICROMETER_HISTOGRAM = (
    "`management.metrics.distribution.percentiles-histogram.{meter}=true`, and "
    "`management.metrics.distribution.slo.{meter}=<threshold>` for each latency SLO: Micrometer's own "
    "boundaries (1 ms … 30 s, 68 of them) miss round thresholds such as 0.5 s and 1 s (Spring Boot)"
)

_PG_QUERIES = "`--extend.query-path=deploy/postgres-exporter/queries.yaml`"

CATALOGUE: Sequence[Entry] = (
    _exact("up", Provider.PROMETHEUS),
    _exact("ALERTS", Provider.PROMETHEUS, "the generated alerting rules loaded"),
    _prefix("node_", Provider.NODE_EXPORTER),
    _prefix("kube_", Provider.KUBE_STATE_METRICS),
    _exact(
        "kube_node_labels",
        Provider.KUBE_STATE_METRICS,
        "the pool label: `--metric-labels-allowlist=nodes=[<node_pool_label>]` "
        "(chart value `metricLabelsAllowlist`; the default `[]` publishes no node label)",
    ),
    _prefix("container_", Provider.CADVISOR),
    _prefix("kubelet_volume_stats_", Provider.KUBELET),
    _exact("kubelet_running_pods", Provider.KUBELET),
    Entry(
        "kubelet_evictions",
        False,
        Source(
            Provider.KUBELET,
            on_event="the kubelet publishes a signal's series once it has evicted a pod on that signal",
        ),
    ),
    _prefix("kafka_", Provider.KAFKA_EXPORTER),
    _prefix(
        "rabbitmq_",
        Provider.RABBITMQ,
        "the datastore's `metrics` endpoint scraped (its generated monitor): rabbitmq_prometheus's port 15692, "
        "path `/metrics` (its default, aggregated: every series read is there without per-object metrics)",
    ),
    _prefix("pg_", Provider.POSTGRES_EXPORTER, "the datastore's `metrics` endpoint scraped (its generated monitor)"),
    # Later postgres_exporter collectors; deploy/postgres-exporter/queries.yaml gives older versions
    # the same series (its header says which query to keep on which version).
    *(
        _prefix(family, Provider.POSTGRES_EXPORTER, f"postgres_exporter {native}; {_PG_QUERIES} {before}")
        for family, native, before in (
            ("pg_stat_user_tables_", "0.12 or later", "before 0.12 (Debian 12: 0.11.1)"),
            ("pg_replication_", "0.12 or later", "before 0.12 (Debian 12: 0.11.1)"),
            ("pg_database_wraparound_", "0.14 or later with `--collector.database_wraparound`", "before that"),
        )
    ),
    _prefix("redis_", Provider.REDIS_EXPORTER, "the datastore's `metrics` endpoint scraped (its generated monitor)"),
    _prefix("argocd_", Provider.ARGOCD, "the application controller's metrics endpoint scraped (port 8082)"),
    _prefix(
        "rollout_info",
        Provider.ARGO_ROLLOUTS,
        "the controller's Service `argo-rollouts-metrics` (port `metrics`) in `platform.argo_rollouts_namespace`, "
        "scraped by the generated ServiceMonitor",
    ),
    _prefix(
        "probe_",
        Provider.BLACKBOX_EXPORTER,
        "the modules the Probes name (blackbox/blackbox.yml, or the chart values in blackbox/helm-values.yaml)",
    ),
    _prefix("apiserver_", Provider.APISERVER),
    _prefix(
        "apiserver_request_sli_duration_seconds",
        Provider.APISERVER,
        "Kubernetes 1.26 or later (earlier: `apiserver_request_slo_duration_seconds`, deprecated in 1.27)",
    ),
    _prefix(
        "etcd_",
        Provider.ETCD,
        "a metrics URL Prometheus reaches: kubeadm's etcd serves /metrics on 127.0.0.1:2381 only, "
        "set `--listen-metrics-urls=http://0.0.0.0:2381` in /etc/kubernetes/manifests/etcd.yaml",
    ),
    _prefix("certmanager_", Provider.CERT_MANAGER, "the controller's Service (port `http-metrics`, 9402), "
            "scraped by the generated ServiceMonitor"),
    _prefix("poolq_", Provider.POOL_QUEUE_EXPORTER, "a source per datastore in the exporter's config"),
    _prefix(
        "poolq_pg_statements_",
        Provider.POOL_QUEUE_EXPORTER,
        "the `pg_stat_statements` extension in the database the source connects to",
    ),
    _prefix(
        "poolq_queue_",
        Provider.POOL_QUEUE_EXPORTER,
        "the queue's source in the exporter's config (`rabbitmq`, `redis` queues, `postgres_queues`)",
    ),
    _exact("poolq_queue_consumers", Provider.POOL_QUEUE_EXPORTER, "RabbitMQ with `queue_details: true` (the default)"),
    _exact("http_requests_total", Provider.SERVICE, "", *_HTTP_CLIENTS),
    _prefix("http_request_duration_seconds", Provider.SERVICE, "", *_HTTP_CLIENTS),
    _exact(
        "http_request_duration_seconds_bucket",
        Provider.SERVICE,
        "a bucket boundary at each latency SLO's threshold: prometheus-client's default buckets "
        "(0.005 … 1, 2.5, 5, 7.5, 10) have no 2, set `Histogram(buckets=...)`; "
        "prometheus-fastapi-instrumentator's are 0.1, 0.5, 1, set `metrics.default(latency_lowr_buckets=...)`",
        *_HTTP_CLIENTS,
    ),
    _prefix("http_server_requests_seconds", Provider.SERVICE, "", Instrumentation.MICROMETER),
    _exact(
        "http_server_requests_seconds_bucket",
        Provider.SERVICE,
        _MICROMETER_HISTOGRAM.format(meter="http.server.requests"),
        Instrumentation.MICROMETER,
    ),
    _exact("grpc_server_handled_total", Provider.SERVICE, "", Instrumentation.GRPC),
    _prefix(
        "grpc_server_handling_seconds",
        Provider.SERVICE,
        "`grpc_prometheus.EnableHandlingTimeHistogram()` (Go); `enable_handling_time_histogram=True` "
        "(py-grpc-prometheus)",
        Instrumentation.GRPC,
    ),
    _prefix("grpc_server_processing_duration_seconds", Provider.SERVICE, "", Instrumentation.GRPC_SPRING),
    _exact(
        "grpc_server_processing_duration_seconds_bucket",
        Provider.SERVICE,
        _MICROMETER_HISTOGRAM.format(meter="grpc.server.processing.duration"),
        Instrumentation.GRPC_SPRING,
    ),
)

_EXACT = {entry.name: entry.source for entry in CATALOGUE if not entry.prefix}
_PREFIXES = sorted((entry for entry in CATALOGUE if entry.prefix), key=lambda entry: len(entry.name), reverse=True)


def source_of(metric: str) -> Source | None:
    """The component that provides `metric`, or None for a series obsbundle records itself (or no
    component known here provides)."""
    if ":" in metric:  # `level:metric:operations`: a recording rule's output, never an exporter's
        return None
    if metric in _EXACT:
        return _EXACT[metric]
    for entry in _PREFIXES:
        if metric.startswith(entry.name):
            return entry.source
    return None


def markdown_table() -> str:
    """The catalogue as the Markdown table docs/rules.md carries, one row per entry, in order."""
    rows = ["| series | provided by | needs |", "|---|---|---|"]
    for entry in CATALOGUE:
        series = f"`{entry.name}*`" if entry.prefix else f"`{entry.name}`"
        source = entry.source
        provider = source.provider.value
        if source.instrumentations:
            provider += f" ({', '.join(by.value for by in source.instrumentations)})"
        needs = source.needs or "defaults"
        if source.on_event:
            needs += f"; no series before the first event: {source.on_event}"
        rows.append(f"| {series} | {provider} | {needs} |")
    return "\n".join(rows) + "\n"
