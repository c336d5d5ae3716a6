"""The monitoring stacks obsbundle's output runs on, and the target labels each gives each exporter.

Prometheus Operator puts the same target labels on every ServiceMonitor target (`job`,
`instance`, `namespace`, `service`, `pod`, `container`, `endpoint`; `node` instead of `pod` and
`container` when the endpoint's target is a Node, as the kubelet's are) and on every PodMonitor
target (the same without `service`). The two stacks users install deploy the standard exporters
differently, so the values differ:

- kube-prometheus-stack (Helm): node-exporter runs with `hostNetwork` and its ServiceMonitor has
  no relabelling, so `instance` is `<host IP>:9100`.
- kube-prometheus (jsonnet): node-exporter sits behind kube-rbac-proxy and its ServiceMonitor
  relabels `instance` to the node's name; kube-state-metrics' ServiceMonitor drops the target's
  `pod`, `service`, `endpoint` and `namespace`.

kube-prometheus-stack also scrapes the self-managed control plane (its chart values `kubeApiServer`,
`kubeEtcd`, `kubeScheduler`, `kubeControllerManager`, all enabled): the apiserver through the
`kubernetes` Service in `default` (job `apiserver`, from the Service's `component` label), and etcd,
the scheduler and the controller-manager through headless Services of its own in `kube-system` that
select the kubeadm static pods by their `component` label (jobs `kube-etcd`, `kube-scheduler`,
`kube-controller-manager`, from each Service's `jobLabel` label). kube-prometheus scrapes the
apiserver alike, the scheduler and the controller-manager through the `*-prometheus-discovery`
Services of its kubeadm platform (jobs from `app.kubernetes.io/name`), and etcd only with its
`static-etcd` addon (job `etcd`, Endpoints of fixed IPs: no pod). The rules therefore select etcd by
`job=~".*etcd.*"`, as etcd's own mixin does, and the others by their job.

Both scrape kube-state-metrics and the kubelet with `honorLabels`, so the exposition's own
`namespace`, `pod` and `container` win over the target's. Rules select each exporter by labels
both stacks give it (`job`, and `metrics_path` for the kubelet) and reach a node through
`kube_pod_info` on (namespace, pod), never through `instance`.

Sources (facts read from each file; names are for a Helm release called `kube-prometheus-stack`
in namespace `monitoring`, kube-prometheus' own namespace):

- prometheus-community/helm-charts@cf408a290aec489277a94450bb3511432477a53a:
  charts/kube-prometheus-stack/Chart.yaml (chart 88.5.3; subcharts kube-state-metrics 8.4.0,
  prometheus-node-exporter 4.56.1); charts/kube-prometheus-stack/values.yaml (`kubelet.serviceMonitor`:
  honorLabels true, `metrics_path` from `__metrics_path__` on /metrics and /metrics/cadvisor;
  `kube-state-metrics.prometheus.monitor.http.honorLabels: true`; `prometheus-node-exporter`:
  `service.portName: http-metrics`, Service label `jobLabel: node-exporter`, monitor
  `jobLabel: jobLabel`, `relabelings: []`); charts/kube-prometheus-stack/templates/_helpers.tpl
  (fullname: the release name when it contains the chart's name);
  charts/kube-prometheus-stack/templates/exporters/kubelet/servicemonitor.yaml (`jobLabel: k8s-app`,
  port `https-metrics`); charts/kube-prometheus-stack/templates/prometheus-operator/deployment.yaml
  (`--kubelet-service=kube-system/<fullname>-kubelet`);
  charts/prometheus-node-exporter/values.yaml (`hostNetwork: true`, port 9100,
  `kubeRBACProxy.enabled: false`) and templates/{_helpers.tpl,daemonset.yaml,servicemonitor.yaml}
  (fullname `<release>-prometheus-node-exporter`, container `node-exporter`, no honorLabels);
  charts/kube-state-metrics/values.yaml (`hostNetwork: false`, port 8080, `metricLabelsAllowlist: []`)
  and templates/{_helpers.tpl,deployment.yaml,service.yaml,servicemonitor.yaml} (fullname
  `<release>-kube-state-metrics`, container `kube-state-metrics`, port `http`, jobLabel
  `app.kubernetes.io/name`);
  charts/kube-prometheus-stack/values.yaml `kubeApiServer.serviceMonitor` (jobLabel `component`,
  selector `component: apiserver, provider: kubernetes`), `kubeEtcd` (service port 2381,
  serviceMonitor port `http-metrics`, jobLabel `jobLabel`), `kubeScheduler` and
  `kubeControllerManager` (serviceMonitor port `http-metrics`, jobLabel `jobLabel`; the ports 10259
  and 10257 are the chart's secure defaults since Kubernetes 1.22/1.23);
  charts/kube-prometheus-stack/templates/exporters/{kube-api-server/servicemonitor.yaml (port `https`,
  namespace `default`), kube-etcd,kube-scheduler,kube-controller-manager}/service.yaml (Service
  `<fullname>-kube-etcd` … in `kube-system`, label `jobLabel: kube-etcd` …, selector
  `component: etcd` …).
- prometheus-operator/kube-prometheus@4d719f1dea8853540b3823ab1fbe6be74a9953b3:
  jsonnet/kube-prometheus/components/node-exporter.libsonnet (port `https` 9100 on container
  `kube-rbac-proxy`, `hostNetwork: true`, relabelling `__meta_kubernetes_pod_node_name` → `instance`);
  jsonnet/kube-prometheus/components/kube-state-metrics.libsonnet (port `https-main` 8443 on
  container `kube-rbac-proxy-main`, honorLabels, `labeldrop` of `(pod|service|endpoint|namespace)`);
  jsonnet/kube-prometheus/components/k8s-control-plane.libsonnet (ServiceMonitor `kubelet`,
  jobLabel `app.kubernetes.io/name`, honorLabels, `metrics_path` from `__metrics_path__`; ServiceMonitors
  `kube-scheduler`, `kube-controller-manager` (jobLabel `app.kubernetes.io/name`, port `https-metrics`)
  and `kube-apiserver` (jobLabel `component`, port `https`, namespace `default`));
  jsonnet/kube-prometheus/platforms/kubeadm.libsonnet (Services `kube-scheduler-prometheus-discovery`
  and `kube-controller-manager-prometheus-discovery` in `kube-system`, ports `https-metrics` 10259 and
  10257, selector `component: <name>`); jsonnet/kube-prometheus/addons/static-etcd.libsonnet (Service
  and Endpoints `etcd` in `kube-system` from fixed IPs, port `metrics` 2379, jobLabel
  `app.kubernetes.io/name` = `etcd`).
- prometheus-operator/prometheus-operator@6adcebc5076c34f4f55f8f5f7b1e528929373ac7:
  pkg/prometheus/promcfg.go (`generateServiceMonitorConfig`, `generatePodMonitorConfig`: the target
  labels above; `job` is the Service's name or its `jobLabel` label for a ServiceMonitor and
  `<namespace>/<name>` or the pod's `jobLabel` label for a PodMonitor; `endpoint` is the port's name);
  pkg/kubelet/controller.go (the kubelet Endpoints: port `https-metrics` 10250 on each node's
  InternalIP, target kind Node, labels `k8s-app` and `app.kubernetes.io/name` = `kubelet`);
  jsonnet/prometheus-operator/prometheus-operator.libsonnet (`--kubelet-service=kube-system/kubelet`);
  pkg/prometheus/promcfg.go (`generateProbeConfig`: a Probe's job is `probe/<namespace>/<name>`, or
  its `jobName`; each static target becomes the `target` parameter and `instance`, the prober's URL
  the address; the static labels are added, with `namespace` = the Probe's namespace unless they set
  it) and pkg/prometheus/testdata/ProbeStaticTargetsConfigGenerationWithJobName.golden.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Stack(StrEnum):
    """The stack that deploys Prometheus and the standard exporters (inventory: `monitoring.stack`)."""

    KUBE_PROMETHEUS_STACK = "kube-prometheus-stack"
    KUBE_PROMETHEUS = "kube-prometheus"


class Exporter(StrEnum):
    """The standard exporters the stacks deploy and the generated rules and dashboards read."""

    NODE_EXPORTER = "node-exporter"
    KUBE_STATE_METRICS = "kube-state-metrics"
    CADVISOR = "cadvisor"
    """The kubelet's embedded cAdvisor, at /metrics/cadvisor."""
    KUBELET = "kubelet"
    """The kubelet's own metrics at /metrics (volume stats among them)."""
    APISERVER = "apiserver"
    """kube-apiserver of a self-managed control plane."""
    ETCD = "etcd"
    KUBE_SCHEDULER = "kube-scheduler"
    KUBE_CONTROLLER_MANAGER = "kube-controller-manager"


