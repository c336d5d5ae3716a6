"""What the dashboards generator writes, and what the fleet's documents ask of its dashboards."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from obsbundle.bundle import dashboards_of, system_documents
from obsbundle.config import DEFAULT_CONFIG, build_config
from obsbundle.dashboards import generate_dashboards
from obsbundle.dashboards.alerts import AlertIndex
from obsbundle.dashboards.walk import panels
from obsbundle.documents import Document, Format
from obsbundle.links import Board, PanelId, dashboard_uid
from obsbundle.model import Inventory, System
from obsbundle.render import json_text, render
from obsbundle.rules import alert_groups, rule_groups
from obsbundle.settings import OutputFormat
from tests.dashboards.variants import pgbouncer_system

# Every service, worker, job and node pool FLEET.md names, by system.
FLEET_SERVICES = {
    "ecoeco": ["auth-service", "my-service", "scan-service", "character-service", "location-service",
               "info-service", "chat-service", "storage-worker", "ai-worker"],
    "aegis": ["aegis-api", "user-service", "db-migration", "postgres-backup"],
    "logpilot": ["logpilot-all", "logpilot-rest", "logpilot-grpc"],
}
FLEET_POOLS = {
    "ecoeco": ["master", "auth", "my", "scan", "character", "location", "info", "chat", "storage", "ai",
               "postgresql", "redis", "rabbitmq", "monitoring"],
    "aegis": ["master", "worker", "data"],
    "logpilot": ["general"],
}
KUBECTL_ANNOTATION_LIMIT = 262_144
"""kubectl apply (client side) keeps the whole object in an annotation of at most 256 KiB."""


def _dashboard_documents(system: System) -> list[Document]:
    alerts = AlertIndex.of(alert_groups(system, DEFAULT_CONFIG.rules))
    return list(generate_dashboards(system, DEFAULT_CONFIG, alerts))


def _system(inventory: Inventory, name: str) -> System:
    return next(system for system in inventory.systems if system.name == name)


def _by_title(boards: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {board["title"]: board for board in boards}


def _panel_titles(board: dict[str, Any]) -> list[str]:
    return [panel["title"] for panel in panels(board)]


def _ids(board: dict[str, Any]) -> set[int]:
    return {panel["id"] for panel in panels(board)}


@pytest.mark.parametrize("system_name", sorted(FLEET_SERVICES))
def test_every_service_and_node_pool_of_the_fleet_has_a_dashboard_named_for_it(
    default_inventory: Inventory, system_name: str
) -> None:
    titles = {board["title"] for board in dashboards_of(_system(default_inventory, system_name), DEFAULT_CONFIG)}
    for service in FLEET_SERVICES[system_name]:
        assert f"{system_name} / {service}" in titles
    for pool in FLEET_POOLS[system_name]:
        assert f"{system_name} / node pool {pool}" in titles


def test_each_dashboard_is_a_json_file_and_a_config_map_the_grafana_sidecar_files_in_the_system_folder(
    default_inventory: Inventory,
) -> None:
    system = _system(default_inventory, "aegis")
    documents = {document.path: document for document in _dashboard_documents(system)}
    boards = dashboards_of(system, DEFAULT_CONFIG)
    assert documents["dashboards/provider.yaml"].content["providers"][0]["folder"] == "aegis"
    for board in boards:
        file = documents[f"dashboards/{board['uid']}.json"]
        assert file.format is Format.JSON and not file.kubernetes
        config_map = documents[f"{board['uid']}-dashboard-configmap.yaml"]
        assert config_map.kubernetes
        metadata = config_map.content["metadata"]
        assert metadata["namespace"] == system.monitoring.namespace
        assert metadata["labels"]["grafana_dashboard"] == "1"
        assert metadata["labels"]["release"] == "kube-prometheus-stack"
        assert metadata["annotations"] == {"grafana_folder": "aegis"}
        (data,) = yaml.safe_load(render(config_map))["data"].values()
        assert data == render(file).decode()
    assert len(documents) == 2 * len(boards) + 1


def test_config_maps_survive_yaml_and_fit_the_kubectl_apply_annotation(default_inventory: Inventory) -> None:
    for system in default_inventory.systems:
        for document in _dashboard_documents(system):
            if document.kubernetes:
                rendered = render(document)
                assert len(rendered) < KUBECTL_ANNOTATION_LIMIT, document.path
                loaded = yaml.safe_load(rendered)
                assert loaded["data"] == {key: json_text(text) for key, text in document.content["data"].items()}


def test_plain_prometheus_output_keeps_the_json_files_and_drops_the_config_maps(default_inventory: Inventory) -> None:
    system = _system(default_inventory, "logpilot")
    paths = [d.path for d in system_documents(system, build_config(OutputFormat.PROMETHEUS))]
    assert "dashboards/provider.yaml" in paths
    assert "dashboards/logpilot-overview.json" in paths
    assert not [path for path in paths if path.endswith("dashboard-configmap.yaml")]
    operator = [d.path for d in system_documents(system, DEFAULT_CONFIG)]
    kustomization = next(d for d in system_documents(system, DEFAULT_CONFIG) if d.path == "kustomization.yaml")
    assert "logpilot-overview-dashboard-configmap.yaml" in kustomization.content["resources"]
    assert "logpilot-overview-dashboard-configmap.yaml" in operator


def test_generating_twice_gives_the_same_bytes(default_inventory: Inventory) -> None:
    def rendered() -> dict[str, bytes]:
        return {
            f"{system.name}/{document.path}": render(document)
            for system in default_inventory.systems
            for document in _dashboard_documents(system)
        }

    assert rendered() == rendered()


def test_uids_are_the_ones_alerts_link_to(default_inventory: Inventory) -> None:
    for system in default_inventory.systems:
        uids = {board["uid"] for board in dashboards_of(system, DEFAULT_CONFIG)}
        assert dashboard_uid(system, Board.OVERVIEW) in uids
        assert dashboard_uid(system, Board.SLOS) in uids
        for service in system.services:
            assert dashboard_uid(system, Board.SERVICE, service.name) in uids
        for pool in system.node_pools:
            assert dashboard_uid(system, Board.NODE_POOL, pool.name) in uids


def test_every_panel_id_alerts_link_to_is_on_its_dashboard(default_inventory: Inventory) -> None:
    ecoeco, aegis = _system(default_inventory, "ecoeco"), _system(default_inventory, "aegis")
    bouncer = pgbouncer_system()

    def ids(system: System, board: Board, entity: str | None = None) -> set[int]:
        uid = dashboard_uid(system, board, entity)
        return _ids(next(b for b in dashboards_of(system, DEFAULT_CONFIG) if b["uid"] == uid))

    expected: list[tuple[set[int], list[PanelId]]] = [
        (ids(ecoeco, Board.SERVICE, "scan-service"), [PanelId.SERVICE_REQUEST_RATE, PanelId.SERVICE_ERROR_RATIO,
                                                      PanelId.SERVICE_LATENCY, PanelId.SERVICE_TARGETS_UP,
                                                      PanelId.SERVICE_CPU, PanelId.SERVICE_MEMORY,
                                                      PanelId.SERVICE_RESTARTS, PanelId.SERVICE_REPLICAS]),
        (ids(ecoeco, Board.SERVICE, "scan-service"), [PanelId.SERVICE_SLO_BUDGET, PanelId.SERVICE_SLO_BURN_RATE]),
        (ids(ecoeco, Board.SERVICE, "scan-service"), [PanelId.SERVICE_CPU_THROTTLING, PanelId.SERVICE_CONTAINERS]),
        (ids(aegis, Board.SERVICE, "postgres-backup"), [PanelId.SERVICE_PVC_USAGE, PanelId.SERVICE_JOBS]),
        (ids(ecoeco, Board.NODE_POOL, "scan"), [PanelId.POOL_NODES_READY, PanelId.POOL_CPU, PanelId.POOL_MEMORY,
                                                PanelId.POOL_DISK, PanelId.POOL_NETWORK, PanelId.POOL_CLOCK,
                                                PanelId.POOL_PRESSURE, PanelId.POOL_INODES]),
        (ids(ecoeco, Board.NODE_POOL, "monitoring"), [PanelId.POOL_VOLUMES]),
        (ids(ecoeco, Board.SERVICE, "location-service"), [PanelId.DEPENDENCY_SUCCESS, PanelId.DEPENDENCY_DURATION,
                                                          PanelId.DEPENDENCY_CERTIFICATE]),
        (ids(ecoeco, Board.DATABASE), [PanelId.DB_CONNECTIONS, PanelId.DB_WAITING, PanelId.DB_OLDEST_TRANSACTION,
                                       PanelId.DB_EXPORTER_UP]),
        (ids(bouncer, Board.DATABASE), [PanelId.DB_PGBOUNCER_WAITING, PanelId.DB_PGBOUNCER_MAXWAIT]),
        (ids(aegis, Board.DATABASE), [PanelId.DB_VOLUME_USAGE]),
        (ids(aegis, Board.DATABASE), [PanelId.DB_DATASTORE_EXPORTER_UP, PanelId.DB_POSTGRES_UP, PanelId.DB_DEADLOCKS,
                                      PanelId.DB_ROLLBACKS, PanelId.DB_CACHE_HIT, PanelId.DB_DEAD_TUPLES,
                                      PanelId.DB_XID_AGE, PanelId.DB_REPLICATION_LAG, PanelId.DB_REDIS_UP,
                                      PanelId.DB_REDIS_MEMORY, PanelId.DB_REDIS_HIT_RATIO, PanelId.DB_REDIS_EVICTIONS,
                                      PanelId.DB_REDIS_CLIENTS, PanelId.DB_REDIS_REPLICATION]),
        (ids(ecoeco, Board.QUEUES), [PanelId.QUEUE_BACKLOG, PanelId.QUEUE_OLDEST_AGE, PanelId.QUEUE_CONSUMERS]),
        (ids(aegis, Board.QUEUES), [PanelId.QUEUE_KAFKA_LAG]),
        (ids(ecoeco, Board.QUEUES), [PanelId.QUEUE_RABBITMQ_NODES, PanelId.QUEUE_RABBITMQ_ALARMS,
                                    PanelId.QUEUE_RABBITMQ_MEMORY, PanelId.QUEUE_RABBITMQ_FDS,
                                    PanelId.QUEUE_RABBITMQ_UNROUTABLE]),
        (ids(aegis, Board.QUEUES), [PanelId.QUEUE_KAFKA_BROKERS, PanelId.QUEUE_KAFKA_PARTITIONS]),
        (ids(ecoeco, Board.SLOS), [PanelId.SLO_BUDGET, PanelId.SLO_BURN_RATE]),
        (ids(ecoeco, Board.GITOPS), [PanelId.GITOPS_SYNC, PanelId.GITOPS_HEALTH]),
        (ids(ecoeco, Board.PLATFORM), [panel_id for panel_id in PanelId if panel_id.name.startswith("PLATFORM_")]),
        (ids(ecoeco, Board.OVERVIEW), [PanelId.OVERVIEW_ALERTS, PanelId.OVERVIEW_NODES]),
    ]
    covered: set[int] = set()
    for found, wanted in expected:
        assert {int(panel_id) for panel_id in wanted} <= found
        covered |= {int(panel_id) for panel_id in wanted}
    assert covered == {int(panel_id) for panel_id in PanelId}, "a PanelId no dashboard carries"


def test_pgbouncer_panels_appear_only_where_a_pgbouncer_is_exported(default_inventory: Inventory) -> None:
    for system in default_inventory.systems:
        for board in dashboards_of(system, DEFAULT_CONFIG):
            assert PanelId.DB_PGBOUNCER_WAITING not in _ids(board)
    database = _by_title(dashboards_of(pgbouncer_system(), DEFAULT_CONFIG))["bouncer / Database"]
    assert {"Clients waiting", "Longest client wait"} <= set(_panel_titles(database))


def test_ecoeco_has_its_five_stated_dashboards_with_what_they_show(default_inventory: Inventory) -> None:
    boards = _by_title(dashboards_of(_system(default_inventory, "ecoeco"), DEFAULT_CONFIG))
    overview = _panel_titles(boards["ecoeco / Cluster overview"])
    assert {"Node state", "CPU utilisation", "Memory utilisation", "Pods per node pool", "Firing alerts"} <= set(
        overview)
    api = boards["ecoeco / API performance"]
    rows = [panel["title"] for panel in panels(api) if panel["type"] == "row"]
    assert rows == ["All APIs", *FLEET_SERVICES["ecoeco"][:7]]
    assert {"Request rate", "Latency P50 / P95 / P99", "Error ratio (5xx)"} <= set(_panel_titles(api))
    nodes = _panel_titles(boards["ecoeco / Node pools"])
    assert {"CPU utilisation", "Memory utilisation", "Disk usage", "Network"} <= set(nodes)
    database = _panel_titles(boards["ecoeco / Database"])
    assert {"Connections used / available", "Mean query duration", "Cache hit ratio", "Redis cache hit ratio"} <= set(
        database)
    gitops = _panel_titles(boards["ecoeco / GitOps"])
    assert {"Sync status", "Application health", "ArgoCD syncs", "Rollouts"} <= set(gitops)


def test_aegis_user_service_dashboard_has_the_guides_tags_and_panels(default_inventory: Inventory) -> None:
    board = _by_title(dashboards_of(_system(default_inventory, "aegis"), DEFAULT_CONFIG))["aegis / user-service"]
    assert {"aegis", "user-service"} <= set(board["tags"])
    by_title = {panel["title"]: panel for panel in panels(board)}
    assert "sum by (method, handler)" in by_title["Requests by method and endpoint"]["targets"][0]["expr"]
    assert "P{{quantile}}" in by_title["Latency P50 / P95 / P99"]["targets"][0]["legendFormat"]
    per_second = by_title["5xx rate"]
    assert per_second["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] == 0.1


def test_logpilot_memory_panel_draws_its_alert_threshold(default_inventory: Inventory) -> None:
    board = _by_title(dashboards_of(_system(default_inventory, "logpilot"), DEFAULT_CONFIG))["logpilot / logpilot-all"]
    ratio = next(panel for panel in panels(board) if panel["title"] == "Memory / limit")
    assert ratio["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] == 0.8
    assert ratio["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "dashed"


def test_every_link_between_dashboards_leads_to_a_generated_dashboard(
    fleet_dashboards: dict[str, list[dict[str, Any]]], default_inventory: Inventory
) -> None:
    for system in [*default_inventory.systems, pgbouncer_system()]:
        boards = fleet_dashboards[system.name]
        uids = {board["uid"] for board in boards}
        base = re.escape(system.monitoring.grafana_url.rstrip("/"))
        for board in boards:
            text = json.dumps(board)
            for uid in re.findall(base + r"/d/([A-Za-z0-9_-]+)", text):
                assert uid in uids, f"{board['title']} links to {uid}, which is not generated"


def test_the_generator_is_registered_with_the_bundle(default_inventory: Inventory) -> None:
    system = _system(default_inventory, "ecoeco")
    paths = {document.path for document in system_documents(system, DEFAULT_CONFIG)}
    generated: list[Document] = list(_dashboard_documents(system))
    assert {document.path for document in generated} <= paths


def test_every_alert_links_to_a_panel_that_exists_on_a_generated_dashboard(
    fleet_dashboards: dict[str, list[dict[str, Any]]], default_inventory: Inventory
) -> None:
    checked = 0
    for system in [*default_inventory.systems, pgbouncer_system()]:
        panel_ids = {board["uid"]: _ids(board) for board in fleet_dashboards[system.name]}
        for group in rule_groups(system, DEFAULT_CONFIG.rules):
            for alert in group.alerts:
                link = urlsplit(alert.dashboard_url)
                uid = link.path.rsplit("/d/", 1)[-1]
                assert uid in panel_ids, f"{alert.name} ({alert.entity}) links to {uid}, which is not generated"
                panel = int(parse_qs(link.query)["viewPanel"][0])
                assert panel in panel_ids[uid], f"{alert.name} ({alert.entity}) opens panel {panel} of {uid}"
                checked += 1
    assert checked > 100


def test_service_and_pool_dashboards_list_their_alerts_with_runbooks(default_inventory: Inventory) -> None:
    boards = _by_title(dashboards_of(_system(default_inventory, "aegis"), DEFAULT_CONFIG))
    service = next(p for p in panels(boards["aegis / user-service"]) if p["title"] == "Alerts and runbooks")
    runbook = "[ApiHighErrorRate](https://runbooks.aegis.example.com/aegis/ApiHighErrorRate)"
    assert runbook in service["options"]["content"]
    pool = next(p for p in panels(boards["aegis / node pool worker"]) if p["title"] == "Alerts and runbooks")
    assert "NodePoolDown" in pool["options"]["content"]
    assert "ApiHighErrorRate" not in pool["options"]["content"]
