"""External dependencies: the Probes and blackbox modules generated for them, the loader's checks,
the alerts' severities and runbooks, and the row on the dashboards of the services that use them."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from obsbundle import naming
from obsbundle.bundle import dashboards_of, system_documents
from obsbundle.config import DEFAULT_CONFIG
from obsbundle.errors import InputError
from obsbundle.links import PanelId
from obsbundle.loader import load_inventory
from obsbundle.model import System
from obsbundle.monitors.probes import (
    BLACKBOX_CONFIG,
    BLACKBOX_HELM_VALUES,
    HTTP_2XX,
    HTTP_REACHABLE,
    generate_probes,
    probe,
    probe_scrape_config,
)
from obsbundle.promql import selector
from obsbundle.rules import alerting_components, rule_documents, rule_groups
from obsbundle.rules.definitions import Alert
from obsbundle.settings import OutputFormat, Settings
from obsbundle.stacks import probe_target_labels
from obsbundle.tools import promtool
from tests.conftest import REPO
from tests.support.crds import validation_errors

SYSTEM: dict[str, Any] = {
    "apiVersion": "obsbundle/v1",
    "kind": "System",
    "name": "probed",
    "cluster": "probed-test",
    "owner": {"team": "platform", "slack_channel": "#probed-alerts"},
    "monitoring": {
        "grafana_url": "https://grafana.probed.test",
        "alertmanager_url": "https://alertmanager.probed.test",
        "runbook_url": "https://runbooks.probed.test/{system}/{alert}.md",
    },
    "services": [
        {"name": "checkout", "namespace": "shop", "metrics": {"port": "http"}},
        {"name": "mailer", "namespace": "shop", "metrics": {"port": "http"}},
    ],
    "dependencies": [
        {"name": "payments", "url": "https://api.payments.example/v1", "module": HTTP_REACHABLE,
         "used_by": ["checkout"]},
        {"name": "shop-public", "url": "https://shop.example/", "module": HTTP_REACHABLE, "public_entry": True,
         "used_by": ["checkout", "mailer"]},
        {"name": "legacy-feed", "url": "http://feed.example/", "latency_alert": "10s", "interval": "30s"},
    ],
}


def _load(tmp_path: Path, data: dict[str, Any]) -> System:
    path = tmp_path / "probed.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    [system] = load_inventory([path]).systems
    return system


def _problems(tmp_path: Path, mutate: Any) -> str:
    data = copy.deepcopy(SYSTEM)
    mutate(data)
    with pytest.raises(InputError) as raised:
        _load(tmp_path, data)
    return str(raised.value)


@pytest.fixture
def system(tmp_path: Path) -> System:
    return _load(tmp_path, SYSTEM)


def _fleet() -> tuple[System, ...]:
    return load_inventory([REPO / "inventory"]).systems


def _alerts(system: System, name: str) -> list[Alert]:
    return [
        alert for group in rule_groups(system, DEFAULT_CONFIG.rules) for alert in group.alerts if alert.name == name
    ]


# --- Probes and the blackbox configuration ----------------------------------------------------------


def test_every_dependency_of_the_fleet_gets_a_probe_that_passes_the_probe_crd() -> None:
    probes = [
        document.content
        for system in _fleet()
        for document in generate_probes(system, DEFAULT_CONFIG)
        if document.kubernetes
    ]
    assert len(probes) == sum(len(system.dependencies) for system in _fleet()) == 10
    for obj in probes:
        assert validation_errors(obj) == [], obj["metadata"]["name"]


def test_the_crd_check_refuses_a_probe_without_a_prober_url(system: System) -> None:
    obj = probe(system, system.dependencies[0], Settings())
    del obj["spec"]["prober"]["url"]
    obj["spec"]["interval"] = "every minute"
    errors = validation_errors(obj)
    assert any("url" in error for error in errors) and any("interval" in error for error in errors), errors


def test_a_probes_series_carry_its_job_the_url_as_instance_and_the_system_and_dependency(system: System) -> None:
    obj = probe(system, next(d for d in system.dependencies if d.name == "payments"), Settings())
    assert probe_target_labels(obj) == {
        "job": "probe/monitoring/payments",
        "instance": "https://api.payments.example/v1",
        "namespace": "monitoring",
        naming.SYSTEM_LABEL: "probed",
        naming.DEPENDENCY_LABEL: "payments",
    }


def test_the_scrape_config_gives_the_same_job_and_labels_as_the_operator_gives_the_probe(system: System) -> None:
    for dependency in system.dependencies:
        obj = probe(system, dependency, Settings())
        scrape = probe_scrape_config(obj)
        labels = probe_target_labels(obj)
        assert scrape["job_name"] == labels["job"]
        [static] = scrape["static_configs"]
        assert static["targets"] == [labels["instance"]]
        assert static["labels"] == {k: v for k, v in labels.items() if k not in ("job", "instance")}
        assert scrape["params"] == {"module": [dependency.module]}
        assert scrape["relabel_configs"][-1] == {
            "target_label": "__address__", "replacement": system.monitoring.blackbox_exporter,
        }


def test_the_scrape_timeout_leaves_room_for_a_probe_twice_as_slow_as_its_latency_alert(system: System) -> None:
    timeouts = {d.name: probe(system, d, Settings())["spec"]["scrapeTimeout"] for d in system.dependencies}
    # 5s by default: Prometheus's own 10s; 10s: 20s, within the 30s interval.
    assert timeouts == {"payments": "10s", "shop-public": "10s", "legacy-feed": "20s"}


def test_the_generated_modules_are_http_2xx_as_blackbox_defines_it_and_http_reachable_below_500(
    system: System,
) -> None:
    documents = {document.path: document.content for document in generate_probes(system, DEFAULT_CONFIG)}
    modules = documents[BLACKBOX_CONFIG]["modules"]
    assert modules[HTTP_2XX] == {"prober": "http", "http": {"preferred_ip_protocol": "ip4"}}
    reachable = modules[HTTP_REACHABLE]["http"]
    codes = reachable["valid_status_codes"]
    assert (codes[0], codes[-1], len(codes), 401 in codes, 500 in codes) == (200, 499, 300, True, False)
    assert reachable["tls_config"] == {"insecure_skip_verify": False}
    assert reachable["follow_redirects"] is True and reachable["preferred_ip_protocol"] == "ip4"
    assert documents[BLACKBOX_HELM_VALUES] == {"config": {"modules": modules}}


def test_a_system_without_dependencies_gets_no_probe_and_no_blackbox_files(tmp_path: Path) -> None:
    data = copy.deepcopy(SYSTEM)
    del data["dependencies"]
    assert list(generate_probes(_load(tmp_path, data), DEFAULT_CONFIG)) == []


def test_the_prometheus_format_keeps_the_blackbox_files_and_drops_the_probes(system: System) -> None:
    config = dataclasses.replace(DEFAULT_CONFIG, output=Settings(output_format=OutputFormat.PROMETHEUS))
    paths = {document.path for document in system_documents(system, config)}
    assert {BLACKBOX_CONFIG, BLACKBOX_HELM_VALUES} <= paths
    assert not any(path.endswith("-probe.yaml") for path in paths)


# --- The loader's checks ------------------------------------------------------------------------------


def test_a_module_obsbundle_does_not_write_is_refused_with_the_known_ones_and_how_to_add_one(tmp_path: Path) -> None:
    message = _problems(tmp_path, lambda data: data["dependencies"][0].update(module="http_post_2xx"))
    assert "dependencies[0].module" in message
    assert "'http_post_2xx'" in message and "known: http_2xx, http_reachable" in message
    assert "Unknown module" in message and "MODULES in monitors/probes.py" in message


def test_used_by_must_name_a_defined_service(tmp_path: Path) -> None:
    message = _problems(tmp_path, lambda data: data["dependencies"][1]["used_by"].append("chekout"))
    assert "dependencies[1].used_by[2]" in message and "'chekout' is not a defined service" in message


def test_two_dependencies_may_not_share_a_name(tmp_path: Path) -> None:
    message = _problems(tmp_path, lambda data: data["dependencies"][2].update(name="payments"))
    assert "dependencies[2].name" in message and "duplicate dependency name 'payments'" in message


def test_a_latency_alert_above_half_the_interval_is_refused(tmp_path: Path) -> None:
    message = _problems(tmp_path, lambda data: data["dependencies"][2].update(latency_alert="20s"))
    assert "dependencies[2].latency_alert" in message and "more than half the interval (30s)" in message


def test_a_dependency_owner_must_give_its_team_the_channels_it_has_elsewhere(tmp_path: Path) -> None:
    owner = {"team": "platform", "slack_channel": "#somewhere-else"}
    message = _problems(tmp_path, lambda data: data["dependencies"][0].update(owner=owner))
    assert "dependencies[0].owner" in message and "team 'platform' already has channels #probed-alerts" in message


# --- Alerts -----------------------------------------------------------------------------------------------


def test_a_public_entry_pages_when_down_and_a_third_party_only_warns(system: System) -> None:
    severities = {alert.labels[naming.DEPENDENCY_LABEL]: alert.severity for alert in _alerts(system, "DependencyDown")}
    assert severities == {"payments": "warning", "shop-public": "critical", "legacy-feed": "warning"}
    missing = {a.labels[naming.DEPENDENCY_LABEL]: a.severity for a in _alerts(system, "DependencyProbeMissing")}
    assert missing == severities


def test_certificate_alerts_exist_for_https_only_and_page_only_for_a_public_entry(system: System) -> None:
    alerts = _alerts(system, "DependencyCertificateExpiring")
    tiers = sorted((alert.labels[naming.DEPENDENCY_LABEL], alert.severity) for alert in alerts)
    assert tiers == [("payments", "warning"), ("shop-public", "critical"), ("shop-public", "warning")]


def test_dependency_alerts_carry_the_dependency_its_team_and_the_blackbox_exporter(system: System) -> None:
    for name in ("DependencyDown", "DependencySlow", "DependencyCertificateExpiring", "DependencyProbeMissing"):
        for alert in _alerts(system, name):
            assert alert.labels[naming.TEAM_LABEL] == "platform"
            assert alert.labels[naming.EXPORTER_LABEL] == "blackbox-exporter"
            assert naming.SERVICE_LABEL not in alert.labels


def test_blackbox_exporter_down_is_as_urgent_as_the_public_entrys_page_it_mutes(system: System) -> None:
    [absent] = _alerts(system, "BlackboxExporterDown")
    assert absent.severity == "critical"
    assert absent.expr == 'absent(up{system="probed",job=~"probe/monitoring/.+"} == 1)'


def test_the_down_runbook_names_the_url_the_services_and_the_curl_commands_that_reproduce_the_probe(
    system: System,
) -> None:
    built = rule_documents(system, DEFAULT_CONFIG, alerting_components(system, DEFAULT_CONFIG.rules))
    runbook = next(document.content for document in built if document.path == "runbooks/DependencyDown.md")
    assert "shop-public (https://shop.example/), used by checkout, mailer" in runbook
    assert (
        "kubectl run -n monitoring probe-shop-public -it --rm --restart=Never --image=curlimages/curl -- -sS "
        "'http://prometheus-blackbox-exporter.monitoring.svc:9115/probe?module=http_reachable"
        "&target=https://shop.example/&debug=true'"
    ) in runbook
    curl = "curl -sS -o /dev/null --max-time 10 -w 'HTTP %{http_code} in %{time_total}s\\n' 'https://shop.example/'"
    assert curl in runbook


# --- Dashboards -------------------------------------------------------------------------------------------


def _panels(board: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {panel["id"]: panel for panel in board["panels"] if panel.get("id") is not None}


def test_each_service_a_dependency_names_shows_it_and_no_other_service_does(system: System) -> None:
    boards = {board["title"]: board for board in dashboards_of(system, DEFAULT_CONFIG)}
    checkout = _panels(boards["probed / checkout"])[PanelId.DEPENDENCY_SUCCESS]["targets"][0]["expr"]
    mailer = _panels(boards["probed / mailer"])[PanelId.DEPENDENCY_SUCCESS]["targets"][0]["expr"]
    assert 'dependency=~"payments|shop\\\\-public"' in checkout
    assert 'dependency=~"shop\\\\-public"' in mailer
    # legacy-feed is used by nobody: it is on no dashboard, and has no certificate panel to be on.
    assert all("legacy" not in str(board) for board in boards.values())


def test_a_dependency_alert_opens_the_success_panel_of_its_first_users_dashboard(system: System) -> None:
    [down] = [a for a in _alerts(system, "DependencyDown") if a.labels[naming.DEPENDENCY_LABEL] == "shop-public"]
    assert down.dashboard_url.endswith(f"/d/probed-service-checkout?viewPanel={int(PanelId.DEPENDENCY_SUCCESS)}")
    [orphan] = [a for a in _alerts(system, "DependencyDown") if a.labels[naming.DEPENDENCY_LABEL] == "legacy-feed"]
    assert orphan.dashboard_url.endswith(f"/d/probed-overview?viewPanel={int(PanelId.OVERVIEW_ALERTS)}")


# --- The page about a service names its failing dependencies ----------------------------------------------


def test_every_alert_about_a_service_that_uses_dependencies_names_them_when_they_fail(system: System) -> None:
    described = {
        alert.labels.get(naming.SERVICE_LABEL): alert.description.context
        for group in rule_groups(system, DEFAULT_CONFIG.rules)
        for alert in group.alerts
        if naming.SERVICE_LABEL in alert.labels
    }
    assert 'dependency=~\\"payments|shop\\\\\\\\-public\\"' in described["checkout"]
    assert 'dependency=~\\"shop\\\\\\\\-public\\"' in described["mailer"]


def test_promtool_renders_the_failing_dependency_into_the_services_page_and_nothing_while_none_fails(
    system: System, tmp_path: Path
) -> None:
    [alert] = [
        a for a in _alerts(system, "ServiceTargetDown") if a.labels[naming.SERVICE_LABEL] == "checkout"
    ]
    case = alert.case
    assert case is not None
    group = {"name": "context", "interval": "1m", "rules": [alert.to_dict()]}
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": [group]}), encoding="utf-8")
    failing = {"alertname": "DependencyDown", "alertstate": "firing", "system": "probed",
               "dependency": "shop-public", "severity": "critical", "team": "platform"}
    dependency_down = {"series": selector("ALERTS", failing), "values": "1x30"}

    def test(name: str, extra: list[dict[str, str]], suffix: str) -> dict[str, Any]:
        annotations = alert.expected_annotations(case.labels, case.value)
        annotations["description"] += suffix
        expected = {"exp_labels": alert.expected_labels(case.labels), "exp_annotations": annotations}
        return {
            "name": name,
            "interval": "1m",
            "input_series": [{"series": item.series, "values": item.values} for item in case.firing] + extra,
            "alert_rule_test": [{"eval_time": case.eval_time, "alertname": alert.name, "exp_alerts": [expected]}],
        }

    named = " It uses shop-public, which is failing too (DependencyDown)."
    (tmp_path / "context.test.yaml").write_text(yaml.safe_dump({
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            test("a failing dependency is named", [dependency_down], named),
            test("nothing is added while no dependency fails", [], ""),
        ],
    }), encoding="utf-8")
    result = promtool.test_rules([tmp_path / "context.test.yaml"])
    assert result.ok, result.output