class InstanceFrom(StrEnum):
    """Where a target's `instance` comes from."""

    HOST_IP = "host-ip"
    """`<host IP>:<port>`: a hostNetwork pod, or a Node endpoint."""
    POD_IP = "pod-ip"
    """`<pod IP>:<port>`."""
    NODE_NAME = "node-name"
    """The node's name, relabelled from `__meta_kubernetes_pod_node_name`."""


@dataclass(frozen=True)
class ScrapeTarget:
    """How one stack scrapes one exporter: the labels every series of it gets."""

    job: str
    namespace: str
    service: str
    endpoint: str
    container: str | None
    """None where the endpoint's target is a Node (the kubelet): there is no pod or container."""
    port: int
    instance_from: InstanceFrom
    honor_labels: bool = False
    static: Mapping[str, str] = field(default_factory=dict)
    """Further labels the ServiceMonitor's relabellings set (the kubelet's `metrics_path`)."""
    drop: frozenset[str] = frozenset()
    """Target labels the ServiceMonitor's relabellings drop (`labeldrop`)."""
    pod_prefix: str | None = None
    """The exporter's pod names start with this (DaemonSet or Deployment name, or a static pod's)."""
    address_only: bool = False
    """The Endpoints' addresses name no pod (the `kubernetes` Service's, which the apiserver writes
    itself; fixed IPs): the target has no `pod`, `container` or `node`."""


