"""RED recording rules per API service, and the API alerts the inventory asks for.

Recorded per service whatever the instrumentation (names in naming.py; labels system, namespace,
service): request rate, error rate and ratio, latency buckets and the 0.5 / 0.95 / 0.99
quantiles. Alerts read the recorded series, so the dashboard panel shows what the alert saw:

- ApiHighLatency (warning): P95 above the service's `latency_alert`;
- ApiHighErrorRatio (warning): share of failed requests above `error_rate_alert`;
- ApiHighErrorRate (critical): failed requests per second above `errors_per_second_alert`
  (Aegis's UserServiceHighErrorRate: 5xx above 0.1/s for 5 minutes).
"""

from __future__ import annotations

from decimal import Decimal

from obsbundle import naming
from obsbundle.durations import parse_duration_ms
from obsbundle.errors import InputError, Problem
from obsbundle.links import PanelId
from obsbundle.model import Service, System, WorkloadKind
from obsbundle.promql import selector
from obsbundle.rules.alert_labels import recorded_service_labels, service_subject
from obsbundle.rules.cases import red as cases
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.definitions import (
    Alert,
    AlertDoc,
    Recording,
    RuleGroup,
    RunbookCheck,
)
from obsbundle.rules.sli import (
    RequestMetrics,
    duration_buckets_rate,
    errors_rate,
    request_metrics,
    requests_rate,
)
from obsbundle.rules.templating import Description, ValueFormat

QUANTILES = ("0.5", "0.95", "0.99")

HIGH_LATENCY = AlertDoc(
    name="ApiHighLatency",
    summary="An API's 95th percentile latency is above its alert threshold.",
    meaning=(
        "One request in twenty took longer than the service's `latency_alert` over the last five "
        "minutes, for five minutes. Users wait; timeouts upstream may follow."
    ),
    actions=(
        "Open the latency panel: one endpoint or all of them? One pod or all?",
        "Check the service's dependencies (database connections and locks, cache hit ratio, external APIs).",
        "Check CPU throttling and memory pressure of its pods; scale out if it is saturated.",
        "If a rollout started it, roll back.",
    ),
)
HIGH_ERROR_RATIO = AlertDoc(
    name="ApiHighErrorRatio",
    summary="An API answers too large a share of requests with server errors.",
    meaning=(
        "The share of requests that failed through the server's fault (HTTP 5xx, or the gRPC codes "
        "that map to one) stayed above the service's `error_rate_alert` for five minutes."
    ),
    actions=(
        "Open the error panel: which endpoints and status codes?",
        "Read the service's logs for the failing requests (`kubectl logs`).",
        "Check its dependencies and recent rollouts; roll back a bad release.",
    ),
)
HIGH_ERROR_RATE = AlertDoc(
    name="ApiHighErrorRate",
    summary="An API returns server errors faster than its alert threshold.",
    meaning=(
        "Failed requests per second stayed above the service's `errors_per_second_alert` for five "
        "minutes, whatever the traffic (for a low-traffic service a ratio would say too little)."
    ),
    actions=(
        "Open the error panel: which endpoints and status codes?",
        "Read the service's logs for the failing requests (`kubectl logs`).",
        "Check its dependencies and recent rollouts; roll back a bad release.",
    ),
)


def red_services(system: System) -> list[tuple[Service, RequestMetrics]]:
    """API services with standard request metrics, by name."""
    found = []
    for service in sorted(system.services, key=lambda s: s.name):
        metrics = request_metrics(service)
        if service.kind is WorkloadKind.API and metrics is not None:
            found.append((service, metrics))
    return found


def group_name(system: System, service: Service) -> str:
    return f"{system.name}-red-{service.name}"


def red_recordings(system: System, service: Service, metrics: RequestMetrics) -> list[Recording]:
    labels = recorded_service_labels(system, service)
    recorded = selector(naming.SERVICE_DURATION_BUCKETS_RATE, labels)
    rules = [
        Recording(naming.SERVICE_REQUESTS_RATE, requests_rate(metrics, service), labels),
        Recording(naming.SERVICE_ERRORS_RATE, errors_rate(metrics, service), labels),
        Recording(
            naming.SERVICE_ERROR_RATIO,
            f"{selector(naming.SERVICE_ERRORS_RATE, labels)}\n/ {selector(naming.SERVICE_REQUESTS_RATE, labels)}",
            labels,
        ),
        Recording(naming.SERVICE_DURATION_BUCKETS_RATE, duration_buckets_rate(metrics, service), labels),
    ]
    rules.extend(
        Recording(naming.SERVICE_LATENCY_QUANTILE, f"histogram_quantile({q}, {recorded})", {**labels, "quantile": q})
        for q in QUANTILES
    )
    return rules


