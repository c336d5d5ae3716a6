"""A self-managed control plane (kubeadm): the apiserver's SLO, its client certificates and its
self-defence, etcd's leader, disks and quota, and the scheduler's and controller-manager's targets.

Generated only when `platform.control_plane` is `self-managed`: a managed control plane (EKS, GKE,
AKS) is the provider's to watch, and its components are not scraped.

The apiserver's SLO is kubernetes-mixin's (rules/kube_apiserver-burnrate.libsonnet and
alerts/kube_apiserver.libsonnet at aa38e2b): a request is bad when it fails (5xx) or is slower than
SIG Scalability's bound for its kind (a read of one object 1 s, of a namespace 5 s, of the cluster
30 s; a write 1 s), measured by `apiserver_request_sli_duration_seconds` (Kubernetes 1.26 and
later: it excludes webhooks and priority-and-fairness queueing; kubernetes/kubernetes#112679);
reads and writes have a 99 % objective each over 30 days, and KubeAPIErrorBudgetBurn has the
SRE Workbook's four tiers. The service SLOs' machinery (rules/slo.py) is built around inventory
services, their labels and dashboards, and records every SLO of a system in one set of window
series; the apiserver is not an inventory service, and recording it there would mix its windows
into the services'. So it gets recordings of its own, in the same shape: 5-minute bad and total
event counts recorded once, every longer window a sum of pieces of the shorter ones (the same
window chain, `slo.chain_pieces`), burn factors exact for the period (`slo_math`), and each alert
labelled with its `window` pair and an `slo` (`apiserver-read`, `apiserver-write`), so that
Alertmanager's SLO inhibitions mute a slower tier while a faster one fires.

The scheduler's and controller-manager's only series read is their `up`, so their down alerts are
written here (as the mixin's absent alerts); the apiserver's and etcd's absence alerts (KubeAPIDown,
EtcdDown) come from the exporter-absence pass, which mutes what reads them meanwhile.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction

from obsbundle import naming
from obsbundle.durations import format_duration
from obsbundle.links import Board, PanelId
from obsbundle.model import ControlPlane, System
from obsbundle.promql import quote, regex_literal, selector
from obsbundle.rules.alert_labels import AlertSubject, owner_labels
from obsbundle.rules.cases import control_plane as cases
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.definitions import Alert, AlertDoc, Recording, Rule, RuleGroup, RunbookCheck, Severity
from obsbundle.rules.slo import (
    DAY_S,
    FAST_WINDOWS,
    SHORT_WINDOW_S,
    chain_pieces,
    percent_text,
    period_pieces,
    tier_for_seconds,
)
from obsbundle.rules.templating import Description, ValueFormat
from obsbundle.slo_math import BURN_TIERS, BurnTier, format_factor
from obsbundle.stacks import Exporter

VERB_CLASSES: tuple[tuple[str, str], ...] = (
    ("read", 'verb=~"LIST|GET"'),
    ("write", 'verb=~"POST|PUT|PATCH|DELETE"'),
)
"""The mixin's read and write selectors: each class has its own budget."""
NON_STREAMING = 'subresource!~"proxy|attach|log|exec|portforward"'
"""Long-running connections (logs, exec, port-forward) have no latency bound."""
LATENCY_HISTOGRAM = "apiserver_request_sli_duration_seconds"
SLOW_WINDOWS = (DAY_S, 3 * DAY_S)
"""Recorded every `RuleConfig.slow_interval`, with the SLO period: the ticket tiers read them."""

KUBEADM_CERTS = "sudo kubeadm certs check-expiration"
ETCDCTL = (
    "sudo ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt "
    "--cert=/etc/kubernetes/pki/etcd/server.crt --key=/etc/kubernetes/pki/etcd/server.key"
)
"""etcdctl against the local member, with the certificates kubeadm writes."""

