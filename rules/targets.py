"""Scrape health: each service's targets, the pool & queue exporter and its sources, and Watchdog.

ServiceTargetDown fires when no target of a service answers, or none is left (so a service whose
pods are all gone is not silently missing): its SLO cannot see such an outage. The exporter's own
target and each of its sources (`poolq_up{source}`) have an alert of their own, which Alertmanager
uses to inhibit the alerts computed from the exporter (the standard exporters' absence alerts are in
exporters.py). Watchdog always fires, for a dead man's switch.
"""

from __future__ import annotations

from obsbundle import naming
from obsbundle.labels import exporter_service_name
from obsbundle.links import Board, PanelId
from obsbundle.model import Datastore, System
from obsbundle.monitors.workloads import EXPORTED_KINDS, needs_exporter
from obsbundle.promql import selector
from obsbundle.rules.alert_labels import AlertSubject, datastore_labels, exporter_labels, owner_labels, service_subject
from obsbundle.rules.cases import targets as cases
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.definitions import Alert, AlertDoc, RuleGroup, RunbookCheck
from obsbundle.rules.sli import target_labels
from obsbundle.rules.templating import Description

TARGET_DOWN = AlertDoc(
    name="ServiceTargetDown",
    summary="Prometheus cannot scrape any instance of a service.",
    meaning="Every target of the service fails its scrape, or the service has no target left. Either the "
    "service is down (no pod answers) or Prometheus has lost sight of it (monitor, port or network "
    "policy); either way its SLO cannot see what users get.",
    actions=(
        "`kubectl get pods` for the service: are pods running and ready?",
        "Prometheus's targets page (Status → Targets): the scrape error (connection refused, timeout, 404).",
        "If the pods are fine, check the ServiceMonitor or PodMonitor, the metrics port and network policies.",
    ),
)
EXPORTER_DOWN = AlertDoc(
    name=naming.ALERT_EXPORTER_DOWN,
    summary="The pool & queue exporter is not scraped.",
    meaning="Prometheus gets no answer from the system's pool & queue exporter, or finds no target for it. "
    "Postgres, PgBouncer and queue alerts are blind meanwhile (and inhibited by this one).",
    actions=(
        "`kubectl get pods -n <monitoring namespace> -l app.kubernetes.io/name=obsbundle-exporter`.",
        "Read its logs; check its Service and ServiceMonitor.",
    ),
)
SOURCE_DOWN = AlertDoc(
    name=naming.ALERT_EXPORTER_SOURCE_DOWN,
    summary="The pool & queue exporter cannot read one of its sources.",
    meaning="The exporter answers but reports `poolq_up == 0` for a source: the datastore is down or "
    "unreachable, the credentials are wrong, or its queries time out. The datastore's alerts are stale "
    "meanwhile.",
    actions=(
        "Is the datastore itself up? Check its pods and the workloads that use it.",
        "Read the exporter's logs for the source's error (it never logs credentials).",
        "Check the exporter's credentials for the source and network policies between them.",
    ),
)
WATCHDOG = AlertDoc(
    name=naming.ALERT_WATCHDOG,
    summary="Always firing: proves that Prometheus and Alertmanager work.",
    meaning="This alert fires all the time. A dead man's switch outside the cluster pages when it stops "
    "arriving: then Prometheus, its rules or Alertmanager are broken.",
    actions=(
        "If the dead man's switch paged: check Prometheus and Alertmanager pods, their logs and the "
        "rule evaluation failures (prometheus_rule_evaluation_failures_total).",
    ),
)


def _all_down(up: str) -> str:
    """Nothing answers: every target down, or no target at all."""
    return f"(max({up}) or on () vector(0)) == 0"


