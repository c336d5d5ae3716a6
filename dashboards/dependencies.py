"""External dependencies on the dashboard of each service that uses them: whether the probes
succeed, how long they take against each dependency's latency alert, and the days the certificate
each one serves has left. The panels read the series the dependency alerts read (rules/dependencies.py),
selected by the Probes' static labels `system` and `dependency`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from obsbundle import naming
from obsbundle.dashboards import queries as q
from obsbundle.dashboards.panels import (
    GOOD_BELOW,
    Query,
    Unit,
    higher_is_worse,
    lower_is_worse,
    state_timeline,
    timeseries,
)
from obsbundle.links import PanelId
from obsbundle.model import Dependency, Service, System
from obsbundle.monitors.probes import latency_alert_seconds
from obsbundle.promql import any_of
from obsbundle.rules.config import RuleConfig

DAY_SECONDS = 86400


def dependencies_of(system: System, service: Service) -> list[Dependency]:
    """The dependencies whose `used_by` names the service, by name."""
    return sorted((d for d in system.dependencies if service.name in d.used_by), key=lambda d: d.name)


def _probes(system: System, dependencies: Sequence[Dependency], metric: str) -> str:
    names = any_of(dependency.name for dependency in dependencies)
    return q.sel(metric, {naming.SYSTEM_LABEL: system.name}, f"{naming.DEPENDENCY_LABEL}=~{names}")


def _listed(dependencies: Sequence[Dependency], value: str) -> str:
    return ", ".join(f"{dependency.name} {value.format(dependency=dependency)}" for dependency in dependencies)


def dependency_panels(system: System, dependencies: Sequence[Dependency], rules: RuleConfig) -> list[Any]:
    """Probe success, duration and certificate days left of `dependencies` (one series each)."""
    by_dependency = "{{dependency}}"
    latencies = {float(latency_alert_seconds(dependency)) for dependency in dependencies}
    tls = [dependency for dependency in dependencies if dependency.url.startswith("https://")]
    panels = [
        state_timeline(
            "Probe success",
            "Whether blackbox_exporter's last probe of each dependency succeeded: "
            + _listed(dependencies, "({dependency.url}, module {dependency.module})")
            + f". DependencyDown fires after {rules.dependency_down_for} of failures.",
            [Query(f"max by ({naming.DEPENDENCY_LABEL}) ({_probes(system, dependencies, 'probe_success')})",
                   by_dependency)],
            Unit.COUNT,
            panel_id=PanelId.DEPENDENCY_SUCCESS,
            thresholds=lower_is_worse(1),
            states={0: "failing", 1: "up"},
            width=8,
        ),
        timeseries(
            "Probe duration",
            "How long each probe took, DNS to the last byte. DependencySlow warns when successful probes stay "
            f"above the latency alert for {rules.dependency_slow_for}: "
            + _listed(dependencies, "{dependency.latency_alert}")
            + ".",
            [Query(f"max by ({naming.DEPENDENCY_LABEL}) ({_probes(system, dependencies, 'probe_duration_seconds')})",
                   by_dependency)],
            Unit.SECONDS,
            panel_id=PanelId.DEPENDENCY_DURATION,
            thresholds=higher_is_worse(None, latencies.pop()) if len(latencies) == 1 else GOOD_BELOW,
            show_thresholds=len({d.latency_alert for d in dependencies}) == 1,
            width=8,
        ),
    ]
    if tls:
        panels.append(
            timeseries(
                "Certificate days left",
                "Days until the earliest expiry in the certificate chain each https dependency serves. "
                f"DependencyCertificateExpiring warns under {rules.certificate_warning_days} days (and pages under "
                f"{rules.certificate_critical_days} for the system's own public entry).",
                [Query(
                    f"min by ({naming.DEPENDENCY_LABEL}) "
                    f"({_probes(system, tls, 'probe_ssl_earliest_cert_expiry')} - time()) / {DAY_SECONDS}",
                    by_dependency,
                )],
                Unit.COUNT,
                panel_id=PanelId.DEPENDENCY_CERTIFICATE,
                thresholds=lower_is_worse(rules.certificate_critical_days, rules.certificate_warning_days),
                show_thresholds=True,
                width=8,
            )
        )
    return panels
