"""Scrape configs for a Prometheus without the Operator (`--format prometheus`): one per monitor
endpoint and Probe, loadable by Prometheus, and relabelling every target to the labels Prometheus
Operator gives the same target through the generated monitor.

Debian's Prometheus 2.42 is built without Kubernetes service discovery, so the configs are loaded
with their `kubernetes_sd_configs` swapped for `file_sd_configs` that hold the targets Prometheus's
Kubernetes discovery would find (tests/support/kubernetes_sd.py): everything else, the
relabelling above all, is the generated text run by a real Prometheus. The configs as written,
Kubernetes discovery included, run in a real VictoriaMetrics (Debian `victoria-metrics`, whose
scraper takes Prometheus's configuration) pointed at a local API server that serves the same
cluster (tests/support/kubernetes_api.py): its discovery must find what the model says Prometheus's
finds, and its relabelling must agree with Prometheus's.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import subprocess
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
from obsbundle.tools.processes import require_binary, wait_until
from obsbundle.tools.prometheus import PrometheusServer, start_prometheus
from obsbundle.tools.promtool import check_config
from tests.conftest import FIXTURES
from tests.support.kubernetes_api import kubernetes_api
from tests.support.kubernetes_sd import (
    Cluster,
    Container,
    ContainerPort,
    Pod,
    Service,
    ServicePort,
    api_objects,
    discovered_targets,
)
from tests.support.victoria_metrics import VictoriaMetrics, start_victoria_metrics

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
    found = {
        name: _system_output(name, default_output, fleet_prometheus_output) for name in ("aegis", "ecoeco", "logpilot")
    }
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
    for index, written in enumerate(configs):
        config = copy.deepcopy(written)
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


def test_promtool_rejects_scrape_configs_that_share_a_job_name(
    systems: dict[str, SystemOutput], tmp_path: Path
) -> None:
    output = systems["shop"]
    doubled = SystemOutput(output.name, output.objects, output.scrape_configs * 2, {})
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(_prometheus_yml(doubled, tmp_path, None)))
    result = check_config(tmp_path / "prometheus.yml")
    assert not result.ok
    assert "found multiple scrape configs with job name" in result.output


# --- their relabelling gives the monitors' labels -------------------------------------------------


@dataclass(frozen=True)
class Scraped:
    """A target the cluster offers a monitor: where it is and what the cluster says about it."""

    address: str
    pod: str
    container: str
    service: Service | None = None


def _cluster(objects: list[dict[str, Any]]) -> Cluster:
    """For each monitor, a Service (or pods) its selector matches with two pods on its port, and
    beside them what its scrape config must drop: a Service (or pod) whose labels differ in value,
    a port the monitor does not name, a sidecar's port, and a finished pod."""
    services: list[Service] = []
    pods: list[Pod] = []
    addresses = iter(f"127.0.{i // 200}.{i % 200 + 2}" for i in range(10_000))

    def pod(namespace: str, name: str, labels: Mapping[str, str], port: ContainerPort, phase: str = "Running") -> Pod:
        containers = (Container("app", (port,)), Container("sidecar", (ContainerPort(9999, "admin"),)))
        made = Pod(namespace, name, next(addresses), dict(labels), containers, phase)
        pods.append(made)
        return made

    for index, obj in enumerate(objects):
        if obj["kind"] == "Probe":
            continue
        name, spec = obj["metadata"]["name"], obj["spec"]
        (namespace,) = spec["namespaceSelector"]["matchNames"]
        selected = spec["selector"]["matchLabels"]
        other = {label: f"{value}-other" for label, value in selected.items()}
        number = 8000 + index
        if obj["kind"] == "ServiceMonitor":
            port_name = spec["endpoints"][0]["port"]
            for suffix, labels in (("k8s", selected), ("other", other)):
                service_name = f"{name}-{suffix}"
                backend = {"backend-of": service_name}
                for replica in range(2):
                    pod(namespace, f"{service_name}-{replica}", backend, ContainerPort(number, "web"))
                pod(namespace, f"{service_name}-done", backend, ContainerPort(number, "web"), phase="Succeeded")
                ports = (ServicePort(port_name, 80, number), ServicePort("debug", 81, 7000 + index))
                services.append(Service(namespace, service_name, dict(labels), backend, ports))
        else:
            endpoint = spec["podMetricsEndpoints"][0]
            port = ContainerPort(endpoint.get("portNumber", number), endpoint.get("port", ""))
            for replica in range(2):
                pod(namespace, f"{name}-{replica}", selected, port)
            pod(namespace, f"{name}-other", other, port)
            pod(namespace, f"{name}-failed", selected, port, phase="Failed")
    return Cluster(tuple(services), tuple(pods))


