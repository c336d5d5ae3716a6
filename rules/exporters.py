"""Silence is never health: the exporters each alert reads, and an alert for each one's absence.

A pass over a system's built rules, in the manner of kubernetes-mixin's cross-cutting passes, so
that no component has to declare what it reads:

- every alert's expression is parsed (a real PromQL parser) and each vector selector is traced to
  the exporter that provides it (`obsbundle.providers`), through the recording rules that record
  it; the alert gets the `exporter` label naming them (`naming.exporter_label_value`);
- each exporter that some alert reads gets one absence alert (`naming.EXPORTER_ABSENT_ALERTS`),
  routed to the system's owner. Alertmanager mutes the alerts that read an exporter while its
  absence alert fires (alerting/plan.py), as PoolQueueExporterDown does for the pool & queue
  exporter (whose absence alert lives in targets.py, with its sources').

An alert that reads two exporters names both and is muted while either is absent: without one of
its inputs it can neither fire nor be trusted, and the absence alert is the one message that says
why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from obsbundle import naming
from obsbundle.links import Board, PanelId
from obsbundle.model import System
from obsbundle.monitors.argo_rollouts import METRICS_SERVICE, rollouts_presence
from obsbundle.promql import quote, regex_literal, selector, vector_selectors
from obsbundle.providers import Provider, source_of
from obsbundle.rules.alert_labels import AlertSubject, owner_labels
from obsbundle.rules.cases import exporters as cases
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.definitions import (
    Alert,
    AlertDoc,
    Recording,
    Rule,
    RuleGroup,
    RunbookCheck,
    Severity,
    with_rules_replaced,
)
from obsbundle.rules.templating import Description

ComponentGroups = tuple[tuple[str, tuple[RuleGroup, ...]], ...]


@dataclass(frozen=True)
class _Watch:
    """How the absence of one exporter is seen, and what its runbook says."""

    doc: AlertDoc
    what: str
    """The exporter in words, for descriptions and runbooks."""
    series: Callable[[System, RuleConfig], str]
    """The selector that has no sample while the exporter is absent."""


def _doc(provider: Provider, summary: str, meaning: str, actions: tuple[str, ...]) -> AlertDoc:
    return AlertDoc(naming.EXPORTER_ABSENT_ALERTS[provider], summary, meaning, actions)


def _up(target: Callable[[RuleConfig], dict[str, str]]) -> Callable[[System, RuleConfig], str]:
    # `up == 1` rather than `up`: a target that is discovered but fails its scrapes is as absent as
    # one that is gone (kubernetes-mixin's kubernetes-absent group writes it so too).
    return lambda system, config: f"{selector('up', target(config))} == 1"


def _targets_page(job: str) -> str:
    return f"Prometheus's targets page (Status → Targets), job `{job}`: is the target there, and what error shows?"


_SELECTOR_CHECK = (
    "If the target is missing: is its ServiceMonitor there, and does Prometheus's `serviceMonitorSelector` "
    "select it (kube-prometheus-stack: the `release` label)?"
)

# kafka_exporter and ArgoCD are deployed by the user, under job names the stacks do not fix (a Helm
# release, a ServiceMonitor's name), and the rules select their series by name only. Their absence
# is therefore the absence of a series they always publish while they work: kafka_exporter's
# `kafka_brokers` (danielqsj/kafka_exporter README, "Brokers") and the application controller's
# `argocd_app_info` in the ArgoCD namespace, the very series the ArgoCD alerts read.
_WATCHES: dict[Provider, _Watch] = {
    Provider.NODE_EXPORTER: _Watch(
        _doc(
            Provider.NODE_EXPORTER,
            "Prometheus scrapes no node-exporter.",
            "No node-exporter target answers, or there is none. Node CPU, memory and disk alerts and the "
            "node-pool series read node-exporter: they cannot fire meanwhile, and Alertmanager mutes them.",
            (
                "`kubectl get daemonset -A -l app.kubernetes.io/name=prometheus-node-exporter` (kube-prometheus-stack) "
                "or `-l app.kubernetes.io/name=node-exporter` (kube-prometheus): are its pods running on every node?",
                _targets_page("node-exporter"),
                _SELECTOR_CHECK,
            ),
        ),
        "node-exporter",
        _up(lambda config: dict(config.node_exporter)),
    ),
    Provider.KUBE_STATE_METRICS: _Watch(
        _doc(
            Provider.KUBE_STATE_METRICS,
            "Prometheus scrapes no kube-state-metrics.",
            "No kube-state-metrics target answers, or there is none. Node readiness, node-pool, workload "
            "and CronJob alerts read kube-state-metrics: they cannot fire meanwhile, and Alertmanager mutes them.",
            (
                "`kubectl get deployment -A -l app.kubernetes.io/name=kube-state-metrics`: is it running and ready?",
                "Read its logs: RBAC errors (it lists every object it reports) or out-of-memory restarts.",
                _targets_page("kube-state-metrics"),
                _SELECTOR_CHECK,
            ),
        ),
        "kube-state-metrics",
        _up(lambda config: dict(config.kube_state_metrics)),
    ),
    Provider.CADVISOR: _Watch(
        _doc(
            Provider.CADVISOR,
            "Prometheus scrapes no kubelet's cAdvisor.",
            "No kubelet answers on /metrics/cadvisor, or Prometheus has no such target. Container memory "
            "alerts read cAdvisor: they cannot fire meanwhile, and Alertmanager mutes them.",
            (
                "Is the kubelet ServiceMonitor's cAdvisor endpoint enabled (kube-prometheus-stack: "
                "`kubelet.serviceMonitor.cAdvisor: true`)?",
                _targets_page("kubelet") + " Look at the targets with `metrics_path=/metrics/cadvisor`.",
                "Certificate or authorisation errors: Prometheus's service account needs `nodes/metrics`.",
            ),
        ),
        "the kubelet's cAdvisor",
        _up(lambda config: dict(config.cadvisor)),
    ),
    Provider.KUBELET: _Watch(
        _doc(
            Provider.KUBELET,
            "Prometheus scrapes no kubelet.",
            "No kubelet answers on /metrics, or Prometheus has no such target. Volume usage alerts read the "
            "kubelet's volume stats: they cannot fire meanwhile, and Alertmanager mutes them.",
            (
                "`kubectl get nodes`: are the nodes Ready (a kubelet that is down takes its node with it)?",
                _targets_page("kubelet") + " Look at the targets with `metrics_path=/metrics`.",
                "Certificate or authorisation errors: Prometheus's service account needs `nodes/metrics`.",
            ),
        ),
        "the kubelet",
        _up(lambda config: dict(config.kubelet)),
    ),
    Provider.KAFKA_EXPORTER: _Watch(
        _doc(
            Provider.KAFKA_EXPORTER,
            "Prometheus has no series from kafka_exporter.",
            "`kafka_brokers` is missing: kafka_exporter is not running, not scraped, or cannot reach the "
            "brokers. Consumer lag and Kafka broker health alerts read kafka_exporter: they cannot fire "
            "meanwhile, and Alertmanager mutes them.",
            (
                "Is the kafka_exporter pod running? Its logs show whether it reaches the brokers (`--kafka.server`).",
                "Prometheus's targets page: is its target there (through its ServiceMonitor or PodMonitor) and up?",
            ),
        ),
        "kafka_exporter",
        lambda system, config: "kafka_brokers",
    ),
    Provider.ARGOCD: _Watch(
        _doc(
            Provider.ARGOCD,
            "Prometheus has no ArgoCD application series.",
            "`argocd_app_info` is missing in the ArgoCD namespace: the application controller's metrics are "
            "not scraped (or it manages no application). ArgoCD sync and health alerts cannot fire meanwhile, "
            "and Alertmanager mutes them.",
            (
                "`kubectl get pods -n <ArgoCD namespace>`: is the application controller running?",
                "Is its metrics Service scraped (`argocd-metrics`, port 8082; Helm chart: "
                "`controller.metrics.enabled` and `controller.metrics.serviceMonitor.enabled`)?",
            ),
        ),
        "ArgoCD's application controller",
        lambda system, config: _argocd_apps(system),
    ),
    # The control plane's (rules/control_plane.py): the apiserver and etcd are read by its SLO and
    # its etcd alerts; etcd's job differs between the stacks (stacks.py), hence the regex.
    Provider.APISERVER: _Watch(
        _doc(
            Provider.APISERVER,
            "Prometheus scrapes no Kubernetes API server.",
            "No apiserver target answers, or there is none (kubernetes-mixin's KubeAPIDown). If the apiserver is "
            "down, nothing in the cluster can change; if only its scrape fails, its SLO and certificate alerts "
            "cannot fire meanwhile, and Alertmanager mutes them.",
            (
                "`kubectl get --raw /readyz?verbose`: does the API answer at all?",
                "On the master: `sudo crictl ps -a --name kube-apiserver` and its log; the static pod manifest is "
                "/etc/kubernetes/manifests/kube-apiserver.yaml.",
                _targets_page("apiserver") + " Certificate or authorisation errors: Prometheus's service account "
                "needs `get` on the `/metrics` non-resource URL.",
            ),
        ),
        "the Kubernetes API server",
        _up(lambda config: dict(config.apiserver)),
    ),
    Provider.ETCD: _Watch(
        _doc(
            Provider.ETCD,
            "Prometheus scrapes no etcd member.",
            "No etcd target answers, or there is none. etcd's leader, disk and quota alerts cannot fire meanwhile, "
            "and Alertmanager mutes them; if etcd itself is down, the apiserver fails every request too.",
            (
                "`kubectl -n kube-system get pod -l component=etcd`; on the master, `sudo crictl ps -a --name etcd`.",
                "kubeadm's etcd serves metrics on 127.0.0.1:2381 only: for Prometheus to reach it, set "
                "`--listen-metrics-urls=http://0.0.0.0:2381` in /etc/kubernetes/manifests/etcd.yaml "
                "(kube-prometheus-stack: chart value `kubeEtcd`; kube-prometheus: the static-etcd addon).",
                _targets_page("kube-etcd") + " (`etcd` under kube-prometheus).",
            ),
        ),
        "etcd",
        lambda system, config: f"up{{job=~{quote(config.etcd_job)}}} == 1",
    ),
    # cert-manager's controller, through the ServiceMonitor obsbundle writes for it.
    Provider.CERT_MANAGER: _Watch(
        _doc(
            Provider.CERT_MANAGER,
            "Prometheus scrapes no cert-manager controller.",
            "No cert-manager target answers, or there is none (the cert-manager mixin's CertManagerAbsent). "
            "Certificates are neither issued nor renewed while cert-manager is down, and their alerts cannot fire "
            "meanwhile: Alertmanager mutes them.",
            (
                "`kubectl -n <platform.cert_manager_namespace> get deploy cert-manager`: is the controller running?",
                "Is its metrics Service there (`kubectl get svc -l app.kubernetes.io/component=controller`, port "
                "`http-metrics`; Helm chart: `prometheus.enabled`) and selected by the generated ServiceMonitor?",
                _targets_page("cert-manager"),
            ),
        ),
        "cert-manager",
        _up(lambda config: dict(config.cert_manager)),
    ),
    # The Rollouts controller publishes `rollout_info` for every Rollout it manages, the series the
    # Rollout alerts read (argoproj/argo-rollouts@v1.9.1 controller/metrics/rollouts.go).
    Provider.ARGO_ROLLOUTS: _Watch(
        _doc(
            Provider.ARGO_ROLLOUTS,
            "Prometheus has no Argo Rollouts series.",
            "`rollout_info` is missing in the namespaces of the system's Rollouts: the Rollouts controller is "
            "down or not scraped (or the Rollouts are gone). The Rollout replica and phase alerts cannot fire "
            "meanwhile, and Alertmanager mutes them.",
            (
                "`kubectl get deployment -n <platform.argo_rollouts_namespace> argo-rollouts`: is the controller "
                "running?",
                _targets_page(METRICS_SERVICE) + f" The generated ServiceMonitor selects Service `{METRICS_SERVICE}` "
                "(its label `app.kubernetes.io/name`) on port `metrics`.",
                _SELECTOR_CHECK,
            ),
        ),
        "the Argo Rollouts controller",
        lambda system, config: rollouts_presence(system),
    ),
    # Probe targets are blackbox_exporter's: while it is down every one of them fails its scrape and
    # the probe_* series go stale, so the dependency alerts see nothing. Its absence is that no probe
    # target of the system answers (a Probe's job is `probe/<namespace>/<name>`, stacks.py).
    Provider.BLACKBOX_EXPORTER: _Watch(
        _doc(
            Provider.BLACKBOX_EXPORTER,
            "Prometheus gets no probe result from blackbox_exporter.",
            "No probe target of the system answers: blackbox_exporter is down or unreachable, or it refuses "
            "every probe (\"Unknown module\": its configuration lacks the generated modules). The dependency "
            "alerts cannot fire meanwhile, and Alertmanager mutes them.",
            (
                "`kubectl get pods -A -l app.kubernetes.io/name=prometheus-blackbox-exporter`: is it running? "
                "Its address is the inventory's `monitoring.blackbox_exporter`.",
                _targets_page("probe/<namespace>/<dependency>") + " `Unknown module` means its configuration "
                "lacks the modules in blackbox/blackbox.yml (chart values: blackbox/helm-values.yaml).",
                "No target at all: are the Probes applied (`kubectl get probes -A`) and does Prometheus's "
                "`probeSelector` select them (kube-prometheus-stack: the `release` label)?",
            ),
        ),
        "blackbox_exporter",
        lambda system, config: _probe_targets(system),
    ),
}


def _probe_targets(system: System) -> str:
    """`up` of the system's Probe targets that answer."""
    jobs = f'job=~"probe/{regex_literal(system.monitoring.namespace)}/.+"'
    return f"{selector('up', {naming.SYSTEM_LABEL: system.name}, jobs)} == 1"


