"""One Probe per external dependency, and the blackbox_exporter modules those Probes use.

Each dependency of the inventory (a third party's API, or the system's own public host) gets a
Prometheus Operator Probe in the monitoring namespace: blackbox_exporter (`monitoring.blackbox_exporter`)
requests the dependency's URL with its module every `interval`, and the series carry `system` and
`dependency` from the Probe's static labels, beside the `instance` (the URL) and `job`
(`probe/<namespace>/<name>`) that Prometheus Operator gives every Probe target (stacks.py).

A Probe whose module blackbox_exporter does not have gets HTTP 400 "Unknown module" for every
scrape: its target is down and no `probe_*` series exist, so no dependency alert could fire. The
modules are therefore generated too (`MODULES`, written as `blackbox/blackbox.yml` and as values of
the prometheus-blackbox-exporter Helm chart), and the loader refuses a module that is not among
them (checks.py).

The same scrape, without the Operator, is `probe_scrape_config`: the scrape configuration Prometheus
Operator derives from a Probe, written with the system's other scrape configs to
`prometheus/scrape-configs.yaml` for a Prometheus without the Operator (monitors/scrape_configs.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from obsbundle import naming
from obsbundle.documents import Document, kubernetes_document
from obsbundle.durations import format_duration, parse_duration, parse_duration_ms
from obsbundle.labels import object_labels
from obsbundle.model import Dependency, System
from obsbundle.settings import Settings

if TYPE_CHECKING:
    from obsbundle.config import Config

API_VERSION = "monitoring.coreos.com/v1"
PROBE_PATH = "/probe"
"""blackbox_exporter's probe endpoint, the Probe CRD's default `prober.path`."""

HTTP_2XX = "http_2xx"
HTTP_REACHABLE = "http_reachable"

REACHABLE_STATUS_CODES = tuple(range(200, 500))
"""Every answer below 500. A third party's API answers an unauthenticated GET with 401, 403 or
404: the host, its TLS and its HTTP server work, which is what a probe without credentials can
know. blackbox_exporter's `valid_status_codes` takes a list of integers and no ranges
(CONFIGURATION.md, `http_probe`), so the codes are listed one by one."""

MODULES: Mapping[str, Mapping[str, Any]] = {
    # As blackbox_exporter's own example configuration defines it (prometheus/blackbox_exporter@
    # e39d7d415684f31b907dce55201a435fe2c2cf0d:blackbox.yml): any 2xx, after redirects.
    HTTP_2XX: {"prober": "http", "http": {"preferred_ip_protocol": "ip4"}},
    # No `timeout`: blackbox_exporter then stops half a second before the Probe's scrape timeout
    # (prober/handler.go, getTimeout), so a slow answer is measured rather than cut off at 5 s.
    HTTP_REACHABLE: {
        "prober": "http",
        "http": {
            "valid_status_codes": list(REACHABLE_STATUS_CODES),
            "follow_redirects": True,
            "preferred_ip_protocol": "ip4",
            # The certificate is verified: an expired or wrong certificate fails the probe, as it
            # fails every client of the dependency.
            "tls_config": {"insecure_skip_verify": False},
        },
    },
}
"""The modules a dependency may name; blackbox_exporter must have each one the Probes use."""

BLACKBOX_CONFIG = "blackbox/blackbox.yml"
"""blackbox_exporter's `--config.file`."""
BLACKBOX_HELM_VALUES = "blackbox/helm-values.yaml"
"""The same modules as values of the prometheus-blackbox-exporter chart (`config.modules`)."""

MIN_SCRAPE_TIMEOUT_S = 10
"""Prometheus's default scrape timeout: no probe gets less."""


