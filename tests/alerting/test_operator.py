"""The AlertmanagerConfig object: valid against the real CRD, secrets by reference, routes like alertmanager.yaml."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from obsbundle.model import System
from obsbundle.render import to_yaml
from tests.alerting.contract import contract_alerts
from tests.alerting.operator_config import plain_config
from tests.support import amtool
from tests.support.crds import validation_errors

FLEET = ("aegis", "ecoeco", "logpilot")


@pytest.fixture(scope="session")
def objects(default_output: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    return {system: yaml.safe_load(default_output[f"{system}/{system}-alertmanagerconfig.yaml"]) for system in FLEET}


@pytest.mark.parametrize("system", FLEET)
def test_the_alertmanager_config_object_passes_the_crd_schema(objects: dict[str, dict[str, Any]], system: str) -> None:
    assert validation_errors(objects[system]) == []


def test_the_crd_check_catches_a_broken_alertmanager_config(objects: dict[str, dict[str, Any]]) -> None:
    broken = yaml.safe_load(yaml.safe_dump(objects["ecoeco"]))
    broken["spec"]["receivers"][2]["slackConfigs"][0]["apiURL"] = "https://hooks.slack.com/services/T/B/X"
    broken["spec"]["route"]["groupWait"] = "soon"
    assert len(validation_errors(broken)) == 2


@pytest.mark.parametrize("system", FLEET)
def test_the_object_is_selected_like_every_other_generated_object_and_lives_in_the_monitoring_namespace(
    objects: dict[str, dict[str, Any]], fleet_systems: dict[str, System], system: str
) -> None:
    metadata = objects[system]["metadata"]
    assert metadata["namespace"] == fleet_systems[system].monitoring.namespace
    assert metadata["labels"]["app.kubernetes.io/managed-by"] == "obsbundle"
    for key, value in fleet_systems[system].monitoring.selector_labels.items():
        assert metadata["labels"][key] == value


@pytest.mark.parametrize("system", FLEET)
def test_slack_urls_are_secret_key_references_and_nothing_secret_is_inline(
    objects: dict[str, dict[str, Any]], default_output: dict[str, bytes], system: str
) -> None:
    text = default_output[f"{system}/{system}-alertmanagerconfig.yaml"].decode()
    assert "hooks.slack.com" not in text and "example.com/ping" not in text
    for receiver in objects[system]["spec"]["receivers"]:
        for slack in receiver.get("slackConfigs", []):
            team = receiver["name"].rsplit("-", 1)[0]
            assert slack["apiURL"] == {"name": f"slack-{team}", "key": "url"}
        for webhook in receiver.get("webhookConfigs", []):
            assert "url" not in webhook
            assert webhook["urlSecret"] == {"name": "deadmans-switch", "key": "url"}


@pytest.mark.parametrize("system", FLEET)
def test_the_object_routes_every_contract_alert_to_the_same_receiver_as_alertmanager_yaml(
    objects: dict[str, dict[str, Any]],
    config_paths: dict[str, Path],
    fleet_systems: dict[str, System],
    tmp_path: Path,
    system: str,
) -> None:
    converted = tmp_path / "operator.yaml"
    converted.write_text(
        to_yaml(plain_config(objects[system], "/etc/alertmanager/secrets", {"deadmans-switch": "http://switch"}))
    )
    check = amtool.check_config([converted])
    assert check.ok, check.output
    alerts = list(contract_alerts(fleet_systems[system]))
    with ThreadPoolExecutor(max_workers=4) as pool:
        plain = list(pool.map(lambda labels: amtool.routes_test(config_paths[system], labels), alerts))
        operator = list(pool.map(lambda labels: amtool.routes_test(converted, labels), alerts))
    differences = [f"{labels}: {a} vs {b}" for labels, a, b in zip(alerts, plain, operator, strict=True) if a != b]
    assert not differences, "\n".join(differences)


def test_an_alert_of_another_system_does_not_enter_the_objects_routes(
    objects: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    converted = tmp_path / "operator.yaml"
    converted.write_text(to_yaml(plain_config(objects["ecoeco"], "/s", {"deadmans-switch": "http://switch"})))
    labels = {"alertname": "ServiceDown", "system": "aegis", "team": "ecoeco-backend", "severity": "critical"}
    assert amtool.routes_test(converted, labels) == ("operator-root",)
