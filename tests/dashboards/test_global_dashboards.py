"""`--ruler global`: the dashboards over a datasource that holds many clusters keep each apart.

Every query of every dashboard of the checked systems, each run in two clusters, is parsed (by
promql-parser and by promtool) with the variables Grafana substitutes when the dashboard opens on
All, and checked: every selector matches the chosen clusters, every aggregation is by `cluster`,
every `on (...)` matches on it, and no `ignoring (...)` drops it. The same checker finds the local
dashboards wanting, so it can fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import promql_parser as ast
import pytest

from obsbundle.bundle import dashboards_of
from obsbundle.config import DEFAULT_CONFIG, build_config
from obsbundle.dashboards.clusters import CLUSTER_LEGEND, query_for_ruler
from obsbundle.dashboards.lint import lint
from obsbundle.dashboards.variables import CLUSTER_VARIABLE, opening_values
from obsbundle.dashboards.walk import expressions, panels, targets
from obsbundle.model import System
from obsbundle.promql import regex_literal
from obsbundle.promql_clusters import CLUSTER, ClusterRewriteError
from obsbundle.settings import Ruler
from obsbundle.tools import promtool
from tests.dashboards.conftest import report

GLOBAL = build_config(ruler=Ruler.GLOBAL)
A, B = "cluster-a", "cluster-b"
CHOSEN = f"{regex_literal(A)}|{regex_literal(B)}"
"""What Grafana substitutes for `$cluster` when the dashboard opens on All."""


def in_two_clusters(system: System) -> System:
    """`system` as it runs in clusters a and b (the same services, namespaces and SLOs in each)."""
    return system.model_copy(update={"cluster": A, "clusters": (A, B)})


@pytest.fixture(scope="module")
def global_dashboards(checked_systems: list[System]) -> dict[str, list[dict[str, Any]]]:
    return {system.name: dashboards_of(in_two_clusters(system), GLOBAL) for system in checked_systems}


def opened(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(location, query) of every target and variable selector, as Grafana runs it on opening."""
    yield from expressions(board, opening_values(board, scrape_interval=30, range_seconds=6 * 3600))


