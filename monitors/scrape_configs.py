"""The scrape configuration Prometheus Operator derives from each generated monitor, for a Prometheus
without the Operator.

The rules and dashboards select a workload by `{namespace, service}` and read `system` on the pool &
queue exporter's series: labels the generated ServiceMonitors, PodMonitors and Probes set. A plain
Prometheus (`--format prometheus`) reads no monitor objects, so the same scrapes are written as
`scrape_configs`: for every monitor, what Prometheus Operator would put in the configuration it
generates (prometheus-operator@6adcebc5076c34f4f55f8f5f7b1e528929373ac7: pkg/prometheus/promcfg.go,
generateServiceMonitorConfig, generatePodMonitorConfig; testdata/ServiceMonitorObjectWithMatchLabelSelector.golden
and PodMonitorPhaseFilter.golden for the shape), and for every Probe `probe_scrape_config`
(monitors/probes.py). Each target therefore gets the labels `stacks.workload_target_labels` states.

One file per system, `prometheus/scrape-configs.yaml`, holds them all: a Prometheus takes a whole
file (`scrape_config_files`, from Prometheus 2.43) or a list to paste under `scrape_configs`, and one
system's jobs are never split across files that could be included apart. It is written for the
prometheus format only: with the Operator, the Operator generates these from the objects, and a
copy loaded beside them (as additional scrape configs) would scrape every target twice.

Left out, as in `probe_scrape_config`: the Operator's sharding relabellings (they keep every target
of an unsharded Prometheus, and read `$(SHARD)`, which only the Operator's config reloader
substitutes), and `api_server` (Prometheus in a cluster finds its API server and service account
token itself; it needs RBAC to list and watch endpoints, services and pods in the namespaces below).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from itertools import chain
from typing import TYPE_CHECKING, Any

from obsbundle.documents import Document
from obsbundle.monitors.probes import generate_probes, probe_scrape_config
from obsbundle.monitors.workloads import generate_monitors
from obsbundle.settings import OutputFormat

if TYPE_CHECKING:
    from obsbundle.config import Config
    from obsbundle.model import System

SCRAPE_CONFIGS = "prometheus/scrape-configs.yaml"

ENDPOINTS_ROLE = "endpoints"
"""The Operator's default service discovery role for ServiceMonitors (`serviceDiscoveryRole`
unset); Prometheus 2.42 has `endpointslice` too, and the labels would be the same."""
POD_ROLE = "pod"

# The monitor fields this module translates. A field outside them (TLS, authorization, a label
# selector expression…) would change the scrape, so it is refused rather than silently left out.
_SPEC_FIELDS = frozenset({"selector", "namespaceSelector", "jobLabel", "endpoints", "podMetricsEndpoints"})
_SELECTOR_FIELDS = frozenset({"matchLabels"})
_NAMESPACE_SELECTOR_FIELDS = frozenset({"matchNames"})
_ENDPOINT_FIELDS = frozenset(
    {"port", "portNumber", "path", "scheme", "interval", "scrapeTimeout", "honorLabels", "relabelings"}
)
_RELABELING_FIELDS = ("sourceLabels", "separator", "targetLabel", "regex", "modulus", "replacement", "action")
"""The Operator's order of a relabelling's fields (generateRelabelConfig)."""

_INVALID_LABEL_CHARACTER = re.compile(r"[^a-zA-Z0-9_]")


def generate_scrape_configs(system: System, config: Config) -> Iterator[Document]:
    """For the prometheus format, the scrape configs of every monitor and Probe of the system, in
    the order their generators yield them; nothing for the operator format."""
    if config.output.output_format is not OutputFormat.PROMETHEUS:
        return
    objects = [
        document.content
        for document in chain(generate_monitors(system, config), generate_probes(system, config))
        if document.kubernetes
    ]
    configs = [scrape_config for obj in objects for scrape_config in scrape_configs(obj)]
    if configs:
        yield Document(SCRAPE_CONFIGS, {"scrape_configs": configs})


def scrape_configs(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The scrape configs Prometheus Operator generates for one ServiceMonitor, PodMonitor or Probe
    (one per endpoint of a monitor). Raises ValueError for another kind, or for a field this module
    does not translate."""
    match obj["kind"]:
        case "ServiceMonitor":
            _check_spec(obj, "endpoints")
            return [service_monitor_config(obj, endpoint, i) for i, endpoint in enumerate(obj["spec"]["endpoints"])]
        case "PodMonitor":
            _check_spec(obj, "podMetricsEndpoints")
            return [
                pod_monitor_config(obj, endpoint, i) for i, endpoint in enumerate(obj["spec"]["podMetricsEndpoints"])
            ]
        case "Probe":
            return [probe_scrape_config(obj)]
        case kind:
            raise ValueError(f"{obj['metadata']['name']}: no scrape config for a {kind}")


