"""What every rule component builds: groups of recording and alerting rules, each alert with the
runbook text that explains it and the promtool cases that prove it.

Components are pure functions of the inventory that return `RuleGroup`s; `obsbundle.rules`
turns them into PrometheusRule objects, plain rule files, promtool test files and runbooks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import quote_plus

from obsbundle.rules.templating import Description

Severity = Literal["critical", "warning", "info", "none"]


@dataclass(frozen=True)
class InputSeries:
    """One promtool input series: a series selector and its values in expanding notation."""

    series: str
    values: str


Inputs = tuple[InputSeries, ...]


def merge_inputs(*sets: Iterable[InputSeries]) -> Inputs:
    """Input series of several sets, each series once; a later set overrides an earlier one."""
    merged: dict[str, InputSeries] = {}
    for inputs in sets:
        for item in inputs:
            merged[item.series] = item
    return tuple(merged.values())


@dataclass(frozen=True)
class Recording:
    record: str
    expr: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"record": self.record, "expr": self.expr}
        if self.labels:
            rule["labels"] = dict(sorted(self.labels.items()))
        return rule


@dataclass(frozen=True)
class AlertDoc:
    """What one alert name means, shared by all its rules and written into its runbook."""

    name: str
    summary: str
    """A static sentence: the `summary` annotation."""
    meaning: str
    actions: tuple[str, ...]
    """What to do, in order."""


@dataclass(frozen=True)
class RunbookCheck:
    """A way to check an alert by hand, shown in the runbook."""

    title: str
    code: str
    language: Literal["promql", "shell"] = "shell"


@dataclass(frozen=True)
class Case:
    """The inputs that make one alert rule fire, and inputs that keep it quiet.

    `labels` and `value` are what the rule's expression returns for `firing` at `eval_time`;
    the test expects exactly that alert (static labels added, description rendered).
    `background`: the alert name fires on missing data, so its other rules need their quiet
    inputs in every test of this name.
    """

    firing: Inputs
    quiet: Inputs | None
    """None for an alert that cannot be quiet (Watchdog)."""
    labels: Mapping[str, str]
    value: float
    eval_time: str
    background: bool = False
    evaluation_interval: str = "1m"
    """Every 5 minutes for cases that take hours of test time and need no finer clock."""


@dataclass(frozen=True)
class Alert:
    """One alerting rule; several rules may share a name (one per service, pool, window…)."""

    doc: AlertDoc
    expr: str
    severity: Severity
    labels: Mapping[str, str]
    """Static labels other than severity: system, team, and the entity's labels."""
    description: Description
    runbook_url: str
    dashboard_url: str
    for_: str | None
    case: Case | None
    """None when the component writes this rule's tests itself (SLO burn rates)."""
    entity: str = ""
    """Who it is about, for the runbook's table: a service, a pool, `auth-service / availability`."""
    threshold: str = ""
    """The condition in words, for the runbook's table: `> 90 % for 5m`."""
    checks: tuple[RunbookCheck, ...] = ()
    extra_annotations: Mapping[str, str] = field(default_factory=dict)
    """The inventory's own annotations (an SLO's `alerting`), `{{ $labels.<name> }}` their only template."""

    @property
    def name(self) -> str:
        return self.doc.name

    @property
    def all_labels(self) -> dict[str, str]:
        return {**self.labels, "severity": self.severity}

    def annotations(self) -> dict[str, str]:
        return {
            "summary": self.doc.summary,
            **self.extra_annotations,
            "description": self.description.template(),
            "runbook_url": self.runbook_url,
            "dashboard_url": self.dashboard_url,
        }

    def expected_labels(self, series_labels: Mapping[str, str]) -> dict[str, str]:
        """Labels of the firing alert: the expression's labels, then the rule's (which win)."""
        return dict(sorted({**series_labels, **self.all_labels}.items()))

    def expected_annotations(self, series_labels: Mapping[str, str], value: float) -> dict[str, str]:
        labels = self.expected_labels(series_labels)
        return {
            **self.annotations(),
            **{name: _fill_labels(text, labels) for name, text in self.extra_annotations.items()},
            "description": self.description.render(value, labels),
            "dashboard_url": _fill_labels(self.dashboard_url, labels),
        }

    def to_dict(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"alert": self.name, "expr": self.expr}
        if self.for_:
            rule["for"] = self.for_
        rule["labels"] = dict(sorted(self.all_labels.items()))
        rule["annotations"] = self.annotations()
        return rule


