"""A real Alertmanager running the generated config: what it mutes, and the Slack messages it posts.

Alerts are posted to Alertmanager's API as Prometheus would post them; a local receiver stands in
for Slack (tests/support/slack_receiver.py). The end-to-end test with Prometheus and the generated
rules is in test_end_to_end.py.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import yaml

from obsbundle.model import System
from obsbundle.render import to_yaml
from obsbundle.tools.processes import wait_until
from tests.alerting.operator_config import plain_config
from tests.alerting.stack import slack_path, write_alerting
from tests.support.alertmanager import AlertmanagerServer, start_alertmanager
from tests.support.slack_receiver import Delivery, SlackReceiver

pytestmark = pytest.mark.servers

WAIT = 30.0  # seconds before a missing message fails a test; deliveries take about a second
_cases = itertools.count(1)


@pytest.fixture(scope="module")
def alertmanager(
    tmp_path_factory: pytest.TempPathFactory, ecoeco: System, slack: SlackReceiver
) -> Iterator[AlertmanagerServer]:
    folder = tmp_path_factory.mktemp("alertmanager-plain")
    server = start_alertmanager(folder / "run", write_alerting(ecoeco, folder, slack.url))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def operator_alertmanager(
    tmp_path_factory: pytest.TempPathFactory, ecoeco: System, slack: SlackReceiver
) -> Iterator[AlertmanagerServer]:
    """An Alertmanager running what the Operator makes of the AlertmanagerConfig (no templates file)."""
    folder = tmp_path_factory.mktemp("alertmanager-operator")
    write_alerting(ecoeco, folder, slack.url, prefix="/operator")
    obj = yaml.safe_load((folder / "out" / "ecoeco-alertmanagerconfig.yaml").read_text())
    config = folder / "operator.yaml"
    webhooks = {"deadmans-switch": f"{slack.url}/operator/watchdog/ecoeco"}
    config.write_text(to_yaml(plain_config(obj, str(folder / "secrets"), webhooks)))
    server = start_alertmanager(folder / "run", config)
    yield server
    server.stop()


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def alert(labels: dict[str, str], *, resolved: bool = False, **annotations: str) -> dict[str, Any]:
    """An alert as Prometheus posts it: fixed start, and an end in the past once resolved."""
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "labels": labels,
        "annotations": {
            "summary": "Requests fail.",
            "description": "12.5% of requests to auth-service failed over the last 5 minutes.",
            "runbook_url": "https://runbooks.example.com/ecoeco/ServiceErrorRatioHigh",
            "dashboard_url": "https://grafana.example.com/d/ecoeco-service-auth-service?viewPanel=2",
            **annotations,
        },
        "startsAt": _timestamp(now - timedelta(minutes=3)),
        "generatorURL": "http://prometheus.example.com/graph",
    }
    body["endsAt"] = _timestamp(now - timedelta(seconds=1) if resolved else now + timedelta(hours=1))
    return body


def muted(alertmanager: AlertmanagerServer, system: str) -> dict[str, bool]:
    """`alertname/severity/service/node_pool/slo/window/datastore/queue` → is it inhibited, for one case's system."""
    keys = ("alertname", "severity", "service", "node_pool", "slo", "window", "datastore", "queue")
    return {
        "/".join(a["labels"].get(key, "") for key in keys).rstrip("/"): bool(a["status"]["inhibitedBy"])
        for a in alertmanager.alerts(system=system)
    }


def settled(alertmanager: AlertmanagerServer, system: str, expected: dict[str, bool]) -> dict[str, bool]:
    """`muted()` once Alertmanager's inhibitor has taken in the posted alerts.

    The inhibitor reads new alerts asynchronously, so a query right after posting can predate it.
    Once every alert expected to be muted is muted, the sources are all in; the snapshot taken then
    also shows whether anything else was muted that should not be.
    """
    wait_until(
        lambda: all(muted(alertmanager, system).get(key) for key, value in expected.items() if value),
        timeout=WAIT,
        what=f"the inhibitions of {system} to settle",
    )
    return muted(alertmanager, system)


def case_system() -> str:
    """A system label of its own for each case, so that inhibitions of one case never touch another's."""
    return f"case{next(_cases)}"