def _argocd_apps(system: System) -> str:
    namespace = system.platform.argocd_namespace
    assert namespace is not None, "only systems whose rules read ArgoCD watch it"
    return selector("argocd_app_info", {naming.NAMESPACE_LABEL: namespace})


def metrics_read(expr: str) -> frozenset[str]:
    """The metric names of every vector selector in a PromQL expression."""
    names = (
        node.name or next((m.value for m in node.matchers.matchers if m.name == "__name__"), None)
        for node in vector_selectors(expr)
    )
    return frozenset(name for name in names if name)


def exporters_read(groups: Iterable[RuleGroup]) -> Callable[[str], frozenset[Provider]]:
    """A function from an expression to the watched exporters it reads, directly or through the
    recording rules of `groups` (every group of one system: recorded series cross groups)."""
    recorded: dict[str, set[str]] = {}
    for group in groups:
        for rule in group.rules:
            if isinstance(rule, Recording):
                recorded.setdefault(rule.record, set()).update(metrics_read(rule.expr))
    known: dict[str, frozenset[Provider]] = {}

    def of_metric(metric: str) -> frozenset[Provider]:
        if metric not in known:
            known[metric] = frozenset()  # a recording cycle cannot recurse for ever
            if metric in recorded:
                known[metric] = frozenset().union(*(of_metric(name) for name in recorded[metric]))
            else:
                source = source_of(metric)
                watched = source is not None and (
                    source.provider in naming.EXPORTER_ABSENT_ALERTS
                    or source.provider in naming.DATASTORE_EXPORTER_DOWN_ALERTS
                )
                known[metric] = frozenset({source.provider}) if source is not None and watched else frozenset()
        return known[metric]

    return lambda expr: frozenset().union(*(of_metric(name) for name in metrics_read(expr)))


