"""End to end on a real exporter: a real Prometheus scrapes the real node_exporter with each stack's
target labels, and a kube-state-metrics stand-in serving its own fixture's series for this
machine's node; the generated node-pool rules record every node and pool series, every series the
clock, pressure and filesystem alerts read is there and reaches the node and its pool, and every
query of the generated node-pool dashboards returns data.

kube-state-metrics cannot run here (it needs a Kubernetes API), so the stand-in serves the series
of tests/fixtures/exposition/kube-state-metrics/ for the fixture's node1 and the pods on it, renamed
to this machine's node and the stack's node-exporter pod: the label sets are kube-state-metrics'.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from obsbundle import naming
from obsbundle.bundle import dashboards_of
from obsbundle.config import DEFAULT_CONFIG, Config
from obsbundle.dashboards.variables import opening_values
from obsbundle.dashboards.walk import expressions
from obsbundle.links import Board, dashboard_uid
from obsbundle.loader import load_inventory
from obsbundle.model import System
from obsbundle.promql import quote, selector
from obsbundle.render import render
from obsbundle.rules import generate_rules
from obsbundle.stacks import PROFILES, Exporter, InstanceFrom, Node, Stack, exporter_target_labels
from obsbundle.tools.processes import ManagedProcess, free_port, require_binary, wait_until
from obsbundle.tools.prometheus import PrometheusServer, start_prometheus
from tests.support.exposition import Selector, selectors

pytestmark = pytest.mark.servers

KSM_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "exposition" / "kube-state-metrics"
FIXTURE_NODE = "node1"
FIXTURE_EXPORTER_POD = ("monitoring", "kube-prometheus-stack-prometheus-node-exporter-x7k2p")
"""The node-exporter DaemonSet pod on node1 in pods.prom."""
POOL = "general"
HOST = Node(socket.gethostname(), "127.0.0.1")
INTERVAL = "1s"
INVENTORY = f"""\
apiVersion: obsbundle/v1
kind: System
name: live
cluster: live
owner: {{team: platform, slack_channel: "#live"}}
node_pool_label: node-role
monitoring: {{stack: STACK, grafana_url: "https://grafana.live.test", alertmanager_url: "https://am.live.test",
             runbook_url: "https://runbooks.live.test/{{alert}}"}}
node_pools:
  - {{name: {POOL}, min_nodes: 1, max_nodes: 1}}
"""


@pytest.fixture(scope="module")
def node_exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The real /usr/bin/prometheus-node-exporter on a free loopback port; yields the port."""
    binary = require_binary("prometheus-node-exporter", "prometheus-node-exporter")
    port = free_port()
    workdir = tmp_path_factory.mktemp("node-exporter")
    process = ManagedProcess("node-exporter", [binary, f"--web.listen-address=127.0.0.1:{port}"], workdir).start()
    try:
        def answering() -> bool:
            if not process.alive():
                raise AssertionError(f"node_exporter exited:\n{process.log_tail()}")
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", port)) == 0

        wait_until(answering, timeout=30, what="node_exporter to listen")
        yield port
    finally:
        process.stop()


def _render(name: str, labels: dict[str, str], value: float) -> str:
    rendered = ",".join(f'{key}="{text}"' for key, text in sorted(labels.items()))
    return f"{name}{{{rendered}}} {value!r}"


def stand_in_exposition(stack: Stack) -> str:
    """kube-state-metrics' fixture series of node1 and its pods, as this machine's node: the node
    in pool POOL, and the fixture's node-exporter pod renamed to the stack's."""
    exporter = exporter_target_labels(stack, Exporter.NODE_EXPORTER, HOST)
    daemonset = str(PROFILES[stack][Exporter.NODE_EXPORTER].pod_prefix)
    files = ("node-role-allowlist.prom", "pods.prom", "node-conditions.prom")
    text = "".join((KSM_FIXTURES / name).read_text() for name in files)
    samples = [sample for family in text_string_to_metric_families(text) for sample in family.samples]
    pods_on_node = {(s.labels["namespace"], s.labels["pod"]) for s in samples
                    if s.name == "kube_pod_info" and s.labels.get("node") == FIXTURE_NODE}
    lines = []
    for sample in samples:
        labels = dict(sample.labels)
        on_node = labels.get("node") == FIXTURE_NODE
        pod = (labels.get("namespace"), labels.get("pod"))
        if not (on_node or pod in pods_on_node):
            continue
        if "node" in labels:
            labels["node"] = HOST.name
        if "label_node_role" in labels:
            labels["label_node_role"] = POOL
        for address in ("host_ip", "pod_ip", "internal_ip"):
            if labels.get(address) == "1.1.1.1":
                labels[address] = HOST.host_ip
        if pod == FIXTURE_EXPORTER_POD:
            labels["namespace"], labels["pod"] = exporter["namespace"], exporter["pod"]
            if "created_by_name" in labels:
                labels["created_by_name"] = daemonset
            if "owner_name" in labels:
                labels["owner_name"] = daemonset
        lines.append(_render(sample.name, labels, sample.value))
    return "\n".join(lines) + "\n"