def _latency_threshold(system: System, index: int, service: Service) -> Decimal:
    """The service's `latency_alert` in seconds; refused at or above the histogram's largest
    boundary, which is the most histogram_quantile ever reports."""
    assert service.latency_alert is not None and service.metrics is not None
    threshold_s = Decimal(parse_duration_ms(service.latency_alert)) / 1000
    if service.metrics.buckets[-1] <= threshold_s:
        raise InputError(
            [
                Problem(
                    system.name,
                    ("services", index, "latency_alert"),
                    (
                        f"{service.latency_alert} is at or above the histogram's largest boundary "
                        f"({service.metrics.buckets[-1]:g} s): histogram_quantile never reports more, so the alert "
                        "could never fire; lower it or list larger histogram_buckets"
                    ),
                )
            ]
        )
    return threshold_s


def _latency_alert(system: System, index: int, service: Service, metrics: RequestMetrics, config: RuleConfig) -> Alert:
    threshold_s = _latency_threshold(system, index, service)
    labels = recorded_service_labels(system, service)
    p95 = selector(naming.SERVICE_LATENCY_QUANTILE, {**labels, "quantile": "0.95"})
    threshold = format(threshold_s.normalize(), "f")
    return service_subject(system, service).alert(
        HIGH_LATENCY,
        expr=f"{p95} > {threshold}",
        severity="warning",
        description=Description(
            f"P95 latency of {service.name} is {{value}} (alert above {service.latency_alert}).", ValueFormat.DURATION
        ),
        panel=PanelId.SERVICE_LATENCY,
        for_=config.api_for,
        case=cases.latency(service, metrics, threshold_s, labels),
        threshold=f"P95 > {service.latency_alert} for {config.api_for}",
        checks=(RunbookCheck("P95 over the last 5 minutes", p95, "promql"),),
    )


def _error_ratio_alert(system: System, service: Service, metrics: RequestMetrics, config: RuleConfig) -> Alert:
    assert service.error_rate_alert is not None
    labels = recorded_service_labels(system, service)
    ratio = selector(naming.SERVICE_ERROR_RATIO, labels)
    threshold = service.error_rate_alert
    return service_subject(system, service).alert(
        HIGH_ERROR_RATIO,
        expr=f"{ratio} > {format(threshold.normalize(), 'f')}",
        severity="warning",
        description=Description(
            f"{{value}} of {naming.possessive(service.name)} requests failed over the last 5 minutes "
            f"(alert above {float(threshold) * 100:g}%).",
            ValueFormat.PERCENT,
        ),
        panel=PanelId.SERVICE_ERROR_RATIO,
        for_=config.api_for,
        case=cases.error_ratio(service, metrics, labels),
        threshold=f"> {float(threshold) * 100:g}% for {config.api_for}",
        checks=(RunbookCheck("Error ratio over the last 5 minutes", ratio, "promql"),),
    )


def _error_rate_alert(system: System, service: Service, metrics: RequestMetrics, config: RuleConfig) -> Alert:
    assert service.errors_per_second_alert is not None
    labels = recorded_service_labels(system, service)
    rate = selector(naming.SERVICE_ERRORS_RATE, labels)
    threshold = service.errors_per_second_alert
    return service_subject(system, service).alert(
        HIGH_ERROR_RATE,
        expr=f"{rate} > {format(threshold.normalize(), 'f')}",
        severity="critical",
        description=Description(
            f"{service.name} answers {{value}} requests per second with a server error "
            f"(alert above {format(threshold.normalize(), 'f')}/s).",
            ValueFormat.PER_SECOND,
        ),
        panel=PanelId.SERVICE_ERROR_RATIO,
        for_=config.api_for,
        case=cases.error_rate(service, metrics, labels),
        threshold=f"> {format(threshold.normalize(), 'f')}/s for {config.api_for}",
        checks=(RunbookCheck("Server errors per second over the last 5 minutes", rate, "promql"),),
    )


def red_groups(system: System, config: RuleConfig) -> list[RuleGroup]:
    """Per API service, one group: its RED recordings, then the alerts that read them."""
    index_of = {service.name: index for index, service in enumerate(system.services)}
    groups = []
    for service, metrics in red_services(system):
        rules: list[Recording | Alert] = list(red_recordings(system, service, metrics))
        if service.latency_alert is not None:
            rules.append(_latency_alert(system, index_of[service.name], service, metrics, config))
        if service.error_rate_alert is not None:
            rules.append(_error_ratio_alert(system, service, metrics, config))
        if service.errors_per_second_alert is not None:
            rules.append(_error_rate_alert(system, service, metrics, config))
        groups.append(
            RuleGroup(
                group_name(system, service),
                config.interval,
                tuple(rules),
                tests=(cases.recorded_test(service, metrics, recorded_service_labels(system, service)),),
            )
        )
    return groups
