"""External dependencies and public endpoints, from blackbox_exporter's probes (monitors/probes.py).

Per dependency of the inventory, selected by the Probe's static labels `system` and `dependency`:

- DependencyDown: every probe failed for `dependency_down_for`. Critical for a `public_entry` (the
  system's own Ingress or load balancer: every user is cut off, its server-side SLOs see no
  traffic and cannot page, and the owner can act), warning for a third party's API (the owner can
  only wait for the vendor; the services that call it page through their own SLOs if users suffer).
- DependencySlow: probes that succeed but stay slower than the dependency's `latency_alert`. A probe
  that fails (a timeout among them) is DependencyDown's, so one outage never raises both.
- DependencyCertificateExpiring, for https URLs: the certificate the endpoint serves expires within
  `certificate_warning_days` (warning); for a public entry, within `certificate_critical_days`
  (critical, the two rules exclusive, as kubernetes-mixin's KubeClientCertificateExpiration pair).
  A third party's certificate never pages: nobody here can renew it.
- DependencyProbeMissing: no probe result at all (the Probe not loaded, or a module blackbox_exporter
  does not have: "Unknown module" answers 400 and stores nothing), which would keep the alerts
  above silent. It reads `probe_success`, so BlackboxExporterDown (rules/exporters.py) mutes it
  when the whole exporter is gone; as urgent as DependencyDown, whose page it would hide.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from urllib.parse import quote

from obsbundle import naming
from obsbundle.links import Board, PanelId
from obsbundle.model import Dependency, System
from obsbundle.monitors.probes import PROBE_PATH, latency_alert_seconds, probe_labels, scrape_timeout_seconds
from obsbundle.promql import any_of, selector
from obsbundle.rules.alert_labels import AlertSubject
from obsbundle.rules.cases import dependencies as cases
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.definitions import (
    Alert,
    AlertCheck,
    AlertDoc,
    ExpectedAlert,
    Rule,
    RuleGroup,
    RunbookCheck,
    Severity,
    UnitTest,
    with_rules_replaced,
)
from obsbundle.rules.input_series import number
from obsbundle.rules.templating import Description, ValueFormat

DAY_SECONDS = 86400

ComponentGroups = tuple[tuple[str, tuple[RuleGroup, ...]], ...]

_REPRODUCE = (
    "Reproduce the probe with the runbook's `curl` commands: from a pod, as blackbox_exporter sees it "
    "(`debug=true` prints every step: DNS, connect, TLS, status), and from outside the cluster, to tell "
    "the cluster's egress (NAT gateway, NetworkPolicy, DNS) from the endpoint itself."
)

DOWN = AlertDoc(
    name="DependencyDown",
    summary="An external dependency or public endpoint fails every probe.",
    meaning="blackbox_exporter has had no acceptable answer from the endpoint for several probes in a row: DNS "
    "does not resolve, the connection is refused or times out, TLS fails (an expired or untrusted certificate), "
    "or the status is one the module refuses (http_reachable: 500 and above; http_2xx: anything but 2xx). The "
    "services that call it fail or degrade with it.",
    actions=(
        _REPRODUCE,
        "A third party's API: check the vendor's status page; the services that use it (the runbook's table) "
        "should degrade gracefully meanwhile; follow their own alerts, and open a ticket with the vendor if "
        "the outage is theirs alone.",
        "The system's own public entry: `kubectl get ingress -A` and the load balancer's targets (ALB target "
        "group health, the Ingress controller's pods and logs), then the certificate it serves.",
    ),
)
SLOW = AlertDoc(
    name="DependencySlow",
    summary="An external dependency answers, but slower than its latency alert.",
    meaning="Probes succeed, but every one for a while took longer than the dependency's `latency_alert`. The "
    "services that call it wait as long on each request: their latency SLOs burn and their workers pile up.",
    actions=(
        _REPRODUCE + " Compare `probe_http_duration_seconds` by phase: resolve, connect, tls, processing, transfer.",
        "Slow `processing` is the endpoint's own (a vendor's incident, rate limiting); slow `resolve` or "
        "`connect` is the path to it (DNS, NAT gateway).",
        "Check the callers' timeouts and retries: a retry storm makes a slow dependency slower.",
    ),
)
CERTIFICATE = AlertDoc(
    name="DependencyCertificateExpiring",
    summary="The TLS certificate an endpoint serves expires soon.",
    meaning="The earliest expiry in the certificate chain the endpoint serves (`probe_ssl_earliest_cert_expiry`) "
    "is near. When it passes, every client that verifies TLS, the probe too, fails. cert-manager and Let's "
    "Encrypt renew 30 days ahead and ACM 60, so a certificate this close to its end means renewal is failing, "
    "or the renewed certificate is not the one served.",
    actions=(
        "See which certificate is served: `openssl s_client -connect <host>:443 -servername <host> </dev/null "
        "2>/dev/null | openssl x509 -noout -subject -issuer -enddate`.",
        "cert-manager: `kubectl get certificate -A` and `kubectl describe certificate <name>` (the failing "
        "CertificateRequest or Order says why); is the Ingress's `secretName` the renewed Secret?",
        "ACM: the certificate's renewal status (DNS validation records still in place?).",
        "A third party's certificate: nobody here can renew it; tell the vendor, and expect DependencyDown "
        "when it expires.",
    ),
)
MISSING = AlertDoc(
    name="DependencyProbeMissing",
    summary="Prometheus has no probe result for an external dependency.",
    meaning="There is no `probe_success` for the dependency, while blackbox_exporter answers for others: its "
    "Probe is not loaded, or names a module the exporter does not have (it answers 400 \"Unknown module\" and "
    "stores nothing). DependencyDown and the other probe alerts cannot fire for it meanwhile.",
    actions=(
        "Prometheus's targets page (Status → Targets), job `probe/<namespace>/<dependency>`: is the target "
        "there, and what error shows?",
        "`Unknown module`: load the generated modules into blackbox_exporter (blackbox/blackbox.yml as "
        "`--config.file`, or blackbox/helm-values.yaml into the prometheus-blackbox-exporter chart) and check "
        "`blackbox_module_unknown_total`.",
        "No target: is the Probe applied (`kubectl get probes -A`) and does Prometheus's `probeSelector` "
        "select it (kube-prometheus-stack: the `release` label)?",
    ),
)


def dependency_groups(system: System, config: RuleConfig) -> list[RuleGroup]:
    """One group with every dependency's alerts; none without dependencies."""
    alerts = tuple(
        alert
        for dependency in sorted(system.dependencies, key=lambda dependency: dependency.name)
        for alert in _alerts(system, dependency, config)
    )
    if not alerts:
        return []
    return [RuleGroup(f"{system.name}-dependencies", config.interval, alerts, tests=_timeout_tests(alerts))]


