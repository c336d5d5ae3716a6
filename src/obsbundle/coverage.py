"""The alerts of the community mixins, each next to the obsbundle alerts that cover it or the reason
it does not apply.

The catalogue lists every alert name of kubernetes-mixin (apps, resources, storage, system,
kubelet and control plane), node-mixin, the postgres mixin and kube-prometheus's own rules, each
with the file it is defined in at a pinned commit. docs/rules.md ("Coverage against the mixins")
carries it as rendered by `summary_table`, `sources_table` and `markdown_table`;
tests/test_coverage.py checks the docs against these, the names against the mixins' rendered
rules (tests/fixtures/mixins/) and every covering name against the alerts obsbundle generates.

obsbundle's alerts are about what the inventory names (its services, datastores, node pools,
volumes, platform workloads), where the mixins watch every object of the cluster; "covered" means
covered for every such object the inventory names.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Mixin(StrEnum):
    """An upstream alert catalogue."""

    KUBERNETES = "kubernetes-mixin"
    NODE = "node-mixin"
    POSTGRES = "postgres-mixin"
    KUBE_PROMETHEUS = "kube-prometheus"


class Verdict(StrEnum):
    """How obsbundle answers one upstream alert."""

    COVERED = "covered"
    PARTLY = "partly"
    """Covered for part of what the upstream alert watches; the note says which part is not."""
    NOT_APPLICABLE = "not applicable"
    NOT_COVERED = "not covered"


@dataclass(frozen=True)
class Source:
    """A file of an upstream repository at the commit read."""

    repo: str
    commit: str
    path: str

    def __str__(self) -> str:
        return f"{self.repo}@{self.commit}:{self.path}"


@dataclass(frozen=True)
class UpstreamAlert:
    """One upstream alert name (all its severity tiers) and obsbundle's answer to it."""

    name: str
    mixin: Mixin
    group: str
    source: Source
    verdict: Verdict
    covered_by: tuple[str, ...]
    """obsbundle alert names, exactly as generated."""
    note: str
    """For covered alerts, where obsbundle differs (threshold, scope); otherwise the reason."""

    def __post_init__(self) -> None:
        covers = self.verdict in (Verdict.COVERED, Verdict.PARTLY)
        if covers != bool(self.covered_by):
            raise ValueError(f"{self.name}: a {self.verdict.value} alert names covering alerts iff it is covered")
        if self.verdict is not Verdict.COVERED and not self.note:
            raise ValueError(f"{self.name}: a {self.verdict.value} alert needs its reason in the note")
        if "|" in self.note:  # a table cell
            raise ValueError(f"{self.name}: the note may not contain '|'")


@dataclass(frozen=True)
class Group:
    """An upstream rule group: every alert in it shares the mixin and the source file."""

    mixin: Mixin
    name: str
    source: Source

    def covered(self, alert: str, by: Iterable[str], note: str = "") -> UpstreamAlert:
        return self._alert(alert, Verdict.COVERED, tuple(by), note)

    def partly(self, alert: str, by: Iterable[str], missing: str) -> UpstreamAlert:
        return self._alert(alert, Verdict.PARTLY, tuple(by), missing)

    def not_applicable(self, alert: str, reason: str) -> UpstreamAlert:
        return self._alert(alert, Verdict.NOT_APPLICABLE, (), reason)

    def not_covered(self, alert: str, reason: str) -> UpstreamAlert:
        return self._alert(alert, Verdict.NOT_COVERED, (), reason)

    def _alert(self, alert: str, verdict: Verdict, by: tuple[str, ...], note: str) -> UpstreamAlert:
        return UpstreamAlert(alert, self.mixin, self.name, self.source, verdict, by, note)


