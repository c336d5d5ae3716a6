"""The global rules on a real global ruler: two Prometheus servers, one per cluster, each with
`external_labels: {cluster: ...}`, remote-write to a third started with
`--web.enable-remote-write-receiver`, which evaluates the generated global rules. The same service
runs in both clusters (a real prometheus-client exposition per cluster); an outage in one cluster
pages for that cluster only, and the global dashboards' queries, run on the third Prometheus, show
each cluster what its own Prometheus shows."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from obsbundle.bundle import dashboards_of
from obsbundle.config import DEFAULT_CONFIG, build_config
from obsbundle.dashboards.variables import expand, opening_values
from obsbundle.dashboards.walk import targets
from obsbundle.model import Inventory, System
from obsbundle.promql import regex_literal
from obsbundle.render import render, to_yaml
from obsbundle.rules import RULES_DIR, generate_rules
from obsbundle.settings import Ruler
from obsbundle.tools.processes import wait_until
from obsbundle.tools.prometheus import PrometheusServer, start_prometheus
from tests.alerting.metrics_target import MetricsTarget
from tests.support.quick_rules import shortened

pytestmark = pytest.mark.servers

SYSTEM = "ecoeco"
SERVICE = "auth-service"
A, B = "ecoeco-prod-eu", "ecoeco-prod-us"
EVALUATION = "1s"
FOR = "3s"
"""Longer than the first remote-written samples take to arrive, so that nothing fires before the test."""
WAIT = 120.0
GROUPS = (f"{SYSTEM}-slo-sli-{SERVICE}", f"{SYSTEM}-slo-windows", f"{SYSTEM}-slo-windows-long",
          f"{SYSTEM}-slo-alerts-{SERVICE}")  # fmt: skip
"""The service's SLO groups and the windows they read: the page's whole path, and nothing else to evaluate."""


@dataclass
class GlobalStack:
    ruler: PrometheusServer
    clusters: dict[str, PrometheusServer]
    targets: dict[str, MetricsTarget]
    system: System

    def paging_clusters(self) -> set[str]:
        """The clusters for which the SLO page of SERVICE fires on the global ruler."""
        series = self.ruler.query(
            f'ALERTS{{alertname="SloErrorBudgetBurn",service="{SERVICE}",severity="critical",alertstate="firing"}}'
        )
        return {item["metric"].get("cluster", "") for item in series}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, default_inventory: Inventory) -> Iterator[GlobalStack]:
    fleet = next(system for system in default_inventory.systems if system.name == SYSTEM)
    system: System = fleet.model_copy(update={"cluster": A, "clusters": (A, B)})
    folder = tmp_path_factory.mktemp("global-ruler")
    rule_dir = folder / "rules"
    rule_dir.mkdir()
    for document in generate_rules(system, build_config(ruler=Ruler.GLOBAL)):
        name = Path(document.path).name
        if document.path.startswith(RULES_DIR) and name.removesuffix(".rules.yaml") in GROUPS:
            (rule_dir / name).write_text(to_yaml(shortened(yaml.safe_load(render(document)), EVALUATION, FOR)))
    assert len(list(rule_dir.iterdir())) == len(GROUPS)
    ruler = start_prometheus(
        folder / "ruler",
        {"global": {"evaluation_interval": EVALUATION}, "rule_files": [str(rule_dir / "*.yaml")]},
        extra_args=("--web.enable-remote-write-receiver",),
    )
    namespace = system.service(SERVICE).namespace
    targets = {cluster: MetricsTarget().start() for cluster in (A, B)}
    clusters = {
        cluster: start_prometheus(folder / cluster, {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "external_labels": {"cluster": cluster}},
            "scrape_configs": [{
                "job_name": SERVICE,
                # The labels a ServiceMonitor's relabelling gives every target (monitors/workloads.py).
                "static_configs": [
                    {"targets": [target.address], "labels": {"namespace": namespace, "service": SERVICE}}
                ],
            }],
            "remote_write": [{"url": f"{ruler.url}/api/v1/write", "queue_config": {"batch_send_deadline": "1s"}}],
        })
        for cluster, target in targets.items()
    }
    yield GlobalStack(ruler, clusters, targets, system)
    for server in (*clusters.values(), ruler):
        server.stop()
    for target in targets.values():
        target.stop()


def test_both_clusters_series_reach_the_global_ruler_each_with_its_cluster(stack: GlobalStack) -> None:
    def clusters() -> set[str]:
        return {s["metric"]["cluster"] for s in stack.ruler.query(f'http_requests_total{{service="{SERVICE}"}}')}

    wait_until(lambda: clusters() == {A, B}, timeout=WAIT, what="both clusters' series on the global ruler")
    wait_until(lambda: len(stack.ruler.query(f'slo:sli_total_events:increase5m{{service="{SERVICE}"}}')) >= 2,
               timeout=WAIT, what="the recorded SLI of both clusters")
    recorded = stack.ruler.query(f'slo:sli_total_events:increase5m{{service="{SERVICE}",slo="availability"}}')
    assert {item["metric"]["cluster"] for item in recorded} == {A, B}


def test_an_outage_in_one_cluster_pages_for_that_cluster_only_then_in_the_other_for_it(stack: GlobalStack) -> None:
    assert stack.paging_clusters() == set()
    stack.targets[A].error_share = 1.0
    wait_until(lambda: A in stack.paging_clusters(), timeout=WAIT, what=f"the SLO page for {A}")
    assert stack.paging_clusters() == {A}

    # Cluster a recovers; its 5-minute windows still hold the outage, so its page may stay a while.
    stack.targets[A].error_share = 0.0
    stack.targets[B].error_share = 1.0
    wait_until(lambda: B in stack.paging_clusters(), timeout=WAIT, what=f"the SLO page for {B}")


Samples = dict[frozenset[tuple[str, str]], float]


def _samples(result: list[dict[str, Any]]) -> Samples:
    return {frozenset(item["metric"].items()): float(item["value"][1]) for item in result}


def _by_cluster(result: list[dict[str, Any]]) -> dict[str, Samples]:
    """An instant result split by `cluster`, the label left out of each sample's labels."""
    split: dict[str, Samples] = {}
    for item in result:
        labels = dict(item["metric"])
        cluster = labels.pop("cluster", "")
        split.setdefault(cluster, {})[frozenset(labels.items())] = float(item["value"][1])
    return split


