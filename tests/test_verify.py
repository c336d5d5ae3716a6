"""`generate.py --verify URL` against a real Prometheus 2.42.

Prometheus scrapes a real prometheus-node-exporter with the target labels kube-prometheus-stack
gives it (obsbundle.stacks.exporter_target_labels), and stand-ins for kube-state-metrics and the
kubelet: local HTTP servers serving the committed fixtures (tests/fixtures/exposition/
kube-state-metrics/, copied from that project's tests, with their node2 renamed to this machine;
tests/fixtures/exposition/kubelet/, from the kubelet's source and tests), scraped with
honor_labels as both stacks scrape them. One Prometheus sees the chart's default allowlist (no pool
label); another, behind basic auth, sees kube-state-metrics started with the pool label allowed.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import requests

from obsbundle.stacks import Exporter, Node, Stack, exporter_pod, exporter_target_labels
from obsbundle.tools.processes import ManagedProcess, free_port, require_binary, wait_until
from obsbundle.tools.prometheus import PrometheusServer, start_prometheus
from tests.conftest import FIXTURES, REPO

INVENTORY = FIXTURES / "verify" / "verify.yaml"
KSM = FIXTURES / "exposition" / "kube-state-metrics"
KUBELET = FIXTURES / "exposition" / "kubelet"
ALLOWLIST_FIXTURES = ("default-allowlist.prom", "node-role-allowlist.prom")
STACK = Stack.KUBE_PROMETHEUS_STACK
FIXTURE_NODE, FIXTURE_HOST_IP = "node2", "1.1.1.2"
"""The fixtures' node whose pool (node-role "auth") the test inventory names."""
USER, PASSWORD = "verifier", "correct-horse-battery-staple"


def kube_state_metrics_exposition(allowlist: str, node: Node) -> bytes:
    """The kube-state-metrics fixtures with one allowlist file, as one exposition, node2 renamed.

    Families that several files hold (kube_node_info) are served once: a real kube-state-metrics
    prints each family once. The node-exporter pod the fixtures place on node2 gets the name the
    stack's target labels give it on `node`.
    """
    files = [path for path in sorted(KSM.glob("*.prom")) if path.name not in ALLOWLIST_FIXTURES]
    files.append(KSM / allowlist)
    fixture_pod = exporter_pod(STACK, Exporter.NODE_EXPORTER, Node(FIXTURE_NODE, FIXTURE_HOST_IP))
    pod = exporter_pod(STACK, Exporter.NODE_EXPORTER, node)
    renames = {f'"{FIXTURE_NODE}"': f'"{node.name}"', f'"{fixture_pod}"': f'"{pod}"'}
    seen: set[str] = set()
    lines: list[str] = []
    for path in files:
        for original in path.read_text().splitlines():
            if not original or original.startswith(("# source:", "# version:", "# captured:")):
                continue
            line = original
            for old, new in renames.items():
                line = line.replace(old, new)
            if line not in seen:
                seen.add(line)
                lines.append(line)
    return ("\n".join(lines) + "\n").encode()


class _Exposition(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every second would flood the test log."""


@dataclass
class FixtureServer:
    server: ThreadingHTTPServer

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve(body: bytes) -> FixtureServer:
    handler = type("Handler", (_Exposition,), {"body": body})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return FixtureServer(server)


def scrape_config(name: str, address: str, labels: Mapping[str, str], *, honor_labels: bool = False) -> dict[str, Any]:
    """A static target that carries `labels`, as the stack's ServiceMonitor would give them."""
    return {
        "job_name": name,
        "scrape_interval": "1s",
        "honor_labels": honor_labels,
        "static_configs": [{"targets": [address], "labels": dict(labels)}],
    }


@dataclass
class Cluster:
    """A Prometheus that scrapes the node-exporter and the kube-state-metrics stand-in."""

    prometheus: PrometheusServer
    auth: tuple[str, str] | None


@pytest.fixture(scope="module")
def node() -> Node:
    return Node(socket.gethostname(), FIXTURE_HOST_IP)


@pytest.fixture(scope="module")
def node_exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = require_binary("prometheus-node-exporter", "prometheus-node-exporter")
    port = free_port()
    process = ManagedProcess(
        "node-exporter",
        [binary, f"--web.listen-address=127.0.0.1:{port}"],
        tmp_path_factory.mktemp("node-exporter"),
    ).start()
    try:
        wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).ok, 30, "node-exporter")
        yield f"127.0.0.1:{port}"
    finally:
        process.stop()