_K8S = ("kubernetes-monitoring/kubernetes-mixin", "aa38e2bfa7ea6ec6870420b483046afe790a6411")
_NODE = ("prometheus/node_exporter", "a7dcc3a01545180d4f2087db70994cbc3abfed13")
_POSTGRES = ("prometheus-community/postgres_exporter", "dbb1987e2f0db61c47efb1bb66cc15bbf16f4c11")
_KUBE_PROMETHEUS = ("prometheus-operator/kube-prometheus", "4d719f1dea8853540b3823ab1fbe6be74a9953b3")
_KP_ALERTS = "jsonnet/kube-prometheus/components/mixin/alerts"

APPS = Group(Mixin.KUBERNETES, "kubernetes-apps", Source(*_K8S, "alerts/apps_alerts.libsonnet"))
RESOURCES = Group(Mixin.KUBERNETES, "kubernetes-resources", Source(*_K8S, "alerts/resource_alerts.libsonnet"))
STORAGE = Group(Mixin.KUBERNETES, "kubernetes-storage", Source(*_K8S, "alerts/storage_alerts.libsonnet"))
SYSTEM = Group(Mixin.KUBERNETES, "kubernetes-system", Source(*_K8S, "alerts/system_alerts.libsonnet"))
APISERVER_SLOS = Group(Mixin.KUBERNETES, "kube-apiserver-slos", Source(*_K8S, "alerts/kube_apiserver.libsonnet"))
APISERVER = Group(Mixin.KUBERNETES, "kubernetes-system-apiserver", Source(*_K8S, "alerts/kube_apiserver.libsonnet"))
KUBELET = Group(Mixin.KUBERNETES, "kubernetes-system-kubelet", Source(*_K8S, "alerts/kubelet.libsonnet"))
SCHEDULER = Group(Mixin.KUBERNETES, "kubernetes-system-scheduler", Source(*_K8S, "alerts/kube_scheduler.libsonnet"))
CONTROLLER_MANAGER = Group(
    Mixin.KUBERNETES, "kubernetes-system-controller-manager", Source(*_K8S, "alerts/kube_controller_manager.libsonnet")
)
KUBE_PROXY = Group(Mixin.KUBERNETES, "kubernetes-system-kube-proxy", Source(*_K8S, "alerts/kube_proxy.libsonnet"))
NODE_EXPORTER = Group(Mixin.NODE, "node-exporter", Source(*_NODE, "docs/node-mixin/alerts/alerts.libsonnet"))
POSTGRES = Group(Mixin.POSTGRES, "PostgreSQL", Source(*_POSTGRES, "postgres_mixin/alerts/postgres.libsonnet"))
GENERAL = Group(Mixin.KUBE_PROMETHEUS, "general.rules", Source(*_KUBE_PROMETHEUS, f"{_KP_ALERTS}/general.libsonnet"))
NODE_NETWORK = Group(Mixin.KUBE_PROMETHEUS, "node-network", Source(*_KUBE_PROMETHEUS, f"{_KP_ALERTS}/node.libsonnet"))

_SELF_MANAGED = (
    "generated where `platform.control_plane` is self-managed (EcoEco); "
    "a managed control plane (Aegis, LogPilot) is the provider's to run and watch"
)
_ONE_OF_SEVERAL = (
    f"{_SELF_MANAGED}. The component is alerted when no instance answers: on EcoEco's one master node that is "
    "the instance; one of several unreachable is not"
)
_AGGREGATED = (
    "aggregated APIs are not watched, though every HPA of the fleet reads metrics-server's "
    "`v1beta1.metrics.k8s.io` through one"
)
_NO_QUOTA = "no namespace of the fleet has a ResourceQuota (FLEET.md names none; the inventory has no quota key)"
_EC2 = "the fleet's nodes are EC2 instances (FLEET.md: t3, c5, r5) on EBS volumes"
_STACK_ARGS = (
    "neither stack's node-exporter passes it (kube-prometheus-stack values.yaml "
    "`prometheus-node-exporter.extraArgs`: only the filesystem excludes; kube-prometheus "
    "components/node-exporter.libsonnet args)"
)
_SYSTEMD_OFF = (
    "node_exporter's systemd collector is disabled by default (node_exporter README.md) and "
    f"{_STACK_ARGS.replace('passes it', 'enables it')}, so its series never exist"
)

