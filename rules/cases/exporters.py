"""Absence cases: each watched exporter present, failing, or gone, as Prometheus stores its series."""

from __future__ import annotations

from collections.abc import Sequence

import promql_parser

from obsbundle import naming
from obsbundle.model import System
from obsbundle.monitors.argo_rollouts import rollout_namespaces
from obsbundle.monitors.probes import probe
from obsbundle.providers import Provider
from obsbundle.rules.cases.cert_manager import target as cert_manager_target
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.definitions import Alert, AlertCheck, Case, ExpectedAlert, Inputs, UnitTest, merge_inputs
from obsbundle.rules.input_series import constant
from obsbundle.settings import Settings
from obsbundle.stacks import Exporter, Node, exporter_target_labels, probe_target_labels

TEST_MINUTES = 25
TEST_NODE = Node(name="worker-a1b2c", host_ip="10.0.1.21")
"""The node whose exporter targets the generated tests scrape (any node: the labels are the stack's)."""

_SCRAPED: dict[Provider, Exporter] = {
    Provider.NODE_EXPORTER: Exporter.NODE_EXPORTER,
    Provider.KUBE_STATE_METRICS: Exporter.KUBE_STATE_METRICS,
    Provider.CADVISOR: Exporter.CADVISOR,
    Provider.KUBELET: Exporter.KUBELET,
    Provider.APISERVER: Exporter.APISERVER,
    Provider.ETCD: Exporter.ETCD,
}
"""Exporters whose absence is their target's `up`; the others' is a series they always publish."""


def _argocd_app_labels(system: System) -> dict[str, str]:
    # argocd_app_info's labels (ArgoCD docs, operator-manual/metrics.md): one application.
    namespace = system.platform.argocd_namespace
    assert namespace is not None, "only systems whose rules read ArgoCD watch it"
    return {
        naming.NAMESPACE_LABEL: namespace,
        "name": "guestbook",
        "project": "default",
        "sync_status": "Synced",
        "health_status": "Healthy",
    }


def _rollout_labels(system: System) -> dict[str, str]:
    # rollout_info's labels (argoproj/argo-rollouts@v1.9.1 controller/metrics/rollout_test.go): one
    # Rollout in the first namespace the system runs Rollouts in.
    return {
        naming.NAMESPACE_LABEL: rollout_namespaces(system)[0],
        "name": "guestbook-canary",
        "phase": "Completed",
        "strategy": "canary",
        "traffic_router": "",
    }


def _scraped(system: System, exporter: Exporter, value: int) -> Inputs:
    """`up` of the exporter's target on TEST_NODE, with the labels the system's stack gives it."""
    return (constant("up", exporter_target_labels(system.monitoring.stack, exporter, TEST_NODE), value, TEST_MINUTES),)


def present(system: System, provider: Provider) -> Inputs:
    """A healthy exporter."""
    if provider in _SCRAPED:
        return _scraped(system, _SCRAPED[provider], 1)
    match provider:
        case Provider.KAFKA_EXPORTER:
            return (constant("kafka_brokers", {}, 3, TEST_MINUTES),)
        case Provider.ARGOCD:
            return (constant("argocd_app_info", _argocd_app_labels(system), 1, TEST_MINUTES),)
        case Provider.ARGO_ROLLOUTS:
            return (constant("rollout_info", _rollout_labels(system), 1, TEST_MINUTES),)
        case Provider.BLACKBOX_EXPORTER:
            return (constant("up", _probe_target(system), 1, TEST_MINUTES),)
        case Provider.CERT_MANAGER:
            return (constant("up", cert_manager_target(system, RuleConfig()), 1, TEST_MINUTES),)
    raise AssertionError(f"no absence alert watches {provider}")


def _probe_target(system: System) -> dict[str, str]:
    """The labels of the first dependency's Probe target: blackbox_exporter's targets are the Probes'."""
    first = min(system.dependencies, key=lambda dependency: dependency.name)
    return probe_target_labels(probe(system, first, Settings()))


def _down(system: System, provider: Provider) -> Inputs:
    """An exporter that is there but fails its scrapes; nothing where the series just vanishes."""
    if provider is Provider.BLACKBOX_EXPORTER:
        return (constant("up", _probe_target(system), 0, TEST_MINUTES),)
    if provider is Provider.CERT_MANAGER:
        return (constant("up", cert_manager_target(system, RuleConfig()), 0, TEST_MINUTES),)
    return _scraped(system, _SCRAPED[provider], 0) if provider in _SCRAPED else ()


def absent_labels(expr: str) -> dict[str, str]:
    """The labels `absent(x)` returns: the equality matchers of `x` when it is a bare selector, else none."""
    parsed = promql_parser.parse(expr)
    assert isinstance(parsed, promql_parser.Call) and len(parsed.args) == 1, expr
    [argument] = parsed.args
    if not isinstance(argument, promql_parser.VectorSelector):
        return {}
    return {
        m.name: m.value
        for m in argument.matchers.matchers
        if m.op == promql_parser.MatchOp.Equal and m.name != "__name__"
    }


def absence(system: System, provider: Provider, expr: str) -> Case:
    """A failing exporter fires `expr` (an `absent(…)`), a healthy one keeps it quiet."""
    return Case(
        firing=_down(system, provider),
        quiet=present(system, provider),
        labels=absent_labels(expr),
        value=1,
        eval_time="20m",
    )


def one_absent_tests(system: System, config: RuleConfig, alerts: Sequence[Alert]) -> tuple[UnitTest, ...]:
    """Each exporter absent, with no target at all, while the others answer: its alert fires and no
    other does (the kubelet's two endpoints share a job and differ only in `metrics_path`)."""
    provider_of = {alertname: provider for provider, alertname in naming.EXPORTER_ABSENT_ALERTS.items()}
    tests = []
    for alert in alerts:
        assert alert.case is not None
        others = [present(system, provider_of[other.name]) for other in alerts if other is not alert]
        checks = tuple(
            AlertCheck(
                alert.case.eval_time,
                other.name,
                (ExpectedAlert(alert, alert.case.labels, 1),) if other is alert else (),
            )
            for other in alerts
        )
        tests.append(
            UnitTest(f"{alert.name} alone fires when {alert.entity} has no target", merge_inputs(*others), checks)
        )
    return tuple(tests)
