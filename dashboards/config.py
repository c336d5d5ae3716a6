"""Dashboard settings kept apart from dashboard content: thresholds, time ranges, provisioning paths.

Thresholds drawn on panels that have no inventory field of their own live here, so that a
panel never carries a literal. Those an alert also uses, and the exporters' selectors, come from
the rules' section (`obsbundle.config.build_config` fills them in), so the line on a panel is
where its alert fires and a panel reads the series its alert reads; the others follow the fleet's
stated targets (EcoEco's 70 % Redis cache hit ratio) and kubernetes-mixin's defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from obsbundle.rules.config import RuleConfig


@dataclass(frozen=True)
class DashboardConfig:
    """Knobs shared by every generated dashboard."""

    exporters: RuleConfig
    """The rules' section: where the standard exporters' series come from (its job selectors)."""
    node_cpu_threshold: float
    """Node and pool CPU utilisation drawn in red above this ratio."""
    node_memory_threshold: float
    disk_usage_threshold: float
    volume_usage_threshold: float
    """PersistentVolumeClaim usage drawn in red above this ratio."""
    redis_hit_ratio_target: float = 0.7
    """Redis cache hit ratio below this is drawn in red (EcoEco's stated 70 % target)."""
    budget_warning: float = 0.25
    """SLO error budget remaining below this share is drawn in orange; below zero in red."""
    expanded_service_rows: int = 10
    """The API dashboard opens its per-service rows up to this many APIs; beyond, they start collapsed,
    and Grafana queries a row only when it is opened."""
    refresh: str = "1m"
    time_from: str = "now-6h"
    slo_time_from: str = "now-7d"
    """SLO dashboards look further back: budgets move over days, not minutes."""
    provisioning_path: str = "/var/lib/grafana/dashboards"
    """Where Grafana's file provider finds the JSON files; each system gets its own folder below it."""
    schema_version: int = 39
    """Grafana dashboard schema the JSON is written for (Grafana 10.4 and later read it unchanged)."""
