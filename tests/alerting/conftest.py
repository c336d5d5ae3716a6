"""Fixtures of the alerting tests: the default fleet's generated Alertmanager files on disk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from obsbundle.model import Inventory, System
from tests.support.slack_receiver import SlackReceiver

CONFIG = "alertmanager/alertmanager.yaml"
TEMPLATES = "alertmanager/slack.tmpl"


@pytest.fixture(scope="session")
def fleet_systems(default_inventory: Inventory) -> dict[str, System]:
    return {system.name: system for system in default_inventory.systems}


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackReceiver]:
    """A local receiver of the Slack webhook payloads, one per test module."""
    receiver = SlackReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def ecoeco(fleet_systems: dict[str, System]) -> System:
    return fleet_systems["ecoeco"]


@pytest.fixture(scope="session")
def config_paths(generated_tree: Path, fleet_systems: dict[str, System]) -> dict[str, Path]:
    """`alertmanager.yaml` of every fleet system, as `generate.py` writes it (templates file beside it)."""
    return {name: generated_tree / name / CONFIG for name in sorted(fleet_systems)}


@pytest.fixture(scope="session")
def configs(config_paths: dict[str, Path]) -> dict[str, dict[str, Any]]:
    return {name: yaml.safe_load(path.read_text()) for name, path in config_paths.items()}


REPORT: list[str] = []
"""What the tests measured (not asserted): durations of the end-to-end path, alerts checked."""


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORT:
        terminalreporter.section("alerting: measured")
        for line in REPORT:
            terminalreporter.write_line(line)
