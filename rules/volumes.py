"""PersistentVolumeClaims filling up: the services' `volumes`, the datastores' `volume` and the
platform workloads' `volumes` (EcoEco's Prometheus).

From the kubelet's volume stats: above 85 % used (critical, like a node disk) and more than half
full with free space running out within four days at the last six hours' rate (warning); inodes
as kubernetes-mixin's KubePersistentVolumeInodesFillingUp (below 3 % free, critical; below 15 %
and none left within four days, warning). From kube-state-metrics: a claim that is not bound
(Pending or Lost), kubernetes-mixin's KubePersistentVolumeErrors for the claims the inventory names.
A claim listed twice (LogPilot's SQLite, by a service and a datastore) is watched once: as the
service's, else the datastore's, else the platform workload's.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from obsbundle import naming
from obsbundle.durations import parse_duration
from obsbundle.links import Board, PanelId
from obsbundle.model import System
from obsbundle.promql import selector
from obsbundle.rules.alert_labels import AlertSubject, datastore_labels, owner_labels, service_labels
from obsbundle.rules.cases import volumes as cases
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.definitions import Alert, AlertDoc, RuleGroup, RunbookCheck
from obsbundle.rules.templating import Description, ValueFormat

ALMOST_FULL = AlertDoc(
    name="VolumeAlmostFull",
    summary="A PersistentVolumeClaim is almost full.",
    meaning="The volume is above the threshold. When it fills, the workload's writes fail: a database "
    "stops accepting them, SQLite returns SQLITE_FULL, a backup is cut short.",
    actions=(
        "Find what grows on the volume (`kubectl exec` into the pod, `du -sh`).",
        "Clean up (old backups, logs, vacuum) or expand the claim if its StorageClass allows "
        "(`allowVolumeExpansion`): edit `spec.resources.requests.storage`.",
    ),
)
INODES_EXHAUSTED = AlertDoc(
    name="VolumeInodesAlmostExhausted",
    summary="A PersistentVolumeClaim has almost no free inodes left.",
    meaning="Less than the threshold of the volume's inodes are free (kubernetes-mixin's "
    "KubePersistentVolumeInodesFillingUp, critical tier). When none is left no file can be created, "
    "however much space is free: PostgreSQL cannot create a segment or WAL file, Prometheus cannot cut "
    "a block, SQLite cannot open its journal.",
    actions=(
        "`kubectl exec` into the pod and run `df -i` on the mount, then `du --inodes -x --max-depth=3 <mount>`.",
        "Delete the small files that pile up (temporary files, old WAL segments, orphaned blocks) or move "
        "the data to a new claim formatted with more inodes (ext4: `mkfs.ext4 -i`).",
    ),
)
INODES_FILLING = AlertDoc(
    name="VolumeInodesFillingUp",
    summary="A PersistentVolumeClaim will run out of inodes within days at its current rate.",
    meaning="Less than the threshold of the volume's inodes are free and, extrapolated from the last six "
    "hours, none will be left within the horizon (kubernetes-mixin's KubePersistentVolumeInodesFillingUp, "
    "warning tier): files are created faster than they are removed.",
    actions=(
        "Check the trend on the dashboard and find the folder that gains files (`du --inodes`).",
        "Stop what creates them, or plan a new claim with more inodes, before VolumeInodesAlmostExhausted fires.",
    ),
)
NOT_BOUND = AlertDoc(
    name="VolumeClaimNotBound",
    summary="A PersistentVolumeClaim is not bound to a volume.",
    meaning="kube-state-metrics reports the claim as Pending (no volume provisioned or matched) or Lost "
    "(its volume is gone), as kubernetes-mixin's KubePersistentVolumeErrors does for volumes. The pod "
    "that mounts it cannot start: for a StatefulSet's claim the datastore is down, or cannot come back "
    "after a restart.",
    actions=(
        "`kubectl describe pvc <claim> -n <namespace>`: the provisioner's events (quota, zone, StorageClass).",
        "Pending: check the StorageClass and the CSI driver (`kubectl get pods -n kube-system` for the "
        "ebs-csi controller) and the cloud quota. Lost: find the volume (`kubectl get pv`) and restore it "
        "from a snapshot before recreating the pod.",
    ),
)
FILLING_UP = AlertDoc(
    name="VolumeFillingUp",
    summary="A PersistentVolumeClaim will fill up within days at its current rate.",
    meaning="The volume is more than half full and its free space, extrapolated from the last six hours, "
    "reaches zero within the horizon: time to plan an expansion or a clean-up.",
    actions=(
        "Check the growth on the dashboard: steady growth or a sudden change (a runaway log, a stuck retention job)?",
        "Expand the claim or clean up before VolumeAlmostFull fires.",
    ),
)


@dataclass(frozen=True)
class WatchedVolume:
    namespace: str
    claim: str
    subject: AlertSubject
    """Its owner's labels and dashboard; the runbook names it `<namespace>/<claim> (service …)`."""
    panel: PanelId


