"""Dashboard template variables, and their expansion the way Grafana does it before a query runs.

Every dashboard has `datasource` and `cluster`; dashboards of namespaced workloads add
`namespace`. `cluster` defaults to All (`.*`), which also matches series without a `cluster`
label: a Prometheus per cluster has none (it is an external label), a Thanos or Mimir behind
the datasource has one per cluster.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from obsbundle.dashboards.panels import DATASOURCE, DATASOURCE_VARIABLE
from obsbundle.promql import quote, regex_literal, selector
from obsbundle.rules.config import RuleConfig

CLUSTER_VARIABLE = "cluster"
NAMESPACE_VARIABLE = "namespace"
ALL = "$__all"

# Grafana refreshes query variables "on time range change" (2): the linter's rule, and the only
# setting under which a namespace that appears mid-range shows up without a reload.
_REFRESH_ON_TIME_RANGE_CHANGE = 2


def datasource_variable() -> dict[str, Any]:
    """The `datasource` variable every panel reads: any Prometheus datasource of the Grafana."""
    return {
        "name": DATASOURCE_VARIABLE,
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [],
        "refresh": 1,
        "regex": "",
    }


def cluster_variable(cluster: str, exporters: RuleConfig) -> dict[str, Any]:
    """`cluster`: the clusters a multi-cluster datasource knows (from kube-state-metrics, selected as
    `exporters` say); All when the datasource has one."""
    return _query_variable(
        CLUSTER_VARIABLE,
        "Cluster",
        f"label_values({selector('kube_node_info', exporters.kube_state_metrics)}, cluster)",
        all_value=".*",
        current=cluster,
        multi=False,
    )


def _any_of_literal(names: Iterable[str]) -> str:
    """A PromQL string literal of the regex that matches exactly `names`."""
    return quote("|".join(regex_literal(name) for name in sorted(set(names))))


def clusters_variable(clusters: Iterable[str], exporters: RuleConfig) -> dict[str, Any]:
    """`cluster` for a datasource over many clusters (`--ruler global`): one or several of
    `clusters` (the system's), those the datasource has, All by default. All selects exactly them:
    `.*` would also match series without a `cluster`, which such a datasource should not hold."""
    alternatives = _any_of_literal(clusters)
    nodes = selector("kube_node_info", exporters.kube_state_metrics, f"cluster=~{alternatives}")
    return _query_variable(
        CLUSTER_VARIABLE,
        "Cluster",
        f"label_values({nodes}, cluster)",
        all_value=alternatives[1:-1],
        current=None,
        multi=True,
    )


def namespace_variable(namespaces: Iterable[str], exporters: RuleConfig) -> dict[str, Any]:
    """`namespace`: the system's namespaces; All selects exactly them, not the whole cluster."""
    literal = _any_of_literal(namespaces)
    pods = selector("kube_pod_info", exporters.kube_state_metrics, 'cluster=~"$cluster"', f"namespace=~{literal}")
    return _query_variable(
        NAMESPACE_VARIABLE,
        "Namespace",
        f"label_values({pods}, namespace)",
        # Grafana pastes allValue between the quotes of `namespace=~"$namespace"` as it is, so it
        # must already be escaped for a PromQL string.
        all_value=literal[1:-1],
        current=None,
        multi=True,
    )


def group_variable(label: str, recorded: str) -> dict[str, Any]:
    """A grouped SLO's group label (`group_by`) as a variable of the same name, over the values the
    SLO's `recorded` series carry, All by default. All (`.*`) also matches the ungrouped SLOs'
    series, which lack the label."""
    return _query_variable(label, label, f"label_values({recorded}, {label})", all_value=".*", current=None, multi=True)


def inventory_variable(name: str, label: str, values: Iterable[str]) -> dict[str, Any]:
    """A variable over names the inventory lists (datastores, queues), All by default: a custom
    variable, so that it lists them before any series exists and an alert's link can set it
    (`var-<name>=<value>`). All selects exactly these names."""
    chosen = sorted(set(values))
    literal = quote("|".join(regex_literal(value) for value in chosen))
    options = [{"selected": True, "text": "All", "value": ALL}] + [
        {"selected": False, "text": value, "value": value} for value in chosen
    ]
    return {
        "name": name,
        "label": label,
        "type": "custom",
        # Grafana splits a custom variable's query at commas; inventory names have none.
        "query": ",".join(chosen),
        "current": {"selected": True, "text": ["All"], "value": [ALL]},
        "hide": 0,
        "includeAll": True,
        "allValue": literal[1:-1],
        "multi": True,
        "options": options,
    }


def _query_variable(
    name: str, label: str, query: str, *, all_value: str, current: str | None, multi: bool
) -> dict[str, Any]:
    selected: dict[str, Any]
    if current is None:
        selected = {"selected": True, "text": ["All"] if multi else "All", "value": [ALL] if multi else ALL}
    else:
        selected = {"selected": True, "text": current, "value": current}
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": query,
        "definition": query,
        "current": selected,
        "hide": 0,
        "includeAll": True,
        "allValue": all_value,
        "multi": multi,
        "options": [],
        "refresh": _REFRESH_ON_TIME_RANGE_CHANGE,
        "regex": "",
        "sort": 1,
    }


_REFERENCE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")


def referenced(expr: str) -> set[str]:
    """Names of the variables an expression refers to (`$x`, `${x}`, `[[x]]`), built-ins included."""
    return {next(group for group in match.groups() if group) for match in _REFERENCE.finditer(expr)}


def expand(expr: str, values: Mapping[str, str]) -> str:
    """`expr` with every variable in `values` replaced; unknown ones (`$1` in label_replace) stay."""

    def replace(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        return values.get(name, match.group(0))

    return _REFERENCE.sub(replace, expr)


def all_values(dashboard: Mapping[str, Any]) -> dict[str, str]:
    """The value each of a dashboard's variables has when it opens with All (or its one choice)."""
    values: dict[str, str] = {}
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable["type"] == "datasource":
            continue
        if variable.get("includeAll") and variable.get("allValue"):
            values[variable["name"]] = variable["allValue"]
        else:
            current = variable.get("current", {}).get("value")
            values[variable["name"]] = current[0] if isinstance(current, list) else str(current)
    return values


def opening_values(dashboard: Mapping[str, Any], *, scrape_interval: int, range_seconds: int) -> dict[str, str]:
    """Every variable's value, built-ins included, when the dashboard opens over `range_seconds`.

    `$__rate_interval` follows Grafana: four scrape intervals at least (panels here ask for no more
    points than the range at one per scrape interval, so the `$__interval` term never wins).
    """
    return {
        **all_values(dashboard),
        "__rate_interval": f"{4 * scrape_interval}s",
        "__interval": f"{scrape_interval}s",
        "__range": f"{range_seconds}s",
        "__range_s": str(range_seconds),
    }
