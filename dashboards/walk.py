"""The parts of a dashboard's JSON that hold queries: its panels, their targets and its variables.

`--verify` asks Prometheus for what these queries select, and the dashboard linter checks them;
both walk a dashboard the same way, through these functions.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from obsbundle.dashboards.variables import expand

LABEL_VALUES = re.compile(r"^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$")
"""A query variable's `label_values(<selector>, <label>)`: group 1 is the selector, group 2 the label."""


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel of a dashboard, rows and the panels inside collapsed rows included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def targets(dashboard: Mapping[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(panel, target) of every query of every panel."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield panel, target


def expressions(dashboard: Mapping[str, Any], values: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    """(location, PromQL with variables replaced by `values`) of every target and variable query."""
    title = dashboard["title"]
    for panel, target in targets(dashboard):
        yield f"{title} / {panel['title']} / {target['refId']}", expand(target["expr"], values)
    for variable in dashboard.get("templating", {}).get("list", []):
        match = LABEL_VALUES.match(variable.get("query", "")) if variable["type"] == "query" else None
        if match:
            yield f"{title} / variable {variable['name']}", expand(match.group(1), values)
