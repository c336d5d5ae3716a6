"""Dashboards for a datasource over many clusters (`--ruler global`: Thanos Query, Mimir, a Prometheus
receiving remote_write), made from the local ones in one pass.

The local dashboards already select `cluster=~"$cluster"` everywhere, but they sum and match
without `cluster`, so over such a datasource two clusters that run the same system would add up into
one line. `for_ruler` rewrites every query with the rules' rewrite
(`obsbundle.promql_clusters.keep_clusters_apart`, selectors matching `$cluster`), so that every
aggregation and vector match keeps `cluster`; makes `cluster` a variable of one or several of the
system's clusters, All by default; and names the cluster in every legend. A heatmap, whose buckets
Grafana reads from the legend, is repeated per chosen cluster instead.

Grafana variables are no PromQL: before the rewrite each is replaced by a stand-in that parses where
the variable stands (a duration in a range, a token inside a string) and that the printer writes back
unchanged, and the stand-ins are replaced by the variables afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import promql_parser

from obsbundle.dashboards.config import DashboardConfig
from obsbundle.dashboards.variables import CLUSTER_VARIABLE, clusters_variable, expand, referenced
from obsbundle.dashboards.walk import LABEL_VALUES
from obsbundle.model import System
from obsbundle.promql_clusters import CLUSTER, keep_clusters_apart
from obsbundle.settings import Ruler

CLUSTER_LEGEND = "{{" + CLUSTER + "}}"

# Grafana's built-ins that stand for a duration (`[$__rate_interval]`); every other variable stands
# inside a string (`namespace=~"$namespace"`). The stand-in durations are odd enough never to occur.
_DURATIONS = ("__interval", "__range", "__rate_interval")
_DURATION_BASE = timedelta(days=97, milliseconds=1)


def for_ruler(board: dict[str, Any], system: System, config: DashboardConfig, ruler: Ruler) -> dict[str, Any]:
    """`board` for the datasource `ruler` implies: itself for a local one; for a global one, with
    every query keeping the system's clusters apart (see the module's docstring). The dashboards'
    queries hold no PromQL of the inventory's, so none can match `cluster` itself: the rewrite's
    ClusterRewriteError would be a defect here, not bad input."""
    if ruler is Ruler.LOCAL:
        return board
    clusters = system.all_clusters
    fresh = dict(board)
    fresh["panels"] = [_panel(panel, clusters) for panel in board.get("panels", [])]
    templating = board.get("templating", {})
    fresh["templating"] = {
        **templating,
        "list": [_variable(variable, config, clusters) for variable in templating.get("list", [])],
    }
    return fresh


def query_for_ruler(expr: str, clusters: tuple[str, ...]) -> str:
    """A dashboard query, Grafana variables and all, rewritten to keep `clusters` apart, its
    selectors matching `$cluster`. Raises ClusterRewriteError when it cannot."""
    names = sorted(referenced(expr) | {CLUSTER_VARIABLE})  # a selector without `$cluster` gains it
    stand_ins = {name: _stand_in(name, index) for index, name in enumerate(names)}
    rewritten = keep_clusters_apart(
        expand(expr, {name: text for name, (text, _) in stand_ins.items()}),
        clusters,
        chosen=stand_ins[CLUSTER_VARIABLE][0],
    )
    back = {printed: "$" + name for name, (_, printed) in stand_ins.items()}
    return re.sub("|".join(re.escape(printed) for printed in sorted(back, key=len, reverse=True)),
                  lambda match: back[match.group(0)], rewritten)


def _stand_in(name: str, index: int) -> tuple[str, str]:
    """What replaces `$name` in the PromQL given to the rewrite, and how the printer writes it."""
    if name in _DURATIONS:
        duration = _DURATION_BASE + timedelta(milliseconds=index)
        text = promql_parser.display_duration(duration)
        return text, text
    return _token(name), _token(name)


def _token(name: str) -> str:
    return f"__obsbundle_variable_{name}__"


def _panel(panel: Mapping[str, Any], clusters: tuple[str, ...]) -> dict[str, Any]:
    fresh = dict(panel)
    if "panels" in panel:  # a collapsed row holds its panels
        fresh["panels"] = [_panel(inner, clusters) for inner in panel["panels"]]
    targets = panel.get("targets", [])
    if targets:
        fresh["targets"] = [_target(target, clusters) for target in targets]
    if any(target.get("format") == "heatmap" for target in targets):
        # A heatmap's buckets are its series' legends: two clusters' `le` series would merge into
        # one bucket, so each chosen cluster gets its own copy of the panel.
        fresh["repeat"] = CLUSTER_VARIABLE
        fresh["repeatDirection"] = "h"
    return fresh


def _target(target: Mapping[str, Any], clusters: tuple[str, ...]) -> dict[str, Any]:
    fresh = {**target, "expr": query_for_ruler(target["expr"], clusters)}
    if target.get("format") == "time_series":
        legend = target.get("legendFormat") or ""
        if CLUSTER_LEGEND not in legend:
            fresh["legendFormat"] = f"{CLUSTER_LEGEND} · {legend}" if legend else CLUSTER_LEGEND
    return fresh


def _variable(
    variable: Mapping[str, Any], config: DashboardConfig, clusters: tuple[str, ...]
) -> dict[str, Any]:
    if variable["name"] == CLUSTER_VARIABLE:
        return clusters_variable(clusters, config.exporters)
    match = LABEL_VALUES.match(variable.get("query", "")) if variable["type"] == "query" else None
    if match is None:
        return dict(variable)
    query = f"label_values({query_for_ruler(match.group(1), clusters)}, {match.group(2)})"
    return {**variable, "query": query, "definition": query}

