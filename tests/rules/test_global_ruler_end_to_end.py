"""The global rules on a real global ruler: two Prometheus servers, one per cluster, each with
`external_labels: {cluster: ...}`, remote-write to a third started with
`--web.enable-remote-write-receiver`, which evaluates the generated global rules. The same service
runs in both clusters (a real prometheus-client exposition per cluster); an outage in one cluster
pages for that cluster only."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from obsbundle.config import build_config
from obsbundle.model import Inventory, System
from obsbundle.render import render, to_yaml
from obsbundle.rules import RULES_DIR, generate_rules
from obsbundle.settings import Ruler
from obsbundle.tools.processes import wait_until
from obsbundle.tools.prometheus import PrometheusServer, start_prometheus
from tests.alerting.metrics_target import MetricsTarget

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


def shortened(rule_file: dict[str, Any]) -> dict[str, Any]:
    """The same rules, evaluated every EVALUATION, with every `for:` cut to FOR."""
    quick = copy.deepcopy(rule_file)
    for group in quick["groups"]:
        group["interval"] = EVALUATION
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = FOR
    return quick


@dataclass
class GlobalStack:
    ruler: PrometheusServer
    clusters: dict[str, PrometheusServer]
    targets: dict[str, MetricsTarget]

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
            (rule_dir / name).write_text(to_yaml(shortened(yaml.safe_load(render(document)))))
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
    yield GlobalStack(ruler, clusters, targets)
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
