"""PersistentVolumeClaims filling up: the services' `volumes` and the datastores' `volume`.

From the kubelet's volume stats: above 85 % used (critical, like a node disk) and more than half
full with free space running out within four days at the last six hours' rate (warning). A claim
listed by both a service and a datastore (LogPilot's SQLite) is watched once, as the service's.
"""

from __future__ import annotations

from dataclasses import dataclass

from obsbundle import naming
from obsbundle.durations import parse_duration
from obsbundle.links import Board, PanelId, panel_url
from obsbundle.model import System
from obsbundle.promql import selector
from obsbundle.rules.alert_labels import datastore_labels, runbook_url, service_labels
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.definitions import Alert, AlertDoc, Case, Inputs, RuleGroup, RunbookCheck
from obsbundle.rules.input_series import constant, counter
from obsbundle.rules.templating import Description, ValueFormat

CAPACITY = 100_000_000_000

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
    labels: dict[str, str]
    dashboard: str
    owner: str
    """Who keeps data on it, for the runbook: `service logpilot-all`, `datastore postgres`."""


def watched_volumes(system: System) -> list[WatchedVolume]:
    """Every claim to watch, once, sorted by namespace and name."""
    found: dict[tuple[str, str], WatchedVolume] = {}
    for service in sorted(system.services, key=lambda s: s.name):
        for claim in service.volumes:
            found.setdefault(
                (service.namespace, claim),
                WatchedVolume(
                    service.namespace,
                    claim,
                    {**service_labels(system, service), "persistentvolumeclaim": claim},
                    panel_url(system, Board.SERVICE, PanelId.SERVICE_PVC_USAGE, service.name),
                    f"service {service.name}",
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
        found[(store.namespace, store.volume)] = WatchedVolume(
            store.namespace,
            store.volume,
            labels,
            panel_url(system, Board.DATABASE, PanelId.DB_VOLUME_USAGE, datastore=store.name),
            f"datastore {store.name}",
        )
    return [found[key] for key in sorted(found)]


def _inputs(config: RuleConfig, volume: WatchedVolume, used: float, growth_per_minute: float, minutes: int) -> Inputs:
    labels = {**config.kubelet, naming.NAMESPACE_LABEL: volume.namespace, "persistentvolumeclaim": volume.claim}
    return (
        counter("kubelet_volume_stats_used_bytes", labels, growth_per_minute, minutes, start=CAPACITY * used),
        counter(
            "kubelet_volume_stats_available_bytes", labels, -growth_per_minute, minutes, start=CAPACITY * (1 - used)
        ),
        constant("kubelet_volume_stats_capacity_bytes", labels, CAPACITY, minutes),
    )


def volume_alerts(system: System, config: RuleConfig, volume: WatchedVolume) -> list[Alert]:
    labels = {naming.NAMESPACE_LABEL: volume.namespace, "persistentvolumeclaim": volume.claim}
    used = selector("kubelet_volume_stats_used_bytes", {**config.kubelet, **labels})
    available = selector("kubelet_volume_stats_available_bytes", {**config.kubelet, **labels})
    capacity = selector("kubelet_volume_stats_capacity_bytes", {**config.kubelet, **labels})
    usage = f"max({used}) / max({capacity})"
    threshold = config.volume_usage
    full_at = parse_duration(config.volume_usage_for) // 60 + 7
    fill_at = parse_duration(config.fill_for) // 60 + 30
    high = float((1 + threshold) / 2)
    growth = CAPACITY * 0.0005
    start = 0.55
    check = RunbookCheck("Used share of the claim", usage, "promql")
    where = f"{volume.namespace}/{volume.claim}"
    almost_full = Alert(
        doc=ALMOST_FULL,
        expr=f"{usage} > {format(threshold.normalize(), 'f')}",
        severity="critical",
        labels=volume.labels,
        description=Description(f"Volume {volume.claim} in {volume.namespace} is {{value}} full.", ValueFormat.PERCENT),
        runbook_url=runbook_url(system, ALMOST_FULL.name),
        dashboard_url=volume.dashboard,
        for_=config.volume_usage_for,
        case=Case(
            firing=_inputs(config, volume, high, 0, full_at),
            quiet=_inputs(config, volume, 0.5, 0, full_at),
            labels={},
            value=high,
            eval_time=f"{full_at}m",
        ),
        entity=f"{where} ({volume.owner})",
        threshold=f"> {float(threshold) * 100:g}% for {config.volume_usage_for}",
        checks=(check,),
    )
    horizon = parse_duration(config.volume_fill_horizon)
    filling = Alert(
        doc=FILLING_UP,
        expr=(
            f"{usage} > {format(config.disk_fill_min_usage.normalize(), 'f')}\n"
            f"and on () min(predict_linear({available}[{config.disk_fill_lookback}], {horizon})) < 0"
        ),
        severity="warning",
        labels=volume.labels,
        description=Description(
            f"Volume {volume.claim} in {volume.namespace} is {{value}} full and will fill within "
            f"{config.volume_fill_horizon} at the rate of the last {config.disk_fill_lookback}.",
            ValueFormat.PERCENT,
        ),
        runbook_url=runbook_url(system, FILLING_UP.name),
        dashboard_url=volume.dashboard,
        for_=config.fill_for,
        case=Case(
            firing=_inputs(config, volume, start, growth, fill_at),
            quiet=_inputs(config, volume, start, 0, fill_at),
            labels={},
            value=(CAPACITY * start + growth * fill_at) / CAPACITY,
            eval_time=f"{fill_at}m",
            evaluation_interval="5m",
        ),
        entity=f"{where} ({volume.owner})",
        threshold=f"> {float(config.disk_fill_min_usage) * 100:g}% and full within {config.volume_fill_horizon}",
        checks=(check,),
    )
    return [almost_full, filling]


def volume_groups(system: System, config: RuleConfig) -> list[RuleGroup]:
    alerts = [alert for volume in watched_volumes(system) for alert in volume_alerts(system, config, volume)]
    if not alerts:
        return []
    return [RuleGroup(f"{system.name}-volumes", config.interval, tuple(alerts))]
