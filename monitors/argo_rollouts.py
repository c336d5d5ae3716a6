"""The ServiceMonitor of the Argo Rollouts controller, whose metrics describe every Rollout.

A Rollout's replicas and phase exist only in the controller's own `rollout_info*` series (a Rollout
makes ReplicaSets, never a Deployment, so kube-state-metrics has no `kube_deployment_*` for it).
Neither kube-prometheus-stack nor kube-prometheus scrapes the controller, so obsbundle does, for
systems with a rollout service or platform workload and `platform.argo_rollouts_namespace` set.

The upstream install manifest (argoproj/argo-rollouts@v1.9.1 (b6bd3bcf):
manifests/base/argo-rollouts-metrics-service.yaml, docs/features/controller-metrics.md) puts the
metrics behind Service `argo-rollouts-metrics`, port `metrics` (8090), labelled
`app.kubernetes.io/name: argo-rollouts-metrics`. The Rollout's own `namespace` and `name` label
each series (controller/metrics/rollouts.go); `honorLabels` keeps that `namespace`, rather than
renaming it `exported_namespace` under the controller's, so that rules select a Rollout by the
namespace it runs in, as they select every other workload.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from obsbundle import naming
from obsbundle.documents import Document, kubernetes_document
from obsbundle.labels import object_labels
from obsbundle.model import Controller, Service, System
from obsbundle.promql import quote, selector
from obsbundle.settings import Settings

API_VERSION = "monitoring.coreos.com/v1"
METRICS_SERVICE = "argo-rollouts-metrics"
"""The controller's metrics Service, and so the `job` of its series (a ServiceMonitor's job is the Service's name)."""
METRICS_PORT = "metrics"
SERVICE_SELECTOR = {"app.kubernetes.io/name": METRICS_SERVICE}


def is_rollout(service: Service) -> bool:
    """Whether an Argo Rollout runs the service (its replicas are then the controller's, not a Deployment's)."""
    return service.workload_controller is Controller.ROLLOUT


def rollout_namespaces(system: System) -> list[str]:
    """The namespaces of the system's Argo Rollouts (services and platform workloads), sorted."""
    services = {s.namespace for s in system.services if is_rollout(s)}
    platform = {w.namespace for w in system.platform.workloads if w.controller is Controller.ROLLOUT}
    return sorted(services | platform)


def runs_rollouts(system: System) -> bool:
    """Whether any service or platform workload of the system is an Argo Rollout."""
    return bool(rollout_namespaces(system))


def rollouts_presence(system: System) -> str:
    """The selector of `rollout_info` in the namespaces of the system's Rollouts: the controller
    publishes it for every Rollout it manages, so its absence is the controller's."""
    namespaces = rollout_namespaces(system)
    assert namespaces, "only systems that run Rollouts read the controller"
    if len(namespaces) == 1:
        return selector("rollout_info", {naming.NAMESPACE_LABEL: namespaces[0]})
    return selector("rollout_info", {}, f"namespace=~{quote('|'.join(map(re.escape, namespaces)))}")


def rollouts_monitor(system: System, settings: Settings) -> dict[str, Any] | None:
    """The controller's ServiceMonitor, or None when the system runs no Rollout (or names no
    controller namespace: the inventory's checks refuse a rollout without one)."""
    namespace = system.platform.argo_rollouts_namespace
    if namespace is None or not runs_rollouts(system):
        return None
    return {
        "apiVersion": API_VERSION,
        "kind": "ServiceMonitor",
        "metadata": {
            "name": METRICS_SERVICE,
            "namespace": namespace,
            "labels": {**object_labels(system, settings), "app.kubernetes.io/component": "argo-rollouts"},
        },
        "spec": {
            "selector": {"matchLabels": dict(SERVICE_SELECTOR)},
            "namespaceSelector": {"matchNames": [namespace]},
            "endpoints": [
                {
                    "port": METRICS_PORT,
                    "path": "/metrics",
                    "interval": "30s",
                    "honorLabels": True,
                    # The Service's name, as every generated monitor sets `service` explicitly.
                    "relabelings": [{"action": "replace", "targetLabel": "service", "replacement": METRICS_SERVICE}],
                },
            ],
        },
    }


def generate_rollouts_monitor(system: System, settings: Settings) -> Iterator[Document]:
    """The controller's ServiceMonitor, when the system needs one."""
    monitor = rollouts_monitor(system, settings)
    if monitor is not None:
        yield kubernetes_document(monitor)
