"""The dashboards of a system as output documents: JSON files for Grafana's file provisioning with
their provider file, and one ConfigMap per dashboard for the Grafana sidecar of kube-prometheus-stack."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from obsbundle.dashboards.alerts import AlertIndex
from obsbundle.dashboards.api import api_dashboard
from obsbundle.dashboards.clusters import for_ruler
from obsbundle.dashboards.common import (
    api_services,
    has_database_board,
    has_gitops_board,
    has_queue_board,
    has_slo_board,
)
from obsbundle.dashboards.config import DashboardConfig
from obsbundle.dashboards.database import database_dashboard
from obsbundle.dashboards.gitops import gitops_dashboard
from obsbundle.dashboards.node_pools import node_pool_dashboard, node_pools_dashboard
from obsbundle.dashboards.overview import overview
from obsbundle.dashboards.platform import has_platform_board, platform_dashboard
from obsbundle.dashboards.queues import queues_dashboard
from obsbundle.dashboards.service import service_dashboard
from obsbundle.dashboards.slos import slos_dashboard
from obsbundle.documents import Document, Format, JsonText, kubernetes_document
from obsbundle.labels import object_labels
from obsbundle.model import System
from obsbundle.settings import Ruler, Settings

if TYPE_CHECKING:  # obsbundle.config imports this package's config module
    from obsbundle.config import Config

FOLDER = "dashboards"
SIDECAR_LABEL = ("grafana_dashboard", "1")
"""The label kube-prometheus-stack's Grafana sidecar selects dashboard ConfigMaps by."""
FOLDER_ANNOTATION = "grafana_folder"
"""The annotation the sidecar's `folderAnnotation` reads to file a dashboard into a folder."""


def system_dashboards(
    system: System, config: DashboardConfig, alerts: AlertIndex, ruler: Ruler = Ruler.LOCAL
) -> list[dict[str, Any]]:
    """Every dashboard of a system as Grafana JSON: the system-wide ones, then one per service and per
    pool, these with the `alerts` about them (see `obsbundle.bundle.dashboards_of` for both built);
    for a global `ruler`, over a datasource that holds many clusters, each kept apart."""
    boards = [overview(system, config, ruler)]
    if api_services(system):
        boards.append(api_dashboard(system, config))
    if system.node_pools:
        boards.append(node_pools_dashboard(system, config))
    if has_database_board(system):
        boards.append(database_dashboard(system, config))
    if has_queue_board(system):
        boards.append(queues_dashboard(system, config))
    if has_slo_board(system):
        boards.append(slos_dashboard(system, config))
    if has_gitops_board(system):
        boards.append(gitops_dashboard(system, config))
    if has_platform_board(system):
        boards.append(platform_dashboard(system, config))
    boards += [
        service_dashboard(system, service, config, alerts.about(namespace=service.namespace, service=service.name))
        for service in sorted(system.services, key=_name)
    ]
    boards += [
        node_pool_dashboard(system, pool, config, alerts.about_pool(pool.name))
        for pool in sorted(system.node_pools, key=_name)
    ]
    return [for_ruler(board, system, config, ruler) for board in boards]


def _name(entity: Any) -> str:
    return str(entity.name)


def generate_dashboards(system: System, config: Config, alerts: AlertIndex) -> Iterator[Document]:
    """`dashboards/<uid>.json` and a ConfigMap for each dashboard, then `dashboards/provider.yaml`;
    `alerts` are the system's alerts, listed on the dashboards of what they are about."""
    for board in system_dashboards(system, config.dashboards, alerts, config.output.ruler):
        encoded = JsonText(board)  # encoded once: the file and the ConfigMap hold the same bytes
        yield Document(path=f"{FOLDER}/{board['uid']}.json", content=encoded, format=Format.JSON)
        yield kubernetes_document(config_map(system, config.output, encoded))
    yield Document(path=f"{FOLDER}/provider.yaml", content=provider(system, config.dashboards))


def config_map(system: System, settings: Settings, board: JsonText) -> dict[str, Any]:
    """A ConfigMap holding one dashboard as its JSON text, labelled for the sidecar and filed in
    the system's folder."""
    key, value = SIDECAR_LABEL
    uid = board.data["uid"]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"{uid}-dashboard",
            "namespace": system.monitoring.namespace,
            "labels": {**object_labels(system, settings), "app.kubernetes.io/component": "dashboard", key: value},
            "annotations": {FOLDER_ANNOTATION: system.name},
        },
        "data": {f"{uid}.json": board},
    }


def provider(system: System, config: DashboardConfig) -> dict[str, Any]:
    """Grafana's provisioning file for the JSON files, mounted at `<provisioning_path>/<system>`."""
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": f"obsbundle-{system.name}",
                "orgId": 1,
                "folder": system.name,
                "type": "file",
                # Generated dashboards are replaced, not edited: the inventory is their source.
                "disableDeletion": False,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 60,
                "options": {"path": f"{config.provisioning_path}/{system.name}", "foldersFromFilesStructure": False},
            }
        ],
    }
