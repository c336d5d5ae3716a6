"""The PromQL printer and the rewrite that keeps clusters apart, over every expression the default
fleet and the shipyard fixture generate (rules, alerts and the promtool tests' checked queries)."""

from __future__ import annotations

import re

import promql_parser
import pytest

from obsbundle.config import DEFAULT_CONFIG
from obsbundle.model import System
from obsbundle.promql_clusters import (
    CLUSTER,
    ClusterRewriteError,
    keep_clusters_apart,
    print_expr,
    series_in_cluster,
)
from obsbundle.rules import promtool_tests, rule_groups


def _generated_expressions(systems: dict[str, System]) -> list[str]:
    found: set[str] = set()
    for system in systems.values():
        for group in rule_groups(system, DEFAULT_CONFIG.rules):
            found.update(rule.expr for rule in group.rules)
            for content in promtool_tests.test_files(group).values():
                for test in content["tests"]:
                    found.update(check["expr"] for check in test.get("promql_expr_test", ()))
    return sorted(found)


@pytest.fixture(scope="module")
def expressions(rule_systems: dict[str, System]) -> list[str]:
    return _generated_expressions(rule_systems)


def _ast(expr: str) -> str:
    # promql-parser's repr is its Rust AST's Debug form: every node, matcher, modifier and literal.
    return repr(promql_parser.parse(expr))


def test_every_generated_expression_prints_back_to_the_same_syntax_tree(expressions: list[str]) -> None:
    assert len(expressions) > 1_000
    differing = [expr for expr in expressions if _ast(print_expr(expr)) != _ast(expr)]
    assert differing == []


@pytest.mark.parametrize(
    "expr",
    [
        'sum by (a) (rate(x{a="1"}[5m] offset 1m @ 100)) / on (b) group_left (c) topk(3, y) > bool 2 unless -z',
        'x + ignoring (a) group_right (b) y',
        "x[1h:5m] offset -1d",
        "rate(x[5m] @ end()) * y @ start()",
        'count_values("v", x) or quantile(0.5, x) or sum by () (x) or sum without (a) (x)',
        '{__name__="x",a=~"é\\\\.+"} != -Inf',
        'label_replace(x, "a", "$1", "b", "(.*)") > bool NaN',
        "-x ^ 2",
        '"a string\\n"',
    ],
)
def test_each_node_kind_prints_back_to_the_same_syntax_tree(expr: str) -> None:
    assert _ast(print_expr(expr)) == _ast(expr)


def _selectors(node: promql_parser.Expr) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []

    def visit(child: promql_parser.Expr) -> None:
        if isinstance(child, promql_parser.VectorSelector):
            found.append(child)

    promql_parser.walk(node, visit)
    return found


def _problems_keeping_clusters_apart(expr: str, clusters: list[str]) -> list[str]:
    """What in the rewritten `expr` would mix clusters, as sentences; empty when nothing does."""
    problems: list[str] = []
    wanted = (promql_parser.MatchOp.Equal, clusters[0]) if len(clusters) == 1 else (
        promql_parser.MatchOp.Re, "|".join(sorted(clusters)))

    # absent() needs an equality matcher to name the cluster it reports: one absent() per cluster.
    in_absent: set[str] = set()

    # absent() of anything but a selector has no labels: it must be labelled with its cluster.
    labelled: set[str] = set()

    def absent_selectors(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.Call) and node.func.name.startswith("absent"):
            in_absent.update(str(selector) for selector in _selectors(node))
        if isinstance(node, promql_parser.Call) and node.func.name == "label_replace":
            names_cluster = node.args[1].val == CLUSTER and node.args[2].val in clusters
            labelled.update([repr(node.args[0])] if names_cluster else [])

    promql_parser.walk(promql_parser.parse(expr), absent_selectors)

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            matched = [(m.op, m.value) for m in node.matchers.matchers if m.name == CLUSTER]
            allowed = [[(promql_parser.MatchOp.Equal, c)] for c in clusters] if str(node) in in_absent else [[wanted]]
            if matched not in allowed:
                problems.append(f"selector {node} matches cluster as {matched}")
        elif isinstance(node, promql_parser.AggregateExpr):
            modifier = node.modifier
            if modifier is None or (modifier.type == promql_parser.AggModifierType.By) != (CLUSTER in modifier.labels):
                problems.append(f"aggregation {node.op} drops cluster")
        elif isinstance(node, promql_parser.BinaryExpr) and node.modifier and node.modifier.matching:
            matching = node.modifier.matching
            if (matching.type == promql_parser.LabelModifierType.Include) != (CLUSTER in matching.labels):
                problems.append(f"vector match of {node.op} ignores cluster")
        elif isinstance(node, promql_parser.Call) and node.func.name.startswith("absent"):
            selects = isinstance(node.args[0], promql_parser.VectorSelector | promql_parser.MatrixSelector)
            if not selects and repr(node) not in labelled:
                problems.append("an absent() of an expression, whose result has no cluster")
        elif isinstance(node, promql_parser.Call) and node.func.name == "vector":
            problems.append("a vector() outside label_replace")

    def pre(node: promql_parser.Expr) -> bool:
        # vector(c) is allowed only as label_replace's first argument, which names the cluster.
        if isinstance(node, promql_parser.Call) and node.func.name == "label_replace":
            first = node.args[0]
            if isinstance(first, promql_parser.Call) and first.func.name == "vector":
                if node.args[1].val != CLUSTER or node.args[2].val not in clusters:
                    problems.append("a vector() labelled with another cluster")
                return False
        visit(node)
        return True

    promql_parser.walk(promql_parser.parse(expr), pre)
    return problems