def _timeout_tests(alerts: Sequence[Alert]) -> tuple[UnitTest, ...]:
    """The first dependency's probe failing slowly (a timeout) raises DependencyDown and not
    DependencySlow: one outage, one alert."""
    down = next(alert for alert in alerts if alert.name == DOWN.name)
    slow = next(alert for alert in alerts if alert.name == SLOW.name and alert.labels == down.labels)
    assert down.case is not None and slow.case is not None
    return (
        UnitTest(
            f"{SLOW.name} stays quiet and {DOWN.name} fires while a probe of {down.entity} times out",
            cases.timing_out(slow.case),
            (
                AlertCheck(down.case.eval_time, SLOW.name),
                AlertCheck(down.case.eval_time, DOWN.name, (ExpectedAlert(down, down.case.labels, 0),)),
            ),
        ),
    )


CONTEXT_ALERTS = (DOWN.name, SLOW.name)
"""The dependency alerts a service's page names while they fire."""


def failing_dependencies(system: System, dependencies: Sequence[Dependency]) -> str:
    """A template that names each of `dependencies` whose DependencyDown or DependencySlow fires now,
    and prints nothing while none does (Prometheus's `query` template function over `ALERTS`)."""
    alerts = selector(
        "ALERTS",
        {"alertstate": "firing", naming.SYSTEM_LABEL: system.name},
        f"alertname=~{any_of(CONTEXT_ALERTS)}",
        f"{naming.DEPENDENCY_LABEL}=~{any_of(dependency.name for dependency in dependencies)}",
    )
    # A Go string literal: JSON's escapes of `"` and `\` are Go's.
    return (
        f"{{{{ range query {json.dumps(alerts)} }}}} It uses {{{{ .Labels.{naming.DEPENDENCY_LABEL} }}}}, "
        "which is failing too ({{ .Labels.alertname }}).{{ end }}"
    )


