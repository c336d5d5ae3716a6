"""PersistentVolumeClaims filling up: the services' `volumes` and the datastores' `volume`.

From the kubelet's volume stats: above 85 % used (critical, like a node disk) and more than half
full with free space running out within four days at the last six hours' rate (warning). A claim
listed by both a service and a datastore (LogPilot's SQLite) is watched once, as the service's.
"""

from __future__ import annotations

from dataclasses import dataclass

from obsbundle import naming
from obsbundle.durations import parse_duration
from obsbundle.links import Board, PanelId
from obsbundle.model import System
from obsbundle.promql import selector
from obsbundle.rules.alert_labels import AlertSubject, datastore_labels, service_labels
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
    """Every claim to watch, once, sorted by namespace and name."""
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
    return [almost_full, filling]


def volume_groups(system: System, config: RuleConfig) -> list[RuleGroup]:
    alerts = [alert for volume in watched_volumes(system) for alert in volume_alerts(system, config, volume)]
    if not alerts:
        return []
    return [RuleGroup(f"{system.name}-volumes", config.interval, tuple(alerts))]