@dataclass(frozen=True)
class Node:
    """One node as the stacks' labels need it."""

    name: str
    host_ip: str


_KPS_RELEASE = "kube-prometheus-stack"
# Both stacks copy `__metrics_path__` into `metrics_path`: the kubelet serves both paths on one port.
_CADVISOR_PATH = "/metrics/cadvisor"
_KUBELET_PATH = "/metrics"


def _kubelet(service: str, metrics_path: str) -> ScrapeTarget:
    """One of the kubelet's two endpoints: both stacks scrape them alike, through a Service of
    their own naming, and tell them apart by `metrics_path` alone."""
    return ScrapeTarget(
        job="kubelet",
        namespace="kube-system",
        service=service,
        endpoint="https-metrics",
        container=None,
        port=10250,
        instance_from=InstanceFrom.HOST_IP,
        honor_labels=True,
        static={"metrics_path": metrics_path},
    )


def _apiserver() -> ScrapeTarget:
    """Both stacks scrape the `kubernetes` Service's endpoints alike: the apiservers' own addresses."""
    return ScrapeTarget(
        job="apiserver",
        namespace="default",
        service="kubernetes",
        endpoint="https",
        container=None,
        port=6443,
        instance_from=InstanceFrom.HOST_IP,
        address_only=True,
    )


def _static_pod(job: str, service: str, endpoint: str, component: str, port: int) -> ScrapeTarget:
    """A kubeadm static pod on the host network, found through a headless Service that selects its
    `component` label. Its manifest declares no container port, so the target has no `container`."""
    return ScrapeTarget(
        job=job,
        namespace="kube-system",
        service=service,
        endpoint=endpoint,
        container=None,
        port=port,
        instance_from=InstanceFrom.HOST_IP,
        pod_prefix=component,
    )