def _with_exporter_label(alert: Alert, providers: frozenset[Provider]) -> Alert:
    if not providers:
        return alert
    return replace(alert, labels={**alert.labels, naming.EXPORTER_LABEL: naming.exporter_label_value(providers)})


def _severity(readers: Sequence[Alert]) -> Severity:
    # As urgent as the most urgent alert it mutes: an absence that hides a page must page itself.
    return "critical" if any(alert.severity == "critical" for alert in readers) else "warning"


def absence_alert(system: System, config: RuleConfig, provider: Provider, readers: Sequence[Alert]) -> Alert:
    """The alert that fires while `provider` is absent; `readers` are the alerts it mutes meanwhile."""
    watch = _WATCHES[provider]
    series = watch.series(system, config)
    expr = f"absent({series})"
    names = sorted({alert.name for alert in readers})
    subject = AlertSubject(system, owner_labels(system), watch.what, Board.OVERVIEW)
    return subject.alert(
        watch.doc,
        expr=expr,
        severity=_severity(readers),
        description=Description(
            f"Prometheus has seen nothing from {watch.what} for {config.exporter_absent_for}: the alerts that "
            "read it cannot fire, and are muted until it is back (its runbook lists them)."
        ),
        panel=PanelId.OVERVIEW_ALERTS,
        for_=config.exporter_absent_for,
        case=cases.absence(system, provider, expr),
        threshold=f"absent for {config.exporter_absent_for}; mutes {', '.join(names)}",
        checks=(RunbookCheck("What Prometheus sees of it", series.removesuffix(" == 1"), "promql"),),
    )