BURN = AlertDoc(
    name="KubeAPIErrorBudgetBurn",
    summary="The Kubernetes API server is spending its error budget too fast.",
    meaning="Reads or writes (the `verb` label) failed with a 5xx or took longer than their SLO bound often enough, "
    "over both windows named in `window`, that the 30-day budget of 1 % bad requests would be gone within days "
    "(1h-5m, 6h-30m: critical) or before the month is out (1d-2h, 3d-6h: warning). Controllers, kubectl and "
    "every deployment see errors or timeouts.",
    actions=(
        "Open the dashboard link: errors or latency, which resources and verbs?",
        "Is etcd healthy (EtcdNoLeader, EtcdHighFsyncDurations, EtcdDatabaseQuotaLowSpace)? A slow disk on the "
        "master slows every write.",
        "Read the apiserver's log: `sudo crictl logs $(sudo crictl ps --name kube-apiserver -q)` on the master, "
        "or `kubectl -n kube-system logs kube-apiserver-<node>`.",
        "Look for a client that floods it: `kubectl get --raw /metrics | grep apiserver_request_total` by user "
        "agent, or API Priority and Fairness rejections (429s).",
        "A webhook that times out slows writes too: `kubectl get validatingwebhookconfigurations,"
        "mutatingwebhookconfigurations`.",
    ),
)
TERMINATED = AlertDoc(
    name="KubeAPITerminatedRequests",
    summary="The Kubernetes API server is terminating many of its requests.",
    meaning="More than the threshold share of incoming requests were terminated by the apiserver in self-defence "
    "(API Priority and Fairness queues full, or requests timing out), over 10 minutes. Clients retry and slow "
    "down; controllers fall behind.",
    actions=(
        "Which priority levels reject: "
        "`kubectl get --raw /metrics | grep apiserver_flowcontrol_rejected_requests_total`.",
        "Find the flooding client (user agent, service account) in the apiserver's audit log or metrics and stop it.",
        "Check the master's CPU and memory: an overloaded node makes every request slow.",
    ),
)
CLIENT_CERT = AlertDoc(
    name="KubeClientCertificateExpiration",
    summary="A client certificate used to authenticate to the Kubernetes API server is about to expire.",
    meaning="Of the client certificates presented to the apiserver in the last 5 minutes, the earliest 1 % expire "
    "within the threshold (7 days: warning, 24 hours: critical). Once one expires, its owner (the kubelet, the "
    "scheduler, the controller-manager, an admin's kubeconfig) can no longer talk to the API.",
    actions=(
        f"On the master: `{KUBEADM_CERTS}` lists every kubeadm certificate and its expiry.",
        "Renew them: `sudo kubeadm certs renew all`, then restart the static pods (move each manifest out of "
        "/etc/kubernetes/manifests and back, or `sudo crictl rm` their containers) so that they load the new "
        "certificates; copy the new /etc/kubernetes/admin.conf to whoever uses it.",
        "The kubelet's own client certificate rotates by itself (`rotateCertificates: true` in "
        "/var/lib/kubelet/config.yaml); if it did not, check /var/lib/kubelet/pki/ and the kubelet's log.",
    ),
)
ETCD_NO_LEADER = AlertDoc(
    name="EtcdNoLeader",
    summary="An etcd member has no leader.",
    meaning="The member reports no Raft leader: it cannot serve writes, and with one member (or a lost quorum) the "
    "apiserver can change nothing in the cluster.",
    actions=(
        f"`{ETCDCTL} endpoint status --cluster -w table`: who is leader, which members answer?",
        "`kubectl -n kube-system logs etcd-<node>` (or `sudo crictl logs` of the etcd container): elections, "
        "disk or network errors.",
        "The static pod manifest is /etc/kubernetes/manifests/etcd.yaml; its data is /var/lib/etcd.",
    ),
)
ETCD_LEADER_CHANGES = AlertDoc(
    name="EtcdHighNumberOfLeaderChanges",
    summary="etcd changes its leader often.",
    meaning="etcd saw the threshold number of leader changes within 15 minutes. Frequent elections mean a slow "
    "disk, an overloaded node or network trouble between members; each election stalls writes.",
    actions=(
        f"`{ETCDCTL} endpoint status --cluster -w table`: raft term and leader per member.",
        "Check the disk's fsync latency (EtcdHighFsyncDurations) and the master's CPU (node alerts).",
    ),
)
ETCD_FSYNC = AlertDoc(
    name="EtcdHighFsyncDurations",
    summary="etcd's write-ahead log fsyncs are slow.",
    meaning="The 99th percentile of WAL fsync durations is above the threshold (0.5 s: warning, 1 s: critical). "
    "etcd commits every write through an fsync: slow fsyncs slow every apiserver write and cause elections.",
    actions=(
        "Is the master's disk saturated: `iostat -x 5` on it, or the node's disk panels? Another process writing "
        "(logs, images) to the same disk?",
        f"`{ETCDCTL} check perf` measures the disk as etcd sees it.",
        "etcd needs an SSD: move /var/lib/etcd to a faster volume (gp3 with provisioned IOPS) if it is not on one.",
    ),
)
ETCD_COMMIT = AlertDoc(
    name="EtcdHighCommitDurations",
    summary="etcd's backend commits are slow.",
    meaning="The 99th percentile of bbolt commit durations is above the threshold: the disk or an oversized, "
    "fragmented database slows every write.",
    actions=(
        "Check the disk as for EtcdHighFsyncDurations.",
        f"`{ETCDCTL} endpoint status -w table` shows the database size; defragment a large one "
        f"(`{ETCDCTL} defrag`, one member at a time).",
    ),
)
ETCD_QUOTA = AlertDoc(
    name="EtcdDatabaseQuotaLowSpace",
    summary="etcd's database is close to its size quota.",
    meaning="The database is above the threshold share of its backend quota. At the quota etcd raises a NOSPACE "
    "alarm and refuses every write: the cluster can change nothing until space is freed.",
    actions=(
        f"`{ETCDCTL} endpoint status -w table`: DB SIZE against the quota (`--quota-backend-bytes` in "
        "/etc/kubernetes/manifests/etcd.yaml, 2 GiB by default).",
        f"Compact and defragment: `{ETCDCTL} compact <revision>` then `{ETCDCTL} defrag`; then "
        f"`{ETCDCTL} alarm disarm` if NOSPACE was raised.",
        "Find what fills it (many Events, large ConfigMaps or Secrets, CRs); raise the quota if the size is "
        "legitimate (8 GiB at most).",
    ),
)
SCHEDULER_DOWN = AlertDoc(
    name="KubeSchedulerDown",
    summary="Prometheus scrapes no kube-scheduler.",
    meaning="No kube-scheduler target answers, or there is none: new pods stay Pending, as no scheduler assigns "
    "them a node.",
    actions=(
        "`kubectl -n kube-system get pod -l component=kube-scheduler`: is the static pod running?",
        "On the master: /etc/kubernetes/manifests/kube-scheduler.yaml and `sudo crictl ps -a --name kube-scheduler`; "
        "its log says why it stopped.",
        "Is it scraped at all: kubeadm binds it to 127.0.0.1; kube-prometheus-stack needs `--bind-address=0.0.0.0` "
        "in the manifest (chart value `kubeScheduler`).",
    ),
)
CONTROLLER_MANAGER_DOWN = AlertDoc(
    name="KubeControllerManagerDown",
    summary="Prometheus scrapes no kube-controller-manager.",
    meaning="No kube-controller-manager target answers, or there is none: Deployments, ReplicaSets, Jobs and node "
    "lifecycle are not reconciled, so nothing replaces a failed pod.",
    actions=(
        "`kubectl -n kube-system get pod -l component=kube-controller-manager`: is the static pod running?",
        "On the master: /etc/kubernetes/manifests/kube-controller-manager.yaml and "
        "`sudo crictl ps -a --name kube-controller-manager`; its log says why it stopped.",
        "Is it scraped at all: kubeadm binds it to 127.0.0.1; kube-prometheus-stack needs `--bind-address=0.0.0.0` "
        "in the manifest (chart value `kubeControllerManager`).",
    ),
)


