"""Rule settings kept apart from rule content: exporter selectors, thresholds, durations, intervals.

Every threshold that has no inventory field of its own lives here, so that no rule carries a
literal. Defaults follow the fleet's stated alerts (FLEET.md: node CPU and memory above 90 % for
5 minutes, disk above 85 %, all critical) and the job names kube-prometheus-stack and
kube-prometheus both give the standard exporters. Generators receive a `RuleConfig`, the rules'
section of `obsbundle.config.Config`; `RuleConfig()` is what `generate.py` uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction


def _labels(**labels: str) -> Mapping[str, str]:
    return dict(labels)


@dataclass(frozen=True)
class RuleConfig:
    """Knobs shared by every generated rule group."""

    # --- where the standard exporters' series come from (job names both stacks give them) ------
    node_exporter: Mapping[str, str] = field(default_factory=lambda: _labels(job="node-exporter"))
    kube_state_metrics: Mapping[str, str] = field(default_factory=lambda: _labels(job="kube-state-metrics"))
    cadvisor: Mapping[str, str] = field(
        default_factory=lambda: _labels(job="kubelet", metrics_path="/metrics/cadvisor")
    )
    kubelet: Mapping[str, str] = field(default_factory=lambda: _labels(job="kubelet", metrics_path="/metrics"))
    real_filesystems: str = 'fstype!~"tmpfs|ramfs|squashfs|overlay|nsfs|autofs|iso9660|fuse\\\\..*",mountpoint!=""'
    """Matchers that keep a node's real filesystems (not memory-backed, image or container layers)."""
    physical_devices: str = 'device!~"lo|veth.+|cali.+|tunl.+|vxlan.+|flannel.+|cni.+|docker.+|br-.+|virbr.+"'
    """Matchers that keep network interfaces that leave the node (not loopback, bridges or pod veths)."""

    # --- evaluation intervals -----------------------------------------------------------------------
    interval: str = "1m"
    """SLIs, short SLO windows, RED, node pools, every alert group."""
    slow_interval: str = "5m"
    """SLO windows of a day and longer: they move by a fraction of a percent per minute."""

    # --- SLOs ---------------------------------------------------------------------------------------
    slo_min_bad_events: int = 5
    """Low-traffic guard: a burn-rate alert needs at least this many bad events in its long window
    (an SLO's `min_bad_events` overrides it), so that a handful of failures in a quiet hour never
    pages, while a total outage of a service with one request a minute pages within minutes."""
    slo_for_share: Fraction = Fraction(1, 5)
    """`for` of each burn-rate alert as a share of its short window (1m for the 5m window): one
    confirming evaluation, small against the Workbook's detection times."""
    slo_absent_for: str = "15m"

    # --- nodes and node pools (FLEET.md) -----------------------------------------------------------
    node_cpu: Decimal = Decimal("0.9")
    node_memory: Decimal = Decimal("0.9")
    node_usage_for: str = "5m"
    node_disk: Decimal = Decimal("0.85")
    node_disk_for: str = "5m"
    disk_fill_lookback: str = "6h"
    node_disk_fill_horizon: str = "24h"
    disk_fill_min_usage: Decimal = Decimal("0.5")
    """Fill predictions only count once a volume is this full: a near-empty disk's trend is noise."""
    node_fill_warning_free: Decimal = Decimal("0.4")
    node_fill_critical_free: Decimal = Decimal("0.2")
    node_fill_critical_horizon: str = "4h"
    """node-mixin's two-tier prediction for node filesystems, of space and of inodes
    (fsSpaceFillingUpWarningThreshold 40, fsSpaceFillingUpCriticalThreshold 20, nodeWarningWindowHours
    24, nodeCriticalWindowHours 4): less free than the tier's share and empty within its horizon."""
    node_inodes_warning_free: Decimal = Decimal("0.05")
    node_inodes_critical_free: Decimal = Decimal("0.03")
    node_inodes_for: str = "1h"
    """node-mixin's NodeFilesystemAlmostOutOfFiles: below 5 % (warning) and 3 % (critical) free inodes for 1h."""
    node_clock_offset_seconds: Decimal = Decimal("0.05")
    node_clock_max_error_seconds: int = 16
    """The kernel's maximum error once NTP stops disciplining the clock (node-mixin's NodeClockNotSynchronising)."""
    node_clock_for: str = "10m"
    node_pressure_conditions: tuple[str, ...] = ("MemoryPressure", "DiskPressure", "PIDPressure")
    """The kubelet's eviction conditions (core/v1 NodeConditionType), kube-state-metrics' `condition`."""
    node_pressure_for: str = "10m"
    node_network_errors: Decimal = Decimal("0.01")
    node_network_errors_for: str = "1h"
    """node-mixin's NodeNetworkReceiveErrs and NodeNetworkTransmitErrs: more than 1 % of an interface's
    packets in error for an hour."""
    node_conntrack: Decimal = Decimal("0.75")
    node_conntrack_for: str = "5m"
    """node-mixin's NodeHighNumberConntrackEntriesUsed (75 % of the table, no `for` there): five minutes
    keep a burst of short connections from paging alone."""
    node_filefd_warning: Decimal = Decimal("0.7")
    node_filefd_critical: Decimal = Decimal("0.9")
    node_filefd_for: str = "15m"
    """node-mixin's NodeFileDescriptorLimit: 70 % (warning) and 90 % (critical) of the kernel's file handles."""
    node_interface_flaps: int = 2
    node_interface_flap_window: str = "5m"
    node_interface_flap_for: str = "2m"
    """kube-prometheus's NodeNetworkInterfaceFlapping: more than 2 changes of `node_network_up`, for 2m.
    Its window of 2m holds at most two changes at a one-minute scrape interval, so it could never fire
    there; five minutes can, at any scrape interval up to a minute."""
    kubelet_pods_share: Decimal = Decimal("0.95")
    kubelet_pods_for: str = "15m"
    """kubernetes-mixin's KubeletTooManyPods: a kubelet running more than 95 % of its node's pod capacity."""
    node_readiness_flaps: int = 2
    node_readiness_window: str = "15m"
    node_readiness_for: str = "15m"
    """kubernetes-mixin's KubeNodeReadinessFlapping: more than 2 changes of Ready in 15m, for 15m."""
    node_not_ready_for: str = "10m"
    pool_down_for: str = "5m"
    pool_size_for: str = "15m"
    pool_at_max_for: str = "30m"
    pool_label_missing_for: str = "15m"
    """A configuration warning, not an outage: it need not be raised within minutes."""

    # --- workloads -----------------------------------------------------------------------------------
    crash_loop_for: str = "5m"
    replicas_for: str = "15m"
    hpa_at_max_for: str = "15m"
    pods_not_ready_for: str = "15m"
    memory_near_limit_for: str = "5m"
    cronjob_grace_seconds: int = 3600
    """A CronJob is missed when it has not succeeded for its longest gap between runs plus this
    (at most one interval more, so that a job every 5 minutes is missed after 10)."""
    # kubernetes-mixin's apps alerts (alerts/apps_alerts.libsonnet at aa38e2b) and their `for`s.
    rollout_stuck_for: str = "15m"
    generation_mismatch_for: str = "15m"
    statefulset_for: str = "15m"
    daemonset_not_scheduled_for: str = "10m"
    daemonset_for: str = "15m"
    container_waiting_for: str = "1h"
    """The mixin's KubeContainerWaiting: an image pull or a volume mount may take minutes, an hour is stuck."""
    oom_window: str = "15m"
    """An OOM kill alerts while a restart within this window followed it."""
    cpu_throttling: Decimal = Decimal("0.25")
    """Share of CFS periods throttled (the mixin's cpuThrottlingPercent: 25)."""
    cpu_throttling_for: str = "15m"
    job_not_completed_seconds: int = 43200
    """A Job still active this long after it started did not complete (the mixin's kubeJobTimeoutDuration, 12h)."""
    argo_rollout_unhealthy_for: str = "5m"
    """Abort, Error, Timeout and InvalidSpec are settled phases, not passing states: a few minutes rule out a
    reconcile in flight."""
    volume_usage: Decimal = Decimal("0.85")
    volume_usage_for: str = "5m"
    volume_fill_horizon: str = "4d"
    """Claims are resized through change control; four days' warning covers a weekend."""
    volume_inodes_critical_free: Decimal = Decimal("0.03")
    volume_inodes_warning_free: Decimal = Decimal("0.15")
    """kubernetes-mixin's KubePersistentVolumeInodesFillingUp: below 3 % free inodes (critical), below
    15 % and empty within the fill horizon (warning)."""
    volume_claim_pending_for: str = "5m"
    fill_for: str = "1h"

    # --- API alerts (thresholds come from the inventory) -------------------------------------------
    api_for: str = "5m"

    # --- Postgres and PgBouncer (pool & queue exporter) ---------------------------------------------
    postgres_connections_for: str = "5m"
    postgres_lock_waits_for: str = "10m"
    """Sessions waiting on locks at every evaluation for this long: contention, not a blip."""
    postgres_oldest_transaction_seconds: int = 3600
    """Open transactions older than this hold back vacuum (a nightly pg_dump stays below it)."""
    postgres_oldest_transaction_for: str = "5m"
    pgbouncer_waiting_for: str = "10m"
    pgbouncer_max_wait_seconds: int = 5
    pgbouncer_max_wait_for: str = "5m"

    # --- queues ---------------------------------------------------------------------------------------
    queue_backlog_for: str = "10m"
    queue_growth_window: str = "30m"
    queue_growth_for: str = "15m"
    queue_growth_min_share: Decimal = Decimal("0.1")
    """A backlog only counts as growing once it holds this share of the queue's max_backlog."""
    queue_no_consumers_for: str = "5m"
    queue_age_for: str = "5m"
    kafka_lag_for: str = "10m"

    # --- datastore health from the standard exporters (datastore_health.py) -------------------------
    # Thresholds and `for` of the postgres mixin (prometheus-community/postgres_exporter@dbb1987e
    # postgres_mixin/alerts/postgres.libsonnet) and the redis mixin (oliver006/redis_exporter@cd5941f
    # contrib/redis-mixin/alerts/redis.libsonnet) where they have one.
    postgres_down_for: str = "1m"
    postgres_deadlocks_per_minute: int = 5
    postgres_deadlocks_for: str = "5m"
    postgres_rollback_ratio: Decimal = Decimal("0.1")
    postgres_rollback_for: str = "5m"
    postgres_cache_hit_ratio: Decimal = Decimal("0.98")
    postgres_cache_hit_for: str = "5m"
    postgres_vacuum_age_seconds: int = 36000
    """A table past its autovacuum trigger and not vacuumed for this long (the mixin's 10 hours)."""
    postgres_not_vacuumed_for: str = "30m"
    postgres_xid_age_share: Decimal = Decimal("0.5")
    """Share of the 2^31 transaction IDs a database's oldest unfrozen one has used (no mixin has it):
    five times autovacuum_freeze_max_age's default, so the anti-wraparound vacuum has been failing
    for a long while; PostgreSQL stops assigning IDs three million short of the whole space."""
    postgres_xid_age_for: str = "15m"
    postgres_replication_lag_seconds: int = 3600
    postgres_replication_lag_for: str = "5m"
    redis_down_for: str = "5m"
    redis_memory_share: Decimal = Decimal("0.9")
    """Of maxmemory (the mixin's 90 % is of the host's memory; a datastore's limit is maxmemory)."""
    redis_memory_for: str = "5m"
    redis_evictions_for: str = "5m"
    redis_rejected_for: str = "1m"
    """A rejected connection is an error a client saw; the 5m increase keeps it firing for 5 minutes."""
    redis_replication_for: str = "5m"
    redis_hit_ratio_window: str = "30m"
    """A cache hit ratio over a short window swings with every burst of new keys."""
    redis_hit_ratio_for: str = "15m"
    datastore_exporter_down_for: str = "5m"

    # --- brokers (RabbitMQ's rabbitmq_prometheus, kafka_exporter; rules/brokers.py) -----------------
    # Thresholds from rabbitmq/cluster-operator@9035e765:observability/prometheus/rules/rabbitmq/ and
    # strimzi/strimzi-kafka-operator@0c1a1fba:packaging/examples/metrics/prometheus-install/prometheus-rules.yaml.
    rabbitmq_node_down_for: str = "5m"
    rabbitmq_alarm_window: str = "5m"
    """An alarm counts while it was raised at any scrape of this window (the operator's `max_over_time`):
    a broker that flaps around its watermark stays one alert."""
    rabbitmq_fd_share: Decimal = Decimal("0.8")
    rabbitmq_fd_for: str = "10m"
    rabbitmq_unroutable_window: str = "5m"
    kafka_brokers_missing_for: str = "5m"
    kafka_under_replicated_for: str = "10m"
    """Longer than Strimzi's 10s: a broker's rolling restart leaves partitions under-replicated for
    the minutes it takes to catch up, and that is no fault."""
    kafka_offline_for: str = "2m"
    """Two of kafka_exporter's metadata refreshes (30s by default) at a 30s scrape: a leader election
    in progress is not an outage."""

    # --- external dependencies (blackbox_exporter probes) -----------------------------------------
    dependency_down_for: str = "5m"
    """Five failed probes in a row at the default 60 s interval: one lost packet or a single 5xx
    never alerts (blackbox-exporter-mixin waits 1m, awesome-prometheus-alerts not at all; both page)."""
    dependency_slow_for: str = "10m"
    certificate_warning_days: int = 21
    """blackbox-exporter-mixin's `probeSslExpireDaysThreshold` (adinhodovic/blackbox-exporter-mixin@
    ebfda88, config.libsonnet): cert-manager and Let's Encrypt renew 30 days before expiry (ACM 60),
    so 21 days left means renewal has been failing for over a week."""
    certificate_critical_days: int = 3
    """awesome-prometheus-alerts' critical tier for blackbox certificates (under 3 days): a weekend
    away from an outage."""
    certificate_for: str = "1h"
    """Certificates are renewed days ahead: an hour's wait costs nothing and keeps an endpoint whose
    servers serve two certificates (a rotation under way) from flapping."""
    dependency_absent_for: str = "15m"
    """As `exporter_absent_for`: a probe without results for this long is not a rollout blip."""

    # --- control plane (self-managed) and cert-manager (rules/control_plane.py, rules/cert_manager.py) -----
    apiserver: Mapping[str, str] = field(default_factory=lambda: _labels(job="apiserver"))
    kube_scheduler: Mapping[str, str] = field(default_factory=lambda: _labels(job="kube-scheduler"))
    kube_controller_manager: Mapping[str, str] = field(default_factory=lambda: _labels(job="kube-controller-manager"))
    etcd_job: str = ".*etcd.*"
    """A regex: kube-prometheus-stack's job is `kube-etcd`, kube-prometheus' static-etcd addon's `etcd`
    (etcd's own mixin selects `job=~".*etcd.*"` for the same reason)."""
    cert_manager: Mapping[str, str] = field(default_factory=lambda: _labels(job="cert-manager"))
    apiserver_objective: Decimal = Decimal("0.99")
    """kubernetes-mixin's apiserver SLO (config.libsonnet `SLOs.apiserver.target`), over its 30 days."""
    apiserver_slo_days: int = 30
    apiserver_read_latency: tuple[tuple[str, tuple[str, ...]], ...] = (
        ('scope=~"resource|"', ("1",)),
        ('scope="namespace"', ("5",)),
        ('scope="cluster"', ("30", "60")),
    )
    """A read is slow above these `le` bounds per scope (SIG Scalability's SLO, as kubernetes-mixin):
    the first bound the stack keeps counts. kube-prometheus drops the `le="30"` bucket at scrape
    (k8s-control-plane.libsonnet's metricRelabelings), so a cluster-wide LIST falls back to 60 s there."""
    apiserver_write_latency: tuple[str, ...] = ("1",)
    control_plane_down_for: str = "15m"
    """kubernetes-mixin's absent alerts (lib/absent_alert.libsonnet)."""
    apiserver_terminated_ratio: Decimal = Decimal("0.2")
    apiserver_terminated_for: str = "5m"
    client_cert_warning_days: int = 7
    client_cert_critical_days: int = 1
    client_cert_for: str = "5m"
    etcd_no_leader_for: str = "1m"
    etcd_leader_changes: int = 4
    """Leader changes within etcd_leader_changes_window (etcd mixin: 4 in 15m)."""
    etcd_leader_changes_window: str = "15m"
    etcd_leader_changes_for: str = "5m"
    etcd_fsync_warning_seconds: Decimal = Decimal("0.5")
    etcd_fsync_critical_seconds: Decimal = Decimal("1")
    etcd_commit_warning_seconds: Decimal = Decimal("0.25")
    etcd_latency_for: str = "10m"
    etcd_quota_usage: Decimal = Decimal("0.95")
    etcd_quota_for: str = "10m"
    cert_expiry_warning_days: int = 21
    """cert-manager-mixin's CertManagerCertExpirySoon: cert-manager renews at two thirds of a
    certificate's life (30 days before for a 90-day one), so 21 days left means renewal is failing."""
    cert_expiry_critical_days: int = 1
    cert_expiry_for: str = "1h"
    cert_not_ready_for: str = "10m"

    # --- platform and targets ---------------------------------------------------------------------------
    argocd_for: str = "15m"
    target_down_for: str = "5m"
    exporter_down_for: str = "5m"
    source_down_for: str = "5m"
    exporter_absent_for: str = "15m"
    """A standard exporter's absence alerts after this (kubernetes-mixin's `kubernetes-absent` uses
    15m): long enough to ride out a rollout or a rescheduled pod. Nothing it mutes fires on missing
    data meanwhile (the pool alerts guard against an absent kube-state-metrics), so none pages first."""

