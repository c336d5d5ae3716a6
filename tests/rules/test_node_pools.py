"""Node and pool rules under the label sets real stacks give their series.

kube-prometheus-stack leaves node-exporter's `instance` at `<host IP>:9100`; kube-prometheus
relabels it to the node's name. Both reach a node through kube-state-metrics' `kube_pod_info` on
(namespace, pod), and so must the generated rules. The inputs here come from
`obsbundle.stacks.exporter_target_labels` and from kube-state-metrics' own exposition
(tests/fixtures/exposition/kube-state-metrics/), never from the generator's own test inputs.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from obsbundle import naming
from obsbundle.config import DEFAULT_CONFIG
from obsbundle.model import System
from obsbundle.promql import selector
from obsbundle.render import render
from obsbundle.rules import generate_rules
from obsbundle.rules.cases.node_pool import PoolInputs, healthy_size
from obsbundle.rules.node_pool import label_allowlist_flag, label_allowlist_helm
from obsbundle.stacks import Exporter, Node, Stack, exporter_target_labels
from obsbundle.tools import promtool

KSM_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "exposition" / "kube-state-metrics"
NODE = Node("elastic-7f3kq", "10.1.2.3")
"""The node of the hand-built cases; KSM_NODE runs kube-state-metrics."""
KSM_NODE = Node("system-9wq2m", "10.1.0.5")


def on_stack(system: System, stack: Stack) -> System:
    """The same system, monitored by `stack`."""
    return system.model_copy(update={"monitoring": system.monitoring.model_copy(update={"stack": stack})})


def node_pool_files(system: System, into: Path) -> list[Path]:
    """The system's node-pool rule and test files, written into `into`; the rule files come first."""
    for document in generate_rules(system, DEFAULT_CONFIG):
        name = Path(document.path).name
        if document.path.startswith("prometheus/rules/") and name.startswith(f"{system.name}-node-pool"):
            (into / name).write_bytes(render(document))
    return sorted(into.glob("*.rules.yaml")) + sorted(into.glob("*.test.yaml"))


def fixture_series(file: str, metric: str) -> list[dict[str, str]]:
    """The label sets of `metric` in a kube-state-metrics fixture, as its exposition serves them."""
    text = (KSM_FIXTURES / file).read_text()
    return [
        dict(sample.labels)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == metric
    ]


def scraped(stack: Stack, own: dict[str, str]) -> dict[str, str]:
    """A kube-state-metrics series as the stack stores it: honorLabels, so its own labels win.
    Empty labels are dropped, as Prometheus drops them."""
    labels = {**exporter_target_labels(stack, Exporter.KUBE_STATE_METRICS, KSM_NODE), **own}
    return {name: value for name, value in labels.items() if value}


def series(metric: str, labels: dict[str, str], values: str) -> dict[str, str]:
    return {"series": selector(metric, labels), "values": values}


def run_promtool_test(folder: Path, rule_files: list[Path], test: dict[str, Any]) -> promtool.ToolResult:
    path = folder / "case.test.yaml"
    path.write_text(yaml.safe_dump({
        "rule_files": [file.name for file in rule_files],
        "evaluation_interval": "1m",
        "tests": [test],
    }, sort_keys=False, width=10_000))
    return promtool.test_rules([path])


def full_cpu_inputs(stack: Stack, pool: str, pool_label: str) -> list[dict[str, str]]:
    """One node of `pool` whose only CPU never idles, as node-exporter and kube-state-metrics report it."""
    exporter = exporter_target_labels(stack, Exporter.NODE_EXPORTER, NODE)
    daemonset_pod = next(labels for labels in fixture_series("pods.prom", "kube_pod_info")
                         if labels["created_by_kind"] == "DaemonSet")
    pod_info = {**daemonset_pod, "namespace": exporter["namespace"], "pod": exporter["pod"],
                "node": NODE.name, "host_ip": NODE.host_ip, "pod_ip": NODE.host_ip}
    node_info = {**fixture_series("node-role-allowlist.prom", "kube_node_info")[0], "node": NODE.name}
    return [
        series("kube_node_labels", scraped(stack, {"node": NODE.name, pool_label: pool}), "1x20"),
        series("kube_node_info", scraped(stack, node_info), "1x20"),
        series("kube_pod_info", scraped(stack, pod_info), "1x20"),
        series("up", exporter, "1x20"),
        # Every second of CPU time is user time: idle, iowait and steal stand still.
        series("node_cpu_seconds_total", {**exporter, "cpu": "0", "mode": "idle"}, "1000+0x20"),
        series("node_cpu_seconds_total", {**exporter, "cpu": "0", "mode": "user"}, "5000+60x20"),
    ]


