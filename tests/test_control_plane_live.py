"""etcd for real: Debian's etcd serves every series shape of its exposition fixture, and a real
Prometheus that scrapes it with the stack's target labels evaluates the generated etcd alerts'
expressions to the member's own state.

The other control-plane components (kube-apiserver, the scheduler, the controller-manager) and
cert-manager cannot run here; their fixtures come from the projects' own tests (UPSTREAM.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from obsbundle.config import DEFAULT_CONFIG
from obsbundle.loader import load_inventory
from obsbundle.model import System
from obsbundle.rules.control_plane import control_plane_groups
from obsbundle.rules.definitions import Alert
from obsbundle.stacks import Exporter, Node, Stack, exporter_target_labels
from obsbundle.tools.processes import ManagedProcess, free_port, require_binary, wait_until
from obsbundle.tools.prometheus import PrometheusServer, start_prometheus

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "exposition" / "etcd" / "metrics.prom"
NODE = Node(name="master-1", host_ip="127.0.0.1")
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s")


def shapes(text: str) -> set[tuple[str, frozenset[str]]]:
    """(metric name, label names) of every sample line."""
    found = set()
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match and not line.startswith("#"):
            labels = frozenset(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)=\"", match.group(2) or ""))
            found.add((match.group(1), labels))
    return found


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A one-member etcd on loopback; yields its metrics port."""
    binary = require_binary("etcd", "etcd-server")
    workdir = tmp_path_factory.mktemp("etcd")
    client, peer, metrics = free_port(), free_port(), free_port()
    process = ManagedProcess(
        "etcd",
        [
            binary,
            f"--data-dir={workdir / 'data'}",
            "--name=master-1",
            f"--listen-client-urls=http://127.0.0.1:{client}",
            f"--advertise-client-urls=http://127.0.0.1:{client}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=master-1=http://127.0.0.1:{peer}",
            f"--listen-metrics-urls=http://127.0.0.1:{metrics}",
        ],
        workdir,
    ).start()

    def leader() -> bool:
        if not process.alive():
            raise AssertionError(f"etcd exited:\n{process.log_tail()}")
        served = requests.get(f"http://127.0.0.1:{metrics}/metrics", timeout=2).text
        return "etcd_server_has_leader 1" in served

    try:
        wait_until(leader, timeout=60, what="etcd to elect itself leader")
        yield metrics
    finally:
        process.stop()


@pytest.fixture(scope="module")
def ecoeco() -> System:
    return next(system for system in load_inventory([REPO / "inventory"]).systems if system.name == "ecoeco")


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory, etcd: int) -> Iterator[PrometheusServer]:
    """Prometheus scraping the member every second, labelled as kube-prometheus-stack labels etcd."""
    labels = exporter_target_labels(Stack.KUBE_PROMETHEUS_STACK, Exporter.ETCD, NODE)
    target = {name: value for name, value in labels.items() if name not in ("job", "instance")}
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": labels["job"],
                "static_configs": [{"targets": [f"127.0.0.1:{etcd}"], "labels": target}],
            }
        ],
    }
    server = start_prometheus(tmp_path_factory.mktemp("prometheus"), config)
    try:
        wait_until(lambda: bool(server.query("etcd_server_has_leader")), timeout=60, what="etcd's first scrape")
        yield server
    finally:
        server.stop()


def _alert(system: System, name: str, severity: str | None = None) -> Alert:
    return next(
        alert
        for group in control_plane_groups(system, DEFAULT_CONFIG.rules)
        for alert in group.alerts
        if alert.name == name and severity in (None, alert.severity)
    )


def _condition(alert: Alert) -> str:
    """The alert's expression without its final comparison: the value it compares."""
    return re.split(r"\s(?:==|>|<|>=|<=)\s[0-9.]+(?:\s<=\s[0-9.]+)?\s*$", alert.expr)[0]


def test_debian_etcd_serves_every_series_shape_of_the_etcd_fixture(etcd: int) -> None:
    served = shapes(requests.get(f"http://127.0.0.1:{etcd}/metrics", timeout=10).text)
    missing = shapes(FIXTURE.read_text()) - served
    assert not missing, f"the fixture has series etcd does not serve: {sorted(missing)}"


def test_a_live_member_with_a_leader_and_a_nearly_empty_database_fires_none_of_the_etcd_alerts(
    prometheus: PrometheusServer, ecoeco: System
) -> None:
    for name in ("EtcdNoLeader", "EtcdDatabaseQuotaLowSpace", "EtcdHighNumberOfLeaderChanges"):
        assert prometheus.query(_alert(ecoeco, name).expr) == [], name


def test_the_generated_selectors_read_the_live_members_leader_and_quota(
    prometheus: PrometheusServer, ecoeco: System
) -> None:
    (leader,) = prometheus.query(_condition(_alert(ecoeco, "EtcdNoLeader")))
    assert leader["metric"]["job"] == "kube-etcd" and leader["value"][1] == "1"
    (usage,) = prometheus.query(_condition(_alert(ecoeco, "EtcdDatabaseQuotaLowSpace")))
    # A fresh member's database is a few KiB of the default 2 GiB quota.
    assert 0 < float(usage["value"][1]) < 0.01

