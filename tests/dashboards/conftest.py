"""A real Prometheus holding the default fleet's synthetic series, and the fleet's dashboards."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from obsbundle.bundle import dashboards_of
from obsbundle.config import DEFAULT_CONFIG
from obsbundle.model import Inventory, System
from obsbundle.preview.synthetic import Window, start_fleet_prometheus
from obsbundle.rules import rule_groups
from obsbundle.tools.prometheus import PrometheusServer
from tests.dashboards.variants import pgbouncer_system

SUMMARY = pytest.StashKey[list[str]]()
"""Lines the dashboard tests add to pytest's terminal summary (counts of what they checked)."""


@pytest.fixture(scope="session")
def checked_systems(default_inventory: Inventory) -> list[System]:
    """The default fleet, plus a system with an exported PgBouncer, which the fleet lacks."""
    return [*default_inventory.systems, pgbouncer_system()]


@pytest.fixture(scope="session")
def fleet_dashboards(checked_systems: list[System]) -> dict[str, list[dict[str, Any]]]:
    """Every dashboard of the checked systems, by system name."""
    return {system.name: dashboards_of(system, DEFAULT_CONFIG) for system in checked_systems}


@pytest.fixture(scope="session")
def fleet_window() -> Window:
    return Window()


@pytest.fixture(scope="session")
def fleet_prometheus(
    tmp_path_factory: pytest.TempPathFactory, checked_systems: list[System], fleet_window: Window
) -> Iterator[PrometheusServer]:
    """Prometheus over the checked systems' synthetic series and their generated recording rules."""
    workdir = tmp_path_factory.mktemp("fleet-prometheus")
    groups = [group.to_dict() for system in checked_systems for group in rule_groups(system, DEFAULT_CONFIG.rules)]
    server = start_fleet_prometheus(workdir, checked_systems, fleet_window, rule_groups=groups)
    yield server
    server.stop()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    lines = config.stash.get(SUMMARY, [])
    if lines:
        terminalreporter.section("dashboards")
        for line in lines:
            terminalreporter.write_line(line)


def report(config: pytest.Config, line: str) -> None:
    config.stash.setdefault(SUMMARY, []).append(line)
