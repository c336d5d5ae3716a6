"""Every alert's dashboard link opens a panel that exists, on a dashboard that defines each variable the
link sets, offers the value it sets, and filters panels by it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from obsbundle.dashboards.variables import expand, referenced
from obsbundle.dashboards.walk import panels

FLEET = ("aegis", "ecoeco", "logpilot")


def _dashboards(output: dict[str, bytes], system: str) -> dict[str, dict[str, Any]]:
    boards = [json.loads(data) for path, data in output.items() if path.startswith(f"{system}/dashboards/")
              and path.endswith(".json")]
    return {board["uid"]: board for board in boards}


def _alert_rules(output: dict[str, bytes], system: str) -> Iterator[dict[str, Any]]:
    for path, data in sorted(output.items()):
        if path.startswith(f"{system}/prometheus/rules/") and path.endswith(".rules.yaml"):
            for group in yaml.safe_load(data)["groups"]:
                yield from (rule for rule in group["rules"] if "alert" in rule)


def _queries(panel: dict[str, Any]) -> list[str]:
    return [target["expr"] for target in panel.get("targets", [])]


def _variable(board: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((v for v in board.get("templating", {}).get("list", []) if v["name"] == name), None)


@pytest.mark.parametrize("system", FLEET)
def test_every_alert_link_sets_only_variables_its_dashboard_defines_offers_and_filters_by(
    default_output: dict[str, bytes], system: str
) -> None:
    boards = _dashboards(default_output, system)
    problems: set[str] = set()
    checked = 0
    for rule in _alert_rules(default_output, system):
        url = urlparse(rule["annotations"]["dashboard_url"])
        uid = url.path.rsplit("/d/", 1)[1]
        board = boards.get(uid)
        if board is None:
            problems.add(f"{rule['alert']}: no dashboard {uid}")
            continue
        params = parse_qs(url.query)
        by_id = {panel["id"]: panel for panel in panels(board)}
        for panel_id in params.get("viewPanel", []):
            if int(panel_id) not in by_id:
                problems.add(f"{rule['alert']}: {uid} has no panel {panel_id}")
        for key, values in params.items():
            if not key.startswith("var-"):
                continue
            name, value = key.removeprefix("var-"), values[0]
            checked += 1
            variable = _variable(board, name)
            if variable is None:
                problems.add(f"{rule['alert']}: {uid} defines no variable {name!r} (link sets {key}={value})")
                continue
            if variable["type"] == "custom" and value not in variable["query"].split(","):
                problems.add(f"{rule['alert']}: {uid}'s {name!r} does not offer {value!r}")
            # The variable must narrow at least the linked panel (or, without one, some panel).
            linked = [by_id[int(p)] for p in params.get("viewPanel", []) if int(p) in by_id]
            shown = linked or list(by_id.values())
            if not any(name in referenced(query) for panel in shown for query in _queries(panel)):
                problems.add(f"{rule['alert']}: no panel it opens on {uid} filters by ${name}")
    assert checked, "no alert link sets a variable, so this test proves nothing"
    assert not problems, "\n".join(sorted(problems))


def test_the_slo_variable_narrows_the_slo_panels_to_the_linked_slo(default_output: dict[str, bytes]) -> None:
    board = _dashboards(default_output, "ecoeco")["ecoeco-service-auth-service"]
    variable = _variable(board, "slo")
    assert variable is not None and variable["query"] == "availability,latency"
    budget = next(panel for panel in panels(board) if panel["title"] == "Error budget remaining")
    [query] = _queries(budget)
    assert 'slo="availability"' in expand(query, {"slo": "availability", "cluster": ".*"}).replace("=~", "=")
