"""Series as real exporters expose them, as a stack's Prometheus stores them, and PromQL selectors
checked against them.

The exposition fixtures (`tests/fixtures/exposition/<exporter>/*.prom`) are parsed with
prometheus_client's own text parser. Each series is then given the target labels a scrape adds
(`instantiate`), honouring `honor_labels` as Prometheus does. Label values that name objects of
the user's cluster (a pod, a namespace, a consumer group) cannot match the fixture's examples, so
they become `ANY`: the label is there with some value. Everything else (label names, `le`, status
codes, condition names) must match exactly.

Selectors come from the PromQL AST (promql_parser). A selector of a recorded series is checked
against the label shape of the recording rule's expression (`shape`): the labels its result
carries, with their values where the expression fixes them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import promql_parser
from prometheus_client.parser import text_string_to_metric_families

from obsbundle.model import Instrumentation
from obsbundle.promql import vector_selectors

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "exposition"

ANY = "<any>"
"""A label value the cluster or the inventory decides: the label is present, its value unknown."""

INSTRUMENTATION_FIXTURES: Mapping[Instrumentation, str] = {
    Instrumentation.PROMETHEUS_CLIENT: "prometheus-client",
    Instrumentation.FASTAPI_INSTRUMENTATOR: "fastapi-instrumentator",
    Instrumentation.MICROMETER: "micrometer",
    Instrumentation.GRPC: "go-grpc-prometheus",
    Instrumentation.GRPC_SPRING: "grpc-spring",
}
"""The fixture folder of each instrumentation's exposition (custom has none: its names are the user's)."""

ENTITY_LABELS: Mapping[str, frozenset[str]] = {
    "kube-state-metrics": frozenset({
        "namespace", "pod", "container", "node", "uid", "deployment", "replicaset", "statefulset",
        "daemonset", "cronjob", "job_name", "horizontalpodautoscaler", "persistentvolumeclaim",
        "persistentvolume", "owner_name", "created_by_name", "host_ip", "pod_ip", "internal_ip",
        "scaletargetref_name", "volumename", "storageclass",
    }),
    "cadvisor": frozenset({"namespace", "pod", "container", "id", "name", "image"}),
    "kubelet": frozenset({"namespace", "persistentvolumeclaim", "node"}),
    "kafka-exporter": frozenset({"consumergroup", "topic", "partition"}),
    "argocd": frozenset({"name", "namespace", "project", "dest_namespace", "dest_server", "repo"}),
    "argo-rollouts": frozenset({"name", "namespace"}),
    "obsbundle-exporter": frozenset({"source", "queue", "datname", "usename", "database", "user"}),
    "prometheus-client": frozenset({"endpoint", "handler", "path"}),
    "fastapi-instrumentator": frozenset({"handler"}),
    "micrometer": frozenset({"uri", "application"}),
    "go-grpc-prometheus": frozenset({"grpc_service", "grpc_method"}),
    "grpc-spring": frozenset({"service", "method", "application"}),
}
"""Per fixture folder, the labels whose values name the user's objects (fixtures hold examples).
Every `label_*` of kube-state-metrics (a Kubernetes label's value) is one too."""


@dataclass(frozen=True, order=True)
class Series:
    """One series: a metric name and its labels (sorted, hashable)."""

    name: str
    labels: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, name: str, labels: Mapping[str, str]) -> Series:
        return cls(name, tuple(sorted((key, value) for key, value in labels.items() if value != "")))

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    def __str__(self) -> str:
        inner = ",".join(f'{key}="{value}"' for key, value in self.labels)
        return f"{self.name}{{{inner}}}"


