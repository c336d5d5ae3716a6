"""RabbitMQ and Kafka health alerts (rules/brokers.py): which alerts each broker gets, and promtool
proving every firing and quiet case, and failing when a threshold or an expression drifts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from obsbundle.config import DEFAULT_CONFIG
from obsbundle.documents import Document
from obsbundle.errors import InputError, format_key_path
from obsbundle.loader import load_inventory
from obsbundle.model import System
from obsbundle.render import render
from obsbundle.rules import promtool_tests
from obsbundle.rules.brokers import broker_groups
from obsbundle.rules.definitions import Alert, RuleGroup
from obsbundle.tools import promtool

REPO = Path(__file__).resolve().parents[2]
CLUSTER = Path(__file__).resolve().parent / "brokers" / "cluster.yaml"


def _systems() -> dict[str, System]:
    systems = [*load_inventory([REPO / "inventory"]).systems, *load_inventory([CLUSTER]).systems]
    return {system.name: system for system in systems}


SYSTEMS = _systems()


def _group(system: str) -> RuleGroup:
    (group,) = broker_groups(SYSTEMS[system], DEFAULT_CONFIG.rules)
    return group


def _write(group: RuleGroup, folder: Path) -> list[Path]:
    """The group's rule file and its test files in `folder`, as generate.py writes them."""
    written = [folder / promtool_tests.rule_file_name(group.name)]
    written[0].write_bytes(render(Document(written[0].name, {"groups": [group.to_dict()]})))
    for name, content in promtool_tests.test_files(group).items():
        (folder / name).write_bytes(render(Document(name, content)))
        written.append(folder / name)
    return written


def _rules(system: str) -> list[tuple[str, str, str]]:
    """(alert, datastore, severity) of every rule of the system's broker group."""
    return [(a.name, a.labels["datastore"], a.severity) for a in _group(system).alerts]


def _alert(system: str, name: str, severity: str | None = None, datastore: str | None = None) -> Alert:
    (alert,) = [
        a for a in _group(system).alerts
        if a.name == name and severity in (None, a.severity) and datastore in (None, a.labels["datastore"])
    ]
    return alert


def test_ecoeco_rabbitmq_gets_the_node_alarm_descriptor_and_unroutable_alerts_and_paging_alarms() -> None:
    assert _rules("ecoeco") == [
        ("RabbitmqNodeDown", "rabbitmq", "critical"),
        ("RabbitmqMemoryAlarm", "rabbitmq", "critical"),
        ("RabbitmqDiskAlarm", "rabbitmq", "critical"),
        ("RabbitmqFileDescriptorsNearLimit", "rabbitmq", "warning"),
        ("RabbitmqUnroutableMessages", "rabbitmq", "warning"),
    ]


def test_aegis_kafka_gets_brokers_missing_against_its_three_replicas_and_partition_alerts() -> None:
    assert _rules("aegis") == [
        ("KafkaBrokersMissing", "kafka", "warning"),
        ("KafkaUnderReplicatedPartitions", "kafka", "warning"),
        ("KafkaOfflinePartitions", "kafka", "critical"),
    ]
    assert _alert("aegis", "KafkaBrokersMissing").expr == (
        'max(kafka_brokers{namespace="aegis-user-service",service="kafka"}) < 3'
    )


def test_logpilot_has_no_broker_and_no_broker_group() -> None:
    assert broker_groups(SYSTEMS["logpilot"], DEFAULT_CONFIG.rules) == []


def test_a_rabbitmq_without_an_exporter_gets_no_health_alert() -> None:
    assert "legacy-mq" not in {datastore for _, datastore, _ in _rules("harbour")}


def test_a_three_node_rabbitmq_warns_for_one_node_lost_and_pages_below_a_majority() -> None:
    warning = _alert("harbour", "RabbitmqNodeDown", "warning", "events")
    critical = _alert("harbour", "RabbitmqNodeDown", "critical", "events")
    assert warning.expr.endswith("< 3") and critical.expr.endswith("< 2")
    assert 'up{namespace="messaging",service="events"}' in warning.expr


def test_a_two_node_rabbitmq_pages_for_one_node_lost_since_one_node_is_no_majority() -> None:
    assert [(name, severity) for name, store, severity in _rules("harbour") if store == "pair"][:1] == [
        ("RabbitmqNodeDown", "critical"),
    ]
    assert _alert("harbour", "RabbitmqNodeDown", datastore="pair").expr.endswith("< 2")