def _matches(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    return all(labels.get(name) == value for name, value in selector.items())


def _expected_targets(monitor: Mapping[str, Any], cluster: Cluster) -> list[Scraped]:
    """What the monitor scrapes by Kubernetes' own rules: the Endpoints of Services its selector
    matches on the named port, or the running pods it matches on the named or numbered port."""
    spec = monitor["spec"]
    namespaces = set(spec["namespaceSelector"]["matchNames"])
    selector = spec["selector"]["matchLabels"]
    found = []
    if monitor["kind"] == "ServiceMonitor":
        port_name = spec["endpoints"][0]["port"]
        for service in cluster.services:
            if service.namespace in namespaces and _matches(service.labels, selector):
                for service_port in (p for p in service.ports if p.name == port_name):
                    for pod in cluster.selected_pods(service):
                        found.append(Scraped(f"{pod.ip}:{service_port.target_port}", pod.name, "app", service))
    else:
        endpoint = spec["podMetricsEndpoints"][0]
        for pod in cluster.pods:
            if (
                pod.namespace in namespaces
                and _matches(pod.labels, selector)
                and pod.phase not in {"Failed", "Succeeded"}
            ):
                for container in pod.containers:
                    for port in container.ports:
                        if port.name == endpoint.get("port") or port.number == endpoint.get("portNumber"):
                            found.append(Scraped(f"{pod.ip}:{port.number}", pod.name, container.name))
    return found


def _operator_labels(monitor: Mapping[str, Any], target: Scraped) -> dict[str, str]:
    """`workload_target_labels` with the values the cluster decides filled in from its objects."""
    labels = workload_target_labels(monitor)
    cluster_values = {"instance": target.address, "pod": target.pod, "container": target.container}
    if target.service is not None:
        job_label = monitor["spec"].get("jobLabel")
        cluster_values["job"] = target.service.labels.get(job_label, "") if job_label else ""
        cluster_values["job"] = cluster_values["job"] or target.service.name
        cluster_values["service"] = target.service.name
    resolved = {name: value if value is not None else cluster_values[name] for name, value in labels.items()}
    return {name: value for name, value in resolved.items() if value != ""}


@dataclass(frozen=True)
class LiveRun:
    output: SystemOutput
    cluster: Cluster
    active: dict[str, list[dict[str, Any]]]
    """Prometheus's active targets by job (scrape pool)."""
    dropped: dict[str, list[dict[str, str]]]
    """The discovered labels of the targets Prometheus dropped, by job."""


def _dropped_job(discovered: Mapping[str, str]) -> str:
    """The job of a dropped target. Prometheus 2.42 reports a dropped target's labels as the
    relabelling left them, so `job` may be gone; the Operator's first relabelling kept it."""
    return discovered.get("job") or discovered["__tmp_prometheus_job_name"]


def _targets_settled(server: PrometheusServer, expected: Mapping[str, int]) -> bool:
    data = server.api("targets", state="any")
    seen: dict[str, int] = {}
    for target in data["activeTargets"]:
        seen[target["scrapePool"]] = seen.get(target["scrapePool"], 0) + 1
    for target in data["droppedTargets"]:
        job = _dropped_job(target["discoveredLabels"])
        seen[job] = seen.get(job, 0) + 1
    return all(seen.get(job, 0) == count for job, count in expected.items())


@pytest.fixture(scope="module")
def live_runs(
    systems: dict[str, SystemOutput], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, LiveRun]]:
    """One real Prometheus per system, all started at once, loading its scrape configs over the
    targets of a cluster made for its monitors; their targets once every job has seen them all."""
    servers: dict[str, tuple[PrometheusServer, Cluster, dict[str, int]]] = {}
    try:
        for name in SYSTEMS:
            output = systems[name]
            cluster = _cluster(output.objects)
            workdir = tmp_path_factory.mktemp(f"scrape-configs-{name}")
            config = _prometheus_yml(SystemOutput(name, output.objects, output.scrape_configs, {}), workdir, cluster)
            expected = {}
            for scrape_config in config["scrape_configs"]:
                files = scrape_config.get("file_sd_configs", [])
                groups = [group for sd in files for path in sd["files"] for group in json.loads(Path(path).read_text())]
                expected[scrape_config["job_name"]] = (
                    len(groups) if files else len(scrape_config["static_configs"][0]["targets"])
                )
            servers[name] = (start_prometheus(workdir, config), cluster, expected)
        runs = {}
        for name, (server, cluster, expected) in servers.items():
            wait_until(functools.partial(_targets_settled, server, expected), timeout=30, what=f"{name}'s targets")
            data = server.api("targets", state="any")
            active: dict[str, list[dict[str, Any]]] = {}
            for target in data["activeTargets"]:
                active.setdefault(target["scrapePool"], []).append(target)
            dropped: dict[str, list[dict[str, str]]] = {}
            for target in data["droppedTargets"]:
                dropped.setdefault(_dropped_job(target["discoveredLabels"]), []).append(target["discoveredLabels"])
            runs[name] = LiveRun(systems[name], cluster, active, dropped)
        yield runs
    finally:
        for server, _, _ in servers.values():
            server.stop()


