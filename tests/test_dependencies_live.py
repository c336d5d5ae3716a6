"""The dependency probes end to end, with real components: Debian's prometheus-blackbox-exporter
loaded with the generated modules (blackbox/blackbox.yml) probes a local HTTP server that answers
what the test says, and a real Prometheus scrapes it through the scrape configuration Prometheus
Operator derives from the generated Probe (`probe_scrape_config`, as `--format prometheus` writes
it). The generated alerts' expressions are asked of that Prometheus as they stand in the generated
rule files.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from obsbundle.config import DEFAULT_CONFIG
from obsbundle.loader import load_inventory
from obsbundle.model import System
from obsbundle.monitors.probes import BLACKBOX_CONFIG, generate_probes, probe_scrape_config
from obsbundle.rules import rule_groups
from obsbundle.tools.processes import ManagedProcess, free_port, require_binary, wait_until
from obsbundle.tools.prometheus import PrometheusServer, start_prometheus
from tests.support.probe_targets import StatusServer, status_server

pytestmark = pytest.mark.servers

DEPENDENCY = "vendor-api"
WAIT_SECONDS = 30.0

INVENTORY = """\
apiVersion: obsbundle/v1
kind: System
name: probed
cluster: probed-test
owner: {{team: platform, slack_channel: "#probed-alerts"}}
monitoring: {{blackbox_exporter: "127.0.0.1:{blackbox_port}", grafana_url: "https://grafana.probed.test",
             alertmanager_url: "https://am.probed.test", runbook_url: "https://runbooks.probed.test/{{alert}}"}}
services:
  - {{name: checkout, namespace: shop, metrics: {{port: http}}}}
dependencies:
  - {{name: {dependency}, url: "{url}", module: http_reachable, interval: 1s, latency_alert: 250ms,
     used_by: [checkout]}}
"""


@dataclass
class Stack:
    system: System
    blackbox: ManagedProcess
    prometheus: PrometheusServer
    target: StatusServer

    def alert_expr(self, name: str) -> str:
        """The expression of the generated alert `name` (the system has one rule of each name)."""
        [expr] = [
            alert.expr
            for group in rule_groups(self.system, DEFAULT_CONFIG.rules)
            for alert in group.alerts
            if alert.name == name
        ]
        return expr

    def returns(self, expr: str) -> list[dict[str, str]]:
        return [sample["metric"] for sample in self.prometheus.query(expr)]

    def wait_for(self, expr: str, *, some: bool, what: str) -> list[dict[str, str]]:
        """Wait until `expr` returns series (`some`) or none, and return what it last returned."""
        found: list[dict[str, str]] = []

        def done() -> bool:
            nonlocal found
            found = self.returns(expr)
            return bool(found) == some

        wait_until(done, timeout=WAIT_SECONDS, what=what, interval=0.5)
        return found

    def status_code(self) -> float | None:
        samples = self.prometheus.query(f'probe_http_status_code{{dependency="{DEPENDENCY}"}}')
        return float(samples[0]["value"][1]) if samples else None

    def wait_for_status(self, code: int) -> None:
        wait_until(lambda: self.status_code() == code, timeout=WAIT_SECONDS, what=f"a probe answered {code}",
                   interval=0.5)


def _generated(system: System) -> dict[str, Any]:
    return {document.path: document.content for document in generate_probes(system, DEFAULT_CONFIG)}


def _scrape_configs(generated: dict[str, Any]) -> dict[str, Any]:
    probes = [content for path, content in generated.items() if path.endswith("-probe.yaml")]
    return {"scrape_configs": [probe_scrape_config(obj) for obj in probes]}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    binary = require_binary("prometheus-blackbox-exporter", "prometheus-blackbox-exporter")
    blackbox_port = free_port()
    with status_server(200) as target:
        inventory = tmp_path / "probed.yaml"
        inventory.write_text(
            INVENTORY.format(blackbox_port=blackbox_port, dependency=DEPENDENCY, url=target.url), encoding="utf-8"
        )
        [system] = load_inventory([inventory]).systems
        generated = _generated(system)
        config = tmp_path / "blackbox.yml"
        config.write_text(yaml.safe_dump(generated[BLACKBOX_CONFIG]), encoding="utf-8")
        blackbox = ManagedProcess(
            "blackbox-exporter",
            [binary, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{blackbox_port}"],
            tmp_path,
        ).start()
        try:
            wait_until(
                lambda: requests.get(f"http://127.0.0.1:{blackbox_port}/metrics", timeout=2).ok,
                timeout=WAIT_SECONDS,
                what="blackbox_exporter to answer",
            )
            prometheus = start_prometheus(
                tmp_path / "prometheus",
                {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                 **_scrape_configs(generated)},
            )
            try:
                yield Stack(system, blackbox, prometheus, target)
            finally:
                prometheus.stop()
        finally:
            blackbox.stop()


def test_the_probe_series_carry_the_dependency_system_url_and_the_probes_job(stack: Stack) -> None:
    [labels] = stack.wait_for(f'probe_success{{dependency="{DEPENDENCY}"}}', some=True, what="a probe result")
    assert labels == {
        "__name__": "probe_success",
        "dependency": DEPENDENCY,
        "system": "probed",
        "instance": stack.target.url,
        "job": f"probe/monitoring/{DEPENDENCY}",
        "namespace": "monitoring",
    }


def test_dependency_down_returns_the_dependency_while_it_answers_500_and_nothing_while_it_serves(
    stack: Stack,
) -> None:
    down = stack.alert_expr("DependencyDown")
    stack.wait_for_status(200)
    assert stack.returns(down) == []
    stack.target.status = 500
    stack.wait_for_status(500)
    [failing] = stack.wait_for(down, some=True, what="DependencyDown's expression to return the dependency")
    assert (failing["dependency"], failing["instance"]) == (DEPENDENCY, stack.target.url)
    stack.target.status = 200
    stack.wait_for(down, some=False, what="DependencyDown's expression to return nothing again")


def test_http_reachable_counts_a_401_as_up(stack: Stack) -> None:
    stack.target.status = 401
    stack.wait_for_status(401)
    assert stack.returns(stack.alert_expr("DependencyDown")) == []
    assert [float(s["value"][1]) for s in stack.prometheus.query(f'probe_success{{dependency="{DEPENDENCY}"}}')] == [1]


def test_dependency_down_returns_the_dependency_once_its_server_stops_answering(stack: Stack) -> None:
    down = stack.alert_expr("DependencyDown")
    stack.wait_for_status(200)
    stack.target.stop()
    [failing] = stack.wait_for(down, some=True, what="DependencyDown's expression after the server stopped")
    assert failing["dependency"] == DEPENDENCY


def test_without_blackbox_exporter_the_absence_alerts_see_it_and_dependency_down_cannot(stack: Stack) -> None:
    absent = stack.alert_expr("BlackboxExporterDown")
    missing = stack.alert_expr("DependencyProbeMissing")
    stack.wait_for_status(200)
    assert stack.returns(absent) == [] and stack.returns(missing) == []
    stack.target.status = 500  # the dependency fails too, but nothing probes it any more
    stack.blackbox.stop()
    assert stack.wait_for(absent, some=True, what="BlackboxExporterDown's expression") == [{}]
    assert stack.wait_for(missing, some=True, what="DependencyProbeMissing's expression") == [
        {"dependency": DEPENDENCY, "system": "probed"}
    ]
    assert stack.returns(stack.alert_expr("DependencyDown")) == []