def control_plane_groups(system: System, config: RuleConfig) -> list[RuleGroup]:
    """The apiserver's SLO recordings and every control-plane alert, for a self-managed control plane."""
    if system.platform.control_plane is not ControlPlane.SELF_MANAGED:
        return []
    fast, slow = _slo_group_names(system)
    subject = AlertSubject(system, owner_labels(system), "control plane", Board.PLATFORM)
    alerts: list[Rule] = [
        *(burn_alert(system, config, subject, verb, tier) for verb, _ in VERB_CLASSES for tier in BURN_TIERS),
        terminated_alert(system, config, subject),
        *(client_cert_alert(system, config, subject, critical) for critical in (False, True)),
        *etcd_alerts(system, config, subject),
        _down_alert(
            system, config, subject, SCHEDULER_DOWN, exporter=Exporter.KUBE_SCHEDULER, target=config.kube_scheduler
        ),
        _down_alert(
            system, config, subject, CONTROLLER_MANAGER_DOWN,
            exporter=Exporter.KUBE_CONTROLLER_MANAGER, target=config.kube_controller_manager,
        ),
    ]
    return [
        RuleGroup(fast, config.interval, tuple(fast_rules(system, config))),
        RuleGroup(slow, config.slow_interval, tuple(slow_rules(system, config)), depends_on=(fast,)),
        RuleGroup(f"{system.name}-control-plane", config.interval, tuple(alerts), depends_on=(fast, slow)),
    ]


