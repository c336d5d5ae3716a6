"""Each workload gets the alerts of the controller that runs it, read from the series that controller
really has, labelled for who answers them, and explained by a runbook that names it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from obsbundle.config import DEFAULT_CONFIG
from obsbundle.loader import load_inventory
from obsbundle.model import Controller, Inventory, System
from obsbundle.monitors.argo_rollouts import rollouts_monitor
from obsbundle.rules import alerting_components
from obsbundle.rules.cases.workload import controller_test_pod
from obsbundle.rules.definitions import Alert
from obsbundle.rules.workload import controller_pod_pattern
from obsbundle.settings import Settings
from obsbundle.tools import promtool
from tests.rules.test_workloads_promtool import write_workload_groups
from tests.support.crds import validation_errors

CONTROLLER_ALERTS = {
    Controller.DEPLOYMENT: {"WorkloadReplicasMismatch", "WorkloadDeploymentRolloutStuck", "WorkloadGenerationMismatch"},
    Controller.STATEFULSET: {
        "WorkloadStatefulSetReplicasMismatch",
        "WorkloadGenerationMismatch",
        "WorkloadStatefulSetUpdateNotRolledOut",
    },
    Controller.DAEMONSET: {
        "WorkloadDaemonSetNotScheduled",
        "WorkloadDaemonSetMisScheduled",
        "WorkloadDaemonSetRolloutStuck",
    },
    Controller.ROLLOUT: {"WorkloadArgoRolloutReplicasMismatch", "WorkloadArgoRolloutUnhealthy"},
}
CONTAINER_ALERTS = {"WorkloadContainerWaiting", "WorkloadOomKilled"}
ALL_CONTROLLER_ALERTS = set().union(*CONTROLLER_ALERTS.values())


def _system(inventory: Inventory, name: str) -> System:
    return next(system for system in inventory.systems if system.name == name)


def _groups(system: System) -> dict[str, list[Alert]]:
    """Alerts of the workload components by group name."""
    return {
        group.name: list(group.alerts)
        for component, groups in alerting_components(system, DEFAULT_CONFIG.rules)
        if component in ("workloads", "platform-workloads")
        for group in groups
    }


def _names(alerts: list[Alert]) -> set[str]:
    return {alert.name for alert in alerts}


def test_each_platform_workload_gets_exactly_its_controllers_alerts_and_its_containers(
    default_inventory: Inventory,
) -> None:
    ecoeco = _system(default_inventory, "ecoeco")
    groups = _groups(ecoeco)
    assert {w.controller for w in ecoeco.platform.workloads} == {
        Controller.DEPLOYMENT, Controller.STATEFULSET, Controller.DAEMONSET,
    }
    for workload in ecoeco.platform.workloads:
        alerts = groups[f"ecoeco-platform-workload-{workload.namespace}-{workload.name}"]
        assert _names(alerts) == CONTROLLER_ALERTS[workload.controller] | CONTAINER_ALERTS, workload.name


def test_a_rollout_service_reads_the_rollouts_controller_and_never_a_deployment_series(
    default_inventory: Inventory,
) -> None:
    logpilot = _system(default_inventory, "logpilot")
    groups = _groups(logpilot)
    for service in logpilot.services:
        alerts = groups[f"logpilot-workload-{service.name}"]
        controller_alerts = _names(alerts) & ALL_CONTROLLER_ALERTS
        if service.workload_controller is Controller.ROLLOUT:
            assert controller_alerts == CONTROLLER_ALERTS[Controller.ROLLOUT], service.name
            assert not any("kube_deployment_" in alert.expr for alert in alerts), service.name
            rollout = [alert for alert in alerts if alert.name in CONTROLLER_ALERTS[Controller.ROLLOUT]]
            assert all(f'name="{service.name}"' in alert.expr for alert in rollout)
            assert all(alert.labels["exporter"] == "argo-rollouts" for alert in rollout)
        elif service.workload_controller is Controller.DEPLOYMENT:
            assert controller_alerts == CONTROLLER_ALERTS[Controller.DEPLOYMENT], service.name


def test_the_rollouts_controller_gets_a_valid_servicemonitor_that_keeps_the_rollouts_namespace(
    default_inventory: Inventory,
) -> None:
    monitors = {system.name: rollouts_monitor(system, Settings()) for system in default_inventory.systems}
    assert {name for name, monitor in monitors.items() if monitor is not None} == {"logpilot"}
    monitor = monitors["logpilot"]
    assert monitor is not None
    assert validation_errors(monitor) == []
    assert monitor["metadata"]["namespace"] == "argo-rollouts"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["honorLabels"]) == ("metrics", True)


def test_the_absence_of_the_rollouts_controller_mutes_only_the_rollout_alerts(default_inventory: Inventory) -> None:
    logpilot = _system(default_inventory, "logpilot")
    built = dict(alerting_components(logpilot, DEFAULT_CONFIG.rules))
    (absent,) = [a for g in built["exporters"] for a in g.alerts if a.name == "ArgoRolloutsMetricsDown"]
    assert absent.expr == 'absent(rollout_info{namespace="logpilot"})'
    readers = {
        alert.name
        for groups in built.values()
        for group in groups
        for alert in group.alerts
        if "argo-rollouts" in alert.labels.get("exporter", "").split(",")
    }
    assert readers == CONTROLLER_ALERTS[Controller.ROLLOUT]


def test_cpu_throttling_is_watched_exactly_for_the_services_whose_containers_have_a_cpu_limit(
    default_inventory: Inventory,
) -> None:
    for system in default_inventory.systems:
        groups = _groups(system)
        for service in system.services:
            if service.workload_controller is None:
                continue
            limited = service.resources is not None and service.resources.limits.cpu is not None
            watched = "WorkloadCpuThrottlingHigh" in _names(groups[f"{system.name}-workload-{service.name}"])
            assert watched == limited, f"{system.name}/{service.name}"


def test_a_datastores_statefulset_alerts_carry_the_datastore_and_select_its_statefulset_in_its_namespace(
    default_inventory: Inventory,
) -> None:
    aegis = _system(default_inventory, "aegis")
    store = aegis.datastore("user-postgres")
    assert store.owner is not None and store.owner.team != aegis.owner.team
    alerts = _groups(aegis)["aegis-workload-datastore-user-postgres"]
    assert _names(alerts) == CONTROLLER_ALERTS[Controller.STATEFULSET] | CONTAINER_ALERTS
    for alert in alerts:
        assert alert.labels["datastore"] == "user-postgres"
        assert alert.labels["team"] == store.owner.team
        assert 'namespace="aegis-user-service"' in alert.expr
        assert 'statefulset="postgres"' in alert.expr or 'pod=~"postgres-[0-9]+"' in alert.expr


def test_a_platform_workload_is_answered_by_the_system_owner_and_muted_with_its_node_pool(
    default_inventory: Inventory,
) -> None:
    ecoeco = _system(default_inventory, "ecoeco")
    groups = _groups(ecoeco)
    atlantis = groups["ecoeco-platform-workload-atlantis-atlantis"]
    node_exporter = groups["ecoeco-platform-workload-monitoring-node-exporter"]
    assert {a.labels["node_pool"] for a in atlantis} == {"master"}
    assert all("node_pool" not in a.labels for a in node_exporter)
    assert {a.labels["team"] for a in atlantis + node_exporter} == {ecoeco.owner.team}
    assert all("service" not in a.labels for a in atlantis + node_exporter)


@pytest.mark.parametrize("system_name", ["aegis", "ecoeco", "logpilot"])
def test_every_workload_alerts_runbook_check_names_the_workload_and_a_kubectl_command(
    default_inventory: Inventory, system_name: str
) -> None:
    system = _system(default_inventory, system_name)
    for group, alerts in _groups(system).items():
        for alert in alerts:
            if alert.name not in ALL_CONTROLLER_ALERTS | CONTAINER_ALERTS | {
                "WorkloadCpuThrottlingHigh", "WorkloadJobNotCompleted",
            }:
                continue
            assert alert.case is not None and alert.case.quiet is not None, f"{group}: {alert.name}"
            commands = [check.code for check in alert.checks]
            assert any(command.startswith("kubectl ") for command in commands), f"{group}: {alert.name}"
            namespace = alert.labels.get("namespace")
            assert namespace and any(f"-n {namespace}" in command for command in commands), f"{group}: {alert.name}"


@pytest.mark.parametrize("controller", list(Controller))
def test_a_controllers_pod_pattern_matches_its_pods_and_none_of_a_workload_whose_name_ends_in_its_own(
    controller: Controller,
) -> None:
    pattern = re.compile(controller_pod_pattern("redis", controller))
    assert pattern.fullmatch(controller_test_pod("redis", controller))
    assert not any(pattern.fullmatch(controller_test_pod("argocd-redis", other)) for other in Controller)


def test_a_statefulsets_pod_pattern_takes_only_ordinals() -> None:
    pattern = re.compile(controller_pod_pattern("redis", Controller.STATEFULSET))
    assert pattern.fullmatch("redis-0") and pattern.fullmatch("redis-12")
    assert not any(pattern.fullmatch(controller_test_pod("redis-exporter", other)) for other in Controller)


def test_a_rollout_service_with_the_rollouts_namespace_loads_and_gets_the_controllers_monitor(
    tmp_path: Path,
) -> None:
    system = _shop_with(tmp_path, {"argo_rollouts_namespace": "argo-rollouts"}, controller="rollout")
    monitor = rollouts_monitor(system, Settings())
    assert monitor is not None and monitor["metadata"]["namespace"] == "argo-rollouts"


def _shop_with(tmp_path: Path, platform: Mapping[str, object] | None = None, **service: object) -> System:
    """The shop fixture with its worker (`mailer`) changed as given."""
    inventory = yaml.safe_load((Path(__file__).parent.parent / "fixtures" / "inventory" / "shop.yaml").read_text())
    inventory["services"][1].update(service)
    if platform is not None:
        inventory["platform"] = dict(platform)
    path = tmp_path / "shop.yaml"
    path.write_text(yaml.safe_dump(inventory))
    (system,) = load_inventory([path]).systems
    return system


@pytest.mark.parametrize("controller", [Controller.STATEFULSET, Controller.DAEMONSET])
def test_a_service_run_by_another_controller_gets_its_alerts_in_place_of_the_deployments(
    tmp_path: Path, controller: Controller
) -> None:
    system = _shop_with(tmp_path, controller=controller.value)
    worker = system.services[1]
    alerts = _groups(system)[f"shop-workload-{worker.name}"]
    names = _names(alerts)
    assert names & ALL_CONTROLLER_ALERTS == CONTROLLER_ALERTS[controller]
    assert {"WorkloadCrashLooping", "WorkloadPodsNotReady", "WorkloadMemoryNearLimit"} <= names
    assert not any("kube_deployment_" in alert.expr for alert in alerts)
    pods = f'pod=~"{controller_pod_pattern(worker.name, controller)}"'.replace("\\", "\\\\")
    crash = next(alert for alert in alerts if alert.name == "WorkloadCrashLooping")
    assert pods in crash.expr


@pytest.mark.parametrize("controller", [Controller.STATEFULSET, Controller.DAEMONSET, Controller.ROLLOUT])
def test_the_promtool_cases_of_a_service_pass_under_each_controller(tmp_path: Path, controller: Controller) -> None:
    platform = {"argo_rollouts_namespace": "argo-rollouts"} if controller is Controller.ROLLOUT else None
    system = _shop_with(tmp_path, platform, controller=controller.value)
    folder = tmp_path / "rules"
    folder.mkdir()
    tests = [file for file in write_workload_groups(system, folder) if "-workload-mailer." in file.name]
    assert tests
    result = promtool.test_rules(tests)
    assert result.ok, result.output
