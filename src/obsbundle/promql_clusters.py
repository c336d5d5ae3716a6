"""PromQL for a ruler that sees many clusters: a printer over promql-parser's AST, and the one
rewrite that keeps a system's `cluster` apart in every expression.

A global ruler (Thanos Ruler, Mimir's ruler, a Prometheus receiving remote_write) evaluates rules
over the series of every cluster, each carrying its Prometheus's `cluster` external label. A rule
written for one Prometheus selects by namespace and service and aggregates the label away, so on
such a ruler two clusters that run the same system are summed together, and a healthy cluster pages
with a broken one. `keep_clusters_apart` rewrites an expression so that:

- every vector selector matches the system's clusters (`cluster="a"`, or `cluster=~"a|b"`);
- every aggregation keeps `cluster`: `by (...)` gains it, a bare `sum(...)` becomes
  `sum by (cluster) (...)`, and a `without (...)` that names it is refused;
- every `on (...)` matches on it, and an `ignoring (...)` that names it is refused;
- a `vector(c)` (an objective, an `or vector(0)`), which has no labels, becomes one sample per
  cluster (`label_replace(vector(c), "cluster", "a", "", "")`, or-ed over the clusters);
- an `absent(...)` gets one equality matcher per cluster (or-ed), so that its result names the
  cluster that lacks the series, as `absent` copies only equality matchers' labels;
- a `label_replace` or `label_join` that writes `cluster`, and `scalar(...)` (which turns the
  samples of several clusters into NaN), are refused.

promql-parser's AST objects are immutable and their `str()` is no faithful printer (a bare selector
prints `y{}`), so `_Printer` prints every node kind itself; `print_expr` is that printer without
the rewrite, and tests prove it returns the AST it was given for every generated expression.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import promql_parser as ast

from obsbundle.promql import quote, regex_literal

CLUSTER = "cluster"
"""The external label that names a series' cluster (Prometheus's `global.external_labels`)."""


class ClusterRewriteError(ValueError):
    """An expression that cannot keep clusters apart: it names `cluster` itself, or uses a
    construct (`scalar`, `without (cluster)`) whose result would mix clusters."""


# promql-parser's enums are not hashable: pairs, looked up by equality.
_MATCH_OPS = (
    (ast.MatchOp.Equal, "="),
    (ast.MatchOp.NotEqual, "!="),
    (ast.MatchOp.Re, "=~"),
    (ast.MatchOp.NotRe, "!~"),
)
_GROUPS = (
    (ast.VectorMatchCardinality.ManyToOne, "group_left"),
    (ast.VectorMatchCardinality.OneToMany, "group_right"),
)

_ABSENT = frozenset({"absent", "absent_over_time"})
_RELABEL = frozenset({"label_replace", "label_join"})


def print_expr(expr: str) -> str:
    """`expr` printed back from its AST, unchanged in meaning: the printer the rewrite uses.
    Raises ValueError on PromQL that does not parse."""
    return _Printer(()).node(ast.parse(expr))


def keep_clusters_apart(expr: str, clusters: Sequence[str], *, chosen: str | None = None) -> str:
    """`expr` rewritten to select only `clusters` and keep each apart in every aggregation and
    vector match (see the module's docstring). Raises ClusterRewriteError when it cannot.

    `chosen`, a regex that picks some of `clusters` (a dashboard's `$cluster`, stood in for by a
    token), is what selectors match instead: a selector that already matches `cluster=~chosen`
    keeps that matcher, one without it gains it; `vector()` still yields one sample per cluster
    of `clusters`, which a vector match on `cluster` then narrows to the chosen ones."""
    if not clusters:
        raise ValueError("at least one cluster is needed")
    try:
        return _Printer(tuple(sorted(set(clusters))), chosen).node(ast.parse(expr))
    except ClusterRewriteError as error:
        raise ClusterRewriteError(f"{error} in: {expr}") from None


@functools.lru_cache(maxsize=1 << 16)  # a test file repeats its series in test after test: parse each once
def series_in_cluster(series: str, cluster: str) -> str:
    """A promtool series (`metric{a="x"}`, or `{a="x"}` for an expression's result without a name)
    with the `cluster` label a remote-written or Thanos series carries."""
    if series.strip() == "{}":
        return "{" + f"{CLUSTER}={quote(cluster)}" + "}"
    return _Printer((cluster,)).node(ast.parse(series))


@dataclass(frozen=True)
class _Printer:
    clusters: tuple[str, ...]
    """The clusters to keep apart; empty: print the expression as it is."""
    chosen: str | None = None
    """The regex selectors match `cluster` with, when not `clusters` themselves."""

    def node(self, node: ast.Expr) -> str:
        if isinstance(node, ast.VectorSelector):
            return self._selector(node)
        if isinstance(node, ast.MatrixSelector):
            selector = node.vector_selector
            return self._selector(selector, f"[{_duration(node.range)}]")
        if isinstance(node, ast.SubqueryExpr):
            step = _duration(node.step) if node.step is not None else ""
            return f"{self.node(node.expr)}[{_duration(node.range) if node.range else ''}:{step}]" + _modifiers(
                node.offset, node.at
            )
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.AggregateExpr):
            return self._aggregate(node)
        if isinstance(node, ast.BinaryExpr):
            return self._binary(node)
        if isinstance(node, ast.UnaryExpr):
            return "-" + self.node(node.expr)
        if isinstance(node, ast.ParenExpr):
            return "(" + self.node(node.expr) + ")"
        if isinstance(node, ast.NumberLiteral):
            return _number(node.val)
        if isinstance(node, ast.StringLiteral):
            return quote(node.val)
        raise TypeError(f"unknown PromQL node {type(node).__name__}")

    def _selector(self, node: ast.VectorSelector, range_: str = "") -> str:
        if node.matchers.or_matchers:
            # `{a="x" or b="y"}` came after Prometheus 2.42, which the generated rules target.
            raise ValueError("or-ed matchers are not supported")
        matchers = [f"{m.name}{_lookup(_MATCH_OPS, m.op)}{quote(m.value)}" for m in node.matchers.matchers]
        if self.clusters:
            own = [m for m in node.matchers.matchers if m.name == CLUSTER]
            if not own:
                matchers.append(self._cluster_matcher())
            elif self.chosen is None or any(m.op != ast.MatchOp.Re or m.value != self.chosen for m in own):
                raise ClusterRewriteError("a selector that matches `cluster` itself")
        text = (node.name or "") + ("{" + ",".join(matchers) + "}" if matchers else "")
        return text + range_ + _modifiers(node.offset, node.at)

    def _cluster_matcher(self) -> str:
        if self.chosen is not None:
            return f"{CLUSTER}=~{quote(self.chosen)}"
        if len(self.clusters) == 1:
            return f"{CLUSTER}={quote(self.clusters[0])}"
        return f"{CLUSTER}=~{quote('|'.join(regex_literal(c) for c in self.clusters))}"

    def _call(self, node: ast.Call) -> str:
        name = node.func.name
        if self.clusters:
            if name == "scalar":
                raise ClusterRewriteError("scalar(), which would turn several clusters' samples into NaN,")
            if name in _RELABEL and _string_arg(node.args[1]) == CLUSTER:
                raise ClusterRewriteError(f"{name}() that writes `cluster`")
            if name == "vector":
                # vector(c) has no labels: one sample per cluster, each labelled as its series are.
                return self._each_cluster(lambda cluster: _labelled(self._plain_call(node), cluster))
            if name in _ABSENT:
                # absent() copies the labels of a bare selector's equality matchers, and of nothing
                # else (`absent(up == 1)` has none): one absent() per cluster, labelled if need be.
                selects = isinstance(node.args[0], ast.VectorSelector | ast.MatrixSelector)

                def absent_in(cluster: str) -> str:
                    text = _Printer((cluster,))._plain_call(node)
                    return text if selects else _labelled(text, cluster)

                return self._each_cluster(absent_in)
        return self._plain_call(node)

    def _each_cluster(self, text: Callable[[str], str]) -> str:
        if len(self.clusters) == 1:
            return text(self.clusters[0])
        return "(" + " or ".join(text(cluster) for cluster in self.clusters) + ")"

    def _plain_call(self, node: ast.Call) -> str:
        return node.func.name + "(" + ", ".join(self.node(arg) for arg in node.args) + ")"

    def _aggregate(self, node: ast.AggregateExpr) -> str:
        modifier = node.modifier
        clause = ""
        if modifier is not None:
            labels = list(modifier.labels)
            if modifier.type == ast.AggModifierType.By:
                clause = f" by ({', '.join(self._with_cluster(labels))})"
            else:
                if self.clusters and CLUSTER in labels:
                    raise ClusterRewriteError("an aggregation `without (cluster)`")
                clause = f" without ({', '.join(labels)})"
        elif self.clusters:
            clause = f" by ({CLUSTER})"
        operands = [self.node(node.param)] if node.param is not None else []
        operands.append(self.node(node.expr))
        return f"{node.op}{clause}{' ' if clause else ''}({', '.join(operands)})"

    def _with_cluster(self, labels: list[str]) -> list[str]:
        return [*labels, CLUSTER] if self.clusters and CLUSTER not in labels else labels

    def _binary(self, node: ast.BinaryExpr) -> str:
        parts = [self.node(node.lhs), str(node.op)]
        modifier = node.modifier
        if modifier is not None:
            fill = modifier.fill_values
            if fill.lhs is not None or fill.rhs is not None:
                # fill() came after Prometheus 2.42, which the generated rules target.
                raise ValueError("fill modifiers are not supported")
            if modifier.return_bool:
                parts.append("bool")
            matching = modifier.matching
            if matching is not None:
                labels = list(matching.labels)
                if matching.type == ast.LabelModifierType.Include:
                    parts.append(f"on ({', '.join(self._with_cluster(labels))})")
                else:
                    if self.clusters and CLUSTER in labels:
                        raise ClusterRewriteError("a vector match `ignoring (cluster)`")
                    parts.append(f"ignoring ({', '.join(labels)})")
            group = _lookup(_GROUPS, modifier.card)
            if group:
                parts.append(f"{group} ({', '.join(modifier.group_labels or [])})")
        parts.append(self.node(node.rhs))
        return " ".join(parts)


def _labelled(expr: str, cluster: str) -> str:
    """`expr`'s samples with the `cluster` label set to `cluster`."""
    return f"label_replace({expr}, {quote(CLUSTER)}, {quote(cluster)}, \"\", \"\")"


def _lookup(pairs: tuple[tuple[object, str], ...], key: object) -> str:
    return next((text for candidate, text in pairs if candidate == key), "")


def _string_arg(node: object) -> str | None:
    return node.val if isinstance(node, ast.StringLiteral) else None


def _modifiers(offset: timedelta | None, at: ast.AtModifier | None) -> str:
    text = ""
    if offset is not None:
        text += " offset " + ("-" + _duration(-offset) if offset < timedelta(0) else _duration(offset))
    if at is not None:
        if at.type == ast.AtModifierType.Start:
            text += " @ start()"
        elif at.type == ast.AtModifierType.End:
            text += " @ end()"
        else:
            assert at.at is not None
            text += f" @ {at.at.timestamp():.3f}"
    return text


def _duration(delta: timedelta) -> str:
    return ast.display_duration(delta)


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)