def kubelet_exposition() -> bytes:
    """The kubelet fixtures' /metrics families of a kubelet that has evicted no pod yet.

    `kubelet_evictions` is a counter by eviction signal that the kubelet creates on its first
    eviction (tests/fixtures/exposition/kubelet/pods-evictions.prom says where): a healthy kubelet
    serves none of it.
    """
    lines = [
        line
        for path in sorted(KUBELET.glob("*.prom"))
        for line in path.read_text().splitlines()
        if line and not line.startswith(("# source:", "# version:", "# captured:")) and "kubelet_evictions" not in line
    ]
    return ("\n".join(lines) + "\n").encode()


def _cluster(
    workdir: Path, node: Node, node_exporter: str, allowlist: str, auth: tuple[str, str] | None
) -> Iterator[Cluster]:
    ksm = serve(kube_state_metrics_exposition(allowlist, node))
    kubelet = serve(kubelet_exposition())
    ksm_labels = exporter_target_labels(STACK, Exporter.KUBE_STATE_METRICS, node)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            scrape_config("node-exporter", node_exporter, exporter_target_labels(STACK, Exporter.NODE_EXPORTER, node)),
            # honor_labels: the series' own namespace, pod and node win, as on both stacks.
            scrape_config("kube-state-metrics", ksm.address, ksm_labels, honor_labels=True),
            scrape_config(
                "kubelet", kubelet.address, exporter_target_labels(STACK, Exporter.KUBELET, node), honor_labels=True
            ),
        ],
    }
    extra: tuple[str, ...] = ()
    if auth is not None:
        hashed = bcrypt.hashpw(auth[1].encode(), bcrypt.gensalt(4)).decode()
        web = workdir / "web.yml"
        workdir.mkdir(parents=True, exist_ok=True)
        web.write_text(json.dumps({"basic_auth_users": {auth[0]: hashed}}))
        extra = (f"--web.config.file={web}",)
    prometheus = _start(workdir, config, extra, auth)
    try:

        def scraped() -> bool:
            found = requests.get(
                f"{prometheus.url}/api/v1/query",
                params={"query": 'count(up{job=~"node-exporter|kube-state-metrics|kubelet"} == 1)'},
                auth=auth,
                timeout=5,
            ).json()["data"]["result"]
            return bool(found) and found[0]["value"][1] == "3"

        wait_until(scraped, 60, "Prometheus to scrape node-exporter, kube-state-metrics and the kubelet")
        yield Cluster(prometheus, auth)
    finally:
        prometheus.stop()
        ksm.stop()
        kubelet.stop()


def _start(
    workdir: Path, config: dict[str, Any], extra: tuple[str, ...], auth: tuple[str, str] | None
) -> PrometheusServer:
    if auth is None:
        return start_prometheus(workdir, config, extra_args=extra)
    # start_prometheus's readiness probe has no credentials; /-/ready answers 401 until it has them.
    binary = require_binary("prometheus", "prometheus")
    (workdir / "prometheus.yml").write_text(json.dumps(config))
    port = free_port()
    process = ManagedProcess(
        "prometheus",
        [
            binary,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            *extra,
        ],
        workdir,
    ).start()
    server = PrometheusServer(process, port, workdir)
    wait_until(lambda: requests.get(f"{server.url}/-/ready", auth=auth, timeout=2).ok, 60, "prometheus to start")
    return server


