"""The one configuration of a generation run, kept apart from content (kubernetes-mixin's `_config`).

A `Config` has a section per generator, each with the knobs no inventory field carries: the rules'
exporter selectors, thresholds and intervals; the dashboards' time ranges and the thresholds they
draw; the alert routing's timers and file locations; the output format. `build_config` is the one
place that makes one: from the command line's choices, with the dashboards' thresholds taken from
the rules', so that the line on a panel is where its alert fires. Generators receive it as an
argument; per-system settings stay in the inventory (`System.monitoring`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from obsbundle.alerting.policy import AlertingOptions
from obsbundle.dashboards.config import DashboardConfig
from obsbundle.rules.config import RuleConfig
from obsbundle.settings import OutputFormat, Ruler, Settings


@dataclass(frozen=True)
class Config:
    """Every section of the configuration; each generator reads the ones it needs."""

    rules: RuleConfig
    dashboards: DashboardConfig
    alerting: AlertingOptions = field(default_factory=AlertingOptions)
    output: Settings = field(default_factory=Settings)


def build_config(
    output_format: OutputFormat = OutputFormat.OPERATOR,
    *,
    rules: RuleConfig | None = None,
    alerting: AlertingOptions | None = None,
    ruler: Ruler = Ruler.LOCAL,
) -> Config:
    """The configuration for `output_format`, the rules' knobs (default: `RuleConfig()`), the
    alerting policy (default: `AlertingOptions()`) and the ruler the rules are for; the dashboards
    follow the rules."""
    rule_config = rules if rules is not None else RuleConfig()
    dashboards = DashboardConfig(
        exporters=rule_config,
        node_cpu_threshold=float(rule_config.node_cpu),
        node_memory_threshold=float(rule_config.node_memory),
        disk_usage_threshold=float(rule_config.node_disk),
        volume_usage_threshold=float(rule_config.volume_usage),
    )
    return Config(
        rules=rule_config,
        dashboards=dashboards,
        alerting=alerting if alerting is not None else AlertingOptions(),
        output=Settings(output_format=output_format, ruler=ruler),
    )


DEFAULT_CONFIG = build_config()
"""What `generate.py` uses without options; for tests and tools, never read by a generator."""