def _slo_group_names(system: System) -> tuple[str, str]:
    return f"{system.name}-apiserver-slo", f"{system.name}-apiserver-slo-long"


# --- the apiserver's SLO -------------------------------------------------------------------------


def _increase(config: RuleConfig, metric: str, *matchers: str) -> str:
    return f"sum(increase({selector(metric, config.apiserver, *matchers)}[{format_duration(SHORT_WINDOW_S)}]))"


FLOAT_SUFFIX = r"(\.0)?"
"""Prometheus 3 stores `le` as a float ("1.0"); earlier versions keep the exposition's "1"."""


def _bound(bound: str) -> str:
    return "le=~" + quote(regex_literal(bound) + FLOAT_SUFFIX)


def _fast_requests(config: RuleConfig, verb: str, scope: str | None, bounds: tuple[str, ...]) -> str:
    """Requests within the first of `bounds` the stack keeps (each a bucket's `le`), zero for none."""
    scoped = (verb, NON_STREAMING) if scope is None else (verb, NON_STREAMING, scope)
    found = [_increase(config, f"{LATENCY_HISTOGRAM}_bucket", *scoped, _bound(bound)) for bound in bounds]
    return "(" + " or ".join([*found, "vector(0)"]) + ")"


def bad_events(config: RuleConfig, verb_class: str) -> str:
    """Requests of the class that were too slow, plus those that failed, in 5 minutes."""
    verb = dict(VERB_CLASSES)[verb_class]
    if verb_class == "read":
        fast = [_fast_requests(config, verb, scope, bounds) for scope, bounds in config.apiserver_read_latency]
    else:
        fast = [_fast_requests(config, verb, None, config.apiserver_write_latency)]
    measured = _increase(config, f"{LATENCY_HISTOGRAM}_count", verb, NON_STREAMING)
    errors = _increase(config, "apiserver_request_total", verb, 'code=~"5.."')
    return f"{measured}\n- (\n  " + "\n  + ".join(fast) + f"\n)\n+ ({errors} or vector(0))"


def total_events(config: RuleConfig, verb_class: str) -> str:
    return _increase(config, "apiserver_request_total", dict(VERB_CLASSES)[verb_class])


def _system(system: System) -> dict[str, str]:
    return {naming.SYSTEM_LABEL: system.name}


def _window_sum(system: System, kind: str, pieces: list[tuple[int, int]]) -> str:
    """Sum of recorded pieces at their offsets; a missing piece counts as zero (`or 0 * head`)."""
    head = selector(naming.apiserver_events(kind, format_duration(pieces[0][0])), _system(system))
    terms = [head]
    for window, offset in pieces[1:]:
        piece = selector(naming.apiserver_events(kind, format_duration(window)), _system(system))
        terms.append(f"({piece} offset {format_duration(offset)} or 0 * {head})")
    return "\n+ ".join(terms)


def _ratio(system: System, window: str) -> Recording:
    bad = selector(naming.apiserver_events("bad", window), _system(system))
    total = selector(naming.apiserver_events("total", window), _system(system))
    return Recording(naming.apiserver_error_ratio(window), f"{bad} / {total}")


def _window_rules(system: System, window_s: int, pieces: list[tuple[int, int]]) -> list[Recording]:
    window = format_duration(window_s)
    sums = [
        Recording(naming.apiserver_events(kind, window), _window_sum(system, kind, pieces)) for kind in ("bad", "total")
    ]
    return [*sums, _ratio(system, window)]


