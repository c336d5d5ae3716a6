"""Scrape configs for a Prometheus without the Operator (`--format prometheus`): one per monitor
endpoint and Probe, loadable by Prometheus, and relabelling every target to the labels Prometheus
Operator gives the same target through the generated monitor.

Debian's Prometheus 2.42 is built without Kubernetes service discovery, so the configs are loaded
with their `kubernetes_sd_configs` swapped for `file_sd_configs` that hold the targets Prometheus's
Kubernetes discovery would find (tests/support/kubernetes_sd.py): everything else, the
relabelling above all, is the generated text run by a real Prometheus.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from obsbundle.bundle import build
from obsbundle.config import DEFAULT_CONFIG, build_config
from obsbundle.loader import load_inventory
from obsbundle.model import Inventory
from obsbundle.monitors.scrape_configs import SCRAPE_CONFIGS, generate_scrape_configs, scrape_configs
from obsbundle.settings import OutputFormat
from obsbundle.stacks import probe_target_labels, workload_target_labels
from tests.conftest import FIXTURES
from tests.support.kubernetes_sd import Cluster, Container, ContainerPort, Pod, Service, ServicePort, discovered_targets
from tests.support.processes import wait_until
from tests.support.prometheus import PrometheusServer, start_prometheus
from tests.support.promtool import check_config

PROMETHEUS_CONFIG = build_config(OutputFormat.PROMETHEUS)
SCRAPED_KINDS = ("ServiceMonitor", "PodMonitor", "Probe")


@pytest.fixture(scope="module")
def shop() -> Inventory:
    return load_inventory([FIXTURES / "inventory"])


@pytest.fixture(scope="module")
def fleet_prometheus_output(default_inventory: Inventory) -> dict[str, bytes]:
    return build(default_inventory, PROMETHEUS_CONFIG)


@pytest.fixture(scope="module")
def shop_outputs(shop: Inventory) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """The shop's output in the operator format and in the prometheus format."""
    return build(shop, DEFAULT_CONFIG), build(shop, PROMETHEUS_CONFIG)


@dataclass(frozen=True)
class SystemOutput:
    name: str
    objects: list[dict[str, Any]]
    """The system's ServiceMonitors, PodMonitors and Probes, as the operator format writes them."""
    scrape_configs: list[dict[str, Any]]
    """`prometheus/scrape-configs.yaml` as the prometheus format writes it."""
    rule_files: dict[str, bytes]


def _system_output(system: str, operator: dict[str, bytes], prometheus: dict[str, bytes]) -> SystemOutput:
    objects = [
        obj
        for path, data in sorted(operator.items())
        if path.startswith(f"{system}/") and path.count("/") == 1 and path.endswith(".yaml")
        for obj in [yaml.safe_load(data)]
        if obj.get("kind") in SCRAPED_KINDS
    ]
    written = yaml.safe_load(prometheus[f"{system}/{SCRAPE_CONFIGS}"])
    rules = {
        path.removeprefix(f"{system}/"): data
        for path, data in prometheus.items()
        if path.startswith(f"{system}/prometheus/rules/") and path.endswith(".rules.yaml")
    }
    return SystemOutput(system, objects, written["scrape_configs"], rules)


@pytest.fixture(scope="module")
def systems(
    default_output: dict[str, bytes],
    fleet_prometheus_output: dict[str, bytes],
    shop_outputs: tuple[dict[str, bytes], dict[str, bytes]],
) -> dict[str, SystemOutput]:
    found = {name: _system_output(name, default_output, fleet_prometheus_output) for name in ("aegis", "ecoeco", "logpilot")}
    found["shop"] = _system_output("shop", *shop_outputs)
    return found


SYSTEMS = ("aegis", "ecoeco", "logpilot", "shop")


def _job_name(obj: Mapping[str, Any]) -> str:
    metadata = obj["metadata"]
    if obj["kind"] == "Probe":
        return f"probe/{metadata['namespace']}/{metadata['name']}"
    prefix = {"ServiceMonitor": "serviceMonitor", "PodMonitor": "podMonitor"}[obj["kind"]]
    return f"{prefix}/{metadata['namespace']}/{metadata['name']}/0"


# --- what is written ------------------------------------------------------------------------------


@pytest.mark.parametrize("system", SYSTEMS)
def test_the_prometheus_format_writes_one_scrape_config_per_monitor_and_probe_of_the_system(
    systems: dict[str, SystemOutput], system: str
) -> None:
    output = systems[system]
    assert output.objects, "every system of the fleet and the shop has monitors"
    written = [config["job_name"] for config in output.scrape_configs]
    assert sorted(written) == sorted(_job_name(obj) for obj in output.objects)
    assert len(set(written)) == len(written), "Prometheus refuses two scrape configs with one job name"


