"""Datastore exporters' monitors: one per datastore with `metrics`, in its namespace, valid against
the real CRDs, and labelling every target `service=<datastore name>` (the series contract)."""

from __future__ import annotations

from typing import Any

import yaml

from obsbundle.config import DEFAULT_CONFIG
from obsbundle.loader import load_inventory
from obsbundle.model import Inventory
from obsbundle.monitors import generate_monitors
from obsbundle.monitors.datastores import datastore_monitor, exported_datastores
from obsbundle.settings import Settings
from obsbundle.stacks import workload_target_labels
from tests.conftest import REPO
from tests.support.crds import validation_errors

FLEET_DATASTORE_MONITORS = {
    "ecoeco": {"postgresql": "default", "redis": "default", "rabbitmq": "default"},
    "aegis": {
        "postgres": "aegis-production", "redis": "aegis-production",
        "user-postgres": "aegis-user-service", "user-redis": "aegis-user-service", "kafka": "aegis-user-service",
    },
    "logpilot": {},
}


def _monitors(output: dict[str, bytes], system: str) -> dict[str, dict[str, Any]]:
    found = {}
    for path, data in output.items():
        if path.startswith(f"{system}/") and path.count("/") == 1 and "-metrics-" in path:
            obj = yaml.safe_load(data)
            component = obj["metadata"]["labels"].get("app.kubernetes.io/component", "")
            # The Argo Rollouts controller's monitor is named `argo-rollouts-metrics` too.
            if obj["kind"] in ("ServiceMonitor", "PodMonitor") and component.endswith("-metrics"):
                found[obj["metadata"]["name"].removesuffix("-metrics")] = obj
    return found


def test_every_fleet_datastore_with_an_exporter_has_a_monitor_in_its_own_namespace(
    default_output: dict[str, bytes],
) -> None:
    for system, expected in FLEET_DATASTORE_MONITORS.items():
        monitors = _monitors(default_output, system)
        assert {name: m["metadata"]["namespace"] for name, m in monitors.items()} == expected, system
        for monitor in monitors.values():
            assert monitor["spec"]["namespaceSelector"] == {"matchNames": [monitor["metadata"]["namespace"]]}


def test_every_datastore_monitor_passes_the_crd_schema(default_output: dict[str, bytes]) -> None:
    checked = 0
    for system in FLEET_DATASTORE_MONITORS:
        for name, monitor in _monitors(default_output, system).items():
            assert validation_errors(monitor) == [], f"{system}/{name}"
            checked += 1
    assert checked == 8


def test_a_datastore_monitor_gives_its_targets_the_datastore_namespace_and_name_as_service(
    default_inventory: Inventory,
) -> None:
    for system in default_inventory.systems:
        for store in exported_datastores(system):
            labels = workload_target_labels(datastore_monitor(system, store, Settings()))
            assert (labels["namespace"], labels["service"]) == (store.namespace, store.name), store.name


def test_a_datastore_monitor_selects_the_inventory_labels_and_port(default_output: dict[str, bytes]) -> None:
    (endpoint,) = _monitors(default_output, "aegis")["user-redis"]["spec"]["endpoints"]
    monitor = _monitors(default_output, "aegis")["user-redis"]
    assert monitor["spec"]["selector"] == {
        "matchLabels": {"app.kubernetes.io/instance": "redis", "app.kubernetes.io/component": "metrics"}
    }
    assert (endpoint["port"], endpoint["path"], endpoint["interval"], endpoint["scrapeTimeout"]) == (
        "http-metrics", "/metrics", "30s", "10s",
    )


def _inventory_with(store_yaml: str, tmp_path: Any) -> Inventory:
    text = (REPO / "tests" / "fixtures" / "inventory" / "shop.yaml").read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    document["datastores"] = [*document.get("datastores", []), yaml.safe_load(store_yaml)]
    path = tmp_path / "shop.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return load_inventory([path])


def test_without_a_selector_the_monitor_selects_app_equal_to_the_datastore_name(tmp_path: Any) -> None:
    inventory = _inventory_with("{name: cache, kind: redis, namespace: shop, metrics: {port: metrics}}", tmp_path)
    (system,) = inventory.systems
    (store,) = [store for store in exported_datastores(system) if store.name == "cache"]
    monitor = datastore_monitor(system, store, Settings())
    assert monitor["kind"] == "ServiceMonitor"
    assert monitor["spec"]["selector"] == {"matchLabels": {"app": "cache"}}


def test_monitor_pod_gives_a_pod_monitor_on_a_numbered_port_that_still_sets_service(tmp_path: Any) -> None:
    inventory = _inventory_with(
        "{name: cache, kind: redis, namespace: shop, metrics: {port: 9121, monitor: pod, selector: {app: redis}}}",
        tmp_path,
    )
    (system,) = inventory.systems
    documents = {doc.path: doc.content for doc in generate_monitors(system, DEFAULT_CONFIG)}
    monitor = documents["cache-metrics-podmonitor.yaml"]
    assert validation_errors(monitor) == []
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["portNumber"] == 9121
    assert workload_target_labels(monitor)["service"] == "cache"