_LABEL_REFERENCE = re.compile(r"\{\{\s*\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)\s*(\|\s*urlquery\s*)?\}\}")


def url_label(name: str) -> str:
    """The template of a label's value in a URL's query: Go's `urlquery` escapes it."""
    return f"{{{{ $labels.{name} | urlquery }}}}"


def _fill_labels(text: str, labels: Mapping[str, str]) -> str:
    """What Prometheus writes for a text whose only templates are `{{ $labels.<name> }}` and
    `{{ $labels.<name> | urlquery }}` (a label the alert lacks is empty, as in Go's templates;
    urlquery escapes as Go's url.QueryEscape: a space as +, every byte but letters, digits and -_.~)."""

    def value(match: re.Match[str]) -> str:
        found = labels.get(match.group(1), "")
        return quote_plus(found, safe="") if match.group(2) else found

    return _LABEL_REFERENCE.sub(value, text)


Rule = Recording | Alert


@dataclass(frozen=True)
class ExpectedAlert:
    """An alert a test expects to be firing, with the labels and value its expression gives it."""

    alert: Alert
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class AlertCheck:
    """At `eval_time`, exactly `firing` are the firing alerts named `alertname`."""

    eval_time: str
    alertname: str
    firing: tuple[ExpectedAlert, ...] = ()


@dataclass(frozen=True)
class SampleCheck:
    """At `eval_time`, `expr` returns exactly `samples` (series text, value)."""

    expr: str
    eval_time: str
    samples: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class UnitTest:
    """One promtool test: input series and what the rules must produce from them."""

    name: str
    inputs: Inputs
    alert_checks: tuple[AlertCheck, ...] = ()
    sample_checks: tuple[SampleCheck, ...] = ()
    evaluation_interval: str = "1m"
    """How often promtool evaluates the rules; tests of another interval go to a file of their own."""


@dataclass(frozen=True)
class RuleGroup:
    """A Prometheus rule group, and the promtool tests that come with it."""

    name: str
    interval: str
    rules: tuple[Rule, ...]
    depends_on: tuple[str, ...] = ()
    """Groups whose recorded series these rules read, in evaluation order; tests load them too."""
    tests: tuple[UnitTest, ...] = ()
    """Tests beyond each alert's own firing and quiet cases (scenarios, recorded values)."""

    @property
    def alerts(self) -> tuple[Alert, ...]:
        return tuple(rule for rule in self.rules if isinstance(rule, Alert))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "interval": self.interval,
            "rules": [rule.to_dict() for rule in self.rules],
        }


def with_rules_replaced(group: RuleGroup, new: Callable[[Rule], Rule]) -> RuleGroup:
    """`group` with each rule replaced by `new(rule)` (a pass that adds labels or text), and its own
    tests expecting the replaced alerts: a test built with the component's alert would otherwise
    expect the labels it had before the pass."""
    rules = tuple(new(rule) for rule in group.rules)
    fresh = {id(old): rule for old, rule in zip(group.rules, rules, strict=True) if isinstance(rule, Alert)}

    def expected(alert: ExpectedAlert) -> ExpectedAlert:
        return replace(alert, alert=fresh.get(id(alert.alert), alert.alert))

    def checked(check: AlertCheck) -> AlertCheck:
        return replace(check, firing=tuple(map(expected, check.firing)))

    tests = tuple(replace(test, alert_checks=tuple(map(checked, test.alert_checks))) for test in group.tests)
    return replace(group, rules=rules, tests=tests)