def test_a_critical_alert_mutes_the_warning_about_the_same_alert_and_service_only(
    alertmanager: AlertmanagerServer,
) -> None:
    system = case_system()

    def labels(severity: str, service: str, alertname: str = "ServiceErrorRatioHigh") -> dict[str, str]:
        return {"alertname": alertname, "severity": severity, "service": service, "system": system,
                "namespace": "default", "team": "ecoeco-backend"}

    alertmanager.post_alerts([
        alert(labels("critical", "auth-service")),
        alert(labels("warning", "auth-service")),
        alert(labels("warning", "my-service")),
        alert(labels("warning", "auth-service", "ServiceLatencyHigh")),
    ])
    expected = {
        "ServiceErrorRatioHigh/critical/auth-service": False,
        "ServiceErrorRatioHigh/warning/auth-service": True,
        "ServiceErrorRatioHigh/warning/my-service": False,
        "ServiceLatencyHigh/warning/auth-service": False,
    }
    assert settled(alertmanager, system, expected) == expected


def test_a_faster_burn_rate_tier_mutes_the_slower_tiers_of_the_same_slo_and_service_only(
    alertmanager: AlertmanagerServer,
) -> None:
    system = case_system()

    def labels(window: str, severity: str, slo: str = "availability", service: str = "auth-service") -> dict[str, str]:
        return {"alertname": "SLOBurnRate", "severity": severity, "window": window, "slo": slo,
                "service": service, "namespace": "default", "system": system, "team": "ecoeco-backend"}

    alertmanager.post_alerts([
        alert(labels("6h-30m", "critical")),
        alert(labels("1d-2h", "warning")),
        alert(labels("3d-6h", "warning")),
        alert(labels("3d-6h", "warning", slo="latency")),
        alert(labels("1d-2h", "warning", service="my-service")),
    ])
    expected = {
        "SLOBurnRate/critical/auth-service//availability/6h-30m": False,
        "SLOBurnRate/warning/auth-service//availability/1d-2h": True,
        "SLOBurnRate/warning/auth-service//availability/3d-6h": True,
        "SLOBurnRate/warning/auth-service//latency/3d-6h": False,
        "SLOBurnRate/warning/my-service//availability/1d-2h": False,
    }
    assert settled(alertmanager, system, expected) == expected
    alertmanager.post_alerts([alert(labels("1h-5m", "critical"))])
    faster = "SLOBurnRate/critical/auth-service//availability/6h-30m"
    assert settled(alertmanager, system, {faster: True})[faster] is True


def test_a_node_pool_that_is_down_mutes_the_alerts_of_its_workloads_but_not_itself_or_other_pools(
    alertmanager: AlertmanagerServer,
) -> None:
    system = case_system()
    base = {"system": system, "team": "ecoeco-platform"}
    alertmanager.post_alerts([
        alert({**base, "alertname": "NodePoolDown", "severity": "critical", "node_pool": "auth"}),
        alert({**base, "alertname": "NodePoolCpuHigh", "severity": "critical", "node_pool": "auth"}),
        alert({**base, "alertname": "ServiceDown", "severity": "critical", "node_pool": "auth",
               "service": "auth-service", "team": "ecoeco-backend"}),
        alert({**base, "alertname": "ServiceDown", "severity": "critical", "node_pool": "my",
               "service": "my-service", "team": "ecoeco-backend"}),
        alert({**base, "alertname": "ServiceDown", "severity": "critical", "service": "chat-service"}),
    ])
    expected = {
        "NodePoolDown/critical//auth": False,
        "NodePoolCpuHigh/critical//auth": True,
        "ServiceDown/critical/auth-service/auth": True,
        "ServiceDown/critical/my-service/my": False,
        "ServiceDown/critical/chat-service": False,
    }
    assert settled(alertmanager, system, expected) == expected


def test_a_stopped_exporter_mutes_every_exporter_alert_of_its_system_and_nothing_else(
    alertmanager: AlertmanagerServer,
) -> None:
    system, other = case_system(), case_system()
    exporter = {"exporter": "obsbundle-exporter", "team": "ecoeco-platform"}
    alertmanager.post_alerts([
        alert({**exporter, "system": system, "alertname": "PoolQueueExporterDown", "severity": "critical"}),
        alert({**exporter, "system": system, "alertname": "QueueBacklogHigh", "severity": "warning",
               "queue": "ai-inference", "datastore": "rabbitmq"}),
        alert({**exporter, "system": system, "alertname": "PoolQueueSourceDown", "severity": "warning",
               "datastore": "postgresql"}),
        alert({"system": system, "team": "ecoeco-platform", "alertname": "DatastoreVolumeFull",
               "severity": "critical", "datastore": "postgresql"}),
        alert({**exporter, "system": other, "alertname": "QueueBacklogHigh", "severity": "warning",
               "queue": "ai-inference", "datastore": "rabbitmq"}),
    ])
    expected = {
        "PoolQueueExporterDown/critical": False,
        "QueueBacklogHigh/warning/////rabbitmq/ai-inference": True,
        "PoolQueueSourceDown/warning/////postgresql": True,
        "DatastoreVolumeFull/critical/////postgresql": False,
    }
    assert settled(alertmanager, system, expected) == expected
    assert muted(alertmanager, other) == {"QueueBacklogHigh/warning/////rabbitmq/ai-inference": False}


