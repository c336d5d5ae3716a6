"""Generation settings that are not part of any one system's inventory."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class OutputFormat(StrEnum):
    OPERATOR = "operator"
    """Prometheus Operator objects (ServiceMonitor, PrometheusRule, …) plus the plain files."""
    PROMETHEUS = "prometheus"
    """Plain Prometheus files only: rule files, unit tests, dashboards JSON, alertmanager.yaml, and
    the scrape configs the Operator would derive from the monitors (monitors/scrape_configs.py)."""


class Ruler(StrEnum):
    """What evaluates the rules, which decides whether they must keep clusters apart."""

    LOCAL = "local"
    """The system's own Prometheus, in its cluster: it sees only that cluster's series, and not their
    `cluster` external label while it evaluates rules, so the rules leave `cluster` out."""
    GLOBAL = "global"
    """A ruler over many clusters' series (Thanos Ruler, Mimir, a Prometheus receiving remote_write),
    each carrying its `cluster`: every selector matches the system's clusters and every aggregation
    and vector match keeps them apart (`obsbundle.promql_clusters`)."""


@dataclass(frozen=True)
class Settings:
    """Knobs of a generation run; generators receive them with the system, never read the environment."""

    output_format: OutputFormat = OutputFormat.OPERATOR
    ruler: Ruler = Ruler.LOCAL
    managed_by_label: tuple[str, str] = ("app.kubernetes.io/managed-by", "obsbundle")
