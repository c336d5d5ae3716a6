"""Platform: the self-managed control plane (the apiserver's SLO, requests and client certificates,
etcd, the scheduler and controller-manager) and cert-manager's certificates, each row only where
the system has it (`platform.control_plane: self-managed`, `platform.cert_manager_namespace`).

Panels read what the control-plane and cert-manager alerts read (the rules' selectors, the
recorded apiserver SLO series), so a linked panel shows the alert's own numbers.
"""

from __future__ import annotations

from typing import Any

from obsbundle import naming
from obsbundle.dashboards.common import sibling_links, tags, variables
from obsbundle.dashboards.config import DashboardConfig
from obsbundle.dashboards.panels import (
    Query,
    Row,
    Unit,
    dashboard,
    higher_is_worse,
    lower_is_worse,
    stat,
    table,
    timeseries,
)
from obsbundle.dashboards.queries import RATE_INTERVAL, recorded_system_labels, sel
from obsbundle.links import Board, PanelId, dashboard_uid
from obsbundle.model import ControlPlane, System
from obsbundle.promql import quote
from obsbundle.rules.config import RuleConfig

DAY_S = 86400
NON_STREAMING = 'subresource!~"proxy|attach|log|exec|portforward"'
"""As the apiserver SLO: long-running requests have no latency to speak of."""


def has_platform_board(system: System) -> bool:
    """A self-managed control plane or cert-manager to show."""
    platform = system.platform
    return platform.control_plane is ControlPlane.SELF_MANAGED or platform.cert_manager_namespace is not None


def platform_dashboard(system: System, config: DashboardConfig) -> dict[str, Any]:
    rows: list[Row] = []
    parts: list[str] = []
    if system.platform.control_plane is ControlPlane.SELF_MANAGED:
        rows += [_apiserver_row(system, config), _components_row(config)]
        parts.append("the self-managed control plane (apiserver SLO, etcd, scheduler, controller-manager)")
    namespace = system.platform.cert_manager_namespace
    if namespace is not None:
        rows.append(_certificates_row(config))
        parts.append(f"cert-manager's certificates (cert-manager in {namespace})")
    return dashboard(
        uid=dashboard_uid(system, Board.PLATFORM),
        title=f"{system.name} / Platform",
        description=" and ".join(parts).capitalize(),
        tags=tags(system, "platform"),
        rows=rows,
        variables=variables(system, config),
        links=sibling_links(system),
        config=config,
    )


def _apiserver(exporters: RuleConfig, metric: str, *raw: str) -> str:
    return sel(metric, exporters.apiserver, *raw)


def _etcd(exporters: RuleConfig, metric: str) -> str:
    return sel(metric, None, f"job=~{quote(exporters.etcd_job)}")


def _apiserver_row(system: System, config: DashboardConfig) -> Row:
    exporters = config.exporters
    recorded = recorded_system_labels(system)
    budget = 1 - float(exporters.apiserver_objective)
    requests = _apiserver(exporters, "apiserver_request_total")
    terminations = _apiserver(exporters, "apiserver_request_terminations_total")
    latency = _apiserver(exporters, "apiserver_request_sli_duration_seconds_bucket", NON_STREAMING)
    client_certs = _apiserver(exporters, "apiserver_client_certificate_expiration_seconds_bucket")
    return Row(
        "API server",
        [
            stat(
                "Error budget remaining",
                f"Share of the apiserver's {exporters.apiserver_slo_days}-day error budget left, for reads and "
                f"writes: a request is bad when it fails (5xx) or is slower than its bound; the objective is "
                f"{float(exporters.apiserver_objective):.0%} good. Red at 0, orange below "
                f"{config.budget_warning:.0%}.",
                [Query(sel(naming.APISERVER_ERROR_BUDGET_REMAINING, recorded), "{{verb}}")],
                Unit.RATIO,
                panel_id=PanelId.PLATFORM_APISERVER_BUDGET,
                thresholds=lower_is_worse(0, config.budget_warning),
                width=6,
                height=8,
            ),
            timeseries(
                "Bad requests",
                f"Share of reads and writes that failed or were too slow, over 5 minutes and 1 hour. The "
                f"fastest page fires when both exceed 14.4× the {budget:.0%} budget.",
                [
                    Query(sel(naming.apiserver_error_ratio(window), recorded), "{{verb}} " + window)
                    for window in ("5m", "1h")
                ],
                Unit.RATIO,
                width=9,
            ),
            timeseries(
                "Requests by code",
                "Requests per second the apiserver served, by HTTP code, and those it terminated in self-defence "
                "(API Priority and Fairness): 5xx and terminations should be near zero.",
                [
                    Query(f"sum by (code) (rate({requests}[{RATE_INTERVAL}]))", "{{code}}"),
                    Query(f"sum(rate({terminations}[{RATE_INTERVAL}]))", "terminated"),
                ],
                Unit.REQUESTS_PER_SECOND,
                panel_id=PanelId.PLATFORM_APISERVER_ERRORS,
                width=9,
            ),
            timeseries(
                "Latency (99th percentile)",
                "99th percentile of request latency by verb, without webhooks and queueing "
                "(apiserver_request_sli_duration_seconds). The SLO's bounds: 1 s for a write or a read of one "
                "object, 5 s for a namespace, 30 s for the cluster.",
                [
                    Query(
                        f"histogram_quantile(0.99, sum by (verb, le) (rate({latency}[{RATE_INTERVAL}])))", "{{verb}}"
                    )
                ],
                Unit.SECONDS,
                width=12,
            ),
            stat(
                "Client certificates: earliest expiry",
                "Remaining lifetime of the earliest 1 % of client certificates presented to the apiserver: "
                f"orange within {exporters.client_cert_warning_days} days, red within "
                f"{exporters.client_cert_critical_days}. Renew with `kubeadm certs renew`.",
                [Query(f"histogram_quantile(0.01, sum by (le) (rate({client_certs}[{RATE_INTERVAL}])))")],
                Unit.SECONDS,
                panel_id=PanelId.PLATFORM_APISERVER_CLIENT_CERTS,
                thresholds=lower_is_worse(
                    exporters.client_cert_critical_days * DAY_S, exporters.client_cert_warning_days * DAY_S
                ),
                width=12,
                height=8,
            ),
        ],
    )