def test_an_unreadable_exporter_source_mutes_the_exporter_alerts_of_that_datastore_only(
    alertmanager: AlertmanagerServer,
) -> None:
    system = case_system()
    exporter = {"exporter": "obsbundle-exporter", "team": "ecoeco-platform", "system": system}
    alertmanager.post_alerts([
        alert({**exporter, "alertname": "PoolQueueSourceDown", "severity": "warning", "datastore": "rabbitmq"}),
        alert({**exporter, "alertname": "QueueBacklogHigh", "severity": "warning", "queue": "ai-inference",
               "datastore": "rabbitmq"}),
        alert({**exporter, "alertname": "PostgresConnectionsHigh", "severity": "warning",
               "datastore": "postgresql"}),
    ])
    expected = {
        "PoolQueueSourceDown/warning/////rabbitmq": False,
        "QueueBacklogHigh/warning/////rabbitmq/ai-inference": True,
        "PostgresConnectionsHigh/warning/////postgresql": False,
    }
    assert settled(alertmanager, system, expected) == expected


def _attachment(delivery: Delivery) -> dict[str, Any]:
    [attachment] = delivery.payload["attachments"]
    return dict(attachment)


def _buttons(delivery: Delivery) -> dict[str, str]:
    return {action["text"]: action["url"] for action in _attachment(delivery)["actions"]}


def _titled(path: str, title: str) -> Callable[[Delivery], bool]:
    return lambda d: d.path == path and _attachment(d)["title"] == title


def test_a_critical_alert_pages_the_owners_on_call_channel_with_mention_text_and_buttons_then_resolves(
    alertmanager: AlertmanagerServer, slack: SlackReceiver, ecoeco: System
) -> None:
    labels = {"alertname": "ServiceErrorRatioHigh", "severity": "critical", "system": "ecoeco",
              "namespace": "default", "service": "auth-service", "node_pool": "auth", "team": "ecoeco-backend"}
    alertmanager.post_alerts([alert(labels)])
    path = slack_path("ecoeco-backend")
    title = "ServiceErrorRatioHigh · auth-service · ecoeco"
    page = slack.wait_for(_titled(path, f"[FIRING:1] {title}"), WAIT, "the page on Slack")
    message = _attachment(page)
    assert page.payload["channel"] == "#ecoeco-oncall"
    assert page.payload["link_names"] is True
    assert message["pretext"] == "@ecoeco-backend-oncall"
    assert message["color"] == "danger"
    assert "*Requests fail.*" in message["text"]
    assert "12.5% of requests to auth-service failed" in message["text"]
    assert "`namespace=default` `node_pool=auth`" in message["text"]
    assert "team ecoeco-backend" in message["footer"] and "ecoeco-prod" in message["footer"]
    buttons = _buttons(page)
    assert buttons["Runbook"] == "https://runbooks.example.com/ecoeco/ServiceErrorRatioHigh"
    assert buttons["Dashboard"] == "https://grafana.example.com/d/ecoeco-service-auth-service?viewPanel=2"
    silence = urlsplit(buttons["Silence"])
    assert f"{silence.scheme}://{silence.netloc}{silence.path}" == "https://api.ecoeco.app/alertmanager/"
    assert silence.fragment.startswith("/silences/new?filter=")
    matchers = unquote(parse_qs(silence.fragment.split("?", 1)[1])["filter"][0])
    assert matchers == '{alertname="ServiceErrorRatioHigh",service="auth-service",system="ecoeco"}'
    selected = dict(matcher.split("=", 1) for matcher in matchers.strip("{}").split(","))
    silenced = alertmanager.alerts(**{name: value.strip('"') for name, value in selected.items()})
    assert [a["labels"] for a in silenced] == [labels], "the silence must cover this alert's group"

    alertmanager.post_alerts([alert(labels, resolved=True)])
    resolved = slack.wait_for(_titled(path, f"[RESOLVED] {title}"), WAIT, "the resolved message")
    message = _attachment(resolved)
    assert resolved.payload["channel"] == "#ecoeco-oncall"
    assert message["color"] == "good"
    assert message.get("pretext", "") == "", "a resolution must not wake anyone"
    assert ":large_green_circle: *Requests fail.*" in message["text"]


