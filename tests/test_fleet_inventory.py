"""The default inventory describes every service, worker, job, datastore, queue and pool of FLEET.md."""

from __future__ import annotations

import pytest

from obsbundle.model import Inventory, MonitorKind, WorkloadKind

# Named in ../shared/FLEET.md (from the source documents); the inventory must hold every one.
FLEET = {
    "ecoeco": {
        "node_pools": {
            "master", "auth", "my", "scan", "character", "location", "info", "chat", "storage", "ai",
            "postgresql", "redis", "rabbitmq", "monitoring",
        },
        "api": {
            "auth-service", "my-service", "scan-service", "character-service", "location-service",
            "info-service", "chat-service",
        },
        "worker": {"storage-worker", "ai-worker"},
        "datastores": {"postgresql", "redis", "rabbitmq"},
    },
    "aegis": {
        "node_pools": {"master", "worker", "data"},
        "api": {"aegis-api", "user-service"},
        "job": {"db-migration"},
        "cronjob": {"postgres-backup"},
        "datastore_kinds": {"postgres", "redis", "kafka"},
    },
    "logpilot": {
        "node_pools": {"general"},
        "api": {"logpilot-all", "logpilot-rest", "logpilot-grpc"},
        "datastore_kinds": {"sqlite"},
    },
}


def test_the_default_inventory_holds_exactly_the_three_platforms(default_inventory: Inventory) -> None:
    assert [system.name for system in default_inventory.systems] == ["aegis", "ecoeco", "logpilot"]


@pytest.mark.parametrize("system_name", sorted(FLEET))
def test_every_fleet_service_pool_and_datastore_is_in_the_inventory(
    default_inventory: Inventory, system_name: str
) -> None:
    system = next(s for s in default_inventory.systems if s.name == system_name)
    expected = FLEET[system_name]
    assert expected["node_pools"] <= {pool.name for pool in system.node_pools}
    for kind in ("api", "worker", "job", "cronjob"):
        names = {service.name for service in system.services if service.kind is WorkloadKind(kind)}
        assert expected.get(kind, set()) <= names, f"{system_name}: missing {kind}s"
    if "datastores" in expected:
        assert expected["datastores"] <= {store.name for store in system.datastores}
    if "datastore_kinds" in expected:
        assert expected["datastore_kinds"] <= {store.kind.value for store in system.datastores}


def test_ecoeco_has_fourteen_single_node_pools_and_every_service_is_pinned_to_its_own(
    default_inventory: Inventory,
) -> None:
    ecoeco = next(s for s in default_inventory.systems if s.name == "ecoeco")
    assert len(ecoeco.node_pools) == 14
    assert all(pool.min_nodes == pool.max_nodes == 1 for pool in ecoeco.node_pools)
    pools = [service.node_pool for service in ecoeco.services]
    assert len(pools) == len(set(pools)) == 9


def test_stated_thresholds_and_targets_are_carried_into_the_inventory(default_inventory: Inventory) -> None:
    systems = {system.name: system for system in default_inventory.systems}
    scan = systems["ecoeco"].service("scan-service")
    assert scan.autoscaling is not None and (scan.autoscaling.min, scan.autoscaling.max) == (2, 10)
    assert scan.latency_alert == "2s" and str(scan.error_rate_alert) == "0.05"
    assert {(slo.name, str(slo.objective)) for slo in scan.slos} == {("availability", "99.5"), ("latency", "95")}
    assert str(systems["ecoeco"].datastore("postgresql").max_connections_alert) == "0.8"
    user = systems["aegis"].service("user-service")
    assert str(user.errors_per_second_alert) == "0.1" and user.latency_alert == "1s"
    assert systems["aegis"].service("postgres-backup").schedule == "0 2 * * *"
    assert systems["aegis"].service("db-migration").backoff_limit == 3
    assert str(systems["logpilot"].service("logpilot-all").memory_limit_alert) == "0.8"
    workers_and_unnamed = {
        service.name
        for system in default_inventory.systems
        for service in system.scraped_services
        if service.metrics is not None and service.metrics.monitor is MonitorKind.POD
    }
    assert {"storage-worker", "ai-worker", "aegis-api"} <= workers_and_unnamed