def _components_row(config: DashboardConfig) -> Row:
    exporters = config.exporters
    up = [
        Query(f"sum({sel('up', exporters.apiserver)})", "apiserver"),
        Query(f"sum({_etcd(exporters, 'up')})", "etcd"),
        Query(f"sum({sel('up', exporters.kube_scheduler)})", "kube-scheduler"),
        Query(f"sum({sel('up', exporters.kube_controller_manager)})", "kube-controller-manager"),
    ]
    fsync = _etcd(exporters, "etcd_disk_wal_fsync_duration_seconds_bucket")
    commit = _etcd(exporters, "etcd_disk_backend_commit_duration_seconds_bucket")
    return Row(
        "Control plane components and etcd",
        [
            stat(
                "Targets up",
                "Targets Prometheus scrapes of each control-plane component: 0 (red) means the component is down "
                "or not scraped (kubeadm binds the scheduler, controller-manager and etcd's metrics to 127.0.0.1).",
                up,
                Unit.COUNT,
                panel_id=PanelId.PLATFORM_CONTROL_PLANE_UP,
                thresholds=lower_is_worse(1),
                graph=False,
                width=8,
            ),
            stat(
                "etcd has a leader",
                "1 when the member sees a Raft leader; 0 (red) means it cannot serve writes.",
                [Query(_etcd(exporters, "etcd_server_has_leader"), "{{instance}}")],
                Unit.COUNT,
                panel_id=PanelId.PLATFORM_ETCD_LEADER,
                thresholds=lower_is_worse(1),
                width=4,
            ),
            timeseries(
                "etcd database size",
                "Database size of each member against its backend quota: at the quota etcd refuses every write. "
                "Defragment or raise `--quota-backend-bytes` well before.",
                [
                    Query(_etcd(exporters, "etcd_mvcc_db_total_size_in_bytes"), "{{instance}} size"),
                    Query(_etcd(exporters, "etcd_server_quota_backend_bytes"), "{{instance}} quota"),
                ],
                Unit.BYTES,
                panel_id=PanelId.PLATFORM_ETCD_DB_SIZE,
                width=12,
            ),
            timeseries(
                "etcd disk latency (99th percentile)",
                "WAL fsync and backend commit latency per member: every write waits for both. Fsync above "
                f"{exporters.etcd_fsync_warning_seconds} s or commit above {exporters.etcd_commit_warning_seconds} s "
                "means the disk is too slow for etcd.",
                [
                    Query(
                        f"histogram_quantile(0.99, sum by (instance, le) (rate({fsync}[{RATE_INTERVAL}])))",
                        "{{instance}} fsync",
                    ),
                    Query(
                        f"histogram_quantile(0.99, sum by (instance, le) (rate({commit}[{RATE_INTERVAL}])))",
                        "{{instance}} commit",
                    ),
                ],
                Unit.SECONDS,
                panel_id=PanelId.PLATFORM_ETCD_DISK,
                thresholds=higher_is_worse(
                    float(exporters.etcd_fsync_warning_seconds), float(exporters.etcd_fsync_critical_seconds)
                ),
                show_thresholds=True,
                width=24,
            ),
        ],
    )


def _certificates_row(config: DashboardConfig) -> Row:
    exporters = config.exporters
    expiration = sel("certmanager_certificate_expiration_timestamp_seconds", exporters.cert_manager)
    ready = sel("certmanager_certificate_ready_status", exporters.cert_manager, 'condition!="True"')
    return Row(
        "Certificates",
        [
            table(
                "Certificates by time to expiry",
                "Every issued certificate cert-manager manages, soonest expiry first: orange within "
                f"{exporters.cert_expiry_warning_days} days (renewal is failing: cert-manager renews at two thirds "
                f"of a certificate's life), red within {exporters.cert_expiry_critical_days}.",
                [Query(f"sort(min by (namespace, name) ({expiration} > 0) - time())")],
                Unit.SECONDS,
                panel_id=PanelId.PLATFORM_CERT_EXPIRY,
                thresholds=lower_is_worse(
                    exporters.cert_expiry_critical_days * DAY_S, exporters.cert_expiry_warning_days * DAY_S
                ),
                columns={"namespace": "Namespace", "name": "Certificate", "Value": "Expires in"},
                colour_cells=True,
                width=14,
            ),
            table(
                "Certificates not ready",
                "Certificates whose Ready condition is False or Unknown: issuance or renewal failed, or the issuer "
                "is not ready. Empty is good.",
                [Query(f"max by (namespace, name, condition) ({ready} == 1)")],
                Unit.COUNT,
                panel_id=PanelId.PLATFORM_CERT_NOT_READY,
                hidden=("Time", "Value"),
                columns={"namespace": "Namespace", "name": "Certificate", "condition": "Ready"},
                width=10,
            ),
        ],
    )
