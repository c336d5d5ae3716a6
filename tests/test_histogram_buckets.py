"""Each instrumentation's default latency buckets are the ones its client library publishes, and a
latency SLO whose threshold is not one of them is refused with the client setting that fixes it."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client import Histogram

from obsbundle.errors import InputError
from obsbundle.loader import parse_system
from obsbundle.model import DEFAULT_BUCKETS, Instrumentation, System
from obsbundle.rules.sli import REQUEST_METRICS, le_values
from tests.support import exposition

SHOP: dict[str, Any] = {
    "apiVersion": "obsbundle/v1",
    "kind": "System",
    "name": "shop",
    "cluster": "shop-test",
    "owner": {"team": "shop", "slack_channel": "#shop-alerts"},
    "monitoring": {
        "grafana_url": "https://grafana.shop.test",
        "alertmanager_url": "https://alertmanager.shop.test",
        "runbook_url": "https://runbooks.shop.test/{system}/{alert}.md",
    },
    "node_pools": [{"name": "general", "min_nodes": 1, "max_nodes": 3}],
    "services": [
        {
            "name": "checkout",
            "namespace": "shop",
            "node_pool": "general",
            "metrics": {"port": "http"},
            "slos": [{"name": "latency", "objective": 99, "threshold": "2s", "window": "28d"}],
        }
    ],
}


def _system(instrumentation: Instrumentation, threshold: str, buckets: list[float] | None = None) -> System:
    data = copy.deepcopy(SHOP)
    service = data["services"][0]
    service["metrics"]["instrumentation"] = instrumentation.value
    if buckets is not None:
        service["metrics"]["histogram_buckets"] = buckets
    service["slos"][0]["threshold"] = threshold
    return parse_system(data, "shop.yaml")


def _threshold_error(instrumentation: Instrumentation, threshold: str, buckets: list[float] | None = None) -> str:
    with pytest.raises(InputError) as raised:
        _system(instrumentation, threshold, buckets)
    (problem,) = raised.value.problems
    assert problem.path == ("services", 0, "slos", 0, "threshold")
    return problem.message


def test_prometheus_client_defaults_are_the_installed_librarys_buckets_without_inf() -> None:
    assert DEFAULT_BUCKETS[Instrumentation.PROMETHEUS_CLIENT] == Histogram.DEFAULT_BUCKETS[:-1]
    assert Histogram.DEFAULT_BUCKETS[-1] == float("inf")


def test_micrometer_and_grpc_spring_defaults_are_micrometers_timer_buckets_from_1ms_to_30s() -> None:
    # Spot values as Micrometer's Prometheus registry prints `le` with percentiles-histogram on:
    # powers of 4 ns (4^15 ns = 1.073741824 s) and thirds between them, clamped to 1 ms..30 s.
    buckets = DEFAULT_BUCKETS[Instrumentation.MICROMETER]
    assert DEFAULT_BUCKETS[Instrumentation.GRPC_SPRING] == buckets
    assert len(buckets) == 68
    assert (buckets[0], buckets[1], buckets[-2], buckets[-1]) == (0.001, 0.001048576, 28.633115306, 30.0)
    assert 4**15 / 1e9 in buckets and 4**16 / 1e9 in buckets
    assert list(buckets) == sorted(set(buckets))


def test_the_other_defaults_are_go_defbuckets_and_the_instrumentators_low_resolution_buckets() -> None:
    assert DEFAULT_BUCKETS[Instrumentation.GRPC] == (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
    assert DEFAULT_BUCKETS[Instrumentation.FASTAPI_INSTRUMENTATOR] == (0.1, 0.5, 1.0)


@pytest.mark.parametrize("instrumentation", sorted(exposition.INSTRUMENTATION_FIXTURES))
def test_the_defaults_are_the_boundaries_in_the_instrumentations_exposition_fixture(
    instrumentation: Instrumentation,
) -> None:
    bucket = f"{REQUEST_METRICS[instrumentation].duration}_bucket"
    folder = exposition.INSTRUMENTATION_FIXTURES[instrumentation]
    published = {dict(one.labels)["le"] for one in exposition.load(folder) if one.name == bucket}
    assert published, f"no {bucket} in tests/fixtures/exposition/{folder}"
    finite = published - {"+Inf"}
    assert sorted(float(le) for le in finite) == list(DEFAULT_BUCKETS[instrumentation])
    # The SLI's `le` matcher accepts the spelling the library writes.
    assert all(le in le_values(Decimal(le)) for le in finite)


def test_a_2s_latency_slo_on_the_instrumentators_defaults_names_latency_lowr_buckets() -> None:
    message = _threshold_error(Instrumentation.FASTAPI_INSTRUMENTATOR, "2s")
    assert "2s is not a bucket boundary" in message
    assert "0.1, 0.5, 1 s: the defaults of fastapi-instrumentator" in message
    assert "Instrumentator().instrument(app, latency_lowr_buckets=(...))" in message
    assert "services[0].metrics.histogram_buckets" in message


def test_a_1s_latency_slo_on_the_instrumentators_defaults_is_accepted() -> None:
    assert _system(Instrumentation.FASTAPI_INSTRUMENTATOR, "1s").services[0].slos[0].threshold == "1s"


@pytest.mark.parametrize("instrumentation", [Instrumentation.MICROMETER, Instrumentation.GRPC_SPRING])
def test_a_500ms_latency_slo_on_micrometers_defaults_names_the_two_nearest_boundaries_and_the_slo_setting(
    instrumentation: Instrumentation,
) -> None:
    message = _threshold_error(instrumentation, "500ms")
    assert "68 boundaries from 0.001 to 30 s, nearest 0.447392426 s and 0.536870911 s" in message
    meter = {Instrumentation.MICROMETER: "http.server.requests",
             Instrumentation.GRPC_SPRING: "grpc.server.processing.duration"}[instrumentation]
    assert f"management.metrics.distribution.percentiles-histogram.{meter}=true" in message
    assert f"management.metrics.distribution.slo.{meter}=<durations>" in message


def test_a_30s_latency_slo_on_micrometers_defaults_is_accepted() -> None:
    assert _system(Instrumentation.GRPC_SPRING, "30s").services[0].slos[0].threshold == "30s"


def test_a_go_grpc_latency_slo_off_defbuckets_names_enable_handling_time_histogram() -> None:
    message = _threshold_error(Instrumentation.GRPC, "2s")
    assert "0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 s: the defaults of grpc" in message
    assert "grpc_prometheus.EnableHandlingTimeHistogram()" in message
    assert "grpc_prometheus.WithHistogramBuckets(...)" in message


def test_a_prometheus_client_latency_slo_off_its_defaults_names_the_histograms_buckets_argument() -> None:
    message = _threshold_error(Instrumentation.PROMETHEUS_CLIENT, "2s")
    assert "0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10 s" in message
    assert "the buckets= argument of the service's Histogram" in message


def test_listed_buckets_are_reported_as_the_inventorys_and_still_name_the_setting_that_publishes_them() -> None:
    message = _threshold_error(Instrumentation.FASTAPI_INSTRUMENTATOR, "300ms", [0.1, 0.5, 1, 2])
    assert "(0.1, 0.5, 1, 2 s, from histogram_buckets)" in message
    assert "latency_lowr_buckets" in message
