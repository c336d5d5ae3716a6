"""A small Kubernetes cluster as data, and the targets Prometheus's Kubernetes discovery finds in it.

Debian's Prometheus is built without Kubernetes service discovery (its NEWS.Debian, 1.5.0+ds-1:
"Kubernetes support has been completely removed"), so a test cannot point it at an API server. The
scrape configs' relabelling, the thing under test, runs in it all the same: `discovered_targets`
gives the label sets Prometheus 2.42's discovery would hand the relabelling for the cluster's
objects, and the tests feed them to a real Prometheus through `file_sd_configs`. `api_objects`
gives the same cluster as the Kubernetes API's list responses, for a real Kubernetes discovery
(VictoriaMetrics') to check those label sets against.

The label sets follow prometheus/prometheus@v2.42.0: discovery/kubernetes/endpoints.go
(buildEndpoints: a target per Endpoints address and port, with the Service's and the pod's
labels, the container whose port number is the endpoint's, then a target per container port of a
seen pod that no endpoint port covered), pod.go (buildPod, podLabels: a target per container
port of a pod with an IP), service.go (serviceLabels) and kubernetes.go (`__meta_kubernetes_`
prefix, `labelpresent` = "true", label names sanitised to [a-zA-Z0-9_]).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

_META = "__meta_kubernetes_"
_INVALID = re.compile(r"[^a-zA-Z0-9_]")


@dataclass(frozen=True)
class ContainerPort:
    number: int
    name: str = ""


@dataclass(frozen=True)
class Container:
    name: str
    ports: tuple[ContainerPort, ...]
    image: str = "registry.example/app:1"


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    ip: str
    labels: Mapping[str, str]
    containers: tuple[Container, ...]
    phase: str = "Running"
    node: str = "node-1"


@dataclass(frozen=True)
class ServicePort:
    name: str
    port: int
    target_port: int


@dataclass(frozen=True)
class Service:
    """A Service whose Endpoints list every pod its selector matches (as the endpoints controller
    writes them), on each port's target port."""

    namespace: str
    name: str
    labels: Mapping[str, str]
    selector: Mapping[str, str]
    ports: tuple[ServicePort, ...]


@dataclass(frozen=True)
class Cluster:
    services: tuple[Service, ...] = ()
    pods: tuple[Pod, ...] = ()

    def selected_pods(self, service: Service) -> list[Pod]:
        """The pods of the Service's Endpoints: same namespace, selector matched, with an IP, not
        finished (the endpoints controller leaves out Failed and Succeeded pods)."""
        return [
            pod
            for pod in self.pods
            if pod.namespace == service.namespace
            and all(pod.labels.get(name) == value for name, value in service.selector.items())
            and pod.phase not in {"Failed", "Succeeded"}
        ]


@dataclass(frozen=True)
class Target:
    """One discovered target: its address and the meta labels the relabelling reads."""

    address: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def file_sd(self) -> dict[str, Any]:
        return {"targets": [self.address], "labels": dict(self.labels)}


def discovered_targets(cluster: Cluster, role: str, namespaces: Iterable[str]) -> list[Target]:
    """What Prometheus 2.42's Kubernetes discovery finds with `role` (endpoints or pod) in `namespaces`."""
    names = set(namespaces)
    if role == "endpoints":
        return [t for service in cluster.services if service.namespace in names for t in _endpoints(cluster, service)]
    if role == "pod":
        return [t for pod in cluster.pods if pod.namespace in names for t in _pod_targets(pod)]
    raise ValueError(f"role {role} is not modelled")


def _sanitized(name: str) -> str:
    return _INVALID.sub("_", name)


def _object_labels(kind: str, labels: Mapping[str, str]) -> dict[str, str]:
    result = {}
    for name, value in labels.items():
        result[f"{_META}{kind}_label_{_sanitized(name)}"] = value
        result[f"{_META}{kind}_labelpresent_{_sanitized(name)}"] = "true"
    return result


def _pod_labels(pod: Pod) -> dict[str, str]:
    """podLabels, less the uid and controller (these objects have neither)."""
    return {
        f"{_META}pod_name": pod.name,
        f"{_META}pod_ip": pod.ip,
        f"{_META}pod_ready": "true" if pod.phase == "Running" else "false",
        f"{_META}pod_phase": pod.phase,
        f"{_META}pod_node_name": pod.node,
        f"{_META}pod_host_ip": "",
        f"{_META}pod_uid": "",
        **_object_labels("pod", pod.labels),
    }