def generate_probes(system: System, config: Config) -> Iterator[Document]:
    """A Probe per dependency (by name), then the blackbox_exporter configuration they need;
    nothing for a system without dependencies."""
    if not system.dependencies:
        return
    probes = [probe(system, dependency, config.output) for dependency in sorted_dependencies(system)]
    for obj in probes:
        yield kubernetes_document(obj)
    yield Document(BLACKBOX_CONFIG, {"modules": modules_used(system)})
    yield Document(BLACKBOX_HELM_VALUES, {"config": {"modules": modules_used(system)}})


def sorted_dependencies(system: System) -> list[Dependency]:
    return sorted(system.dependencies, key=lambda dependency: dependency.name)


def modules_used(system: System) -> dict[str, Any]:
    """http_2xx (blackbox_exporter's own default) and every module a dependency of the system names."""
    names = {HTTP_2XX} | {dependency.module for dependency in system.dependencies}
    return {name: MODULES[name] for name in sorted(names)}


def probe_labels(system: System, dependency: Dependency) -> dict[str, str]:
    """The static labels every series of the dependency's probe carries."""
    return {naming.SYSTEM_LABEL: system.name, naming.DEPENDENCY_LABEL: dependency.name}


def latency_alert_seconds(dependency: Dependency) -> Decimal:
    return Decimal(parse_duration_ms(dependency.latency_alert)) / 1000


def scrape_timeout_seconds(dependency: Dependency) -> int:
    """Twice the latency alert, at least Prometheus's default 10 s and at most the interval: a probe
    slower than `latency_alert` still ends with a result (slow) rather than a scrape timeout."""
    doubled = math.ceil(2 * parse_duration_ms(dependency.latency_alert) / 1000)
    return min(parse_duration(dependency.interval), max(MIN_SCRAPE_TIMEOUT_S, doubled))


def probe(system: System, dependency: Dependency, settings: Settings) -> dict[str, Any]:
    """The Probe object of one dependency, in the system's monitoring namespace."""
    return {
        "apiVersion": API_VERSION,
        "kind": "Probe",
        "metadata": {
            "name": dependency.name,
            "namespace": system.monitoring.namespace,
            "labels": {**object_labels(system, settings), "app.kubernetes.io/component": "probe"},
        },
        "spec": {
            "prober": {"url": system.monitoring.blackbox_exporter, "path": PROBE_PATH},
            "module": dependency.module,
            "interval": dependency.interval,
            "scrapeTimeout": format_duration(scrape_timeout_seconds(dependency)),
            "targets": {
                "staticConfig": {"static": [dependency.url], "labels": probe_labels(system, dependency)},
            },
        },
    }


def probe_scrape_config(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The Prometheus scrape configuration Prometheus Operator derives from a Probe with static
    targets and no jobName (prometheus-operator@6adcebc5076c34f4f55f8f5f7b1e528929373ac7:
    pkg/prometheus/promcfg.go, generateProbeConfig; testdata/ProbeStaticTargetsConfigGenerationWithJobName.golden):
    job `probe/<namespace>/<name>`, the target as the `target` parameter and as `instance`, the
    prober as the address, the static labels plus `namespace`. The Operator's sharding relabellings
    are left out: they keep every target of an unsharded Prometheus."""
    metadata, spec = obj["metadata"], obj["spec"]
    static = spec["targets"]["staticConfig"]
    return {
        "job_name": f"probe/{metadata['namespace']}/{metadata['name']}",
        "honor_timestamps": True,
        "metrics_path": spec["prober"]["path"],
        "scrape_interval": spec["interval"],
        "scrape_timeout": spec["scrapeTimeout"],
        "params": {"module": [spec["module"]]},
        "static_configs": [
            {"targets": list(static["static"]), "labels": {"namespace": metadata["namespace"], **static["labels"]}}
        ],
        "relabel_configs": [
            {"source_labels": ["__address__"], "target_label": "__param_target"},
            {"source_labels": ["__param_target"], "target_label": "instance"},
            {"target_label": "__address__", "replacement": spec["prober"]["url"]},
        ],
    }