def with_dependency_context(system: System, components: ComponentGroups) -> ComponentGroups:
    """Every alert about a service that a dependency's `used_by` names, its description followed by
    the dependencies failing meanwhile.

    Why an annotation and not an inhibition: the service's alert is still true (its users see the
    errors, its budget burns) and may have another cause, so it must page; what the on-call engineer
    needs is to know at once that a dependency fails too, and whose it is."""
    used: dict[str, list[Dependency]] = {}
    for dependency in sorted(system.dependencies, key=lambda dependency: dependency.name):
        for name in dependency.used_by:
            used.setdefault(name, []).append(dependency)
    if not used:
        return components

    def annotated(rule: Rule) -> Rule:
        service = rule.labels.get(naming.SERVICE_LABEL) if isinstance(rule, Alert) else None
        if not isinstance(rule, Alert) or service not in used:
            return rule
        context = failing_dependencies(system, used[service])
        return replace(rule, description=replace(rule.description, context=context))

    return tuple(
        (name, tuple(with_rules_replaced(group, annotated) for group in groups))
        for name, groups in components
    )


def _subject(system: System, dependency: Dependency) -> AlertSubject:
    labels = {
        naming.SYSTEM_LABEL: system.name,
        naming.TEAM_LABEL: system.owner_of(dependency).team,
        naming.DEPENDENCY_LABEL: dependency.name,
    }
    entity = f"{dependency.name} ({dependency.url})"
    if dependency.used_by:
        entity += f", used by {', '.join(dependency.used_by)}"
        # The first user's dashboard carries the dependency's row (dashboards/dependencies.py).
        return AlertSubject(system, labels, entity, Board.SERVICE, dependency.used_by[0])
    return AlertSubject(system, labels, entity, Board.OVERVIEW)


def _panel(subject: AlertSubject, panel: PanelId) -> PanelId:
    return panel if subject.board is Board.SERVICE else PanelId.OVERVIEW_ALERTS


def _used_by(dependency: Dependency) -> str:
    return f" Used by {', '.join(dependency.used_by)}." if dependency.used_by else ""


def _checks(system: System, dependency: Dependency) -> tuple[RunbookCheck, ...]:
    timeout = scrape_timeout_seconds(dependency)
    probe_url = (
        f"http://{system.monitoring.blackbox_exporter}{PROBE_PATH}?module={dependency.module}"
        # The target as a query parameter: its own `?` and `&` encoded, its scheme and path kept readable.
        f"&target={quote(dependency.url, safe=':/')}&debug=true"
    )
    return (
        RunbookCheck(
            "The probe as blackbox_exporter runs it, with its log (from a pod in the cluster)",
            f"kubectl run -n {system.monitoring.namespace} probe-{dependency.name} -it --rm --restart=Never "
            f"--image=curlimages/curl -- -sS '{probe_url}'",
        ),
        RunbookCheck(
            "The same request from your machine (http_reachable counts any status below 500 as up)"
            if dependency.module == "http_reachable"
            else "The same request from your machine",
            f"curl -sS -o /dev/null --max-time {timeout} -w 'HTTP %{{http_code}} in %{{time_total}}s\\n' "
            f"'{dependency.url}'",
        ),
        RunbookCheck(
            "What Prometheus has of the probe",
            selector("probe_success", probe_labels(system, dependency)),
            "promql",
        ),
    )


