"""One ServiceMonitor or PodMonitor per scraped service, plus the system's exporter monitor.

Every target gets a `service` label equal to the inventory's service name. Prometheus Operator
sets `service` to the Kubernetes Service name on ServiceMonitor targets but sets nothing on
PodMonitor targets; relabelling both the same way lets every rule and dashboard select a
workload by `{namespace, service}` whichever monitor scrapes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from obsbundle.documents import Document, kubernetes_document
from obsbundle.labels import EXPORTER_PORT, exporter_selector, exporter_service_name, object_labels
from obsbundle.model import DatastoreKind, Metrics, MonitorKind, Service, System
from obsbundle.monitors.argo_rollouts import generate_rollouts_monitor
from obsbundle.monitors.cert_manager import generate_cert_manager_monitor
from obsbundle.monitors.datastores import generate_datastore_monitors
from obsbundle.settings import Settings

if TYPE_CHECKING:
    from obsbundle.config import Config

API_VERSION = "monitoring.coreos.com/v1"

# Datastores the pool & queue exporter reads; a system with none of them needs no exporter.
EXPORTED_KINDS = frozenset({DatastoreKind.POSTGRES, DatastoreKind.RABBITMQ, DatastoreKind.REDIS})


def generate_monitors(system: System, config: Config) -> Iterator[Document]:
    """A monitor per scraped service (sorted by name), one per datastore exporter
    (monitors/datastores.py), the Argo Rollouts controller's (monitors/argo_rollouts.py),
    cert-manager's (monitors/cert_manager.py) and the pool & queue exporter's if needed."""
    for service in sorted(system.scraped_services, key=lambda s: s.name):
        yield kubernetes_document(workload_monitor(system, service, config.output))
    yield from generate_datastore_monitors(system, config.output)
    yield from generate_rollouts_monitor(system, config.output)
    yield from generate_cert_manager_monitor(system, config.output)
    if needs_exporter(system):
        yield kubernetes_document(exporter_monitor(system, config.output))


def needs_exporter(system: System) -> bool:
    return any(store.kind in EXPORTED_KINDS for store in system.datastores)


def workload_monitor(system: System, service: Service, settings: Settings) -> dict[str, Any]:
    """The ServiceMonitor or PodMonitor object of one service."""
    metrics = service.metrics
    assert metrics is not None, "only scraped services have monitors"
    endpoint = _endpoint(metrics, service.name)
    if metrics.monitor is MonitorKind.SERVICE:
        kind, endpoints_key = "ServiceMonitor", "endpoints"
    else:
        kind, endpoints_key = "PodMonitor", "podMetricsEndpoints"
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {
            "name": service.name,
            "namespace": service.namespace,
            "labels": {**object_labels(system, settings), "app.kubernetes.io/component": service.kind.value},
        },
        "spec": {
            "selector": {"matchLabels": service.labels_selector},
            "namespaceSelector": {"matchNames": [service.namespace]},
            endpoints_key: [endpoint],
        },
    }


def exporter_monitor(system: System, settings: Settings) -> dict[str, Any]:
    """The ServiceMonitor of the system's pool & queue exporter (deployed from the generated exporter/ folder)."""
    namespace = system.monitoring.namespace
    return {
        "apiVersion": API_VERSION,
        "kind": "ServiceMonitor",
        "metadata": {
            "name": exporter_service_name(system),
            "namespace": namespace,
            "labels": {**object_labels(system, settings), "app.kubernetes.io/component": "exporter"},
        },
        "spec": {
            "selector": {"matchLabels": exporter_selector(system)},
            "namespaceSelector": {"matchNames": [namespace]},
            "endpoints": [
                {
                    "port": EXPORTER_PORT,
                    "path": "/metrics",
                    "interval": "30s",
                    # The exporter answers within Prometheus's timeout header minus a margin, so a
                    # slow database costs one stale source, never a failed scrape.
                    "scrapeTimeout": "10s",
                    "relabelings": [_set_label("system", system.name)],
                }
            ],
        },
    }


def _endpoint(metrics: Metrics, service_name: str) -> dict[str, Any]:
    endpoint: dict[str, Any] = {}
    if isinstance(metrics.port, int):
        endpoint["portNumber"] = metrics.port
    else:
        endpoint["port"] = metrics.port
    endpoint.update(
        {
            "path": metrics.path,
            "scheme": metrics.scheme,
            "interval": metrics.interval,
            "scrapeTimeout": metrics.scrape_timeout,
            "relabelings": [_set_label("service", service_name)],
        }
    )
    return endpoint


def _set_label(name: str, value: str) -> dict[str, str]:
    return {"action": "replace", "targetLabel": name, "replacement": value}
