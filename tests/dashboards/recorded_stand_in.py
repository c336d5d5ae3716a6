"""Recorded series written directly, under the names and labels of `obsbundle.naming`, for as long
as `obsbundle.rules` records none: the dashboards are then checked against the naming contract."""

from __future__ import annotations

from collections.abc import Sequence

from obsbundle import naming
from obsbundle.model import System
from tests.support.fleet_series import OpenMetrics, Window, node_names, wave

WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "28d", "30d")


def write_recorded(out: OpenMetrics, systems: Sequence[System]) -> None:
    for system in systems:
        _system(out, system)


def _system(out: OpenMetrics, system: System) -> None:
    window: Window = out.window
    base = {naming.SYSTEM_LABEL: system.name}
    for pool in system.node_pools:
        pool_labels = {**base, naming.NODE_POOL_LABEL: pool.name}
        nodes = node_names(system, pool)
        for node in nodes:
            node_labels = {**pool_labels, "node": node}
            out.gauge(naming.NODE_POOL_MEMBERSHIP, node_labels, 1)
            out.gauge(naming.NODE_CPU_UTILISATION, node_labels, wave(node, 0.35, 0.2))
            out.gauge(naming.NODE_MEMORY_UTILISATION, node_labels, wave(node + "memory", 0.55, 0.15))
            out.gauge(naming.NODE_FILESYSTEM_USAGE, node_labels, 0.45)
        out.gauge(naming.POOL_CPU_UTILISATION, pool_labels, wave(pool.name, 0.35, 0.2))
        out.gauge(naming.POOL_MEMORY_UTILISATION, pool_labels, wave(pool.name + "m", 0.55, 0.15))
        out.gauge(naming.POOL_FILESYSTEM_USAGE, pool_labels, 0.45)
        out.gauge(naming.POOL_NETWORK_RECEIVE, pool_labels, wave(pool.name + "rx", 2e5, 1e5))
        out.gauge(naming.POOL_NETWORK_TRANSMIT, pool_labels, wave(pool.name + "tx", 1.5e5, 8e4))
        out.gauge(naming.POOL_NODES_READY, pool_labels, len(nodes))
        out.gauge(naming.POOL_NODES, pool_labels, len(nodes))
    for service in system.services:
        labels = {**base, naming.NAMESPACE_LABEL: service.namespace, naming.SERVICE_LABEL: service.name}
        if service.has_http_api and service.metrics is not None:
            out.gauge(naming.SERVICE_REQUESTS_RATE, labels, wave(service.name, 12, 4))
            out.gauge(naming.SERVICE_ERRORS_RATE, labels,
                      lambda t: 0.9 if window.in_incident(t) else 0.02)
            out.gauge(naming.SERVICE_ERROR_RATIO, labels,
                      lambda t: 0.08 if window.in_incident(t) else 0.002)
            for quantile, value in (("0.5", 0.1), ("0.95", 0.45), ("0.99", 0.7)):
                out.gauge(naming.SERVICE_LATENCY_QUANTILE, {**labels, "quantile": quantile}, value)
            for bound in (*service.metrics.buckets, "+Inf"):
                out.gauge(naming.SERVICE_DURATION_BUCKETS_RATE, {**labels, "le": str(bound)}, 10)
        for slo in service.slos:
            slo_labels = {**labels, naming.SLO_LABEL: slo.name}
            out.gauge(naming.SLO_OBJECTIVE, slo_labels, float(slo.objective) / 100)
            out.gauge(naming.SLO_ERROR_BUDGET_REMAINING, slo_labels,
                      lambda t: 0.8 - 0.3 * t / window.duration)
            out.gauge(naming.SLO_TOTAL_EVENTS, slo_labels, 3000)
            out.gauge(naming.SLO_GOOD_EVENTS, slo_labels, 2990)
            for name in WINDOWS:
                out.gauge(naming.slo_error_ratio(name), slo_labels, 0.002)
                out.gauge(naming.slo_burn_rate(name), slo_labels, wave(slo.name + name, 1, 0.8))