def fast_rules(system: System, config: RuleConfig) -> list[Recording]:
    """5-minute bad and total events of each verb class, and the page tiers' windows."""
    rules: list[Recording] = []
    for verb_class, _ in VERB_CLASSES:
        labels = {**_system(system), "verb": verb_class}
        base = format_duration(SHORT_WINDOW_S)
        rules.append(Recording(naming.apiserver_events("bad", base), bad_events(config, verb_class), labels))
        rules.append(Recording(naming.apiserver_events("total", base), total_events(config, verb_class), labels))
    rules.append(_ratio(system, format_duration(SHORT_WINDOW_S)))
    for window_s in FAST_WINDOWS:
        rules.extend(_window_rules(system, window_s, chain_pieces(window_s)))
    return rules


def _period_s(config: RuleConfig) -> int:
    return config.apiserver_slo_days * DAY_S


def _budget(config: RuleConfig) -> Decimal:
    return 1 - config.apiserver_objective


def slow_rules(system: System, config: RuleConfig) -> list[Recording]:
    """The ticket tiers' windows, the SLO period's, and the budget left over the period."""
    rules: list[Recording] = []
    for window_s in SLOW_WINDOWS:
        rules.extend(_window_rules(system, window_s, chain_pieces(window_s)))
    period = _period_s(config)
    if period not in SLOW_WINDOWS:
        rules.extend(_window_rules(system, period, period_pieces(period)))
    ratio = selector(naming.apiserver_error_ratio(format_duration(period)), _system(system))
    budget = format(_budget(config).normalize(), "f")
    rules.append(Recording(naming.APISERVER_ERROR_BUDGET_REMAINING, f"1 - {ratio} / {budget}"))
    return rules


def _threshold(tier: BurnTier, config: RuleConfig) -> Fraction:
    return tier.factor(_period_s(config)) * Fraction(_budget(config))


def burn_alert(system: System, config: RuleConfig, subject: AlertSubject, verb_class: str, tier: BurnTier) -> Alert:
    """One tier for one verb class: both its windows above factor × budget."""
    factor = format_factor(tier.factor(_period_s(config)))
    budget = format(_budget(config).normalize(), "f")
    labels = {**_system(system), "verb": verb_class}
    long_ratio = selector(naming.apiserver_error_ratio(tier.long_window), labels)
    short_ratio = selector(naming.apiserver_error_ratio(tier.short_window), labels)
    expr = f"{long_ratio} > ({factor} * {budget})\nand {short_ratio} > ({factor} * {budget})"
    position = BURN_TIERS.index(tier)
    faster = _threshold(BURN_TIERS[position - 1], config) if position else None
    recorded_every = config.slow_interval if tier.long_window_s in SLOW_WINDOWS else config.interval
    threshold = _threshold(tier, config)
    for_ = format_duration(tier_for_seconds(tier, config))
    return subject.alert(
        BURN,
        expr=expr,
        severity=tier.severity,
        description=Description(
            f"{{value}} of the apiserver's {verb_class} requests failed or were too slow over the last "
            f"{tier.long_window} (alert above {percent_text(threshold)}, {factor}× the {percent_text(_budget(config))} "
            f"error budget, in the last {tier.short_window} too).",
            ValueFormat.PERCENT,
        ),
        panel=PanelId.PLATFORM_APISERVER_BUDGET,
        for_=for_,
        case=cases.burn(
            system, verb_class, threshold=threshold, faster=faster, for_=for_, recorded_every=recorded_every
        ),
        extra_labels={naming.SLO_LABEL: f"apiserver-{verb_class}", naming.WINDOW_LABEL: tier.window_pair},
        entity=f"apiserver {verb_class} ({tier.window_pair})",
        threshold=f"bad requests > {percent_text(threshold)} ({factor} × {budget}) over {tier.long_window} "
        f"and {tier.short_window}",
        checks=(
            RunbookCheck("Bad share over the alert's windows", f"{long_ratio}\n{short_ratio}", "promql"),
            RunbookCheck(
                "Budget left", selector(naming.APISERVER_ERROR_BUDGET_REMAINING, labels), "promql"
            ),
        ),
    )


# --- the apiserver's self-defence and client certificates ------------------------------------------