def watched_volumes(system: System) -> list[WatchedVolume]:
    """Every claim to watch, once, sorted by namespace and name. A platform workload's claim links to
    the volumes panel of its node pool's dashboard (the dashboard of all pools when it names none):
    the platform's owner answers it, as they answer the pool."""
    found: dict[tuple[str, str], WatchedVolume] = {}
    for service in sorted(system.services, key=lambda s: s.name):
        for claim in service.volumes:
            labels = {**service_labels(system, service), "persistentvolumeclaim": claim}
            entity = f"{service.namespace}/{claim} (service {service.name})"
            found.setdefault(
                (service.namespace, claim),
                WatchedVolume(
                    service.namespace,
                    claim,
                    AlertSubject(system, labels, entity, Board.SERVICE, service.name),
                    PanelId.SERVICE_PVC_USAGE,
                ),
            )
    for store in sorted(system.datastores, key=lambda s: s.name):
        if store.volume is None or (store.namespace, store.volume) in found:
            continue
        labels = {
            **datastore_labels(system, store),
            naming.NAMESPACE_LABEL: store.namespace,
            "persistentvolumeclaim": store.volume,
        }
        entity = f"{store.namespace}/{store.volume} (datastore {store.name})"
        subject = AlertSubject(system, labels, entity, Board.DATABASE, variables={"datastore": store.name})
        found[(store.namespace, store.volume)] = WatchedVolume(
            store.namespace, store.volume, subject, PanelId.DB_VOLUME_USAGE
        )
    for workload in sorted(system.platform.workloads, key=lambda w: (w.namespace, w.name)):
        for claim in workload.volumes:
            if (workload.namespace, claim) in found:
                continue
            labels = {
                **owner_labels(system),
                naming.NAMESPACE_LABEL: workload.namespace,
                "persistentvolumeclaim": claim,
            }
            if workload.node_pool is not None:
                labels[naming.NODE_POOL_LABEL] = workload.node_pool
            entity = f"{workload.namespace}/{claim} (platform workload {workload.name})"
            board = Board.NODE_POOL if workload.node_pool else Board.NODE_POOLS
            subject = AlertSubject(system, labels, entity, board, workload.node_pool)
            found[(workload.namespace, claim)] = WatchedVolume(workload.namespace, claim, subject, PanelId.POOL_VOLUMES)
    return [found[key] for key in sorted(found)]


def volume_alerts(system: System, config: RuleConfig, volume: WatchedVolume) -> list[Alert]:
    labels = {naming.NAMESPACE_LABEL: volume.namespace, "persistentvolumeclaim": volume.claim}
    used = selector("kubelet_volume_stats_used_bytes", {**config.kubelet, **labels})
    available = selector("kubelet_volume_stats_available_bytes", {**config.kubelet, **labels})
    capacity = selector("kubelet_volume_stats_capacity_bytes", {**config.kubelet, **labels})
    usage = f"max({used}) / max({capacity})"
    threshold = config.volume_usage
    check = RunbookCheck("Used share of the claim", usage, "promql")
    almost_full = volume.subject.alert(
        ALMOST_FULL,
        expr=f"{usage} > {format(threshold.normalize(), 'f')}",
        severity="critical",
        description=Description(f"Volume {volume.claim} in {volume.namespace} is {{value}} full.", ValueFormat.PERCENT),
        panel=volume.panel,
        for_=config.volume_usage_for,
        case=cases.almost_full(config, volume.namespace, volume.claim),
        threshold=f"> {float(threshold) * 100:g}% for {config.volume_usage_for}",
        checks=(check,),
    )
    horizon = parse_duration(config.volume_fill_horizon)
    filling = volume.subject.alert(
        FILLING_UP,
        expr=(
            f"{usage} > {format(config.disk_fill_min_usage.normalize(), 'f')}\n"
            f"and on () min(predict_linear({available}[{config.disk_fill_lookback}], {horizon})) < 0"
        ),
        severity="warning",
        description=Description(
            f"Volume {volume.claim} in {volume.namespace} is {{value}} full and will fill within "
            f"{config.volume_fill_horizon} at the rate of the last {config.disk_fill_lookback}.",
            ValueFormat.PERCENT,
        ),
        panel=volume.panel,
        for_=config.fill_for,
        case=cases.filling_up(config, volume.namespace, volume.claim),
        threshold=f"> {float(config.disk_fill_min_usage) * 100:g}% and full within {config.volume_fill_horizon}",
        checks=(check,),
    )
    return [almost_full, filling, *inode_alerts(config, volume), not_bound(config, volume)]


