"""Synthetic series for a fleet: what Prometheus would have scraped from each system's cluster.

For every system of an inventory this writes, in OpenMetrics text for
`promtool tsdb create-blocks-from openmetrics`, the raw series the dashboards and rules read:
node-exporter and kube-state-metrics per node of each pool, kube-state-metrics and cAdvisor per
pod, request counters and latency histograms per API pod in the shape of its instrumentation,
the pool & queue exporter (`poolq_*`), kafka_exporter, ArgoCD and ALERTS.

Values are smooth deterministic waves (no randomness, so previews and failures reproduce). The
traffic is one of two (`Traffic`): the tests' INCIDENT, where between 40 % and 55 % of the window
the first API answers 8 % of its requests with 5xx and three times slower, so burn rates, error
panels and budgets move; or HEALTHY, the previews' default, where every service stays well inside
its SLOs (errors at a tenth of its tightest error budget, latency a tenth of its tightest
threshold) and only Watchdog fires, as a good day looks on the dashboards.
The series carry no `cluster` label, as in a Prometheus per cluster where it is an external label.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from obsbundle.dashboards.queries import ENDPOINT_METRICS, EndpointMetrics
from obsbundle.labels import exporter_service_name
from obsbundle.model import (
    Broker,
    ControlPlane,
    Datastore,
    DatastoreKind,
    Instrumentation,
    NodePool,
    Service,
    SliKind,
    System,
    WorkloadKind,
)
from obsbundle.monitors.argo_rollouts import METRICS_PORT, METRICS_SERVICE, is_rollout
from obsbundle.monitors.probes import probe
from obsbundle.monitors.workloads import EXPORTED_KINDS
from obsbundle.rules.cases.node_pool import node_host
from obsbundle.settings import Settings
from obsbundle.stacks import Exporter, exporter_target_labels, probe_target_labels
from obsbundle.tools import promtool
from obsbundle.tools.prometheus import PrometheusServer, start_prometheus

END = 1_717_416_000
"""2024-06-03T12:00:00Z: a multiple of two hours, so the backfilled blocks align with Prometheus's."""
DURATION = 3 * 3600
STEP = 60
"""One sample a minute, as if scraped every minute: Grafana's $__rate_interval is then 4m."""

Signal = Callable[[float], float]
"""A value as a function of seconds since the start of the window."""


@dataclass(frozen=True)
class Window:
    """The time range the series cover, sampled every `step` seconds."""

    end: int = END
    duration: int = DURATION
    step: int = STEP

    @property
    def start(self) -> int:
        return self.end - self.duration

    @property
    def offsets(self) -> range:
        return range(0, self.duration + 1, self.step)

    def in_incident(self, offset: float) -> bool:
        return 0.40 * self.duration <= offset < 0.55 * self.duration


def _phase(key: str) -> float:
    return (zlib.crc32(key.encode()) % 1000) / 1000 * 2 * math.pi


def wave(key: str, base: float, amplitude: float, period: float = 5400) -> Signal:
    """`base` ± `amplitude`, a sine whose phase depends on `key` so that series differ."""
    phase = _phase(key)
    return lambda t: base + amplitude * math.sin(2 * math.pi * t / period + phase)


def constant(value: float) -> Signal:
    return lambda _t: value


def times(signal: Signal, other: Signal | float) -> Signal:
    """The product of two signals (or of a signal and a number)."""
    factor = other if callable(other) else constant(other)
    return lambda t: signal(t) * factor(t)


def ramp(first: float, last: float, duration: float) -> Signal:
    """From `first` at the start of the window to `last` at its end."""
    return lambda t: first + (last - first) * t / duration


def pulses(every: float, step: float) -> Signal:
    """A rate that adds one event every `every` seconds to a counter sampled every `step`."""
    return lambda t: 1 / step if t % every < step else 0.0


def within(bound: float, mean_latency: Signal) -> Signal:
    """Share of exponentially distributed durations with this mean that are at most `bound`."""
    return lambda t: 1 - math.exp(-bound / mean_latency(t))


