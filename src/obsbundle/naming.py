"""Names of recorded series shared by the rules that record them and the dashboards that read them.

Names follow Prometheus's `level:metric:operations` practice. Labels on every recorded series:
`system`, plus `namespace` and `service` (per service), `slo` (per SLO), `node` and `node_pool`
(per node), `node_pool` (per pool).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from obsbundle.providers import Provider

# Label names used across rules, dashboards and routing.
SYSTEM_LABEL = "system"
SERVICE_LABEL = "service"
NAMESPACE_LABEL = "namespace"
NODE_POOL_LABEL = "node_pool"
SLO_LABEL = "slo"
TEAM_LABEL = "team"
SEVERITY_LABEL = "severity"
WINDOW_LABEL = "window"  # the SLO alert's window pair, e.g. `1h-5m`

# --- RED per service, whatever the instrumentation (labels: system, namespace, service) ----------
SERVICE_REQUESTS_RATE = "namespace_service:requests:rate5m"
SERVICE_ERRORS_RATE = "namespace_service:request_errors:rate5m"
SERVICE_ERROR_RATIO = "namespace_service:request_errors:ratio_rate5m"
SERVICE_DURATION_BUCKETS_RATE = "namespace_service_le:request_duration_seconds_bucket:rate5m"
SERVICE_LATENCY_QUANTILE = "namespace_service_quantile:request_duration_seconds:histogram_quantile5m"
"""Carries a `quantile` label: "0.5", "0.95" and "0.99"."""

# --- SLOs (labels: system, namespace, service, slo) -----------------------------------------------
SLO_GOOD_EVENTS = "slo:sli_good_events:increase5m"
SLO_TOTAL_EVENTS = "slo:sli_total_events:increase5m"
SLO_OBJECTIVE = "slo:objective:ratio"
"""The objective as a ratio (0.995), recorded so that dashboards and alerts read one source."""
SLO_ERROR_BUDGET_REMAINING = "slo:error_budget_remaining:ratio"
"""Share of the window's error budget left: 1 untouched, 0 spent, negative overspent."""


def slo_error_ratio(window: str) -> str:
    """Recorded error ratio of every SLO over `window` (`5m`, `30m`, `1h`, `2h`, `6h`, `1d`, `3d`, `30d`…)."""
    return f"slo:sli_error:ratio_rate{window}"


def slo_burn_rate(window: str) -> str:
    """Recorded burn rate over `window`: error ratio divided by the error budget."""
    return f"slo:burn_rate:ratio_rate{window}"


def slo_good_events(window: str) -> str:
    """Recorded good events of every SLO over `window`; `5m` is SLO_GOOD_EVENTS, longer windows sum it."""
    return f"slo:sli_good_events:increase{window}"


def slo_total_events(window: str) -> str:
    """Recorded total events of every SLO over `window`; `5m` is SLO_TOTAL_EVENTS, longer windows sum it."""
    return f"slo:sli_total_events:increase{window}"


# --- Nodes and node pools --------------------------------------------------------------------------
NODE_POOL_MEMBERSHIP = "node_pool:node:info"
"""Value 1 per node of the system's pools, labels `node` and `node_pool`: kube_node_labels with the
pool label. Every node pool rule joins on this one series."""
NODE_EXPORTER_PODS = "node_pool:node_exporter_pod:info"
"""Value 1 per node-exporter pod on a node of the system's pools, labels `namespace`, `pod`, `node`
and `node_pool`: kube_pod_info of the pods `up{job="node-exporter"}` scrapes, joined to
NODE_POOL_MEMBERSHIP. node-exporter series reach their node through it, on (namespace, pod), so
what their `instance` holds (a host IP and port, or the node's name) does not matter."""
NODE_CPU_UTILISATION = "node:node_cpu_utilisation:ratio_rate5m"
NODE_MEMORY_UTILISATION = "node:node_memory_utilisation:ratio"
NODE_FILESYSTEM_USAGE = "node:node_filesystem_usage:ratio"
"""The fullest real filesystem of each node."""
POOL_CPU_UTILISATION = "node_pool:node_cpu_utilisation:ratio_rate5m"
POOL_MEMORY_UTILISATION = "node_pool:node_memory_utilisation:ratio"
POOL_FILESYSTEM_USAGE = "node_pool:node_filesystem_usage:max_ratio"
POOL_NETWORK_RECEIVE = "node_pool:node_network_receive_bytes:rate5m"
POOL_NETWORK_TRANSMIT = "node_pool:node_network_transmit_bytes:rate5m"
POOL_NODES_READY = "node_pool:kube_node_status_ready:count"
POOL_NODES = "node_pool:kube_node_info:count"

# --- The apiserver's SLO (labels: system, verb = read | write; rules/control_plane.py) --------------
APISERVER_ERROR_BUDGET_REMAINING = "apiserver_verb:slo_error_budget_remaining:ratio"


