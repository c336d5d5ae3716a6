"""The generated plain rule files of a system, read from the bundle's output."""

from __future__ import annotations

from typing import Any

import yaml

Labels = dict[str, str]


def plain_rule_files(output: dict[str, bytes], system: str) -> dict[str, dict[str, Any]]:
    """The system's plain Prometheus rule files (documents made of `groups` only), by output path."""
    files = {}
    for path, data in sorted(output.items()):
        if path.startswith(f"{system}/") and path.endswith((".yaml", ".yml")):
            document = yaml.safe_load(data)
            if isinstance(document, dict) and set(document) == {"groups"}:
                files[path] = document
    return files


def alert_rules(output: dict[str, bytes], system: str) -> list[dict[str, Any]]:
    """Every alerting rule of those files, in file order."""
    return [
        rule
        for document in plain_rule_files(output, system).values()
        for group in document["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def alert_labels(rule: dict[str, Any]) -> Labels:
    """The labels an alerting rule fires with, as far as routing goes.

    The rules put every routing label (severity, team, system, service, …) among the rule's own
    labels; labels the expression adds (pod, source, …) play no part in routing.
    """
    return {"alertname": rule["alert"], **rule.get("labels", {})}
