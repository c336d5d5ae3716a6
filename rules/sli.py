"""Request metrics per instrumentation, and the SLI and RED queries built from them.

Every service's series are selected by the `namespace` and `service` labels its monitor sets.

- prometheus-client: `http_requests_total` (HTTP code in `status`), `http_request_duration_seconds`.
- fastapi-instrumentator (prometheus-fastapi-instrumentator's defaults): the same names, with
  `status` grouped as `2xx`…`5xx` and the histogram labelled by `handler` and `method`.
- micrometer: `http_server_requests_seconds` (`_count` counts requests; HTTP code in `status`).
- grpc (go-grpc-prometheus names): `grpc_server_handled_total` with `grpc_code`;
  `grpc_server_handling_seconds` for unary calls only (a stream's duration is its lifetime).
- grpc-spring (Micrometer's `grpc.server.processing.duration` timer, through grpc-spring):
  `grpc_server_processing_duration_seconds` (`_count` counts calls; code in `statusCode`, spelled
  as Java's `Status.Code.name()`; `methodType` `UNARY` for unary calls). Its gRPC `service` tag
  arrives as `exported_service`: the monitor's `service` target label wins.
- custom: the SLO's own `good_query` and `total_query`; no RED.
- bad-events: the SLO's own `bad_query` and `total_query`; good is total − bad.
- error-ratio: the SLO's own `error_ratio_query` (Sloth's `raw`), recorded at 5m as one event per
  5-minute piece, bad by the ratio's value, so that every window is the average of its pieces.
- gauge: the SLO's own `gauge_query` (a 0/1 gauge), one event per sample, good when 1.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from obsbundle import naming
from obsbundle.model import Instrumentation, Service, SliKind, Slo
from obsbundle.promql import quote, selector

INCREASE_WINDOW = "5m"

# gRPC codes that are the server's fault: exactly those grpc-gateway maps to an HTTP 5xx
# (Unknown, Internal and DataLoss → 500, Unimplemented → 501, Unavailable → 503,
# DeadlineExceeded → 504). The rest (InvalidArgument, NotFound, PermissionDenied,
# Unauthenticated, ResourceExhausted, FailedPrecondition, Aborted, OutOfRange, Canceled) answer a
# request the client got wrong or gave up on, as a 4xx does.
GRPC_SERVER_ERRORS = ("Unknown", "DeadlineExceeded", "Unimplemented", "Internal", "Unavailable", "DataLoss")
# The same codes as grpc-java's Status.Code.name(), which Micrometer's gRPC interceptor
# (AbstractMetricCollectingInterceptor) writes into `statusCode`.
GRPC_JAVA_SERVER_ERRORS = ("UNKNOWN", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS")


@dataclass(frozen=True)
class RequestMetrics:
    """Where one instrumentation counts requests, errors and durations."""

    requests: str
    """Counter of every request."""
    error_matcher: str
    """Matcher that keeps the requests that failed through the server's fault."""
    ok_labels: Mapping[str, str]
    """Labels of a successful request (for generated test input)."""
    error_labels: Mapping[str, str]
    """Labels of a failed request (for generated test input)."""
    duration: str
    """Histogram base name: `<duration>_bucket` and `<duration>_count`."""
    duration_labels: Mapping[str, str]
    """Extra equality matchers on the histogram (gRPC: unary calls)."""
    group_labels: frozenset[str] | None
    """Labels a grouped SLO (`group_by`) can split by: the library puts them on the request counter
    and the histogram alike (tests/fixtures/exposition/<library>/ show them). None: the application
    names its own labels (prometheus-client), so any but the outcome's may be asked for."""
    outcome_labels: frozenset[str]
    """Labels that tell a good request from a bad one: grouping by them would split the SLI itself."""


