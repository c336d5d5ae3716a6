"""Control-plane cases: the apiserver's requests and client certificates, etcd's members, the
scheduler's and controller-manager's targets, each labelled as the system's stack scrapes them.

Label sets are the exposition fixtures' (tests/fixtures/exposition/{apiserver,etcd}/): a GET of
one pod and a POST, as kube-apiserver labels them; empty labels (`group`, `subresource`,
`dry_run`) are left out, as Prometheus drops them on ingest.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction

from obsbundle.durations import parse_duration
from obsbundle.model import System
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.definitions import Case, Inputs
from obsbundle.rules.input_series import constant, counter
from obsbundle.stacks import Exporter, Node, exporter_target_labels

TEST_NODE = Node(name="master-1", host_ip="10.0.0.11")
"""The control-plane node the generated tests' targets run on."""
REQUESTS_PER_MINUTE = 1000
VERB_OF_CLASS = {"read": ("GET", "200"), "write": ("POST", "201")}
"""One verb of each SLO class and its success code, as the apiserver reports them."""

FSYNC_BOUNDS = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192)
"""etcd's disk histograms' buckets: ExponentialBuckets(0.001, 2, 14) (server/storage/wal/metrics.go)."""
CLIENT_CERT_BOUNDS = (0, 1800, 3600, 7200, 21600, 43200, 86400, 172800, 345600, 604800, 2592000, 7776000, 15552000,
                      31104000)
"""apiserver_client_certificate_expiration_seconds' buckets (x509.go)."""


def target(system: System, exporter: Exporter) -> dict[str, str]:
    """The labels the system's stack gives `exporter`'s series on TEST_NODE."""
    return exporter_target_labels(system.monitoring.stack, exporter, TEST_NODE)


def _minutes(duration: str) -> int:
    return parse_duration(duration) // 60


def _requests(system: System, verb_class: str, error_share: Fraction, minutes: int) -> Inputs:
    """Requests of one SLO class at REQUESTS_PER_MINUTE, `error_share` of them 500s, all fast."""
    verb, ok = VERB_OF_CLASS[verb_class]
    labels = {
        **target(system, Exporter.APISERVER),
        "component": "apiserver",
        "resource": "pods",
        "scope": "resource",
        "verb": verb,
        "version": "v1",
    }
    errors = float(REQUESTS_PER_MINUTE * error_share)
    return (
        counter("apiserver_request_total", {**labels, "code": ok}, REQUESTS_PER_MINUTE - errors, minutes),
        counter("apiserver_request_total", {**labels, "code": "500"}, errors, minutes),
        counter("apiserver_request_sli_duration_seconds_count", labels, REQUESTS_PER_MINUTE, minutes),
        counter("apiserver_request_sli_duration_seconds_bucket", {**labels, "le": "1"}, REQUESTS_PER_MINUTE, minutes),
    )


def burn(
    system: System, verb_class: str, *, threshold: Fraction, faster: Fraction | None, for_: str, recorded_every: str
) -> Case:
    """Errors halfway between a tier's threshold and the faster tier's (twice the threshold for
    the fastest) fire it; errors at nine tenths of its threshold stay quiet. Neither reaches the
    faster tier's threshold, and the test looks three minutes after the tier's `for` has passed
    (counted from the first evaluation of the rules that record its long window, every
    `recorded_every`), before any slower tier's longer `for` can."""
    share = min(threshold * 2, Fraction(1)) if faster is None else (threshold + faster) / 2
    quiet = threshold * 9 / 10
    at = _minutes(for_) + _minutes(recorded_every) + 3
    return Case(
        firing=_requests(system, verb_class, share, at),
        quiet=_requests(system, verb_class, quiet, at),
        labels={"system": system.name, "verb": verb_class},
        value=float(share),
        eval_time=f"{at}m",
    )


def terminated(system: System, config: RuleConfig) -> Case:
    """Terminations at 1.5× the threshold share of requests fire; at half of it, quiet."""
    at = _minutes(config.apiserver_terminated_for) + 15
    labels = {**target(system, Exporter.APISERVER), "component": "apiserver", "resource": "pods",
              "scope": "cluster", "verb": "LIST", "version": "v1", "code": "429"}

    def inputs(share: Decimal) -> Inputs:
        dropped = REQUESTS_PER_MINUTE * share
        return (
            counter("apiserver_request_terminations_total", labels, dropped, at),
            counter("apiserver_request_total", {**labels, "code": "200"}, REQUESTS_PER_MINUTE - dropped, at),
        )

    high = config.apiserver_terminated_ratio * Decimal("1.5")
    return Case(
        firing=inputs(high),
        quiet=inputs(config.apiserver_terminated_ratio / 2),
        labels={},
        value=float(high),
        eval_time=f"{at}m",
    )


def _client_certs(system: System, high: float, minutes: int) -> Inputs:
    """Client certificates presented every minute, all in the bucket that ends at `high` seconds left."""
    labels = target(system, Exporter.APISERVER)
    per_minute = 60
    inputs = [
        counter("apiserver_client_certificate_expiration_seconds_bucket", {**labels, "le": _le(bound)},
                per_minute if bound >= high else 0, minutes)
        for bound in CLIENT_CERT_BOUNDS
    ]
    inputs.append(counter("apiserver_client_certificate_expiration_seconds_bucket", {**labels, "le": "+Inf"},
                          per_minute, minutes))
    inputs.append(counter("apiserver_client_certificate_expiration_seconds_count", labels, per_minute, minutes))
    return tuple(inputs)