def mixing(expr: str, chosen: str) -> list[str]:
    """What in `expr` would add up or match samples of different clusters, or select others."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, ast.VectorSelector):
            own = [m for m in node.matchers.matchers if m.name == CLUSTER]
            if len(own) != 1 or own[0].op != ast.MatchOp.Re or own[0].value != chosen:
                found.append(f"selector {node.name or ''} does not match cluster=~{chosen!r}")
        elif isinstance(node, ast.MatrixSelector):
            walk(node.vector_selector)
        elif isinstance(node, ast.AggregateExpr):
            modifier = node.modifier
            if modifier is None or modifier.type != ast.AggModifierType.By or CLUSTER not in modifier.labels:
                found.append(f"{node.op} does not aggregate by cluster")
            walk(node.expr)
            if node.param is not None:
                walk(node.param)
        elif isinstance(node, ast.BinaryExpr):
            matching = node.modifier.matching if node.modifier is not None else None
            keeps = matching is None or (CLUSTER in matching.labels) == (matching.type == ast.LabelModifierType.Include)
            if not keeps:
                found.append(f"{node.op} matches without cluster")
            walk(node.lhs)
            walk(node.rhs)
        elif isinstance(node, ast.Call):
            for argument in node.args:
                walk(argument)
        elif isinstance(node, ast.ParenExpr | ast.UnaryExpr | ast.SubqueryExpr):
            walk(node.expr)

    walk(ast.parse(expr))
    return found


def test_every_global_dashboard_query_selects_the_chosen_clusters_and_keeps_cluster_in_every_aggregation_and_match(
    global_dashboards: dict[str, list[dict[str, Any]]], pytestconfig: pytest.Config
) -> None:
    located = [located for boards in global_dashboards.values() for board in boards for located in opened(board)]
    problems = [f"{where}: {problem}\n  {expr}" for where, expr in located for problem in mixing(expr, CHOSEN)]
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:20])
    errors = promtool.expression_errors([expr for _, expr in located])
    assert not errors, "\n".join(f"{located[index][0]}: {error}" for index, error in sorted(errors.items()))
    assert len(located) > 1000
    report(pytestconfig, f"{len(located)} global dashboard queries and variable selectors parse (promtool), select "
                         "the chosen clusters and keep cluster in every aggregation and vector match")


def test_the_checker_finds_the_local_dashboards_summing_clusters_together(checked_systems: list[System]) -> None:
    boards = dashboards_of(in_two_clusters(checked_systems[0]), DEFAULT_CONFIG)
    located = [(where, expr) for board in boards for where, expr in opened(board)]
    mixed = [where for where, expr in located if any("cluster" in problem for problem in mixing(expr, ".*"))]
    assert len(mixed) > len(located) / 2


def test_the_cluster_variable_picks_one_or_several_of_the_systems_clusters_all_of_them_by_default(
    global_dashboards: dict[str, list[dict[str, Any]]],
) -> None:
    for boards in global_dashboards.values():
        for board in boards:
            variable = next(v for v in board["templating"]["list"] if v["name"] == CLUSTER_VARIABLE)
            assert (variable["multi"], variable["includeAll"], variable["allValue"]) == (True, True, CHOSEN)
            assert variable["current"]["value"] == ["$__all"]
            nodes = f'kube_node_info{{job="kube-state-metrics",cluster=~"{CHOSEN}"}}'
            assert variable["query"] == f"label_values({nodes}, cluster)"


def test_every_legend_names_the_cluster_and_every_heatmap_repeats_per_chosen_cluster(
    global_dashboards: dict[str, list[dict[str, Any]]],
) -> None:
    heatmaps = 0
    for boards in global_dashboards.values():
        for board in boards:
            for panel, target in targets(board):
                if target["format"] == "time_series":
                    assert CLUSTER_LEGEND in target["legendFormat"], f"{board['title']} / {panel['title']}"
                elif target["format"] == "heatmap":
                    heatmaps += 1
                    assert (panel["repeat"], target["legendFormat"]) == (CLUSTER_VARIABLE, "{{le}}")
                else:  # a table shows `cluster` as a column of its own
                    assert CLUSTER not in panel["transformations"][-1]["options"]["excludeByName"]
    assert heatmaps > 0


def test_the_global_dashboards_keep_every_lint_rule(global_dashboards: dict[str, list[dict[str, Any]]]) -> None:
    findings = [str(finding) for boards in global_dashboards.values() for board in boards for finding in lint(board)]
    assert not findings, "\n".join(findings)


def test_the_global_overview_opens_on_the_clusters_side_by_side_and_the_local_one_does_not(
    global_dashboards: dict[str, list[dict[str, Any]]], checked_systems: list[System]
) -> None:
    overview = global_dashboards["ecoeco"][0]
    row, table = list(panels(overview))[:2]
    assert (row["title"], table["title"]) == ("Clusters side by side", "Clusters")
    assert [target["expr"].split(" (")[0] for target in table["targets"]] == ["sum by", "max by", "min by", "count by"]
    assert all(" by (cluster) " in target["expr"] for target in table["targets"])
    renamed = table["transformations"][-1]["options"]["renameByName"]
    assert sorted(renamed.values()) == [
        "Cluster", "Firing alerts", "Least SLO budget left", "Requests/s", "Worst error ratio"
    ]
    ecoeco = next(system for system in checked_systems if system.name == "ecoeco")
    local = dashboards_of(in_two_clusters(ecoeco), DEFAULT_CONFIG)[0]
    assert "Clusters side by side" not in {panel["title"] for panel in panels(local)}


def test_a_query_that_selects_a_fixed_cluster_is_refused_naming_the_query() -> None:
    refused = r"a selector that matches `cluster` itself in: sum\(up\{cluster=\"a\"\}\)"
    with pytest.raises(ClusterRewriteError, match=refused):
        query_for_ruler('sum(up{cluster="a"})', (A, B))


def test_grafana_variables_come_back_unchanged_where_they_stood() -> None:
    assert query_for_ruler(
        'sum(rate(up{namespace=~"$namespace"}[$__rate_interval])) '
        '/ on (job) group_left () max(up{cluster=~"$cluster"})',
        (A, B),
    ) == (
        'sum by (cluster) (rate(up{namespace=~"$namespace",cluster=~"$cluster"}[$__rate_interval])) '
        '/ on (job, cluster) group_left () max by (cluster) (up{cluster=~"$cluster"})'
    )