def load(folder: str) -> list[Series]:
    """Every series of every `*.prom` file in `tests/fixtures/exposition/<folder>/`, as parsed by
    prometheus_client (histogram and summary samples under their own names: `_bucket`, `_count`)."""
    found: set[Series] = set()
    for path in sorted((FIXTURES / folder).glob("*.prom")):
        text = path.read_text(encoding="utf-8")
        # The parser names every counter sample `<family>_total`, but Prometheus stores the name as
        # exposed: postgres_exporter 0.11's counters (pg_stat_database_deadlocks) have no `_total`.
        exposed = {re.split(r"[{ ]", line, maxsplit=1)[0] for line in text.splitlines() if line[:1] not in ("", "#")}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                name = sample.name
                if name not in exposed and name.removesuffix("_total") in exposed:
                    name = name.removesuffix("_total")
                found.add(Series.of(name, sample.labels))
    return sorted(found)


def as_entities(series: Iterable[Series], folder: str) -> list[Series]:
    """`series` with each entity label's example value replaced by `ANY`."""
    entities = ENTITY_LABELS.get(folder, frozenset())
    kube = folder == "kube-state-metrics"
    return sorted({
        Series.of(one.name, {
            key: ANY if key in entities or (kube and key.startswith("label_")) else value
            for key, value in one.labels
        })
        for one in series
    })


def instantiate(series: Series, target: Mapping[str, str | None], *, honor_labels: bool) -> Series:
    """`series` as stored after a scrape of a target with these labels (None: a value the cluster
    decides). A clash between an exposed label and a target label goes to the exposed label under
    honorLabels; otherwise the target's wins and the exposed one is kept as `exported_<name>`."""
    labels = series.label_map
    for name, given in target.items():
        value = ANY if given is None else given
        if name not in labels:
            labels[name] = value
        elif not honor_labels:
            exported = f"exported_{name}"
            while exported in labels:
                exported = f"exported_{exported}"
            labels[exported] = labels[name]
            labels[name] = value
    return Series.of(series.name, labels)


def up(target: Mapping[str, str | None]) -> Series:
    """The `up` series Prometheus writes for a target."""
    return Series.of("up", {name: ANY if value is None else value for name, value in target.items()})


# --- selectors -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    """`=`, `!=`, `=~` or `!~`."""
    value: str

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'

    def holds(self, value: str | None) -> bool:
        """Whether a label with this value passes (None: not known whether the label is there; "":
        absent; `ANY`: present with an unknown value)."""
        if value is None:
            return True
        if value == ANY:
            match self.op:
                case "=":
                    return self.value != ""
                case "=~":
                    return self.value not in ("", "^$")
                case "!~":
                    return self.value not in (".*", ".+")
                case _:
                    return True
        match self.op:
            case "=":
                return value == self.value
            case "!=":
                return value != self.value
            case "=~":
                return re.fullmatch(self.value, value) is not None
            case _:
                return re.fullmatch(self.value, value) is None


_OPS = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~", "MatchOp.NotRe": "!~"}


@dataclass(frozen=True)
class Selector:
    """A vector selector (alone or inside a range), as written."""

    text: str
    name: str | None
    matchers: tuple[Matcher, ...]

    @property
    def label_matchers(self) -> tuple[Matcher, ...]:
        return tuple(matcher for matcher in self.matchers if matcher.name != "__name__")

    def names(self, known: Iterable[str]) -> list[str]:
        """The metric names this selector can select among `known`."""
        if self.name:
            return [self.name]
        by_name = [matcher for matcher in self.matchers if matcher.name == "__name__"]
        return sorted(name for name in known if all(matcher.holds(name) for matcher in by_name))

    def failing(self, labels: Mapping[str, str]) -> list[Matcher]:
        return [matcher for matcher in self.label_matchers if not matcher.holds(labels.get(matcher.name, ""))]


def _selector(node: promql_parser.VectorSelector) -> Selector:
    matchers = tuple(
        Matcher(matcher.name, _OPS[str(matcher.op)], matcher.value) for matcher in node.matchers.matchers
    )
    return Selector(str(node), node.name, matchers)


def selectors(expr: str) -> list[Selector]:
    """Every vector selector of a PromQL expression, in the order the parser walks them."""
    return [_selector(node) for node in vector_selectors(expr)]


