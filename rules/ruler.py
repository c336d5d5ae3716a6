"""Rule groups and their promtool tests as the ruler that evaluates them needs them.

A local ruler (the system's own Prometheus) gets the groups as the components build them. A global
ruler (Thanos Ruler, Mimir, a Prometheus receiving remote_write) sees every cluster's series, each
with its `cluster` external label: every expression is rewritten by
`obsbundle.promql_clusters.keep_clusters_apart` over the system's clusters, and the promtool tests'
input series carry `cluster` as remote-written series do, their expected alerts and samples too.
This is the one place where rule groups meet the ruler: the PrometheusRule objects, the plain rule
files, the Mimir namespace file and the test files are all made from what it returns.
"""

from __future__ import annotations

from typing import Any

from obsbundle.errors import InputError, Problem
from obsbundle.model import System
from obsbundle.promql_clusters import CLUSTER, ClusterRewriteError, keep_clusters_apart, series_in_cluster
from obsbundle.settings import Ruler

MIMIR_DIR = "mimir"


def group_for_ruler(group: dict[str, Any], system: System, ruler: Ruler) -> dict[str, Any]:
    """A rule group (`RuleGroup.to_dict()`) for `ruler`: itself for a local ruler; for a global one,
    every rule's expression keeps the system's clusters apart. Raises InputError for an expression
    that cannot (an inventory's own SLI query that matches `cluster`, say)."""
    if ruler is Ruler.LOCAL:
        return group
    return {**group, "rules": [_global_rule(rule, system) for rule in group["rules"]]}


def dashboard_link_in_cluster(url: str, cluster: str) -> str:
    """An alert's dashboard link that opens on the alert's own cluster (`cluster` is its value or
    the template that prints it): a global dashboard shows every cluster of the system by default."""
    return f"{url}{'&' if '?' in url else '?'}var-cluster={cluster}"


def _global_rule(rule: dict[str, Any], system: System) -> dict[str, Any]:
    fresh = {**rule, "expr": _global_expr(rule["expr"], system)}
    annotations = rule.get("annotations", {})
    if "dashboard_url" in annotations:
        link = dashboard_link_in_cluster(annotations["dashboard_url"], f"{{{{ $labels.{CLUSTER} }}}}")
        fresh["annotations"] = {**annotations, "dashboard_url": link}
    return fresh


def tests_for_ruler(content: dict[str, Any], system: System, ruler: Ruler) -> dict[str, Any]:
    """A promtool test file for `ruler`: for a global ruler, every input series and every expected
    alert and sample carries the system's `cluster`, and every checked expression keeps clusters
    apart as the rules do."""
    if ruler is Ruler.LOCAL:
        return content
    return {**content, "tests": [_global_test(test, system) for test in content["tests"]]}


def mimir_namespace(system: System, groups: list[Any]) -> dict[str, Any]:
    """The system's groups as one file of `mimirtool rules load`: Mimir reads a `RuleNamespace`,
    `namespace` and `groups` (Prometheus rule groups, each optionally with `remote_write`), with
    unknown keys refused (grafana/mimir pkg/mimirtool/rules/rules.go `RuleNamespace`,
    pkg/mimirtool/rules/rwrulefmt/rulefmt.go, and parser.go's `KnownFields(true)`). One namespace
    per system, so that loading one system's file replaces only its own groups."""
    return {"namespace": system.name, "groups": groups}


def _global_expr(expr: str, system: System) -> str:
    try:
        return keep_clusters_apart(expr, system.all_clusters)
    except ClusterRewriteError as error:
        problem = Problem(system.name, ("--ruler",), f"global rules cannot keep clusters apart: {error}")
        raise InputError([problem]) from None


def _global_test(test: dict[str, Any], system: System) -> dict[str, Any]:
    cluster = system.cluster
    inputs = [{**item, "series": series_in_cluster(item["series"], cluster)} for item in test["input_series"]]
    fresh = {**test, "input_series": inputs}
    if "alert_rule_test" in test:
        fresh["alert_rule_test"] = [
            {
                **check,
                "exp_alerts": [_expected_in_cluster(alert, cluster) for alert in check["exp_alerts"]],
            }
            for check in test["alert_rule_test"]
        ]
    if "promql_expr_test" in test:
        fresh["promql_expr_test"] = [
            {
                **check,
                "expr": _global_expr(check["expr"], system),
                "exp_samples": [
                    {**sample, "labels": series_in_cluster(sample["labels"], cluster)}
                    for sample in check["exp_samples"]
                ],
            }
            for check in test["promql_expr_test"]
        ]
    return fresh


def _expected_in_cluster(alert: dict[str, Any], cluster: str) -> dict[str, Any]:
    fresh = {**alert, "exp_labels": dict(sorted({**alert["exp_labels"], CLUSTER: cluster}.items()))}
    annotations = alert.get("exp_annotations", {})
    if "dashboard_url" in annotations:
        link = dashboard_link_in_cluster(annotations["dashboard_url"], cluster)
        fresh["exp_annotations"] = {**annotations, "dashboard_url": link}
    return fresh