@pytest.fixture
def kube_state_metrics(request: pytest.FixtureRequest) -> Iterator[tuple[int, Stack]]:
    """A local HTTP server serving `stand_in_exposition(stack)` at /metrics; yields (port, stack)."""
    stack: Stack = request.param
    body = stand_in_exposition(stack).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Every scrape would print a line to stderr; the assertions say what matters."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], stack
    finally:
        server.shutdown()
        server.server_close()


def live_system(stack: Stack, folder: Path) -> System:
    path = folder / "live.yaml"
    path.write_text(INVENTORY.replace("STACK", stack.value))
    return load_inventory([path]).systems[0]


def node_pool_rule_files(system: System, folder: Path, config: Config = DEFAULT_CONFIG) -> list[str]:
    """The system's node-pool rule files, every group evaluated each INTERVAL (not every minute)."""
    files = []
    for document in generate_rules(system, config):
        name = Path(document.path).name
        if document.path.startswith("prometheus/rules/") and name.endswith(".rules.yaml") and "-node-pool" in name:
            rules = yaml.safe_load(render(document))
            for group in rules["groups"]:
                group["interval"] = INTERVAL
            (folder / name).write_text(yaml.safe_dump(rules, sort_keys=False, width=10_000))
            files.append(str(folder / name))
    return files


def node_exporter_labels(stack: Stack, port: int) -> dict[str, str]:
    """The stack's target labels for node-exporter on this machine; an `instance` made of the host
    IP is this exporter's real address."""
    labels = exporter_target_labels(stack, Exporter.NODE_EXPORTER, HOST)
    if PROFILES[stack][Exporter.NODE_EXPORTER].instance_from is InstanceFrom.HOST_IP:
        labels["instance"] = f"127.0.0.1:{port}"
    return labels


NODE_HEALTH_ALERTS = (
    "NodeClockSkew", "NodeClockNotSynchronised", "NodePressure",
    "NodeDiskFillingUp", "NodeInodesFillingUp", "NodeInodesAlmostExhausted",
)  # fmt: skip

MET_BY_EVERY_NODE = replace(
    DEFAULT_CONFIG,
    rules=replace(
        DEFAULT_CONFIG.rules,
        node_pressure_conditions=("Ready",),
        node_inodes_critical_free=Decimal(1),
    ),
)
"""Thresholds a healthy node meets: its Ready condition counts as a pressure condition, and any inode
in use is too many. The alerts then evaluate to this machine's node whatever its state."""


@pytest.fixture
def prometheus(
    tmp_path: Path, node_exporter: int, kube_state_metrics: tuple[int, Stack]
) -> Iterator[tuple[PrometheusServer, System]]:
    yield from _prometheus(tmp_path, node_exporter, kube_state_metrics, DEFAULT_CONFIG)


@pytest.fixture
def prometheus_met_by_every_node(
    tmp_path: Path, node_exporter: int, kube_state_metrics: tuple[int, Stack]
) -> Iterator[tuple[PrometheusServer, System]]:
    yield from _prometheus(tmp_path, node_exporter, kube_state_metrics, MET_BY_EVERY_NODE)


def _prometheus(
    tmp_path: Path, node_exporter: int, kube_state_metrics: tuple[int, Stack], rules: Config
) -> Iterator[tuple[PrometheusServer, System]]:
    ksm_port, stack = kube_state_metrics
    system = live_system(stack, tmp_path)
    ksm_labels = exporter_target_labels(stack, Exporter.KUBE_STATE_METRICS, HOST)
    ksm_labels["instance"] = f"127.0.0.1:{ksm_port}"
    config = {
        "global": {"scrape_interval": INTERVAL, "evaluation_interval": INTERVAL},
        "rule_files": node_pool_rule_files(system, tmp_path, rules),
        "scrape_configs": [
            {
                "job_name": "node-exporter",
                "static_configs": [{"targets": [f"127.0.0.1:{node_exporter}"],
                                    "labels": node_exporter_labels(stack, node_exporter)}],
            },
            {
                "job_name": "kube-state-metrics",
                "honor_labels": True,
                "static_configs": [{"targets": [f"127.0.0.1:{ksm_port}"], "labels": ksm_labels}],
            },
        ],
    }
    server = start_prometheus(tmp_path / "prometheus", config)
    try:
        yield server, system
    finally:
        server.stop()