_WORKLOADS = "for the inventory's services, its datastores' StatefulSets and `platform.workloads`"

CATALOGUE: tuple[UpstreamAlert, ...] = (
    APPS.covered("KubePodCrashLooping", ["WorkloadCrashLooping"], "critical after 5m, where the mixin warns after 15m"),
    APPS.covered(
        "KubePodNotReady",
        ["WorkloadPodsNotReady", "WorkloadReplicasMismatch", "WorkloadStatefulSetReplicasMismatch"],
        "a pod never scheduled has no Ready condition, so no `kube_pod_status_ready` series (kube-state-metrics "
        "internal/store/pod.go) for WorkloadPodsNotReady; "
        "its controller's replicas alert reports it",
    ),
    APPS.covered(
        "KubeDeploymentGenerationMismatch", ["WorkloadGenerationMismatch"], "one alert for Deployments and StatefulSets"
    ),
    APPS.covered(
        "KubeDeploymentReplicasMismatch",
        ["WorkloadReplicasMismatch", "WorkloadArgoRolloutReplicasMismatch"],
        "a service rolled out by Argo Rollouts, which has no `kube_deployment_*` series, from the controller's "
        "`rollout_info_replicas_*`",
    ),
    APPS.covered("KubeDeploymentRolloutStuck", ["WorkloadDeploymentRolloutStuck"]),
    APPS.covered("KubeStatefulSetReplicasMismatch", ["WorkloadStatefulSetReplicasMismatch"], _WORKLOADS),
    APPS.covered(
        "KubeStatefulSetGenerationMismatch",
        ["WorkloadGenerationMismatch"],
        f"one alert for Deployments and StatefulSets, {_WORKLOADS}",
    ),
    APPS.covered("KubeStatefulSetUpdateNotRolledOut", ["WorkloadStatefulSetUpdateNotRolledOut"], _WORKLOADS),
    APPS.covered(
        "KubeDaemonSetRolloutStuck", ["WorkloadDaemonSetRolloutStuck"], "for the DaemonSets `platform.workloads` names"
    ),
    APPS.covered("KubeContainerWaiting", ["WorkloadContainerWaiting"]),
    APPS.covered(
        "KubeDaemonSetNotScheduled", ["WorkloadDaemonSetNotScheduled"], "for the DaemonSets `platform.workloads` names"
    ),
    APPS.covered(
        "KubeDaemonSetMisScheduled", ["WorkloadDaemonSetMisScheduled"], "for the DaemonSets `platform.workloads` names"
    ),
    APPS.covered("KubeJobNotCompleted", ["WorkloadJobNotCompleted"]),
    APPS.covered("KubeJobFailed", ["WorkloadJobFailed", "WorkloadCronJobFailed"]),
    APPS.not_covered(
        "KubeHpaReplicasMismatch",
        "an autoscaler that cannot reach its desired replicas between min and max; only one at its maximum is watched",
    ),
    APPS.covered("KubeHpaMaxedOut", ["WorkloadHpaAtMaxReplicas"]),
    APPS.not_covered(
        "KubePdbNotEnoughHealthyPods", "the inventory names no PodDisruptionBudget, so none is generated or watched"
    ),
    RESOURCES.not_covered(
        "KubeCPUOvercommit",
        "requests against allocatable CPU are not watched; the node pools' usage is (NodeCpuHigh)",
    ),
    RESOURCES.not_covered(
        "KubeMemoryOvercommit",
        "requests against allocatable memory are not watched; the node pools' usage is (NodeMemoryHigh)",
    ),
    RESOURCES.not_applicable("KubeCPUQuotaOvercommit", _NO_QUOTA),
    RESOURCES.not_applicable("KubeMemoryQuotaOvercommit", _NO_QUOTA),
    RESOURCES.not_applicable("KubeQuotaAlmostFull", _NO_QUOTA),
    RESOURCES.not_applicable("KubeQuotaFullyUsed", _NO_QUOTA),
    RESOURCES.not_applicable("KubeQuotaExceeded", _NO_QUOTA),
    RESOURCES.covered(
        "CPUThrottlingHigh",
        ["WorkloadCpuThrottlingHigh"],
        "for containers with a CPU limit, above 25 % of periods as the mixin; warning (the mixin: info)",
    ),
    STORAGE.covered(
        "KubePersistentVolumeFillingUp",
        ["VolumeAlmostFull", "VolumeFillingUp"],
        "critical at 85 % used (the mixin: 3 % free), warning when half full and full within 4 days "
        "(the mixin: 15 % free)",
    ),
    STORAGE.covered(
        "KubePersistentVolumeInodesFillingUp",
        ["VolumeInodesAlmostExhausted", "VolumeInodesFillingUp"],
        "the mixin's tiers",
    ),
    STORAGE.partly(
        "KubePersistentVolumeErrors",
        ["VolumeClaimNotBound"],
        "a claim left Pending or Lost is alerted; a PersistentVolume in phase Failed (its reclaim failed) is not",
    ),
    SYSTEM.not_covered("KubeVersionMismatch", "component versions (`kubernetes_build_info`) are not compared"),
    SYSTEM.not_covered(
        "KubeClientErrors", "client errors against the apiserver (`rest_client_requests_total`) are not watched"
    ),
    APISERVER_SLOS.covered("KubeAPIErrorBudgetBurn", ["KubeAPIErrorBudgetBurn"], _SELF_MANAGED),
    APISERVER.covered("KubeClientCertificateExpiration", ["KubeClientCertificateExpiration"], _SELF_MANAGED),
    APISERVER.not_covered("KubeAggregatedAPIErrors", _AGGREGATED),
    APISERVER.not_covered("KubeAggregatedAPIDown", _AGGREGATED),
    APISERVER.covered("KubeAPIDown", ["KubeAPIDown"], _SELF_MANAGED),
    APISERVER.partly("KubeAPIInstanceUnreachable", ["KubeAPIDown"], _ONE_OF_SEVERAL),
    APISERVER.covered("KubeAPITerminatedRequests", ["KubeAPITerminatedRequests"], _SELF_MANAGED),
    KUBELET.covered("KubeNodeNotReady", ["NodeNotReady"], "per node pool, after 10m (the mixin: 15m)"),
    KUBELET.covered("KubeNodePressure", ["NodePressure"], "warning (the mixin: info)"),
    KUBELET.covered(
        "KubeNodeUnreachable",
        ["NodeNotReady"],
        "the node controller taints a node unreachable when its Ready condition turns Unknown, which NodeNotReady "
        "(Ready not true) already reports",
    ),
    KUBELET.covered(
        "KubeletTooManyPods",
        ["KubeletTooManyPods"],
        "per node pool, above 95 % for 15m as the mixin; warning (the mixin: info): a full node takes no new pod",
    ),
    KUBELET.covered("KubeNodeReadinessFlapping", ["KubeNodeReadinessFlapping"], "per node pool, as the mixin"),
    KUBELET.covered(
        "KubeNodeEviction",
        ["KubeNodeEviction"],
        "per node pool and eviction signal, any eviction in 15m as the mixin; warning (the mixin: info)",
    ),
    KUBELET.not_covered("KubeletPlegDurationHigh", "the kubelet's PLEG relist duration is not watched"),
    KUBELET.not_covered("KubeletPodStartUpLatencyHigh", "the kubelet's pod start-up latency is not watched"),
    KUBELET.not_covered(
        "KubeletClientCertificateExpiration",
        "the kubelet's own certificates (`kubelet_certificate_manager_*`) are not watched",
    ),
    KUBELET.not_covered(
        "KubeletServerCertificateExpiration",
        "the kubelet's own certificates (`kubelet_certificate_manager_*`) are not watched",
    ),
    KUBELET.not_covered("KubeletClientCertificateRenewalErrors", "the kubelet's certificate renewals are not watched"),
    KUBELET.not_covered("KubeletServerCertificateRenewalErrors", "the kubelet's certificate renewals are not watched"),
    KUBELET.partly(
        "KubeletInstanceUnreachable",
        ["KubeletDown", "NodeNotReady"],
        "one kubelet that stops answering Prometheus while it still reports Ready to the apiserver is not alerted; "
        "KubeletDown fires when none answers, NodeNotReady when one stops reporting",
    ),
    KUBELET.covered("KubeletDown", ["KubeletDown"]),
    SCHEDULER.covered("KubeSchedulerDown", ["KubeSchedulerDown"], _SELF_MANAGED),
    SCHEDULER.partly("KubeSchedulerInstanceUnreachable", ["KubeSchedulerDown"], _ONE_OF_SEVERAL),
    CONTROLLER_MANAGER.covered("KubeControllerManagerDown", ["KubeControllerManagerDown"], _SELF_MANAGED),
    CONTROLLER_MANAGER.partly(
        "KubeControllerManagerInstanceUnreachable", ["KubeControllerManagerDown"], _ONE_OF_SEVERAL
    ),
    KUBE_PROXY.not_covered(
        "KubeProxyDown",
        "kube-prometheus-stack scrapes kube-proxy (chart value `kubeProxy.enabled: true`, job `kube-proxy`), "
        "kube-prometheus does not by default; obsbundle.stacks has no kube-proxy target yet to prove the alert's "
        "series against, and kube-proxy serves its metrics on 127.0.0.1:10249 unless `metricsBindAddress` is changed",
    ),
    KUBE_PROXY.not_covered("KubeProxyInstanceUnreachable", "kube-proxy's targets are not watched"),
    NODE_EXPORTER.covered(
        "NodeFilesystemSpaceFillingUp",
        ["NodeDiskFillingUp"],
        "the mixin's two tiers: 60 % used and full within a day (warning), 80 % and within 4 hours (critical)",
    ),
    NODE_EXPORTER.covered(
        "NodeFilesystemAlmostOutOfSpace",
        ["NodeDiskAlmostFull"],
        "critical at 85 % used, the threshold the fleet's documents state (the mixin: 5 % and 3 % free)",
    ),
    NODE_EXPORTER.covered("NodeFilesystemFilesFillingUp", ["NodeInodesFillingUp"], "the mixin's two tiers"),
    NODE_EXPORTER.covered(
        "NodeFilesystemAlmostOutOfFiles", ["NodeInodesAlmostExhausted"], "the mixin's 5 % and 3 % free"
    ),
    NODE_EXPORTER.covered(
        "NodeNetworkReceiveErrs",
        ["NodeNetworkReceiveErrs"],
        "per node pool and interface, the node's own interfaces only (no pod veths or bridges); over 1 % for 1h as "
        "the mixin, the rate over 5m (the mixin: 2m)",
    ),
    NODE_EXPORTER.covered(
        "NodeNetworkTransmitErrs",
        ["NodeNetworkTransmitErrs"],
        "per node pool and interface, as NodeNetworkReceiveErrs",
    ),
    NODE_EXPORTER.covered(
        "NodeHighNumberConntrackEntriesUsed",
        ["NodeHighNumberConntrackEntriesUsed"],
        "per node pool, above 75 % as the mixin, for 5m (the mixin: no `for`)",
    ),
    NODE_EXPORTER.not_applicable(
        "NodeTextFileCollectorScrapeError",
        "`--collector.textfile.directory` defaults to none (node_exporter collector/textfile.go) and "
        f"{_STACK_ARGS}, so no textfile is read",
    ),
    NODE_EXPORTER.covered(
        "NodeClockSkewDetected", ["NodeClockSkew"], "more than 50 ms off and not coming back, as the mixin"
    ),
    NODE_EXPORTER.covered("NodeClockNotSynchronising", ["NodeClockNotSynchronised"]),
    NODE_EXPORTER.not_applicable("NodeRAIDDegraded", f"{_EC2}: there is no md software RAID to degrade"),
    NODE_EXPORTER.not_applicable("NodeRAIDDiskFailure", f"{_EC2}: there is no md software RAID to degrade"),
    NODE_EXPORTER.covered(
        "NodeFileDescriptorLimit", ["NodeFileDescriptorLimit"], "per node pool, the mixin's 70 % and 90 % for 15m"
    ),
    NODE_EXPORTER.covered(
        "NodeCPUHighUsage", ["NodeCpuHigh"], "critical at 90 % for 5m, as the fleet's documents state (the mixin: info)"
    ),
    NODE_EXPORTER.not_covered("NodeSystemSaturation", "the load average per CPU is not watched"),
    NODE_EXPORTER.not_covered("NodeMemoryMajorPagesFaults", "major page faults are not watched"),
    NODE_EXPORTER.covered(
        "NodeMemoryHighUtilization", ["NodeMemoryHigh"], "critical at 90 % for 5m, as the fleet's documents state"
    ),
    NODE_EXPORTER.not_covered("NodeDiskIOSaturation", "the disks' I/O queue is not watched"),
    NODE_EXPORTER.not_applicable("NodeSystemdServiceFailed", _SYSTEMD_OFF),
    NODE_EXPORTER.not_applicable("NodeSystemdServiceCrashlooping", _SYSTEMD_OFF),
    NODE_EXPORTER.not_applicable("NodeBondingDegraded", f"{_EC2}: their ENA interfaces are not bonded"),
    POSTGRES.covered(
        "PostgreSQLMaxConnectionsReached",
        ["PostgresConnectionsHigh"],
        "fires at 80 % of the slots, before they run out",
    ),
    POSTGRES.covered(
        "PostgreSQLHighConnections", ["PostgresConnectionsHigh"], "80 % of the non-reserved slots, as the mixin"
    ),
    POSTGRES.covered(
        "PostgreSQLDown",
        ["PostgresDown", "PoolQueueSourceDown"],
        "postgres_exporter's `pg_up`, critical (the mixin: warning); the pool & queue exporter's own connection too",
    ),
    POSTGRES.partly(
        "PostgreSQLSlowQueries",
        ["PostgresLongTransaction"],
        "a transaction open over an hour is alerted; the mixin's 2-minute query duration is not",
    ),
    POSTGRES.not_applicable(
        "PostgreSQLQPS",
        "a fixed ceiling of 10 000 transactions/s says nothing about these databases; load shows in the services' "
        "latency SLOs",
    ),
    POSTGRES.covered("PostgreSQLCacheHitRatio", ["PostgresCacheHitRatioLow"], "below 98 % as the mixin"),
    POSTGRES.covered("PostgresHasTooManyRollbacks", ["PostgresHighRollbackRatio"], "above 10 % as the mixin"),
    POSTGRES.covered("PostgresHasHighDeadLocks", ["PostgresDeadlocks"], "above 5 a minute as the mixin"),
    POSTGRES.partly(
        "PostgresAcquiredTooManyLocks",
        ["PostgresLockWaits"],
        "sessions waiting on locks are alerted; the lock table's fill against `max_locks_per_transaction` is not",
    ),
    POSTGRES.covered(
        "PostgresReplicationLaggingMore1Hour",
        ["PostgresReplicationLag"],
        "where the datastore has replicas (Aegis production), over an hour as the mixin",
    ),
    POSTGRES.not_covered("PostgresHasReplicationSlotUsed", "replication slots are not watched"),
    POSTGRES.not_covered("PostgresReplicationRoleChanged", "a failover (replica becoming primary) is not alerted"),
    POSTGRES.partly(
        "PostgresHasExporterErrors",
        ["PostgresDown", "PostgresExporterDown"],
        "an exporter that cannot connect or cannot be scraped is alerted; one query of the exporter failing while "
        "the rest work (`pg_exporter_last_scrape_error`) is not",
    ),
    POSTGRES.covered(
        "PostgresTablesNotVaccumed",
        ["PostgresTableNotVacuumed"],
        "dead rows above the autovacuum trigger and no vacuum for hours; warning (the mixin: critical)",
    ),
    POSTGRES.not_covered("PostgresTooManyCheckpointsRequested", "checkpoints are not watched"),
    GENERAL.partly(
        "TargetDown",
        [
            "ServiceTargetDown",
            "NodeExporterDown",
            "KubeStateMetricsDown",
            "KubeletDown",
            "KubeletCadvisorDown",
            "PostgresExporterDown",
            "RedisExporterDown",
            "KafkaExporterDown",
            "PoolQueueExporterDown",
            "BlackboxExporterDown",
        ],
        "fires when every target of a service or exporter is down; the mixin's share (over 10 % of a job's targets) "
        "is not alerted",
    ),
    GENERAL.covered("Watchdog", ["Watchdog"], "routed to the dead man's switch at `monitoring.deadmans_switch_url`"),
    GENERAL.not_applicable(
        "InfoInhibitor",
        "it lets info alerts through only beside a warning or critical one; obsbundle routes `severity=info` to a "
        "receiver that sends nothing (alerting/plan.py), so there is no info notification to hold back",
    ),
    NODE_NETWORK.covered(
        "NodeNetworkInterfaceFlapping",
        ["NodeNetworkInterfaceFlapping"],
        "per node pool and interface; more than 2 changes in 5m (kube-prometheus: in 2m, which holds at most 2 "
        "changes at a one-minute scrape interval)",
    ),
)


