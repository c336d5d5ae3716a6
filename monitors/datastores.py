"""One ServiceMonitor or PodMonitor per datastore whose standard exporter the inventory names.

The exporters are postgres_exporter, redis_exporter and kafka_exporter (as the Bitnami charts'
metrics sidecars deploy them, behind a `<name>-metrics` Service) and RabbitMQ's own
rabbitmq_prometheus endpoint. Each monitor lives in the datastore's namespace and sets `service`
to the datastore's name on every target, whatever the Service is called and whether or not a
Service exists (a PodMonitor sets no `service` at all): the health rules and the database and
queue dashboards select a datastore's exporter series by `{namespace, service=<datastore>}`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from obsbundle import naming
from obsbundle.documents import Document, kubernetes_document
from obsbundle.labels import object_labels
from obsbundle.model import Datastore, ExporterEndpoint, MonitorKind, System
from obsbundle.settings import Settings

API_VERSION = "monitoring.coreos.com/v1"

MONITOR_SUFFIX = "metrics"
"""The monitor is named `<datastore>-metrics`, as the Bitnami charts name the exporter's Service;
the suffix keeps it apart from a service's monitor in the same output folder."""


def exported_datastores(system: System) -> list[Datastore]:
    """The system's datastores that have a standard exporter, sorted by name."""
    return sorted((store for store in system.datastores if store.metrics is not None), key=lambda s: s.name)


def generate_datastore_monitors(system: System, settings: Settings) -> Iterator[Document]:
    """A monitor per datastore with `metrics`, sorted by the datastore's name."""
    for store in exported_datastores(system):
        yield kubernetes_document(datastore_monitor(system, store, settings))


def datastore_target_labels(store: Datastore) -> dict[str, str]:
    """The labels that select every series of a datastore's exporter: its namespace and
    `service=<datastore name>` (the contract its monitor keeps)."""
    return {naming.NAMESPACE_LABEL: store.namespace, naming.SERVICE_LABEL: store.name}


def datastore_monitor_name(store: Datastore) -> str:
    return f"{store.name}-{MONITOR_SUFFIX}"


def datastore_selector(store: Datastore) -> dict[str, str]:
    """The labels that select the exporter's Service (or pods): the inventory's, or {app: <name>}."""
    assert store.metrics is not None, "only datastores with an exporter have monitors"
    return dict(store.metrics.selector) if store.metrics.selector else {"app": store.name}


def datastore_monitor(system: System, store: Datastore, settings: Settings) -> dict[str, Any]:
    """The ServiceMonitor (or PodMonitor, with `monitor: pod`) of one datastore's exporter."""
    endpoint_spec = store.metrics
    assert endpoint_spec is not None, "only datastores with an exporter have monitors"
    if endpoint_spec.monitor is MonitorKind.SERVICE:
        kind, endpoints_key = "ServiceMonitor", "endpoints"
    else:
        kind, endpoints_key = "PodMonitor", "podMetricsEndpoints"
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {
            "name": datastore_monitor_name(store),
            "namespace": store.namespace,
            "labels": {
                **object_labels(system, settings),
                "app.kubernetes.io/component": f"{store.kind.value}-metrics",
            },
        },
        "spec": {
            "selector": {"matchLabels": datastore_selector(store)},
            "namespaceSelector": {"matchNames": [store.namespace]},
            endpoints_key: [_endpoint(endpoint_spec, store.name)],
        },
    }


def _endpoint(metrics: ExporterEndpoint, datastore: str) -> dict[str, Any]:
    endpoint: dict[str, Any] = {}
    if isinstance(metrics.port, int):
        endpoint["portNumber"] = metrics.port
    else:
        endpoint["port"] = metrics.port
    endpoint.update(
        {
            "path": metrics.path,
            "interval": metrics.interval,
            "scrapeTimeout": metrics.scrape_timeout,
            # A fixed `service`, not the Service's own name (`<name>-metrics`, or none for a
            # PodMonitor): the contract the health rules select by.
            "relabelings": [{"action": "replace", "targetLabel": naming.SERVICE_LABEL, "replacement": datastore}],
        }
    )
    return endpoint
