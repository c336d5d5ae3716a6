"""The ServiceMonitor of cert-manager's controller, whose metrics describe every Certificate.

Neither kube-prometheus-stack nor kube-prometheus scrapes cert-manager, and its Helm chart leaves
its own ServiceMonitor off (cert-manager/cert-manager@2d0d7f7f: deploy/charts/cert-manager/values.yaml
`prometheus.servicemonitor.enabled: false`, `honorLabels: false`), so obsbundle writes one for
systems that name `platform.cert_manager_namespace`. The chart always creates the controller's
metrics Service (templates/service.yaml, while `prometheus.enabled`, the default): port
`http-metrics` (9402), labels `app.kubernetes.io/name: cert-manager` and
`app.kubernetes.io/component: controller`; its name is the release's, so the monitor takes `job`
from the `app.kubernetes.io/name` label, as the chart's own monitor does (`jobLabel`).

Each series carries the Certificate's `namespace` and `name` (pkg/metrics/certificates_test.go);
`honorLabels` keeps that `namespace` rather than renaming it `exported_namespace` under the
controller's, so that a certificate's alerts name the namespace it lives in. Whoever enables the
chart's monitor instead must set `prometheus.servicemonitor.honorLabels: true` for the same labels,
and must not run both: two monitors of one target store every series twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from obsbundle.documents import Document, kubernetes_document
from obsbundle.labels import object_labels
from obsbundle.model import System
from obsbundle.settings import Settings

API_VERSION = "monitoring.coreos.com/v1"
NAME = "cert-manager"
"""The chart's name: the Service's `app.kubernetes.io/name`, and so the `job` of its series."""
METRICS_PORT = "http-metrics"
SERVICE_SELECTOR = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/component": "controller"}
JOB_LABEL = "app.kubernetes.io/name"


def cert_manager_monitor(system: System, settings: Settings) -> dict[str, Any] | None:
    """The controller's ServiceMonitor, or None when the system names no cert-manager namespace."""
    namespace = system.platform.cert_manager_namespace
    if namespace is None:
        return None
    return {
        "apiVersion": API_VERSION,
        "kind": "ServiceMonitor",
        "metadata": {
            "name": NAME,
            "namespace": namespace,
            "labels": {**object_labels(system, settings), "app.kubernetes.io/component": NAME},
        },
        "spec": {
            "jobLabel": JOB_LABEL,
            "selector": {"matchLabels": dict(SERVICE_SELECTOR)},
            "namespaceSelector": {"matchNames": [namespace]},
            "endpoints": [
                {"port": METRICS_PORT, "path": "/metrics", "interval": "60s", "honorLabels": True},
            ],
        },
    }


def generate_cert_manager_monitor(system: System, settings: Settings) -> Iterator[Document]:
    """The controller's ServiceMonitor, when the system runs cert-manager."""
    monitor = cert_manager_monitor(system, settings)
    if monitor is not None:
        yield kubernetes_document(monitor)