def service_monitor_config(monitor: Mapping[str, Any], endpoint: Mapping[str, Any], index: int) -> dict[str, Any]:
    """generateServiceMonitorConfig for endpoint `index` of a ServiceMonitor: the Endpoints of the
    Services whose labels the selector matches, on the named Service port."""
    metadata, spec = monitor["metadata"], monitor["spec"]
    port = endpoint.get("port")
    if not isinstance(port, str):
        raise ValueError(f"{metadata['name']}: a ServiceMonitor endpoint selects its Service port by name")
    relabelings: list[dict[str, Any]] = [
        _JOB_NAME_KEPT,
        *_selector_keeps("service", spec["selector"]),
        {"action": "keep", "source_labels": ["__meta_kubernetes_endpoint_port_name"], "regex": port},
        *(
            {
                "source_labels": [
                    "__meta_kubernetes_endpoint_address_target_kind",
                    "__meta_kubernetes_endpoint_address_target_name",
                ],
                "separator": ";",
                "regex": f"{kind};(.*)",
                "replacement": "${1}",
                "target_label": label,
            }
            for kind, label in (("Node", "node"), ("Pod", "pod"))
        ),
        _copy("__meta_kubernetes_namespace", "namespace"),
        _copy("__meta_kubernetes_service_name", "service"),
        _copy("__meta_kubernetes_pod_name", "pod"),
        _copy("__meta_kubernetes_pod_container_name", "container"),
        _RUNNING_ONLY,
        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "job", "replacement": "${1}"},
        *_job_label("service", spec),
        {"target_label": "endpoint", "replacement": port},
        *_user_relabelings(metadata["name"], endpoint),
    ]
    return _config("serviceMonitor", monitor, index, role=ENDPOINTS_ROLE, endpoint=endpoint, relabelings=relabelings)


def pod_monitor_config(monitor: Mapping[str, Any], endpoint: Mapping[str, Any], index: int) -> dict[str, Any]:
    """generatePodMonitorConfig for endpoint `index` of a PodMonitor: the running pods whose labels
    the selector matches, on the named (or numbered) container port."""
    metadata, spec = monitor["metadata"], monitor["spec"]
    port = endpoint.get("port")
    if port is not None:
        port_keep = {"action": "keep", "source_labels": ["__meta_kubernetes_pod_container_port_name"], "regex": port}
    else:
        port_keep = {
            "action": "keep",
            "source_labels": ["__meta_kubernetes_pod_container_port_number"],
            "regex": str(endpoint["portNumber"]),
        }
    relabelings: list[dict[str, Any]] = [
        _JOB_NAME_KEPT,
        _RUNNING_ONLY,
        *_selector_keeps("pod", spec["selector"]),
        port_keep,
        _copy("__meta_kubernetes_namespace", "namespace"),
        _copy("__meta_kubernetes_pod_container_name", "container"),
        _copy("__meta_kubernetes_pod_name", "pod"),
        {"target_label": "job", "replacement": f"{metadata['namespace']}/{metadata['name']}"},
        *_job_label("pod", spec),
        # A numbered port gives no `endpoint`: the Operator sets it from a port name only.
        *([{"target_label": "endpoint", "replacement": port}] if port is not None else []),
        *_user_relabelings(metadata["name"], endpoint),
    ]
    return _config("podMonitor", monitor, index, role=POD_ROLE, endpoint=endpoint, relabelings=relabelings)


_JOB_NAME_KEPT = {"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"}
"""The Operator keeps the scrape config's job name in a temporary label (initRelabelings)."""

_RUNNING_ONLY = {"action": "drop", "source_labels": ["__meta_kubernetes_pod_phase"], "regex": "(Failed|Succeeded)"}
"""A finished pod's address may be reused: the Operator drops its targets (`filterRunning`, default true)."""