PROFILES: Mapping[Stack, Mapping[Exporter, ScrapeTarget]] = {
    Stack.KUBE_PROMETHEUS_STACK: {
        Exporter.NODE_EXPORTER: ScrapeTarget(
            job="node-exporter",
            namespace="monitoring",
            service=f"{_KPS_RELEASE}-prometheus-node-exporter",
            endpoint="http-metrics",
            container="node-exporter",
            port=9100,
            instance_from=InstanceFrom.HOST_IP,
            pod_prefix=f"{_KPS_RELEASE}-prometheus-node-exporter",
        ),
        Exporter.KUBE_STATE_METRICS: ScrapeTarget(
            job="kube-state-metrics",
            namespace="monitoring",
            service=f"{_KPS_RELEASE}-kube-state-metrics",
            endpoint="http",
            container="kube-state-metrics",
            port=8080,
            instance_from=InstanceFrom.POD_IP,
            honor_labels=True,
            pod_prefix=f"{_KPS_RELEASE}-kube-state-metrics",
        ),
        Exporter.CADVISOR: _kubelet(f"{_KPS_RELEASE}-kubelet", _CADVISOR_PATH),
        Exporter.KUBELET: _kubelet(f"{_KPS_RELEASE}-kubelet", _KUBELET_PATH),
        Exporter.APISERVER: _apiserver(),
        Exporter.ETCD: _static_pod("kube-etcd", f"{_KPS_RELEASE}-kube-etcd", "http-metrics", "etcd", 2381),
        Exporter.KUBE_SCHEDULER: _static_pod(
            "kube-scheduler", f"{_KPS_RELEASE}-kube-scheduler", "http-metrics", "kube-scheduler", 10259
        ),
        Exporter.KUBE_CONTROLLER_MANAGER: _static_pod(
            "kube-controller-manager",
            f"{_KPS_RELEASE}-kube-controller-manager",
            "http-metrics",
            "kube-controller-manager",
            10257,
        ),
    },
    Stack.KUBE_PROMETHEUS: {
        Exporter.NODE_EXPORTER: ScrapeTarget(
            job="node-exporter",
            namespace="monitoring",
            service="node-exporter",
            endpoint="https",
            container="kube-rbac-proxy",
            port=9100,
            instance_from=InstanceFrom.NODE_NAME,
            pod_prefix="node-exporter",
        ),
        Exporter.KUBE_STATE_METRICS: ScrapeTarget(
            job="kube-state-metrics",
            namespace="monitoring",
            service="kube-state-metrics",
            endpoint="https-main",
            container="kube-rbac-proxy-main",
            port=8443,
            instance_from=InstanceFrom.POD_IP,
            honor_labels=True,
            drop=frozenset({"pod", "service", "endpoint", "namespace"}),
            pod_prefix="kube-state-metrics",
        ),
        Exporter.CADVISOR: _kubelet("kubelet", _CADVISOR_PATH),
        Exporter.KUBELET: _kubelet("kubelet", _KUBELET_PATH),
        Exporter.APISERVER: _apiserver(),
        # Only with the static-etcd addon: fixed IPs, no pod.
        Exporter.ETCD: ScrapeTarget(
            job="etcd",
            namespace="kube-system",
            service="etcd",
            endpoint="metrics",
            container=None,
            port=2379,
            instance_from=InstanceFrom.HOST_IP,
            address_only=True,
        ),
        Exporter.KUBE_SCHEDULER: _static_pod(
            "kube-scheduler", "kube-scheduler-prometheus-discovery", "https-metrics", "kube-scheduler", 10259
        ),
        Exporter.KUBE_CONTROLLER_MANAGER: _static_pod(
            "kube-controller-manager",
            "kube-controller-manager-prometheus-discovery",
            "https-metrics",
            "kube-controller-manager",
            10257,
        ),
    },
}


