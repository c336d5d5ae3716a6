"""The node alerts beyond USE (clock, kubelet pressure) and the watched claims, on behaviour the
generated firing and quiet cases do not reach: node-mixin's direction test of a skewed clock,
kubernetes-mixin's cordon exception, and where EcoEco's Prometheus volume and auth-service's clock
are answered and explained.

The promtool inputs carry the label sets of `obsbundle.stacks` and kube-state-metrics' own fixtures
(tests/fixtures/exposition/kube-state-metrics/node-conditions.prom, node-role-allowlist.prom).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from obsbundle import naming
from obsbundle.config import DEFAULT_CONFIG
from obsbundle.dashboards.node_pools import node_pool_dashboard
from obsbundle.dashboards.walk import panels, targets
from obsbundle.links import PanelId
from obsbundle.model import Inventory, System
from obsbundle.promql import selector
from obsbundle.render import render
from obsbundle.rules import generate_rules
from obsbundle.rules.cases.node_pool import NodeState, PoolInputs, node_names
from obsbundle.rules.definitions import InputSeries
from obsbundle.rules.volumes import watched_volumes
from obsbundle.stacks import Stack
from tests.rules.test_node_pools import fixture_series, node_pool_files, on_stack, run_promtool_test
from tests.support.exposition import selectors

MINUTES = 30


def _ecoeco(inventory: Inventory) -> System:
    return next(system for system in inventory.systems if system.name == "ecoeco")


def _alerts_at(system: System, alertname: str, inputs: list[InputSeries]) -> dict[str, Any]:
    """A promtool test: the firing `alertname` alerts at MINUTES, by node, pool and condition."""
    return {
        "name": f"{alertname} on hand-made inputs",
        "interval": "1m",
        "input_series": [{"series": item.series, "values": item.values} for item in inputs],
        "promql_expr_test": [
            {
                "expr": f'count by (alertname, node, node_pool, condition) (ALERTS{{alertname="{alertname}",'
                f'alertstate="firing",system="{system.name}"}})',
                "eval_time": f"{MINUTES}m",
                "exp_samples": [],
            }
        ],
    }


def _firing(system: System, alertname: str, labels: dict[str, str]) -> list[dict[str, Any]]:
    return [{"labels": selector("", {"alertname": alertname, **labels}), "value": 1}]


def _pool_inputs(system: System, state: NodeState) -> list[InputSeries]:
    pool = system.node_pool("elastic")
    return list(PoolInputs(system, DEFAULT_CONFIG.rules, pool, MINUTES).nodes(pool.min_nodes, first=state))


@pytest.mark.parametrize("stack", list(Stack))
def test_a_clock_ahead_and_still_drifting_warns_and_one_coming_back_on_its_own_stays_quiet(
    shipyard: System, stack: Stack, tmp_path: Path
) -> None:
    """node-mixin's NodeClockSkewDetected fires only while the offset is not shrinking: a clock
    200 ms ahead that gains 1 ms a minute warns, the same clock losing 10 ms a minute (NTP slewing
    it back) does not."""
    system = on_stack(shipyard, stack)
    rules = [file for file in node_pool_files(system, tmp_path) if file.name.endswith(".rules.yaml")]
    node = node_names(system.node_pool("elastic"), 1)[0]
    drifting = _alerts_at(system, "NodeClockSkew", _pool_inputs(system, NodeState(clock_offset=0.2,
                                                                                  clock_drift_per_minute=0.001)))
    drifting["promql_expr_test"][0]["exp_samples"] = _firing(system, "NodeClockSkew",
                                                             {"node": node, naming.NODE_POOL_LABEL: "elastic"})
    slewing = _alerts_at(system, "NodeClockSkew", _pool_inputs(system, NodeState(clock_offset=0.2,
                                                                                 clock_drift_per_minute=-0.01)))
    for test in (drifting, slewing):
        result = run_promtool_test(tmp_path, rules, test)
        assert result.ok, result.output


@pytest.mark.parametrize("stack", list(Stack))
def test_pressure_on_a_node_warns_with_its_condition_unless_the_node_is_cordoned_for_a_drain(
    shipyard: System, stack: Stack, tmp_path: Path
) -> None:
    """kube-state-metrics' condition and status values are its own (node-conditions.prom); a node
    cordoned (kube_node_spec_unschedulable 1, as node-role-allowlist.prom has it 0 or 1) is being
    drained on purpose, and kubernetes-mixin's KubeNodePressure leaves it out too."""
    served = {labels["condition"] for labels in fixture_series("node-conditions.prom", "kube_node_status_condition")
              if labels["status"] == "true"}
    assert served == set(DEFAULT_CONFIG.rules.node_pressure_conditions)
    assert fixture_series("node-role-allowlist.prom", "kube_node_spec_unschedulable")
    system = on_stack(shipyard, stack)
    rules = [file for file in node_pool_files(system, tmp_path) if file.name.endswith(".rules.yaml")]
    node = node_names(system.node_pool("elastic"), 1)[0]
    pressured = _pool_inputs(system, NodeState(pressure="PIDPressure"))
    warns = _alerts_at(system, "NodePressure", pressured)
    warns["promql_expr_test"][0]["exp_samples"] = _firing(
        system, "NodePressure", {"node": node, naming.NODE_POOL_LABEL: "elastic", "condition": "PIDPressure"}
    )
    cordoned = [
        InputSeries(item.series, "1x30") if item.series.startswith("kube_node_spec_unschedulable")
        and f'node="{node}"' in item.series else item
        for item in pressured
    ]
    assert cordoned != pressured
    for test in (warns, _alerts_at(system, "NodePressure", cordoned)):
        result = run_promtool_test(tmp_path, rules, test)
        assert result.ok, result.output


