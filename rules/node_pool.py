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
above 85 % (critical); node-mixin's two-tier prediction of free space and of free inodes (warning
below 40 % free and empty within 24 hours, critical below 20 % and empty within 4 hours) and its
inodes almost exhausted (warning below 5 %, critical below 3 %); a clock off by more than 50 ms or
not synchronised, and the kubelet's memory, disk or PID pressure (warning); a node not ready
(warning), the pool with no ready node (NodePoolDown, critical), fewer nodes than `min_nodes`,
and an autoscaled pool pinned at `max_nodes` (warning). One alert per system, NodePoolLabelMissing
(warning), says when kube-state-metrics publishes no node's pool label: no node belongs to a pool
then, and the pool alerts that would fire on an empty pool hold their fire.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal

from obsbundle import naming
from obsbundle.durations import parse_duration
from obsbundle.links import Board, PanelId
from obsbundle.model import NodePool, System
from obsbundle.promql import any_of, quote, selector
from obsbundle.rules.alert_labels import AlertSubject, owner_labels
from obsbundle.rules.cases import node_pool as cases
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.definitions import (
    Alert,
    AlertDoc,
    Case,
    Recording,
    RuleGroup,
    RunbookCheck,
    Severity,
)
from obsbundle.rules.templating import Description, ValueFormat

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
    summary="A node's filesystem will fill up soon at its current rate.",
    meaning="A writable filesystem of the node has little space left and its free space, extrapolated "
    "from the last six hours, reaches zero soon: the warning when less than 40 % is free and it fills "
    "within 24 hours, the page when less than 20 % is free and it fills within 4 hours (node-mixin's "
    "NodeFilesystemSpaceFillingUp). The warning gives way to the page on the same filesystem. The kubelet "
    "garbage-collects images from 85 % used, so a steady trend past that point is not images.",
    actions=(
        "Find what grows on the node: `du -xh --max-depth=2 /` (container logs, images, emptyDir volumes).",
        "Stop or rotate it (`crictl rmi --prune`, log rotation); grow the volume if the workload needs it.",
    ),
)
INODES_FILLING = AlertDoc(
    name="NodeInodesFillingUp",
    summary="A node's filesystem will run out of inodes soon at its current rate.",
    meaning="Files are created faster than they are removed: the filesystem's free inodes, extrapolated "
    "from the last six hours, reach zero soon (warning below 40 % free and empty within 24 hours, page "
    "below 20 % and within 4 hours, as node-mixin's NodeFilesystemFilesFillingUp). With no inode left no "
    "file can be created, whatever space is free: pods fail to start and logs stop.",
    actions=(
        "Find the folder with the most files: `du --inodes -x --max-depth=3 / | sort -n | tail`.",
        "Typical culprits: a cache or session store writing one file per entry, unrotated logs, "
        "orphaned container layers (`crictl rmi --prune`).",
    ),
)
INODES_EXHAUSTED = AlertDoc(
    name="NodeInodesAlmostExhausted",
    summary="A node's filesystem has almost no free inodes left.",
    meaning="Less than 5 % (warning) or 3 % (page) of the filesystem's inodes are free, as node-mixin's "
    "NodeFilesystemAlmostOutOfFiles. When none is left, no file can be created: containers cannot start "
    "and applications fail with 'No space left on device' while `df -h` shows free space.",
    actions=(
        "`df -i` on the node, then `du --inodes -x --max-depth=3 / | sort -n | tail` to find the folder.",
        "Delete the small files that pile up (caches, sessions, old logs) or move the workload to a volume of its own.",
    ),
)
CLOCK_SKEW = AlertDoc(
    name="NodeClockSkew",
    summary="A node's clock is off by more than 50 ms and not coming back.",
    meaning="The kernel's offset from the NTP reference is above the threshold and still growing (or not "
    "shrinking), as node-mixin's NodeClockSkewDetected. Time-bound credentials depend on the clocks of "
    "the nodes that issue and check them: a service that issues JWTs on a clock that runs ahead writes "
    "`iat`/`nbf` in the future, so other nodes reject fresh tokens as not yet valid; one that runs behind "
    "issues tokens that expire early; a service that checks tokens accepts expired ones or refuses new "
    "ones. TLS certificates, signed URLs (S3), TOTP codes and log ordering suffer the same way. The "
    "table below names what runs on each pool.",
    actions=(
        "On the node: `chronyc tracking` (or `timedatectl timesync-status`): is a source selected, what is "
        "the offset?",
        "Check that the node reaches its time source (the cloud's 169.254.169.123 on AWS, or the NTP pool) "
        "and restart chrony or systemd-timesyncd if it is stuck.",
        "If services that issue or check tokens run on the pool, look for token errors in their logs "
        "('token used before issued', 'token expired') until the clock is back.",
    ),
)
CLOCK_NOT_SYNCHRONISED = AlertDoc(
    name="NodeClockNotSynchronised",
    summary="A node's clock is not being synchronised.",
    meaning="The kernel reports the clock as unsynchronised for five minutes and its maximum error has "
    "grown to 16 s, where the kernel caps it once nothing disciplines the clock (node-mixin's "
    "NodeClockNotSynchronising). The clock drifts freely from now on: see NodeClockSkew for why that "
    "matters to the services on the pool, tokens (JWT `iat`, `nbf`, `exp`) and certificates first.",
    actions=(
        "On the node: `timedatectl status` (\"System clock synchronized\") and `chronyc sources`.",
        "Start or fix the time daemon (chrony, systemd-timesyncd) and its sources; allow UDP 123 out, or "
        "use the cloud's link-local time service.",
    ),
)
PRESSURE = AlertDoc(
    name="NodePressure",
    summary="The kubelet reports memory, disk or PID pressure on a node.",
    meaning="A node condition MemoryPressure, DiskPressure or PIDPressure has been true for a while, as "
    "kubernetes-mixin's KubeNodePressure: the node crossed a kubelet eviction threshold. The kubelet evicts "
    "pods (lowest priority and largest over their requests first) and the scheduler places no new pod "
    "there; on a pool of one node its workloads have nowhere else to go.",
    actions=(
        "`kubectl describe node <node>`: the condition's message and the eviction events.",
        "MemoryPressure: the largest pods (`kubectl top pod -A --sort-by=memory`), pods without limits. "
        "DiskPressure: images, container logs and emptyDir on the node (see NodeDiskAlmostFull). "
        "PIDPressure: a process that forks without bound (`ps -eLf | wc -l` on the node).",
        "Move workloads off the node or give the pool larger instances.",
    ),
)
NETWORK_RECEIVE_ERRORS = AlertDoc(
    name="NodeNetworkReceiveErrs",
    summary="A node's network interface drops many received packets in error.",
    meaning="More than 1 % of the packets an interface of the node received in the last five minutes were in "
    "error, for an hour (node-mixin's NodeNetworkReceiveErrs): a faulty link, a driver or MTU mismatch, or a "
    "virtual NIC out of its receive buffers. The pods on the node see retransmissions, timeouts and slow "
    "requests that no other node shows.",
    actions=(
        "On the node: `ip -s link show <device>` (RX errors, dropped, overruns) and `ethtool -S <device>` for the "
        "driver's own counters.",
        "Compare the MTU with the pod network's (`ip link show`): a CNI overlay needs room for its header.",
        "If the errors stay, cordon and drain the node (`kubectl drain <node> --ignore-daemonsets "
        "--delete-emptydir-data`) and let the pool replace the instance.",
    ),
)
NETWORK_TRANSMIT_ERRORS = AlertDoc(
    name="NodeNetworkTransmitErrs",
    summary="A node's network interface fails to send many packets.",
    meaning="More than 1 % of the packets an interface of the node sent in the last five minutes failed, for an "
    "hour (node-mixin's NodeNetworkTransmitErrs): a faulty link or driver, or a virtual NIC over its bandwidth "
    "or packet allowance. Responses and calls from the node's pods are lost and retried.",
    actions=(
        "On the node: `ip -s link show <device>` (TX errors, dropped, carrier) and `ethtool -S <device>`; on EC2 "
        "the `*_allowance_exceeded` counters say which allowance the instance type runs out of.",
        "Move the heaviest senders off the node (`kubectl top pod -A`) or give the pool a larger instance type.",
        "If the errors stay, cordon and drain the node and let the pool replace the instance.",
    ),
)
CONNTRACK = AlertDoc(
    name="NodeHighNumberConntrackEntriesUsed",
    summary="A node's connection tracking table is nearly full.",
    meaning="More than 75 % of the kernel's conntrack entries are in use (node-mixin's "
    "NodeHighNumberConntrackEntriesUsed). kube-proxy's Service NAT needs an entry for every connection "
    "through the node: when the table is full, the kernel drops new connections ('nf_conntrack: table "
    "full, dropping packet' in the node's log) and the pods on it see connection timeouts.",
    actions=(
        "On the node: `conntrack -C` against `sysctl net.netfilter.nf_conntrack_max`, and `conntrack -L | awk "
        "'{print $5}' | sort | uniq -c | sort -n | tail` for the destinations that hold most entries.",
        "Look for a pod that opens a new connection per request instead of reusing them (missing keep-alive or "
        "a connection pool), or a flood of short connections.",
        "Raise `nf_conntrack_max` (kube-proxy's `--conntrack-min` / `conntrack.maxPerCore`) if the load is real.",
    ),
)
FILE_DESCRIPTORS = AlertDoc(
    name="NodeFileDescriptorLimit",
    summary="A node's kernel is running out of file handles.",
    meaning="The node's allocated file handles are above 70 % (warning) or 90 % (page) of the kernel's "
    "`fs.file-max` for 15 minutes (node-mixin's NodeFileDescriptorLimit). When none is left, no process on "
    "the node can open a file or a socket ('Too many open files'): the kubelet, the container runtime and "
    "every pod fail together.",
    actions=(
        "On the node: `cat /proc/sys/fs/file-nr` (allocated, unused, maximum), then the processes with the most "
        "open files: `for p in /proc/[0-9]*; do echo \"$(ls $p/fd 2>/dev/null | wc -l) $(cat $p/comm)\"; done | "
        "sort -n | tail`.",
        "A process whose count keeps growing leaks descriptors: restart its pod and report the leak to its owner.",
        "Raise `fs.file-max` only if the load is real and the leak ruled out.",
    ),
)
INTERFACE_FLAPPING = AlertDoc(
    name="NodeNetworkInterfaceFlapping",
    summary="A node's network interface keeps going down and up.",
    meaning="An interface of the node changed its up status more than twice in five minutes, for two minutes "
    "(kube-prometheus's NodeNetworkInterfaceFlapping): a faulty cable, port or driver, or a virtual NIC being "
    "reset. Each drop cuts the connections of the node's pods and may make the node NotReady for a moment.",
    actions=(
        "On the node: `ip link show <device>` and `journalctl -k | grep -i <device>` for the link's up and down "
        "messages and driver resets.",
        "Cordon and drain the node (`kubectl drain <node> --ignore-daemonsets --delete-emptydir-data`) and let "
        "the pool replace the instance if the flapping goes on.",
    ),
)
READINESS_FLAPPING = AlertDoc(
    name="KubeNodeReadinessFlapping",
    summary="A node keeps turning NotReady and Ready again.",
    meaning="The node's Ready condition changed more than twice in 15 minutes, for 15 minutes (kubernetes-mixin's "
    "KubeNodeReadinessFlapping); a cordoned node is left out. Each time it turns NotReady its pods are marked "
    "unready and drop out of their Services' endpoints, so requests fail in bursts that NodeNotReady, which waits "
    "for the node to stay down, never reports.",
    actions=(
        "`kubectl describe node <node>`: the Ready condition's reason and message and the node's events.",
        "On the node: `journalctl -u kubelet --since -30min` (lost apiserver connection, PLEG not healthy, container "
        "runtime down) and `systemctl status containerd`.",
        "If it goes on, cordon and drain it (`kubectl drain <node> --ignore-daemonsets --delete-emptydir-data`) and "
        "let the pool replace the instance.",
    ),
)
TOO_MANY_PODS = AlertDoc(
    name="KubeletTooManyPods",
    summary="A node's kubelet is running nearly as many pods as it may.",
    meaning="The kubelet runs more than 95 % of the pods its node allows (`maxPods`, kube_node_status_capacity's "
    "`pods`), for 15 minutes (kubernetes-mixin's KubeletTooManyPods). New pods cannot be placed there however "
    "much CPU and memory are free, and stay Pending once every node of the pool is full.",
    actions=(
        "Count the pods per node: `kubectl get pods -A --field-selector spec.nodeName=<node> --no-headers | wc -l`.",
        "Look for pods that should not be there (completed Jobs kept, many small replicas) and for Pending pods: "
        "`kubectl get pods -A --field-selector=status.phase=Pending`.",
        "Add nodes to the pool, or raise `maxPods` in the kubelet's configuration if the pod network has the "
        "addresses for it.",
    ),
)
EVICTION = AlertDoc(
    name="KubeNodeEviction",
    summary="A node's kubelet is evicting pods.",
    meaning="The kubelet evicted pods in the last 15 minutes because an eviction signal (memory.available, "
    "nodefs.available, imagefs.available, pid.available…) crossed its threshold (kubernetes-mixin's "
    "KubeNodeEviction). Evicted pods are killed and rescheduled; those over their requests go first.",
    actions=(
        "Find the evicted pods: `kubectl get pods -A --field-selector=status.phase=Failed -o wide | grep Evicted` "
        "and `kubectl get events -A --field-selector reason=Evicted`.",
        "`kubectl describe node <node>`: which pressure condition is set (see NodePressure).",
        "Give the pods that use more than they request realistic requests and limits, or move them to larger nodes.",
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


def _decimal(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _percent(share: Decimal) -> str:
    return f"{float(share) * 100:g}%"


def pool_workload_names(system: System, pool: NodePool) -> list[tuple[str, str]]:
    """(name, description) of every service, datastore and platform workload pinned to the pool,
    each kind sorted by name, so that the inventory's order never changes the output."""
    by_name = operator.attrgetter("name")
    found = [(s.name, s.description) for s in sorted(system.services, key=by_name) if s.node_pool == pool.name]
    found += [(d.name, d.description) for d in sorted(system.datastores, key=by_name) if d.node_pool == pool.name]
    found += [
        (w.name, w.description) for w in sorted(system.platform.workloads, key=by_name) if w.node_pool == pool.name
    ]
    return found


def pool_workloads(system: System, pool: NodePool) -> list[str]:
    """What runs on the pool, each with its description: `auth-service (OAuth 2.0 login and JWT tokens)`."""
    return [f"{name} ({about})" if about else name for name, about in pool_workload_names(system, pool)]


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


class _PoolAlerts:
    def __init__(self, system: System, config: RuleConfig, pool: NodePool) -> None:
        self.system, self.config, self.pool = system, config, pool
        self.joins = _Joins(system, config)
        labels = {**owner_labels(system), naming.NODE_POOL_LABEL: pool.name}
        self.subject = AlertSubject(system, labels, pool.name, Board.NODE_POOL, pool.name)
        self.cases = cases.PoolCases(system, config, pool)
        self.recorded = {naming.SYSTEM_LABEL: system.name, naming.NODE_POOL_LABEL: pool.name}

    def _node_ratio(
        self,
        doc: AlertDoc,
        *,
        metric: str,
        threshold: Decimal,
        for_: str,
        panel: PanelId,
        what: str,
        case: Case,
    ) -> Alert:
        series = selector(metric, self.recorded)
        return self.subject.alert(
            doc,
            expr=f"{series} > {format(threshold.normalize(), 'f')}",
            severity="critical",
            description=Description(
                f"{what} of node {{node}} in pool {{node_pool}} is {{value}}.", ValueFormat.PERCENT
            ),
            panel=panel,
            for_=for_,
            case=case,
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
            case=self.cases.cpu(),
        )

    def memory(self) -> Alert:
        return self._node_ratio(
            MEMORY_HIGH,
            metric=naming.NODE_MEMORY_UTILISATION,
            threshold=self.config.node_memory,
            for_=self.config.node_usage_for,
            panel=PanelId.POOL_MEMORY,
            what="Memory utilisation",
            case=self.cases.memory(),
        )

    def disk(self) -> Alert:
        return self._node_ratio(
            DISK_ALMOST_FULL,
            metric=naming.NODE_FILESYSTEM_USAGE,
            threshold=self.config.node_disk,
            for_=self.config.node_disk_for,
            panel=PanelId.POOL_DISK,
            what="Usage of the fullest filesystem",
            case=self.cases.disk(),
        )

    def _filesystem(self, metric: str) -> str:
        return self.joins.exporter(metric, self.config.real_filesystems)

    def _running_out(self, free_metric: str, total_metric: str, free_share: Decimal, horizon: str) -> str:
        """Per filesystem: the used share, where less than `free_share` is free, the free amount
        extrapolated from the lookback reaches zero within `horizon`, and the filesystem is writable
        (a read-only one cannot fill)."""
        free, total = self._filesystem(free_metric), self._filesystem(total_metric)
        return (
            f"1 - {free} / {total} > {_decimal(1 - free_share)}\n"
            f"      and predict_linear({free}[{self.config.disk_fill_lookback}], {parse_duration(horizon)}) < 0\n"
            f"      and {self._filesystem('node_filesystem_readonly')} == 0"
        )

    def _less_free_than(self, free_metric: str, total_metric: str, free_share: Decimal) -> str:
        """Per writable filesystem: the used share, where less than `free_share` is free."""
        free, total = self._filesystem(free_metric), self._filesystem(total_metric)
        return (
            f"1 - {free} / {total} > {_decimal(1 - free_share)}\n"
            f"      and {self._filesystem('node_filesystem_readonly')} == 0"
        )

    def _per_filesystem(self, condition: str, unless: str | None = None) -> str:
        """`condition` by node, pool and mountpoint; `unless` the condition of the tier above, so that
        a filesystem is in one tier at a time (the page replaces the warning)."""
        inner = f"(\n      {condition}\n    )" + (f"\n    unless (\n      {unless}\n    )" if unless else "")
        per_pod = f"max by (namespace, pod, mountpoint) (\n    {inner}\n  )"
        return self.joins.on_nodes(per_pod, "max", "node, node_pool, mountpoint", self.pool)

    def _filling_tiers(
        self, doc: AlertDoc, free_metric: str, total_metric: str, what: str, panel: PanelId, *,
        cases: Mapping[Severity, Case],
    ) -> list[Alert]:
        """node-mixin's two tiers of a filesystem running out of `what` (space or inodes): a warning
        below the warning share free and empty within the day, a page below the critical share and
        empty within the critical horizon."""
        config = self.config
        warning_free, critical_free = config.node_fill_warning_free, config.node_fill_critical_free
        warning_horizon, critical_horizon = config.node_disk_fill_horizon, config.node_fill_critical_horizon
        critical = self._running_out(free_metric, total_metric, critical_free, critical_horizon)
        warning = self._running_out(free_metric, total_metric, warning_free, warning_horizon)
        tiers: tuple[tuple[Severity, str, Decimal, str], ...] = (
            ("warning", self._per_filesystem(warning, unless=critical), warning_free, warning_horizon),
            ("critical", self._per_filesystem(critical), critical_free, critical_horizon),
        )
        return [
            self.subject.alert(
                doc,
                expr=expr,
                severity=severity,
                description=Description(
                    f"Filesystem {{mountpoint}} of node {{node}} in pool {{node_pool}} has {{value}} of its {what} "
                    f"used and will run out within {horizon} at the rate of the last {config.disk_fill_lookback}.",
                    ValueFormat.PERCENT,
                ),
                panel=panel,
                for_=config.fill_for,
                case=cases[severity],
                threshold=f"< {_percent(free)} {what} free, none left within {horizon}",
            )
            for severity, expr, free, horizon in tiers
        ]

    def disk_filling(self) -> list[Alert]:
        return self._filling_tiers(
            DISK_FILLING, "node_filesystem_avail_bytes", "node_filesystem_size_bytes", "space", PanelId.POOL_DISK,
            cases=self.cases.disk_filling(),
        )

    def inodes_filling(self) -> list[Alert]:
        return self._filling_tiers(
            INODES_FILLING, "node_filesystem_files_free", "node_filesystem_files", "inodes", PanelId.POOL_INODES,
            cases=self.cases.inodes_filling(),
        )

    def inodes_exhausted(self) -> list[Alert]:
        """node-mixin's NodeFilesystemAlmostOutOfFiles: a warning below 5 % free inodes, a page below 3 %."""
        config = self.config
        free, total = "node_filesystem_files_free", "node_filesystem_files"
        critical = self._less_free_than(free, total, config.node_inodes_critical_free)
        warning = self._less_free_than(free, total, config.node_inodes_warning_free)
        tiers: tuple[tuple[Severity, str, Decimal], ...] = (
            ("warning", self._per_filesystem(warning, unless=critical), config.node_inodes_warning_free),
            ("critical", self._per_filesystem(critical), config.node_inodes_critical_free),
        )
        cases = self.cases.inodes_exhausted()
        return [
            self.subject.alert(
                INODES_EXHAUSTED,
                expr=expr,
                severity=severity,
                description=Description(
                    "Filesystem {mountpoint} of node {node} in pool {node_pool} has {value} of its inodes used.",
                    ValueFormat.PERCENT,
                ),
                panel=PanelId.POOL_INODES,
                for_=config.node_inodes_for,
                case=cases[severity],
                threshold=f"< {_percent(share)} inodes free for {config.node_inodes_for}",
            )
            for severity, expr, share in tiers
        ]

    def _clock_subject(self) -> AlertSubject:
        """The pool's subject, named with what runs on it: the runbook's table says where a skewed
        clock breaks tokens."""
        runs = pool_workloads(self.system, self.pool)
        entity = f"{self.pool.name}: runs {'; '.join(runs)}" if runs else self.pool.name
        return replace(self.subject, entity=entity)

    def _runs(self) -> str:
        runs = [name for name, _ in pool_workload_names(self.system, self.pool)]
        return f" It runs {', '.join(runs)}." if runs else ""

    def clock_skew(self) -> Alert:
        offset = self.joins.exporter("node_timex_offset_seconds")
        limit = _decimal(self.config.node_clock_offset_seconds)
        per_pod = (
            f"({offset} > {limit} and deriv({offset}[5m]) >= 0)\n"
            f"  or ({offset} < -{limit} and deriv({offset}[5m]) <= 0)"
        )
        return self._clock_subject().alert(
            CLOCK_SKEW,
            expr=self.joins.on_nodes(per_pod, pool=self.pool),
            severity="warning",
            description=Description(
                f"The clock of node {{node}} in pool {{node_pool}} is {{value}} off its NTP reference and not "
                f"converging.{self._runs()}",
                ValueFormat.DURATION,
            ),
            panel=PanelId.POOL_CLOCK,
            for_=self.config.node_clock_for,
            case=self.cases.clock_skew(),
            threshold=f"|offset| > {limit}s, not shrinking, for {self.config.node_clock_for}",
            checks=(RunbookCheck("Clock offset per node of the pool", self.joins.on_nodes(offset, pool=self.pool),
                                 "promql"),),
        )

    def clock_not_synchronised(self) -> Alert:
        status = self.joins.exporter("node_timex_sync_status")
        max_error = self.joins.exporter("node_timex_maxerror_seconds")
        limit = self.config.node_clock_max_error_seconds
        per_pod = f"{max_error} >= {limit}\n  and min_over_time({status}[5m]) == 0"
        return self._clock_subject().alert(
            CLOCK_NOT_SYNCHRONISED,
            expr=self.joins.on_nodes(per_pod, pool=self.pool),
            severity="warning",
            description=Description(
                f"The clock of node {{node}} in pool {{node_pool}} is not synchronised; its maximum error is "
                f"{{value}}.{self._runs()}",
                ValueFormat.DURATION,
            ),
            panel=PanelId.POOL_CLOCK,
            for_=self.config.node_clock_for,
            case=self.cases.clock_not_synchronised(),
            threshold=f"unsynchronised and max error ≥ {limit}s for {self.config.node_clock_for}",
        )

    def pressure(self) -> Alert:
        conditions = self.joins.ksm(
            "kube_node_status_condition", f"condition=~{any_of(self.config.node_pressure_conditions)}", 'status="true"'
        )
        schedulable = self.joins.ksm("kube_node_spec_unschedulable")
        # A cordoned node is being drained on purpose: its pressure is the drain's, not news
        # (kubernetes-mixin leaves it out too).
        expr = (
            f"(\n  max by (node, condition) ({conditions}) == 1\n"
            f"  and on (node) max by (node) ({schedulable}) == 0\n)\n"
            f"* on (node) group_left (node_pool) {self.joins.membership(self.pool)}"
        )
        return self.subject.alert(
            PRESSURE,
            expr=expr,
            severity="warning",
            description=Description(
                f"Node {{node}} of pool {{node_pool}} reports {{condition}}: the kubelet is evicting pods to "
                f"relieve it.{self._runs()}"
            ),
            panel=PanelId.POOL_PRESSURE,
            for_=self.config.node_pressure_for,
            case=self.cases.pressure(),
            threshold=f"{' or '.join(self.config.node_pressure_conditions)} for {self.config.node_pressure_for}",
            checks=(RunbookCheck("Conditions of the pool's nodes",
                                 f"kubectl describe nodes -l {self.system.node_pool_label}={self.pool.name}"),),
        )

    def _pool_nodes_check(self) -> RunbookCheck:
        return RunbookCheck(
            "Nodes of the pool", f"kubectl get nodes -l {self.system.node_pool_label}={self.pool.name} -o wide"
        )

    def network_errors(self, doc: AlertDoc, direction: str, case: Case) -> Alert:
        """node-mixin's share of an interface's packets in error, per node and interface. The rate
        is over five minutes as the pool's network recordings (the mixin: two)."""
        devices = self.config.physical_devices
        errors = self.joins.exporter(f"node_network_{direction}_errs_total", devices)
        packets = self.joins.exporter(f"node_network_{direction}_packets_total", devices)
        limit = self.config.node_network_errors
        per_pod = f"rate({errors}[5m]) / rate({packets}[5m]) > {_decimal(limit)}"
        return self.subject.alert(
            doc,
            expr=self.joins.on_nodes(per_pod, by="node, node_pool, device", pool=self.pool),
            severity="warning",
            description=Description(
                f"Interface {{device}} of node {{node}} in pool {{node_pool}} has {{value}} of its {direction} "
                f"packets in error.{self._runs()}",
                ValueFormat.PERCENT,
            ),
            panel=PanelId.POOL_NETWORK,
            for_=self.config.node_network_errors_for,
            case=case,
            threshold=f"> {_percent(limit)} of packets for {self.config.node_network_errors_for}",
            checks=(self._pool_nodes_check(),),
        )

    def receive_errors(self) -> Alert:
        return self.network_errors(NETWORK_RECEIVE_ERRORS, "receive", self.cases.network_errors("receive"))

    def transmit_errors(self) -> Alert:
        return self.network_errors(NETWORK_TRANSMIT_ERRORS, "transmit", self.cases.network_errors("transmit"))

    def conntrack(self) -> Alert:
        entries = self.joins.exporter("node_nf_conntrack_entries")
        limit = self.joins.exporter("node_nf_conntrack_entries_limit")
        share = self.config.node_conntrack
        return self.subject.alert(
            CONNTRACK,
            expr=self.joins.on_nodes(f"{entries} / {limit} > {_decimal(share)}", pool=self.pool),
            severity="warning",
            description=Description(
                f"Node {{node}} in pool {{node_pool}} uses {{value}} of its conntrack entries.{self._runs()}",
                ValueFormat.PERCENT,
            ),
            panel=PanelId.POOL_NETWORK,
            for_=self.config.node_conntrack_for,
            case=self.cases.conntrack(),
            threshold=f"> {_percent(share)} of the table for {self.config.node_conntrack_for}",
            checks=(self._pool_nodes_check(),),
        )

    def file_descriptors(self) -> list[Alert]:
        """node-mixin's NodeFileDescriptorLimit: a warning above 70 % of the kernel's file handles, a
        page above 90 % (the warning gives way to it)."""
        config = self.config
        allocated = self.joins.exporter("node_filefd_allocated")
        maximum = self.joins.exporter("node_filefd_maximum")

        def above(share: Decimal) -> str:
            return f"{allocated} / {maximum} > {_decimal(share)}"

        critical = above(config.node_filefd_critical)
        tiers: tuple[tuple[Severity, str, Decimal], ...] = (
            ("warning", f"({above(config.node_filefd_warning)})\n  unless ({critical})", config.node_filefd_warning),
            ("critical", critical, config.node_filefd_critical),
        )
        cases = self.cases.file_descriptors()
        return [
            self.subject.alert(
                FILE_DESCRIPTORS,
                expr=self.joins.on_nodes(expr, pool=self.pool),
                severity=severity,
                description=Description(
                    f"Node {{node}} in pool {{node_pool}} has allocated {{value}} of its kernel's file "
                    f"handles.{self._runs()}",
                    ValueFormat.PERCENT,
                ),
                panel=PanelId.POOL_PRESSURE,
                for_=config.node_filefd_for,
                case=cases[severity],
                threshold=f"> {_percent(share)} of fs.file-max for {config.node_filefd_for}",
                checks=(self._pool_nodes_check(),),
            )
            for severity, expr, share in tiers
        ]

    def interface_flapping(self) -> Alert:
        config = self.config
        up = self.joins.exporter("node_network_up", config.physical_devices)
        per_pod = f"changes({up}[{config.node_interface_flap_window}]) > {config.node_interface_flaps}"
        return self.subject.alert(
            INTERFACE_FLAPPING,
            expr=self.joins.on_nodes(per_pod, by="node, node_pool, device", pool=self.pool),
            severity="warning",
            description=Description(
                f"Interface {{device}} of node {{node}} in pool {{node_pool}} changed its up status {{value}} times "
                f"in {config.node_interface_flap_window}.{self._runs()}",
                ValueFormat.NUMBER,
            ),
            panel=PanelId.POOL_NETWORK,
            for_=config.node_interface_flap_for,
            case=self.cases.interface_flapping(),
            threshold=f"> {config.node_interface_flaps} changes in {config.node_interface_flap_window} "
            f"for {config.node_interface_flap_for}",
            checks=(self._pool_nodes_check(),),
        )

    def readiness_flapping(self) -> Alert:
        config = self.config
        ready = self.joins.ksm("kube_node_status_condition", 'condition="Ready"', 'status="true"')
        schedulable = self.joins.ksm("kube_node_spec_unschedulable")
        # A cordoned node is being drained or repaired on purpose (kubernetes-mixin leaves it out too).
        expr = (
            f"(\n  sum by (node) (changes({ready}[{config.node_readiness_window}])) > {config.node_readiness_flaps}\n"
            f"  and on (node) max by (node) ({schedulable}) == 0\n)\n"
            f"* on (node) group_left (node_pool) {self.joins.membership(self.pool)}"
        )
        return self.subject.alert(
            READINESS_FLAPPING,
            expr=expr,
            severity="warning",
            description=Description(
                f"The readiness of node {{node}} in pool {{node_pool}} changed {{value}} times in "
                f"{config.node_readiness_window}.{self._runs()}",
                ValueFormat.NUMBER,
            ),
            panel=PanelId.POOL_NODES_READY,
            for_=config.node_readiness_for,
            case=self.cases.readiness_flapping(),
            threshold=f"> {config.node_readiness_flaps} changes in {config.node_readiness_window} "
            f"for {config.node_readiness_for}",
            checks=(self._pool_nodes_check(),),
        )

    def too_many_pods(self) -> Alert:
        """The kubelet's running pods against its node's pod capacity. The kubelet's target carries
        `node` (its Endpoints' target is the Node), so no join through `instance` is needed."""
        config = self.config
        running = selector("kubelet_running_pods", config.kubelet)
        capacity = self.joins.ksm("kube_node_status_capacity", 'resource="pods"')
        share = config.kubelet_pods_share
        expr = (
            f"(\n  max by (node) ({running})\n  / on (node) max by (node) ({capacity})\n  > {_decimal(share)}\n)\n"
            f"* on (node) group_left (node_pool) {self.joins.membership(self.pool)}"
        )
        return self.subject.alert(
            TOO_MANY_PODS,
            expr=expr,
            severity="warning",
            description=Description(
                f"The kubelet of node {{node}} in pool {{node_pool}} runs {{value}} of the pods its node "
                f"allows.{self._runs()}",
                ValueFormat.PERCENT,
            ),
            panel=PanelId.POOL_NODES_READY,
            for_=config.kubelet_pods_for,
            case=self.cases.too_many_pods(),
            threshold=f"> {_percent(share)} of the node's pod capacity for {config.kubelet_pods_for}",
            checks=(self._pool_nodes_check(),),
        )

    def eviction(self) -> Alert:
        evictions = selector("kubelet_evictions", self.config.kubelet)
        expr = (
            f"(sum by (node, eviction_signal) (rate({evictions}[15m])) > 0)\n"
            f"* on (node) group_left (node_pool) {self.joins.membership(self.pool)}"
        )
        return self.subject.alert(
            EVICTION,
            expr=expr,
            severity="warning",
            description=Description(
                f"The kubelet of node {{node}} in pool {{node_pool}} is evicting pods on {{eviction_signal}}."
                f"{self._runs()}"
            ),
            panel=PanelId.POOL_PRESSURE,
            for_=None,
            case=self.cases.eviction(),
            threshold="any eviction in 15m",
            checks=(self._pool_nodes_check(),),
        )

    def not_ready(self) -> Alert:
        ready = self.joins.ksm("kube_node_status_condition", 'condition="Ready"', 'status="true"')
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
            case=self.cases.not_ready(),
            threshold=f"Ready ≠ true for {self.config.node_not_ready_for}",
            checks=(
                RunbookCheck(
                    "Nodes of the pool", f"kubectl get nodes -l {self.system.node_pool_label}={self.pool.name}"
                ),
            ),
        )

    def _while_pool_label_published(self) -> str:
        """True while kube-state-metrics reports a node with the pool label: missing data, or a
        kube-state-metrics that does not publish the label (NodePoolLabelMissing), is not a missing
        pool. The other pool alerts need members to fire, so they hold their fire without it."""
        return f"and on () count({self.joins.labelled()})"

    def down(self) -> Alert:
        ready = selector(naming.POOL_NODES_READY, self.recorded)
        return self.subject.alert(
            POOL_DOWN,
            expr=f"(max({ready}) or on () vector(0)) == 0\n{self._while_pool_label_published()}",
            severity="critical",
            description=Description(
                f"No node of pool {self.pool.name} is ready ({self.pool.min_nodes} expected at least)."
            ),
            panel=PanelId.POOL_NODES_READY,
            for_=self.config.pool_down_for,
            case=self.cases.down(),
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
        return self.subject.alert(
            POOL_BELOW_MIN,
            expr=f"(max({nodes}) or on () vector(0)) < {self.pool.min_nodes}\n{self._while_pool_label_published()}",
            severity="warning",
            description=Description(
                f"Pool {self.pool.name} has {{value}} nodes; its minimum is {self.pool.min_nodes}."
            ),
            panel=PanelId.POOL_NODES_READY,
            for_=self.config.pool_size_for,
            case=self.cases.below_min(),
            threshold=f"< {self.pool.min_nodes} nodes for {self.config.pool_size_for}",
        )

    def at_max(self) -> Alert:
        nodes = selector(naming.POOL_NODES, self.recorded)
        return self.subject.alert(
            POOL_AT_MAX,
            expr=f"max({nodes}) >= {self.pool.max_nodes}",
            severity="warning",
            description=Description(f"Pool {self.pool.name} has run at its maximum of {self.pool.max_nodes} nodes."),
            panel=PanelId.POOL_NODES_READY,
            for_=self.config.pool_at_max_for,
            case=self.cases.at_max(),
            threshold=f"= {self.pool.max_nodes} nodes for {self.config.pool_at_max_for}",
        )


def pool_alerts(system: System, config: RuleConfig, pool: NodePool) -> list[Alert]:
    build = _PoolAlerts(system, config, pool)
    alerts = [
        build.cpu(),
        build.memory(),
        build.disk(),
        *build.disk_filling(),
        *build.inodes_filling(),
        *build.inodes_exhausted(),
        build.clock_skew(),
        build.clock_not_synchronised(),
        build.pressure(),
        build.receive_errors(),
        build.transmit_errors(),
        build.conntrack(),
        *build.file_descriptors(),
        build.interface_flapping(),
        build.readiness_flapping(),
        build.too_many_pods(),
        build.eviction(),
        build.not_ready(),
    ]
    if pool.min_nodes >= 1:
        alerts += [build.down(), build.below_min()]
    if pool.min_nodes < pool.max_nodes:
        alerts.append(build.at_max())
    return alerts


def label_missing_alert(system: System, config: RuleConfig) -> Alert:
    """NodePoolLabelMissing: kube-state-metrics reports nodes, and none has the pool label."""
    joins = _Joins(system, config)
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
        case=cases.label_missing(system, config),
        threshold=f"no node with label {system.node_pool_label} for {config.pool_label_missing_for}",
        checks=(
            RunbookCheck("Nodes with the pool label, as kube-state-metrics publishes them", joins.labelled(), "promql"),
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
            tests=(cases.membership_test(system, config),),
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
                tests=(cases.unlabelled_nodes_test(system, config, pool, alerts),),
            )
        )
    return groups
