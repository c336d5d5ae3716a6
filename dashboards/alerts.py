"""The alerts the rules define about a service or a node pool, listed on its dashboard with their
runbooks: on-call sees what can fire, at which threshold, and where to read what to do."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from obsbundle import naming
from obsbundle.dashboards.panels import text
from obsbundle.model import System
from obsbundle.rules import alert_groups
from obsbundle.rules.definitions import Alert

_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2, "none": 3}


@dataclass(frozen=True)
class AlertIndex:
    """Every alerting rule of a system, indexed once per generation of its dashboards.

    Dashboards ask per service and per pool; indexing by those labels up front keeps that linear
    in the number of alerts instead of alerts × services.
    """

    by_service: dict[tuple[str, str], tuple[Alert, ...]]
    by_pool: dict[str, tuple[Alert, ...]]

    @classmethod
    def of(cls, system: System) -> AlertIndex:
        by_service: dict[tuple[str, str], list[Alert]] = defaultdict(list)
        by_pool: dict[str, list[Alert]] = defaultdict(list)
        for group in alert_groups(system):
            for alert in group.alerts:
                namespace = alert.labels.get(naming.NAMESPACE_LABEL)
                service = alert.labels.get(naming.SERVICE_LABEL)
                pool = alert.labels.get(naming.NODE_POOL_LABEL)
                if namespace is not None and service is not None:
                    by_service[(namespace, service)].append(alert)
                elif pool is not None:  # about the pool itself, not a workload on it
                    by_pool[pool].append(alert)
        return cls(
            {key: _by_severity(found) for key, found in by_service.items()},
            {key: _by_severity(found) for key, found in by_pool.items()},
        )

    def about(self, namespace: str, service: str) -> list[Alert]:
        """Alerts about one service, most severe first, then by name."""
        return list(self.by_service.get((namespace, service), ()))

    def about_pool(self, pool: str) -> list[Alert]:
        """Alerts about a node pool itself, not about the workloads that run on it."""
        return list(self.by_pool.get(pool, ()))


def _by_severity(alerts: list[Alert]) -> tuple[Alert, ...]:
    return tuple(sorted(alerts, key=lambda alert: (_SEVERITY_ORDER.get(alert.severity, 9), alert.name, alert.entity)))


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
