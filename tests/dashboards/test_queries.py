"""Every query of every dashboard parses, and returns data for the default fleet."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from obsbundle.dashboards.variables import expand, opening_values
from obsbundle.dashboards.walk import expressions, panels, targets
from obsbundle.preview.synthetic import Window
from obsbundle.tools import promtool
from obsbundle.tools.prometheus import PrometheusServer
from tests.dashboards.conftest import report

pytestmark = pytest.mark.servers

RANGE_STEP = "5m"


def grafana_values(dashboard: dict[str, Any], window: Window) -> dict[str, str]:
    """What Grafana substitutes when the dashboard opens on the window with its default choices."""
    return opening_values(dashboard, scrape_interval=window.step, range_seconds=window.duration)


def _finite(result: list[dict[str, Any]]) -> bool:
    samples = [series["value"] for series in result if "value" in series]
    samples += [value for series in result for value in series.get("values", [])]
    return any(math.isfinite(float(value)) for _, value in samples)


def test_every_query_and_variable_parses_with_promtool(
    fleet_dashboards: dict[str, list[dict[str, Any]]], fleet_window: Window, pytestconfig: pytest.Config
) -> None:
    located = [
        (where, expr)
        for boards in fleet_dashboards.values()
        for board in boards
        for where, expr in expressions(board, grafana_values(board, fleet_window))
    ]
    errors = promtool.expression_errors([expr for _, expr in located])
    assert not errors, "\n".join(f"{located[index][0]}: {error}\n  {located[index][1]}"
                                 for index, error in sorted(errors.items()))
    report(pytestconfig, f"{len(located)} queries and variable selectors parse (promtool {promtool.version()})")


def test_every_panel_of_the_default_fleet_shows_data(
    fleet_dashboards: dict[str, list[dict[str, Any]]],
    fleet_prometheus: PrometheusServer,
    fleet_window: Window,
    pytestconfig: pytest.Config,
) -> None:
    checks: list[tuple[str, str, bool]] = []
    panel_count = 0
    for boards in fleet_dashboards.values():
        for board in boards:
            values = grafana_values(board, fleet_window)
            panel_count += sum(1 for panel in panels(board) if panel.get("targets"))
            for panel, target in targets(board):
                where = f"{board['title']} / {panel['title']} / {target['refId']}"
                checks.append((where, expand(target["expr"], values), bool(target["instant"])))

    def shows_data(check: tuple[str, str, bool]) -> bool:
        _, expr, instant = check
        if instant:
            return _finite(fleet_prometheus.query(expr, time=fleet_window.end))
        return _finite(fleet_prometheus.query_range(expr, fleet_window.start, fleet_window.end, RANGE_STEP))

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(shows_data, checks))
    empty = [f"{where}\n  {expr}" for (where, expr, _), ok in zip(checks, results, strict=True) if not ok]
    assert not empty, f"{len(empty)} of {len(checks)} queries return no data:\n" + "\n".join(empty)
    dashboards = sum(len(boards) for boards in fleet_dashboards.values())
    report(pytestconfig, f"{dashboards} dashboards, {panel_count} panels with queries, {len(checks)} queries: "
                         "every one returns data for the default fleet and a PgBouncer system")