def target_alerts(system: System, config: RuleConfig) -> list[Alert]:
    alerts: list[Alert] = []
    for service in sorted(system.scraped_services, key=lambda s: s.name):
        labels = target_labels(service)
        up = selector("up", labels)
        subject = service_subject(system, service)
        alerts.append(
            subject.alert(
                TARGET_DOWN,
                expr=_all_down(up),
                severity="critical",
                description=Description(
                    f"No target of {service.name} in {service.namespace} has answered a scrape for "
                    f"{config.target_down_for}."
                ),
                panel=PanelId.SERVICE_TARGETS_UP,
                for_=config.target_down_for,
                case=cases.all_down(labels, background=True),
                threshold=f"no target up for {config.target_down_for}",
                checks=(RunbookCheck("Targets up / all targets", f"sum({up}) / count({up})", "promql"),),
            )
        )
    return alerts


def exporter_alerts(system: System, config: RuleConfig) -> list[Alert]:
    if not needs_exporter(system):
        return []
    target = {naming.NAMESPACE_LABEL: system.monitoring.namespace, naming.SERVICE_LABEL: exporter_service_name(system)}
    up = selector("up", target)
    subject = AlertSubject(system, owner_labels(system), exporter_service_name(system), Board.DATABASE)
    alerts = [
        subject.alert(
            EXPORTER_DOWN,
            expr=_all_down(up),
            severity="warning",
            description=Description(
                f"The pool & queue exporter of {system.name} has not answered a scrape for {config.exporter_down_for}."
            ),
            panel=PanelId.DB_EXPORTER_UP,
            for_=config.exporter_down_for,
            case=cases.all_down({**target, naming.SYSTEM_LABEL: system.name}),
            threshold=f"not up for {config.exporter_down_for}",
            checks=(RunbookCheck("The exporter's targets", up, "promql"),),
        )
    ]
    sources: list[tuple[str, Datastore]] = []
    for store in sorted(system.datastores, key=lambda s: s.name):
        if store.kind in EXPORTED_KINDS:
            sources.append((store.source, store))
        if store.pgbouncer_source is not None:
            sources.append((store.pgbouncer_source, store))
    for source, store in sources:
        series = {naming.SYSTEM_LABEL: system.name, "source": source}
        # `source` among the rule's own labels: a datastore with a PgBouncer in front has two
        # sources, and two rules with one name need distinct labels (promtool's duplicate-rules lint).
        labels = {**datastore_labels(system, store), **exporter_labels(), "source": source}
        store_subject = AlertSubject(
            system, labels, f"{source} ({store.name})", Board.DATABASE, variables={"datastore": store.name}
        )
        alerts.append(
            store_subject.alert(
                SOURCE_DOWN,
                expr=f"max by (source) ({selector('poolq_up', series)}) == 0",
                severity="warning",
                description=Description(
                    f"The pool & queue exporter cannot read source {{source}} ({store.name}) "
                    f"for {config.source_down_for}."
                ),
                panel=PanelId.DB_EXPORTER_UP,
                for_=config.source_down_for,
                case=cases.source_down(series, source),
                threshold=f"poolq_up == 0 for {config.source_down_for}",
                checks=(
                    RunbookCheck(
                        "Sources the exporter reads", selector("poolq_up", {naming.SYSTEM_LABEL: system.name}), "promql"
                    ),
                ),
            )
        )
    return alerts


def watchdog(system: System) -> Alert:
    return AlertSubject(system, owner_labels(system), system.name, Board.OVERVIEW).alert(
        WATCHDOG,
        expr="vector(1)",
        severity="none",
        description=Description(f"Prometheus evaluates {naming.possessive(system.name)} rules and delivers alerts."),
        panel=PanelId.OVERVIEW_ALERTS,
        for_=None,
        case=cases.watchdog(),
        threshold="always",
    )


def target_groups(system: System, config: RuleConfig) -> list[RuleGroup]:
    alerts = [*target_alerts(system, config), *exporter_alerts(system, config), watchdog(system)]
    return [RuleGroup(f"{system.name}-targets", config.interval, tuple(alerts))]
