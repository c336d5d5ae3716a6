"""The same routing plan as a Prometheus Operator `AlertmanagerConfig` (monitoring.coreos.com/v1alpha1).

Differences from the plain config, each forced by the Operator:
- Slack URLs are Secret key references (`slack-<team>`, key `url`), the same Secrets the plain
  config reads as mounted files; the dead man's switch URL comes from Secret `deadmans-switch`.
- The top route also matches `system`, because several AlertmanagerConfigs merge into one
  Alertmanager; the Operator adds a `namespace` matcher on top unless the Alertmanager resource
  sets `alertmanagerConfigMatcherStrategy: {type: None}` (docs/alerting.md explains why it must).
- Message templates are inline (see `alerting.slack`).
"""

from __future__ import annotations

from typing import Any

from obsbundle import naming
from obsbundle.alerting.plan import (
    InhibitRule,
    Matcher,
    NullReceiver,
    Receiver,
    Route,
    RoutingPlan,
    SlackReceiver,
    WebhookReceiver,
    equals,
)
from obsbundle.alerting.policy import SECRET_KEY, WATCHDOG_SECRET_NAME, slack_secret_name
from obsbundle.alerting.slack import slack_message
from obsbundle.labels import object_labels
from obsbundle.model import System
from obsbundle.settings import Settings

API_VERSION = "monitoring.coreos.com/v1alpha1"

# Alertmanager's snake_case Slack fields → the CRD's camelCase ones.
_SLACK_FIELDS = {
    "send_resolved": "sendResolved",
    "color": "color",
    "title": "title",
    "title_link": "titleLink",
    "text": "text",
    "fallback": "fallback",
    "footer": "footer",
    "pretext": "pretext",
    "link_names": "linkNames",
    "mrkdwn_in": "mrkdwnIn",
    "actions": "actions",
}


def alertmanager_config_object(system: System, plan: RoutingPlan, settings: Settings) -> dict[str, Any]:
    """The AlertmanagerConfig object of one system, in the system's monitoring namespace."""
    top = _route(plan.route)
    top["matchers"] = [_matcher(equals(naming.SYSTEM_LABEL, system.name)), *top.get("matchers", [])]
    return {
        "apiVersion": API_VERSION,
        "kind": "AlertmanagerConfig",
        "metadata": {
            "name": system.name,
            "namespace": system.monitoring.namespace,
            "labels": {**object_labels(system, settings), "app.kubernetes.io/component": "alerting"},
        },
        "spec": {
            "route": {"groupBy": list(plan.group_by), **top},
            "inhibitRules": [_inhibit_rule(rule) for rule in plan.inhibit_rules],
            "receivers": [_receiver(system, receiver) for receiver in plan.receivers],
        },
    }


def _matcher(matcher: Matcher) -> dict[str, str]:
    return {"name": matcher.name, "value": matcher.value, "matchType": matcher.op}


def _route(route: Route) -> dict[str, Any]:
    out: dict[str, Any] = {"receiver": route.receiver}
    if route.matchers:
        out["matchers"] = [_matcher(matcher) for matcher in route.matchers]
    out.update(
        groupWait=route.timing.group_wait,
        groupInterval=route.timing.group_interval,
        repeatInterval=route.timing.repeat_interval,
    )
    if route.routes:
        out["routes"] = [_route(child) for child in route.routes]
    return out


def _inhibit_rule(rule: InhibitRule) -> dict[str, Any]:
    return {
        "sourceMatch": [_matcher(matcher) for matcher in rule.source],
        "targetMatch": [_matcher(matcher) for matcher in rule.target],
        "equal": list(rule.equal),
    }


def _receiver(system: System, receiver: Receiver) -> dict[str, Any]:
    match receiver:
        case NullReceiver(name=name):
            return {"name": name}
        case WebhookReceiver(name=name):
            return {
                "name": name,
                "webhookConfigs": [
                    {"urlSecret": {"name": WATCHDOG_SECRET_NAME, "key": SECRET_KEY}, "sendResolved": False}
                ],
            }
        case SlackReceiver():
            message = slack_message(system, receiver, inline=True)
            config = {
                "apiURL": {"name": slack_secret_name(receiver.team), "key": SECRET_KEY},
                "channel": receiver.channel,
                **{_SLACK_FIELDS[key]: value for key, value in message.items()},
            }
            return {"name": receiver.name, "slackConfigs": [config]}
