"""USE rules per node and node pool, and the node and pool alerts.

Pool membership is recorded once, in `node_pool:node:info`: kube-state-metrics' `kube_node_labels`
with the system's pool label (needs `--metric-labels-allowlist=nodes=[<node_pool_label>]`), one
series per node with labels `node` and `node_pool`. node-exporter series reach their node the way
kube-prometheus's own rules do, through `kube_pod_info` on (namespace, pod): the recorded
`node_pool:node_exporter_pod:info` maps each node-exporter pod to its node and pool. Their
`instance` is never read, since kube-prometheus-stack leaves it at `<host IP>:9100` while
kube-prometheus relabels it to the node's name. Every node and pool rule joins on these two series,
so membership is decided in one place.

Alerts per pool (FLEET.md's thresholds): node CPU and memory above 90 % for 5 minutes and disk
above 85 % (critical), a disk predicted to fill within a day (warning), a node not ready
(warning), the pool with no ready node (NodePoolDown, critical), fewer nodes than `min_nodes`,
and an autoscaled pool pinned at `max_nodes` (warning). One alert per system, NodePoolLabelMissing
(warning), says when kube-state-metrics publishes no node's pool label: no node belongs to a pool
then, and the pool alerts that would fire on an empty pool hold their fire.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from obsbundle import naming
from obsbundle.durations import parse_duration
from obsbundle.links import Board, PanelId
from obsbundle.model import NodePool, System
from obsbundle.promql import any_of, quote, selector
from obsbundle.rules.alert_labels import AlertSubject, owner_labels
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.definitions import (
    Alert,
    AlertCheck,
    AlertDoc,
    Case,
    Inputs,
    Recording,
    RuleGroup,
    RunbookCheck,
    SampleCheck,
    UnitTest,
    merge_inputs,
)
from obsbundle.rules.input_series import constant, counter
from obsbundle.rules.templating import Description, ValueFormat
from obsbundle.stacks import PROFILES, Exporter, Node, target_labels

UNPOOLED_NODE = "unpooled-1"
"""A node without the pool label in every test: kube-state-metrics reports nodes outside pools too.
kube-state-metrics itself runs on it."""
FOREIGN_NODE = "foreign-1"
FOREIGN_POOL = "other_team"
"""A node in a pool the inventory does not name (another team's, on a shared cluster). The underscore
keeps it apart from every inventory pool, whose names are DNS labels."""
MEMORY_BYTES = 8_000_000_000
DISK_BYTES = 100_000_000_000

CPU_HIGH = AlertDoc(
    name="NodeCpuHigh",
    summary="A node's CPU is nearly saturated.",
    meaning="CPU utilisation of the node (not idle, waiting for I/O or stolen) stayed above the threshold. "
    "Pods on it are throttled and slow; the kubelet and system daemons compete for CPU.",
    actions=(
        "Find the busiest pods on the node: `kubectl top pod -A --sort-by=cpu` and the node pool dashboard.",
        "Move or scale the workload (more replicas on other nodes, or a larger instance type for the pool).",
        "Check for runaway processes outside Kubernetes on the node.",
    ),
)
MEMORY_HIGH = AlertDoc(
    name="NodeMemoryHigh",
    summary="A node's memory is nearly exhausted.",
    meaning="Less than a tenth of the node's memory is available. The kubelet starts evicting pods and "
    "the kernel OOM-kills processes when it runs out.",
    actions=(
        "Find the largest pods on the node: `kubectl top pod -A --sort-by=memory`.",
        "Check pods without memory limits and pods whose usage exceeds their requests.",
        "Move workloads off the node or give the pool larger instances.",
    ),
)
DISK_ALMOST_FULL = AlertDoc(
    name="NodeDiskAlmostFull",
    summary="A node's filesystem is almost full.",
    meaning="The fullest real filesystem of the node is above the threshold. When it fills, the kubelet "
    "evicts pods (DiskPressure), images cannot be pulled and logs are lost.",
    actions=(
        "Find what grows: `du -xh --max-depth=2 /` on the node (container logs, images, emptyDir volumes).",
        "Prune unused images (`crictl rmi --prune`) and rotate logs; grow the volume if the workload needs it.",
    ),
)
DISK_FILLING = AlertDoc(
    name="NodeDiskFillingUp",
    summary="A node's filesystem will fill up within a day at its current rate.",
    meaning="The filesystem is more than half full and its free space, extrapolated from the last six "
    "hours, reaches zero within 24 hours.",
    actions=(
        "Find what grows on the node (logs, images, emptyDir) and stop or rotate it.",
        "Grow the volume or clean up before it fills; see NodeDiskAlmostFull.",
    ),
)
NODE_NOT_READY = AlertDoc(
    name="NodeNotReady",
    summary="A node is not ready.",
    meaning="The node's Ready condition has not been true for a while: the kubelet stopped reporting, the "
    "node is out of resources, or its network is down. Its pods are evicted after the toleration time.",
    actions=(
        "`kubectl describe node <node>`: conditions and events.",
        "Check the instance in the cloud console (status checks, reboots) and the kubelet's journal.",
        "Cordon and drain it if it does not recover; the pool's autoscaler or ASG replaces it.",
    ),
)
POOL_DOWN = AlertDoc(
    name=naming.ALERT_NODE_POOL_DOWN,
    summary="No node of a node pool is ready.",
    meaning="kube-state-metrics reports nodes, but none of this pool is ready (or the pool has none left). "
    "Every workload pinned to the pool is down; their own alerts are inhibited by this one.",
    actions=(
        "`kubectl get nodes -l <pool label>=<pool>`: are they NotReady or gone?",
        "Check the instances and their autoscaling group in the cloud console.",
        "Restore a node (reboot, replace, raise the ASG's desired count) before chasing workload alerts.",
    ),
)
POOL_BELOW_MIN = AlertDoc(
    name="NodePoolBelowMinNodes",
    summary="A node pool has fewer nodes than its minimum.",
    meaning="The pool has fewer nodes than the inventory's `min_nodes`: instances failed to start or were "
    "removed, or nodes lost the pool label (kube-state-metrics then cannot place them).",
    actions=(
        "`kubectl get nodes --show-labels`: are nodes missing or only unlabelled?",
        "Check the pool's autoscaling group or machine set for failed launches (quota, capacity, AMI).",
    ),
)
POOL_AT_MAX = AlertDoc(
    name="NodePoolAtMaxNodes",
    summary="An autoscaled node pool has been at its maximum size for a while.",
    meaning="The pool has as many nodes as the inventory's `max_nodes`; the cluster autoscaler cannot add "
    "more, so pods that need room stay Pending.",
    actions=(
        "Look for Pending pods: `kubectl get pods -A --field-selector=status.phase=Pending`.",
        "Raise the pool's maximum (and the inventory's max_nodes) or reduce requests.",
    ),
)


def label_missing_doc(system: System) -> AlertDoc:
    """NodePoolLabelMissing's text, naming the system's own pool label in the fix."""
    label = system.node_pool_label
    return AlertDoc(
        name=naming.ALERT_NODE_POOL_LABEL_MISSING,
        summary="kube-state-metrics does not publish the node pool label, so no node is in a pool.",
        meaning=f"kube-state-metrics reports nodes, but no `kube_node_labels` series carries "
        f"`{system.node_pool_label_name}` (the node label `{label}`). kube-state-metrics publishes only the "
        "node labels it is told to, and its Helm chart's default `metricLabelsAllowlist: []` publishes none. "
        "Until it does, no node belongs to a pool: the node and pool series and panels are empty, and the pool "
        "alerts (NodePoolDown, NodePoolBelowMinNodes, NodePoolAtMaxNodes and the per-node alerts) hold their fire.",
        actions=(
            f"Start kube-state-metrics with `{label_allowlist_flag(system)}`; for the Helm chart "
            f"(kube-prometheus-stack), set `{label_allowlist_helm(system)}`.",
            f"Check that the nodes carry the label: `kubectl get nodes -L {label}`.",
        ),
    )


def label_allowlist_flag(system: System) -> str:
    """The kube-state-metrics flag that publishes the system's pool label on kube_node_labels."""
    return f"--metric-labels-allowlist=nodes=[{system.node_pool_label}]"


def label_allowlist_helm(system: System) -> str:
    """The same setting as a kube-prometheus-stack Helm value."""
    return f'kube-state-metrics.metricLabelsAllowlist: ["nodes=[{system.node_pool_label}]"]'


class _Joins:
    """How node-exporter and kube-state-metrics series meet their node and pool."""

    def __init__(self, system: System, config: RuleConfig) -> None:
        self.system = system
        self.config = config

    def _recorded(self, metric: str, pool: NodePool | None) -> str:
        labels = {naming.SYSTEM_LABEL: self.system.name}
        if pool is not None:
            labels[naming.NODE_POOL_LABEL] = pool.name
        return selector(metric, labels)

    def membership(self, pool: NodePool | None = None) -> str:
        return self._recorded(naming.NODE_POOL_MEMBERSHIP, pool)

    def exporter_pods(self, pool: NodePool | None = None) -> str:
        return self._recorded(naming.NODE_EXPORTER_PODS, pool)

    def exporter(self, metric: str, *raw: str) -> str:
        return selector(metric, self.config.node_exporter, *raw)

    def ksm(self, metric: str, *raw: str) -> str:
        return selector(metric, self.config.kube_state_metrics, *raw)

    def labelled(self) -> str:
        """kube_node_labels of every node with the pool label, in any pool: none at all while
        kube-state-metrics is not told to publish the label."""
        return self.ksm("kube_node_labels", f'{self.system.node_pool_label_name}!=""')

    def on_nodes(
        self, per_pod: str, aggregate: str = "max", by: str = "node, node_pool", pool: NodePool | None = None
    ) -> str:
        """A node-exporter expression by (namespace, pod, …), with each pod's node and pool
        attached, aggregated `by` node and pool (one node-exporter pod per node; `max` also covers
        the moment a rollout runs two)."""
        return (
            f"{aggregate} by ({by}) (\n  ({per_pod})\n"
            f"  * on (namespace, pod) group_left (node, node_pool) {self.exporter_pods(pool)}\n)"
        )


def membership_rule(system: System, config: RuleConfig) -> Recording:
    """`node_pool:node:info`: each node of one of the system's pools. Only the inventory's pools: on
    a shared cluster, other teams' nodes carry the same label with their own pool names, and would
    otherwise be recorded (and counted) too."""
    label = system.node_pool_label_name
    pools = any_of(pool.name for pool in system.node_pools)
    source = selector("kube_node_labels", config.kube_state_metrics, f"{label}=~{pools}")
    pooled = f'label_replace({source}, "node_pool", "$1", {quote(label)}, "(.*)")'
    return Recording(
        naming.NODE_POOL_MEMBERSHIP,
        f"max by (node, node_pool) (\n  {pooled}\n)",
        {naming.SYSTEM_LABEL: system.name},
    )


def exporter_pods_rule(system: System, config: RuleConfig) -> Recording:
    """`node_pool:node_exporter_pod:info`: the node and pool of each node-exporter pod on the pools'
    nodes. kube-state-metrics is scraped with honorLabels, so `kube_pod_info`'s namespace and pod
    are the pod's own; `up` keeps it to the pods node-exporter's scrape targets are."""
    joins = _Joins(system, config)
    pods = joins.ksm("kube_pod_info", 'node!=""')
    expr = (
        "max by (namespace, pod, node, node_pool) (\n"
        f"  {pods}\n"
        f"  * on (node) group_left (node_pool) {joins.membership()}\n"
        f"  and on (namespace, pod) {joins.exporter('up')}\n)"
    )
    return Recording(naming.NODE_EXPORTER_PODS, expr, {naming.SYSTEM_LABEL: system.name})


def recording_rules(system: System, config: RuleConfig) -> list[Recording]:
    joins = _Joins(system, config)
    system_only = {naming.SYSTEM_LABEL: system.name}
    fs = config.real_filesystems
    not_busy = joins.exporter("node_cpu_seconds_total", 'mode=~"idle|iowait|steal"')
    cpu = f"1 - avg by (namespace, pod) (sum by (namespace, pod, cpu) (rate({not_busy}[5m])))"
    available = joins.exporter("node_memory_MemAvailable_bytes")
    total = joins.exporter("node_memory_MemTotal_bytes")
    memory = f"1 - sum by (namespace, pod) ({available}) / sum by (namespace, pod) ({total})"
    disk = (
        f"max by (namespace, pod) (1 - {joins.exporter('node_filesystem_avail_bytes', fs)}"
        f" / {joins.exporter('node_filesystem_size_bytes', fs)})"
    )
    ready = joins.ksm("kube_node_status_condition", 'condition="Ready"', 'status="true"')

    def network(direction: str) -> str:
        received = joins.exporter(f"node_network_{direction}_bytes_total", config.physical_devices)
        return joins.on_nodes(f"sum by (namespace, pod) (rate({received}[5m]))", "sum", "node_pool")

    return [
        membership_rule(system, config),
        exporter_pods_rule(system, config),
        Recording(naming.NODE_CPU_UTILISATION, joins.on_nodes(cpu), system_only),
        Recording(naming.NODE_MEMORY_UTILISATION, joins.on_nodes(memory), system_only),
        Recording(naming.NODE_FILESYSTEM_USAGE, joins.on_nodes(disk), system_only),
        Recording(
            naming.POOL_CPU_UTILISATION,
            f"avg by (node_pool) ({selector(naming.NODE_CPU_UTILISATION, system_only)})",
            system_only,
        ),
        Recording(
            naming.POOL_MEMORY_UTILISATION,
            f"avg by (node_pool) ({selector(naming.NODE_MEMORY_UTILISATION, system_only)})",
            system_only,
        ),
        Recording(
            naming.POOL_FILESYSTEM_USAGE,
            f"max by (node_pool) ({selector(naming.NODE_FILESYSTEM_USAGE, system_only)})",
            system_only,
        ),
        Recording(naming.POOL_NETWORK_RECEIVE, network("receive"), system_only),
        Recording(naming.POOL_NETWORK_TRANSMIT, network("transmit"), system_only),
        Recording(
            naming.POOL_NODES_READY,
            f"sum by (node_pool) (\n  max by (node) ({ready})\n"
            f"  * on (node) group_left (node_pool) {joins.membership()}\n)",
            system_only,
        ),
        Recording(naming.POOL_NODES, f"count by (node_pool) ({joins.membership()})", system_only),
    ]


def node_names(pool: NodePool, count: int) -> list[str]:
    return [f"{pool.name}-{index}" for index in range(1, count + 1)]


def healthy_size(pool: NodePool) -> int:
    return max(pool.min_nodes, 1)


@dataclass(frozen=True)
class NodeState:
    """What one test node reports."""

    ready: bool = True
    busy: float = 0.5
    memory_used: float = 0.5
    disk_used: float = 0.5
    disk_drain_per_minute: float = 0


HEALTHY = NodeState()


def node_host(name: str) -> Node:
    """A test node with a stable made-up host IP of its own (the generated tests and the synthetic
    fleet series place node-exporter on it)."""
    digest = zlib.crc32(name.encode())
    return Node(name, f"10.0.{digest >> 8 & 0xFF}.{digest % 254 + 1}")


class PoolInputs:
    """Test input series for the nodes of one pool, with the labels the system's stack gives them.

    node-exporter's series carry the target labels of `monitoring.stack` (`obsbundle.stacks`);
    kube-state-metrics' series carry their own labels over its target's (honorLabels), with
    `kube_pod_info` labelled as kube-state-metrics v2 labels a node-exporter pod
    (tests/fixtures/exposition/kube-state-metrics/pods.prom). `allowlisted=False` is a
    kube-state-metrics started without `--metric-labels-allowlist`: it serves no `kube_node_labels`
    series at all (tests/fixtures/exposition/kube-state-metrics/default-allowlist.prom).
    """

    def __init__(
        self, system: System, config: RuleConfig, pool: NodePool, minutes: int, *, allowlisted: bool = True
    ) -> None:
        self.system, self.config, self.pool, self.minutes = system, config, pool, minutes
        self.allowlisted = allowlisted
        self.stack = system.monitoring.stack
        self.ksm_target = target_labels(self.stack, Exporter.KUBE_STATE_METRICS, node_host(UNPOOLED_NODE))

    def ksm(self, metric: str, labels: Mapping[str, str], value: float) -> Inputs:
        return (constant(metric, {**self.ksm_target, **labels}, value, self.minutes),)

    def node_labels(self, node: str, pool: str | None) -> Inputs:
        """kube_node_labels of a node: `node` alone for a node without the pool label."""
        if not self.allowlisted:
            return ()
        labels = {"node": node} if pool is None else {"node": node, self.system.node_pool_label_name: pool}
        return self.ksm("kube_node_labels", labels, 1)

    def exporter(self, node: str, state: NodeState) -> Inputs:
        """The node-exporter pod on `node`: its kube_pod_info, its target's `up`, and its series."""
        host = node_host(node)
        target = target_labels(self.stack, Exporter.NODE_EXPORTER, host)
        pod_info = {
            "namespace": target["namespace"],
            "pod": target["pod"],
            "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{target['pod']}.{target['namespace']}")),
            # node-exporter runs with hostNetwork under both stacks: the pod's IP is the host's.
            "host_ip": host.host_ip,
            "pod_ip": host.host_ip,
            "node": node,
            "created_by_kind": "DaemonSet",
            "created_by_name": str(PROFILES[self.stack][Exporter.NODE_EXPORTER].pod_prefix),
            "priority_class": "system-node-critical",
            "host_network": "true",
        }
        filesystem = {**target, "device": "/dev/nvme0n1p1", "fstype": "ext4", "mountpoint": "/"}
        return (
            *self.ksm("kube_pod_info", pod_info, 1),
            constant("up", target, 1, self.minutes),
            counter(
                "node_cpu_seconds_total", {**target, "cpu": "0", "mode": "idle"}, 60 * (1 - state.busy), self.minutes
            ),
            constant("node_memory_MemAvailable_bytes", target, MEMORY_BYTES * (1 - state.memory_used), self.minutes),
            constant("node_memory_MemTotal_bytes", target, MEMORY_BYTES, self.minutes),
            counter(
                "node_filesystem_avail_bytes",
                filesystem,
                -state.disk_drain_per_minute,
                self.minutes,
                start=DISK_BYTES * (1 - state.disk_used),
            ),
            constant("node_filesystem_size_bytes", filesystem, DISK_BYTES, self.minutes),
        )

    def unpooled(self) -> Inputs:
        """Nodes that belong to no pool of this system, each with its node-exporter: one without the
        label, one in another pool."""
        return (
            *self.node_labels(UNPOOLED_NODE, None),
            *self.ksm("kube_node_info", {"node": UNPOOLED_NODE}, 1),
            *self.exporter(UNPOOLED_NODE, HEALTHY),
            *self.node_labels(FOREIGN_NODE, FOREIGN_POOL),
            *self.ksm("kube_node_info", {"node": FOREIGN_NODE}, 1),
            *self.exporter(FOREIGN_NODE, HEALTHY),
        )

    def node(self, node: str, state: NodeState) -> Inputs:
        return (
            *self.node_labels(node, self.pool.name),
            *self.ksm("kube_node_info", {"node": node}, 1),
            *self.ksm(
                "kube_node_status_condition", {"node": node, "condition": "Ready", "status": "true"}, int(state.ready)
            ),
            *self.exporter(node, state),
        )

    def nodes(self, count: int, first: NodeState = HEALTHY, rest: NodeState = HEALTHY) -> Inputs:
        """The pool's first `count` nodes (the first in state `first`), plus the unpooled nodes."""
        names = node_names(self.pool, count)
        states = [first, *([rest] * (count - 1))]
        return merge_inputs(
            self.unpooled(), *(self.node(name, state) for name, state in zip(names, states, strict=True))
        )


