"""The alerts the rules define about a service or a node pool, listed on its dashboard with their
runbooks: on-call sees what can fire, at which threshold, and where to read what to do."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from obsbundle import naming
from obsbundle.dashboards.panels import text
from obsbundle.rules.definitions import RuleGroup

_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2, "none": 3}


@dataclass(frozen=True)
class AlertRow:
    """One line of a dashboard's alert table: what the dashboards read of an alerting rule."""

    name: str
    severity: str
    entity: str
    threshold: str
    runbook_url: str
    dashboard_url: str


@dataclass(frozen=True)
class AlertIndex:
    """Every alerting rule of a system, indexed once per generation of its dashboards.

    Dashboards ask per service and per pool; indexing by those labels up front keeps that linear
    in the number of alerts instead of alerts × services. Small and picklable: the bundle makes it
    where the rules are built and hands it to the dashboards, in whichever process they run.
    """

    by_service: dict[tuple[str, str], tuple[AlertRow, ...]]
    by_pool: dict[str, tuple[AlertRow, ...]]

    @classmethod
    def of(cls, groups: Iterable[RuleGroup]) -> AlertIndex:
        """The index of the alerts in `groups` (a system's rule groups)."""
        by_service: dict[tuple[str, str], list[AlertRow]] = defaultdict(list)
        by_pool: dict[str, list[AlertRow]] = defaultdict(list)
        for group in groups:
            for alert in group.alerts:
                row = AlertRow(
                    alert.name, alert.severity, alert.entity, alert.threshold, alert.runbook_url, alert.dashboard_url
                )
                namespace = alert.labels.get(naming.NAMESPACE_LABEL)
                service = alert.labels.get(naming.SERVICE_LABEL)
                pool = alert.labels.get(naming.NODE_POOL_LABEL)
                if namespace is not None and service is not None:
                    by_service[(namespace, service)].append(row)
                elif pool is not None:  # about the pool itself, not a workload on it
                    by_pool[pool].append(row)
        return cls(
            {key: _by_severity(found) for key, found in by_service.items()},
            {key: _by_severity(found) for key, found in by_pool.items()},
        )

    def about(self, namespace: str, service: str) -> list[AlertRow]:
        """Alerts about one service, most severe first, then by name."""
        return list(self.by_service.get((namespace, service), ()))

    def about_pool(self, pool: str) -> list[AlertRow]:
        """Alerts about a node pool itself, not about the workloads that run on it."""
        return list(self.by_pool.get(pool, ()))


def _by_severity(alerts: list[AlertRow]) -> tuple[AlertRow, ...]:
    return tuple(sorted(alerts, key=lambda alert: (_SEVERITY_ORDER.get(alert.severity, 9), alert.name, alert.entity)))


def _cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def alerts_panel(alerts: Sequence[AlertRow], subject: str) -> Any:
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
