"""The alerts the rules define about a service or a node pool, listed on its dashboard with their
runbooks: on-call sees what can fire, at which threshold, and where to read what to do."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from obsbundle import naming
from obsbundle.dashboards.panels import text
from obsbundle.model import System
from obsbundle.rules import rule_groups
from obsbundle.rules.definitions import Alert

_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2, "none": 3}


@dataclass(frozen=True)
class AlertIndex:
    """Every alerting rule of a system, built once per generation of its dashboards."""

    alerts: tuple[Alert, ...]

    @classmethod
    def of(cls, system: System) -> AlertIndex:
        return cls(tuple(alert for group in rule_groups(system) for alert in group.alerts))

    def about(self, **labels: str) -> list[Alert]:
        """Alerts whose static labels carry all of `labels`, most severe first, then by name."""
        found = [alert for alert in self.alerts if all(alert.labels.get(k) == v for k, v in labels.items())]
        return sorted(found, key=lambda alert: (_SEVERITY_ORDER.get(alert.severity, 9), alert.name, alert.entity))

    def about_pool(self, pool: str) -> list[Alert]:
        """Alerts about a node pool itself, not about the workloads that run on it."""
        return [alert for alert in self.about(**{naming.NODE_POOL_LABEL: pool})
                if naming.SERVICE_LABEL not in alert.labels]


def _cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def alerts_panel(alerts: Sequence[Alert], subject: str) -> Any:
    """A table of `alerts`: name linked to its runbook, severity, what it is about, when it fires, its panel."""
    lines = ["| alert | severity | about | fires when | shows |", "|---|---|---|---|---|"]
    for alert in alerts:
        about = alert.entity.removeprefix(subject).removeprefix(" / ") or subject
        lines.append(
            f"| [{alert.name}]({alert.runbook_url}) | {alert.severity} | {_cell(about)} | {_cell(alert.threshold)} | "
            f"[panel]({alert.dashboard_url}) |"
        )
    return text(
        "Alerts and runbooks",
        f"Every alert the generated rules raise about {subject}: its runbook, severity, condition and the "
        "panel its notification links to.",
        "\n".join(lines),
        width=24,
        height=min(4 + len(alerts), 24),
    )
