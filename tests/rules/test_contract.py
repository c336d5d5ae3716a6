"""The rules keep the contracts others build on: recorded series names (dashboards), alert labels and
annotations (routing), PrometheusRule objects (the Operator's CRD), and a test per alert."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from obsbundle import naming
from obsbundle.bundle import system_documents
from obsbundle.config import DEFAULT_CONFIG, build_config
from obsbundle.durations import format_duration
from obsbundle.model import Inventory, System
from obsbundle.render import render
from obsbundle.rules import component_groups, prometheus_rule, rule_groups
from obsbundle.rules.definitions import Alert, Recording
from obsbundle.rules.promtool_tests import rule_file_name
from obsbundle.settings import OutputFormat, Settings
from obsbundle.slo_math import BURN_TIERS
from tests.support.crds import validation_errors

COMPONENT_PREFIXES = (
    "Slo", "Api", "NodePool", "Node", "Workload", "Volume", "Postgres", "PgBouncer", "Queue", "ArgoCd",
    "ServiceTarget", "PoolQueue", "Dependency", "Rabbitmq", "Kafka", "Redis", "Etcd", "KubeAPI", "KubeClient",
    "KubeScheduler", "KubeControllerManager", "CertManager", "KubeNode", "Kubelet",
)  # fmt: skip
SEVERITIES = {"critical", "warning", "info"}


def _alerts(system: System) -> list[Alert]:
    return [alert for group in rule_groups(system, DEFAULT_CONFIG.rules) for alert in group.alerts]


def _recordings(system: System) -> list[Recording]:
    groups = rule_groups(system, DEFAULT_CONFIG.rules)
    return [rule for group in groups for rule in group.rules if isinstance(rule, Recording)]


def test_every_recorded_series_named_in_the_naming_contract_is_recorded(default_inventory: Inventory) -> None:
    recorded = {rule.record for system in default_inventory.systems for rule in _recordings(system)}
    expected = {
        naming.SERVICE_REQUESTS_RATE, naming.SERVICE_ERRORS_RATE, naming.SERVICE_ERROR_RATIO,
        naming.SERVICE_DURATION_BUCKETS_RATE, naming.SERVICE_LATENCY_QUANTILE,
        naming.SLO_GOOD_EVENTS, naming.SLO_TOTAL_EVENTS, naming.SLO_OBJECTIVE, naming.SLO_ERROR_BUDGET_REMAINING,
        naming.NODE_POOL_MEMBERSHIP, naming.NODE_CPU_UTILISATION, naming.NODE_MEMORY_UTILISATION,
        naming.NODE_FILESYSTEM_USAGE, naming.POOL_CPU_UTILISATION, naming.POOL_MEMORY_UTILISATION,
        naming.POOL_FILESYSTEM_USAGE, naming.POOL_NETWORK_RECEIVE, naming.POOL_NETWORK_TRANSMIT,
        naming.POOL_NODES_READY, naming.POOL_NODES,
    }  # fmt: skip
    periods = {slo.window for system in default_inventory.systems for s in system.services for slo in s.slos}
    for window in {"5m", "30m", "1h", "2h", "6h", "1d", "3d", *periods}:
        expected |= {naming.slo_error_ratio(window), naming.slo_burn_rate(window)}
        expected |= {naming.slo_good_events(window), naming.slo_total_events(window)}
    assert expected - recorded == set()


def test_per_service_recordings_carry_system_namespace_and_service(default_inventory: Inventory) -> None:
    for system in default_inventory.systems:
        for rule in _recordings(system):
            if rule.record.startswith("namespace_service"):
                assert {"system", "namespace", "service"} <= set(rule.labels), rule.record
                assert rule.labels["system"] == system.name


def test_recording_rules_read_only_their_own_system_recorded_series(default_inventory: Inventory) -> None:
    """Two systems in one Prometheus must not mix: every recorded series a rule reads is selected by system."""
    for system in default_inventory.systems:
        for group in rule_groups(system, DEFAULT_CONFIG.rules):
            for rule in group.rules:
                for match in re.finditer(r"\b([a-z_]+:[a-z_0-9]+:[a-z_0-9]+)\{([^}]*)\}", rule.expr):
                    assert f'system="{system.name}"' in match.group(2), f"{group.name}: {match.group(0)}"


def test_alert_names_are_camel_case_with_a_component_prefix(rule_systems: dict[str, System]) -> None:
    for system in rule_systems.values():
        for alert in _alerts(system):
            assert re.fullmatch(r"[A-Z][A-Za-z]+", alert.name), alert.name
            # An exporter's absence alert is prefixed with the exporter it watches (KubeletDown).
            absence = alert.name in naming.EXPORTER_ABSENT_ALERTS.values()
            prefixed = alert.name.startswith(COMPONENT_PREFIXES)
            assert alert.name == naming.ALERT_WATCHDOG or absence or prefixed, alert.name


def test_every_alert_carries_severity_system_and_its_owners_team(rule_systems: dict[str, System]) -> None:
    for system in rule_systems.values():
        teams = {system.owner.team} | {service.owner.team for service in system.services if service.owner}
        for alert in _alerts(system):
            labels = alert.all_labels
            if alert.name == naming.ALERT_WATCHDOG:
                assert labels["severity"] == "none"
            else:
                assert labels["severity"] in SEVERITIES, alert.name
            assert labels[naming.SYSTEM_LABEL] == system.name
            assert labels[naming.TEAM_LABEL] in teams
            if naming.SERVICE_LABEL in labels:
                service = system.service(labels[naming.SERVICE_LABEL])
                assert labels[naming.TEAM_LABEL] == system.owner_of(service).team
                assert labels[naming.NAMESPACE_LABEL] == service.namespace
                assert labels.get(naming.NODE_POOL_LABEL) == service.node_pool, alert.name


def test_slo_alerts_name_their_slo_and_window_pair_and_the_tier_sets_severity(rule_systems: dict[str, System]) -> None:
    severity_of = {tier.window_pair: tier.severity for tier in BURN_TIERS}
    for system in rule_systems.values():
        burns = [alert for alert in _alerts(system) if alert.name == "SloErrorBudgetBurn"]
        slos = {(s.name, slo.name) for s in system.services for slo in s.slos}
        assert {(a.labels["service"], a.labels["slo"]) for a in burns} == slos
        for alert in burns:
            assert alert.severity == severity_of[alert.labels[naming.WINDOW_LABEL]]


def test_alerts_computed_from_the_exporter_carry_the_exporter_label(rule_systems: dict[str, System]) -> None:
    for system in rule_systems.values():
        for alert in _alerts(system):
            from_exporter = "poolq_" in alert.expr
            assert (alert.labels.get(naming.EXPORTER_LABEL) == naming.EXPORTER_LABEL_VALUE) == from_exporter, alert.name


def test_datastore_and_queue_alerts_name_their_datastore_or_queue(rule_systems: dict[str, System]) -> None:
    for system in rule_systems.values():
        stores = {store.name for store in system.datastores}
        queues = {queue.name for queue in system.queues}
        for alert in _alerts(system):
            if alert.name.startswith(("Postgres", "PgBouncer", naming.ALERT_EXPORTER_SOURCE_DOWN)):
                assert alert.labels[naming.DATASTORE_LABEL] in stores
            if alert.name.startswith("Queue"):
                assert alert.labels[naming.QUEUE_LABEL] in queues


def test_every_alert_links_its_runbook_and_the_panel_that_explains_it(rule_systems: dict[str, System]) -> None:
    for system in rule_systems.values():
        for alert in _alerts(system):
            annotations = alert.annotations()
            assert set(annotations) == {"summary", "description", "runbook_url", "dashboard_url"}
            expected = system.monitoring.runbook_url.replace("{system}", system.name).replace("{alert}", alert.name)
            assert annotations["runbook_url"] == expected
            assert annotations["dashboard_url"].startswith(system.monitoring.grafana_url.rstrip("/") + "/d/")
            assert "viewPanel=" in annotations["dashboard_url"]
            assert "{{" not in annotations["summary"], "summaries are static"


def test_every_prometheus_rule_object_is_valid_against_the_operator_crd(rule_systems: dict[str, System]) -> None:
    for system in rule_systems.values():
        for component, groups in component_groups(system, DEFAULT_CONFIG.rules):
            obj = prometheus_rule(system, Settings(), component, [group.to_dict() for group in groups])
            assert validation_errors(obj) == [], f"{system.name}-{component}"
            assert obj["metadata"]["namespace"] == system.monitoring.namespace
            assert system.monitoring.selector_labels.items() <= obj["metadata"]["labels"].items()


def test_the_written_prometheus_rules_and_rule_files_hold_the_groups_they_were_built_from(
    rule_systems: dict[str, System],
) -> None:
    """Each group is rendered once, for its PrometheusRule and its plain file."""
    for system in rule_systems.values():
        documents = {document.path: document for document in system_documents(system, DEFAULT_CONFIG)}
        for component, groups in component_groups(system, DEFAULT_CONFIG.rules):
            written = yaml.safe_load(render(documents[f"{system.name}-{component}-prometheusrule.yaml"]))
            expected = prometheus_rule(system, Settings(), component, [group.to_dict() for group in groups])
            assert written == expected, f"{system.name}-{component}"
            for group in groups:
                plain = yaml.safe_load(render(documents[f"prometheus/rules/{rule_file_name(group.name)}"]))
                assert plain == {"groups": [group.to_dict()]}


def test_group_names_are_unique_and_intervals_are_sensible(rule_systems: dict[str, System]) -> None:
    for system in rule_systems.values():
        groups = rule_groups(system, DEFAULT_CONFIG.rules)
        names = [group.name for group in groups]
        assert len(names) == len(set(names))
        for group in groups:
            assert group.name.startswith(f"{system.name}-")
            # Windows of a day and more (the services' SLOs and the apiserver's) move slowly enough for 5m.
            slow = group.name.endswith(("slo-windows-long", "apiserver-slo-long"))
            assert group.interval == ("5m" if slow else "1m"), group.name


def _test_files(tree: Path, system: str) -> list[dict[str, Any]]:
    return [yaml.safe_load(path.read_text()) for path in sorted((tree / system).rglob("*.test.yaml"))]


def test_every_alert_rule_has_a_test_where_it_fires(rule_tree: Path, rule_systems: dict[str, System]) -> None:
    for name, system in rule_systems.items():
        fired: dict[str, list[dict[str, str]]] = defaultdict(list)
        for content in _test_files(rule_tree, name):
            for test in content["tests"]:
                for check in test.get("alert_rule_test", []):
                    fired[check["alertname"]] += [alert["exp_labels"] for alert in check["exp_alerts"]]
        for alert in _alerts(system):
            assert any(alert.all_labels.items() <= labels.items() for labels in fired[alert.name]), (
                f"{name}: no test expects {alert.name} {alert.all_labels} to fire"
            )


def test_every_alert_name_has_a_test_where_it_stays_quiet(rule_tree: Path, rule_systems: dict[str, System]) -> None:
    for name, system in rule_systems.items():
        quiet = {
            check["alertname"]
            for content in _test_files(rule_tree, name)
            for test in content["tests"]
            for check in test.get("alert_rule_test", [])
            if not check["exp_alerts"]
        }
        names = {alert.name for alert in _alerts(system)} - {naming.ALERT_WATCHDOG}
        assert names - quiet == set()


def test_test_files_load_the_rule_files_next_to_them_in_evaluation_order(rule_tree: Path) -> None:
    for path in sorted(rule_tree.rglob("*.test.yaml")):
        content = yaml.safe_load(path.read_text())
        for rule_file in content["rule_files"]:
            assert (path.parent / rule_file).is_file(), f"{path.name}: {rule_file}"
        assert [f"{group}.rules.yaml" for group in content["group_eval_order"]] == content["rule_files"]


@pytest.mark.parametrize("output_format", list(OutputFormat))
def test_plain_rule_files_tests_and_runbooks_are_written_in_both_formats(
    shipyard: System, output_format: OutputFormat
) -> None:
    paths = {document.path for document in system_documents(shipyard, build_config(output_format))}
    group_names = [group.name for group in rule_groups(shipyard, DEFAULT_CONFIG.rules)]
    assert {f"prometheus/rules/{name}.rules.yaml" for name in group_names} <= paths
    assert "runbooks/SloErrorBudgetBurn.md" in paths
    has_objects = any(path.endswith("-prometheusrule.yaml") for path in paths)
    assert has_objects == (output_format is OutputFormat.OPERATOR)


def test_slo_burn_alerts_wait_a_fifth_of_their_short_window(rule_systems: dict[str, System]) -> None:
    for_of = {tier.window_pair: format_duration(tier.short_window_s // 5) for tier in BURN_TIERS}
    for system in rule_systems.values():
        for alert in _alerts(system):
            if alert.name == "SloErrorBudgetBurn":
                assert alert.for_ == for_of[alert.labels[naming.WINDOW_LABEL]]