def _finite(result: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(series["value"][1])) for series in result)


def _eventually(server: PrometheusServer, queries: dict[str, str], timeout: float = 60) -> dict[str, str]:
    """Each query that still returns no finite sample after `timeout` seconds, with its expression."""
    pending = dict(queries)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        pending = {where: expr for where, expr in pending.items() if not _finite(server.query(expr))}
        if pending:
            time.sleep(1)
    return pending


STACKS = pytest.mark.parametrize("kube_state_metrics", list(Stack), indirect=True, ids=[s.value for s in Stack])


@STACKS
def test_the_node_and_pool_series_of_a_real_node_exporter_are_recorded(
    prometheus: tuple[PrometheusServer, System],
) -> None:
    server, system = prometheus
    node = {naming.SYSTEM_LABEL: system.name, "node": HOST.name, naming.NODE_POOL_LABEL: POOL}
    pool = {naming.SYSTEM_LABEL: system.name, naming.NODE_POOL_LABEL: POOL}
    node_series = (naming.NODE_CPU_UTILISATION, naming.NODE_MEMORY_UTILISATION, naming.NODE_FILESYSTEM_USAGE)
    pool_series = (
        naming.POOL_CPU_UTILISATION, naming.POOL_MEMORY_UTILISATION, naming.POOL_FILESYSTEM_USAGE,
        naming.POOL_NETWORK_RECEIVE, naming.POOL_NETWORK_TRANSMIT, naming.POOL_NODES_READY, naming.POOL_NODES,
    )  # fmt: skip
    queries = {metric: selector(metric, node) for metric in node_series}
    queries |= {metric: selector(metric, pool) for metric in pool_series}
    missing = _eventually(server, queries)
    assert not missing, f"no data for: {missing}"
    for metric in node_series:
        [sample] = server.query(selector(metric, {naming.SYSTEM_LABEL: system.name}))
        assert sample["metric"] == {"__name__": metric, **node}, "node series carry system, node and node_pool only"
        assert 0 <= float(sample["value"][1]) <= 1, metric
    assert float(server.query(selector(naming.POOL_NODES_READY, pool))[0]["value"][1]) == 1
    assert float(server.query(selector(naming.POOL_NODES, pool))[0]["value"][1]) == 1
    assert not server.query('ALERTS{alertstate="firing", severity="critical"}')


@STACKS
def test_every_query_of_the_node_pool_dashboards_returns_data_from_a_real_node_exporter(
    prometheus: tuple[PrometheusServer, System],
) -> None:
    server, system = prometheus
    boards = [board for board in dashboards_of(system, DEFAULT_CONFIG)
              if board["uid"] in {dashboard_uid(system, Board.NODE_POOLS),
                                  dashboard_uid(system, Board.NODE_POOL, POOL)}]
    assert len(boards) == 2
    queries = {
        where: expr
        for board in boards
        for where, expr in expressions(board, opening_values(board, scrape_interval=1, range_seconds=300))
        if "/ variable " not in where
    }
    assert len(queries) > 10
    missing = _eventually(server, queries)
    assert not missing, "\n".join(f"{where}\n  {expr}" for where, expr in missing.items())


def _as_query(found: Selector) -> str:
    """A selector as PromQL again, each matcher's value quoted as Prometheus reads it."""
    matchers = ",".join(f"{matcher.name}{matcher.op}{quote(matcher.value)}" for matcher in found.matchers)
    return f"{found.name or ''}{{{matchers}}}"


def _loaded_alerts(server: PrometheusServer, names: tuple[str, ...]) -> list[dict[str, Any]]:
    """The alerting rules Prometheus loaded with one of `names`, as /api/v1/rules reports them."""
    groups = server.api("rules", type="alert")["groups"]
    return [rule for group in groups for rule in group["rules"] if rule["name"] in names]


