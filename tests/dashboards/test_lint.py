"""The conventions lint passes on every generated dashboard, and catches each kind of mistake."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from obsbundle.bundle import dashboards_of
from obsbundle.config import DEFAULT_CONFIG
from obsbundle.dashboards.lint import REPLACED, lint, main, parse_selectors
from obsbundle.dashboards.walk import panels
from obsbundle.model import Inventory
from tests.dashboards.conftest import report
from tests.dashboards.variants import many_apis_system

Mutation = Callable[[dict[str, Any]], None]


def test_every_dashboard_keeps_the_conventions_with_no_exclusions(
    fleet_dashboards: dict[str, list[dict[str, Any]]], pytestconfig: pytest.Config
) -> None:
    boards = [board for found in fleet_dashboards.values() for board in found]
    problems = [str(problem) for board in boards for problem in lint(board)]
    assert not problems, "\n".join(problems)
    report(pytestconfig, f"{len(boards)} dashboards keep every lint rule; replaced, with reasons: {sorted(REPLACED)}")


def _panel(board: dict[str, Any], title: str) -> dict[str, Any]:
    return next(panel for panel in panels(board) if panel.get("title") == title)


def _set_expr(title: str, expr: str) -> Mutation:
    def mutate(board: dict[str, Any]) -> None:
        _panel(board, title)["targets"][0]["expr"] = expr

    return mutate


def _set(title: str, key: str, value: Any) -> Mutation:
    def mutate(board: dict[str, Any]) -> None:
        _panel(board, title)[key] = value

    return mutate


def _set_unit(board: dict[str, Any]) -> None:
    _panel(board, "CPU per pod")["fieldConfig"]["defaults"]["unit"] = "cores"


def _duplicate_id(board: dict[str, Any]) -> None:
    _panel(board, "Memory per pod")["id"] = _panel(board, "CPU per pod")["id"]


def _overlap(board: dict[str, Any]) -> None:
    _panel(board, "Memory per pod")["gridPos"] = dict(_panel(board, "CPU per pod")["gridPos"])


def _editable(board: dict[str, Any]) -> None:
    board["editable"] = True


def _unused_variable(board: dict[str, Any]) -> None:
    board["templating"]["list"].append({**board["templating"]["list"][1], "name": "job"})


def _no_cluster_variable(board: dict[str, Any]) -> None:
    board["templating"]["list"] = [v for v in board["templating"]["list"] if v["name"] != "cluster"]


def _fixed_datasource(board: dict[str, Any]) -> None:
    _panel(board, "CPU per pod")["datasource"] = {"type": "prometheus", "uid": "prometheus"}


def _variable_refresh(board: dict[str, Any]) -> None:
    board["templating"]["list"][1]["refresh"] = 1


MISTAKES: dict[str, tuple[Mutation, str]] = {
    "a rate over a fixed window": (
        _set_expr("CPU per pod", 'sum(rate(container_cpu_usage_seconds_total{cluster=~"$cluster"}[5m]))'),
        "target-rate-interval-rule",
    ),
    "a counter read raw": (
        _set_expr("CPU per pod", 'sum(container_cpu_usage_seconds_total{cluster=~"$cluster"})'),
        "target-counter-agg-rule",
    ),
    "a selector without the cluster matcher": (
        _set_expr("CPU per pod", "sum(rate(container_cpu_usage_seconds_total[$__rate_interval]))"),
        "target-required-matchers-rule",
    ),
    "unbalanced parentheses": (_set_expr("CPU per pod", "sum(rate(up[$__rate_interval])"), "target-promql-rule"),
    "a panel without a description": (_set("CPU per pod", "description", ""), "panel-title-description-rule"),
    "an invalid unit": (_set_unit, "panel-units-rule"),
    "a fixed datasource": (_fixed_datasource, "panel-datasource-rule"),
    "a panel id used twice": (_duplicate_id, "panel-id-rule"),
    "a panel id below 100 that no alert links to": (_set("CPU per pod", "id", 99), "panel-id-rule"),
    "overlapping panels": (_overlap, "grid-rule"),
    "an editable dashboard": (_editable, "uneditable-dashboard-rule"),
    "a variable no query uses": (_unused_variable, "template-unused-rule"),
    "no cluster variable": (_no_cluster_variable, "template-required-variables-rule"),
    "a variable that does not refresh with the time range": (_variable_refresh, "template-on-time-change-reload-rule"),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_lint_reports_a_dashboard_with(default_inventory: Inventory, mistake: str) -> None:
    ecoeco = next(system for system in default_inventory.systems if system.name == "ecoeco")
    boards = dashboards_of(ecoeco, DEFAULT_CONFIG)
    service = next(board for board in boards if board["title"] == "ecoeco / auth-service")
    broken = copy.deepcopy(service)
    mutate, rule = MISTAKES[mistake]
    mutate(broken)
    assert rule in {problem.rule for problem in lint(broken)}
    assert not lint(service)


def test_selectors_are_found_with_the_function_around_them() -> None:
    found = list(
        parse_selectors(
            'sum by (pod) (rate(a_total{x="1"}[$__rate_interval])) / on (pod) group_left () '
            'max by (pod) (b{y=~"a|b"}) * label_replace(c, "i", "$1", "n", "(.*)")'
        )
    )
    assert [(s.metric, s.function, s.range) for s in found] == [
        ("a_total", "rate", "$__rate_interval"),
        ("b", "max", None),
        ("c", "label_replace", None),
    ]
    assert found[1].matchers == ('y=~"a|b"',)


def test_a_system_with_many_apis_opens_with_collapsed_service_rows_that_keep_the_conventions() -> None:
    boards = dashboards_of(many_apis_system(DEFAULT_CONFIG.dashboards.expanded_service_rows + 1), DEFAULT_CONFIG)
    api = next(board for board in boards if board["title"] == "many / API performance")
    rows = [panel for panel in api["panels"] if panel["type"] == "row"][1:]
    assert rows and all(row["collapsed"] and len(row["panels"]) == 4 for row in rows)
    assert [row["gridPos"]["y"] for row in rows] == list(range(rows[0]["gridPos"]["y"], rows[0]["gridPos"]["y"]
                                                              + len(rows)))
    assert not [str(problem) for board in boards for problem in lint(board)]


def test_the_lint_command_passes_written_dashboards_and_names_the_file_of_each_problem(
    generated_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = generated_tree / "ecoeco" / "dashboards"
    assert main([str(folder)]) == 0
    assert capsys.readouterr().out == ""
    board = json.loads((folder / "ecoeco-service-auth-service.json").read_text())
    _editable(board)
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(board))
    assert main([str(folder), str(broken)]) == 1
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith(f"{broken}: uneditable-dashboard-rule: ecoeco / auth-service: ")


def test_the_lint_command_refuses_paths_that_hold_no_dashboard(generated_tree: Path, tmp_path: Path) -> None:
    assert main([str(generated_tree / "ecoeco" / "kustomization.yaml")]) == 2
    assert main([str(tmp_path)]) == 2
    (tmp_path / "settings.json").write_text('{"theme": "dark"}')
    assert main([str(tmp_path)]) == 2
