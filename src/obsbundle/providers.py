"""Which component provides each series the generated rules and dashboards read, and what it needs.

One catalogue, read by the series contract test (which fixture must hold the series), by the
exporter-absence alerts (which alerts an absent exporter explains) and by docs/rules.md. A metric
is looked up by exact name first, then by the longest prefix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Provider(StrEnum):
    """A component whose series obsbundle reads."""

    PROMETHEUS = "prometheus"
    """Prometheus itself: `up` and the other synthetic series of every scrape."""
    NODE_EXPORTER = "node-exporter"
    KUBE_STATE_METRICS = "kube-state-metrics"
    CADVISOR = "cadvisor"
    KUBELET = "kubelet"
    KAFKA_EXPORTER = "kafka-exporter"
    ARGOCD = "argocd"
    POOL_QUEUE_EXPORTER = "obsbundle-exporter"
    SERVICE = "service"
    """The service's own instrumentation (see rules/sli.py for each instrumentation's names)."""


@dataclass(frozen=True)
class Source:
    provider: Provider
    needs: str = ""
    """What the provider must be told to publish the series, where its defaults do not."""


_BY_PREFIX: Mapping[str, Source] = {
    "node_": Source(Provider.NODE_EXPORTER),
    "kube_": Source(Provider.KUBE_STATE_METRICS),
    "container_": Source(Provider.CADVISOR),
    "kubelet_volume_stats_": Source(Provider.KUBELET),
    "kafka_": Source(Provider.KAFKA_EXPORTER),
    "argocd_": Source(Provider.ARGOCD),
    "poolq_": Source(Provider.POOL_QUEUE_EXPORTER),
    "http_": Source(Provider.SERVICE),
    "grpc_": Source(Provider.SERVICE),
}
_EXACT: Mapping[str, Source] = {
    "up": Source(Provider.PROMETHEUS),
    "kube_node_labels": Source(
        Provider.KUBE_STATE_METRICS,
        "the pool label: start kube-state-metrics with --metric-labels-allowlist=nodes=[<node_pool_label>]",
    ),
}


def source_of(metric: str) -> Source | None:
    """The component that provides `metric`, or None for a series obsbundle records itself."""
    if ":" in metric:  # `level:metric:operations`: a recording rule's output, never an exporter's
        return None
    if metric in _EXACT:
        return _EXACT[metric]
    for prefix in sorted(_BY_PREFIX, key=len, reverse=True):
        if metric.startswith(prefix):
            return _BY_PREFIX[prefix]
    return None