def _le(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else repr(bound)


def _bucket_below(seconds: int) -> tuple[float, float]:
    """The bucket (lower, upper bound) whose upper bound is the largest at or below `seconds`."""
    upper = max(bound for bound in CLIENT_CERT_BOUNDS if bound <= seconds)
    return CLIENT_CERT_BOUNDS[CLIENT_CERT_BOUNDS.index(upper) - 1], upper


def client_certificate(system: System, config: RuleConfig, days: int, shorter_days: int | None) -> Case:
    """Certificates in the bucket just below `days` fire, and stay above `shorter_days` (the
    critical tier's) so only this tier does; certificates with six months
    to a year left stay quiet.
    The value is the 1st percentile in hours, interpolated within the bucket as Prometheus does."""
    low, high = _bucket_below(days * 86400)
    if shorter_days is not None:
        assert low >= shorter_days * 86400, "the bucket below the warning bound must lie above the critical one"
    at = _minutes(config.client_cert_for) + 10
    labels = target(system, Exporter.APISERVER)
    return Case(
        firing=_client_certs(system, high, at),
        quiet=_client_certs(system, 31104000, at),
        labels={"job": labels["job"], "instance": labels["instance"]},
        value=(low + (high - low) * 0.01) / 3600,
        eval_time=f"{at}m",
    )


def _etcd(system: System) -> dict[str, str]:
    return target(system, Exporter.ETCD)


def etcd_no_leader(system: System, config: RuleConfig) -> Case:
    """A member that reports no leader fires; one that has a leader stays quiet."""
    at = _minutes(config.etcd_no_leader_for) + 5
    labels = _etcd(system)
    return Case(
        firing=(constant("etcd_server_has_leader", labels, 0, at),),
        quiet=(constant("etcd_server_has_leader", labels, 1, at),),
        labels=labels,
        value=0,
        eval_time=f"{at}m",
    )


def etcd_leader_changes(system: System, config: RuleConfig) -> Case:
    """A new leader every two minutes fires (7.5 in 15 minutes); one every twenty minutes stays quiet."""
    at = _minutes(config.etcd_leader_changes_window) + _minutes(config.etcd_leader_changes_for) + 10
    labels = _etcd(system)
    window = _minutes(config.etcd_leader_changes_window)
    return Case(
        firing=(counter("etcd_server_leader_changes_seen_total", labels, 0.5, at),),
        quiet=(counter("etcd_server_leader_changes_seen_total", labels, 0.05, at),),
        labels={"job": labels["job"]},
        value=0.5 * window,
        eval_time=f"{at}m",
    )


def _latency(metric: str, labels: Mapping[str, str], upper: float, minutes: int) -> Inputs:
    """Observations of a disk histogram, every one in the bucket ending at `upper`."""
    per_minute = 600
    inputs = [
        counter(f"{metric}_bucket", {**labels, "le": _le(bound)}, per_minute if bound >= upper else 0, minutes)
        for bound in FSYNC_BOUNDS
    ]
    inputs.append(counter(f"{metric}_bucket", {**labels, "le": "+Inf"}, per_minute, minutes))
    return tuple(inputs)


def etcd_latency(system: System, config: RuleConfig, metric: str, above: Decimal, below: Decimal | None) -> Case:
    """Every observation in the first bucket whose 99th percentile lies above `above` (and at most
    `below`, the next tier's bound) fires; observations whose 99th percentile is under half of
    `above` (so under a lower tier's bound too) stay quiet."""
    labels = _etcd(system)
    upper = next(
        bound for bound in FSYNC_BOUNDS[1:]
        if _p99(bound) > above and (below is None or _p99(bound) <= below)
    )
    quiet = max(bound for bound in FSYNC_BOUNDS[1:] if _p99(bound) <= above / 2)
    at = _minutes(config.etcd_latency_for) + 10
    return Case(
        firing=_latency(metric, labels, upper, at),
        quiet=_latency(metric, labels, quiet, at),
        labels={"job": labels["job"], "instance": labels["instance"]},
        value=_p99(upper),
        eval_time=f"{at}m",
    )


def _p99(upper: float) -> float:
    """histogram_quantile(0.99) of observations that all fall in the bucket ending at `upper`."""
    lower = FSYNC_BOUNDS[FSYNC_BOUNDS.index(upper) - 1]
    return lower + (upper - lower) * 0.99


def etcd_quota(system: System, config: RuleConfig) -> Case:
    """A database at 98 % of its quota fires; at 60 %, quiet."""
    labels = _etcd(system)
    quota = 2147483648
    at = _minutes(config.etcd_quota_for) + 10

    def inputs(share: float) -> Inputs:
        return (
            constant("etcd_mvcc_db_total_size_in_bytes", labels, int(quota * share), at),
            constant("etcd_server_quota_backend_bytes", labels, quota, at),
        )

    return Case(firing=inputs(0.98), quiet=inputs(0.6), labels=labels, value=int(quota * 0.98) / quota,
                eval_time=f"{at}m")


def down(system: System, config: RuleConfig, exporter: Exporter) -> Case:
    """A target that fails its scrapes fires; one that answers stays quiet."""
    at = _minutes(config.control_plane_down_for) + 5
    labels = target(system, exporter)
    return Case(
        firing=(constant("up", labels, 0, at),),
        quiet=(constant("up", labels, 1, at),),
        labels={},
        value=1,
        eval_time=f"{at}m",
    )