def apiserver_events(kind: str, window: str) -> str:
    """Recorded `bad` (failed, 5xx, or slower than the SLO's bound) or `total` apiserver requests over
    `window`; `5m` is the recorded base, longer windows sum it."""
    return f"apiserver_verb:slo_{kind}_events:increase{window}"


def apiserver_error_ratio(window: str) -> str:
    """Recorded share of bad apiserver requests over `window`."""
    return f"apiserver_verb:slo_error:ratio_rate{window}"


# --- Alert label contract (rules set them; routing and inhibition in alerting/ rely on them) -------
# Every alert: `severity` (critical | warning | info; `none` only for Watchdog), `system`, `team`.
# Service alerts: `namespace`, `service`, and `node_pool` when the service runs on a known pool
#   (so that a pool that is down can inhibit them).
# Node and pool alerts: `node_pool`. SLO alerts: `service`, `slo`, `window` (e.g. `1h-5m`).
# Datastore alerts: `datastore`. Queue alerts: `queue`. External endpoints' alerts: `dependency`.
# Alerts computed from an exporter's series: `exporter` = the providers they read, sorted and
#   comma-joined (`kube-state-metrics,node-exporter`); the pool & queue exporter's are
#   EXPORTER_LABEL_VALUE. The exporter's absence alert (EXPORTER_ABSENT_ALERTS) inhibits them.
DATASTORE_LABEL = "datastore"
DEPENDENCY_LABEL = "dependency"
QUEUE_LABEL = "queue"
EXPORTER_LABEL = "exporter"
EXPORTER_LABEL_VALUE = Provider.POOL_QUEUE_EXPORTER.value

ALERT_WATCHDOG = "Watchdog"
"""Always firing; routed to a dead man's switch, never to Slack."""
ALERT_NODE_POOL_DOWN = "NodePoolDown"
"""No node of a pool is ready (labels: node_pool); inhibits the alerts of workloads on that pool."""
ALERT_NODE_POOL_LABEL_MISSING = "NodePoolLabelMissing"
"""kube-state-metrics reports nodes but none with the pool label; the pool alerts hold their fire meanwhile."""
ALERT_EXPORTER_DOWN = "PoolQueueExporterDown"
"""The pool & queue exporter is not scraped; inhibits every alert whose `exporter` names EXPORTER_LABEL_VALUE."""
ALERT_EXPORTER_SOURCE_DOWN = "PoolQueueSourceDown"
"""One exporter source cannot be read (poolq_up == 0; labels: datastore, source)."""

EXPORTER_ABSENT_ALERTS: Mapping[Provider, str] = {
    Provider.NODE_EXPORTER: "NodeExporterDown",
    Provider.KUBE_STATE_METRICS: "KubeStateMetricsDown",
    Provider.CADVISOR: "KubeletCadvisorDown",
    Provider.KUBELET: "KubeletDown",
    Provider.KAFKA_EXPORTER: "KafkaExporterDown",
    Provider.ARGOCD: "ArgoCdMetricsDown",
    Provider.APISERVER: "KubeAPIDown",
    Provider.ETCD: "EtcdDown",
    Provider.CERT_MANAGER: "CertManagerAbsent",
    Provider.ARGO_ROLLOUTS: "ArgoRolloutsMetricsDown",
    Provider.BLACKBOX_EXPORTER: "BlackboxExporterDown",
    Provider.POOL_QUEUE_EXPORTER: ALERT_EXPORTER_DOWN,
}
"""The alert that fires while an exporter the rules read is absent; it inhibits every alert whose
`exporter` label names that exporter (kubernetes-mixin's `kubernetes-absent` group is the peer)."""


DATASTORE_EXPORTER_DOWN_ALERTS: Mapping[Provider, str] = {
    Provider.POSTGRES_EXPORTER: "PostgresExporterDown",
    Provider.REDIS_EXPORTER: "RedisExporterDown",
}
"""Exporters that run once per datastore (a sidecar of each StatefulSet, scraped by the datastore's
generated monitor): each datastore's exporter has an absence alert of its own (labels: datastore),
which inhibits the alerts of that datastore whose `exporter` label names it. They get no
system-wide absence alert: one exporter missing must not mute the other datastores' alerts."""


def exporter_label_value(providers: Iterable[Provider]) -> str:
    """The `exporter` label of an alert that reads these exporters: sorted, comma-joined."""
    return ",".join(sorted({provider.value for provider in providers}))


def exporter_label_regex(provider: Provider) -> str:
    """An Alertmanager regex (anchored) that matches every `exporter` value naming `provider`."""
    return f"(.+,)?{provider.value}(,.+)?"


def possessive(name: str) -> str:
    """`auth-service's`, `orders'`: the possessive of a name, in alert and panel texts."""
    return f"{name}'" if name.endswith("s") else f"{name}'s"
