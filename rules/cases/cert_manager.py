"""cert-manager cases: one Certificate as cert-manager's controller reports it, scraped through the
generated ServiceMonitor (monitors/cert_manager.py: `honorLabels`, so `namespace` is the
Certificate's). Label names are pkg/metrics/certificates_test.go's (tests/fixtures/exposition/cert-manager/)."""

from __future__ import annotations

from obsbundle.durations import parse_duration
from obsbundle.model import System
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.definitions import Case, Inputs
from obsbundle.rules.input_series import constant

TEST_CERTIFICATE = "api-tls"
DAY_S = 86400


def target(system: System, config: RuleConfig) -> dict[str, str]:
    """The target labels of cert-manager's controller, as the generated ServiceMonitor gives them
    (its pod and address are made up; the chart names the container `cert-manager-controller`)."""
    namespace = system.platform.cert_manager_namespace
    assert namespace is not None, "only systems that run cert-manager have its cases"
    return {
        **config.cert_manager,
        "instance": "10.244.0.30:9402",
        "namespace": namespace,
        "service": "cert-manager",
        "endpoint": "http-metrics",
        "pod": "cert-manager-7d9f8b6c5d-x2k4q",
        "container": "cert-manager-controller",
    }


def _certificate(system: System, config: RuleConfig) -> dict[str, str]:
    """One Certificate in the system's first service namespace, issued by a ClusterIssuer."""
    namespace = min(service.namespace for service in system.services)
    return {
        **target(system, config),
        "namespace": namespace,
        "name": TEST_CERTIFICATE,
        "issuer_name": "letsencrypt",
        "issuer_kind": "ClusterIssuer",
        "issuer_group": "cert-manager.io",
    }


def _expiring(system: System, config: RuleConfig, seconds_left: int, at: int) -> Inputs:
    expiry = at * 60 + seconds_left
    return (constant("certmanager_certificate_expiration_timestamp_seconds", _certificate(system, config), expiry, at),)


def expiry(system: System, config: RuleConfig, days: int, shorter_days: int | None) -> Case:
    """A certificate halfway between `days` and `shorter_days` (the critical tier's; half of `days`
    for it) from expiry at the test's end fires; one 60 days from it stays quiet."""
    at = parse_duration(config.cert_expiry_for) // 60 + 10
    left = (days + (shorter_days or 0)) * DAY_S // 2
    labels = _certificate(system, config)
    return Case(
        firing=_expiring(system, config, left, at),
        quiet=_expiring(system, config, 60 * DAY_S, at),
        labels={"namespace": labels["namespace"], "name": TEST_CERTIFICATE},
        value=left,
        eval_time=f"{at}m",
    )


def _ready(system: System, config: RuleConfig, condition: str, at: int) -> Inputs:
    labels = _certificate(system, config)
    return tuple(
        constant("certmanager_certificate_ready_status", {**labels, "condition": each}, int(each == condition), at)
        for each in ("False", "True", "Unknown")
    )


def not_ready(system: System, config: RuleConfig) -> Case:
    """A certificate whose Ready condition is False fires; a Ready one stays quiet."""
    at = parse_duration(config.cert_not_ready_for) // 60 + 5
    labels = _certificate(system, config)
    return Case(
        firing=_ready(system, config, "False", at),
        quiet=_ready(system, config, "True", at),
        labels={"namespace": labels["namespace"], "name": TEST_CERTIFICATE, "condition": "False"},
        value=1,
        eval_time=f"{at}m",
    )