REQUEST_METRICS: dict[Instrumentation, RequestMetrics] = {
    Instrumentation.PROMETHEUS_CLIENT: RequestMetrics(
        requests="http_requests_total",
        error_matcher='status=~"5.."',
        ok_labels={"status": "200"},
        error_labels={"status": "500"},
        duration="http_request_duration_seconds",
        duration_labels={},
        group_labels=None,
        outcome_labels=frozenset({"status"}),
    ),
    Instrumentation.MICROMETER: RequestMetrics(
        requests="http_server_requests_seconds_count",
        error_matcher='status=~"5.."',
        ok_labels={"status": "200", "outcome": "SUCCESS"},
        error_labels={"status": "500", "outcome": "SERVER_ERROR"},
        duration="http_server_requests_seconds",
        duration_labels={},
        group_labels=frozenset({"method", "uri"}),
        outcome_labels=frozenset({"status", "outcome", "exception", "error"}),
    ),
    Instrumentation.GRPC: RequestMetrics(
        requests="grpc_server_handled_total",
        error_matcher=f"grpc_code=~{quote('|'.join(GRPC_SERVER_ERRORS))}",
        ok_labels={"grpc_code": "OK", "grpc_type": "unary"},
        error_labels={"grpc_code": "Unavailable", "grpc_type": "unary"},
        duration="grpc_server_handling_seconds",
        duration_labels={"grpc_type": "unary"},
        group_labels=frozenset({"grpc_service", "grpc_method", "grpc_type"}),
        outcome_labels=frozenset({"grpc_code"}),
    ),
    # `status=~"5.."` also matches the instrumentator's grouped "5xx".
    Instrumentation.FASTAPI_INSTRUMENTATOR: RequestMetrics(
        requests="http_requests_total",
        error_matcher='status=~"5.."',
        ok_labels={"status": "2xx"},
        error_labels={"status": "5xx"},
        duration="http_request_duration_seconds",
        duration_labels={},
        group_labels=frozenset({"handler", "method"}),
        outcome_labels=frozenset({"status"}),
    ),
    # methodType is grpc-java's MethodDescriptor.MethodType.name(): UNARY, CLIENT_STREAMING, …
    Instrumentation.GRPC_SPRING: RequestMetrics(
        requests="grpc_server_processing_duration_seconds_count",
        error_matcher=f"statusCode=~{quote('|'.join(GRPC_JAVA_SERVER_ERRORS))}",
        ok_labels={"statusCode": "OK", "methodType": "UNARY"},
        error_labels={"statusCode": "UNAVAILABLE", "methodType": "UNARY"},
        duration="grpc_server_processing_duration_seconds",
        duration_labels={"methodType": "UNARY"},
        # The gRPC service is Micrometer's `service` tag, which arrives as `exported_service`.
        group_labels=frozenset({"exported_service", "method", "methodType"}),
        outcome_labels=frozenset({"statusCode"}),
    ),
}


def request_metrics(service: Service) -> RequestMetrics | None:
    """The service's request metrics, or None when it has no standard ones (custom, unscraped)."""
    if service.metrics is None:
        return None
    return REQUEST_METRICS.get(service.metrics.instrumentation)


def target_labels(service: Service) -> dict[str, str]:
    """The labels its monitor puts on every series of the service."""
    return {naming.NAMESPACE_LABEL: service.namespace, naming.SERVICE_LABEL: service.name}


def le_values(boundary: Decimal) -> list[str]:
    """How client libraries spell a bucket boundary in `le`: Go writes `2`, Python and Java `2.0`."""
    as_float = float(boundary)
    go = str(int(as_float)) if as_float.is_integer() and abs(as_float) < 1e15 else repr(as_float)
    return sorted({go, repr(as_float)})


def le_matcher(boundary: Decimal) -> str:
    spellings = le_values(boundary)
    if len(spellings) == 1:
        return f"le={quote(spellings[0])}"
    return f"le=~{quote('|'.join(re.escape(value) for value in spellings))}"


def _sum(group_by: tuple[str, ...]) -> str:
    """`sum`, or `sum by (labels)` for a grouped SLO: one SLI per value of its group labels."""
    return f"sum by ({', '.join(group_by)}) " if group_by else "sum"


def _increase(series: str, group_by: tuple[str, ...] = ()) -> str:
    return f"{_sum(group_by)}(increase({series}[{INCREASE_WINDOW}]))"


_PLAIN_SELECTOR = re.compile(r"^\s*[a-zA-Z_:][a-zA-Z0-9_:]*\s*(\{[^{}]*\})?\s*$")


def at_window(query: str, window: str = INCREASE_WINDOW) -> str:
    """`query` with Sloth's `{{.window}}` placeholder (spaces inside the braces allowed) set to `window`."""
    return re.sub(r"\{\{\s*\.window\s*\}\}", window, query.strip())


def has_window(query: str) -> bool:
    return at_window(query, "") != query.strip()


def _increase_of_query(query: str, group_by: tuple[str, ...]) -> str:
    """5m increase of a custom counter query: a selector directly, any other expression as a
    subquery; a query over `{{.window}}` already counts the window's events, so it is only summed."""
    if has_window(query):
        return f"{_sum(group_by)}({at_window(query)})"
    if _PLAIN_SELECTOR.match(query):
        return f"{_sum(group_by)}(increase({query.strip()}[{INCREASE_WINDOW}]))"
    return f"{_sum(group_by)}(increase(({query.strip()})[{INCREASE_WINDOW}:]))"