def test_every_broker_alert_links_the_queue_dashboard_with_its_datastore_selected() -> None:
    for system in ("ecoeco", "aegis", "harbour"):
        for alert in _group(system).alerts:
            assert re.search(r"/d/[^?]+-queues\?var-datastore=" + alert.labels["datastore"] + "&viewPanel=9[0-6]$",
                             alert.dashboard_url), alert.dashboard_url


def test_every_runbook_command_runs_in_the_brokers_namespace_and_a_pod_of_its_statefulset() -> None:
    """The first pod, for one node or a cluster-wide command; the pod the alert names, for a node's
    own state in a cluster, with the StatefulSet's pods listed in the check's title."""
    pods = {"rabbitmq": ("default", "rabbitmq-0"), "kafka": ("aegis-user-service", "kafka-0"),
            "events": ("messaging", "events-server-0"), "pair": ("messaging", "pair-0"),
            "stream": ("streaming", "stream-broker-0")}
    seen = set()
    for system in ("ecoeco", "aegis", "harbour"):
        for alert in _group(system).alerts:
            namespace, first = pods[alert.labels["datastore"]]
            for check in (check for check in alert.checks if check.language == "shell"):
                for line in check.code.splitlines():
                    if line.startswith("kubectl exec"):
                        assert line.startswith((f"kubectl exec -n {namespace} {first} -- ",
                                                f"kubectl exec -n {namespace} <pod> -- ")), line
                        if "<pod>" in line:
                            assert f"the pod the alert names, {first} … " in check.title, check.title
                        seen.add(line.split(" -- ")[0].split()[-1])
    assert {"rabbitmq-0", "kafka-0", "events-server-0", "<pod>", "stream-broker-0"} <= seen


@pytest.mark.parametrize("system", ["ecoeco", "aegis", "harbour"])
def test_every_broker_alert_fires_on_its_case_and_stays_quiet_on_its_quiet_input(system: str, tmp_path: Path) -> None:
    files = _write(_group(system), tmp_path)
    tests = [file for file in files if file.name.endswith(".test.yaml")]
    result = promtool.test_rules(tests)
    assert result.ok, result.output


def _drifted(system: str, tmp_path: Path, old: str, new: str) -> promtool.ToolResult:
    files = _write(_group(system), tmp_path)
    rules = files[0]
    text = rules.read_text()
    assert old in text, old
    rules.write_text(text.replace(old, new))
    return promtool.test_rules([file for file in files if file.name.endswith(".test.yaml")])


def test_the_descriptor_tests_fail_when_the_threshold_drifts_above_the_firing_case(tmp_path: Path) -> None:
    result = _drifted("ecoeco", tmp_path, "> 0.8", "> 0.95")
    assert not result.ok
    assert "RabbitmqFileDescriptorsNearLimit" in result.output


def test_the_offline_tests_fail_when_partitions_with_a_leader_are_counted(tmp_path: Path) -> None:
    result = _drifted("aegis", tmp_path, "unless on (topic, partition)", "and on (topic, partition)")
    assert not result.ok
    assert "KafkaOfflinePartitions" in result.output


def test_the_node_down_tests_fail_when_a_missing_target_no_longer_counts_as_no_node(tmp_path: Path) -> None:
    result = _drifted("ecoeco", tmp_path, " or vector(0)", "")
    assert not result.ok
    assert "fires when Prometheus has no target of the broker" in result.output


def test_a_rabbitmq_scraped_on_its_per_object_endpoint_is_refused_since_its_alarms_are_not_there(
    tmp_path: Path,
) -> None:
    text = CLUSTER.read_text().replace(
        "metrics: {port: prometheus}}", "metrics: {port: prometheus, path: /metrics/per-object}}"
    )
    assert "/metrics/per-object" in text
    (tmp_path / "cluster.yaml").write_text(text)
    with pytest.raises(InputError) as raised:
        load_inventory([tmp_path / "cluster.yaml"])
    (problem,) = raised.value.problems
    assert format_key_path(problem.path) == "datastores[1].metrics.path"
    assert "'/metrics/per-object' serves no memory or disk alarm" in problem.message
    assert "set path: /metrics" in problem.message
