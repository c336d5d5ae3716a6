"""A real Alertmanager with the routing for global rules (`--ruler global`): the alerts of every
cluster reach one Alertmanager, each carrying its `cluster`. They are grouped by cluster, no
inhibition crosses clusters, and each page names its cluster."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from obsbundle.model import System
from obsbundle.settings import Ruler, Settings
from obsbundle.tools.processes import wait_until
from tests.alerting.stack import slack_path, write_alerting
from tests.alerting.test_delivery import WAIT, alert, case_system
from tests.support.alertmanager import AlertmanagerServer, start_alertmanager
from tests.support.slack_receiver import SlackReceiver

pytestmark = pytest.mark.servers

A, B = "prod-eu-1", "prod-us-1"


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory, ecoeco: System, slack: SlackReceiver) -> Iterator[
    AlertmanagerServer
]:
    folder = tmp_path_factory.mktemp("alertmanager-global")
    config = write_alerting(ecoeco, folder, slack.url, settings=Settings(ruler=Ruler.GLOBAL))
    server = start_alertmanager(folder / "run", config)
    yield server
    server.stop()


def _labels(system: str, cluster: str, severity: str) -> dict[str, str]:
    return {"alertname": "ServiceErrorRatioHigh", "severity": severity, "service": "auth-service",
            "system": system, "namespace": "default", "team": "ecoeco-backend", "cluster": cluster}


def test_the_same_page_in_two_clusters_is_two_slack_messages_each_naming_its_cluster(
    alertmanager: AlertmanagerServer, slack: SlackReceiver
) -> None:
    system = case_system()
    alertmanager.post_alerts([alert(_labels(system, A, "critical")), alert(_labels(system, B, "critical"))])
    path = slack_path("ecoeco-backend")

    def pages() -> list[dict[str, str]]:
        return [
            attachment
            for delivery in slack.deliveries(path)
            for attachment in delivery.payload.get("attachments", [])
            if f"· {system}" in attachment.get("title", "")
        ]

    wait_until(lambda: len(pages()) >= 2, timeout=WAIT, what="a page per cluster")
    titles = sorted(page["title"] for page in pages())
    assert titles == [
        f"[FIRING:1] ServiceErrorRatioHigh · auth-service · {system} · {A}",
        f"[FIRING:1] ServiceErrorRatioHigh · auth-service · {system} · {B}",
    ]
    footers = sorted(re.sub(r"^team \S+ · ", "", page["footer"]) for page in pages())
    assert footers == [f"cluster {A}", f"cluster {B}"]


def test_a_critical_alert_in_one_cluster_mutes_the_warning_of_that_cluster_only(
    alertmanager: AlertmanagerServer,
) -> None:
    system = case_system()
    alertmanager.post_alerts([
        alert(_labels(system, A, "critical")),
        alert(_labels(system, A, "warning")),
        alert(_labels(system, B, "warning")),
    ])

    def muted() -> dict[str, bool]:
        return {
            f"{a['labels']['cluster']}/{a['labels']['severity']}": bool(a["status"]["inhibitedBy"])
            for a in alertmanager.alerts(system=system)
        }

    # The inhibitor takes in new alerts asynchronously: wait for the one mute expected, then look.
    wait_until(lambda: muted().get(f"{A}/warning", False), timeout=WAIT, what="the warning in cluster a muted")
    assert muted() == {f"{A}/critical": False, f"{A}/warning": True, f"{B}/warning": False}


def test_the_global_configuration_groups_by_cluster(tmp_path: Path, ecoeco: System, slack: SlackReceiver) -> None:
    path = write_alerting(ecoeco, tmp_path, slack.url, settings=Settings(ruler=Ruler.GLOBAL))
    config = yaml.safe_load(path.read_text())
    assert config["route"]["group_by"][-1] == "cluster"
    assert all("cluster" in rule["equal"] for rule in config["inhibit_rules"])
