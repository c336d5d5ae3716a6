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


@dataclass(frozen=True)
class Settings:
    """Knobs of a generation run; generators receive them with the system, never read the environment."""

    output_format: OutputFormat = OutputFormat.OPERATOR
    managed_by_label: tuple[str, str] = ("app.kubernetes.io/managed-by", "obsbundle")