def inode_alerts(config: RuleConfig, volume: WatchedVolume) -> list[Alert]:
    """kubernetes-mixin's two inode tiers for one claim; a claim whose kubelet reports no inodes in
    use (a filesystem without inode accounting) never fires."""
    labels = {naming.NAMESPACE_LABEL: volume.namespace, "persistentvolumeclaim": volume.claim}
    free = selector("kubelet_volume_stats_inodes_free", {**config.kubelet, **labels})
    total = selector("kubelet_volume_stats_inodes", {**config.kubelet, **labels})
    used = selector("kubelet_volume_stats_inodes_used", {**config.kubelet, **labels})
    share_free = f"max({free}) / max({total})"
    in_use = f"and on () max({used}) > 0"
    horizon = parse_duration(config.volume_fill_horizon)
    check = RunbookCheck("Free share of the claim's inodes", share_free, "promql")
    critical, warning = config.volume_inodes_critical_free, config.volume_inodes_warning_free
    exhausted = volume.subject.alert(
        INODES_EXHAUSTED,
        expr=f"{share_free} < {_decimal(critical)}\n{in_use}",
        severity="critical",
        description=Description(
            f"Volume {volume.claim} in {volume.namespace} has only {{value}} of its inodes free.", ValueFormat.PERCENT
        ),
        panel=volume.panel,
        for_=config.volume_usage_for,
        case=cases.inodes_exhausted(config, volume.namespace, volume.claim),
        threshold=f"< {float(critical) * 100:g}% inodes free for {config.volume_usage_for}",
        checks=(check,),
    )
    filling = volume.subject.alert(
        INODES_FILLING,
        expr=(
            f"{share_free} < {_decimal(warning)}\n{in_use}\n"
            f"and on () min(predict_linear({free}[{config.disk_fill_lookback}], {horizon})) < 0"
        ),
        severity="warning",
        description=Description(
            f"Volume {volume.claim} in {volume.namespace} has {{value}} of its inodes free and will run out within "
            f"{config.volume_fill_horizon} at the rate of the last {config.disk_fill_lookback}.",
            ValueFormat.PERCENT,
        ),
        panel=volume.panel,
        for_=config.fill_for,
        case=cases.inodes_filling(config, volume.namespace, volume.claim),
        threshold=f"< {float(warning) * 100:g}% inodes free and none left within {config.volume_fill_horizon}",
        checks=(check,),
    )
    return [exhausted, filling]


def not_bound(config: RuleConfig, volume: WatchedVolume) -> Alert:
    """The claim Pending or Lost in kube-state-metrics, by phase."""
    labels = {naming.NAMESPACE_LABEL: volume.namespace, "persistentvolumeclaim": volume.claim}
    phase = selector(
        "kube_persistentvolumeclaim_status_phase", {**config.kube_state_metrics, **labels}, 'phase=~"Pending|Lost"'
    )
    return volume.subject.alert(
        NOT_BOUND,
        expr=f"max by (phase) ({phase}) == 1",
        severity="critical",
        description=Description(f"Volume claim {volume.claim} in {volume.namespace} is {{phase}}."),
        panel=volume.panel,
        for_=config.volume_claim_pending_for,
        case=cases.not_bound(config, volume.namespace, volume.claim),
        threshold=f"Pending or Lost for {config.volume_claim_pending_for}",
        checks=(
            RunbookCheck("The claim and its events", f"kubectl describe pvc {volume.claim} -n {volume.namespace}"),
        ),
    )


def _decimal(value: Decimal) -> str:
    return format(value.normalize(), "f")


def volume_groups(system: System, config: RuleConfig) -> list[RuleGroup]:
    alerts = [alert for volume in watched_volumes(system) for alert in volume_alerts(system, config, volume)]
    if not alerts:
        return []
    return [RuleGroup(f"{system.name}-volumes", config.interval, tuple(alerts))]
