"""Each system's generated pool & queue exporter deployment: a configuration the exporter loads, with
a source for every `source` the rules read, and manifests that fit the generated ServiceMonitor."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from obsbundle.exporter_manifests import SECRETS_MOUNT
from obsbundle.exporters.config import load_config
from obsbundle.model import DatastoreKind, Inventory

EXPORTED = ("aegis", "ecoeco")


def _yaml(output: dict[str, bytes], path: str) -> Any:
    return yaml.safe_load(output[path])


def test_a_system_without_postgres_rabbitmq_or_redis_gets_no_exporter(default_output: dict[str, bytes]) -> None:
    assert not [path for path in default_output if path.startswith("logpilot/exporter/")]


@pytest.mark.parametrize("system", EXPORTED)
def test_the_exporter_loads_the_generated_config_with_the_secrets_keys_mounted_as_files(
    default_output: dict[str, bytes], system: str, tmp_path: Path
) -> None:
    secret = _yaml(default_output, f"{system}/exporter/secret.yaml")
    assert set(secret["stringData"].values()) == {""}, "the Secret's shape must carry no value"
    mounted = tmp_path / "secrets"
    mounted.mkdir()
    for key in secret["stringData"]:
        (mounted / key).write_text("s3cret\n")
    text = default_output[f"{system}/exporter/config.yaml"].decode().replace(SECRETS_MOUNT, str(mounted))
    config_file = tmp_path / "config.yaml"
    config_file.write_text(text)
    config = load_config(config_file)  # raises InputError naming every problem
    files = {Path(str(source.password_file)).name for _, source in config.sources()}
    assert files == set(secret["stringData"]), "every password file is a key of the Secret and no key is unused"


@pytest.mark.parametrize("system", EXPORTED)
def test_every_source_the_rules_read_is_configured(default_output: dict[str, bytes], system: str) -> None:
    configured = {
        source["name"]
        for kind in ("postgres", "pgbouncer", "rabbitmq", "redis")
        for source in _yaml(default_output, f"{system}/exporter/config.yaml").get(kind, [])
    }
    read: set[str] = set()
    for path, data in default_output.items():
        if path.startswith(f"{system}/prometheus/rules/") and path.endswith(".rules.yaml"):
            read |= set(re.findall(r'poolq_\w+\{[^}]*source="([^"]+)"', data.decode()))
    assert read, "no rule reads the exporter, so this test proves nothing"
    assert read <= configured, f"sources the rules read but the config lacks: {sorted(read - configured)}"


@pytest.mark.parametrize("system", EXPORTED)
def test_the_service_selects_the_pods_and_the_servicemonitor_selects_the_service_on_its_port(
    default_output: dict[str, bytes], system: str
) -> None:
    deployment = _yaml(default_output, f"{system}/exporter/deployment.yaml")
    service = _yaml(default_output, f"{system}/exporter/service.yaml")
    monitor = _yaml(default_output, f"{system}/{system}-obsbundle-exporter-servicemonitor.yaml")
    kustomization = _yaml(default_output, f"{system}/exporter/kustomization.yaml")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]
    [port] = service["spec"]["ports"]
    [endpoint] = monitor["spec"]["endpoints"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert endpoint["port"] == port["name"] and port["targetPort"] in {p["name"] for p in container["ports"]}
    volumes = {volume["name"]: volume for volume in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == kustomization["configMapGenerator"][0]["name"]
    secret = _yaml(default_output, f"{system}/exporter/secret.yaml")
    assert volumes["credentials"]["secret"]["secretName"] == secret["metadata"]["name"]
    assert "secret.yaml" not in kustomization["resources"], "applying the folder must not blank the real Secret"


@pytest.mark.parametrize("system", EXPORTED)
def test_the_container_runs_as_non_root_on_a_read_only_file_system_reading_the_mounted_config(
    default_output: dict[str, bytes], system: str
) -> None:
    spec = _yaml(default_output, f"{system}/exporter/deployment.yaml")["spec"]["template"]["spec"]
    [container] = spec["containers"]
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
    assert spec["automountServiceAccountToken"] is False
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
    }
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    assert f"--config={mounts['config']}" in container["args"] and mounts["credentials"] == SECRETS_MOUNT


def test_every_exported_datastore_is_a_source_of_its_name_and_kind(
    default_output: dict[str, bytes], default_inventory: Inventory
) -> None:
    kinds = {"postgres": DatastoreKind.POSTGRES, "rabbitmq": DatastoreKind.RABBITMQ, "redis": DatastoreKind.REDIS}
    for system in default_inventory.systems:
        if system.name not in EXPORTED:
            continue
        config = _yaml(default_output, f"{system.name}/exporter/config.yaml")
        configured = {(kinds[kind], source["name"]) for kind in kinds for source in config.get(kind, [])}
        expected = {(store.kind, store.source) for store in system.datastores if store.kind in kinds.values()}
        assert configured == expected