def _container_labels(container: Container, port: ContainerPort) -> dict[str, str]:
    return {
        f"{_META}pod_container_name": container.name,
        f"{_META}pod_container_image": container.image,
        f"{_META}pod_container_port_name": port.name,
        f"{_META}pod_container_port_number": str(port.number),
        f"{_META}pod_container_port_protocol": "TCP",
    }


def _endpoints(cluster: Cluster, service: Service) -> list[Target]:
    group = {
        f"{_META}namespace": service.namespace,
        f"{_META}endpoints_name": service.name,
        f"{_META}service_name": service.name,
        **_object_labels("service", service.labels),
    }
    targets = []
    covered: dict[str, set[int]] = {}
    pods = cluster.selected_pods(service)
    for port in service.ports:
        for pod in pods:
            labels = {
                **group,
                f"{_META}endpoint_port_name": port.name,
                f"{_META}endpoint_port_protocol": "TCP",
                f"{_META}endpoint_ready": "true",
                f"{_META}endpoint_address_target_kind": "Pod",
                f"{_META}endpoint_address_target_name": pod.name,
                f"{_META}endpoint_node_name": pod.node,
                **_pod_labels(pod),
            }
            for container in pod.containers:
                matching = [p for p in container.ports if p.number == port.target_port]
                if matching:
                    labels.update(_container_labels(container, matching[0]))
                    break
            covered.setdefault(pod.name, set()).add(port.target_port)
            targets.append(Target(f"{pod.ip}:{port.target_port}", labels))
    for pod in pods:
        for container in pod.containers:
            for cport in container.ports:
                if cport.number not in covered[pod.name]:
                    labels = {**group, **_pod_labels(pod), **_container_labels(container, cport)}
                    targets.append(Target(f"{pod.ip}:{cport.number}", labels))
    return targets


def _pod_targets(pod: Pod) -> list[Target]:
    group = {**_pod_labels(pod), f"{_META}namespace": pod.namespace}
    return [
        Target(
            f"{pod.ip}:{port.number}",
            {**group, **_container_labels(container, port), f"{_META}pod_container_init": "false"},
        )
        for container in pod.containers
        for port in container.ports
    ]


def api_objects(cluster: Cluster) -> dict[str, list[dict[str, Any]]]:
    """The cluster as the Kubernetes API lists it: `services`, `endpoints` and `pods` → items."""
    return {
        "services": [_service_object(service) for service in cluster.services],
        "endpoints": [_endpoints_object(cluster, service) for service in cluster.services],
        "pods": [_pod_object(pod) for pod in cluster.pods],
    }


def _metadata(namespace: str, name: str, labels: Mapping[str, str]) -> dict[str, Any]:
    return {
        "namespace": namespace,
        "name": name,
        "labels": dict(labels),
        "uid": f"{namespace}-{name}",
        "resourceVersion": "1",
    }


def _service_object(service: Service) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(service.namespace, service.name, service.labels),
        "spec": {
            "selector": dict(service.selector),
            "ports": [
                {"name": p.name, "port": p.port, "targetPort": p.target_port, "protocol": "TCP"} for p in service.ports
            ],
        },
    }


def _endpoints_object(cluster: Cluster, service: Service) -> dict[str, Any]:
    pods = cluster.selected_pods(service)
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": _metadata(service.namespace, service.name, {}),
        "subsets": [
            {
                "addresses": [
                    {
                        "ip": pod.ip,
                        "nodeName": pod.node,
                        "targetRef": {"kind": "Pod", "namespace": pod.namespace, "name": pod.name},
                    }
                    for pod in pods
                ],
                "ports": [{"name": p.name, "port": p.target_port, "protocol": "TCP"} for p in service.ports],
            }
        ]
        if pods
        else [],
    }


def _pod_object(pod: Pod) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _metadata(pod.namespace, pod.name, pod.labels),
        "spec": {
            "nodeName": pod.node,
            "containers": [
                {
                    "name": c.name,
                    "image": c.image,
                    "ports": [
                        {"containerPort": p.number, "protocol": "TCP", **({"name": p.name} if p.name else {})}
                        for p in c.ports
                    ],
                }
                for c in pod.containers
            ],
        },
        "status": {
            "phase": pod.phase,
            "podIP": pod.ip,
            "conditions": [{"type": "Ready", "status": "True" if pod.phase == "Running" else "False"}],
        },
    }
