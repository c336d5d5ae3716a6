"""A healthy day raises nothing: over three hours of healthy synthetic traffic in a real Prometheus,
with the generated recording rules backfilled, no generated alert's expression returns a series at
any of the last hour's evaluations, save Watchdog's. The same data with the tests' incident makes
the SLO pages fire, so the check can tell the two apart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from obsbundle.config import DEFAULT_CONFIG
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


def _firing(server: PrometheusServer, alert: Alert) -> list[str]:
    """The evaluations at which the alert's expression returns a series (its `for` aside)."""
    found = []
    for check in range(CHECKS):
        at = WINDOW.end - check * 1200
        result = server.query(alert.expr, time=at)
        if result:
            found.append(f"{alert.name} ({alert.entity}) at end−{check * 20}m: {result[0]['metric']}")
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