def test_a_warning_goes_to_the_owners_team_channel_without_a_mention(
    alertmanager: AlertmanagerServer, slack: SlackReceiver
) -> None:
    labels = {"alertname": "PostgresConnectionsHigh", "severity": "warning", "system": "ecoeco",
              "datastore": "postgresql", "team": "ecoeco-platform", "exporter": "obsbundle-exporter"}
    alertmanager.post_alerts([alert(labels, summary="Connections near the limit.")])
    delivery = slack.wait_for(
        _titled(slack_path("ecoeco-platform"), "[FIRING:1] PostgresConnectionsHigh · ecoeco"),
        WAIT,
        "the warning on Slack",
    )
    assert delivery.payload["channel"] == "#ecoeco-platform"
    assert _attachment(delivery)["color"] == "warning"
    assert _attachment(delivery).get("pretext", "") == ""
    assert "`datastore=postgresql`" in _attachment(delivery)["text"]


def test_a_group_whose_alerts_disagree_on_links_falls_back_to_the_runbook_pattern_and_overview(
    alertmanager: AlertmanagerServer, slack: SlackReceiver
) -> None:
    base = {"alertname": "NodeDiskFull", "severity": "warning", "system": "ecoeco", "team": "ecoeco-platform"}
    alertmanager.post_alerts([
        alert({**base, "node": "ip-10-0-0-1"}, runbook_url="https://a", dashboard_url="https://a"),
        alert({**base, "node": "ip-10-0-0-2"}, runbook_url="https://b", dashboard_url="https://b"),
    ])
    delivery = slack.wait_for(
        _titled(slack_path("ecoeco-platform"), "[FIRING:2] NodeDiskFull · ecoeco"), WAIT, "the two-alert group on Slack"
    )
    buttons = _buttons(delivery)
    assert buttons["Runbook"] == "https://github.com/SeSACTHON/backend/blob/develop/docs/runbooks/ecoeco/NodeDiskFull.md"
    assert buttons["Dashboard"] == "https://api.ecoeco.app/grafana/d/ecoeco-overview"
    assert "`node=ip-10-0-0-1`" in _attachment(delivery)["text"]
    assert "`node=ip-10-0-0-2`" in _attachment(delivery)["text"]


def test_watchdog_reaches_the_dead_mans_switch_and_never_slack(
    alertmanager: AlertmanagerServer, slack: SlackReceiver
) -> None:
    labels = {"alertname": "Watchdog", "severity": "none", "system": "ecoeco", "team": "ecoeco-platform"}
    alertmanager.post_alerts([alert(labels)])
    heartbeat = slack.wait_for(lambda d: d.path == "/watchdog/ecoeco", WAIT, "the Watchdog heartbeat")
    assert heartbeat.payload["commonLabels"]["alertname"] == "Watchdog"
    assert not [
        d for d in slack.deliveries() if "attachments" in d.payload and "Watchdog" in _attachment(d)["title"]
    ]


def test_the_alertmanager_config_object_posts_the_same_slack_message_as_alertmanager_yaml(
    alertmanager: AlertmanagerServer, operator_alertmanager: AlertmanagerServer, slack: SlackReceiver
) -> None:
    labels = {"alertname": "ServiceLatencyHigh", "severity": "critical", "system": "ecoeco",
              "namespace": "default", "service": "scan-service", "node_pool": "scan", "team": "ecoeco-backend"}
    posted = alert(labels)
    alertmanager.post_alerts([posted])
    operator_alertmanager.post_alerts([posted])
    title = "[FIRING:1] ServiceLatencyHigh · scan-service · ecoeco"
    plain = slack.wait_for(_titled(slack_path("ecoeco-backend"), title), WAIT, "the plain config's page")
    operator = slack.wait_for(
        _titled(slack_path("ecoeco-backend", "/operator"), title), WAIT, "the AlertmanagerConfig's page"
    )
    assert operator.payload == plain.payload
