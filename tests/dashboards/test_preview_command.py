"""`obsbundle-preview` draws an inventory's dashboards from healthy synthetic traffic, and says what
is wrong with bad input instead of failing on it."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest

from obsbundle.loader import load_inventory
from obsbundle.preview.__main__ import main
from obsbundle.preview.synthetic import FleetSeries, Traffic, Window

pytestmark = pytest.mark.servers

FIXTURES = Path(__file__).resolve().parents[1] / "rules" / "fixtures"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_the_command_draws_the_chosen_dashboard_of_an_inventory_as_a_png(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "previews"
    code = main(["--inventory", str(FIXTURES / "skiff.yaml"), "--out", str(out), "--only", "skiff-service-api"])
    assert code == 0, capsys.readouterr().err
    [png] = list(out.rglob("*.png"))
    assert png == out / "skiff" / "skiff-service-api.png"
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    assert "1 previews in" in capsys.readouterr().out


def test_a_bad_inventory_exits_2_naming_the_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text((FIXTURES / "skiff.yaml").read_text().replace("objective: 99.9", "objective: 0.999"))
    assert main(["--inventory", str(broken), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "objective" in err and "write 99.9 for 0.999" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def _error_shares(text: str) -> dict[str, float]:
    """Per service, the share of its requests that ended in 5xx over the window (last − first sample)."""
    first: dict[tuple[str, str], float] = {}
    last: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        match = re.match(r'^http_requests_total\{(.*)\} (\S+) \d+$', line)
        if not match:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        key = (labels["service"], labels["status"] + "|" + match.group(1))
        first.setdefault(key, float(match.group(2)))
        last[key] = float(match.group(2))
    totals: dict[str, float] = defaultdict(float)
    errors: dict[str, float] = defaultdict(float)
    for (service, series), value in last.items():
        grown = value - first[(service, series)]
        totals[service] += grown
        if series.startswith("5xx|"):
            errors[service] += grown
    return {service: errors[service] / totals[service] for service in totals}


def test_healthy_traffic_keeps_every_service_inside_its_error_budget_and_the_incident_does_not() -> None:
    systems = load_inventory([FIXTURES / "skiff.yaml"]).systems
    [api] = [service for service in systems[0].services if service.name == "api"]
    budget = float(api.slos[0].error_budget)
    healthy = _error_shares(FleetSeries(systems, Window(), Traffic.HEALTHY).text())
    incident = _error_shares(FleetSeries(systems, Window(), Traffic.INCIDENT).text())
    assert 0 < healthy["api"] < 0.2 * budget, healthy
    assert incident["api"] > budget, "the tests' incident must burn the budget, or their alerts prove nothing"