def watch_exporters(system: System, config: RuleConfig, components: ComponentGroups) -> ComponentGroups:
    """The components with every alert labelled with the exporters it reads, followed by the
    `exporters` component: one absence alert per exporter read (none when nothing is read)."""
    read = exporters_read(group for _, component in components for group in component)
    readers: dict[Provider, list[Alert]] = {}

    def labelled(rule: Rule) -> Rule:
        if not isinstance(rule, Alert):
            return rule
        providers = read(rule.expr)
        alert = _with_exporter_label(rule, providers)
        for provider in providers:
            readers.setdefault(provider, []).append(alert)
        return alert

    watched = tuple(
        (name, tuple(with_rules_replaced(group, labelled) for group in component))
        for name, component in components
    )
    # The pool & queue exporter's absence is PoolQueueExporterDown, with its sources' in targets.py;
    # a datastore exporter's (naming.DATASTORE_EXPORTER_DOWN_ALERTS) is its datastore's, in
    # datastore_health.py.
    # blackbox_exporter is watched through the generated Probes' targets: a system without
    # dependencies has none (a gauge SLO on the user's own Probes' probe_success, say), so nothing
    # could tell its absence from theirs.
    unwatchable = () if system.dependencies else (Provider.BLACKBOX_EXPORTER,)
    alerts = tuple(
        absence_alert(system, config, provider, readers[provider])
        for provider in _WATCHES
        if provider in readers and provider not in unwatchable
    )
    if not alerts:
        return watched
    group = RuleGroup(
        f"{system.name}-exporters", config.interval, alerts, tests=cases.one_absent_tests(system, config, alerts)
    )
    return (*watched, ("exporters", (group,)))
