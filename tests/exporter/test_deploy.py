"""The Kubernetes manifests of the exporter agree with what the generated ServiceMonitor selects,
run it locked down, and carry a configuration the exporter accepts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from obsbundle.exporters.config import ExporterConfig
from obsbundle.labels import EXPORTER_PORT, exporter_selector, exporter_service_name
from obsbundle.loader import load_inventory
from obsbundle.model import DatastoreKind, System
from obsbundle.monitors.workloads import exporter_monitor
from obsbundle.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "exporter"
INVENTORY = Path(__file__).resolve().parents[2] / "inventory" / "ecoeco.yaml"


def manifests() -> dict[str, dict[str, Any]]:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    objects = {}
    for resource in kustomization["resources"]:
        document = yaml.safe_load((DEPLOY / resource).read_text())
        objects[document["kind"]] = document
    return {"Kustomization": kustomization, **objects}


def ecoeco() -> System:
    return load_inventory([INVENTORY]).systems[0]


def test_the_service_is_the_one_the_generated_service_monitor_selects() -> None:
    system, objects = ecoeco(), manifests()
    service, monitor = objects["Service"], exporter_monitor(system, Settings())
    assert service["metadata"]["name"] == exporter_service_name(system)
    assert objects["Kustomization"]["namespace"] == monitor["metadata"]["namespace"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert service["spec"]["selector"] == exporter_selector(system)
    [port] = service["spec"]["ports"]
    assert (port["name"], port["port"]) == (EXPORTER_PORT, 9187)
    assert monitor["spec"]["endpoints"][0]["port"] == EXPORTER_PORT


def test_the_pods_carry_the_selector_labels_and_name_their_port_metrics() -> None:
    system, deployment = ecoeco(), manifests()["Deployment"]
    template = deployment["spec"]["template"]
    assert exporter_selector(system).items() <= template["metadata"]["labels"].items()
    assert deployment["spec"]["selector"]["matchLabels"] == exporter_selector(system)
    [container] = template["spec"]["containers"]
    assert {"name": EXPORTER_PORT, "containerPort": 9187, "protocol": "TCP"} in container["ports"]


def test_the_container_runs_as_non_root_on_a_read_only_file_system() -> None:
    spec = manifests()["Deployment"]["spec"]["template"]["spec"]
    [container] = spec["containers"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    assert spec["automountServiceAccountToken"] is False
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
    }


def test_the_configuration_is_accepted_and_reads_every_password_from_the_mounted_secret() -> None:
    objects = manifests()
    config = ExporterConfig.model_validate(yaml.safe_load(objects["ConfigMap"]["data"]["config.yaml"]))
    spec = objects["Deployment"]["spec"]["template"]["spec"]
    [container] = spec["containers"]
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    secret_volume = next(volume for volume in spec["volumes"] if volume["name"] == "credentials")
    assert "secret" in secret_volume
    for _, source in config.sources():
        assert source.password_file is not None, source.name
        assert source.password_file.parent == Path(mounts["credentials"])
    assert "--config=" + mounts["config"] in container["args"]


def test_every_exported_datastore_of_the_system_is_a_source_of_that_name() -> None:
    system = ecoeco()
    config = ExporterConfig.model_validate(yaml.safe_load(manifests()["ConfigMap"]["data"]["config.yaml"]))
    kinds = {"postgres": DatastoreKind.POSTGRES, "rabbitmq": DatastoreKind.RABBITMQ, "redis": DatastoreKind.REDIS}
    configured = {(kinds[path[0]], source.name) for path, source in config.sources() if path[0] in kinds}
    expected = {(store.kind, store.source) for store in system.datastores if store.kind in kinds.values()}
    assert configured == expected