def _short_hash(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


class OpenMetrics:
    """Collects samples series by series (each series' samples in time order) and writes them."""

    def __init__(self, window: Window) -> None:
        self.window = window
        self.lines: list[str] = []
        self.series = 0

    def gauge(self, name: str, labels: Mapping[str, str], value: Signal | float) -> None:
        signal = value if callable(value) else constant(value)
        self._write(name, labels, (signal(t) for t in self.window.offsets))

    def counter(self, name: str, labels: Mapping[str, str], rate: Signal | float, start: float = 0.0) -> None:
        """A counter that grows by `rate` per second (integrated step by step from `start`)."""
        signal = rate if callable(rate) else constant(rate)
        step = self.window.step

        def totals() -> Iterator[float]:
            total = start
            for t in self.window.offsets:
                total += max(signal(t), 0.0) * step
                yield total

        self._write(name, labels, totals())

    def gauge_while(self, name: str, labels: Mapping[str, str], value: float, active: Callable[[float], bool]) -> None:
        """A gauge that exists only while `active`, as kube-state-metrics' waiting reasons do."""
        rendered = ",".join(f"{key}={json.dumps(label, ensure_ascii=False)}" for key, label in labels.items())
        start = self.window.start
        self.lines.extend(f"{name}{{{rendered}}} {value:.12g} {start + t}" for t in self.window.offsets if active(t))
        self.series += 1

    def _write(self, name: str, labels: Mapping[str, str], values: Iterator[float]) -> None:
        rendered = ",".join(f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in labels.items())
        prefix = f"{name}{{{rendered}}} "
        start = self.window.start
        self.lines.extend(
            f"{prefix}{value:.12g} {start + t}" for t, value in zip(self.window.offsets, values, strict=True)
        )
        self.series += 1

    def text(self) -> str:
        return "\n".join(self.lines) + "\n# EOF\n"


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    node: str
    workload: str


def node_names(system: System, pool: NodePool) -> list[str]:
    return [f"{system.name}-{pool.name}-{index}" for index in range(max(pool.min_nodes, 1))]


def _nodes_of(system: System, pool_name: str | None) -> list[str]:
    pools = [system.node_pool(pool_name)] if pool_name else list(system.node_pools)
    return [node for pool in pools for node in node_names(system, pool)]


def replicas(service: Service) -> int:
    if service.autoscaling is not None:
        return service.autoscaling.min
    return service.replicas or 1


def service_pods(system: System, service: Service) -> list[Pod]:
    """Pods named the way their controller names them, spread over the service's pool."""
    nodes = _nodes_of(system, service.node_pool)
    if service.kind is WorkloadKind.JOB:
        names = [f"{service.name}-{_short_hash(service.name, 5)}"]
    elif service.kind is WorkloadKind.CRONJOB:
        names = [f"{job_name(system, service)}-{_short_hash(service.name, 5)}"]
    else:
        replica_set = _short_hash(service.name, 10)
        names = [
            f"{service.name}-{replica_set}-{_short_hash(f'{service.name}{index}', 5)}"
            for index in range(replicas(service))
        ]
    return [Pod(name, service.namespace, nodes[index % len(nodes)], service.name) for index, name in enumerate(names)]


def job_name(system: System, service: Service) -> str:
    """A CronJob's Job is named `<cronjob>-<scheduled minute since the epoch>`."""
    return f"{service.name}-{(Window().end - 10 * 3600) // 60}"


def _cpu_millicores(value: str | None) -> float | None:
    if value is None:
        return None
    return float(value[:-1]) / 1000 if value.endswith("m") else float(value)


_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def _bytes(value: str | None) -> float | None:
    if value is None:
        return None
    for suffix, factor in _BINARY.items():
        if value.endswith(suffix) and value[: -len(suffix)].replace(".", "").isdigit():
            return float(value[: -len(suffix)]) * factor
    return float(value)


class Traffic(StrEnum):
    """What the synthetic services do over the window."""

    INCIDENT = "incident"
    """One API of each system fails and slows down for a while: alerts and budgets move (the tests)."""
    HEALTHY = "healthy"
    """Every service well inside its SLOs, no incident (the previews)."""


HEALTHY_SHARE_OF_BUDGET = 0.1
"""Healthy services fail this share of their tightest error budget, and answer within this share
of their tightest latency threshold on average."""


def healthy_error_share(service: Service) -> float:
    """Share of requests failing on a good day: a tenth of the tightest availability budget."""
    budgets = [float(slo.error_budget) for slo in service.slos if slo.kind is SliKind.AVAILABILITY]
    return HEALTHY_SHARE_OF_BUDGET * min(budgets, default=0.005)


def healthy_mean_latency(service: Service) -> float:
    """Mean latency on a good day: a tenth of the tightest latency threshold (0.15 s without one),
    so that exponentially distributed durations stay within it for all but e^-10 of requests."""
    thresholds = [float(slo.threshold_seconds) for slo in service.slos if slo.threshold_seconds is not None]
    return min((HEALTHY_SHARE_OF_BUDGET * bound for bound in thresholds), default=0.15)


class FleetSeries:
    """The synthetic series of one or more systems over a window."""

    def __init__(
        self, systems: Sequence[System], window: Window | None = None, traffic: Traffic = Traffic.INCIDENT
    ) -> None:
        self.window = window or Window()
        self.traffic = traffic
        self.out = OpenMetrics(self.window)
        for system in systems:
            self._system(system)

    def text(self) -> str:
        return self.out.text()

    def write(self, path: Path) -> Path:
        path.write_text(self.text())
        return path

    # --- per system ------------------------------------------------------------------------------

    def _system(self, system: System) -> None:
        for pool in system.node_pools:
            for node in node_names(system, pool):
                self._node(system, pool, node)
        for service in system.services:
            pods = service_pods(system, service)
            for pod in pods:
                self._pod(system, service, pod)
            self._workload(system, service, pods)
        for store in system.datastores:
            self._datastore_pod(system, store)
        self._volumes(system)
        self._exporter(system)
        self._kafka(system)
        self._brokers(system)
        self._argocd(system)
        self._control_plane(system)
        self._cert_manager(system)
        self._probes(system)
        self._scrape_targets(system)
        self._datastore_exporters(system)
        self._alerts(system)

    def _node(self, system: System, pool: NodePool, node: str) -> None:
        out = self.out
        ksm = {"job": "kube-state-metrics", "node": node}
        # node-exporter's series as the system's stack labels them; the rules and panels reach the
        # node through the pod's kube_pod_info, never through `instance`.
        exporter = exporter_target_labels(system.monitoring.stack, Exporter.NODE_EXPORTER, node_host(node))
        cpus = int(pool.vcpu or 2)
        memory = float(pool.memory_gib or 4) * 2**30
        disk = float(pool.disk_gib or 50) * 2**30
        busy = wave(node, 0.35, 0.2)
        out.gauge("kube_node_info", {**ksm, "kernel_version": "6.1.0", "kubelet_version": "v1.28.4"}, 1)
        out.gauge("kube_node_labels", {**ksm, system.node_pool_label_name: pool.name}, 1)
        for status, ready in (("true", 1), ("false", 0), ("unknown", 0)):
            out.gauge("kube_node_status_condition", {**ksm, "condition": "Ready", "status": status}, ready)
        capacities: tuple[tuple[str, str, float], ...] = (
            ("cpu", "core", cpus),
            ("memory", "byte", memory),
            ("pods", "integer", 110),
        )
        for resource, unit, value in capacities:
            out.gauge("kube_node_status_allocatable", {**ksm, "resource": resource, "unit": unit}, value)
            out.gauge("kube_node_status_capacity", {**ksm, "resource": resource, "unit": unit}, value)
        out.gauge("up", exporter, 1)
        for cpu in range(cpus):
            for mode, share in (("user", 0.7), ("system", 0.25), ("iowait", 0.05)):
                out.counter(
                    "node_cpu_seconds_total", {**exporter, "cpu": str(cpu), "mode": mode}, times(busy, share), start=1e5
                )
            out.counter(
                "node_cpu_seconds_total",
                {**exporter, "cpu": str(cpu), "mode": "idle"},
                lambda t: 1 - busy(t),
                start=1e6,
            )
        used = wave(node + "memory", 0.55, 0.15)
        out.gauge("node_memory_MemTotal_bytes", exporter, memory)
        out.gauge("node_memory_MemAvailable_bytes", exporter, lambda t: memory * (1 - used(t)))
        out.gauge("node_memory_MemFree_bytes", exporter, lambda t: memory * (1 - used(t)) * 0.4)
        out.gauge("node_memory_Buffers_bytes", exporter, memory * 0.02)
        out.gauge("node_memory_Cached_bytes", exporter, lambda t: memory * (1 - used(t)) * 0.5)
        root = {**exporter, "device": "/dev/nvme0n1p1", "fstype": "ext4", "mountpoint": "/"}
        out.gauge("node_filesystem_size_bytes", root, disk)
        out.gauge("node_filesystem_avail_bytes", root, lambda t: disk * (0.6 - 0.1 * t / self.window.duration))
        out.gauge("node_filesystem_free_bytes", root, lambda t: disk * (0.62 - 0.1 * t / self.window.duration))
        out.gauge("node_filesystem_readonly", root, 0)
        out.gauge("node_filesystem_files", root, 1_966_080)
        out.gauge("node_filesystem_files_free", root, lambda t: 1_966_080 * (0.9 - 0.02 * t / self.window.duration))
        # A clock within a millisecond of its NTP reference and synchronised (node-exporter's timex collector).
        out.gauge("node_timex_offset_seconds", exporter, wave(node + "clock", 0.0, 0.0008))
        out.gauge("node_timex_sync_status", exporter, 1)
        out.gauge("node_timex_maxerror_seconds", exporter, 0.05)
        for condition in ("MemoryPressure", "DiskPressure", "PIDPressure"):
            for status, value in (("true", 0), ("false", 1), ("unknown", 0)):
                out.gauge("kube_node_status_condition", {**ksm, "condition": condition, "status": status}, value)
        out.gauge("node_load1", exporter, lambda t: cpus * busy(t) * 1.2)
        for device in ("eth0", "lo"):
            labels = {**exporter, "device": device}
            out.counter("node_network_receive_bytes_total", labels, wave(node + device, 2e5, 1e5), start=1e9)
            out.counter("node_network_transmit_bytes_total", labels, wave(node + device + "tx", 1.5e5, 8e4), start=1e9)
            out.counter("node_network_receive_errs_total", labels, 0.0)
            out.counter("node_network_transmit_errs_total", labels, 0.0)
            out.counter("node_network_receive_drop_total", labels, 0.0)
            out.counter("node_network_transmit_drop_total", labels, 0.0)
        disk_labels = {**exporter, "device": "nvme0n1"}
        out.counter("node_disk_io_time_seconds_total", disk_labels, wave(node + "io", 0.1, 0.05), start=1e4)
        out.counter("node_disk_read_bytes_total", disk_labels, wave(node + "rd", 5e5, 2e5), start=1e9)
        out.counter("node_disk_written_bytes_total", disk_labels, wave(node + "wr", 8e5, 3e5), start=1e9)
        # Every node runs node-exporter, whose requests put every pool in the requests panels.
        self._pod_series(
            Pod(exporter["pod"], exporter["namespace"], node, "node-exporter"),
            cpu_request=0.1,
            memory_request=180 * 2**20,
            cpu_limit=0.25,
            memory_limit=180 * 2**20,
            phase="Running",
        )

    def _pod_series(
        self,
        pod: Pod,
        *,
        cpu_request: float | None,
        memory_request: float | None,
        cpu_limit: float | None,
        memory_limit: float | None,
        phase: str,
        restarts: Signal | float = 0.0,
    ) -> None:
        out = self.out
        ksm = {"job": "kube-state-metrics", "namespace": pod.namespace, "pod": pod.name}
        container = {**ksm, "container": pod.workload, "node": pod.node}
        out.gauge("kube_pod_info", {**ksm, "node": pod.node, "created_by_name": pod.workload}, 1)
        for candidate in ("Pending", "Running", "Succeeded", "Failed", "Unknown"):
            out.gauge("kube_pod_status_phase", {**ksm, "phase": candidate}, 1 if candidate == phase else 0)
        out.counter("kube_pod_container_status_restarts_total", {**ksm, "container": pod.workload}, restarts)
        for kind, resource, unit, value in (
            ("requests", "cpu", "core", cpu_request),
            ("requests", "memory", "byte", memory_request),
            ("limits", "cpu", "core", cpu_limit),
            ("limits", "memory", "byte", memory_limit),
        ):
            if value is not None:
                out.gauge(
                    f"kube_pod_container_resource_{kind}", {**container, "resource": resource, "unit": unit}, value
                )
        if phase != "Running":
            return
        cadvisor = {
            "job": "kubelet",
            "metrics_path": "/metrics/cadvisor",
            "instance": pod.node,
            "namespace": pod.namespace,
            "pod": pod.name,
            "container": pod.workload,
        }
        cpu_ceiling = cpu_limit or 0.5
        memory_ceiling = memory_limit or 256 * 2**20
        out.counter(
            "container_cpu_usage_seconds_total",
            cadvisor,
            wave(pod.name, 0.4 * cpu_ceiling, 0.25 * cpu_ceiling),
            start=100,
        )
        out.gauge(
            "container_memory_working_set_bytes",
            cadvisor,
            wave(pod.name + "mem", 0.6 * memory_ceiling, 0.2 * memory_ceiling),
        )

    def _container_states(self, pod: Pod, first: bool, cpu_limit: float | None) -> None:
        """CFS throttling of a container with a CPU limit (cAdvisor has it for no other), and for the
        first pod of each service: its incident restarts were OOM kills, and at the rollout two
        thirds into the window its container waited four minutes in ContainerCreating."""
        if cpu_limit is not None:
            cadvisor = {
                "job": "kubelet", "metrics_path": "/metrics/cadvisor", "instance": pod.node,
                "namespace": pod.namespace, "pod": pod.name, "container": pod.workload,
            }
            # 10 CFS periods a second (100 ms each), a few to a third of them throttled.
            self.out.counter("container_cpu_cfs_periods_total", cadvisor, 10)
            # Healthy: throttled in a twentieth of the periods, under the alert's quarter; else up to a third.
            throttled = 0.5 if self.traffic is Traffic.HEALTHY else wave(pod.name + "cfs", 1.8, 1.5)
            self.out.counter("container_cpu_cfs_throttled_periods_total", cadvisor, throttled)
        if not first:
            return
        container = {"job": "kube-state-metrics", "namespace": pod.namespace, "pod": pod.name,
                     "container": pod.workload}
        self.out.gauge("kube_pod_container_status_last_terminated_reason", {**container, "reason": "OOMKilled"}, 1)
        rollout = 2 * self.window.duration / 3
        self.out.gauge_while(
            "kube_pod_container_status_waiting_reason", {**container, "reason": "ContainerCreating"}, 1,
            lambda t: rollout <= t < rollout + 240,
        )

    def _pod(self, system: System, service: Service, pod: Pod) -> None:
        requests = service.resources.requests if service.resources else None
        limits = service.resources.limits if service.resources else None
        finished = service.kind in (WorkloadKind.JOB, WorkloadKind.CRONJOB)
        first = service_pods(system, service)[0].name == pod.name
        self._pod_series(
            pod,
            cpu_request=_cpu_millicores(requests.cpu if requests else None),
            memory_request=_bytes(requests.memory if requests else None),
            cpu_limit=_cpu_millicores(limits.cpu if limits else None),
            memory_limit=_bytes(limits.memory if limits else None),
            phase="Succeeded" if finished else "Running",
            # One pod of each service restarted twice during the incident.
            restarts=(lambda t: 2 / 600 if self.traffic is Traffic.INCIDENT and self.window.in_incident(t)
                      and t < 0.42 * self.window.duration else 0)
            if first else 0.0,
        )
        if not finished:
            self._container_states(pod, first, _cpu_millicores(limits.cpu if limits else None))
        if service.metrics is None or finished:
            return
        target = {
            "job": f"{service.namespace}/{service.name}",
            "namespace": service.namespace,
            "service": service.name,
            "pod": pod.name,
            "instance": f"{pod.name}:8000",
        }
        self.out.gauge("up", target, 1)
        metrics = ENDPOINT_METRICS.get(service.metrics.instrumentation)
        if service.has_http_api and metrics is not None:
            self._requests(system, service, pod, target, metrics)

    def _requests(
        self, system: System, service: Service, pod: Pod, target: dict[str, str], metrics: EndpointMetrics
    ) -> None:
        """Request counters and latency histograms in the shape of the service's instrumentation."""
        instrumentation = service.metrics.instrumentation if service.metrics else Instrumentation.CUSTOM
        incident_service = next(s for s in system.services if s.has_http_api and s.metrics is not None)
        window = self.window
        if self.traffic is Traffic.HEALTHY:
            healthy_errors, healthy_latency = healthy_error_share(service), healthy_mean_latency(service)

            def error_share(t: float) -> float:
                return healthy_errors

            def mean_latency(t: float) -> float:
                return healthy_latency
        else:
            hit = service.name == incident_service.name

            def error_share(t: float) -> float:
                return 0.08 if hit and window.in_incident(t) else 0.002

            def mean_latency(t: float) -> float:
                return 0.45 if hit and window.in_incident(t) else 0.15

        statuses = _STATUSES[instrumentation]
        buckets = service.metrics.buckets if service.metrics else ()
        extra = _UNARY.get(instrumentation, {})
        timer = instrumentation in (Instrumentation.MICROMETER, Instrumentation.GRPC_SPRING)
        for method, route in _routes(service, instrumentation):
            rate = wave(f"{pod.name}{method}{route}", 2.0, 0.8)
            base = {**target, **extra, metrics.method_label: method, metrics.route_label: route}
            shares: list[tuple[str, Signal]] = [
                (statuses[0], lambda t: 1 - 0.05 - error_share(t)),
                (statuses[1], lambda _t: 0.05),
                (statuses[2], error_share),
            ]
            for status, share in shares:
                labels = {**base, metrics.status_label: status}
                if timer:
                    # Micrometer's timer is one histogram per status (and HTTP outcome); its _count counts requests.
                    if instrumentation is Instrumentation.MICROMETER:
                        labels |= {"outcome": _OUTCOMES[status], "exception": "None"}
                    self._histogram(metrics, labels, buckets, times(rate, share), mean_latency)
                else:
                    self.out.counter(metrics.requests, labels, times(rate, share))
            if not timer:
                self._histogram(metrics, base, buckets, rate, mean_latency)

    def _histogram(
        self,
        metrics: EndpointMetrics,
        labels: Mapping[str, str],
        buckets: Sequence[float],
        rate: Signal,
        mean_latency: Signal,
    ) -> None:
        """Buckets, sum and count of exponentially distributed durations arriving at `rate`."""
        for bound in (*buckets, math.inf):
            le = "+Inf" if bound == math.inf else repr(float(bound))
            self.out.counter(metrics.buckets, {**labels, "le": le}, times(rate, within(bound, mean_latency)))
        stem = metrics.buckets.removesuffix("_bucket")
        self.out.counter(f"{stem}_sum", labels, times(rate, mean_latency))
        self.out.counter(f"{stem}_count", labels, rate)

    def _workload(self, system: System, service: Service, pods: Sequence[Pod]) -> None:
        out = self.out
        namespace = {"job": "kube-state-metrics", "namespace": service.namespace}
        if is_rollout(service):
            # A Rollout has no kube_deployment_*: the Argo Rollouts controller reports it, under the
            # generated ServiceMonitor's target labels with the Rollout's own namespace.
            rollout = {
                "job": METRICS_SERVICE, "service": METRICS_SERVICE, "endpoint": METRICS_PORT,
                "namespace": service.namespace, "name": service.name,
            }
            out.gauge("rollout_info", {**rollout, "phase": "Completed", "strategy": "canary", "traffic_router": ""}, 1)
            out.gauge("rollout_info_replicas_desired", rollout, len(pods))
            out.gauge("rollout_info_replicas_available", rollout, len(pods))
        elif service.kind in (WorkloadKind.API, WorkloadKind.WORKER):
            deployment = {**namespace, "deployment": service.name}
            out.gauge("kube_deployment_spec_replicas", deployment, len(pods))
            out.gauge("kube_deployment_status_replicas_available", deployment, len(pods))
            out.gauge("kube_deployment_status_replicas", deployment, len(pods))
            # A rollout two thirds into the window: the generation moves on.
            out.gauge(
                "kube_deployment_metadata_generation",
                deployment,
                lambda t: 7 if t >= 2 * self.window.duration / 3 else 6,
            )
            out.gauge(
                "kube_deployment_status_observed_generation",
                deployment,
                lambda t: 7 if t >= 2 * self.window.duration / 3 else 6,
            )
        if service.autoscaling is not None:
            hpa = {**namespace, "horizontalpodautoscaler": service.autoscaling.hpa_name or service.name}
            out.gauge("kube_horizontalpodautoscaler_spec_min_replicas", hpa, service.autoscaling.min)
            out.gauge("kube_horizontalpodautoscaler_spec_max_replicas", hpa, service.autoscaling.max)
            out.gauge("kube_horizontalpodautoscaler_status_current_replicas", hpa, len(pods))
            out.gauge("kube_horizontalpodautoscaler_status_desired_replicas", hpa, len(pods))
        if service.kind is WorkloadKind.JOB:
            job = {**namespace, "job_name": service.name}
            out.gauge("kube_job_status_succeeded", job, 1)
            out.gauge("kube_job_status_failed", job, 0)
            out.gauge("kube_job_status_active", job, 0)
        if service.kind is WorkloadKind.CRONJOB:
            job = {**namespace, "job_name": job_name(system, service)}
            out.gauge("kube_job_status_succeeded", job, 1)
            out.gauge("kube_job_status_failed", job, 0)
            out.gauge("kube_job_status_active", job, 0)
            cronjob = {**namespace, "cronjob": service.name}
            last = self.window.end - 10 * 3600
            out.gauge("kube_cronjob_status_last_successful_time", cronjob, last)
            out.gauge("kube_cronjob_status_last_schedule_time", cronjob, last)
            out.gauge("kube_cronjob_next_schedule_time", cronjob, last + 86400)

    def _datastore_pod(self, system: System, store: Datastore) -> None:
        if store.kind is DatastoreKind.SQLITE:
            return
        node = _nodes_of(system, store.node_pool)[0]
        self._pod_series(
            Pod(f"{store.name}-0", store.namespace, node, store.name),
            cpu_request=0.25,
            memory_request=512 * 2**20,
            cpu_limit=None,
            memory_limit=None,
            phase="Running",
        )

    def _volumes(self, system: System) -> None:
        claims = {(service.namespace, claim) for service in system.services for claim in service.volumes}
        claims |= {(store.namespace, store.volume) for store in system.datastores if store.volume}
        claims |= {(platform.namespace, claim) for platform in system.platform.workloads for claim in platform.volumes}
        for namespace, claim in sorted(claims):
            labels = {
                "job": "kubelet",
                "metrics_path": "/metrics",
                "namespace": namespace,
                "persistentvolumeclaim": claim,
            }
            capacity = 100.0 * 2**30
            self.out.gauge("kubelet_volume_stats_capacity_bytes", labels, capacity)
            self.out.gauge(
                "kubelet_volume_stats_used_bytes", labels, times(ramp(0.40, 0.45, self.window.duration), capacity)
            )
            self.out.gauge(
                "kubelet_volume_stats_available_bytes", labels, times(ramp(0.60, 0.55, self.window.duration), capacity)
            )
            inodes = 6_553_600.0
            used, free = ramp(0.10, 0.11, self.window.duration), ramp(0.90, 0.89, self.window.duration)
            self.out.gauge("kubelet_volume_stats_inodes", labels, inodes)
            self.out.gauge("kubelet_volume_stats_inodes_used", labels, times(used, inodes))
            self.out.gauge("kubelet_volume_stats_inodes_free", labels, times(free, inodes))

    def _exporter(self, system: System) -> None:
        exported = [store for store in system.datastores if store.kind in EXPORTED_KINDS]
        if not exported:
            return
        name = exporter_service_name(system)
        target = {
            "job": name,
            "namespace": system.monitoring.namespace,
            "service": name,
            "system": system.name,
            "pod": f"{name}-{_short_hash(name, 10)}-{_short_hash(name, 5)}",
            "instance": f"{name}:9187",
        }
        out = self.out
        out.gauge("up", target, 1)
        for store in exported:
            source = {**target, "source": store.source}
            out.gauge("poolq_up", {**source, "kind": store.kind.value}, 1)
            out.gauge("poolq_scrape_duration_seconds", source, wave(store.source, 0.05, 0.02))
            if store.kind is DatastoreKind.POSTGRES:
                self._postgres(store, source)
            if store.kind is DatastoreKind.REDIS:
                out.counter("poolq_redis_keyspace_hits_total", source, wave(store.source, 400, 100), start=1e6)
                out.counter("poolq_redis_keyspace_misses_total", source, wave(store.source + "m", 90, 30), start=2e5)
            if store.pgbouncer_source:
                bouncer = {**target, "source": store.pgbouncer_source}
                out.gauge("poolq_up", {**bouncer, "kind": "pgbouncer"}, 1)
                self._pgbouncer(bouncer)
        for queue in system.queues:
            if queue.broker is Broker.KAFKA:
                continue
            labels = {**target, "source": system.datastore(queue.datastore).source, "broker": queue.broker.value,
                      "queue": queue.name}
            # A healthy queue holds a small, steady backlog; the incident's waves up to half its limit.
            backlog = (constant(queue.max_backlog * 0.02) if self.traffic is Traffic.HEALTHY
                       else wave(queue.name, queue.max_backlog * 0.3, queue.max_backlog * 0.2))
            out.gauge("poolq_queue_messages_ready", labels, backlog)
            out.gauge("poolq_queue_messages_unacked", labels, wave(queue.name + "u", 8, 4))
            out.gauge("poolq_queue_consumers", labels, max(len(queue.consumers), 1))
            out.gauge("poolq_queue_oldest_message_age_seconds", labels, wave(queue.name + "age", 60, 40))

    def _postgres(self, store: Datastore, source: dict[str, str]) -> None:
        out = self.out
        database = {**source, "datname": store.name.replace("-", "_")}
        out.gauge("poolq_pg_max_connections", source, 100)
        out.gauge("poolq_pg_reserved_connections", source, 3)
        for state, level in (("active", 12.0), ("idle", 25.0), ("idle in transaction", 2.0)):
            out.gauge("poolq_pg_connections", {**database, "usename": "app", "state": state},
                      wave(store.name + state, level, level / 3))
        waiting = 0 if self.traffic is Traffic.HEALTHY else wave(store.name + "wait", 0.6, 0.6)
        out.gauge("poolq_pg_waiting_connections", database, waiting)
        out.gauge("poolq_pg_oldest_transaction_seconds", database, wave(store.name + "tx", 20, 15))
        out.gauge("poolq_pg_longest_query_seconds", database, wave(store.name + "q", 2, 1.5))
        out.counter("poolq_pg_blocks_hit_total", database, wave(store.name + "hit", 5000, 1000), start=1e8)
        out.counter("poolq_pg_blocks_read_total", database, wave(store.name + "read", 40, 20), start=1e6)
        out.counter("poolq_pg_statements_calls_total", database, wave(store.name + "calls", 300, 80), start=1e7)
        out.counter("poolq_pg_statements_seconds_total", database, wave(store.name + "sec", 1.2, 0.4), start=1e5)

    def _pgbouncer(self, source: dict[str, str]) -> None:
        out = self.out
        pool = {**source, "database": "app", "user": "app"}
        out.gauge("poolq_pgbouncer_client_active", pool, wave(source["source"], 20, 5))
        out.gauge("poolq_pgbouncer_client_waiting", pool, wave(source["source"] + "w", 1, 1))
        out.gauge("poolq_pgbouncer_server_active", pool, wave(source["source"] + "a", 12, 4))
        out.gauge("poolq_pgbouncer_server_idle", pool, wave(source["source"] + "i", 6, 2))
        out.gauge("poolq_pgbouncer_client_maxwait_seconds", pool, wave(source["source"] + "m", 0.2, 0.2))
        out.gauge("poolq_pgbouncer_pool_size", {**source, "database": "app"}, 20)

    def _kafka(self, system: System) -> None:
        for queue in system.queues:
            if queue.broker is not Broker.KAFKA:
                continue
            exporter = {"job": "kafka-exporter", "namespace": system.datastore(queue.datastore).namespace}
            for partition in ("0", "1", "2"):
                topic = {**exporter, "topic": queue.name, "partition": partition}
                group = {**topic, "consumergroup": queue.consumer_group or ""}
                self.out.counter(
                    "kafka_topic_partition_current_offset", topic, wave(queue.name + partition, 20, 5), start=1e6
                )
                self.out.counter(
                    "kafka_consumergroup_current_offset",
                    group,
                    wave(queue.name + partition + "c", 20, 5),
                    start=1e6 - 300,
                )
                self.out.gauge("kafka_consumergroup_lag", group, wave(queue.name + partition + "lag", 300, 200))

    def _brokers(self, system: System) -> None:
        """rabbitmq_prometheus per RabbitMQ node and kafka_exporter per Kafka, for the datastores whose
        exporter is scraped, with the target labels of their generated monitors (`service` = the
        datastore's name) and the label sets of tests/fixtures/exposition/{rabbitmq,kafka-exporter}."""
        out = self.out
        for store in system.datastores:
            if store.metrics is None or store.kind not in (DatastoreKind.RABBITMQ, DatastoreKind.KAFKA):
                continue
            target = {"job": store.name, "namespace": store.namespace, "service": store.name,
                      "endpoint": str(store.metrics.port)}
            if store.kind is DatastoreKind.KAFKA:
                exporter = {**target, "pod": f"{store.name}-metrics-0"}
                out.gauge("up", exporter, 1)
                out.gauge("kafka_brokers", exporter, store.replicas)
                for partition in range(3):
                    labels = {**exporter, "topic": "__consumer_offsets", "partition": str(partition)}
                    out.gauge("kafka_topic_partition_replicas", labels, min(store.replicas, 3))
                    out.gauge("kafka_topic_partition_leader", labels, partition % store.replicas)
                    out.gauge("kafka_topic_partition_under_replicated_partition", labels, 0)
                continue
            for ordinal in range(store.replicas):
                node = {**target, "pod": f"{store.statefulset or store.name}-{ordinal}"}
                key = node["pod"]
                out.gauge("up", node, 1)
                for alarm in ("memory_used_watermark", "free_disk_space_watermark", "file_descriptor_limit"):
                    out.gauge(f"rabbitmq_alarms_{alarm}", node, 0)
                out.gauge("rabbitmq_process_resident_memory_bytes", node, wave(key + "mem", 160e6, 40e6))
                out.gauge("rabbitmq_resident_memory_limit_bytes", node, 400e6)
                out.gauge("rabbitmq_disk_space_available_bytes", node, wave(key + "disk", 20e9, 1e9))
                out.gauge("rabbitmq_disk_space_available_limit_bytes", node, 50e6)
                out.gauge("rabbitmq_process_open_fds", node, wave(key + "fds", 60, 15))
                out.gauge("rabbitmq_process_max_fds", node, 1_048_576)
                out.gauge("rabbitmq_connections", node, wave(key + "conn", 6, 2))
                out.gauge("rabbitmq_channels", node, wave(key + "chan", 12, 4))
                amqp = {**node, "protocol": "amqp091"}
                dropped = 0 if self.traffic is Traffic.HEALTHY else pulses(2700, self.window.step)
                out.counter("rabbitmq_global_messages_unroutable_dropped_total", amqp, dropped)
                out.counter("rabbitmq_global_messages_unroutable_returned_total", amqp, 0)

    def _argocd(self, system: System) -> None:
        namespace = system.platform.argocd_namespace
        if namespace is None:
            return
        apps = sorted({service.name for service in system.services} | {"platform"})
        for index, app in enumerate(apps):
            labels = {"job": "argocd-application-controller-metrics", "namespace": namespace, "name": app,
                      "project": "default", "dest_namespace": "default"}
            out_of_sync = index == 1 and self.traffic is Traffic.INCIDENT
            self.out.gauge("argocd_app_info", {**labels, "sync_status": "OutOfSync" if out_of_sync else "Synced",
                                               "health_status": "Progressing" if out_of_sync else "Healthy"}, 1)
            for phase, every in (("Succeeded", 1800 + 300 * index), ("Failed", 7200)):
                self.out.counter("argocd_app_sync_total", {**labels, "phase": phase}, pulses(every, self.window.step))

    def _control_plane(self, system: System) -> None:
        """A self-managed control plane on one master, labelled as the stack scrapes it: the
        apiserver's requests (reads, writes, a few 5xx and terminations) with latency buckets and
        client certificates, etcd, the scheduler and the controller-manager (fixture label sets)."""
        if system.platform.control_plane is not ControlPlane.SELF_MANAGED:
            return
        out, stack, master = self.out, system.monitoring.stack, node_host(f"{system.name}-master")
        target = {exporter: exporter_target_labels(stack, exporter, master) for exporter in Exporter}
        for exporter in (Exporter.APISERVER, Exporter.ETCD, Exporter.KUBE_SCHEDULER, Exporter.KUBE_CONTROLLER_MANAGER):
            out.gauge("up", target[exporter], 1)
        api = {**target[Exporter.APISERVER], "component": "apiserver", "resource": "pods", "version": "v1"}
        for verb, scope, code, rate in (("GET", "resource", "200", 20.0), ("GET", "resource", "500", 0.02),
                                        ("LIST", "cluster", "200", 2.0), ("POST", "resource", "201", 5.0)):
            labels = {**api, "scope": scope, "verb": verb}
            out.counter("apiserver_request_total", {**labels, "code": code}, wave(f"api/{verb}/{code}", rate, rate / 4))
        for verb, scope, rate in (("GET", "resource", 20.0), ("LIST", "cluster", 2.0), ("POST", "resource", 5.0)):
            labels = {**api, "scope": scope, "verb": verb}
            out.counter("apiserver_request_sli_duration_seconds_count", labels, rate)
            # Healthy: a twentieth of the 1 % budget of requests slower than a second; otherwise the whole budget.
            within_second = 0.9995 if self.traffic is Traffic.HEALTHY else 0.99
            buckets = (("0.1", 0.7), ("1", within_second), ("5", 1.0), ("30", 1.0), ("60", 1.0), ("+Inf", 1.0))
            for le, share in buckets:
                out.counter("apiserver_request_sli_duration_seconds_bucket", {**labels, "le": le}, rate * share)
        out.counter("apiserver_request_terminations_total", {**api, "scope": "cluster", "verb": "LIST", "code": "429"},
                    pulses(1800, self.window.step))
        certs = target[Exporter.APISERVER]
        for le in ("604800", "2592000", "31104000", "+Inf"):
            out.counter("apiserver_client_certificate_expiration_seconds_bucket", {**certs, "le": le},
                        0 if le == "604800" else 1.0)
        out.counter("apiserver_client_certificate_expiration_seconds_count", certs, 1.0)
        etcd = target[Exporter.ETCD]
        out.gauge("etcd_server_has_leader", etcd, 1)
        out.counter("etcd_server_leader_changes_seen_total", etcd, 0, start=1)
        out.gauge("etcd_mvcc_db_total_size_in_bytes", etcd, wave("etcd/db", 60e6, 5e6))
        out.gauge("etcd_server_quota_backend_bytes", etcd, 2147483648)
        for metric in ("etcd_disk_wal_fsync_duration_seconds", "etcd_disk_backend_commit_duration_seconds"):
            for le, share in (("0.002", 0.6), ("0.008", 0.95), ("0.032", 1.0), ("+Inf", 1.0)):
                out.counter(f"{metric}_bucket", {**etcd, "le": le}, 50 * share)

    def _cert_manager(self, system: System) -> None:
        """Two Certificates cert-manager reports through the generated ServiceMonitor (the
        Certificate's own `namespace`): one ready, one not yet issued (expiration 0)."""
        namespace = system.platform.cert_manager_namespace
        if namespace is None:
            return
        for index, name in enumerate(("api-tls", "grafana-tls")):
            labels = {
                "job": "cert-manager",
                "namespace": min(service.namespace for service in system.services),
                "name": name,
                "issuer_name": "letsencrypt",
                "issuer_kind": "ClusterIssuer",
                "issuer_group": "cert-manager.io",
            }
            issued = index == 0 or self.traffic is Traffic.HEALTHY
            self.out.gauge("certmanager_certificate_expiration_timestamp_seconds", labels,
                           self.window.end + 40 * 86400 if issued else 0)
            for condition in ("True", "False", "Unknown"):
                ready = (condition == "True") == issued and condition != "Unknown"
                self.out.gauge("certmanager_certificate_ready_status", {**labels, "condition": condition}, int(ready))
        # The fleet shares one Prometheus: each system's controller is a target of its own.
        self.out.gauge("up", {"job": "cert-manager", "namespace": namespace, "instance": f"{system.name}:9402"}, 1)

    def _probes(self, system: System) -> None:
        """Each dependency's probe as blackbox_exporter answers it through the generated Probe: up,
        a wavering duration, and a certificate that ends a month or more after the window."""
        for index, dependency in enumerate(sorted(system.dependencies, key=lambda dependency: dependency.name)):
            labels = probe_target_labels(probe(system, dependency, Settings()))
            self.out.gauge("up", labels, 1)
            self.out.gauge("probe_success", labels, 1)
            self.out.gauge("probe_duration_seconds", labels, wave(f"probe/{dependency.name}", 0.3, 0.1))
            if dependency.url.startswith("https://"):
                self.out.gauge("probe_ssl_earliest_cert_expiry", labels, self.window.end + (30 + 15 * index) * 86400)

    def _datastore_exporters(self, system: System) -> None:
        """postgres_exporter and redis_exporter of each Postgres and Redis that names its `metrics`,
        with the target labels of their generated monitors and the series sets of
        tests/fixtures/exposition/{postgres-exporter,redis-exporter} (one pod per replica)."""
        for store in system.datastores:
            if store.metrics is None or store.kind not in (DatastoreKind.POSTGRES, DatastoreKind.REDIS):
                continue
            for ordinal in range(store.replicas):
                pod = f"{store.statefulset or store.name}-{ordinal}"
                target = {"job": f"{store.name}-metrics", "namespace": store.namespace, "service": store.name,
                          "endpoint": str(store.metrics.port), "pod": pod}
                key = f"{system.name}/{store.name}/{pod}"
                if store.kind is DatastoreKind.POSTGRES:
                    self._postgres_exporter(target, key, store.name.replace("-", "_"), replica=ordinal > 0)
                else:
                    self._redis_exporter(target, key, primary=ordinal == 0, replicas=store.replicas)

    def _postgres_exporter(self, target: dict[str, str], key: str, datname: str, *, replica: bool) -> None:
        out = self.out
        out.gauge("up", target, 1)
        database = {**target, "datname": datname}
        out.gauge("pg_up", target, 1)
        out.counter("pg_stat_database_xact_commit", database, wave(key + "commit", 120, 30), start=1e7)
        out.counter("pg_stat_database_xact_rollback", database, wave(key + "rollback", 0.6, 0.3), start=1e4)
        out.counter("pg_stat_database_deadlocks", database, 0, start=3)
        out.counter("pg_stat_database_blks_hit", database, wave(key + "hit", 9000, 1500), start=1e9)
        out.counter("pg_stat_database_blks_read", database, wave(key + "read", 40, 15), start=1e6)
        table = {**database, "schemaname": "public", "relname": "orders"}
        out.gauge("pg_stat_user_tables_n_dead_tup", table, wave(key + "dead", 800, 300))
        out.gauge("pg_stat_user_tables_n_live_tup", table, 250_000)
        out.gauge("pg_database_wraparound_age_datfrozenxid_seconds", database, wave(key + "xid", 2.1e8, 2e7))
        if replica:
            out.gauge("pg_replication_lag_seconds", target, wave(key + "lag", 0.4, 0.3))

    def _redis_exporter(self, target: dict[str, str], key: str, *, primary: bool, replicas: int) -> None:
        out = self.out
        out.gauge("up", target, 1)
        out.gauge("redis_up", target, 1)
        out.gauge("redis_instance_info", {**target, "role": "master" if primary else "slave",
                                          "redis_version": "7.0.15"}, 1)
        out.gauge("redis_memory_used_bytes", target, wave(key + "mem", 180e6, 30e6))
        out.gauge("redis_memory_max_bytes", target, 512e6)
        out.counter("redis_keyspace_hits_total", target, wave(key + "hits", 900, 200), start=1e7)
        out.counter("redis_keyspace_misses_total", target, wave(key + "misses", 120, 40), start=1e6)
        out.counter("redis_evicted_keys_total", target, 0)
        out.counter("redis_rejected_connections_total", target, 0)
        out.gauge("redis_connected_clients", target, wave(key + "clients", 24, 6))
        if primary:
            out.gauge("redis_connected_slaves", target, replicas - 1)
        else:
            out.gauge("redis_master_link_up", target, 1)

    def _scrape_targets(self, system: System) -> None:
        """`up` of the targets whose absence the rules watch, as the system's stack labels them:
        kube-state-metrics and the kubelet's two endpoints per node (the control plane's,
        cert-manager's and the datastores' exporters' are written with their series)."""
        stack = system.monitoring.stack
        nodes = [node for pool in system.node_pools for node in node_names(system, pool)] or ["node-0"]
        self.out.gauge("up", exporter_target_labels(stack, Exporter.KUBE_STATE_METRICS, node_host(nodes[0])), 1)
        for node in nodes:
            for exporter in (Exporter.KUBELET, Exporter.CADVISOR):
                self.out.gauge("up", exporter_target_labels(stack, exporter, node_host(node)), 1)

    def _alerts(self, system: System) -> None:
        base = {"alertstate": "firing", "system": system.name, "team": system.owner.team}
        self.out.gauge("ALERTS", {**base, "alertname": "Watchdog", "severity": "none"}, 1)
        incident = next((s for s in system.services if s.slos), None)
        if incident is not None and self.traffic is Traffic.INCIDENT:
            self.out.gauge("ALERTS", {**base, "alertname": "SloErrorBudgetBurn", "severity": "critical",
                                      "namespace": incident.namespace, "service": incident.name,
                                      "slo": incident.slos[0].name, "window": "1h-5m"}, 1)


def _routes(service: Service, instrumentation: Instrumentation) -> list[tuple[str, str]]:
    if instrumentation in (Instrumentation.GRPC, Instrumentation.GRPC_SPRING):
        return [("Ingest", "logpilot.LogService"), ("Query", "logpilot.LogService")]
    prefix = f"/api/v1/{service.name.removesuffix('-service')}"
    return [("GET", prefix), ("POST", prefix), ("GET", f"{prefix}/{{id}}")]


_STATUSES: dict[Instrumentation, tuple[str, str, str]] = {
    Instrumentation.PROMETHEUS_CLIENT: ("2xx", "4xx", "5xx"),
    Instrumentation.FASTAPI_INSTRUMENTATOR: ("2xx", "4xx", "5xx"),
    Instrumentation.MICROMETER: ("200", "404", "500"),
    Instrumentation.GRPC: ("OK", "NotFound", "Internal"),
    Instrumentation.GRPC_SPRING: ("OK", "NOT_FOUND", "INTERNAL"),
    Instrumentation.CUSTOM: ("ok", "client", "server"),
}
# The call-type label of unary calls, which the gRPC latency histograms are read by.
_UNARY: dict[Instrumentation, dict[str, str]] = {
    Instrumentation.GRPC: {"grpc_type": "unary"},
    Instrumentation.GRPC_SPRING: {"methodType": "UNARY"},
}
_OUTCOMES = {"200": "SUCCESS", "404": "CLIENT_ERROR", "500": "SERVER_ERROR"}


def start_fleet_prometheus(
    workdir: Path,
    systems: Sequence[System],
    window: Window | None = None,
    *,
    rule_groups: Iterable[Mapping[str, Any]] = (),
    traffic: Traffic = Traffic.INCIDENT,
) -> PrometheusServer:
    """A Prometheus over blocks backfilled from the systems' synthetic series, and from the
    recording rules of `rule_groups` evaluated over them."""
    window = window or Window()
    series = FleetSeries(systems, window, traffic)
    source = series.write(workdir / "fleet.om")
    tsdb = workdir / "data"
    result = promtool.create_blocks_from_openmetrics(source, tsdb)
    if not result.ok:
        raise RuntimeError(f"backfilling the synthetic series failed:\n{result.output}")
    source.unlink()

    def start(data: Path) -> PrometheusServer:
        return start_prometheus(workdir, {"global": {"scrape_interval": "1m", "evaluation_interval": "1m"}}, tsdb=data)

    rules = recording_rules(rule_groups)
    if not rules:
        return start(tsdb)
    return backfill_rules(rules, workdir, tsdb, window, start)


# --- recorded series: the generated recording rules over the synthetic window ---------------------
#
# `promtool tsdb create-blocks-from rules` evaluates rules against a running Prometheus, but a rule
# that reads another rule's output only sees it once those blocks are loaded. So the rules are
# ordered by what they read (a rule comes after every rule recording a series it names) and
# backfilled level by level, restarting Prometheus on the grown TSDB between levels.

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")

Rule = Mapping[str, Any]


def recording_rules(groups: Iterable[Mapping[str, Any]]) -> list[Rule]:
    """The recording rules of rule groups (alerting rules are not backfilled: ALERTS is synthetic)."""
    return [rule for group in groups for rule in group["rules"] if "record" in rule]


def levels(rules: list[Rule]) -> list[list[Rule]]:
    """Rules in evaluation order: level n reads only raw series and series recorded below n."""
    recorded = {rule["record"] for rule in rules}
    reads = [set(_NAME.findall(rule["expr"])) & recorded for rule in rules]
    level_of_name = dict.fromkeys(recorded, 0)
    changed = True
    while changed:
        changed = False
        for rule, names in zip(rules, reads, strict=True):
            level = 1 + max((level_of_name[name] for name in names), default=0)
            if level > level_of_name[rule["record"]]:
                if level > len(rules):
                    raise ValueError(f"recording rules read each other in a cycle, through {rule['record']}")
                level_of_name[rule["record"]] = level
                changed = True
    by_level: dict[int, list[Rule]] = {}
    for rule in rules:
        by_level.setdefault(level_of_name[rule["record"]], []).append(rule)
    return [by_level[level] for level in sorted(by_level)]


def backfill_rules(
    rules: list[Rule],
    workdir: Path,
    tsdb: Path,
    window: Window,
    start: Callable[[Path], PrometheusServer],
) -> PrometheusServer:
    """Backfill every level into `tsdb` and return a Prometheus serving the result.

    `start(tsdb)` starts a Prometheus on the TSDB; each level's server is stopped before the next.
    """
    server = start(tsdb)
    for index, level in enumerate(levels(rules)):
        rule_file = workdir / f"level-{index}.rules.yaml"
        rule_file.write_text(yaml.safe_dump({"groups": [{"name": f"level-{index}", "rules": level}]}, width=10_000))
        blocks = workdir / f"level-{index}"
        result = promtool.run(
            "tsdb",
            "create-blocks-from",
            "rules",
            f"--start={window.start}",
            f"--end={window.end}",
            f"--url={server.url}",
            f"--output-dir={blocks}",
            f"--eval-interval={window.step}s",
            str(rule_file),
        )
        if not result.ok:
            server.stop()
            raise RuntimeError(f"backfilling recording rules of level {index} failed:\n{result.output}")
        server.stop()
        for block in blocks.iterdir():
            shutil.move(str(block), tsdb / block.name)
        server = start(tsdb)
    return server
