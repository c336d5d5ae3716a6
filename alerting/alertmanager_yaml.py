"""The plain Alertmanager configuration (`alertmanager.yaml`) of a routing plan.

Written for Alertmanager 0.25 (Debian's): `matchers` lists, `api_url_file`, and webhook `url`
(`url_file` came in 0.26). Newer Alertmanagers read it unchanged.
"""

from __future__ import annotations

from typing import Any

from obsbundle.alerting.plan import (
    InhibitRule,
    Matcher,
    NullReceiver,
    Receiver,
    Route,
    RoutingPlan,
    SlackReceiver,
    WebhookReceiver,
)
from obsbundle.alerting.policy import AlertingOptions
from obsbundle.alerting.slack import TEMPLATES_FILE, slack_message
from obsbundle.model import System


def alertmanager_config(system: System, plan: RoutingPlan, options: AlertingOptions) -> dict[str, Any]:
    """The whole configuration file as plain data, keys in the order Alertmanager's docs use."""
    return {
        "route": {"group_by": list(plan.group_by), **_route(plan.route)},
        "inhibit_rules": [_inhibit_rule(rule) for rule in plan.inhibit_rules],
        "receivers": [_receiver(system, receiver, options) for receiver in plan.receivers],
        "templates": [TEMPLATES_FILE],
    }


def _matchers(matchers: tuple[Matcher, ...]) -> list[str]:
    return [matcher.text() for matcher in matchers]


def _route(route: Route) -> dict[str, Any]:
    out: dict[str, Any] = {"receiver": route.receiver}
    if route.matchers:
        out["matchers"] = _matchers(route.matchers)
    out.update(
        group_wait=route.timing.group_wait,
        group_interval=route.timing.group_interval,
        repeat_interval=route.timing.repeat_interval,
    )
    if route.routes:
        out["routes"] = [_route(child) for child in route.routes]
    return out


def _inhibit_rule(rule: InhibitRule) -> dict[str, Any]:
    return {
        "source_matchers": _matchers(rule.source),
        "target_matchers": _matchers(rule.target),
        "equal": list(rule.equal),
    }


def _receiver(system: System, receiver: Receiver, options: AlertingOptions) -> dict[str, Any]:
    match receiver:
        case NullReceiver(name=name):
            return {"name": name}
        case WebhookReceiver(name=name, url=url):
            # A resolved Watchdog means Prometheus stopped sending it; posting that would count
            # as a heartbeat and hide exactly the outage the switch exists to catch.
            return {"name": name, "webhook_configs": [{"url": url, "send_resolved": False}]}
        case SlackReceiver():
            config = {
                "api_url_file": options.slack_url_file(system, receiver.team),
                "channel": receiver.channel,
                **slack_message(system, receiver, inline=False),
            }
            return {"name": receiver.name, "slack_configs": [config]}