# --- the label shape of an expression's result ---------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """The labels of an expression's result series.

    `labels` maps a label to its value where the expression fixes it, to `ANY` where it is surely
    there, and to None where it may be there. An open shape may carry any other label of its
    inputs, except those in `dropped`; a closed one carries only `labels`.
    """

    labels: Mapping[str, str | None]
    open: bool
    dropped: frozenset[str] = field(default_factory=frozenset)

    def value(self, name: str) -> str | None:
        """The label's value, ANY, "" (surely absent) or None (not known)."""
        if name in self.labels:
            return self.labels[name]
        if self.open and name not in self.dropped:
            return None
        return ""

    def keep(self, names: Iterable[str]) -> Shape:
        kept = set(names)
        return Shape({name: self.value(name) for name in kept if self.value(name) != ""}, open=False)

    def without(self, names: Iterable[str]) -> Shape:
        gone = frozenset(names)
        kept = {name: value for name, value in self.labels.items() if name not in gone}
        return Shape(kept, self.open, self.dropped | gone)

    def adding(self, labels: Mapping[str, str | None]) -> Shape:
        return Shape({**self.labels, **labels}, self.open, self.dropped - set(labels))


def _union(left: Shape, right: Shape) -> Shape:
    names = set(left.labels) | set(right.labels)
    merged = {name: left.value(name) if left.value(name) == right.value(name) else None for name in names}
    return Shape(merged, left.open or right.open, left.dropped & right.dropped)


_KEEPS_INPUT = frozenset({"topk", "bottomk", "limitk", "limit_ratio"})


def shape(node: object) -> Shape | None:
    """The label shape of a parsed expression's result, or None for a scalar or string."""
    match node:
        case promql_parser.VectorSelector():
            fixed: dict[str, str | None] = {}
            absent: set[str] = set()
            for matcher in _selector(node).label_matchers:
                if matcher.op == "=" and matcher.value:
                    fixed[matcher.name] = matcher.value
                elif matcher.op == "=":
                    absent.add(matcher.name)
            return Shape(fixed, open=True, dropped=frozenset(absent))
        case promql_parser.MatrixSelector():
            return shape(node.vector_selector)
        case promql_parser.SubqueryExpr() | promql_parser.ParenExpr() | promql_parser.UnaryExpr():
            return shape(node.expr)
        case promql_parser.AggregateExpr():
            return _aggregate(node)
        case promql_parser.BinaryExpr():
            return _binary(node)
        case promql_parser.Call():
            return _call(node)
        case _:
            return None


def _aggregate(node: promql_parser.AggregateExpr) -> Shape:
    inner = shape(node.expr)
    assert inner is not None, f"aggregation of a scalar: {node}"
    op = str(node.op)
    if op in _KEEPS_INPUT:
        return inner
    modifier = node.modifier
    if modifier is None:
        result = Shape({}, open=False)
    elif str(modifier.type) == "AggModifierType.By":
        result = inner.keep(modifier.labels)
    else:
        result = inner.without(modifier.labels)
    if op == "count_values":
        assert isinstance(node.param, promql_parser.StringLiteral)
        result = result.adding({node.param.val: ANY})
    return result


def _binary(node: promql_parser.BinaryExpr) -> Shape | None:
    left, right = shape(node.lhs), shape(node.rhs)
    if left is None or right is None:
        return left or right
    op = str(node.op)
    if op in ("and", "unless"):
        return left
    if op == "or":
        return _union(left, right)
    modifier = node.modifier
    if modifier is None:
        return left
    card = str(modifier.card)
    base, other = (right, left) if card == "VectorMatchCardinality.OneToMany" else (left, right)
    matching = modifier.matching
    if card == "VectorMatchCardinality.OneToOne" and matching is not None:
        if str(matching.type) == "LabelModifierType.Include":
            return base.keep(matching.labels)
        return base.without(matching.labels)
    return base.adding({name: other.value(name) or None for name in modifier.group_labels or ()})