def _config(
    prefix: str,
    monitor: Mapping[str, Any],
    index: int,
    *,
    role: str,
    endpoint: Mapping[str, Any],
    relabelings: list[dict[str, Any]],
) -> dict[str, Any]:
    """The scrape config's fields in the Operator's order around the relabellings."""
    metadata = monitor["metadata"]
    config: dict[str, Any] = {
        "job_name": f"{prefix}/{metadata['namespace']}/{metadata['name']}/{index}",
        "honor_labels": bool(endpoint.get("honorLabels", False)),
        "kubernetes_sd_configs": [{"role": role, "namespaces": {"names": _namespaces(monitor)}}],
    }
    for field, key in (
        ("interval", "scrape_interval"),
        ("scrapeTimeout", "scrape_timeout"),
        ("path", "metrics_path"),
        ("scheme", "scheme"),
    ):
        if endpoint.get(field):
            config[key] = endpoint[field]
    config["relabel_configs"] = relabelings
    return config


def _namespaces(monitor: Mapping[str, Any]) -> list[str]:
    """getNamespacesFromNamespaceSelector: the selector's names, or the monitor's own namespace."""
    names: list[str] = monitor["spec"].get("namespaceSelector", {}).get("matchNames", [])
    return list(names) or [monitor["metadata"]["namespace"]]


def _selector_keeps(role: str, selector: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One keep per selected label, sorted by name: the label is present and its value matches.
    The value enters the regex as written, as the Operator writes it (Kubernetes label values hold
    letters, digits, '-', '_' and '.', and '.' matches itself among others)."""
    match_labels: Mapping[str, str] = selector.get("matchLabels", {})
    return [
        {
            "action": "keep",
            "source_labels": [
                f"__meta_kubernetes_{role}_label_{_sanitized(name)}",
                f"__meta_kubernetes_{role}_labelpresent_{_sanitized(name)}",
            ],
            "regex": f"({match_labels[name]});true",
        }
        for name in sorted(match_labels)
    ]


def _job_label(role: str, spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """`jobLabel`: the job is the Service's (or pod's) value of that label where it has one."""
    if not spec.get("jobLabel"):
        return []
    return [
        {
            "source_labels": [f"__meta_kubernetes_{role}_label_{_sanitized(spec['jobLabel'])}"],
            "target_label": "job",
            "regex": "(.+)",
            "replacement": "${1}",
        }
    ]


def _user_relabelings(name: str, endpoint: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The endpoint's own relabellings in Prometheus's spelling (generateRelabelConfig)."""
    translated = []
    for relabeling in endpoint.get("relabelings", []):
        _refuse_unknown(name, "relabelling", relabeling, frozenset(_RELABELING_FIELDS))
        item: dict[str, Any] = {}
        for field in _RELABELING_FIELDS:
            if field in relabeling:
                value = relabeling[field]
                item[_snake_case(field)] = value.lower() if field == "action" else value
        translated.append(item)
    return translated


def _copy(source: str, target: str) -> dict[str, Any]:
    return {"source_labels": [source], "target_label": target}


def _sanitized(label: str) -> str:
    """sanitizeLabelName: a Kubernetes label name as part of a Prometheus label name."""
    return _INVALID_LABEL_CHARACTER.sub("_", label)


def _snake_case(field: str) -> str:
    return re.sub(r"([A-Z])", lambda upper: f"_{upper.group(1).lower()}", field)


def _check_spec(monitor: Mapping[str, Any], endpoints_key: str) -> None:
    name, spec = monitor["metadata"]["name"], monitor["spec"]
    _refuse_unknown(name, "spec", spec, _SPEC_FIELDS)
    _refuse_unknown(name, "selector", spec["selector"], _SELECTOR_FIELDS)
    _refuse_unknown(name, "namespaceSelector", spec.get("namespaceSelector", {}), _NAMESPACE_SELECTOR_FIELDS)
    for endpoint in spec[endpoints_key]:
        _refuse_unknown(name, "endpoint", endpoint, _ENDPOINT_FIELDS)


def _refuse_unknown(name: str, where: str, fields: Mapping[str, Any], known: Collection[str]) -> None:
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise ValueError(
            f"{name}: the scrape configs do not translate the {where} field(s) {', '.join(unknown)}: "
            "add them to monitors/scrape_configs.py"
        )
