"""End to end, all real: generated rules in Prometheus, a failing target, Alertmanager, Slack's stand-in.

Prometheus loads every generated plain rule file of ecoeco, unchanged but for two test settings:
each group is evaluated every second and each `for:` is shortened to a few seconds. It scrapes
local targets that play two ecoeco services (tests/alerting/metrics_target.py) and sends alerts
to a real Alertmanager running the generated alertmanager.yaml (short timers, webhook URLs read
from files, as in production) which posts to a local receiver standing in for Slack.

Services of ecoeco without a target here are, to these rules, services with no target left, so
their ServiceTargetDown alerts fire throughout: the tests pick their own messages by title.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from obsbundle.model import System
from obsbundle.render import to_yaml
from obsbundle.tools.processes import wait_until
from obsbundle.tools.prometheus import PrometheusServer, start_prometheus
from tests.alerting.conftest import REPORT
from tests.alerting.contract import WATCHDOG, expected_destination
from tests.alerting.generated import alert_rules, plain_rule_files
from tests.alerting.metrics_target import MetricsTarget
from tests.alerting.stack import slack_path, write_alerting
from tests.support.alertmanager import AlertmanagerServer, start_alertmanager
from tests.support.quick_rules import shortened
from tests.support.slack_receiver import Delivery, SlackReceiver

pytestmark = pytest.mark.servers

SYSTEM = "ecoeco"
DOWN_SERVICE = "auth-service"
ERROR_SERVICE = "my-service"
EVALUATION = "1s"
FOR = "3s"
"""Longer than Prometheus needs for a target's first scrape, so no alert fires before the test starts."""
WAIT = 60.0


@dataclass
class Stack:
    system: System
    rules: list[dict[str, Any]]
    """The alerting rules as generated (before shortening)."""
    prometheus: PrometheusServer
    alertmanager: AlertmanagerServer
    slack: SlackReceiver
    targets: dict[str, MetricsTarget]

    def alert_rule(self, alertname: str, service: str) -> dict[str, Any]:
        """The generated rule of `alertname` for `service`, as the rule file has it."""
        return next(
            rule for rule in self.rules
            if rule["alert"] == alertname and rule.get("labels", {}).get("service") == service
        )

    def alert_state(self, alertname: str, service: str) -> str:
        """`inactive`, `pending` or `firing`, as Prometheus evaluates it now."""
        series = self.prometheus.query(f'ALERTS{{alertname="{alertname}",service="{service}"}}')
        return series[0]["metric"]["alertstate"] if series else "inactive"


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, default_output: dict[str, bytes], fleet_systems: dict[str, System]
) -> Iterator[Stack]:
    rule_files = plain_rule_files(default_output, SYSTEM)
    assert rule_files, f"generate.py wrote no plain rule files for {SYSTEM}: nothing to test end to end"
    folder = tmp_path_factory.mktemp("end-to-end")
    rule_dir = folder / "rules"
    rule_dir.mkdir()
    for path, document in rule_files.items():
        (rule_dir / Path(path).name).write_text(to_yaml(shortened(document, EVALUATION, FOR)))

    # The fleet names no dead man's switch; this stack gives Watchdog one, at the Slack receiver.
    fleet = fleet_systems[SYSTEM]
    monitoring = fleet.monitoring.model_copy(update={"deadmans_switch_url": "http://127.0.0.1/watchdog/{system}"})
    system = fleet.model_copy(update={"monitoring": monitoring})
    slack = SlackReceiver().start()
    alertmanager = start_alertmanager(folder / "alertmanager", write_alerting(system, folder / "alerting", slack.url))
    targets = {name: MetricsTarget().start() for name in (DOWN_SERVICE, ERROR_SERVICE)}
    service_namespace = {service.name: service.namespace for service in system.services}
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": EVALUATION},
        "rule_files": [str(rule_dir / "*.yaml")],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager.port}"]}]}]},
        "scrape_configs": [
            {
                "job_name": name,
                # The labels a ServiceMonitor's relabelling gives every target (monitors/workloads.py).
                "static_configs": [
                    {"targets": [target.address], "labels": {"namespace": service_namespace[name], "service": name}}
                ],
            }
            for name, target in targets.items()
        ],
    }
    # Alerts that fire before Prometheus has found the Alertmanager are dropped and only sent again
    # after the resend delay (1m by default); Alertmanager deduplicates the repeats.
    prometheus = start_prometheus(folder / "prometheus", config, extra_args=("--rules.alert.resend-delay=1s",))
    yield Stack(system, alert_rules(default_output, SYSTEM), prometheus, alertmanager, slack, targets)
    prometheus.stop()
    alertmanager.stop()
    for target in targets.values():
        target.stop()
    slack.stop()