def test_ecoecos_prometheus_claim_is_watched_for_the_platform_team_on_the_monitoring_pools_board(
    default_inventory: Inventory,
) -> None:
    """Platform workloads' `volumes` are watched like services' and datastores': EcoEco's Prometheus
    claim prometheus-server (50 GB) pages the system's owner and links to the volumes panel of the
    monitoring pool's dashboard, where the panel reads exactly that claim."""
    ecoeco = _ecoeco(default_inventory)
    [volume] = [found for found in watched_volumes(ecoeco) if found.claim == "prometheus-server"]
    assert (volume.namespace, volume.panel) == ("monitoring", PanelId.POOL_VOLUMES)
    assert dict(volume.subject.labels) == {
        naming.SYSTEM_LABEL: "ecoeco", naming.TEAM_LABEL: ecoeco.owner.team, naming.NAMESPACE_LABEL: "monitoring",
        "persistentvolumeclaim": "prometheus-server", naming.NODE_POOL_LABEL: "monitoring",
    }  # fmt: skip
    claims = {(found.namespace, found.claim) for found in watched_volumes(ecoeco)}
    assert ("default", "data-postgresql-0") in claims

    rules = {document.path: render(document).decode() for document in generate_rules(ecoeco, DEFAULT_CONFIG)}
    volume_rules = rules["prometheus/rules/ecoeco-volumes.rules.yaml"]
    for alert in ("VolumeAlmostFull", "VolumeFillingUp", "VolumeInodesAlmostExhausted", "VolumeInodesFillingUp",
                  "VolumeClaimNotBound"):
        assert f"{alert}.md" in " ".join(rules), alert
    assert f"/d/ecoeco-node-pool-monitoring?viewPanel={int(PanelId.POOL_VOLUMES)}" in volume_rules

    board = node_pool_dashboard(ecoeco, ecoeco.node_pool("monitoring"), DEFAULT_CONFIG.dashboards)
    [usage] = [target["expr"] for panel, target in targets(board) if panel.get("id") == PanelId.POOL_VOLUMES]
    [used, _capacity] = selectors(usage)
    assert used.name == "kubelet_volume_stats_used_bytes"
    [claim] = [matcher for matcher in used.matchers if matcher.name == "persistentvolumeclaim"]
    assert claim.holds("prometheus-server")
    assert not claim.holds("prometheus-server-backup")
    other = node_pool_dashboard(ecoeco, ecoeco.node_pool("auth"), DEFAULT_CONFIG.dashboards)
    assert PanelId.POOL_VOLUMES not in {panel.get("id") for panel in panels(other)}


def test_the_clock_runbook_says_why_a_skewed_clock_breaks_auth_services_jwts(default_inventory: Inventory) -> None:
    """The runbook names what runs on each pool, so the on-call engineer reads that the auth pool
    runs auth-service, which issues JWTs, and why their `iat`, `nbf` and `exp` break with the clock."""
    ecoeco = _ecoeco(default_inventory)
    runbooks = {document.path: render(document).decode() for document in generate_rules(ecoeco, DEFAULT_CONFIG)}
    for name in ("NodeClockSkew", "NodeClockNotSynchronised"):
        text = runbooks[f"runbooks/{name}.md"]
        assert "| auth: runs auth-service (OAuth 2.0 login and JWT tokens) | warning |" in text, name
        assert "JWT" in text and "`nbf`" in text, name
    rules = runbooks["prometheus/rules/ecoeco-node-pool-auth.rules.yaml"]
    assert "not converging. It runs auth-service." in rules
