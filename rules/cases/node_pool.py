"""Node and pool cases: the nodes of one pool as kube-state-metrics and node-exporter report them
under the system's stack, with the unpooled and foreign nodes every test carries too."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from obsbundle import naming
from obsbundle.durations import parse_duration
from obsbundle.model import NodePool, System
from obsbundle.promql import selector
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.definitions import (
    Alert,
    AlertCheck,
    Case,
    Inputs,
    InputSeries,
    SampleCheck,
    Severity,
    UnitTest,
    merge_inputs,
)
from obsbundle.rules.input_series import constant, counter
from obsbundle.stacks import PROFILES, Exporter, Node, exporter_target_labels

UNPOOLED_NODE = "unpooled-1"
"""A node without the pool label in every test: kube-state-metrics reports nodes outside pools too.
kube-state-metrics itself runs on it."""
FOREIGN_NODE = "foreign-1"
FOREIGN_POOL = "other_team"
"""A node in a pool the inventory does not name (another team's, on a shared cluster). The underscore
keeps it apart from every inventory pool, whose names are DNS labels."""
MEMORY_BYTES = 8_000_000_000
DISK_BYTES = 100_000_000_000
INODES = 10_000_000
SYNCHRONISED_MAX_ERROR = 0.01
"""Seconds: a synchronised clock's maximum error is milliseconds; unsynchronised, the kernel lets it
grow to 16 s and caps it there."""
UNSYNCHRONISED_MAX_ERROR = 16
INODES_USED: dict[Severity, float] = {"warning": 0.96, "critical": 0.985}
"""Inodes used in the firing case of each tier of NodeInodesAlmostExhausted (below 5 % and 3 % free)."""
INTERFACE = "eth0"
"""The node's interface, as node-exporter names it (tests/fixtures/exposition/node-exporter/default.prom)."""
VETH = "veth1a2b3c4d"
"""A pod's end of a veth pair on the node: the interface alerts leave it out, so it flaps and errs
in every firing case without a second alert."""
PACKETS_PER_MINUTE = 6000
CONNTRACK_LIMIT = 262144
FILE_MAX = 2466126
"""node_nf_conntrack_entries_limit and node_filefd_maximum as node-exporter reports them (default.prom)."""
POD_CAPACITY = 110
"""The kubelet's default `maxPods`, as kube-state-metrics reports it in kube_node_status_capacity{resource="pods"}."""
EVICTION_SIGNAL = "memory.available"
"""The kubelet's eviction signal as `kubelet_evictions` labels it
(tests/fixtures/exposition/kubelet/pods-evictions.prom)."""
FILEFD_USED: dict[Severity, float] = {"warning": 0.8, "critical": 0.95}
"""Share of the kernel's file handles allocated in the firing case of each tier of NodeFileDescriptorLimit."""


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
    """Bytes of free space lost each minute."""
    inodes_used: float = 0.5
    inodes_drain_per_minute: float = 0
    clock_offset: float = 0.001
    clock_drift_per_minute: float = 0
    clock_synchronised: bool = True
    pressure: str | None = None
    """The kubelet condition that is true, if any."""
    receive_errors: float = 0
    transmit_errors: float = 0
    """Share of the interface's packets in error, each way."""
    conntrack_used: float = 0.1
    filefd_used: float = 0.05
    interface_flapping: bool = False
    """The interface goes down and up every minute."""
    ready_flapping: bool = False
    """The Ready condition turns false and true again every minute."""
    running_pods: int = 30
    evictions_per_minute: float = 0


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
        self.ksm_target = exporter_target_labels(self.stack, Exporter.KUBE_STATE_METRICS, node_host(UNPOOLED_NODE))

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
        target = exporter_target_labels(self.stack, Exporter.NODE_EXPORTER, host)
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
        max_error = SYNCHRONISED_MAX_ERROR if state.clock_synchronised else UNSYNCHRONISED_MAX_ERROR
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
            counter(
                "node_filesystem_files_free",
                filesystem,
                -state.inodes_drain_per_minute,
                self.minutes,
                start=INODES * (1 - state.inodes_used),
            ),
            constant("node_filesystem_files", filesystem, INODES, self.minutes),
            constant("node_filesystem_readonly", filesystem, 0, self.minutes),
            counter(
                "node_timex_offset_seconds", target, state.clock_drift_per_minute, self.minutes,
                start=state.clock_offset,
            ),
            constant("node_timex_sync_status", target, int(state.clock_synchronised), self.minutes),
            constant("node_timex_maxerror_seconds", target, max_error, self.minutes),
            *self.interface({**target, "device": INTERFACE}, state),
            # A pod's veth always errs and flaps: only the node's own interfaces may raise an alert.
            *self.interface(
                {**target, "device": VETH}, NodeState(receive_errors=0.5, transmit_errors=0.5, interface_flapping=True)
            ),
            constant("node_nf_conntrack_entries", target, round(CONNTRACK_LIMIT * state.conntrack_used), self.minutes),
            constant("node_nf_conntrack_entries_limit", target, CONNTRACK_LIMIT, self.minutes),
            constant("node_filefd_allocated", target, round(FILE_MAX * state.filefd_used), self.minutes),
            constant("node_filefd_maximum", target, FILE_MAX, self.minutes),
        )

    def interface(self, labels: Mapping[str, str], state: NodeState) -> Inputs:
        """One network interface: its packet and error counters each way, and its up status."""
        counters = (
            counter(f"node_network_{direction}_{kind}_total", labels, per_minute, self.minutes)
            for direction, share in (("receive", state.receive_errors), ("transmit", state.transmit_errors))
            for kind, per_minute in (("packets", PACKETS_PER_MINUTE), ("errs", PACKETS_PER_MINUTE * share))
        )
        statuses = " ".join(str((minute + 1) % 2) for minute in range(self.minutes + 1))
        up = (
            InputSeries(selector("node_network_up", labels), statuses)
            if state.interface_flapping
            else constant("node_network_up", labels, 1, self.minutes)
        )
        return (*counters, up)

    def ready(self, node: str, state: NodeState) -> Inputs:
        labels = {**self.ksm_target, "node": node, "condition": "Ready", "status": "true"}
        if state.ready_flapping:
            flips = " ".join(str(minute % 2) for minute in range(self.minutes + 1))
            return (InputSeries(selector("kube_node_status_condition", labels), flips),)
        return (constant("kube_node_status_condition", labels, int(state.ready), self.minutes),)

    def kubelet(self, node: str, state: NodeState) -> Inputs:
        """The kubelet's own series on `node`: its running pods and the evictions it has made."""
        target = exporter_target_labels(self.stack, Exporter.KUBELET, node_host(node))
        return (
            constant("kubelet_running_pods", target, state.running_pods, self.minutes),
            counter(
                "kubelet_evictions", {**target, "eviction_signal": EVICTION_SIGNAL}, state.evictions_per_minute,
                self.minutes, start=3,
            ),
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
            *self.ready(node, state),
            *self.ksm("kube_node_status_capacity", {"node": node, "resource": "pods", "unit": "integer"}, POD_CAPACITY),
            *self.kubelet(node, state),
            *(
                item
                for condition in self.config.node_pressure_conditions
                for item in self.ksm(
                    "kube_node_status_condition",
                    {"node": node, "condition": condition, "status": "true"},
                    int(state.pressure == condition),
                )
            ),
            *self.ksm("kube_node_spec_unschedulable", {"node": node}, 0),
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


class PoolCases:
    """The cases of one pool's alerts: healthy nodes keep each quiet, one node (or the pool) in
    trouble makes it fire."""

    def __init__(self, system: System, config: RuleConfig, pool: NodePool) -> None:
        self.system, self.config, self.pool = system, config, pool
        self.first = node_names(pool, 1)[0]
        self.size = healthy_size(pool)

    def inputs(self, minutes: int) -> PoolInputs:
        return PoolInputs(self.system, self.config, self.pool, minutes)

    def _node_ratio(self, threshold: Decimal, for_: str, hot: NodeState) -> Case:
        """The first node halfway between the threshold and 100 % fires, healthy nodes stay quiet."""
        at = _minutes(for_) + 7
        return Case(
            firing=self.inputs(at).nodes(self.size, first=hot),
            quiet=self.inputs(at).nodes(self.size),
            labels={naming.SYSTEM_LABEL: self.system.name, naming.NODE_POOL_LABEL: self.pool.name, "node": self.first},
            value=_halfway(threshold),
            eval_time=f"{at}m",
        )

    def cpu(self) -> Case:
        busy = _halfway(self.config.node_cpu)
        return self._node_ratio(self.config.node_cpu, self.config.node_usage_for, NodeState(busy=busy))

    def memory(self) -> Case:
        used = _halfway(self.config.node_memory)
        return self._node_ratio(self.config.node_memory, self.config.node_usage_for, NodeState(memory_used=used))

    def disk(self) -> Case:
        used = _halfway(self.config.node_disk)
        return self._node_ratio(self.config.node_disk, self.config.node_disk_for, NodeState(disk_used=used))

    def _filling(self, state: Callable[[float, float], NodeState], size: float) -> dict[Severity, Case]:
        """node-mixin's two tiers by severity: a filesystem 62 % used that loses 0.05 % of its size a
        minute (empty in about 11 hours) makes the warning fire; one 82 % used that loses 0.1 % a
        minute (empty in 3 hours) makes the page fire and the warning give way. The same filesystems
        standing still keep both quiet. `state(used, drain per minute)` is the node's state."""
        at = _minutes(self.config.fill_for) + 30
        labels = {"node": self.first, naming.NODE_POOL_LABEL: self.pool.name, "mountpoint": "/"}
        tiers: dict[Severity, tuple[float, float]] = {
            "warning": (0.62, size * 0.0005),
            "critical": (0.82, size * 0.001),
        }
        return {
            severity: Case(
                firing=self.inputs(at).nodes(self.size, state(used, drain)),
                quiet=self.inputs(at).nodes(self.size, state(used, 0)),
                labels=labels,
                value=1 - (size * (1 - used) - drain * at) / size,
                eval_time=f"{at}m",
                evaluation_interval="5m",
            )
            for severity, (used, drain) in tiers.items()
        }

    def disk_filling(self) -> dict[Severity, Case]:
        return self._filling(lambda used, drain: NodeState(disk_used=used, disk_drain_per_minute=drain), DISK_BYTES)

    def inodes_filling(self) -> dict[Severity, Case]:
        return self._filling(lambda used, drain: NodeState(inodes_used=used, inodes_drain_per_minute=drain), INODES)

    def inodes_exhausted(self) -> dict[Severity, Case]:
        """96 % of the inodes used makes the warning fire, 98.5 % the page (and the warning give way);
        half of them used keeps both quiet."""
        at = _minutes(self.config.node_inodes_for) + 10
        labels = {"node": self.first, naming.NODE_POOL_LABEL: self.pool.name, "mountpoint": "/"}
        return {
            severity: Case(
                firing=self.inputs(at).nodes(self.size, NodeState(inodes_used=used)),
                quiet=self.inputs(at).nodes(self.size),
                labels=labels,
                value=used,
                eval_time=f"{at}m",
                evaluation_interval="5m",
            )
            for severity, used in INODES_USED.items()
        }

    def clock_skew(self) -> Case:
        """A clock 100 ms behind and drifting further fires; one a millisecond ahead and steady stays quiet."""
        at = _minutes(self.config.node_clock_for) + 7
        drift = -0.001
        return Case(
            firing=self.inputs(at).nodes(self.size, NodeState(clock_offset=-0.1, clock_drift_per_minute=drift)),
            quiet=self.inputs(at).nodes(self.size),
            labels={"node": self.first, naming.NODE_POOL_LABEL: self.pool.name},
            value=-0.1 + drift * at,
            eval_time=f"{at}m",
        )

    def clock_not_synchronised(self) -> Case:
        """An unsynchronised clock at the kernel's 16 s maximum error fires; a synchronised one stays quiet."""
        at = _minutes(self.config.node_clock_for) + 7
        return Case(
            firing=self.inputs(at).nodes(self.size, NodeState(clock_synchronised=False)),
            quiet=self.inputs(at).nodes(self.size),
            labels={"node": self.first, naming.NODE_POOL_LABEL: self.pool.name},
            value=UNSYNCHRONISED_MAX_ERROR,
            eval_time=f"{at}m",
        )

    def pressure(self) -> Case:
        """A node under DiskPressure fires with the condition named; nodes without pressure stay quiet."""
        at = _minutes(self.config.node_pressure_for) + 7
        return Case(
            firing=self.inputs(at).nodes(self.size, NodeState(pressure="DiskPressure")),
            quiet=self.inputs(at).nodes(self.size),
            labels={"node": self.first, naming.NODE_POOL_LABEL: self.pool.name, "condition": "DiskPressure"},
            value=1,
            eval_time=f"{at}m",
        )

    def _node_state(self, for_: str | None, state: NodeState, labels: Mapping[str, str], value: float) -> Case:
        """The first node in `state` fires with `labels` (beside node and pool) and `value`; healthy nodes
        stay quiet."""
        at = (_minutes(for_) if for_ else 0) + 7
        return Case(
            firing=self.inputs(at).nodes(self.size, state),
            quiet=self.inputs(at).nodes(self.size),
            labels={"node": self.first, naming.NODE_POOL_LABEL: self.pool.name, **labels},
            value=value,
            eval_time=f"{at}m",
        )

    def network_errors(self, direction: str) -> Case:
        """5 % of the interface's packets in error one way fires; none in error stays quiet."""
        share = 0.05
        state = NodeState(receive_errors=share) if direction == "receive" else NodeState(transmit_errors=share)
        return self._node_state(self.config.node_network_errors_for, state, {"device": INTERFACE}, share)

    def conntrack(self) -> Case:
        """80 % of the conntrack table used fires; a tenth stays quiet."""
        used = round(CONNTRACK_LIMIT * 0.8) / CONNTRACK_LIMIT
        return self._node_state(self.config.node_conntrack_for, NodeState(conntrack_used=0.8), {}, used)

    def file_descriptors(self) -> dict[Severity, Case]:
        """80 % of the file handles allocated makes the warning fire, 95 % the page (and the warning give
        way); 5 % keeps both quiet."""
        return {
            severity: self._node_state(
                self.config.node_filefd_for, NodeState(filefd_used=used), {}, round(FILE_MAX * used) / FILE_MAX
            )
            for severity, used in FILEFD_USED.items()
        }

    def interface_flapping(self) -> Case:
        """An interface down and up every minute fires with as many changes as the window holds samples
        after the first; one that stays up stays quiet."""
        window = _minutes(self.config.node_interface_flap_window)
        return self._node_state(
            self.config.node_interface_flap_for, NodeState(interface_flapping=True), {"device": INTERFACE}, window
        )

    def readiness_flapping(self) -> Case:
        """Ready turning false and true every minute fires with the changes its window holds; a node that
        stays ready stays quiet."""
        changes = _minutes(self.config.node_readiness_window)
        return self._node_state(self.config.node_readiness_for, NodeState(ready_flapping=True), {}, changes)

    def too_many_pods(self) -> Case:
        """A kubelet running 108 of its 110 pods fires; 30 stays quiet."""
        running = POD_CAPACITY - 2
        return self._node_state(
            self.config.kubelet_pods_for, NodeState(running_pods=running), {}, running / POD_CAPACITY
        )

    def eviction(self) -> Case:
        """A kubelet evicting a pod every minute fires with the signal named; one whose last evictions are
        long past (its counter standing still) stays quiet."""
        return self._node_state(
            None, NodeState(evictions_per_minute=1), {"eviction_signal": EVICTION_SIGNAL}, 1 / 60
        )

    def not_ready(self) -> Case:
        at = _minutes(self.config.node_not_ready_for) + 5
        return Case(
            firing=self.inputs(at).nodes(self.size, NodeState(ready=False)),
            quiet=self.inputs(at).nodes(self.size),
            labels={"node": self.first, naming.NODE_POOL_LABEL: self.pool.name},
            value=0,
            eval_time=f"{at}m",
        )

    def down(self) -> Case:
        """Every node of the pool not ready fires. The alert also fires on a pool without series, so
        its sibling pools need their quiet inputs in every test (`background`)."""
        at = _minutes(self.config.pool_down_for) + 7
        return Case(
            firing=self.inputs(at).nodes(self.size, NodeState(ready=False), NodeState(ready=False)),
            quiet=self.inputs(at).nodes(self.size),
            labels={},
            value=0,
            eval_time=f"{at}m",
            background=True,
        )

    def below_min(self) -> Case:
        """One node fewer than the minimum fires (no pool node at all for a minimum of one)."""
        at = _minutes(self.config.pool_size_for) + 5
        missing_one = self.pool.min_nodes - 1
        return Case(
            firing=self.inputs(at).nodes(missing_one) if missing_one else self.inputs(at).unpooled(),
            quiet=self.inputs(at).nodes(self.size),
            labels={},
            value=missing_one,
            eval_time=f"{at}m",
            background=True,
        )

    def at_max(self) -> Case:
        at = _minutes(self.config.pool_at_max_for) + 5
        return Case(
            firing=self.inputs(at).nodes(self.pool.max_nodes),
            quiet=self.inputs(at).nodes(self.size),
            labels={},
            value=self.pool.max_nodes,
            eval_time=f"{at}m",
            evaluation_interval="5m",
        )


def _halfway(threshold: Decimal) -> float:
    return float((1 + threshold) / 2)


def first_pool(system: System) -> NodePool:
    return sorted(system.node_pools, key=lambda p: p.name)[0]


def label_missing(system: System, config: RuleConfig) -> Case:
    """Healthy nodes under a kube-state-metrics without the allowlist fire; with it, stay quiet."""
    pool = first_pool(system)
    at = _minutes(config.pool_label_missing_for) + 5
    size = healthy_size(pool)
    return Case(
        firing=PoolInputs(system, config, pool, at, allowlisted=False).nodes(size),
        quiet=PoolInputs(system, config, pool, at).nodes(size),
        labels={},
        # The pool's nodes, the unpooled node and the other team's node.
        value=size + 2,
        eval_time=f"{at}m",
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
        target = exporter_target_labels(system.monitoring.stack, Exporter.NODE_EXPORTER, node_host(node))
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