def _minus_bad(total: str, bad: str, group_by: tuple[str, ...]) -> str:
    """Good events as total − bad, where a total without bad series (no failure yet: client
    libraries create a label set on first use) counts no bad event rather than dropping out: for
    one SLI, `or vector(0)`; for a grouped SLO, `or 0 * total`, which gives each group its zero."""
    zero = f"0 * {total}" if group_by else "vector(0)"
    return f"{total}\n- ({bad} or {zero})"


def _error_ratio_queries(query: str, group_by: tuple[str, ...]) -> tuple[str, str]:
    """(good, total) of a ready-made error ratio: each 5-minute piece is one event, bad by the
    ratio's value. A ratio that is not a number (0/0 while nothing is served) records nothing, so
    the piece weighs nothing in the windows. Several series (of a group) count as their worst."""
    worst = f"max by ({', '.join(group_by)}) " if group_by else "max"
    ratio = f"{worst}({at_window(query)}) >= 0"
    return f"1 - clamp_max({ratio}, 1)", f"({ratio}) * 0 + 1"


def _gauge_queries(query: str, group_by: tuple[str, ...]) -> tuple[str, str]:
    """(good, total) of a 0/1 gauge selector: every sample of every series in the last 5 minutes is
    one event, good when 1 (Pyrra's bool_gauge counts the same way). The samples are the
    scrapes' own, which a subquery would replace with its evaluation steps: checks.py requires a
    selector."""
    selector_text = query.strip()
    return (
        f"{_sum(group_by)}(sum_over_time({selector_text}[{INCREASE_WINDOW}]))",
        f"{_sum(group_by)}(count_over_time({selector_text}[{INCREASE_WINDOW}]))",
    )


def sli_event_queries(service: Service, slo: Slo) -> tuple[str, str]:
    """(good, total): PromQL for the SLO's good and total events over the last 5 minutes.

    Bad events are subtracted from the total rather than good ones counted, so that a full outage
    (no successful request at all, hence no success series) still gives good = 0, not nothing.
    """
    group_by = slo.group_by
    if slo.kind is SliKind.CUSTOM:
        assert slo.good_query is not None and slo.total_query is not None
        return _increase_of_query(slo.good_query, group_by), _increase_of_query(slo.total_query, group_by)
    if slo.kind is SliKind.BAD_EVENTS:
        assert slo.bad_query is not None and slo.total_query is not None
        total = _increase_of_query(slo.total_query, group_by)
        return _minus_bad(total, _increase_of_query(slo.bad_query, group_by), group_by), total
    if slo.kind is SliKind.ERROR_RATIO:
        assert slo.error_ratio_query is not None
        return _error_ratio_queries(slo.error_ratio_query, group_by)
    if slo.kind is SliKind.GAUGE:
        assert slo.gauge_query is not None
        return _gauge_queries(slo.gauge_query, group_by)
    metrics = request_metrics(service)
    assert metrics is not None, "checks.py requires standard request metrics for availability and latency SLOs"
    labels = target_labels(service)
    if slo.kind is SliKind.AVAILABILITY:
        total = _increase(selector(metrics.requests, labels), group_by)
        bad = _increase(selector(metrics.requests, labels, metrics.error_matcher), group_by)
        return _minus_bad(total, bad, group_by), total
    threshold = slo.threshold_seconds
    assert threshold is not None
    histogram = {**labels, **metrics.duration_labels}
    good = _increase(selector(f"{metrics.duration}_bucket", histogram, le_matcher(threshold)), group_by)
    total = _increase(selector(f"{metrics.duration}_count", histogram), group_by)
    return good, total


def requests_rate(metrics: RequestMetrics, service: Service) -> str:
    return f"sum(rate({selector(metrics.requests, target_labels(service))}[5m]))"


def errors_rate(metrics: RequestMetrics, service: Service) -> str:
    """Failed requests per second; 0 (not nothing) while requests arrive and none fail."""
    errors = f"sum(rate({selector(metrics.requests, target_labels(service), metrics.error_matcher)}[5m]))"
    return f"{errors}\nor 0 * {requests_rate(metrics, service)}"


def duration_buckets_rate(metrics: RequestMetrics, service: Service) -> str:
    histogram = {**target_labels(service), **metrics.duration_labels}
    return f"sum by (le) (rate({selector(metrics.duration + '_bucket', histogram)}[5m]))"


def plain_selector_labels(query: str) -> tuple[str, dict[str, str]] | None:
    """(metric, labels) of a custom query that is a selector with equality matchers only, else None."""
    match = re.match(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{(.*)\})?\s*$", query)
    if match is None:
        return None
    labels: dict[str, str] = {}
    body = (match.group(2) or "").strip()
    for part in filter(None, (item.strip() for item in body.split(","))):
        matcher = re.match(r'^([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"$', part)
        if matcher is None:
            return None
        labels[matcher.group(1)] = matcher.group(2).encode().decode("unicode_escape")
    return match.group(1), labels