def _minutes(duration: str) -> int:
    return parse_duration(duration) // 60


class _PoolAlerts:
    def __init__(self, system: System, config: RuleConfig, pool: NodePool) -> None:
        self.system, self.config, self.pool = system, config, pool
        self.joins = _Joins(system, config)
        labels = {**owner_labels(system), naming.NODE_POOL_LABEL: pool.name}
        self.subject = AlertSubject(system, labels, pool.name, Board.NODE_POOL, pool.name)
        self.recorded = {naming.SYSTEM_LABEL: system.name, naming.NODE_POOL_LABEL: pool.name}
        self.first = node_names(pool, 1)[0]
        self.node_labels = {**self.recorded, "node": self.first}

    def inputs(self, minutes: int) -> PoolInputs:
        return PoolInputs(self.system, self.config, self.pool, minutes)

    def _node_ratio(
        self,
        doc: AlertDoc,
        *,
        metric: str,
        threshold: Decimal,
        for_: str,
        panel: PanelId,
        what: str,
        hot: Callable[[float], NodeState],
    ) -> Alert:
        series = selector(metric, self.recorded)
        at = _minutes(for_) + 7
        value = float((1 + threshold) / 2)
        size = healthy_size(self.pool)
        return self.subject.alert(
            doc,
            expr=f"{series} > {format(threshold.normalize(), 'f')}",
            severity="critical",
            description=Description(
                f"{what} of node {{node}} in pool {{node_pool}} is {{value}}.", ValueFormat.PERCENT
            ),
            panel=panel,
            for_=for_,
            case=Case(
                firing=self.inputs(at).nodes(size, first=hot(value)),
                quiet=self.inputs(at).nodes(size),
                labels=self.node_labels,
                value=value,
                eval_time=f"{at}m",
            ),
            threshold=f"> {float(threshold) * 100:g}% for {for_}",
            checks=(RunbookCheck(f"{what} per node of the pool", series, "promql"),),
        )

    def cpu(self) -> Alert:
        return self._node_ratio(
            CPU_HIGH,
            metric=naming.NODE_CPU_UTILISATION,
            threshold=self.config.node_cpu,
            for_=self.config.node_usage_for,
            panel=PanelId.POOL_CPU,
            what="CPU utilisation",
            hot=lambda value: NodeState(busy=value),
        )

    def memory(self) -> Alert:
        return self._node_ratio(
            MEMORY_HIGH,
            metric=naming.NODE_MEMORY_UTILISATION,
            threshold=self.config.node_memory,
            for_=self.config.node_usage_for,
            panel=PanelId.POOL_MEMORY,
            what="Memory utilisation",
            hot=lambda value: NodeState(memory_used=value),
        )

    def disk(self) -> Alert:
        return self._node_ratio(
            DISK_ALMOST_FULL,
            metric=naming.NODE_FILESYSTEM_USAGE,
            threshold=self.config.node_disk,
            for_=self.config.node_disk_for,
            panel=PanelId.POOL_DISK,
            what="Usage of the fullest filesystem",
            hot=lambda value: NodeState(disk_used=value),
        )

    def disk_filling(self) -> Alert:
        fs = self.config.real_filesystems
        available = self.joins.exporter("node_filesystem_avail_bytes", fs)
        size = self.joins.exporter("node_filesystem_size_bytes", fs)
        horizon = parse_duration(self.config.node_disk_fill_horizon)
        minimum = self.config.disk_fill_min_usage
        per_pod = (
            f"max by (namespace, pod, mountpoint) (\n"
            f"    1 - {available} / {size} > {minimum}\n"
            f"    and predict_linear({available}[{self.config.disk_fill_lookback}], {horizon}) < 0\n  )"
        )
        expr = self.joins.on_nodes(per_pod, "max", "node, node_pool, mountpoint", self.pool)
        at = _minutes(self.config.fill_for) + 30
        drain = DISK_BYTES * 0.0005
        start_used = 0.55
        used = 1 - (DISK_BYTES * (1 - start_used) - drain * at) / DISK_BYTES
        return self.subject.alert(
            DISK_FILLING,
            expr=expr,
            severity="warning",
            description=Description(
                f"Filesystem {{mountpoint}} of node {{node}} is {{value}} full and will fill within "
                f"{self.config.node_disk_fill_horizon} at the rate of the last {self.config.disk_fill_lookback}.",
                ValueFormat.PERCENT,
            ),
            panel=PanelId.POOL_DISK,
            for_=self.config.fill_for,
            case=Case(
                firing=self.inputs(at).nodes(
                    healthy_size(self.pool), NodeState(disk_used=start_used, disk_drain_per_minute=drain)
                ),
                quiet=self.inputs(at).nodes(healthy_size(self.pool), NodeState(disk_used=start_used)),
                labels={"node": self.first, naming.NODE_POOL_LABEL: self.pool.name, "mountpoint": "/"},
                value=used,
                eval_time=f"{at}m",
                evaluation_interval="5m",
            ),
            threshold=f"> {float(minimum) * 100:g}% full, full within {self.config.node_disk_fill_horizon}",
        )

    def not_ready(self) -> Alert:
        ready = self.joins.ksm("kube_node_status_condition", 'condition="Ready"', 'status="true"')
        at = _minutes(self.config.node_not_ready_for) + 5
        return self.subject.alert(
            NODE_NOT_READY,
            expr=f"(max by (node) ({ready}) == 0)\n"
            f"* on (node) group_left (node_pool) {self.joins.membership(self.pool)}",
            severity="warning",
            description=Description(
                f"Node {{node}} of pool {{node_pool}} has not been ready for {self.config.node_not_ready_for}."
            ),
            panel=PanelId.POOL_NODES_READY,
            for_=self.config.node_not_ready_for,
            case=Case(
                firing=self.inputs(at).nodes(healthy_size(self.pool), NodeState(ready=False)),
                quiet=self.inputs(at).nodes(healthy_size(self.pool)),
                labels={"node": self.first, naming.NODE_POOL_LABEL: self.pool.name},
                value=0,
                eval_time=f"{at}m",
            ),
            threshold=f"Ready ≠ true for {self.config.node_not_ready_for}",
            checks=(
                RunbookCheck(
                    "Nodes of the pool", f"kubectl get nodes -l {self.system.node_pool_label}={self.pool.name}"
                ),
            ),
        )

    def _labelled(self) -> str:
        """True while kube-state-metrics reports a node with the pool label: missing data, or a
        kube-state-metrics that does not publish the label (NodePoolLabelMissing), is not a missing
        pool. The other pool alerts need members to fire, so they hold their fire without it."""
        return f"and on () count({self.joins.labelled()})"

    def down(self) -> Alert:
        ready = selector(naming.POOL_NODES_READY, self.recorded)
        at = _minutes(self.config.pool_down_for) + 7
        size = healthy_size(self.pool)
        return self.subject.alert(
            POOL_DOWN,
            expr=f"(max({ready}) or on () vector(0)) == 0\n{self._labelled()}",
            severity="critical",
            description=Description(
                f"No node of pool {self.pool.name} is ready ({self.pool.min_nodes} expected at least)."
            ),
            panel=PanelId.POOL_NODES_READY,
            for_=self.config.pool_down_for,
            case=Case(
                firing=self.inputs(at).nodes(size, NodeState(ready=False), NodeState(ready=False)),
                quiet=self.inputs(at).nodes(size),
                labels={},
                value=0,
                eval_time=f"{at}m",
                background=True,
            ),
            threshold=f"no ready node for {self.config.pool_down_for}",
            checks=(
                RunbookCheck(
                    "Ready nodes per pool",
                    selector(naming.POOL_NODES_READY, {naming.SYSTEM_LABEL: self.system.name}),
                    "promql",
                ),
            ),
        )

    def below_min(self) -> Alert:
        nodes = selector(naming.POOL_NODES, self.recorded)
        at = _minutes(self.config.pool_size_for) + 5
        missing_one = self.pool.min_nodes - 1
        firing = self.inputs(at).nodes(missing_one) if missing_one else self.inputs(at).unpooled()
        return self.subject.alert(
            POOL_BELOW_MIN,
            expr=f"(max({nodes}) or on () vector(0)) < {self.pool.min_nodes}\n{self._labelled()}",
            severity="warning",
            description=Description(
                f"Pool {self.pool.name} has {{value}} nodes; its minimum is {self.pool.min_nodes}."
            ),
            panel=PanelId.POOL_NODES_READY,
            for_=self.config.pool_size_for,
            case=Case(
                firing=firing,
                quiet=self.inputs(at).nodes(healthy_size(self.pool)),
                labels={},
                value=missing_one,
                eval_time=f"{at}m",
                background=True,
            ),
            threshold=f"< {self.pool.min_nodes} nodes for {self.config.pool_size_for}",
        )

    def at_max(self) -> Alert:
        nodes = selector(naming.POOL_NODES, self.recorded)
        at = _minutes(self.config.pool_at_max_for) + 5
        return self.subject.alert(
            POOL_AT_MAX,
            expr=f"max({nodes}) >= {self.pool.max_nodes}",
            severity="warning",
            description=Description(f"Pool {self.pool.name} has run at its maximum of {self.pool.max_nodes} nodes."),
            panel=PanelId.POOL_NODES_READY,
            for_=self.config.pool_at_max_for,
            case=Case(
                firing=self.inputs(at).nodes(self.pool.max_nodes),
                quiet=self.inputs(at).nodes(healthy_size(self.pool)),
                labels={},
                value=self.pool.max_nodes,
                eval_time=f"{at}m",
                evaluation_interval="5m",
            ),
            threshold=f"= {self.pool.max_nodes} nodes for {self.config.pool_at_max_for}",
        )