def counts() -> dict[Mixin, Counter[Verdict]]:
    """Per mixin, how many of its alert names have each verdict."""
    found: dict[Mixin, Counter[Verdict]] = {mixin: Counter() for mixin in Mixin}
    for alert in CATALOGUE:
        found[alert.mixin][alert.verdict] += 1
    return found


def summary_table() -> str:
    """Per mixin, its alert names and how many of them have each verdict."""
    verdicts = tuple(Verdict)
    rows = [
        "| mixin | alerts | " + " | ".join(verdict.value for verdict in verdicts) + " |",
        "|---|" + "---:|" * (len(verdicts) + 1),
    ]
    per_mixin = counts()
    for mixin in Mixin:
        found = per_mixin[mixin]
        cells = [str(found[verdict]) for verdict in verdicts]
        rows.append(f"| {mixin.value} | {found.total()} | " + " | ".join(cells) + " |")
    total = [str(sum(found[verdict] for found in per_mixin.values())) for verdict in verdicts]
    rows.append(f"| all | {len(CATALOGUE)} | " + " | ".join(total) + " |")
    return "\n".join(rows) + "\n"


def sources_table() -> str:
    """Each upstream rule group with the file it is defined in, at the commit read."""
    rows = ["| mixin | group | defined in |", "|---|---|---|"]
    groups = dict.fromkeys((alert.mixin, alert.group, str(alert.source)) for alert in CATALOGUE)
    rows.extend(f"| {mixin.value} | `{group}` | `{source}` |" for mixin, group, source in groups)
    return "\n".join(rows) + "\n"


def markdown_table() -> str:
    """The catalogue as the Markdown table docs/rules.md carries, one row per upstream alert, in order."""
    rows = [
        "| upstream alert | mixin | group | verdict | obsbundle | where it differs, or why not |",
        "|---|---|---|---|---|---|",
    ]
    for alert in CATALOGUE:
        by = ", ".join(f"`{name}`" for name in alert.covered_by) or "—"
        rows.append(
            f"| `{alert.name}` | {alert.mixin.value} | `{alert.group}` | {alert.verdict.value} | {by} | {alert.note} |"
        )
    return "\n".join(rows) + "\n"
