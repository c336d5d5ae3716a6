"""Labels and links every alert carries, per naming.py's alert contract.

Every alert: `severity`, `system`, `team`. Service alerts add `namespace`, `service` and, when the
service runs on a known pool, `node_pool` (so that NodePoolDown can inhibit them). Node and pool
alerts: `node_pool`. Datastore alerts: `datastore`, and its owner's team; queue alerts: `queue`;
alerts computed from the pool & queue exporter's series: `exporter`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from obsbundle import naming
from obsbundle.links import Board, PanelId, panel_url
from obsbundle.model import Datastore, Queue, Service, System
from obsbundle.rules.definitions import Alert, AlertDoc, Case, RunbookCheck, Severity
from obsbundle.rules.templating import Description


def runbook_url(system: System, alert: str) -> str:
    """The system's runbook link pattern with {system} and {alert} filled in."""
    return system.monitoring.runbook_url.replace("{system}", system.name).replace("{alert}", alert)


def owner_labels(system: System) -> dict[str, str]:
    """Labels of alerts the system's owner answers: nodes, the platform, the monitoring itself."""
    return {naming.SYSTEM_LABEL: system.name, naming.TEAM_LABEL: system.owner.team}


def service_labels(system: System, service: Service) -> dict[str, str]:
    """Labels of alerts about one service; its team is the service's owner, else the system's."""
    labels = {
        naming.SYSTEM_LABEL: system.name,
        naming.TEAM_LABEL: system.owner_of(service).team,
        naming.NAMESPACE_LABEL: service.namespace,
        naming.SERVICE_LABEL: service.name,
    }
    if service.node_pool is not None:
        labels[naming.NODE_POOL_LABEL] = service.node_pool
    return labels


def recorded_service_labels(system: System, service: Service) -> dict[str, str]:
    """Labels of a service's recorded series: system, namespace, service."""
    return {
        naming.SYSTEM_LABEL: system.name,
        naming.NAMESPACE_LABEL: service.namespace,
        naming.SERVICE_LABEL: service.name,
    }


def datastore_labels(system: System, store: Datastore) -> dict[str, str]:
    """Labels of alerts about a datastore: its owner's team (the system's unless it names one), its
    name, and its node pool when known (so that NodePoolDown can inhibit them)."""
    labels = {
        naming.SYSTEM_LABEL: system.name,
        naming.TEAM_LABEL: system.owner_of(store).team,
        naming.DATASTORE_LABEL: store.name,
    }
    if store.node_pool is not None:
        labels[naming.NODE_POOL_LABEL] = store.node_pool
    return labels


def queue_team(system: System, queue: Queue) -> str:
    """The team that runs the queue's consumers when they share one, else the system's owner."""
    teams = {system.owner_of(system.service(name)).team for name in queue.consumers}
    return teams.pop() if len(teams) == 1 else system.owner.team


def exporter_labels() -> dict[str, str]:
    """Marks alerts computed from the pool & queue exporter, so that ExporterDown can inhibit them."""
    return {naming.EXPORTER_LABEL: naming.EXPORTER_LABEL_VALUE}


@dataclass(frozen=True)
class AlertSubject:
    """What a component's alerts are about, and what each of them carries because of it: the
    labels, the entity named in runbooks, and the dashboard its panel link opens."""

    system: System
    labels: Mapping[str, str]
    entity: str
    board: Board
    board_entity: str | None = None
    """The entity of a per-entity dashboard (a service's, a node pool's)."""
    variables: Mapping[str, str] = field(default_factory=dict)
    """Template variables the link sets (`datastore`, `queue`)."""

    def alert(
        self,
        doc: AlertDoc,
        *,
        expr: str,
        severity: Severity,
        description: Description,
        panel: PanelId,
        for_: str | None,
        case: Case | None,
        threshold: str,
        checks: tuple[RunbookCheck, ...] = (),
        extra_labels: Mapping[str, str] | None = None,
        entity: str | None = None,
        extra_annotations: Mapping[str, str] | None = None,
    ) -> Alert:
        """The alert, labelled and linked for this subject. `entity` names a part of the subject
        in the runbook's table (an SLO's window pair, a PgBouncer's source); `case` is None for
        alerts whose component writes their tests itself (SLOs)."""
        return Alert(
            doc=doc,
            expr=expr,
            severity=severity,
            labels={**self.labels, **(extra_labels or {})},
            description=description,
            runbook_url=runbook_url(self.system, doc.name),
            dashboard_url=panel_url(self.system, self.board, panel, self.board_entity, **self.variables),
            for_=for_,
            case=case,
            entity=self.entity if entity is None else entity,
            threshold=threshold,
            checks=checks,
            extra_annotations=dict(extra_annotations or {}),
        )


def service_subject(system: System, service: Service) -> AlertSubject:
    """A service's alerts: its labels, linked to panels of its own dashboard."""
    return AlertSubject(system, service_labels(system, service), service.name, Board.SERVICE, service.name)
