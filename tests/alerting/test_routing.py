"""Every alert reaches the channel the owner table names, as `amtool config routes test` resolves it."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from obsbundle.model import System
from tests.alerting.conftest import REPORT
from tests.alerting.contract import (
    NOWHERE,
    Destination,
    Labels,
    contract_alerts,
    expected_destination,
    receiver_destinations,
)
from tests.alerting.generated import alert_labels, alert_rules
from tests.support import amtool

FLEET = ("aegis", "ecoeco", "logpilot")


def misrouted(
    system: System, config_path: Path, config: dict[str, Any], alerts: Iterable[Labels]
) -> tuple[int, list[str]]:
    """How many alerts were checked, and one line for each that lands anywhere but its owner's place."""
    destinations = receiver_destinations(config)
    alerts = list(alerts)
    with ThreadPoolExecutor(max_workers=4) as pool:
        resolved = list(pool.map(lambda labels: amtool.routes_test(config_path, labels), alerts))
    problems = []
    for labels, receivers in zip(alerts, resolved, strict=True):
        expected = expected_destination(system, labels)
        if len(receivers) != 1:
            problems.append(f"{labels} → {receivers or 'no receiver'} (want exactly one)")
        elif destinations.get(receivers[0]) != expected:
            problems.append(f"{labels} → {receivers[0]} = {destinations.get(receivers[0])}, want {expected}")
    return len(alerts), problems


@pytest.mark.parametrize("system", FLEET)
def test_every_contract_alert_of_the_fleet_lands_where_the_owner_table_says(
    fleet_systems: dict[str, System], config_paths: dict[str, Path], configs: dict[str, dict[str, Any]], system: str
) -> None:
    model = fleet_systems[system]
    checked, problems = misrouted(model, config_paths[system], configs[system], contract_alerts(model))
    assert not problems, f"{len(problems)} of {checked} alerts misrouted:\n" + "\n".join(problems)
    assert checked >= 20


@pytest.mark.parametrize("system", FLEET)
def test_every_generated_alert_of_the_fleet_lands_where_the_owner_table_says(
    fleet_systems: dict[str, System],
    config_paths: dict[str, Path],
    configs: dict[str, dict[str, Any]],
    default_output: dict[str, bytes],
    system: str,
) -> None:
    alerts = [alert_labels(rule) for rule in alert_rules(default_output, system)]
    assert alerts, f"generate.py wrote no alert rules for {system}"
    checked, problems = misrouted(fleet_systems[system], config_paths[system], configs[system], alerts)
    REPORT.append(f"routing: {checked} generated alerts of {system} checked with amtool")
    assert not problems, f"{len(problems)} of {checked} generated alerts misrouted:\n" + "\n".join(problems)


def test_an_alert_whose_team_label_names_no_team_still_reaches_the_system_owner(
    fleet_systems: dict[str, System], config_paths: dict[str, Path], configs: dict[str, dict[str, Any]]
) -> None:
    model = fleet_systems["ecoeco"]
    alerts = [
        {"alertname": "HandWritten", "system": "ecoeco", "severity": "critical", "team": "nobody"},
        {"alertname": "HandWritten", "system": "ecoeco", "severity": "warning"},
        {"alertname": "HandWritten", "system": "ecoeco"},
    ]
    _, problems = misrouted(model, config_paths["ecoeco"], configs["ecoeco"], alerts)
    assert not problems, "\n".join(problems)


def test_an_alert_without_a_severity_is_posted_to_its_teams_channel_rather_than_dropped(
    fleet_systems: dict[str, System], config_paths: dict[str, Path], configs: dict[str, dict[str, Any]]
) -> None:
    model = fleet_systems["aegis"]
    labels = {"alertname": "NoSeverity", "system": "aegis", "team": "aegis-users", "service": "user-service"}
    [receiver] = amtool.routes_test(config_paths["aegis"], labels)
    destination = receiver_destinations(configs["aegis"])[receiver]
    assert destination == Destination("#aegis-user-service", "/etc/alertmanager/secrets/slack-aegis-users/url")
    assert destination == expected_destination(model, labels)


def test_info_alerts_reach_no_channel(
    fleet_systems: dict[str, System], config_paths: dict[str, Path], configs: dict[str, dict[str, Any]]
) -> None:
    labels = {"alertname": "ServiceReplicasAtMax", "system": "logpilot", "team": "logpilot", "severity": "info"}
    [receiver] = amtool.routes_test(config_paths["logpilot"], labels)
    assert receiver_destinations(configs["logpilot"])[receiver] == NOWHERE
