"""Read an AlertmanagerConfig object back into a plain Alertmanager config, as the Operator would.

Prometheus Operator turns the object into a sub-tree of the Alertmanager's config: its top route
becomes a child of the global root, Secret references become values. This does the same with
Secret references turned into the files a test provides, so the object's routing and messages can
be run by a real Alertmanager and amtool.
"""

from __future__ import annotations

import re
from typing import Any

OPERATOR_ROOT_RECEIVER = "operator-root"


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z])([A-Z])", r"_\1", name.replace("URL", "Url")).lower()


def _matcher(matcher: dict[str, str]) -> str:
    value = matcher["value"].replace("\\", "\\\\").replace('"', '\\"')
    return f'{matcher["name"]}{matcher["matchType"]}"{value}"'


def _route(route: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in route.items():
        if key == "matchers":
            out["matchers"] = [_matcher(matcher) for matcher in value]
        elif key == "routes":
            out["routes"] = [_route(child) for child in value]
        else:
            out[_snake(key)] = value
    return out


def _secret_file(reference: dict[str, str], secrets_dir: str) -> str:
    return f"{secrets_dir}/{reference['name']}/{reference['key']}"


def _receiver(receiver: dict[str, Any], secrets_dir: str, webhook_urls: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": receiver["name"]}
    for slack in receiver.get("slackConfigs", []):
        config = {_snake(key): value for key, value in slack.items() if key != "apiURL"}
        config["api_url_file"] = _secret_file(slack["apiURL"], secrets_dir)
        out.setdefault("slack_configs", []).append(config)
    for webhook in receiver.get("webhookConfigs", []):
        config = {_snake(key): value for key, value in webhook.items() if key != "urlSecret"}
        config["url"] = webhook_urls[webhook["urlSecret"]["name"]]
        out.setdefault("webhook_configs", []).append(config)
    return out


def plain_config(obj: dict[str, Any], secrets_dir: str, webhook_urls: dict[str, str]) -> dict[str, Any]:
    """The Alertmanager config the object amounts to; `webhook_urls` maps a Secret name to its URL."""
    spec = obj["spec"]
    return {
        "route": {"receiver": OPERATOR_ROOT_RECEIVER, "routes": [_route(spec["route"])]},
        "inhibit_rules": [
            {
                "source_matchers": [_matcher(m) for m in rule["sourceMatch"]],
                "target_matchers": [_matcher(m) for m in rule["targetMatch"]],
                "equal": rule["equal"],
            }
            for rule in spec["inhibitRules"]
        ],
        "receivers": [
            {"name": OPERATOR_ROOT_RECEIVER},
            *(_receiver(receiver, secrets_dir, webhook_urls) for receiver in spec["receivers"]),
        ],
    }
