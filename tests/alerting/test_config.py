"""The generated alertmanager.yaml: accepted by amtool, secrets only by file, one receiver per job."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from obsbundle.alerting.generate import CONFIG_FILE as CONFIG
from obsbundle.alerting.generate import alerting_documents
from obsbundle.alerting.policy import AlertingOptions
from obsbundle.alerting.slack import templates_file
from obsbundle.cli import main
from obsbundle.loader import load_inventory
from obsbundle.model import System
from obsbundle.settings import Settings
from tests.alerting.conftest import TEMPLATES
from tests.support import amtool

FLEET = ("aegis", "ecoeco", "logpilot")


@pytest.mark.parametrize("system", FLEET)
def test_amtool_accepts_the_generated_config_and_its_templates(config_paths: dict[str, Path], system: str) -> None:
    result = amtool.check_config([config_paths[system]])
    assert result.ok, result.output
    assert "SUCCESS" in result.output


@pytest.mark.parametrize("system", FLEET)
def test_every_template_the_config_calls_is_defined_in_the_templates_file_beside_it(
    config_paths: dict[str, Path], system: str
) -> None:
    # amtool and Alertmanager accept a config whose templates file is missing; the message would
    # then fail only when Alertmanager tries to send it.
    config = config_paths[system]
    called = set(re.findall(r'\{\{ template "([^"]+)"', config.read_text()))
    defined = set(re.findall(r'\{\{ define "([^"]+)"', (config.parent / Path(TEMPLATES).name).read_text()))
    assert called, "the config calls no template"
    assert called <= defined, f"called but not defined: {sorted(called - defined)}"


def test_amtool_check_rejects_a_broken_templates_file(config_paths: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "alertmanager"
    shutil.copytree(config_paths["ecoeco"].parent, folder)
    templates = folder / Path(TEMPLATES).name
    templates.write_text(templates.read_text().replace("{{ end }}", "", 1))
    result = amtool.check_config([folder / "alertmanager.yaml"])
    assert not result.ok, "a template syntax error went unnoticed, so the check above proves nothing"


@pytest.mark.parametrize("system", FLEET)
def test_every_team_has_a_page_and_a_ticket_receiver_on_its_own_channels(
    configs: dict[str, dict[str, Any]], fleet_systems: dict[str, System], system: str
) -> None:
    model = fleet_systems[system]
    receivers = {receiver["name"]: receiver for receiver in configs[system]["receivers"]}
    owners = [model.owner, *(model.owner_of(service) for service in model.services)]
    for owner in owners:
        page = receivers[f"{owner.team}-page"]["slack_configs"][0]
        ticket = receivers[f"{owner.team}-ticket"]["slack_configs"][0]
        assert page["channel"] == owner.page_channel
        assert ticket["channel"] == owner.slack_channel
        assert page["api_url_file"] == ticket["api_url_file"] == f"/etc/alertmanager/secrets/slack-{owner.team}/url"
        if owner.oncall_mention:
            assert owner.oncall_mention in page["pretext"]
            assert page["link_names"] is True
        assert "pretext" not in ticket, "tickets must not mention anyone"
    teams = {owner.team for owner in owners}
    assert len(receivers) == 2 * len(teams) + 2  # plus the null receiver and the dead man's switch


@pytest.mark.parametrize("system", FLEET)
def test_slack_webhook_urls_are_read_only_from_mounted_secret_files(
    configs: dict[str, dict[str, Any]], config_paths: dict[str, Path], system: str
) -> None:
    text = config_paths[system].read_text()
    assert "hooks.slack.com" not in text
    assert "slack_api_url" not in text
    for receiver in configs[system]["receivers"]:
        for slack in receiver.get("slack_configs", []):
            assert "api_url" not in slack
            assert slack["api_url_file"].startswith("/etc/alertmanager/secrets/slack-")


@pytest.mark.parametrize("system", FLEET)
def test_without_a_dead_mans_switch_watchdog_has_a_receiver_of_its_own_that_sends_nowhere(
    configs: dict[str, dict[str, Any]], system: str
) -> None:
    # The fleet's documents name no dead man's switch: no made-up URL may stand in for one, and
    # Watchdog must still never fall through to a team's Slack channel.
    config = configs[system]
    watchdog_route = config["route"]["routes"][0]
    assert watchdog_route["matchers"] == ['alertname="Watchdog"']
    assert "routes" not in watchdog_route
    receiver = next(r for r in config["receivers"] if r["name"] == watchdog_route["receiver"])
    assert receiver == {"name": "deadmans-switch"}


def test_a_configured_dead_mans_switch_gets_watchdog_with_its_system_and_never_hears_of_resolution(
    fleet_systems: dict[str, System], tmp_path: Path
) -> None:
    system = fleet_systems["ecoeco"]
    monitoring = system.monitoring.model_copy(
        update={"deadmans_switch_url": "https://hc-ping.com/{system}", "alertmanager_secrets_dir": "/run/am"}
    )
    configured = system.model_copy(update={"monitoring": monitoring})
    [document] = [d for d in alerting_documents(configured, Settings(), AlertingOptions()) if d.path == CONFIG]
    config = document.content
    watchdog_route = config["route"]["routes"][0]
    receiver = next(r for r in config["receivers"] if r["name"] == watchdog_route["receiver"])
    assert "slack_configs" not in receiver
    assert receiver["webhook_configs"] == [{"url": "https://hc-ping.com/ecoeco", "send_resolved": False}]
    slack_files = {c["api_url_file"] for r in config["receivers"] for c in r.get("slack_configs", [])}
    assert slack_files == {"/run/am/slack-ecoeco-backend/url", "/run/am/slack-ecoeco-platform/url"}
    path = tmp_path / "alertmanager.yaml"
    path.write_text(yaml.safe_dump(config))
    (tmp_path / Path(TEMPLATES).name).write_text(templates_file())
    result = amtool.check_config([path])
    assert result.ok, result.output


def test_generate_says_when_a_system_has_no_dead_mans_switch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--out", str(tmp_path / "out")]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "dead man's switch" in line]
    assert [note.split(":")[1].strip() for note in notes] == ["aegis", "ecoeco", "logpilot"]
    assert all("monitoring.deadmans_switch_url" in note for note in notes)


@pytest.mark.parametrize("system", FLEET)
def test_every_slack_message_has_resolved_messages_colour_and_runbook_dashboard_and_silence_buttons(
    configs: dict[str, dict[str, Any]], fleet_systems: dict[str, System], system: str
) -> None:
    alertmanager_url = fleet_systems[system].monitoring.alertmanager_url.rstrip("/")
    for receiver in configs[system]["receivers"]:
        for slack in receiver.get("slack_configs", []):
            assert slack["send_resolved"] is True
            assert "color" in slack and "title" in slack and "text" in slack
            buttons = {action["text"]: action for action in slack["actions"]}
            assert sorted(buttons) == ["Dashboard", "Runbook", "Silence"]
            assert "runbook_url" in buttons["Runbook"]["url"]
            assert "dashboard_url" in buttons["Dashboard"]["url"]
            assert buttons["Silence"]["url"].startswith(f"{alertmanager_url}/#/silences/new?filter=")


def test_routes_group_by_alertname_system_and_service(configs: dict[str, dict[str, Any]]) -> None:
    for config in configs.values():
        assert config["route"]["group_by"] == ["alertname", "system", "service"]
        assert config["templates"] == ["slack.tmpl"]


def test_amtool_accepts_the_config_of_a_system_with_three_instrumentations_a_worker_and_four_teams(
    tmp_path: Path,
) -> None:
    # tests/rules/fixtures/shipyard.yaml: APIs on prometheus-client, Micrometer and gRPC, a RabbitMQ
    # worker, Postgres behind PgBouncer, Redis, Kafka and teams of its own per service.
    [shipyard] = load_inventory([Path(__file__).resolve().parents[1] / "rules" / "fixtures" / "shipyard.yaml"]).systems
    documents = {d.path: d for d in alerting_documents(shipyard, Settings(), AlertingOptions())}
    folder = tmp_path / "alertmanager"
    folder.mkdir()
    (folder / "alertmanager.yaml").write_text(yaml.safe_dump(documents[CONFIG].content))
    (folder / Path(TEMPLATES).name).write_text(templates_file())
    result = amtool.check_config([folder / "alertmanager.yaml"])
    assert result.ok, result.output
    teams = {owner.team for owner in (shipyard.owner, *(shipyard.owner_of(s) for s in shipyard.services))}
    assert len(teams) >= 2
    receivers = {receiver["name"] for receiver in documents[CONFIG].content["receivers"]}
    assert {f"{team}-page" for team in teams} | {f"{team}-ticket" for team in teams} <= receivers