def _alerts(system: System, dependency: Dependency, config: RuleConfig) -> list[Alert]:
    subject = _subject(system, dependency)
    where = probe_labels(system, dependency)
    success = selector("probe_success", where)
    duration = selector("probe_duration_seconds", where)
    checks = _checks(system, dependency)
    paging: Severity = "critical" if dependency.public_entry else "warning"
    used_by = _used_by(dependency)
    alerts = [
        subject.alert(
            DOWN,
            expr=f"{success} == 0",
            severity=paging,
            description=Description(
                "Every probe of {dependency} ({instance}) has failed for " + config.dependency_down_for + "." + used_by
            ),
            panel=_panel(subject, PanelId.DEPENDENCY_SUCCESS),
            for_=config.dependency_down_for,
            case=cases.down(system, dependency),
            threshold=f"probe_success == 0 for {config.dependency_down_for}",
            checks=checks,
        ),
        subject.alert(
            SLOW,
            expr=f"{duration} > {number(latency_alert_seconds(dependency))} and {success} == 1",
            severity="warning",
            description=Description(
                "Probes of {dependency} ({instance}) take {value}, above "
                + dependency.latency_alert
                + ", for "
                + config.dependency_slow_for
                + "."
                + used_by,
                ValueFormat.DURATION,
            ),
            panel=_panel(subject, PanelId.DEPENDENCY_DURATION),
            for_=config.dependency_slow_for,
            case=cases.slow(system, dependency),
            threshold=f"successful probes slower than {dependency.latency_alert} for {config.dependency_slow_for}",
            checks=checks,
        ),
        subject.alert(
            MISSING,
            expr=f"absent({success})",
            severity=paging,
            description=Description(
                "Prometheus has had no probe result for {dependency} for " + config.dependency_absent_for + ": "
                "its alerts cannot fire meanwhile."
            ),
            panel=_panel(subject, PanelId.DEPENDENCY_SUCCESS),
            for_=config.dependency_absent_for,
            case=cases.missing(system, dependency),
            threshold=f"no probe_success for {config.dependency_absent_for}",
            checks=checks,
        ),
    ]
    if dependency.url.startswith("https://"):
        alerts += _certificate_alerts(system, dependency, config, subject, checks)
    return alerts


def _certificate_alerts(
    system: System, dependency: Dependency, config: RuleConfig, subject: AlertSubject, checks: tuple[RunbookCheck, ...]
) -> list[Alert]:
    left = f"{selector('probe_ssl_earliest_cert_expiry', probe_labels(system, dependency))} - time()"
    warning_at = f"{config.certificate_warning_days} * {DAY_SECONDS}"
    critical_at = f"{config.certificate_critical_days} * {DAY_SECONDS}"
    description = Description(
        "The TLS certificate {dependency} ({instance}) serves expires in {value}." + _used_by(dependency),
        ValueFormat.DURATION,
    )
    tiers: list[tuple[Severity, str, str, int]] = []
    if dependency.public_entry:
        # Exclusive tiers: the critical rule takes over from the warning one, never both at once.
        tiers.append(
            ("warning", f"{left} < {warning_at} >= {critical_at}", f"{config.certificate_warning_days} days",
             config.certificate_warning_days)
        )
        tiers.append(
            ("critical", f"{left} < {critical_at}", f"{config.certificate_critical_days} days",
             config.certificate_critical_days)
        )
    else:
        tiers.append(
            ("warning", f"{left} < {warning_at}", f"{config.certificate_warning_days} days",
             config.certificate_warning_days)
        )
    return [
        subject.alert(
            CERTIFICATE,
            expr=expr,
            severity=severity,
            description=description,
            panel=_panel(subject, PanelId.DEPENDENCY_CERTIFICATE),
            for_=config.certificate_for,
            case=cases.certificate(system, dependency, days, config.certificate_for),
            threshold=f"expires within {within}",
            checks=checks,
        )
        for severity, expr, within, days in tiers
    ]
