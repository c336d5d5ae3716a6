"""ServiceMonitors and PodMonitors: one per scraped workload, valid against the real CRDs."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from obsbundle.config import DEFAULT_CONFIG
from obsbundle.loader import load_inventory
from obsbundle.model import Inventory
from obsbundle.monitors import generate_monitors
from obsbundle.render import render
from tests.conftest import FIXTURES
from tests.golden import assert_matches_golden
from tests.support.crds import is_monitoring_object, validation_errors

FLEET_SCRAPED = {
    "ecoeco": {
        "auth-service": "ServiceMonitor", "my-service": "ServiceMonitor", "scan-service": "ServiceMonitor",
        "character-service": "ServiceMonitor", "location-service": "ServiceMonitor",
        "info-service": "ServiceMonitor", "chat-service": "ServiceMonitor",
        "storage-worker": "PodMonitor", "ai-worker": "PodMonitor",
    },
    "aegis": {"aegis-api": "PodMonitor", "user-service": "ServiceMonitor"},
    "logpilot": {"logpilot-all": "PodMonitor", "logpilot-rest": "PodMonitor", "logpilot-grpc": "PodMonitor"},
}


def _objects(output: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    return {
        path: yaml.safe_load(data)
        for path, data in output.items()
        if path.endswith(".yaml") and path.count("/") == 1
    }


@pytest.mark.parametrize("system", sorted(FLEET_SCRAPED))
def test_every_fleet_service_and_worker_has_the_right_kind_of_monitor(
    default_output: dict[str, bytes], system: str
) -> None:
    for service, kind in FLEET_SCRAPED[system].items():
        path = f"{system}/{service}-{kind.lower()}.yaml"
        assert path in default_output, f"no {kind} for {service}"
        monitor = yaml.safe_load(default_output[path])
        assert monitor["kind"] == kind


def test_every_generated_monitoring_object_passes_the_crd_schema(default_output: dict[str, bytes]) -> None:
    checked = 0
    for path, obj in _objects(default_output).items():
        if is_monitoring_object(obj):
            assert validation_errors(obj) == [], path
            checked += 1
    assert checked >= 16  # 14 workload monitors and 2 exporter monitors, plus rules and routing objects


def test_the_schema_check_catches_a_broken_monitor(default_output: dict[str, bytes]) -> None:
    monitor = yaml.safe_load(default_output["aegis/user-service-servicemonitor.yaml"])
    monitor["spec"]["endpoints"][0]["scheme"] = "gopher"
    del monitor["spec"]["selector"]
    errors = validation_errors(monitor)
    assert any("scheme" in error for error in errors)
    assert any("selector" in error for error in errors)


def test_objects_carry_managed_by_and_the_selector_label(default_output: dict[str, bytes]) -> None:
    for path, obj in _objects(default_output).items():
        if is_monitoring_object(obj):
            labels = obj["metadata"]["labels"]
            assert labels["app.kubernetes.io/managed-by"] == "obsbundle", path
            assert labels["release"] == "kube-prometheus-stack", path


def test_monitors_use_the_inventory_port_path_interval_and_timeout(default_output: dict[str, bytes]) -> None:
    user = yaml.safe_load(default_output["aegis/user-service-servicemonitor.yaml"])
    assert user["metadata"]["namespace"] == "aegis-user-service"
    assert user["spec"]["selector"] == {"matchLabels": {"app": "user-service"}}
    (endpoint,) = user["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["interval"], endpoint["scrapeTimeout"]) == (
        "http", "/metrics", "30s", "10s",
    )
    api = yaml.safe_load(default_output["aegis/aegis-api-podmonitor.yaml"])
    (pod_endpoint,) = api["spec"]["podMetricsEndpoints"]
    assert pod_endpoint["portNumber"] == 8000 and "port" not in pod_endpoint
    assert pod_endpoint["interval"] == "15s"
    logpilot = yaml.safe_load(default_output["logpilot/logpilot-all-podmonitor.yaml"])
    assert logpilot["spec"]["podMetricsEndpoints"][0]["path"] == "/actuator/prometheus"
    assert logpilot["spec"]["podMetricsEndpoints"][0]["port"] == "management"


PLATFORM_COMPONENTS = ("cert-manager", "argo-rollouts")
"""Monitors of cluster add-ons' controllers (monitors/cert_manager.py, monitors/argo_rollouts.py)."""


def test_every_target_gets_the_inventory_service_name_as_its_service_label(default_output: dict[str, bytes]) -> None:
    for path, obj in _objects(default_output).items():
        if obj.get("kind") not in ("ServiceMonitor", "PodMonitor") or "exporter" in path:
            continue
        if obj["metadata"]["labels"]["app.kubernetes.io/component"].endswith("-metrics"):
            continue  # a datastore exporter's monitor: tests/test_datastore_monitors.py
        if obj["metadata"]["labels"]["app.kubernetes.io/component"] in PLATFORM_COMPONENTS:
            continue  # a cluster add-on's controller, no inventory service: its own module's tests
        endpoints = obj["spec"].get("endpoints") or obj["spec"]["podMetricsEndpoints"]
        assert {"action": "replace", "targetLabel": "service", "replacement": obj["metadata"]["name"]} in (
            endpoints[0]["relabelings"]
        ), path


def test_systems_with_exported_datastores_get_the_exporter_monitor(default_output: dict[str, bytes]) -> None:
    assert "ecoeco/ecoeco-obsbundle-exporter-servicemonitor.yaml" in default_output
    assert "aegis/aegis-obsbundle-exporter-servicemonitor.yaml" in default_output
    assert not any("obsbundle-exporter" in path for path in default_output if path.startswith("logpilot/"))


def test_jobs_and_cronjobs_without_metrics_get_no_monitor(default_inventory: Inventory) -> None:
    aegis = next(system for system in default_inventory.systems if system.name == "aegis")
    names = {doc.content["metadata"]["name"] for doc in generate_monitors(aegis, DEFAULT_CONFIG)}
    assert "db-migration" not in names and "postgres-backup" not in names


def test_monitors_of_the_fixture_system_match_the_golden_files() -> None:
    (shop,) = load_inventory([FIXTURES / "inventory" / "shop.yaml"]).systems
    files = {document.path: render(document) for document in generate_monitors(shop, DEFAULT_CONFIG)}
    assert_matches_golden(files, "monitors/shop")
