"""The monitoring stacks obsbundle's output runs on, and the target labels each gives each exporter.

Prometheus Operator puts the same target labels on every ServiceMonitor target (`job`,
`instance`, `namespace`, `service`, `pod`, `container`, `endpoint`; `node` when the endpoint's
target is a Node, as the kubelet's are), but the two stacks users install deploy the standard
exporters differently, so the values differ:

- kube-prometheus-stack (Helm): node-exporter runs with `hostNetwork` and its ServiceMonitor has
  no relabelling, so `instance` is `<host IP>:9100`.
- kube-prometheus (jsonnet): node-exporter sits behind kube-rbac-proxy and its ServiceMonitor
  relabels `instance` to the node's name.

Both scrape kube-state-metrics with `honorLabels`, so its own `namespace`, `pod` and `node` labels
win over the target's. Rules select each exporter by labels both stacks give it (`job`, and
`metrics_path` for the kubelet) and reach a node through `kube_pod_info` on (namespace, pod),
never through `instance`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Stack(StrEnum):
    """The stack that deploys Prometheus and the standard exporters (inventory: `monitoring.stack`)."""

    KUBE_PROMETHEUS_STACK = "kube-prometheus-stack"
    KUBE_PROMETHEUS = "kube-prometheus"


class Exporter(StrEnum):
    """The standard exporters the generated rules and dashboards read."""

    NODE_EXPORTER = "node-exporter"
    KUBE_STATE_METRICS = "kube-state-metrics"
    CADVISOR = "cadvisor"
    """The kubelet's embedded cAdvisor, at /metrics/cadvisor."""
    KUBELET = "kubelet"
    """The kubelet's own metrics at /metrics (volume stats among them)."""


class InstanceFrom(StrEnum):
    """Where a target's `instance` comes from."""

    HOST_IP = "host-ip"
    """`<host IP>:<port>`: a hostNetwork pod, or a Node endpoint."""
    POD_IP = "pod-ip"
    """`<pod IP>:<port>`."""
    NODE_NAME = "node-name"
    """The node's name, relabelled from `__meta_kubernetes_pod_node_name`."""


@dataclass(frozen=True)
class ScrapeTarget:
    """How one stack scrapes one exporter: the labels every series of it gets."""

    job: str
    namespace: str
    service: str
    endpoint: str
    container: str | None
    """None where the endpoint's target is a Node (the kubelet): there is no pod or container."""
    port: int
    instance_from: InstanceFrom
    honor_labels: bool = False
    static: Mapping[str, str] = field(default_factory=dict)
    """Further labels the ServiceMonitor's relabellings set (the kubelet's `metrics_path`)."""
    pod_prefix: str | None = None
    """The exporter's pod names start with this (DaemonSet or Deployment name)."""


@dataclass(frozen=True)
class Node:
    """One node as the stacks' labels need it."""

    name: str
    host_ip: str


# Facts from each stack's own manifests; see tests/fixtures/exposition/README.md for the files.
PROFILES: Mapping[Stack, Mapping[Exporter, ScrapeTarget]] = {
    Stack.KUBE_PROMETHEUS_STACK: {
        Exporter.NODE_EXPORTER: ScrapeTarget(
            job="node-exporter",
            namespace="monitoring",
            service="kube-prometheus-stack-prometheus-node-exporter",
            endpoint="http-metrics",
            container="node-exporter",
            port=9100,
            instance_from=InstanceFrom.HOST_IP,
            pod_prefix="kube-prometheus-stack-prometheus-node-exporter",
        ),
        Exporter.KUBE_STATE_METRICS: ScrapeTarget(
            job="kube-state-metrics",
            namespace="monitoring",
            service="kube-prometheus-stack-kube-state-metrics",
            endpoint="http",
            container="kube-state-metrics",
            port=8080,
            instance_from=InstanceFrom.POD_IP,
            honor_labels=True,
            pod_prefix="kube-prometheus-stack-kube-state-metrics",
        ),
        Exporter.CADVISOR: ScrapeTarget(
            job="kubelet",
            namespace="kube-system",
            service="kube-prometheus-stack-kubelet",
            endpoint="https-metrics",
            container=None,
            port=10250,
            instance_from=InstanceFrom.HOST_IP,
            honor_labels=True,
            static={"metrics_path": "/metrics/cadvisor"},
        ),
        Exporter.KUBELET: ScrapeTarget(
            job="kubelet",
            namespace="kube-system",
            service="kube-prometheus-stack-kubelet",
            endpoint="https-metrics",
            container=None,
            port=10250,
            instance_from=InstanceFrom.HOST_IP,
            honor_labels=True,
            static={"metrics_path": "/metrics"},
        ),
    },
    Stack.KUBE_PROMETHEUS: {
        Exporter.NODE_EXPORTER: ScrapeTarget(
            job="node-exporter",
            namespace="monitoring",
            service="node-exporter",
            endpoint="https",
            container="kube-rbac-proxy",
            port=9100,
            instance_from=InstanceFrom.NODE_NAME,
            pod_prefix="node-exporter",
        ),
        Exporter.KUBE_STATE_METRICS: ScrapeTarget(
            job="kube-state-metrics",
            namespace="monitoring",
            service="kube-state-metrics",
            endpoint="https-main",
            container="kube-rbac-proxy-main",
            port=8443,
            instance_from=InstanceFrom.POD_IP,
            honor_labels=True,
            pod_prefix="kube-state-metrics",
        ),
        Exporter.CADVISOR: ScrapeTarget(
            job="kubelet",
            namespace="kube-system",
            service="kubelet",
            endpoint="https-metrics",
            container=None,
            port=10250,
            instance_from=InstanceFrom.HOST_IP,
            honor_labels=True,
            static={"metrics_path": "/metrics/cadvisor"},
        ),
        Exporter.KUBELET: ScrapeTarget(
            job="kubelet",
            namespace="kube-system",
            service="kubelet",
            endpoint="https-metrics",
            container=None,
            port=10250,
            instance_from=InstanceFrom.HOST_IP,
            honor_labels=True,
            static={"metrics_path": "/metrics"},
        ),
    },
}


def exporter_pod(stack: Stack, exporter: Exporter, node: Node) -> str | None:
    """The name of the exporter's pod on `node` (a stable made-up suffix per node), or None for Node targets.

    The suffix is a hash of the whole node name: a DaemonSet's pods on nodes `auth-1` and `api-1`
    must not share a name, or every join on (namespace, pod) would mix their nodes.
    """
    target = PROFILES[stack][exporter]
    if target.container is None or target.pod_prefix is None:
        return None
    return f"{target.pod_prefix}-{hashlib.sha256(node.name.encode()).hexdigest()[:5]}"


def target_labels(stack: Stack, exporter: Exporter, node: Node, *, pod_ip: str = "10.244.0.10") -> dict[str, str]:
    """Every label `stack` puts on a series scraped from `exporter`'s target on `node`."""
    target = PROFILES[stack][exporter]
    match target.instance_from:
        case InstanceFrom.HOST_IP:
            instance = f"{node.host_ip}:{target.port}"
        case InstanceFrom.POD_IP:
            instance = f"{pod_ip}:{target.port}"
        case InstanceFrom.NODE_NAME:
            instance = node.name
    labels = {
        "job": target.job,
        "instance": instance,
        "namespace": target.namespace,
        "service": target.service,
        "endpoint": target.endpoint,
        **target.static,
    }
    pod = exporter_pod(stack, exporter, node)
    if pod is None:
        labels["node"] = node.name
    else:
        labels["pod"] = pod
        assert target.container is not None
        labels["container"] = target.container
    return labels