def _attachment(delivery: Delivery) -> dict[str, Any]:
    [attachment] = delivery.payload["attachments"]
    return dict(attachment)


def _message(path: str, title: str, after: float) -> Any:
    return lambda d: d.received_at > after and d.path == path and _attachment(d)["title"] == title


def test_a_target_that_stops_answering_pages_its_owner_on_slack_and_the_page_resolves_when_it_answers_again(
    stack: Stack,
) -> None:
    alertname, service = "ServiceTargetDown", DOWN_SERVICE
    rule = stack.alert_rule(alertname, service)
    wait_until(
        lambda: stack.prometheus.query(f'up{{service="{service}"}}')[0]["value"][1] == "1"
        and stack.alert_state(alertname, service) == "inactive",
        timeout=WAIT,
        what=f"{service} to be scraped and {alertname} to be quiet",
    )

    failed_at = time.monotonic()
    stack.targets[service].healthy = False
    path = slack_path(rule["labels"]["team"])
    title = f"{alertname} · {service} · {SYSTEM}"
    page = stack.slack.wait_for(_message(path, f"[FIRING:1] {title}", failed_at), WAIT, "the page on Slack")
    REPORT.append(f"end to end: {service} stops answering → Slack page: {page.received_at - failed_at:.1f} s")

    destination = expected_destination(stack.system, rule["labels"])
    assert page.payload["channel"] == destination.channel == "#ecoeco-oncall"
    message = _attachment(page)
    assert message["pretext"] == destination.mention == "@ecoeco-backend-oncall"
    assert message["color"] == "danger"
    assert f"*{rule['annotations']['summary']}*" in message["text"]
    # The description's static part; its dependency line renders empty while no dependency fails.
    assert rule["annotations"]["description"].split("{{ range")[0] in message["text"]
    assert "`namespace=default` `node_pool=auth`" in message["text"]
    buttons = {action["text"]: action["url"] for action in message["actions"]}
    assert buttons["Runbook"] == rule["annotations"]["runbook_url"]
    assert buttons["Dashboard"] == rule["annotations"]["dashboard_url"]
    silence = urlsplit(buttons["Silence"])
    assert unquote(parse_qs(silence.fragment.split("?", 1)[1])["filter"][0]) == (
        f'{{alertname="{alertname}",service="{service}",system="{SYSTEM}"}}'
    )
    assert stack.alertmanager.alerts(alertname=alertname, service=service)[0]["status"]["state"] == "active"

    recovered_at = time.monotonic()
    stack.targets[service].healthy = True
    resolved = stack.slack.wait_for(
        _message(path, f"[RESOLVED] {title}", recovered_at), WAIT, "the resolved message on Slack"
    )
    elapsed = resolved.received_at - recovered_at
    REPORT.append(f"end to end: {service} answers again → Slack resolved: {elapsed:.1f} s")
    assert resolved.payload["channel"] == "#ecoeco-oncall"
    assert _attachment(resolved)["color"] == "good"
    assert _attachment(resolved).get("pretext", "") == ""