def terminated_alert(system: System, config: RuleConfig, subject: AlertSubject) -> Alert:
    terminations = f"sum(rate({selector('apiserver_request_terminations_total', config.apiserver)}[10m]))"
    requests = f"sum(rate({selector('apiserver_request_total', config.apiserver)}[10m]))"
    share = format(config.apiserver_terminated_ratio.normalize(), "f")
    return subject.alert(
        TERMINATED,
        expr=f"{terminations}\n/ ({requests} + {terminations})\n> {share}",
        severity="warning",
        description=Description(
            "The apiserver terminated {value} of its incoming requests over the last 10 minutes.", ValueFormat.PERCENT
        ),
        panel=PanelId.PLATFORM_APISERVER_ERRORS,
        for_=config.apiserver_terminated_for,
        case=cases.terminated(system, config),
        entity="apiserver",
        threshold=f"> {percent_text(config.apiserver_terminated_ratio)} of requests terminated for "
        f"{config.apiserver_terminated_for}",
    )


def client_cert_alert(system: System, config: RuleConfig, subject: AlertSubject, critical: bool) -> Alert:
    """The 1st percentile of the client certificates' remaining lifetime, in hours, under the tier's
    bound; the warning tier stops where the critical one starts, so that one alert says it."""
    buckets = selector("apiserver_client_certificate_expiration_seconds_bucket", config.apiserver)
    count = selector("apiserver_client_certificate_expiration_seconds_count", config.apiserver)
    hours = (
        "histogram_quantile(0.01, sum without (namespace, service, endpoint) "
        f"(rate({buckets}[5m]))) / 3600"
    )
    warning_h, critical_h = config.client_cert_warning_days * 24, config.client_cert_critical_days * 24
    band = f"< {critical_h}" if critical else f"< {warning_h} >= {critical_h}"
    days = config.client_cert_critical_days if critical else config.client_cert_warning_days
    return subject.alert(
        CLIENT_CERT,
        expr=f"{hours} {band}\nand on (job, instance) {count} > 0",
        severity="critical" if critical else "warning",
        description=Description(
            "A client certificate presented to the apiserver {instance} expires in {value} hours: renew it with "
            "`kubeadm certs renew`."
        ),
        panel=PanelId.PLATFORM_APISERVER_CLIENT_CERTS,
        for_=config.client_cert_for,
        case=cases.client_certificate(
            system, config, days, None if critical else config.client_cert_critical_days
        ),
        entity=f"apiserver client certificates (< {days}d)",
        threshold=f"1st percentile of remaining lifetime < {days}d for {config.client_cert_for}",
        checks=(RunbookCheck("Every kubeadm certificate's expiry, on the master", KUBEADM_CERTS),),
    )


# --- etcd ----------------------------------------------------------------------------------------------


def _etcd(config: RuleConfig, metric: str) -> str:
    return selector(metric, {}, f"job=~{quote(config.etcd_job)}")