@pytest.mark.parametrize("system", SYSTEMS)
def test_every_target_prometheus_keeps_has_the_labels_the_operator_gives_it_through_the_monitor(
    live_runs: dict[str, LiveRun], system: str
) -> None:
    run = live_runs[system]
    checked = 0
    for monitor in run.output.objects:
        job = _job_name(monitor)
        kept = {target["labels"]["instance"]: target["labels"] for target in run.active.get(job, [])}
        if monitor["kind"] == "Probe":
            assert list(kept.values()) == [probe_target_labels(monitor)], job
            continue
        expected = {
            target.address: _operator_labels(monitor, target) for target in _expected_targets(monitor, run.cluster)
        }
        assert len(expected) >= 2, f"{job}: the cluster offers the monitor its two pods"
        assert kept == expected, job
        checked += len(kept)
    assert checked >= 2 * len([obj for obj in run.output.objects if obj["kind"] != "Probe"])


@pytest.mark.parametrize("system", SYSTEMS)
def test_prometheus_drops_the_services_ports_and_pods_the_monitor_does_not_select(
    live_runs: dict[str, LiveRun], system: str
) -> None:
    run = live_runs[system]
    for monitor in run.output.objects:
        if monitor["kind"] == "Probe":
            continue
        job = _job_name(monitor)
        name = monitor["metadata"]["name"]
        dropped = run.dropped[job]
        if monitor["kind"] == "ServiceMonitor":
            dropped_services = {labels.get("__meta_kubernetes_service_name") for labels in dropped}
            assert f"{name}-other" in dropped_services, f"{job} keeps a Service whose labels differ"
            debug = [labels for labels in dropped if labels.get("__meta_kubernetes_endpoint_port_name") == "debug"]
            assert f"{name}-k8s" in {labels["__meta_kubernetes_service_name"] for labels in debug}, job
        else:
            dropped_pods = {labels.get("__meta_kubernetes_pod_name") for labels in dropped}
            assert {f"{name}-other", f"{name}-failed"} <= dropped_pods, job
        sidecars = [labels for labels in dropped if labels.get("__meta_kubernetes_pod_container_name") == "sidecar"]
        assert sidecars, f"{job} keeps a sidecar's port"
        assert all(t["labels"].get("container") != "sidecar" for t in run.active.get(job, []))


# --- the configs as written, with a real Kubernetes discovery --------------------------------------