def exporter_pod(stack: Stack, exporter: Exporter, node: Node) -> str | None:
    """The name of the exporter's pod on `node` (a stable made-up suffix per node, or the node's name
    for a static pod), or None for targets without a pod (Node targets, bare addresses).

    The suffix is a hash of the whole node name: a DaemonSet's pods on nodes `auth-1` and `api-1`
    must not share a name, or every join on (namespace, pod) would mix their nodes.
    """
    target = PROFILES[stack][exporter]
    if target.pod_prefix is None:
        return None
    if target.container is None:  # a static pod: the kubelet names its mirror pod `<name>-<node>`
        return f"{target.pod_prefix}-{node.name}"
    return f"{target.pod_prefix}-{hashlib.sha256(node.name.encode()).hexdigest()[:5]}"


def exporter_target_labels(
    stack: Stack, exporter: Exporter, node: Node, *, pod_ip: str = "10.244.0.10"
) -> dict[str, str]:
    """Every label `stack` puts on a series scraped from `exporter`'s target on `node`."""
    target = PROFILES[stack][exporter]
    match target.instance_from:
        case InstanceFrom.HOST_IP:
            instance = f"{node.host_ip}:{target.port}"
        case InstanceFrom.POD_IP:
            instance = f"{pod_ip}:{target.port}"
        case InstanceFrom.NODE_NAME:
            instance = node.name
    labels = {
        "job": target.job,
        "instance": instance,
        "namespace": target.namespace,
        "service": target.service,
        "endpoint": target.endpoint,
        **target.static,
    }
    pod = exporter_pod(stack, exporter, node)
    if pod is not None:
        labels["pod"] = pod
        if target.container is not None:
            labels["container"] = target.container
    elif not target.address_only:
        labels["node"] = node.name
    return {name: value for name, value in labels.items() if name not in target.drop}


def workload_target_labels(monitor: Mapping[str, Any]) -> dict[str, str | None]:
    """The target labels Prometheus Operator gives the first endpoint of a generated monitor.

    `monitor` is a ServiceMonitor or PodMonitor object as obsbundle writes it. A label maps to its
    value where the monitor decides it (`namespace`, `endpoint`, the PodMonitor's `job`, and every
    `replace` relabelling with a fixed replacement), and to None where the cluster does (`instance`,
    `pod`, `container`, and a ServiceMonitor's `job` and `service`: the Service's name).
    """
    spec = monitor["spec"]
    metadata = monitor["metadata"]
    selected = spec.get("namespaceSelector", {}).get("matchNames", [])
    namespace = selected[0] if len(selected) == 1 else metadata["namespace"]
    if monitor["kind"] == "PodMonitor":
        endpoint = spec["podMetricsEndpoints"][0]
        labels: dict[str, str | None] = {"job": f"{metadata['namespace']}/{metadata['name']}"}
    else:
        endpoint = spec["endpoints"][0]
        labels = {"job": None, "service": None}
    labels.update({"instance": None, "namespace": namespace, "pod": None, "container": None})
    if "port" in endpoint:
        labels["endpoint"] = endpoint["port"]
    for relabeling in endpoint.get("relabelings", []):
        action = relabeling.get("action", "replace")
        if action == "replace" and not relabeling.get("sourceLabels"):
            labels[relabeling["targetLabel"]] = relabeling["replacement"]
        else:
            raise ValueError(f"{metadata['name']}: relabelling {relabeling} is not a fixed replacement")
    return labels


def probe_target_labels(probe: Mapping[str, Any]) -> dict[str, str]:
    """The labels Prometheus Operator gives the series of a Probe's (first) static target: `job`
    (`probe/<namespace>/<name>`, or the Probe's `jobName`), `instance` (the target URL),
    `namespace` and the static labels. The same on both stacks: neither relabels Probes."""
    metadata, spec = probe["metadata"], probe["spec"]
    static = spec["targets"]["staticConfig"]
    return {
        "job": spec.get("jobName") or f"probe/{metadata['namespace']}/{metadata['name']}",
        "instance": static["static"][0],
        "namespace": metadata["namespace"],
        **static.get("labels", {}),
    }