def pool_alerts(system: System, config: RuleConfig, pool: NodePool) -> list[Alert]:
    build = _PoolAlerts(system, config, pool)
    alerts = [build.cpu(), build.memory(), build.disk(), build.disk_filling(), build.not_ready()]
    if pool.min_nodes >= 1:
        alerts += [build.down(), build.below_min()]
    if pool.min_nodes < pool.max_nodes:
        alerts.append(build.at_max())
    return alerts


def _first_pool(system: System) -> NodePool:
    return sorted(system.node_pools, key=lambda p: p.name)[0]


def label_missing_alert(system: System, config: RuleConfig) -> Alert:
    """NodePoolLabelMissing: kube-state-metrics reports nodes, and none has the pool label."""
    joins = _Joins(system, config)
    pool = _first_pool(system)
    at = _minutes(config.pool_label_missing_for) + 5
    size = healthy_size(pool)
    subject = AlertSubject(system, owner_labels(system), system.name, Board.NODE_POOLS)
    return subject.alert(
        label_missing_doc(system),
        expr=f"count({joins.ksm('kube_node_info')})\nunless on () count({joins.labelled()})",
        severity="warning",
        description=Description(
            f"kube-state-metrics reports {{value}} nodes, but no kube_node_labels series carries "
            f"{system.node_pool_label_name}: start kube-state-metrics with {label_allowlist_flag(system)} "
            f"(Helm chart: {label_allowlist_helm(system)}). Until then the node pool alerts hold their fire.",
            ValueFormat.NUMBER,
        ),
        panel=PanelId.POOL_NODES_READY,
        for_=config.pool_label_missing_for,
        case=Case(
            firing=PoolInputs(system, config, pool, at, allowlisted=False).nodes(size),
            quiet=PoolInputs(system, config, pool, at).nodes(size),
            labels={},
            # The pool's nodes, the unpooled node and the other team's node.
            value=size + 2,
            eval_time=f"{at}m",
        ),
        threshold=f"no node with label {system.node_pool_label} for {config.pool_label_missing_for}",
        checks=(
            RunbookCheck("Nodes with the pool label, as kube-state-metrics publishes them", joins.labelled(), "promql"),
        ),
    )


