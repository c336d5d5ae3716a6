"""Labels and names shared by every generated Kubernetes object."""

from __future__ import annotations

from obsbundle.model import System
from obsbundle.settings import Settings

EXPORTER_NAME = "obsbundle-exporter"
EXPORTER_PORT = "metrics"


def object_labels(system: System, settings: Settings) -> dict[str, str]:
    """managed-by, part-of and the selector labels that Prometheus Operator looks for."""
    key, value = settings.managed_by_label
    labels = {key: value, "app.kubernetes.io/part-of": system.name}
    labels.update(system.monitoring.selector_labels)
    return labels


def exporter_selector(system: System) -> dict[str, str]:
    """Labels on the system's pool & queue exporter Service and pods (see obsbundle.exporter_manifests)."""
    return {"app.kubernetes.io/name": EXPORTER_NAME, "app.kubernetes.io/instance": system.name}


def exporter_service_name(system: System) -> str:
    return f"{system.name}-{EXPORTER_NAME}"
