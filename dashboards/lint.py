"""Conventions every generated dashboard keeps, checked on its JSON.

The rules are grafana/dashboard-linter's, plus kubernetes-mixin's (cluster and namespace
variables, uids, links) and a few of the house style's own. Two of the linter's rules are
replaced rather than skipped, each for a reason given at `REPLACED`. A rule returns problems as
sentences naming the dashboard, the panel and, for a query, its refId. PromQL parsing itself is
promtool's job (`walk.expressions()` hands the queries over with variables substituted); here a
small tokenizer finds selectors, ranges and the function around them.

A command as well, for dashboards generated from any inventory (exit 1 on a problem, 2 when a
file is no dashboard):

    python -m obsbundle.dashboards.lint out/<system>/dashboards [PATH ...]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from obsbundle.dashboards.panels import DATASOURCE_VARIABLE, FIRST_FREE_ID, FULL_WIDTH
from obsbundle.dashboards.queries import CLUSTER_MATCHER, RATE_INTERVAL
from obsbundle.dashboards.variables import CLUSTER_VARIABLE, NAMESPACE_VARIABLE, referenced
from obsbundle.dashboards.walk import LABEL_VALUES, panels, targets
from obsbundle.links import PanelId

REPLACED: Mapping[str, str] = {
    "template-job-rule": "replaced by template-required-variables-rule: targets are selected by the `cluster`, "
    "`namespace` and `service` labels the monitors set (kubernetes-mixin's convention), not by job names, "
    "which Prometheus Operator derives from object names",
    "template-instance-rule": "replaced by template-required-variables-rule, for the same reason: an instance "
    "variable has no meaning on a dashboard of a service or a node pool",
    "target-job-rule": "replaced by target-required-matchers-rule with `cluster=~\"$cluster\"`",
    "target-instance-rule": "replaced by target-required-matchers-rule with `cluster=~\"$cluster\"`",
}
"""The linter's rules this module does not apply as written, and why."""

VALID_UNITS = frozenset(
    {
        "none", "short", "percent", "percentunit", "s", "ms", "µs", "ns", "m", "h", "d", "dtdurations",
        "bytes", "decbytes", "bits", "Bps", "binBps", "bps", "reqps", "ops", "rps", "wps", "iops", "cps",
        "dateTimeFromNow", "dateTimeAsIso", "bool", "bool_yes_no", "bool_on_off",
    }
)
"""The Grafana units the house style may use: a subset of the linter's list of valid units."""

QUERY_PANELS = frozenset({"timeseries", "stat", "table", "bargauge", "heatmap", "state-timeline", "gauge"})
NO_QUERY_PANELS = frozenset({"row", "text"})
"""Panels without queries: rows group panels, text shows inventory facts; neither has a unit to set."""
RATE_FUNCTIONS = frozenset({"rate", "irate"})
COUNTER_FUNCTIONS = frozenset({"rate", "irate", "increase"})


@dataclass(frozen=True)
class LintFinding:
    """One broken convention of one dashboard (an inventory mistake is an `obsbundle.errors.Problem`)."""

    rule: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.where}: {self.message}"


def lint(dashboard: Mapping[str, Any]) -> list[LintFinding]:
    """Every convention the dashboard breaks; an empty list means it keeps them all."""
    problems: list[LintFinding] = []
    for rule in DASHBOARD_RULES:
        problems.extend(rule(dashboard))
    return problems


# --- dashboard rules ------------------------------------------------------------------------------