def unlabelled_nodes_test(system: System, config: RuleConfig, pool: NodePool, alerts: Sequence[Alert]) -> UnitTest:
    """Healthy nodes under a kube-state-metrics that does not publish the pool label page nobody:
    none of the pool's alerts fires. (NodePoolLabelMissing's own test proves, on the same inputs,
    that it fires and says how to fix it.)"""
    durations = [alert.for_ for alert in alerts if alert.for_]
    at = max(_minutes(duration) for duration in durations) + 5
    return UnitTest(
        f"healthy nodes of pool {pool.name} without the pool label page nobody",
        PoolInputs(system, config, pool, at, allowlisted=False).nodes(healthy_size(pool)),
        alert_checks=tuple(AlertCheck(f"{at}m", name, ()) for name in sorted({alert.name for alert in alerts})),
    )


def membership_test(system: System, config: RuleConfig) -> UnitTest:
    """node_pool:node:info puts each labelled node in its pool, node_pool:node_exporter_pod:info
    maps the node-exporter pod on each of them to node and pool, and both leave out unlabelled nodes
    and nodes of pools the inventory does not name."""
    pools = sorted(system.node_pools, key=lambda p: p.name)
    inputs = merge_inputs(*(PoolInputs(system, config, pool, 5).nodes(1) for pool in pools))
    system_only = {naming.SYSTEM_LABEL: system.name}
    members, pods = [], []
    for pool in pools:
        node = node_names(pool, 1)[0]
        labels = {**system_only, "node": node, naming.NODE_POOL_LABEL: pool.name}
        members.append((selector(naming.NODE_POOL_MEMBERSHIP, labels), 1.0))
        target = target_labels(system.monitoring.stack, Exporter.NODE_EXPORTER, node_host(node))
        pod = {**labels, "namespace": target["namespace"], "pod": target["pod"]}
        pods.append((selector(naming.NODE_EXPORTER_PODS, pod), 1.0))
    return UnitTest(
        "every node of the system's pools is recorded in its pool, with its node-exporter pod; "
        "unlabelled and other teams' nodes in none",
        inputs,
        sample_checks=(
            SampleCheck(selector(naming.NODE_POOL_MEMBERSHIP, system_only), "5m", tuple(members)),
            SampleCheck(selector(naming.NODE_EXPORTER_PODS, system_only), "5m", tuple(pods)),
        ),
    )


def node_pool_groups(system: System, config: RuleConfig) -> list[RuleGroup]:
    """The recording group of every node and pool (with NodePoolLabelMissing), then one alert group
    per pool."""
    if not system.node_pools:
        return []
    recordings = f"{system.name}-node-pools"
    groups = [
        RuleGroup(
            recordings,
            config.interval,
            (*recording_rules(system, config), label_missing_alert(system, config)),
            tests=(membership_test(system, config),),
        )
    ]
    for pool in sorted(system.node_pools, key=lambda p: p.name):
        alerts = pool_alerts(system, config, pool)
        groups.append(
            RuleGroup(
                f"{system.name}-node-pool-{pool.name}",
                config.interval,
                tuple(alerts),
                depends_on=(recordings,),
                tests=(unlabelled_nodes_test(system, config, pool, alerts),),
            )
        )
    return groups