@pytest.fixture(scope="module")
def default_chart(tmp_path_factory: pytest.TempPathFactory, node: Node, node_exporter: str) -> Iterator[Cluster]:
    """kube-state-metrics as its Helm chart starts it: `metricLabelsAllowlist: []`."""
    yield from _cluster(tmp_path_factory.mktemp("default-chart"), node, node_exporter, "default-allowlist.prom", None)


@pytest.fixture(scope="module")
def complete(tmp_path_factory: pytest.TempPathFactory, node: Node, node_exporter: str) -> Iterator[Cluster]:
    """kube-state-metrics with --metric-labels-allowlist=nodes=[node-role], behind basic auth."""
    yield from _cluster(
        tmp_path_factory.mktemp("complete"), node, node_exporter, "node-role-allowlist.prom", (USER, PASSWORD)
    )


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str


def generate(*args: str, cwd: Path = REPO) -> Run:
    """`python generate.py ARGS` in a fresh interpreter, as a user runs it."""
    completed = subprocess.run(
        [sys.executable, str(REPO / "generate.py"), *args],
        check=False,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + str(REPO)},
    )
    return Run(completed.returncode, completed.stdout, completed.stderr)


def _password_file(tmp_path: Path, password: str) -> Path:
    path = tmp_path / "password"
    path.write_text(password + "\n")
    return path


def _auth_args(tmp_path: Path, password: str = PASSWORD) -> list[str]:
    return ["--basic-auth-user", USER, "--basic-auth-password-file", str(_password_file(tmp_path, password))]


def test_the_charts_default_allowlist_exits_1_and_names_the_kube_state_metrics_flag(default_chart: Cluster) -> None:
    run = generate("--inventory", str(INVENTORY), "--verify", default_chart.prometheus.url)
    assert run.code == 1, run.stderr
    assert "kube-state-metrics\n" in run.stdout
    assert "no kube_node_labels series" in run.stdout
    assert "kube-state-metrics needs the pool label: --metric-labels-allowlist=nodes=[node-role]" in run.stdout
    assert "recording rule node_pool:node:info" in run.stdout


def test_a_complete_set_up_exits_0(complete: Cluster, tmp_path: Path) -> None:
    run = generate("--inventory", str(INVENTORY), "--verify", complete.prometheus.url, *_auth_args(tmp_path))
    assert run.code == 0, run.stdout + run.stderr
    assert "verify: all" in run.stdout and "selectors match series" in run.stdout
    # A kubelet that has evicted nothing has no kubelet_evictions: that is health, not a gap.
    assert "1 reads a counter that has no series before its first event" in run.stdout
    assert 'kubelet_evictions{job="kubelet"' in run.stdout and "alert KubeNodeEviction" in run.stdout


def test_a_counter_awaiting_its_first_event_is_listed_apart_in_json(complete: Cluster, tmp_path: Path) -> None:
    run = generate("--inventory", str(INVENTORY), "--verify", complete.prometheus.url, "--json", *_auth_args(tmp_path))
    assert run.code == 0, run.stdout + run.stderr
    (system,) = json.loads(run.stdout)["systems"]
    assert system["findings"] == []
    (awaiting,) = system["awaiting_event"]
    assert awaiting["selector"].startswith("kubelet_evictions{")
    assert "evicted a pod" in awaiting["event"]
    assert awaiting["read_by"] == ["alert KubeNodeEviction"]


def test_json_output_parses_and_lists_each_finding_with_its_fix_and_readers(default_chart: Cluster) -> None:
    run = generate("--inventory", str(INVENTORY), "--verify", default_chart.prometheus.url, "--json")
    assert run.code == 1, run.stderr
    report = json.loads(run.stdout)
    (system,) = report["systems"]
    assert system["name"] == "verify"
    assert system["selectors"] > 0
    (finding,) = [f for f in system["findings"] if "recording rule node_pool:node:info" in f["read_by"]]
    assert finding["metric"] == "kube_node_labels"
    assert finding["provider"] == "kube-state-metrics"
    assert finding["problem"] == "metric-absent"
    assert "--metric-labels-allowlist=nodes=[node-role]" in finding["fix"]
    assert report["missing"] == len(system["findings"])
    assert list(report) == sorted(report)


