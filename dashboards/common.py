"""What every dashboard of a system shares: variables, tags, links to its sibling dashboards."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from obsbundle.dashboards.config import DashboardConfig
from obsbundle.dashboards.panels import link, tag_links
from obsbundle.dashboards.variables import cluster_variable, datasource_variable, namespace_variable
from obsbundle.links import Board, dashboard_url
from obsbundle.model import DatastoreKind, Instrumentation, Service, System

PRODUCT_TAG = "obsbundle"


def variables(system: System, config: DashboardConfig, namespaces: Iterable[str] = ()) -> list[dict[str, Any]]:
    """`datasource` and `cluster`, plus `namespace` over `namespaces` when the dashboard has any."""
    chosen = sorted(set(namespaces))
    found: list[dict[str, Any]] = [datasource_variable(), cluster_variable(system.cluster, config.exporters)]
    if chosen:
        found.append(namespace_variable(chosen, config.exporters))
    return found


def tags(system: System, *extra: str) -> list[str]:
    """The system's name first (the folder and the drop-down of sibling dashboards), then the rest."""
    return [system.name, *extra, PRODUCT_TAG]


def sibling_links(system: System, *extra: Any) -> list[Any]:
    """A drop-down of the system's dashboards, then `extra` links."""
    return [tag_links(system.name, f"{system.name} dashboards"), *extra]


def board_link(system: System, title: str, board: Board, entity: str | None = None) -> Any:
    return link(title, dashboard_url(system, board, entity))


def runbook_index(system: System) -> str:
    """The runbook URL pattern up to `{alert}`: the folder that holds the system's runbooks."""
    pattern = system.monitoring.runbook_url.replace("{system}", system.name)
    return pattern.split("{alert}", 1)[0]


def api_services(system: System) -> list[Service]:
    """APIs with standard request metrics: the rules record RED series for these only (a custom
    instrumentation has no request counter the rules could rate)."""
    return [
        service
        for service in system.services
        if service.has_http_api
        and service.metrics is not None
        and service.metrics.instrumentation is not Instrumentation.CUSTOM
    ]


def has_database_board(system: System) -> bool:
    """Postgres or Redis to read from the exporter, or a datastore volume to watch."""
    return any(
        store.kind in (DatastoreKind.POSTGRES, DatastoreKind.REDIS) or store.volume for store in system.datastores
    )


def has_queue_board(system: System) -> bool:
    """Queues, or a RabbitMQ or Kafka whose exporter is scraped (its health alerts link there)."""
    return bool(system.queues) or any(
        store.metrics is not None and store.kind in (DatastoreKind.RABBITMQ, DatastoreKind.KAFKA)
        for store in system.datastores
    )


def has_gitops_board(system: System) -> bool:
    return system.platform.argocd_namespace is not None


def has_slo_board(system: System) -> bool:
    return any(service.slos for service in system.services)
