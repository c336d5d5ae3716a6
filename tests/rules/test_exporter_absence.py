"""Silence is never health: each alert names the exporters it reads, each exporter read has one absence
alert for the system's owner, and the absence alerts see the targets both stacks give the exporters."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import promql_parser
import pytest

from obsbundle import naming
from obsbundle.config import DEFAULT_CONFIG
from obsbundle.loader import load_inventory
from obsbundle.model import System
from obsbundle.monitors.workloads import needs_exporter
from obsbundle.providers import DATASTORE_EXPORTERS, Provider
from obsbundle.render import render
from obsbundle.rules import generate_rules, rule_groups
from obsbundle.rules.control_plane import CONTROLLER_MANAGER_DOWN, SCHEDULER_DOWN
from obsbundle.rules.definitions import Alert
from obsbundle.stacks import Exporter, Node, Stack, exporter_target_labels
from obsbundle.tools import promtool

TESTS = Path(__file__).resolve().parent.parent
TEST_SYSTEM_FILES = (
    *sorted((TESTS / "fixtures" / "inventory").glob("*.yaml")),
    *sorted((TESTS / "rules" / "fixtures").glob("*.yaml")),
)
ABSENCE_NAMES = set(naming.EXPORTER_ABSENT_ALERTS.values())
OWN_DOWN_ALERTS = {
    Exporter.KUBE_SCHEDULER: SCHEDULER_DOWN.name,
    Exporter.KUBE_CONTROLLER_MANAGER: CONTROLLER_MANAGER_DOWN.name,
}
"""Exporters whose only series read is `up`: their down alert is the control plane's own, not the absence pass's."""


@pytest.fixture(scope="module")
def systems(rule_systems: dict[str, System]) -> dict[str, System]:
    """The default fleet and every test system."""
    found = dict(rule_systems)
    for path in TEST_SYSTEM_FILES:
        for system in load_inventory([path]).systems:
            found[system.name] = system
    return found


def _alerts(system: System) -> list[Alert]:
    return [alert for group in rule_groups(system, DEFAULT_CONFIG.rules) for alert in group.alerts]


def _exporter_label(system: System, name: str) -> set[str]:
    return {alert.labels.get(naming.EXPORTER_LABEL, "") for alert in _alerts(system) if alert.name == name}


def test_alerts_name_the_exporters_they_read_through_recording_rules_sorted_and_comma_joined(
    systems: dict[str, System],
) -> None:
    aegis, shipyard = systems["aegis"], systems["shipyard"]
    # node_pool:* series join node-exporter's series to kube-state-metrics' pool labels.
    assert _exporter_label(aegis, "NodeCpuHigh") == {"kube-state-metrics,node-exporter"}
    assert _exporter_label(aegis, "NodeNotReady") == {"kube-state-metrics"}
    assert _exporter_label(aegis, "WorkloadMemoryNearLimit") == {"cadvisor,kube-state-metrics"}
    assert _exporter_label(aegis, "VolumeAlmostFull") == {"kubelet"}
    assert _exporter_label(aegis, "QueueConsumerLagHigh") == {"kafka-exporter"}
    assert _exporter_label(shipyard, "ArgoCdAppOutOfSync") == {"argocd"}
    assert _exporter_label(aegis, "PostgresConnectionsHigh") == {naming.EXPORTER_LABEL_VALUE}
    # Alerts on `up` and on the services' own metrics read no exporter; nor do the absence alerts.
    for name in ("ServiceTargetDown", "ApiHighErrorRatio", "SloErrorBudgetBurn", *ABSENCE_NAMES):
        assert _exporter_label(aegis, name) <= {""}, name


def test_each_exporter_the_rules_read_has_exactly_one_absence_alert_and_unread_exporters_none(
    systems: dict[str, System],
) -> None:
    for system in systems.values():
        alerts = _alerts(system)
        read = {
            Provider(value)
            for alert in alerts
            for value in alert.labels.get(naming.EXPORTER_LABEL, "").split(",")
            if value
        }
        absence = [alert.name for alert in alerts if alert.name in ABSENCE_NAMES]
        # A datastore's own exporter has a down alert per datastore (datastore_health), and RabbitMQ's
        # plugin runs in the broker, whose RabbitmqNodeDown says it: neither has a system-wide absence.
        per_datastore = {*naming.DATASTORE_EXPORTER_DOWN_ALERTS, Provider.RABBITMQ}
        expected = sorted(naming.EXPORTER_ABSENT_ALERTS[provider] for provider in read - per_datastore)
        assert sorted(absence) == expected, system.name
        assert (Provider.POOL_QUEUE_EXPORTER in read) == needs_exporter(system), system.name
        for store in system.datastores:
            down = naming.DATASTORE_EXPORTER_DOWN_ALERTS.get(DATASTORE_EXPORTERS.get(store.kind, Provider.PROMETHEUS))
            if store.metrics is not None and down is not None:
                assert any(a.name == down and a.labels.get(naming.DATASTORE_LABEL) == store.name for a in alerts), (
                    system.name, store.name
                )
    # LogPilot has neither Kafka queues nor ArgoCD: no alert for their absence.
    logpilot = {alert.name for alert in _alerts(systems["logpilot"])}
    assert {"KafkaExporterDown", "ArgoCdMetricsDown"} & logpilot == set()
    assert "KafkaExporterDown" in {alert.name for alert in _alerts(systems["aegis"])}


def test_absence_alerts_go_to_the_system_owner_and_page_when_they_hide_a_page(systems: dict[str, System]) -> None:
    for system in systems.values():
        alerts = _alerts(system)
        for absence in (alert for alert in alerts if alert.name in ABSENCE_NAMES - {naming.ALERT_EXPORTER_DOWN}):
            provider = next(p for p, name in naming.EXPORTER_ABSENT_ALERTS.items() if name == absence.name)
            muted = [
                alert for alert in alerts
                if provider.value in alert.labels.get(naming.EXPORTER_LABEL, "").split(",")
            ]  # fmt: skip
            assert absence.labels == {naming.SYSTEM_LABEL: system.name, naming.TEAM_LABEL: system.owner.team}
            hides_a_page = any(alert.severity == "critical" for alert in muted)
            assert absence.severity == ("critical" if hides_a_page else "warning"), (system.name, absence.name)
            assert absence.for_ == DEFAULT_CONFIG.rules.exporter_absent_for


def _up_matchers(expr: str) -> promql_parser.Matchers:
    """The matchers of `up{…}` inside `absent(up{…} == 1)`."""
    found: list[promql_parser.Matchers] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name == "up":
            found.append(node.matchers)

    promql_parser.walk(promql_parser.parse(expr), visit)
    [matchers] = found
    return matchers


def _matches(matchers: promql_parser.Matchers, labels: dict[str, str]) -> bool:
    for matcher in matchers.matchers:
        value = labels.get(matcher.name, "")
        if matcher.op == promql_parser.MatchOp.Re:  # etcd's job, which the stacks name differently
            if not re.fullmatch(matcher.value, value):
                return False
            continue
        assert matcher.op == promql_parser.MatchOp.Equal, "the absence selectors are equality or regex matchers"
        if value != matcher.value:
            return False
    return True


@pytest.mark.parametrize("stack", list(Stack))
def test_each_exporter_absence_selector_matches_that_exporters_targets_and_no_other_under_both_stacks(
    systems: dict[str, System], stack: Stack
) -> None:
    node = Node(name="worker-a1b2c", host_ip="10.0.1.21")
    targets = {exporter: exporter_target_labels(stack, exporter, node) for exporter in Exporter}
    names = ABSENCE_NAMES | set(OWN_DOWN_ALERTS.values())
    absences = {alert.name: alert for alert in _alerts(systems["shipyard"]) if alert.name in names}
    for exporter in Exporter:
        alert = absences[OWN_DOWN_ALERTS.get(exporter) or naming.EXPORTER_ABSENT_ALERTS[Provider(exporter.value)]]
        matchers = _up_matchers(alert.expr)
        assert [other for other, labels in targets.items() if _matches(matchers, labels)] == [exporter], alert.expr


def _all_systems_rule_files(tmp_path: Path, systems: dict[str, System]) -> Iterator[tuple[str, Path]]:
    for system in systems.values():
        for document in generate_rules(system, DEFAULT_CONFIG):
            if document.path.startswith("prometheus/rules/"):
                target = tmp_path / system.name / Path(document.path).name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(render(document))
        yield system.name, tmp_path / system.name


def test_the_exporter_absence_and_target_promtool_tests_of_every_system_pass(
    systems: dict[str, System], tmp_path: Path
) -> None:
    failures, ran = [], 0
    for name, folder in _all_systems_rule_files(tmp_path, systems):
        files = sorted(folder.glob(f"{name}-exporters*.test.yaml")) + sorted(folder.glob(f"{name}-targets*.test.yaml"))
        assert files, name
        for file in files:
            ran += 1
            result = promtool.test_rules([file])
            if not result.ok:
                failures.append(result.output)
    assert not failures, "\n\n".join(failures)
    assert ran >= 2 * len(systems)