def test_an_unreachable_prometheus_exits_2_with_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    run = generate("--inventory", str(INVENTORY), "--verify", url)
    assert run.code == 2
    assert run.stdout == ""
    assert run.stderr == f"error: cannot reach Prometheus at {url}: nothing answers there\n"


def test_a_wrong_password_exits_2_without_printing_it(complete: Cluster, tmp_path: Path) -> None:
    wrong = "not-the-password-" + hashlib.sha256(b"x").hexdigest()[:8]
    run = generate("--inventory", str(INVENTORY), "--verify", complete.prometheus.url, *_auth_args(tmp_path, wrong))
    assert run.code == 2
    assert run.stderr.startswith(f"error: Prometheus at {complete.prometheus.url} refused the credentials (HTTP 401)")
    assert run.stderr.count("\n") == 1
    assert wrong not in run.stdout + run.stderr


def test_a_wrong_bearer_token_exits_2_without_printing_it(complete: Cluster, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("tok-" + hashlib.sha256(b"y").hexdigest())
    url = complete.prometheus.url
    run = generate("--inventory", str(INVENTORY), "--verify", url, "--bearer-token-file", str(token))
    assert run.code == 2
    assert "refused the credentials (HTTP 401)" in run.stderr
    assert token.read_text() not in run.stdout + run.stderr


def _tree(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {
        path.relative_to(folder).as_posix(): (path.stat().st_mtime_ns, path.read_bytes() if path.is_file() else b"")
        for path in sorted(folder.rglob("*"))
    }


def test_verify_touches_no_file(default_chart: Cluster, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    out = work / "out"
    assert generate("--inventory", str(INVENTORY), "--out", str(out), cwd=work).code == 0
    before = _tree(work)
    run = generate("--inventory", str(INVENTORY), "--out", str(out), "--verify", default_chart.prometheus.url, cwd=work)
    assert run.code == 1, run.stderr
    assert _tree(work) == before


def _findings(run: Run) -> list[dict[str, Any]]:
    findings: list[dict[str, Any]] = json.loads(run.stdout)["systems"][0]["findings"]
    return findings


def test_findings_name_the_label_that_differs_and_values_it_has(complete: Cluster, tmp_path: Path) -> None:
    """An inventory whose pool label is not the one kube-state-metrics was told to keep."""
    inventory = tmp_path / "other-label.yaml"
    inventory.write_text(INVENTORY.read_text().replace("node_pool_label: node-role", "node_pool_label: pool"))
    run = generate("--inventory", str(inventory), "--verify", complete.prometheus.url, "--json", *_auth_args(tmp_path))
    assert run.code == 1, run.stderr
    (finding,) = [f for f in _findings(run) if "recording rule node_pool:node:info" in f["read_by"]]
    assert finding["problem"] == "labels-differ"
    assert finding["matcher"] == 'label_pool=~"auth"'
    assert finding["message"] == "kube_node_labels has no label_pool"
    assert "--metric-labels-allowlist=nodes=[pool]" in finding["fix"]


def test_a_label_value_that_differs_is_shown_with_the_values_the_label_has(complete: Cluster, tmp_path: Path) -> None:
    inventory = tmp_path / "other-pool.yaml"
    inventory.write_text(INVENTORY.read_text().replace("{name: auth,", "{name: batch,"))
    run = generate("--inventory", str(inventory), "--verify", complete.prometheus.url, "--json", *_auth_args(tmp_path))
    assert run.code == 1, run.stderr
    (finding,) = [f for f in _findings(run) if "recording rule node_pool:node:info" in f["read_by"]]
    assert finding["matcher"] == 'label_node_role=~"batch"'
    assert finding["label_values"] == ["auth", "master"]
    assert finding["message"] == (
        'kube_node_labels has no series with label_node_role=~"batch" (label_node_role has auth, master)'
    )