def test_a_service_answering_with_errors_posts_a_warning_with_the_measured_ratio_to_its_team_channel(
    stack: Stack,
) -> None:
    alertname, service = "ApiHighErrorRatio", ERROR_SERVICE
    rule = stack.alert_rule(alertname, service)
    ratio = f'namespace_service:request_errors:ratio_rate5m{{service="{service}"}}'
    wait_until(lambda: bool(stack.prometheus.query(ratio)), timeout=WAIT, what=f"the recorded error ratio of {service}")

    failing_at = time.monotonic()
    stack.targets[service].error_share = 0.5
    path = slack_path(rule["labels"]["team"])
    warning = stack.slack.wait_for(
        _message(path, f"[FIRING:1] {alertname} · {service} · {SYSTEM}", failing_at), WAIT, "the warning on Slack"
    )
    elapsed = warning.received_at - failing_at
    REPORT.append(f"end to end: {service} fails half its requests → Slack warning: {elapsed:.1f} s")

    assert warning.payload["channel"] == expected_destination(stack.system, rule["labels"]).channel == "#ecoeco-backend"
    message = _attachment(warning)
    assert message["color"] == "warning"
    assert message.get("pretext", "") == ""
    shown = re.search(r"([0-9.]+)% of my-service's requests failed over the last 5 minutes \(alert above 5%\)",
                      message["text"])
    assert shown, message["text"]
    assert 5 < float(shown.group(1)) <= 50, "the description carries the ratio Prometheus measured"


def test_the_generated_watchdog_feeds_the_dead_mans_switch_and_never_reaches_slack(stack: Stack) -> None:
    heartbeat = stack.slack.wait_for(lambda d: d.path == f"/watchdog/{SYSTEM}", WAIT, "the Watchdog heartbeat")
    assert heartbeat.payload["commonLabels"]["alertname"] == "Watchdog"
    watchdog = next(rule for rule in stack.rules if rule["alert"] == "Watchdog")
    assert expected_destination(stack.system, {"alertname": "Watchdog", **watchdog["labels"]}) == WATCHDOG
    slack_titles = [_attachment(d)["title"] for d in stack.slack.deliveries() if "attachments" in d.payload]
    assert not [title for title in slack_titles if "Watchdog" in title]


def test_the_fastest_burning_slo_tier_pages_while_alertmanager_holds_back_the_slower_tiers(stack: Stack) -> None:
    service = ERROR_SERVICE
    stack.targets[service].error_share = 0.5  # as in the warning test; a no-op when that ran first
    tiers = ("1h-5m", "6h-30m", "1d-2h")  # the 3d-6h tier needs 1,000 events, about a minute more

    def states() -> dict[str, str]:
        alerts = stack.alertmanager.alerts(alertname="SloErrorBudgetBurn", service=service, slo="availability")
        return {alert["labels"]["window"]: alert["status"]["state"] for alert in alerts}

    wait_until(lambda: set(tiers) <= set(states()), timeout=2 * WAIT, what="three burn-rate tiers to fire")
    assert {tier: states()[tier] for tier in tiers} == {
        "1h-5m": "active",
        "6h-30m": "suppressed",
        "1d-2h": "suppressed",
    }
    # Only the fastest tier is posted. (A slower tier may have been posted alone earlier, if it
    # crossed its threshold first; the message that follows the faster tier's drops it.)
    page = stack.slack.wait_for(
        lambda d: d.path == slack_path("ecoeco-backend")
        and _attachment(d)["title"] == f"[FIRING:1] SloErrorBudgetBurn · {service} · {SYSTEM}"
        and "`slo=availability` `window=1h-5m`" in _attachment(d)["text"],
        WAIT,
        "the SLO page of the fastest tier on Slack",
    )
    assert page.payload["channel"] == "#ecoeco-oncall"
    assert "window=6h-30m" not in _attachment(page)["text"]
