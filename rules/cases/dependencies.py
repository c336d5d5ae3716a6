"""Dependency cases: a dependency's probe series, with the labels Prometheus Operator gives its Probe's
target (stacks.probe_target_labels), failing, slow, with a certificate near its end, or missing."""

from __future__ import annotations

from obsbundle.durations import parse_duration
from obsbundle.model import Dependency, System
from obsbundle.monitors.probes import latency_alert_seconds, probe, probe_labels
from obsbundle.promql import selector
from obsbundle.rules.definitions import Case, Inputs, InputSeries
from obsbundle.rules.input_series import constant
from obsbundle.settings import Settings
from obsbundle.stacks import probe_target_labels

TEST_MINUTES = 25
DAY_SECONDS = 86400


def target_labels(system: System, dependency: Dependency) -> dict[str, str]:
    """Every label of the dependency's probe series, as Prometheus stores them."""
    return probe_target_labels(probe(system, dependency, Settings()))


def _probe(system: System, dependency: Dependency, success: int, duration: float) -> Inputs:
    labels = target_labels(system, dependency)
    return (
        constant("probe_success", labels, success, TEST_MINUTES),
        constant("probe_duration_seconds", labels, duration, TEST_MINUTES),
    )


def down(system: System, dependency: Dependency) -> Case:
    """Probes failing for 20 minutes fire; succeeding ones stay quiet."""
    return Case(
        firing=_probe(system, dependency, 0, 0.05),
        quiet=_probe(system, dependency, 1, 0.05),
        labels=target_labels(system, dependency),
        value=0,
        eval_time="20m",
    )


def slow(system: System, dependency: Dependency) -> Case:
    """Successful probes at twice the latency alert fire; at half of it they stay quiet."""
    threshold = float(latency_alert_seconds(dependency))
    return Case(
        firing=_probe(system, dependency, 1, 2 * threshold),
        quiet=_probe(system, dependency, 1, threshold / 2),
        labels=target_labels(system, dependency),
        value=2 * threshold,
        eval_time="20m",
    )


def timing_out(slow: Case) -> Inputs:
    """The slow case's probes, each failing after the same long wait: a timeout."""
    def failed(item: InputSeries) -> InputSeries:
        return InputSeries(item.series, "0x" + item.values.split("x", 1)[1])

    return tuple(failed(item) if item.series.startswith("probe_success") else item for item in slow.firing)


def missing(system: System, dependency: Dependency) -> Case:
    """A probe that stores no result fires; one that answers keeps it quiet. The firing input is the
    quiet one's series with every sample missing (`_`), so that it replaces that series where the
    tests of several dependencies merge their inputs."""
    labels = target_labels(system, dependency)
    return Case(
        firing=(InputSeries(selector("probe_success", labels), f"_x{TEST_MINUTES}"),),
        quiet=_probe(system, dependency, 1, 0.05),
        labels=probe_labels(system, dependency),
        value=1,
        eval_time="20m",
        background=True,
    )


def certificate(system: System, dependency: Dependency, days: int, for_: str) -> Case:
    """A certificate that ends a day inside the `days` threshold fires once `for_` has passed; one
    that ends 30 days beyond it stays quiet. Test time starts at 0, so `time()` is the eval time."""
    minutes = parse_duration(for_) // 60 + 10
    labels = target_labels(system, dependency)
    expiry = (days - 1) * DAY_SECONDS

    def served(ends: int) -> Inputs:
        return (
            constant("probe_success", labels, 1, minutes + 5),
            constant("probe_ssl_earliest_cert_expiry", labels, ends, minutes + 5),
        )

    return Case(
        firing=served(expiry),
        quiet=served((days + 30) * DAY_SECONDS),
        labels=labels,
        value=expiry - minutes * 60,
        eval_time=f"{minutes}m",
    )
