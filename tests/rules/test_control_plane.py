"""The control plane's and cert-manager's rules: generated only where the inventory has them, the
apiserver's SLO with kubernetes-mixin's bounds and the Workbook's factors, and every case passing
under the real promtool, failing when a rule drifts from what it proves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from obsbundle.config import DEFAULT_CONFIG
from obsbundle.documents import Document
from obsbundle.model import System
from obsbundle.monitors.cert_manager import cert_manager_monitor
from obsbundle.render import render
from obsbundle.rules import component_groups, promtool_tests
from obsbundle.rules.cert_manager import cert_manager_groups
from obsbundle.rules.control_plane import control_plane_groups
from obsbundle.settings import Settings
from obsbundle.stacks import Exporter, Node, Stack, exporter_target_labels
from obsbundle.tools import promtool

COMPONENTS = ("control-plane", "cert-manager")
CONTROL_PLANE_ALERTS = {
    "KubeAPIErrorBudgetBurn",
    "KubeAPITerminatedRequests",
    "KubeClientCertificateExpiration",
    "EtcdNoLeader",
    "EtcdHighNumberOfLeaderChanges",
    "EtcdHighFsyncDurations",
    "EtcdHighCommitDurations",
    "EtcdDatabaseQuotaLowSpace",
    "KubeSchedulerDown",
    "KubeControllerManagerDown",
}


def _write(system: System, into: Path) -> list[Path]:
    """The system's control-plane and cert-manager groups as rule and promtool test files; the tests."""
    written = []
    for component, groups in component_groups(system, DEFAULT_CONFIG.rules):
        if component not in COMPONENTS:
            continue
        for group in groups:
            (into / promtool_tests.rule_file_name(group.name)).write_bytes(
                render(Document("rules", {"groups": [group.to_dict()]}))
            )
            for name, content in promtool_tests.test_files(group).items():
                (into / name).write_bytes(render(Document("tests", content)))
                written.append(into / name)
    return written


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory, rule_systems: dict[str, System]) -> dict[str, Path]:
    found = {}
    for name, system in rule_systems.items():
        folder = tmp_path_factory.mktemp(name)
        _write(system, folder)
        found[name] = folder
    return found


def _alert_names(system: System) -> set[str]:
    groups = control_plane_groups(system, DEFAULT_CONFIG.rules)
    return {alert.name for group in groups for alert in group.alerts}


def test_only_a_self_managed_control_plane_gets_control_plane_rules(rule_systems: dict[str, System]) -> None:
    assert _alert_names(rule_systems["ecoeco"]) == CONTROL_PLANE_ALERTS
    assert _alert_names(rule_systems["shipyard"]) == CONTROL_PLANE_ALERTS
    # Aegis and LogPilot run on managed control planes (EKS and a cloud cluster).
    assert control_plane_groups(rule_systems["aegis"], DEFAULT_CONFIG.rules) == []
    assert control_plane_groups(rule_systems["logpilot"], DEFAULT_CONFIG.rules) == []


def test_every_system_that_names_a_cert_manager_namespace_gets_its_certificate_alerts(
    rule_systems: dict[str, System],
) -> None:
    for name in ("ecoeco", "aegis", "logpilot", "shipyard"):
        (group,) = cert_manager_groups(rule_systems[name], DEFAULT_CONFIG.rules)
        assert [alert.name for alert in group.alerts] == [
            "CertManagerCertExpirySoon", "CertManagerCertExpirySoon", "CertManagerCertNotReady"
        ]


def test_the_burn_tiers_are_the_workbooks_factors_of_the_one_percent_budget_with_their_window_pairs(
    rule_systems: dict[str, System],
) -> None:
    groups = control_plane_groups(rule_systems["ecoeco"], DEFAULT_CONFIG.rules)
    burns = [alert for group in groups for alert in group.alerts if alert.name == "KubeAPIErrorBudgetBurn"]
    factor = re.compile(r"> \(([0-9.]+) \* 0\.01\)")
    found = {
        (alert.labels["slo"], alert.labels["window"], alert.severity, factor.findall(alert.expr)[0]) for alert in burns
    }
    tiers = {("1h-5m", "critical", "14.4"), ("6h-30m", "critical", "6"), ("1d-2h", "warning", "3"),
             ("3d-6h", "warning", "1")}
    assert found == {(f"apiserver-{verb}", *tier) for verb in ("read", "write") for tier in tiers}


@pytest.mark.parametrize("system", ["ecoeco", "shipyard", "aegis"])
def test_promtool_accepts_the_rule_files_and_every_control_plane_and_certificate_case_passes(
    tree: dict[str, Path], system: str
) -> None:
    folder = tree[system]
    checked = promtool.check_rules(sorted(folder.glob("*.rules.yaml")))
    assert checked.ok, checked.output
    tests = sorted(folder.glob("*.test.yaml"))
    assert tests
    result = promtool.test_rules(tests)
    assert result.ok, result.output


def _drift(folder: Path, group: str, old: str, new: str, tested_by: str | None = None) -> promtool.ToolResult:
    """The tests of `tested_by` (else of `group`) with `old` replaced by `new` in `group`'s rules."""
    rules = folder / promtool_tests.rule_file_name(group)
    text = rules.read_text()
    assert old in text, f"{old!r} is not in {rules.name}"
    rules.write_text(text.replace(old, new))
    try:
        return promtool.test_rules(sorted(folder.glob(f"{tested_by or group}.*test.yaml")))
    finally:
        rules.write_text(text)


def test_the_fastest_burn_case_fails_when_its_factor_drifts_above_the_outage_it_proves(
    tree: dict[str, Path],
) -> None:
    result = _drift(tree["ecoeco"], "ecoeco-control-plane", "> (14.4 * 0.01)", "> (40 * 0.01)")
    assert not result.ok and "KubeAPIErrorBudgetBurn (apiserver read (1h-5m)) fires" in result.output