@pytest.mark.parametrize("stack", list(Stack))
def test_every_node_pool_promtool_test_passes_with_the_labels_the_stack_gives_its_series(
    shipyard: System, stack: Stack, tmp_path: Path
) -> None:
    files = node_pool_files(on_stack(shipyard, stack), tmp_path)
    rule_files = [file for file in files if file.name.endswith(".rules.yaml")]
    assert promtool.check_rules(rule_files).ok
    tests = [file for file in files if file.name.endswith(".test.yaml")]
    assert len(tests) > len(shipyard.node_pools)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = list(pool.map(lambda file: promtool.test_rules([file]), tests))
    failures = [result.output for result in results if not result.ok]
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("stack", list(Stack))
def test_node_cpu_high_fires_for_a_pool_node_at_full_cpu(shipyard: System, stack: Stack, tmp_path: Path) -> None:
    system = on_stack(shipyard, stack)
    rule_files = [file for file in node_pool_files(system, tmp_path) if file.name.endswith(".rules.yaml")]
    recorded = {naming.SYSTEM_LABEL: system.name, "node": NODE.name, naming.NODE_POOL_LABEL: "elastic"}
    result = run_promtool_test(tmp_path, rule_files, {
        "name": f"a node at 100 % CPU under {stack}'s labels",
        "interval": "1m",
        "input_series": full_cpu_inputs(stack, "elastic", system.node_pool_label_name),
        "promql_expr_test": [
            {
                "expr": selector(naming.NODE_CPU_UTILISATION, {naming.SYSTEM_LABEL: system.name}),
                "eval_time": "15m",
                "exp_samples": [{"labels": selector(naming.NODE_CPU_UTILISATION, recorded), "value": 1}],
            },
            {
                "expr": selector(naming.POOL_CPU_UTILISATION, {naming.SYSTEM_LABEL: system.name}),
                "eval_time": "15m",
                "exp_samples": [{"labels": selector(naming.POOL_CPU_UTILISATION, {
                    naming.SYSTEM_LABEL: system.name, naming.NODE_POOL_LABEL: "elastic"}), "value": 1}],
            },
            {
                "expr": 'count by (alertname, node, node_pool, severity) (ALERTS{alertname="NodeCpuHigh",'
                        'alertstate="firing"})',
                "eval_time": "15m",
                "exp_samples": [{"labels": selector("", {"alertname": "NodeCpuHigh", "node": NODE.name,
                                                         "node_pool": "elastic", "severity": "critical"}),
                                 "value": 1}],
            },
        ],
    })
    assert result.ok, result.output


@pytest.mark.parametrize("stack", list(Stack))
def test_healthy_nodes_without_the_pool_label_page_nobody_and_one_warning_says_how_to_fix_it(
    shipyard: System, stack: Stack, tmp_path: Path
) -> None:
    """kube-state-metrics with its Helm chart's default `metricLabelsAllowlist: []` serves no
    kube_node_labels series at all (default-allowlist.prom)."""
    assert fixture_series("default-allowlist.prom", "kube_node_labels") == []
    system = on_stack(shipyard, stack)
    rule_files = [file for file in node_pool_files(system, tmp_path) if file.name.endswith(".rules.yaml")]
    minutes = 60
    inputs: dict[str, str] = {}
    for pool in system.node_pools:
        pool_inputs = PoolInputs(system, DEFAULT_CONFIG.rules, pool, minutes, allowlisted=False)
        for item in pool_inputs.nodes(healthy_size(pool)):
            inputs[item.series] = item.values
    assert not any(name.startswith("kube_node_labels") for name in inputs)
    result = run_promtool_test(tmp_path, rule_files, {
        "name": "healthy nodes without the pool label",
        "interval": "1m",
        "input_series": [{"series": name, "values": values} for name, values in inputs.items()],
        "promql_expr_test": [{
            "expr": 'count by (alertname, severity) (ALERTS{alertstate="firing"})',
            "eval_time": f"{minutes}m",
            "exp_samples": [{"labels": selector("", {"alertname": naming.ALERT_NODE_POOL_LABEL_MISSING,
                                                     "severity": "warning"}), "value": 1}],
        }],
    })
    assert result.ok, result.output

    flag = "--metric-labels-allowlist=nodes=[node.example.com/pool]"
    helm = 'kube-state-metrics.metricLabelsAllowlist: ["nodes=[node.example.com/pool]"]'
    assert (label_allowlist_flag(system), label_allowlist_helm(system)) == (flag, helm)
    rules = yaml.safe_load((tmp_path / "shipyard-node-pools.rules.yaml").read_text())
    [warning] = [rule for group in rules["groups"] for rule in group["rules"]
                 if rule.get("alert") == naming.ALERT_NODE_POOL_LABEL_MISSING]
    assert flag in warning["annotations"]["description"]
    assert helm in warning["annotations"]["description"]
    runbooks = {document.path: render(document).decode() for document in generate_rules(system, DEFAULT_CONFIG)}
    runbook = runbooks[f"runbooks/{naming.ALERT_NODE_POOL_LABEL_MISSING}.md"]
    assert flag in runbook
    assert helm in runbook


def test_the_generated_tests_label_kube_pod_info_as_kube_state_metrics_labels_a_node_exporter_pod(
    shipyard: System,
) -> None:
    pool = shipyard.node_pools[0]
    pod_infos = [item.series for item in PoolInputs(shipyard, DEFAULT_CONFIG.rules, pool, 5).nodes(1)
                 if item.series.startswith("kube_pod_info")]
    assert pod_infos
    fixture = next(labels for labels in fixture_series("pods.prom", "kube_pod_info")
                   if labels["created_by_kind"] == "DaemonSet")
    expected = set(scraped(shipyard.monitoring.stack, fixture))
    for pod_info in pod_infos:
        parsed = promql_parser.parse(pod_info)
        assert isinstance(parsed, promql_parser.VectorSelector)
        assert {matcher.name for matcher in parsed.matchers.matchers} == expected, pod_info