def _call(node: promql_parser.Call) -> Shape | None:
    name = node.func.name
    if node.func.return_type == promql_parser.ValueType.Scalar:
        return None
    if name in ("absent", "absent_over_time"):
        inner = shape(node.args[0])
        assert inner is not None
        return Shape({key: value for key, value in inner.labels.items() if value not in (None, ANY)}, open=False)
    if name == "vector":
        return Shape({}, open=False)
    if name == "histogram_quantile":
        inner = shape(node.args[1])
        assert inner is not None
        return inner.without(["le"])
    shapes = [found for found in (shape(arg) for arg in node.args) if found is not None]
    if not shapes:
        return Shape({}, open=False)
    if name in ("label_replace", "label_join"):
        return shapes[0].adding({node.args[1].val: None})
    return shapes[0]


# --- checking selectors --------------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """A series a generated rule writes: a recording rule's output, or `ALERTS` of an alert."""

    where: str
    shape: Shape
    labels: Mapping[str, str]
    """The rule's own labels (and an alert's `alertname`): fixed values that win over the expression's."""

    def refutes(self, selector: Selector) -> list[str]:
        """Why `selector` can select none of this rule's series (empty: it can select some)."""
        reasons = []
        for matcher in selector.label_matchers:
            value = self.labels[matcher.name] if matcher.name in self.labels else self.shape.value(matcher.name)
            if not matcher.holds(value):
                has = "no such label" if value == "" else f"{matcher.name}={value!r}"
                reasons.append(f"{matcher} ({has})")
        return reasons


def recorded_series(rules: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[str, list[Recorded]]:
    """By metric name, what each (where, rule as in a rule file) writes."""
    found: dict[str, list[Recorded]] = {}
    for where, rule in rules:
        expr_shape = shape(promql_parser.parse(str(rule["expr"])))
        labels = {str(key): str(value) for key, value in (rule.get("labels") or {}).items()}
        if expr_shape is None:
            expr_shape = Shape({}, open=False)
        if "record" in rule:
            found.setdefault(str(rule["record"]), []).append(Recorded(where, expr_shape, labels))
        else:
            alert_shape = expr_shape.adding({"alertstate": ANY})
            labels["alertname"] = str(rule["alert"])
            found.setdefault("ALERTS", []).append(Recorded(where, alert_shape, labels))
    return found


def nearest(selector: Selector, series: Sequence[Series]) -> str:
    """The real series closest to `selector`: of the same name with the fewest failing matchers
    (and which fail), else the closest metric name."""
    wanted = selector.names({one.name for one in series})
    same = [one for one in series if one.name in wanted]
    if same:
        best = min(same, key=lambda one: (len(selector.failing(one.label_map)), str(one)))
        failing = selector.failing(best.label_map)
        differs = "; ".join(
            f"{matcher} but has {matcher.name}={best.label_map.get(matcher.name, '')!r}" for matcher in failing
        )
        return f"nearest: {best} ({differs})"
    names = sorted({one.name for one in series})
    close = difflib.get_close_matches(selector.name or "", names, n=3, cutoff=0.0)
    if not close:
        return "no fixture series at all"
    return f"no series named {selector.name}; closest names: {', '.join(close)}"


def matches_any(selector: Selector, series: Iterable[Series]) -> bool:
    return any(
        one.name in selector.names([one.name]) and not selector.failing(one.label_map) for one in series
    )


def iter_rules(groups: Iterable[Mapping[str, Any]]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(where, rule) for every rule of rule groups as written to a rule file."""
    for group in groups:
        rules: list[Mapping[str, Any]] = group["rules"]
        for rule in rules:
            kind, name = ("alert", rule["alert"]) if "alert" in rule else ("record", rule["record"])
            yield f"group {group['name']} / {kind} {name}", rule