def test_the_fleet_scrape_configs_cover_workload_datastore_exporter_platform_and_probe_monitors(
    systems: dict[str, SystemOutput],
) -> None:
    jobs = {config["job_name"] for output in systems.values() for config in output.scrape_configs}
    for job in (
        "serviceMonitor/default/auth-service/0",  # a service's ServiceMonitor
        "podMonitor/default/storage-worker/0",  # a worker's PodMonitor
        "serviceMonitor/default/postgresql-metrics/0",  # a datastore exporter's
        "serviceMonitor/monitoring/ecoeco-obsbundle-exporter/0",  # the pool & queue exporter's
        "serviceMonitor/argo-rollouts/argo-rollouts-metrics/0",  # a platform controller's
        "probe/monitoring/openai",  # a dependency's Probe
        "podMonitor/shop-legacy/legacy/0",  # a PodMonitor on an unnamed port
    ):
        assert job in jobs


def test_the_operator_format_writes_no_scrape_configs_the_operator_would_duplicate(
    default_output: dict[str, bytes],
) -> None:
    assert not [path for path in default_output if path.endswith(SCRAPE_CONFIGS) or "scrape-configs" in path]


def test_the_scrape_configs_are_the_same_on_every_run(default_inventory: Inventory) -> None:
    for system in default_inventory.systems:
        first = list(generate_scrape_configs(system, PROMETHEUS_CONFIG))
        assert first == list(generate_scrape_configs(system, PROMETHEUS_CONFIG))


def test_a_monitor_field_the_scrape_configs_do_not_translate_is_refused_rather_than_left_out(
    systems: dict[str, SystemOutput],
) -> None:
    monitor = next(obj for obj in systems["shop"].objects if obj["kind"] == "ServiceMonitor")
    with_tls = copy.deepcopy(monitor)
    with_tls["spec"]["endpoints"][0]["tlsConfig"] = {"insecureSkipVerify": True}
    with pytest.raises(ValueError, match="tlsConfig"):
        scrape_configs(with_tls)
    with_expression = copy.deepcopy(monitor)
    with_expression["spec"]["selector"]["matchExpressions"] = [{"key": "tier", "operator": "Exists"}]
    with pytest.raises(ValueError, match="matchExpressions"):
        scrape_configs(with_expression)
    with pytest.raises(ValueError, match="ScrapeConfig"):
        scrape_configs({**monitor, "kind": "ScrapeConfig"})


# --- Prometheus loads them ------------------------------------------------------------------------


def _with_file_sd(configs: list[dict[str, Any]], sd_dir: Path, cluster: Cluster | None) -> list[dict[str, Any]]:
    """The scrape configs with each `kubernetes_sd_configs` replaced by a file of the targets
    Prometheus's Kubernetes discovery would find in `cluster` (none without one)."""
    replaced = []
    for index, config in enumerate(configs):
        config = copy.deepcopy(config)
        kubernetes = config.pop("kubernetes_sd_configs", None)
        if kubernetes is not None:
            (sd,) = kubernetes
            targets = discovered_targets(cluster, sd["role"], sd["namespaces"]["names"]) if cluster else []
            path = sd_dir / f"{index}.json"
            path.write_text(json.dumps([target.file_sd() for target in targets]))
            config["file_sd_configs"] = [{"files": [str(path)]}]
        replaced.append(config)
    return replaced


def _prometheus_yml(output: SystemOutput, workdir: Path, cluster: Cluster | None) -> dict[str, Any]:
    sd_dir = workdir / "sd"
    sd_dir.mkdir(parents=True, exist_ok=True)
    for relative, data in output.rule_files.items():
        (workdir / relative).parent.mkdir(parents=True, exist_ok=True)
        (workdir / relative).write_bytes(data)
    return {
        "global": {"scrape_interval": "1m", "evaluation_interval": "1m"},
        "rule_files": [str(workdir / "prometheus" / "rules" / "*.rules.yaml")],
        "scrape_configs": _with_file_sd(output.scrape_configs, sd_dir, cluster),
    }


@pytest.mark.parametrize("system", SYSTEMS)
def test_promtool_accepts_a_prometheus_yml_with_the_scrape_configs_and_the_rule_files(
    systems: dict[str, SystemOutput], system: str, tmp_path: Path
) -> None:
    config = _prometheus_yml(systems[system], tmp_path, None)
    assert len(systems[system].rule_files) > 0
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    result = check_config(tmp_path / "prometheus.yml")
    assert result.ok, result.output
    assert f"SUCCESS: {len(systems[system].rule_files)} rule files found" in result.output


def test_promtool_rejects_scrape_configs_that_share_a_job_name(systems: dict[str, SystemOutput], tmp_path: Path) -> None:
    output = systems["shop"]
    doubled = SystemOutput(output.name, output.objects, output.scrape_configs * 2, {})
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(_prometheus_yml(doubled, tmp_path, None)))
    result = check_config(tmp_path / "prometheus.yml")
    assert not result.ok
    assert "found multiple scrape configs with job name" in result.output