@pytest.mark.parametrize("clusters", [["ecoeco-prod"], ["ecoeco-prod", "ecoeco-staging"]])
def test_after_the_rewrite_every_selector_aggregation_and_vector_match_keeps_the_cluster(
    expressions: list[str], clusters: list[str]
) -> None:
    problems = {
        expr: found for expr in expressions if (found := _problems_keeping_clusters_apart(
            keep_clusters_apart(expr, clusters), clusters))
    }
    assert problems == {}


def test_the_check_above_finds_each_way_an_expression_left_as_it_is_mixes_clusters() -> None:
    problems = _problems_keeping_clusters_apart("sum(x) / on (a) y or vector(0) or absent(z == 1)", ["a"])
    # x, y and z select every cluster; sum, on () and vector(0) merge them; absent() names none.
    assert len(problems) == 7


def test_the_rewrite_names_several_clusters_in_one_escaped_regex_matcher() -> None:
    assert keep_clusters_apart('up{job="x"}', ["eu.1", "us-1"]) == 'up{job="x",cluster=~"eu\\\\.1|us-1"}'


def test_a_bare_vector_becomes_one_sample_per_cluster_so_that_or_vector_zero_fills_each_cluster() -> None:
    assert keep_clusters_apart("sum(x) or vector(0)", ["a", "b"]) == (
        'sum by (cluster) (x{cluster=~"a|b"}) or '
        '(label_replace(vector(0), "cluster", "a", "", "") or label_replace(vector(0), "cluster", "b", "", ""))'
    )


def test_absent_gets_one_equality_matcher_per_cluster_so_that_its_alert_names_the_cluster() -> None:
    assert keep_clusters_apart('absent(up{job="x"})', ["a"]) == 'absent(up{job="x",cluster="a"})'
    assert keep_clusters_apart('absent(up{job="x"})', ["a", "b"]) == (
        '(absent(up{job="x",cluster="a"}) or absent(up{job="x",cluster="b"}))'
    )


@pytest.mark.parametrize(
    "expr",
    [
        'up{cluster="a"}',
        "sum without (cluster) (up)",
        "up * ignoring (cluster) up",
        "scalar(up) * up",
        'label_replace(up, "cluster", "x", "", "")',
    ],
)
def test_an_expression_that_would_mix_clusters_is_refused_with_the_expression_named(expr: str) -> None:
    with pytest.raises(ClusterRewriteError, match=re.escape(f"in: {expr}")):
        keep_clusters_apart(expr, ["a"])


def test_a_promtool_series_gains_the_cluster_label_with_or_without_a_metric_name() -> None:
    assert series_in_cluster('up{job="x"}', "a") == 'up{job="x",cluster="a"}'
    assert series_in_cluster("{}", "a") == '{cluster="a"}'
    assert series_in_cluster('{job="x"}', "a") == '{job="x",cluster="a"}'