def _same(left: Samples, right: Samples) -> bool:
    return left.keys() == right.keys() and all(math.isclose(left[key], right[key]) for key in left)


def test_the_global_dashboards_queries_show_each_cluster_what_its_own_prometheus_shows(stack: GlobalStack) -> None:
    """Cluster a serves, cluster b fails. Every query of the SLO and the service dashboards runs on the
    global ruler with both clusters chosen: each series names its cluster; where the query reads
    scraped series, each cluster's part equals what the local dashboard's query returns from that
    cluster's own Prometheus (which holds the same samples, without the `cluster` external label)."""
    stack.targets[A].error_share = 0.0
    stack.targets[B].error_share = 1.0
    rate_window = 4  # Grafana's $__rate_interval at 1 s scrapes: four of them

    def failing_alone(at: float) -> bool:
        def rate(cluster: str, status: str) -> float:
            expr = f'sum(rate(http_requests_total{{status="{status}"}}[{rate_window}s]))'
            result = stack.clusters[cluster].query(expr, time=at)
            return float(result[0]["value"][1]) if result else math.nan

        return rate(A, "500") == 0 < rate(A, "200") and rate(B, "200") == 0 < rate(B, "500")

    moment = time.time()

    def settled() -> bool:  # the moment every query below reads, a second back so that it is complete
        nonlocal moment
        moment = time.time() - 1
        return failing_alone(moment)

    wait_until(settled, timeout=WAIT, what=f"{B} failing alone")

    def caught_up() -> bool:  # remote_write delivers within its 1 s batch deadline
        stamps = stack.ruler.query(f'timestamp(up{{service="{SERVICE}"}})')
        return {item["metric"]["cluster"] for item in stamps if float(item["value"][1]) > moment} == {A, B}

    wait_until(caught_up, timeout=WAIT, what="the global ruler holding both clusters' samples of that moment")

    boards = ("slos", f"service-{SERVICE}")
    chosen = {board["uid"]: board for board in dashboards_of(stack.system, build_config(ruler=Ruler.GLOBAL))}
    local = {board["uid"]: board for board in dashboards_of(stack.system, DEFAULT_CONFIG)}
    compared: dict[str, dict[str, Samples]] = {}
    apart = 0
    queries = 0
    for uid in (f"{SYSTEM}-{board}" for board in boards):
        global_values = opening_values(chosen[uid], scrape_interval=1, range_seconds=300)
        local_values = opening_values(local[uid], scrape_interval=1, range_seconds=300)
        assert global_values["cluster"] == f"{regex_literal(A)}|{regex_literal(B)}"  # All: both chosen
        pairs = zip(targets(chosen[uid]), targets(local[uid]), strict=True)
        for (panel, target), (_, local_target) in pairs:
            queries += 1
            where = f"{uid} / {panel['title']} / {target['refId']}"
            split = _by_cluster(stack.ruler.query(expand(target["expr"], global_values), time=moment))
            assert set(split) <= {A, B}, f"{where}: series without their cluster: {split.get('')}"
            if split and "ALERTS" not in target["expr"]:  # alerts fire where a cluster fails; the rest is in both
                assert set(split) == {A, B}, f"{where}: only {set(split)}"
                apart += 1
            own = {
                cluster: _samples(server.query(expand(local_target["expr"], local_values), time=moment))
                for cluster, server in stack.clusters.items()
            }
            if all(own.values()):  # the query reads scraped series, which each cluster's Prometheus holds
                assert all(_same(split.get(cluster, {}), own[cluster]) for cluster in (A, B)), (where, split, own)
                compared[panel["title"]] = split
    assert "Responses by status" in compared, sorted(compared)
    by_status = compared["Responses by status"]
    assert {dict(labels)["status"]: value for labels, value in by_status[A].items()}["500"] == 0
    assert {dict(labels)["status"]: value for labels, value in by_status[B].items()}["200"] == 0
    assert min(by_status[A].values(), default=0) == 0 < max(by_status[A].values())
    assert len(compared) >= 3
    assert apart > len(compared), f"{apart} of {queries} queries returned both clusters"
