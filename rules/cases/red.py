"""RED cases: 600 requests a minute in the service's own metrics, some failing, all in one
histogram bucket, so that every recorded rate, ratio and quantile is known exactly."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from obsbundle import naming
from obsbundle.model import Service
from obsbundle.rules.definitions import Case, Inputs, InputSeries, UnitTest
from obsbundle.rules.input_series import close_to, counter
from obsbundle.rules.sli import RequestMetrics, target_labels

TEST_MINUTES = 10
REQUESTS_PER_MINUTE = 600


def traffic(service: Service, metrics: RequestMetrics, *, errors_per_minute: float, bucket: int | None) -> Inputs:
    """Requests at 600 a minute, `errors_per_minute` of them failing, all in histogram bucket `bucket`
    (an index into the service's boundaries, len() for +Inf; None: no histogram)."""
    assert service.metrics is not None
    labels = target_labels(service)
    ok = REQUESTS_PER_MINUTE - errors_per_minute
    inputs = [
        counter(metrics.requests, {**labels, **metrics.ok_labels}, ok, TEST_MINUTES),
        counter(metrics.requests, {**labels, **metrics.error_labels}, errors_per_minute, TEST_MINUTES),
    ]
    if bucket is not None:
        boundaries = [*(repr(float(b)) for b in service.metrics.buckets), "+Inf"]
        histogram = {**labels, **metrics.duration_labels}
        for index, le in enumerate(boundaries):
            per_minute = REQUESTS_PER_MINUTE if index >= bucket else 0
            inputs.append(counter(f"{metrics.duration}_bucket", {**histogram, "le": le}, per_minute, TEST_MINUTES))
        if f"{metrics.duration}_count" != metrics.requests:  # Micrometer's requests are the histogram's count
            inputs.append(counter(f"{metrics.duration}_count", histogram, REQUESTS_PER_MINUTE, TEST_MINUTES))
    return _unique(inputs)


def _unique(inputs: list[InputSeries]) -> Inputs:
    return tuple({item.series: item for item in inputs}.values())


def p95_in_bucket(service: Service, index: int) -> float:
    """P95 that histogram_quantile reports when every request falls in bucket `index` (len() is +Inf,
    for which it reports the largest finite boundary)."""
    assert service.metrics is not None
    boundaries = service.metrics.buckets
    if index == len(boundaries):
        return boundaries[-1]
    lower = boundaries[index - 1] if index > 0 else 0.0
    upper = boundaries[index]
    return lower + (upper - lower) * (0.95 * REQUESTS_PER_MINUTE / REQUESTS_PER_MINUTE)


def latency(service: Service, metrics: RequestMetrics, threshold_s: Decimal, labels: Mapping[str, str]) -> Case:
    """Every request in the first bucket whose P95 is above the threshold fires; in the last bucket
    at or below it (no histogram at all when there is none) stays quiet."""
    assert service.metrics is not None
    p95s = [p95_in_bucket(service, i) for i in range(len(service.metrics.buckets) + 1)]
    slow = [i for i, value in enumerate(p95s) if value > threshold_s]
    fast = [i for i, value in enumerate(p95s) if value <= threshold_s]
    return Case(
        firing=traffic(service, metrics, errors_per_minute=0, bucket=slow[0]),
        quiet=traffic(service, metrics, errors_per_minute=0, bucket=fast[-1] if fast else None),
        labels={**labels, "quantile": "0.95"},
        value=p95s[slow[0]],
        eval_time=f"{TEST_MINUTES}m",
    )


def error_ratio(service: Service, metrics: RequestMetrics, labels: Mapping[str, str]) -> Case:
    """Twice the allowed share of failures (at most halfway to all) fires; half of it stays quiet."""
    assert service.error_rate_alert is not None
    threshold = service.error_rate_alert
    firing_share = min(2 * threshold, (1 + threshold) / 2)
    return Case(
        firing=traffic(service, metrics, errors_per_minute=float(firing_share) * REQUESTS_PER_MINUTE, bucket=None),
        quiet=traffic(service, metrics, errors_per_minute=float(threshold / 2) * REQUESTS_PER_MINUTE, bucket=None),
        labels=labels,
        value=float(firing_share),
        eval_time=f"{TEST_MINUTES}m",
    )


def error_rate(service: Service, metrics: RequestMetrics, labels: Mapping[str, str]) -> Case:
    """Twice the allowed errors per second fires; half of them stays quiet."""
    assert service.errors_per_second_alert is not None
    threshold = service.errors_per_second_alert
    return Case(
        firing=traffic(service, metrics, errors_per_minute=float(threshold * 2 * 60), bucket=None),
        quiet=traffic(service, metrics, errors_per_minute=float(threshold / 2 * 60), bucket=None),
        labels=labels,
        value=float(threshold * 2),
        eval_time=f"{TEST_MINUTES}m",
    )


def recorded_test(service: Service, metrics: RequestMetrics, labels: Mapping[str, str]) -> UnitTest:
    """What the RED recordings hold for known traffic: rates, ratio and the P95, with their labels."""
    assert service.metrics is not None
    slowest = len(service.metrics.buckets) - 1
    errors = REQUESTS_PER_MINUTE / 10
    checks = (
        close_to(naming.SERVICE_REQUESTS_RATE, labels, REQUESTS_PER_MINUTE / 60, TEST_MINUTES),
        close_to(naming.SERVICE_ERRORS_RATE, labels, errors / 60, TEST_MINUTES),
        close_to(naming.SERVICE_ERROR_RATIO, labels, errors / REQUESTS_PER_MINUTE, TEST_MINUTES),
        close_to(
            naming.SERVICE_LATENCY_QUANTILE,
            {**labels, "quantile": "0.95"},
            p95_in_bucket(service, slowest),
            TEST_MINUTES,
        ),
    )
    return UnitTest(
        f"{service.name}: the RED recordings hold its request rate, errors, error ratio and P95",
        traffic(service, metrics, errors_per_minute=errors, bucket=slowest),
        sample_checks=checks,
    )