@pytest.mark.parametrize("system", SYSTEMS)
def test_victoria_metrics_strict_parser_accepts_the_scrape_configs_as_written(
    systems: dict[str, SystemOutput], system: str, tmp_path: Path
) -> None:
    path = tmp_path / "scrape-configs.yaml"
    path.write_text(yaml.safe_dump({"scrape_configs": systems[system].scrape_configs}))
    result = _victoria_metrics_dry_run(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_victoria_metrics_strict_parser_rejects_a_kubernetes_field_it_does_not_know(
    systems: dict[str, SystemOutput], tmp_path: Path
) -> None:
    configs = copy.deepcopy(systems["shop"].scrape_configs)
    configs[0]["kubernetes_sd_configs"][0]["namespace"] = configs[0]["kubernetes_sd_configs"][0].pop("namespaces")
    path = tmp_path / "scrape-configs.yaml"
    path.write_text(yaml.safe_dump({"scrape_configs": configs}))
    result = _victoria_metrics_dry_run(path)
    assert result.returncode != 0
    assert "field namespace not found" in result.stdout + result.stderr


def _victoria_metrics_dry_run(path: Path) -> subprocess.CompletedProcess[str]:
    binary = require_binary("victoria-metrics", "victoria-metrics")
    args = [binary, f"-promscrape.config={path}", "-promscrape.config.dryRun", "-promscrape.config.strictParse"]
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


@dataclass(frozen=True)
class DiscoveryRun:
    discovered: dict[str, list[dict[str, str]]]
    """Every target VictoriaMetrics's Kubernetes discovery found, by job: its discovered labels."""
    kept: dict[str, list[dict[str, str]]]
    """The final labels of the targets its relabelling kept, by job."""


def _by_job(targets: list[dict[str, Any]]) -> dict[str, list[dict[str, str]]]:
    found: dict[str, list[dict[str, str]]] = {}
    for target in targets:
        found.setdefault(target["discoveredLabels"]["job"], []).append(target["discoveredLabels"])
    return found


@pytest.fixture(scope="module")
def discovery_runs(
    systems: dict[str, SystemOutput], live_runs: dict[str, LiveRun], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, DiscoveryRun]]:
    """Per system, VictoriaMetrics scraping by the configs as written, their `api_server` set to a
    local API server that serves the system's cluster (the one the Prometheus runs were given)."""
    with contextlib.ExitStack() as stack:
        servers = {}
        for name in SYSTEMS:
            cluster = live_runs[name].cluster
            url = stack.enter_context(kubernetes_api(api_objects(cluster)))
            configs = copy.deepcopy(systems[name].scrape_configs)
            expected = {}
            for config in configs:
                for sd in config.get("kubernetes_sd_configs", []):
                    sd["api_server"] = url
                    expected[config["job_name"]] = len(
                        discovered_targets(cluster, sd["role"], sd["namespaces"]["names"])
                    )
            server = start_victoria_metrics(tmp_path_factory.mktemp(f"victoria-{name}"), {"scrape_configs": configs})
            stack.callback(server.stop)
            servers[name] = (server, expected)
        runs = {}
        for name, (server, expected) in servers.items():

            def settled(server: VictoriaMetrics = server, expected: dict[str, int] = expected) -> bool:
                data = server.targets()
                found = _by_job(data["activeTargets"] + data["droppedTargets"])
                return all(len(found.get(job, [])) == count for job, count in expected.items())

            wait_until(settled, timeout=30, what=f"victoria-metrics to discover {name}'s targets")
            data = server.targets()
            kept: dict[str, list[dict[str, str]]] = {}
            for target in data["activeTargets"]:
                kept.setdefault(target["discoveredLabels"]["job"], []).append(target["labels"])
            runs[name] = DiscoveryRun(_by_job(data["activeTargets"] + data["droppedTargets"]), kept)
        yield runs


def _read_labels(config: Mapping[str, Any]) -> set[str]:
    """The discovered labels a scrape config's relabelling reads."""
    return {label for rule in config["relabel_configs"] for label in rule.get("source_labels", [])} - {"job"}


def _shape(labels: Mapping[str, str], read: set[str]) -> tuple[tuple[str, str], ...]:
    """A target as the relabelling sees it: its address and the non-empty labels it reads (an empty
    label is no label to Prometheus)."""
    kept = {name: value for name, value in labels.items() if name in read | {"__address__"} and value != ""}
    return tuple(sorted(kept.items()))


@pytest.mark.parametrize("system", SYSTEMS)
def test_a_real_kubernetes_discovery_finds_the_targets_the_model_gives_prometheus(
    systems: dict[str, SystemOutput],
    live_runs: dict[str, LiveRun],
    discovery_runs: dict[str, DiscoveryRun],
    system: str,
) -> None:
    cluster = live_runs[system].cluster
    compared = 0
    for config in systems[system].scrape_configs:
        if "kubernetes_sd_configs" not in config:
            continue
        (sd,) = config["kubernetes_sd_configs"]
        read = _read_labels(config)
        modelled = sorted(
            _shape({"__address__": t.address, **t.labels}, read)
            for t in discovered_targets(cluster, sd["role"], sd["namespaces"]["names"])
        )
        found = sorted(_shape(labels, read) for labels in discovery_runs[system].discovered[config["job_name"]])
        assert found == modelled, config["job_name"]
        compared += len(found)
    assert compared > 0


@pytest.mark.parametrize("system", SYSTEMS)
def test_the_configs_as_written_keep_the_same_targets_with_the_same_labels_under_both_relabelling_engines(
    live_runs: dict[str, LiveRun], discovery_runs: dict[str, DiscoveryRun], system: str
) -> None:
    prometheus = live_runs[system].active
    for job, kept in discovery_runs[system].kept.items():
        assert sorted(map(_sorted_items, kept)) == sorted(_sorted_items(t["labels"]) for t in prometheus[job]), job
    kubernetes_jobs = {job for job in prometheus if not job.startswith("probe/")}
    assert kubernetes_jobs <= set(discovery_runs[system].kept)


def _sorted_items(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))
