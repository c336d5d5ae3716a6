"""A real Alertmanager running aegis's generated config mutes, while an exporter's absence alert fires,
exactly the generated alerts that read that exporter.

The alerts posted carry the labels of aegis's generated rules (read from the bundle's output), each
under a system label of its own case so that cases never mute each other. No generated alert reads
node-exporter alone (node series reach their pool through kube-state-metrics), so one such alert is
made from NodeCpuHigh with the `exporter` label the rules would give it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from obsbundle import naming
from obsbundle.model import System
from obsbundle.providers import Provider
from obsbundle.tools.processes import wait_until
from tests.alerting.generated import Labels, alert_labels, alert_rules
from tests.alerting.stack import write_alerting
from tests.support.alertmanager import AlertmanagerServer, start_alertmanager
from tests.support.slack_receiver import SlackReceiver

pytestmark = pytest.mark.servers

SYSTEM = "aegis"
NODE_EXPORTER_ONLY = "NodeExporterOnly"
WAIT = 30.0
_cases = itertools.count(1)


@pytest.fixture(scope="module")
def alertmanager(
    tmp_path_factory: pytest.TempPathFactory, fleet_systems: dict[str, System]
) -> Iterator[AlertmanagerServer]:
    slack = SlackReceiver().start()
    folder = tmp_path_factory.mktemp("alertmanager-exporters")
    server = start_alertmanager(folder / "run", write_alerting(fleet_systems[SYSTEM], folder, slack.url))
    yield server
    server.stop()
    slack.stop()


@pytest.fixture(scope="module")
def generated(default_output: dict[str, bytes]) -> dict[str, Labels]:
    """The labels of aegis's first generated rule of each alert name, plus the node-exporter-only alert."""
    labels: dict[str, Labels] = {}
    for rule in alert_rules(default_output, SYSTEM):
        labels.setdefault(rule["alert"], alert_labels(rule))
    only = {**labels["NodeCpuHigh"], "alertname": NODE_EXPORTER_ONLY}
    only[naming.EXPORTER_LABEL] = naming.exporter_label_value([Provider.NODE_EXPORTER])
    labels[NODE_EXPORTER_ONLY] = only
    return labels


def _posted(labels: Labels, system: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "labels": {**labels, naming.SYSTEM_LABEL: system},
        "annotations": {"summary": "posted by the test"},
        "startsAt": (now - timedelta(minutes=1)).isoformat(),
        "endsAt": (now + timedelta(hours=1)).isoformat(),
    }


def _muted(alertmanager: AlertmanagerServer, system: str) -> dict[str, bool]:
    return {a["labels"]["alertname"]: bool(a["status"]["inhibitedBy"]) for a in alertmanager.alerts(system=system)}


CASES = {
    "KubeStateMetricsDown": (
        # (not NodePoolDown, which would mute the other alerts on its pool by itself)
        {"NodeNotReady", "NodeCpuHigh", "WorkloadCrashLooping", "WorkloadMemoryNearLimit"},
        {
            NODE_EXPORTER_ONLY,
            "VolumeAlmostFull",
            "QueueConsumerLagHigh",
            "PostgresConnectionsHigh",
            "ServiceTargetDown",
        },
    ),
    "NodeExporterDown": (
        {"NodeCpuHigh", NODE_EXPORTER_ONLY},
        {"NodeNotReady", "WorkloadMemoryNearLimit", "VolumeAlmostFull"},
    ),
    # The kubelet's two endpoints share a job: each absence mutes only the alerts of its own.
    "KubeletDown": ({"VolumeAlmostFull"}, {"WorkloadMemoryNearLimit", "NodeNotReady"}),
    "KubeletCadvisorDown": ({"WorkloadMemoryNearLimit"}, {"VolumeAlmostFull", "NodeNotReady"}),
    "KafkaExporterDown": ({"QueueConsumerLagHigh"}, {"NodeNotReady", "PostgresConnectionsHigh"}),
}


@pytest.mark.parametrize("absence", list(CASES))
def test_a_firing_exporter_absence_alert_mutes_the_alerts_that_read_that_exporter_and_no_others(
    alertmanager: AlertmanagerServer, generated: dict[str, Labels], absence: str
) -> None:
    muted_names, kept_names = CASES[absence]
    system, other = f"exporters{next(_cases)}", f"exporters{next(_cases)}"
    alertmanager.post_alerts(
        [_posted(generated[name], system) for name in sorted({absence, *muted_names, *kept_names})]
        + [_posted(generated[name], other) for name in sorted(muted_names)]
    )
    expected = {absence: False} | dict.fromkeys(muted_names, True) | dict.fromkeys(kept_names, False)
    wait_until(
        lambda: all(_muted(alertmanager, system).get(name) for name in muted_names),
        timeout=WAIT,
        what=f"{absence} to mute the alerts that read its exporter",
    )
    assert _muted(alertmanager, system) == expected
    assert _muted(alertmanager, other) == dict.fromkeys(muted_names, False), "another system's alerts stay"