@STACKS
def test_every_series_the_clock_pressure_and_filesystem_alerts_read_reaches_the_node_and_its_pool(
    prometheus: tuple[PrometheusServer, System],
) -> None:
    """node_exporter serves node_timex_* and node_filesystem_files*/readonly for this machine, the
    stand-in kube-state-metrics the kubelet's pressure conditions; through kube_pod_info each reaches
    the node and pool, under both stacks' target labels, and every new alert evaluates cleanly."""
    server, system = prometheus
    pods = selector(naming.NODE_EXPORTER_PODS, {naming.SYSTEM_LABEL: system.name})
    node = {"node": HOST.name, naming.NODE_POOL_LABEL: POOL}
    per_node = {
        metric: f"max by (node, node_pool) ({selector(metric, DEFAULT_CONFIG.rules.node_exporter)}"
        f" * on (namespace, pod) group_left (node, node_pool) {pods})"
        for metric in (
            "node_timex_offset_seconds", "node_timex_sync_status", "node_timex_maxerror_seconds",
            "node_filesystem_files", "node_filesystem_files_free", "node_filesystem_readonly",
            "node_filesystem_avail_bytes",
        )
    }  # fmt: skip
    assert not _eventually(server, per_node)
    for metric, expr in per_node.items():
        assert [sample["metric"] for sample in server.query(expr)] == [node], metric

    alerts = _loaded_alerts(server, NODE_HEALTH_ALERTS)
    assert sorted({rule["name"] for rule in alerts}) == sorted(NODE_HEALTH_ALERTS)
    read = {_as_query(found) for rule in alerts for found in selectors(rule["query"])}
    assert not _eventually(server, {expr: f"count({expr})" for expr in read}), "a selector the alerts read is empty"
    deadline = time.monotonic() + 30
    while any(rule.get("lastEvaluation", "").startswith("0001") for rule in alerts) and time.monotonic() < deadline:
        time.sleep(1)
        alerts = _loaded_alerts(server, NODE_HEALTH_ALERTS)
    unhealthy = [(rule["name"], rule.get("lastError")) for rule in alerts if rule["health"] != "ok"]
    assert not unhealthy


@STACKS
def test_the_clock_alert_sees_exactly_what_this_machines_node_exporter_says_of_its_clock(
    prometheus: tuple[PrometheusServer, System],
) -> None:
    """NodeClockNotSynchronised's expression, joined to node and pool, holds for this machine's node
    exactly when its raw node_exporter series say the clock is unsynchronised at the kernel's 16 s
    maximum error (a container on an unsynchronised host: both; a synchronised host: neither)."""
    server, _ = prometheus
    [rule] = _loaded_alerts(server, ("NodeClockNotSynchronised",))
    exporter = DEFAULT_CONFIG.rules.node_exporter
    raw = {
        "sync": f"max({selector('node_timex_sync_status', exporter)})",
        "maxerror": f"max({selector('node_timex_maxerror_seconds', exporter)})",
    }
    assert not _eventually(server, raw)
    time.sleep(6)  # min_over_time over 5 minutes needs the series' samples since the start
    synchronised = float(server.query(f"min_over_time({raw['sync']}[5m:1s])")[0]["value"][1])
    max_error = float(server.query(raw["maxerror"])[0]["value"][1])
    expected = [{"node": HOST.name, naming.NODE_POOL_LABEL: POOL}] if synchronised == 0 and max_error >= 16 else []
    assert [sample["metric"] for sample in server.query(rule["query"])] == expected


@STACKS
def test_with_thresholds_every_node_meets_the_pressure_and_inode_alerts_name_this_machines_node_and_pool(
    prometheus_met_by_every_node: tuple[PrometheusServer, System],
) -> None:
    """With `Ready` counted as a pressure condition and any inode in use as too many, NodePressure
    and NodeInodesAlmostExhausted (page tier) go pending for this machine's node in its pool, labelled
    as the alert contract says: the whole path from real series to alert labels holds."""
    server, system = prometheus_met_by_every_node
    pending = {
        name: f'ALERTS{{alertname="{name}",system="{system.name}",node="{HOST.name}",node_pool="{POOL}"}}'
        for name in ("NodePressure", "NodeInodesAlmostExhausted")
    }
    missing = _eventually(server, pending)
    assert not missing, f"not pending: {sorted(missing)}"
    [pressure] = server.query(pending["NodePressure"])
    assert pressure["metric"]["condition"] == "Ready"
    assert pressure["metric"]["severity"] == "warning"
    inodes = server.query(pending["NodeInodesAlmostExhausted"])
    assert {sample["metric"]["severity"] for sample in inodes} == {"critical"}
    assert all(sample["metric"]["mountpoint"].startswith("/") for sample in inodes)