def etcd_alerts(system: System, config: RuleConfig, subject: AlertSubject) -> list[Alert]:
    status = RunbookCheck("Members, leader, database size", f"{ETCDCTL} endpoint status --cluster -w table")
    changes = _etcd(config, "etcd_server_leader_changes_seen_total")
    window = config.etcd_leader_changes_window
    alerts = [
        subject.alert(
            ETCD_NO_LEADER,
            expr=f"{_etcd(config, 'etcd_server_has_leader')} == 0",
            severity="critical",
            description=Description("etcd member {instance} has had no leader for " + config.etcd_no_leader_for + "."),
            panel=PanelId.PLATFORM_ETCD_LEADER,
            for_=config.etcd_no_leader_for,
            case=cases.etcd_no_leader(system, config),
            entity="etcd",
            threshold=f"no leader for {config.etcd_no_leader_for}",
            checks=(status,),
        ),
        subject.alert(
            ETCD_LEADER_CHANGES,
            expr=f"increase((max by (job) ({changes}) or 0 * absent({changes}))[{window}:1m])\n"
            f">= {config.etcd_leader_changes}",
            severity="warning",
            description=Description("etcd {job} changed its leader {value} times within the last " + window + "."),
            panel=PanelId.PLATFORM_ETCD_LEADER,
            for_=config.etcd_leader_changes_for,
            case=cases.etcd_leader_changes(system, config),
            entity="etcd",
            threshold=f"≥ {config.etcd_leader_changes} leader changes in {window}",
            checks=(status,),
        ),
        _etcd_latency(
            system, config, subject, ETCD_FSYNC,
            severity="warning", above=config.etcd_fsync_warning_seconds, below=config.etcd_fsync_critical_seconds,
        ),
        _etcd_latency(
            system, config, subject, ETCD_FSYNC, severity="critical", above=config.etcd_fsync_critical_seconds,
            below=None,
        ),
        _etcd_latency(
            system, config, subject, ETCD_COMMIT, severity="warning", above=config.etcd_commit_warning_seconds,
            below=None,
        ),
    ]
    size = f"last_over_time({_etcd(config, 'etcd_mvcc_db_total_size_in_bytes')}[5m])"
    quota = f"last_over_time({_etcd(config, 'etcd_server_quota_backend_bytes')}[5m])"
    usage = format(config.etcd_quota_usage.normalize(), "f")
    alerts.append(
        subject.alert(
            ETCD_QUOTA,
            expr=f"{size} / {quota} > {usage}",
            severity="critical",
            description=Description(
                "etcd member {instance}'s database is at {value} of its quota: at 100 % etcd refuses every write.",
                ValueFormat.PERCENT,
            ),
            panel=PanelId.PLATFORM_ETCD_DB_SIZE,
            for_=config.etcd_quota_for,
            case=cases.etcd_quota(system, config),
            entity="etcd",
            threshold=f"> {percent_text(config.etcd_quota_usage)} of quota for {config.etcd_quota_for}",
            checks=(status,),
        )
    )
    return alerts


_DISK_METRICS = {
    ETCD_FSYNC.name: "etcd_disk_wal_fsync_duration_seconds",
    ETCD_COMMIT.name: "etcd_disk_backend_commit_duration_seconds",
}


def _etcd_latency(
    system: System,
    config: RuleConfig,
    subject: AlertSubject,
    doc: AlertDoc,
    *,
    severity: Severity,
    above: Decimal,
    below: Decimal | None,
) -> Alert:
    """The 99th percentile of one of etcd's disk histograms above `above` (and at most `below`, the
    critical tier's bound, for a warning tier: one alert at a time says it)."""
    metric = _DISK_METRICS[doc.name]
    quantile = f"histogram_quantile(0.99, sum by (job, instance, le) (rate({_etcd(config, metric + '_bucket')}[5m])))"
    bound = format(above.normalize(), "f")
    band = "" if below is None else f" <= {format(below.normalize(), 'f')}"
    return subject.alert(
        doc,
        expr=f"{quantile}\n> {bound}{band}",
        severity=severity,
        description=Description(
            "etcd member {instance}: 99th percentile of " + metric.removeprefix("etcd_disk_").removesuffix("_seconds")
            + " is {value}.",
            ValueFormat.DURATION,
        ),
        panel=PanelId.PLATFORM_ETCD_DISK,
        for_=config.etcd_latency_for,
        case=cases.etcd_latency(system, config, metric, above, below),
        entity=f"etcd (p99 > {bound} s)",
        threshold=f"p99 > {bound} s for {config.etcd_latency_for}",
        checks=(RunbookCheck("The disk as etcd sees it, on the master", f"{ETCDCTL} check perf"),),
    )


# --- scheduler and controller-manager ------------------------------------------------------------------


def _down_alert(
    system: System,
    config: RuleConfig,
    subject: AlertSubject,
    doc: AlertDoc,
    *,
    exporter: Exporter,
    target: Mapping[str, str],
) -> Alert:
    up = selector("up", target)
    return subject.alert(
        doc,
        expr=f"absent({up} == 1)",
        severity="critical",
        description=Description(
            f"Prometheus has scraped no {exporter.value} for {config.control_plane_down_for}."
        ),
        panel=PanelId.PLATFORM_CONTROL_PLANE_UP,
        for_=config.control_plane_down_for,
        case=cases.down(system, config, exporter),
        entity=exporter.value,
        threshold=f"no target up for {config.control_plane_down_for}",
        checks=(RunbookCheck("Its targets", up, "promql"),),
    )