def _variables(dashboard: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(dashboard.get("templating", {}).get("list", []))


def template_datasource_rule(dashboard: Mapping[str, Any]) -> Iterator[LintFinding]:
    found = [v for v in _variables(dashboard) if v["type"] == "datasource"]
    where = dashboard["title"]
    if len(found) != 1:
        yield LintFinding("template-datasource-rule", where, f"has {len(found)} datasource variables, wants one")
        return
    variable = found[0]
    if variable["name"] != DATASOURCE_VARIABLE or variable.get("label") != "Data source":
        yield LintFinding("template-datasource-rule", where, "the datasource variable must be `datasource`, "
                      f"labelled 'Data source' (is {variable['name']}, {variable.get('label')!r})")
    if variable.get("query") != "prometheus":
        yield LintFinding("template-datasource-rule", where, "the datasource variable must list Prometheus datasources")


def template_on_time_change_reload_rule(dashboard: Mapping[str, Any]) -> Iterator[LintFinding]:
    for variable in _variables(dashboard):
        if variable["type"] == "query" and variable.get("refresh") != 2:
            yield LintFinding("template-on-time-change-reload-rule", dashboard["title"],
                          f"variable {variable['name']} must refresh on time range change (2)")


def template_label_promql_rule(dashboard: Mapping[str, Any]) -> Iterator[LintFinding]:
    for variable in _variables(dashboard):
        if variable["type"] == "query" and not LABEL_VALUES.match(variable.get("query", "")):
            yield LintFinding("template-label-promql-rule", dashboard["title"],
                          f"variable {variable['name']} must be label_values(<selector>, <label>)")


def template_required_variables_rule(dashboard: Mapping[str, Any]) -> Iterator[LintFinding]:
    """`cluster` everywhere; `namespace` wherever a query uses it (kubernetes-mixin)."""
    names = {variable["name"] for variable in _variables(dashboard)}
    used = set().union(*(referenced(target["expr"]) for _, target in targets(dashboard)))
    if CLUSTER_VARIABLE not in names:
        yield LintFinding("template-required-variables-rule", dashboard["title"], "has no `cluster` variable")
    if NAMESPACE_VARIABLE in used and NAMESPACE_VARIABLE not in names:
        yield LintFinding("template-required-variables-rule", dashboard["title"],
                      "queries use $namespace but the dashboard has no `namespace` variable")


def template_unused_rule(dashboard: Mapping[str, Any]) -> Iterator[LintFinding]:
    used = set().union(
        *(referenced(target["expr"]) for _, target in targets(dashboard)),
        *(referenced(variable.get("query", "")) for variable in _variables(dashboard)),
    )
    for variable in _variables(dashboard):
        if variable["type"] != "datasource" and variable["name"] not in used:
            yield LintFinding("template-unused-rule", dashboard["title"], f"variable {variable['name']} is never used")


def uneditable_dashboard_rule(dashboard: Mapping[str, Any]) -> Iterator[LintFinding]:
    if dashboard.get("editable") is not False:
        yield LintFinding("uneditable-dashboard-rule", dashboard["title"],
                      "generated dashboards must not be editable: the next generation would overwrite the edits")


def dashboard_identity_rule(dashboard: Mapping[str, Any]) -> Iterator[LintFinding]:
    """A stable uid Grafana accepts, tags to find it by, links to its siblings, no database id."""
    where = dashboard["title"]
    uid = dashboard.get("uid") or ""
    if not re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", uid):
        yield LintFinding("dashboard-identity-rule", where, f"uid {uid!r} is not 1–40 letters, digits, '-' or '_'")
    if not dashboard.get("tags"):
        yield LintFinding("dashboard-identity-rule", where, "has no tags")
    if not dashboard.get("links"):
        yield LintFinding("dashboard-identity-rule", where, "links to no other dashboard")
    if dashboard.get("id") is not None:
        yield LintFinding("dashboard-identity-rule", where, "has a database id: provisioning must assign it")


# --- panel rules ----------------------------------------------------------------------------------


def _where(dashboard: Mapping[str, Any], panel: Mapping[str, Any]) -> str:
    return f"{dashboard['title']} / {panel.get('title') or panel.get('id')}"


def _uses_datasource_variable(reference: Any) -> bool:
    uid = reference.get("uid") if isinstance(reference, dict) else reference
    return uid in (f"${DATASOURCE_VARIABLE}", f"${{{DATASOURCE_VARIABLE}}}")


def panel_rules(dashboard: Mapping[str, Any]) -> Iterator[LintFinding]:
    """panel-datasource, panel-title-description, panel-units and panel-no-targets rules."""
    for panel in panels(dashboard):
        kind, where = panel.get("type"), _where(dashboard, panel)
        if kind == "row":
            continue
        if not panel.get("title") or not panel.get("description"):
            yield LintFinding("panel-title-description-rule", where, "needs a title and a description")
        if kind in NO_QUERY_PANELS:
            continue
        if kind not in QUERY_PANELS:
            yield LintFinding("panel-type-rule", where, f"panel type {kind!r} is not one of the house style's")
        if not panel.get("targets"):
            yield LintFinding("panel-no-targets-rule", where, "has no queries")
        if not _uses_datasource_variable(panel.get("datasource")):
            yield LintFinding("panel-datasource-rule", where, "must use the $datasource variable")
        unit = _unit(panel)
        if unit not in VALID_UNITS:
            yield LintFinding("panel-units-rule", where, f"has no or an invalid unit: {unit!r}")


def _unit(panel: Mapping[str, Any]) -> str | None:
    if panel.get("type") == "heatmap":
        unit = panel.get("options", {}).get("yAxis", {}).get("unit")
        return str(unit) if unit else None
    unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
    return str(unit) if unit else None


def panel_id_rule(dashboard: Mapping[str, Any]) -> Iterator[LintFinding]:
    """Unique ids; below FIRST_FREE_ID only the PanelIds that alerts link to."""
    seen: set[int] = set()
    known = {int(member) for member in PanelId}
    for panel in panels(dashboard):
        panel_id, where = panel.get("id"), _where(dashboard, panel)
        if not isinstance(panel_id, int):
            yield LintFinding("panel-id-rule", where, "has no id")
            continue
        if panel_id in seen:
            yield LintFinding("panel-id-rule", where, f"id {panel_id} is used twice")
        seen.add(panel_id)
        if panel_id < FIRST_FREE_ID and panel_id not in known:
            yield LintFinding("panel-id-rule", where, f"id {panel_id} is below {FIRST_FREE_ID} but no PanelId")


def grid_rule(dashboard: Mapping[str, Any]) -> Iterator[LintFinding]:
    """Panels fit the 24-column grid and do not overlap.

    A collapsed row's panels take space only once the row is opened, so they are checked among
    themselves, not against the rows that follow it.
    """
    top_level = list(dashboard.get("panels", []))
    yield from _no_overlap(dashboard, top_level)
    for row in top_level:
        if row.get("collapsed"):
            yield from _no_overlap(dashboard, row.get("panels", []))


def _no_overlap(dashboard: Mapping[str, Any], placed: Sequence[Mapping[str, Any]]) -> Iterator[LintFinding]:
    taken: dict[tuple[int, int], str] = {}
    for panel in placed:
        grid, where = panel.get("gridPos") or {}, _where(dashboard, panel)
        x, y, w, h = (grid.get(key, -1) for key in ("x", "y", "w", "h"))
        if min(x, y) < 0 or w < 1 or h < 1 or x + w > FULL_WIDTH:
            yield LintFinding("grid-rule", where, f"does not fit the grid: {grid}")
            continue
        for cell in ((column, row) for column in range(x, x + w) for row in range(y, y + h)):
            if cell in taken:
                yield LintFinding("grid-rule", where, f"overlaps {taken[cell]}")
                break
            taken[cell] = where


# --- target rules ---------------------------------------------------------------------------------


def target_rules(dashboard: Mapping[str, Any]) -> Iterator[LintFinding]:
    """target-datasource, target-rate-interval, target-counter-agg and target-required-matchers rules."""
    for panel, target in targets(dashboard):
        where = f"{_where(dashboard, panel)} / {target.get('refId')}"
        if not _uses_datasource_variable(target.get("datasource")):
            yield LintFinding("target-datasource-rule", where, "must use the $datasource variable")
        try:
            selectors = list(parse_selectors(target["expr"]))
        except ValueError as error:
            yield LintFinding("target-promql-rule", where, str(error))
            continue
        for found in selectors:
            if found.range is not None and found.function in RATE_FUNCTIONS and found.range != RATE_INTERVAL:
                yield LintFinding("target-rate-interval-rule", where,
                              f"{found.function}() over [{found.range}] must use [{RATE_INTERVAL}]")
            if found.metric.endswith("_total") and (found.range is None or found.function not in COUNTER_FUNCTIONS):
                yield LintFinding("target-counter-agg-rule", where,
                              f"counter {found.metric} must be read through rate, irate or increase")
            if CLUSTER_MATCHER not in found.matchers:
                yield LintFinding("target-required-matchers-rule", where, f"{found.metric} lacks {CLUSTER_MATCHER}")


DASHBOARD_RULES: Sequence[Callable[[Mapping[str, Any]], Iterator[LintFinding]]] = (
    template_datasource_rule,
    template_on_time_change_reload_rule,
    template_label_promql_rule,
    template_required_variables_rule,
    template_unused_rule,
    uneditable_dashboard_rule,
    dashboard_identity_rule,
    panel_rules,
    panel_id_rule,
    grid_rule,
    target_rules,
)


# --- a PromQL tokenizer, enough to find selectors and what encloses them ---------------------------


@dataclass(frozen=True)
class Selector:
    """A vector selector: its metric name, its matchers as written, the range after it if any, and the
    function whose argument it is (None at top level or inside an operator)."""

    metric: str
    matchers: tuple[str, ...]
    range: str | None
    function: str | None


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
      | (?P<range>\[[^\]]*\])
      | (?P<number>\d+(?:\.\d+)?(?:e[+-]?\d+)?)
      | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
      | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=(){},])
    )""",
    re.VERBOSE,
)
_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
                       "unless", "offset", "inf", "nan", "atan2"})
_GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_AGGREGATION_GROUPING = frozenset({"by", "without"})


def _tokens(expr: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    position = 0
    while position < len(expr.rstrip()):
        match = _TOKEN.match(expr, position)
        if match is None or match.end() == position:
            raise ValueError(f"cannot read the query at {expr[position:position + 20]!r}")
        kind = match.lastgroup or ""
        found.append((kind, match.group(kind)))
        position = match.end()
    return found


def parse_selectors(expr: str) -> Iterator[Selector]:
    """Every vector selector of a PromQL expression (Grafana variables may stay in it)."""
    tokens = _tokens(expr)
    calls: list[str | None] = []  # the function each open parenthesis belongs to
    index = 0
    while index < len(tokens):
        kind, text = tokens[index]
        following = tokens[index + 1] if index + 1 < len(tokens) else ("", "")
        if kind == "ident" and following[0] == "ident" and following[1] in _AGGREGATION_GROUPING:
            # `sum by (labels) (expr)`: the parenthesis after the grouping list is the aggregation's.
            index = _skip_parentheses(tokens, index + 2)
            if index < len(tokens) and tokens[index] == ("op", "("):
                calls.append(text)
                index += 1
            continue
        if kind == "ident" and text in _GROUPING and following == ("op", "("):
            index = _skip_parentheses(tokens, index + 1)
            continue
        if kind == "ident" and following == ("op", "("):
            calls.append(text)
            index += 2
            continue
        if (kind, text) == ("op", "("):
            calls.append(None)
        elif (kind, text) == ("op", ")"):
            if not calls:
                raise ValueError("unbalanced parentheses")
            calls.pop()
        elif kind == "ident" and text not in _KEYWORDS:
            index, selector = _selector(tokens, index, calls[-1] if calls else None)
            yield selector
            continue
        index += 1
    if calls:
        raise ValueError("unbalanced parentheses")


def _skip_parentheses(tokens: Sequence[tuple[str, str]], index: int) -> int:
    depth = 0
    for position in range(index, len(tokens)):
        if tokens[position] == ("op", "("):
            depth += 1
        elif tokens[position] == ("op", ")"):
            depth -= 1
            if depth == 0:
                return position + 1
    raise ValueError("unbalanced parentheses in a grouping list")


def _selector(tokens: Sequence[tuple[str, str]], index: int, function: str | None) -> tuple[int, Selector]:
    metric = tokens[index][1]
    index += 1
    matchers: list[str] = []
    if index < len(tokens) and tokens[index] == ("op", "{"):
        index += 1
        while tokens[index] != ("op", "}"):
            if tokens[index] == ("op", ","):
                index += 1
                continue
            name, operator, value = tokens[index:index + 3]
            matchers.append(f"{name[1]}{operator[1]}{value[1]}")
            index += 3
        index += 1
    selected_range = None
    if index < len(tokens) and tokens[index][0] == "range":
        selected_range = tokens[index][1][1:-1]
        index += 1
    return index, Selector(metric, tuple(matchers), selected_range, function)


# --- the command ----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Lint dashboard JSON files, or the `*.json` files of folders: print every problem, prefixed by
    its file; exit 0 when there are none, 1 when there are, 2 when a path holds no dashboard."""
    parser = argparse.ArgumentParser(
        prog="python -m obsbundle.dashboards.lint",
        description="Check generated Grafana dashboards against the linter's and the house style's conventions.",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                        help="a dashboard JSON file, or a folder of them such as out/<system>/dashboards")
    args = parser.parse_args(argv)
    files = [file for path in args.paths for file in (sorted(path.glob("*.json")) if path.is_dir() else [path])]
    if not files:
        print(f"error: no *.json files in {', '.join(map(str, args.paths))}", file=sys.stderr)
        return 2
    found = 0
    for file in files:
        try:
            dashboard = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            print(f"error: {file}: cannot be read as JSON: {error}", file=sys.stderr)
            return 2
        if not isinstance(dashboard, dict) or "title" not in dashboard or "panels" not in dashboard:
            print(f"error: {file}: is not a Grafana dashboard (no title or panels)", file=sys.stderr)
            return 2
        for problem in lint(dashboard):
            print(f"{file}: {problem}")
            found += 1
    print(f"{len(files)} dashboards, {found} problems", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
