"""A healthy day raises nothing: over three hours of healthy synthetic traffic in a real Prometheus,
with the generated recording rules backfilled, no generated alert but Watchdog fires at any of the
last hour's checks: its expression does not return a series through its whole `for`. A rollout's
minutes of ContainerCreating are in that data, as on any good day."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from obsbundle.config import DEFAULT_CONFIG
from obsbundle.durations import parse_duration
from obsbundle.loader import load_inventory
from obsbundle.model import Inventory, System
from obsbundle.preview.synthetic import Traffic, Window, start_fleet_prometheus
from obsbundle.rules import alert_groups, rule_groups
from obsbundle.rules.definitions import Alert
from obsbundle.tools.prometheus import PrometheusServer

pytestmark = pytest.mark.servers

WINDOW = Window()
CHECKS = 4
"""Evaluations checked: the window's end and every 20 minutes before it, back to one hour."""


def _serve(workdir: Path, systems: tuple[System, ...], traffic: Traffic) -> PrometheusServer:
    groups = [group.to_dict() for system in systems for group in rule_groups(system, DEFAULT_CONFIG.rules)]
    return start_fleet_prometheus(workdir, systems, WINDOW, rule_groups=groups, traffic=traffic)


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory, default_inventory: Inventory) -> Iterator[PrometheusServer]:
    server = _serve(tmp_path_factory.mktemp("healthy-day"), default_inventory.systems, Traffic.HEALTHY)
    yield server
    server.stop()


def _alerts(system: System) -> list[Alert]:
    return [alert for group in alert_groups(system, DEFAULT_CONFIG.rules) for alert in group.alerts]


LAST_HOUR = tuple(WINDOW.end - check * 1200 for check in range(CHECKS))


def _firing(server: PrometheusServer, alert: Alert, times: tuple[int, ...] = LAST_HOUR) -> list[str]:
    """The checked evaluations at which the alert fires: its expression returns the same series at
    every minute of its `for` up to then, as Prometheus would have evaluated it."""
    hold = parse_duration(alert.for_) if alert.for_ else 0
    found = []
    for at in times:
        result = server.query_range(alert.expr, at - hold, at, "60s")
        held = [series for series in result if len(series["values"]) == hold // 60 + 1]
        if held:
            found.append(f"{alert.name} ({alert.entity}) at end−{(WINDOW.end - at) // 60}m: {held[0]['metric']}")
    return found


@pytest.mark.parametrize("system_name", ["aegis", "ecoeco", "logpilot"])
def test_no_generated_alert_but_watchdog_fires_on_a_healthy_day(
    healthy: PrometheusServer, default_inventory: Inventory, system_name: str
) -> None:
    [system] = [system for system in default_inventory.systems if system.name == system_name]
    alerts = _alerts(system)
    assert len(alerts) > 20
    firing = [line for alert in alerts if alert.name != "Watchdog" for line in _firing(healthy, alert)]
    assert not firing, f"{len(firing)} firing on a healthy day:\n" + "\n".join(firing)
    watchdog = next(alert for alert in alerts if alert.name == "Watchdog")
    assert _firing(healthy, watchdog), "Watchdog must always fire, or the dead man's switch alarms"


def test_the_same_check_sees_the_incident_traffic_page(tmp_path: Path) -> None:
    # skiff: one API with a 99.9 % SLO. The incident fails 8 % of its requests from 40 % to 55 % of
    # the window, so at 52 % both page windows burn far above 14.4 × the budget.
    [skiff] = load_inventory([Path(__file__).resolve().parent / "fixtures" / "skiff.yaml"]).systems
    server = _serve(tmp_path, (skiff,), Traffic.INCIDENT)
    try:
        during = (WINDOW.start + int(0.52 * WINDOW.duration),)
        pages = [a for a in _alerts(skiff) if a.name == "SloErrorBudgetBurn" and a.severity == "critical"]
        assert any(_firing(server, page, during) for page in pages), "the incident's page went unseen"
    finally:
        server.stop()