def test_a_five_hundred_no_longer_counted_bad_fails_the_burn_cases(tree: dict[str, Path]) -> None:
    result = _drift(tree["ecoeco"], "ecoeco-apiserver-slo", 'code=~"5.."', 'code=~"6.."', "ecoeco-control-plane")
    assert not result.ok and "KubeAPIErrorBudgetBurn" in result.output


def test_the_certificate_warning_case_fails_when_the_warning_no_longer_stops_where_the_critical_starts(
    tree: dict[str, Path],
) -> None:
    result = _drift(tree["ecoeco"], "ecoeco-cert-manager", "< 1814400 >= 86400", "< 1814400")
    assert not result.ok and "CertManagerCertExpirySoon" in result.output


def test_a_never_issued_certificate_does_not_fire_the_expiry_alert(tree: dict[str, Path]) -> None:
    # cert-manager reports an expiration of 0 for a certificate it never issued: without `> 0` it
    # would read as expired 56 years ago, and the expiry alert would fire on every new certificate
    # (CertManagerCertNotReady is the one that says so).
    scenario = tree["ecoeco"] / "never-issued.test.yaml"
    scenario.write_text(yaml.safe_dump({
        "rule_files": [promtool_tests.rule_file_name("ecoeco-cert-manager")],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [{
                "series": 'certmanager_certificate_expiration_timestamp_seconds{job="cert-manager",'
                          'namespace="default",name="new-tls"}',
                "values": "0x90",
            }],
            "alert_rule_test": [{"eval_time": "80m", "alertname": "CertManagerCertExpirySoon", "exp_alerts": []}],
        }],
    }))
    assert promtool.test_rules([scenario]).ok


def _slo_scenario(folder: Path, buckets: dict[str, int], expected_bad: float) -> promtool.ToolResult:
    """Cluster-wide LISTs, 100 a minute, none failing, with the given `le` buckets: the 5-minute
    bad events the SLO records for reads."""
    target = 'job="apiserver",component="apiserver",resource="pods",scope="cluster",verb="LIST",version="v1"'
    inputs = [
        {"series": f'apiserver_request_total{{{target},code="200"}}', "values": "0+100x10"},
        {"series": f"apiserver_request_sli_duration_seconds_count{{{target}}}", "values": "0+100x10"},
        *(
            {"series": f'apiserver_request_sli_duration_seconds_bucket{{{target},le="{le}"}}', "values": f"0+{n}x10"}
            for le, n in buckets.items()
        ),
    ]
    test = folder / "cluster-list.test.yaml"
    test.write_text(yaml.safe_dump({
        "rule_files": [promtool_tests.rule_file_name("ecoeco-apiserver-slo")],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": inputs,
            "promql_expr_test": [{
                "expr": 'apiserver_verb:slo_bad_events:increase5m{verb="read"}',
                "eval_time": "10m",
                "exp_samples": [{"labels": 'apiserver_verb:slo_bad_events:increase5m{system="ecoeco",verb="read"}',
                                 "value": expected_bad}],
            }],
        }],
    }))
    return promtool.test_rules([test])


def test_a_cluster_wide_list_slower_than_thirty_seconds_is_bad_where_the_stack_keeps_that_bucket(
    tree: dict[str, Path],
) -> None:
    # 40 of 100 a minute took between 30 s and 60 s: 200 bad requests in 5 minutes.
    result = _slo_scenario(tree["ecoeco"], {"30": 60, "60": 100, "+Inf": 100}, 200)
    assert result.ok, result.output


def test_a_cluster_wide_list_falls_back_to_sixty_seconds_where_kube_prometheus_dropped_the_thirty_second_bucket(
    tree: dict[str, Path],
) -> None:
    # kube-prometheus's apiserver ServiceMonitor drops le="30" at scrape: the same requests are
    # then within the 60 s bound, not all counted slow for want of a bucket.
    result = _slo_scenario(tree["ecoeco"], {"60": 100, "+Inf": 100}, 0)
    assert result.ok, result.output


def test_cert_manager_is_scraped_through_a_generated_service_monitor_that_keeps_the_certificates_namespace(
    rule_systems: dict[str, System],
) -> None:
    monitor = cert_manager_monitor(rule_systems["ecoeco"], Settings())
    assert monitor is not None
    spec = monitor["spec"]
    assert monitor["metadata"]["namespace"] == "kube-system" == spec["namespaceSelector"]["matchNames"][0]
    assert spec["jobLabel"] == "app.kubernetes.io/name"
    assert spec["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "cert-manager", "app.kubernetes.io/component": "controller"
    }
    (endpoint,) = spec["endpoints"]
    assert endpoint["port"] == "http-metrics" and endpoint["honorLabels"] is True


@pytest.mark.parametrize("stack", list(Stack), ids=[stack.value for stack in Stack])
def test_the_apiserver_target_names_no_pod_or_node_and_etcds_job_differs_between_the_stacks(stack: Stack) -> None:
    node = Node("master-1", "10.0.0.11")
    apiserver = exporter_target_labels(stack, Exporter.APISERVER, node)
    assert apiserver == {"job": "apiserver", "instance": "10.0.0.11:6443", "namespace": "default",
                         "service": "kubernetes", "endpoint": "https"}
    etcd = exporter_target_labels(stack, Exporter.ETCD, node)
    assert etcd["job"] == {Stack.KUBE_PROMETHEUS_STACK: "kube-etcd", Stack.KUBE_PROMETHEUS: "etcd"}[stack]
    assert re.fullmatch(DEFAULT_CONFIG.rules.etcd_job, etcd["job"])
    assert "container" not in etcd
