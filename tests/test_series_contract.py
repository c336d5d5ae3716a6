"""Every series the generated rules and dashboards read exists in what real exporters expose.

Under each stack profile, the exposition fixtures of the standard exporters are given the target
labels that stack's Prometheus adds (stacks.exporter_target_labels, for the nodes of the kube-state-metrics
fixture), each service's instrumentation fixture the labels its generated monitor adds, and every
target its `up`. Every vector selector of every generated rule and every dashboard query, for the
default fleet and the test systems, must then select at least one of those series from the
component providers.source_of names, or be a series a generated rule writes with labels that rule
can give it. Failures are collected per profile into one message: where (rule or panel), the
selector, and the nearest real series.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from difflib import get_close_matches
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from obsbundle.bundle import dashboards_of
from obsbundle.config import DEFAULT_CONFIG
from obsbundle.dashboards.variables import opening_values
from obsbundle.dashboards.walk import expressions
from obsbundle.loader import load_inventory
from obsbundle.model import System
from obsbundle.monitors.argo_rollouts import rollouts_monitor
from obsbundle.monitors.cert_manager import cert_manager_monitor
from obsbundle.monitors.datastores import datastore_monitor, exported_datastores
from obsbundle.monitors.probes import probe
from obsbundle.monitors.workloads import exporter_monitor, needs_exporter, workload_monitor
from obsbundle.providers import DATASTORE_EXPORTERS, Provider, markdown_table, source_of
from obsbundle.rules import rule_groups
from obsbundle.rules.sli import at_window
from obsbundle.settings import Settings
from obsbundle.stacks import (
    PROFILES,
    Exporter,
    Node,
    Stack,
    exporter_target_labels,
    probe_target_labels,
    workload_target_labels,
)
from tests.support.exposition import (
    ANY,
    INSTRUMENTATION_FIXTURES,
    Recorded,
    Selector,
    Series,
    as_entities,
    instantiate,
    iter_rules,
    load,
    matches_any,
    nearest,
    recorded_series,
    selectors,
    up,
)

REPO = Path(__file__).resolve().parent.parent
SYSTEM_FILES = (
    REPO / "inventory",
    REPO / "tests" / "fixtures" / "inventory" / "shop.yaml",
    *sorted((REPO / "tests" / "rules" / "fixtures").glob("*.yaml")),
)

ALLOWLISTED_LABEL = "label_node_role"
"""kube_node_labels in the fixture as served with --metric-labels-allowlist=nodes=[node-role]."""

THIRD_PARTY_EXPORTERS = (Provider.KAFKA_EXPORTER, Provider.ARGOCD)
"""Scraped by their own charts' ServiceMonitors: every target label is there, with the cluster's values."""

_THIRD_PARTY_TARGET: Mapping[str, str | None] = dict.fromkeys(
    ("job", "instance", "namespace", "service", "pod", "container", "endpoint")
)


@cache
def systems() -> tuple[System, ...]:
    return tuple(system for path in SYSTEM_FILES for system in load_inventory([path]).systems)


@cache
def entities(folder: str) -> tuple[Series, ...]:
    return tuple(as_entities(load(folder), folder))


@cache
def nodes() -> tuple[Node, ...]:
    """Two nodes of the kube-state-metrics fixture, named and addressed as it has them."""
    found = sorted(
        (labels["node"], labels["internal_ip"])
        for series in load(Exporter.KUBE_STATE_METRICS.value)
        if series.name == "kube_node_info"
        for labels in [series.label_map]
    )
    return tuple(Node(name, host_ip) for name, host_ip in found[:2])


def stack_series(stack: Stack, system: System) -> dict[Provider, list[Series]]:
    """The standard exporters' series and their `up`, as `stack` stores them for `system`'s cluster."""
    scraped: dict[Provider, list[Series]] = {Provider.PROMETHEUS: []}
    for exporter, target in PROFILES[stack].items():
        on = nodes()[:1] if exporter is Exporter.KUBE_STATE_METRICS else nodes()
        exposed = [_configured(one, system) for one in entities(exporter.value)]
        for node in on:
            labels = exporter_target_labels(stack, exporter, node)
            scraped.setdefault(Provider(exporter.value), []).extend(
                instantiate(one, labels, honor_labels=target.honor_labels) for one in exposed
            )
            scraped[Provider.PROMETHEUS].append(up(labels))
    for provider in THIRD_PARTY_EXPORTERS:
        scraped[provider] = [instantiate(one, _THIRD_PARTY_TARGET, honor_labels=False) for one in entities(provider)]
        scraped[Provider.PROMETHEUS].append(up(_THIRD_PARTY_TARGET))
    return scraped


def _configured(series: Series, system: System) -> Series:
    """kube_node_labels with the system's pool label, as the allowlist providers.py asks for gives it."""
    if series.name != "kube_node_labels":
        return series
    labels = series.label_map
    if ALLOWLISTED_LABEL in labels:
        labels[system.node_pool_label_name] = labels.pop(ALLOWLISTED_LABEL)
    return Series.of(series.name, labels)


def _with_inventory_buckets(
    exposed: Sequence[Series], folder: str, buckets: tuple[float, ...] | None
) -> Sequence[Series]:
    """The fixture's series as a client configured with the inventory's `histogram_buckets` publishes
    them (the client setting docs/rules.md names): each `_bucket` series once per listed boundary,
    spelled as the library spells `le` (Go writes `2`, Python and Java `2.0`), plus `+Inf`."""
    if buckets is None:
        return exposed
    go_spelling = folder == "go-grpc-prometheus"
    spelled = [str(int(b)) if go_spelling and float(b).is_integer() else repr(float(b)) for b in buckets]
    kept: dict[Series, None] = {}
    for one in exposed:
        labels = one.label_map
        if not one.name.endswith("_bucket") or labels.get("le") == "+Inf":
            kept[one] = None
            continue
        for le in spelled:
            kept[Series.of(one.name, {**labels, "le": le})] = None
    return list(kept)


def monitored_series(system: System) -> dict[Provider, list[Series]]:
    """Each service's instrumentation, each datastore's standard exporter and the pool & queue
    exporter, with the labels of the monitors obsbundle generates for them."""
    settings = Settings()
    scraped: dict[Provider, list[Series]] = {Provider.SERVICE: [], Provider.PROMETHEUS: []}
    targets: list[tuple[Provider, Sequence[Series], dict[str, Any]]] = []
    for service in system.scraped_services:
        assert service.metrics is not None
        folder = INSTRUMENTATION_FIXTURES.get(service.metrics.instrumentation)
        if folder is not None:
            monitor = workload_monitor(system, service, settings)
            exposed = _with_inventory_buckets(entities(folder), folder, service.metrics.histogram_buckets)
            targets.append((Provider.SERVICE, exposed, monitor))
    for store in exported_datastores(system):
        provider = DATASTORE_EXPORTERS[store.kind]
        targets.append((provider, entities(provider.value), datastore_monitor(system, store, settings)))
    rollouts = rollouts_monitor(system, settings)
    if rollouts is not None:
        targets.append((Provider.ARGO_ROLLOUTS, entities(Provider.ARGO_ROLLOUTS.value), rollouts))
    cert_manager = cert_manager_monitor(system, settings)
    if cert_manager is not None:
        targets.append((Provider.CERT_MANAGER, entities(Provider.CERT_MANAGER.value), cert_manager))
    if needs_exporter(system):
        exporter = exporter_monitor(system, settings)
        targets.append((Provider.POOL_QUEUE_EXPORTER, entities("obsbundle-exporter"), exporter))
    for provider, exposed, monitor in targets:
        labels = workload_target_labels(monitor)
        honor = bool(next(iter(monitor["spec"].get("endpoints") or monitor["spec"]["podMetricsEndpoints"])).get(
            "honorLabels", False
        ))
        scraped.setdefault(provider, []).extend(
            instantiate(one, labels, honor_labels=honor) for one in exposed
        )
        scraped[Provider.PROMETHEUS].append(up(labels))
    # Each dependency's Probe: blackbox_exporter's probe exposition with the labels Prometheus
    # Operator gives the Probe's target (no honorLabels: the exposition has no labels of its own).
    for dependency in system.dependencies:
        target = probe_target_labels(probe(system, dependency, settings))
        scraped.setdefault(Provider.BLACKBOX_EXPORTER, []).extend(
            instantiate(one, target, honor_labels=False) for one in entities(Provider.BLACKBOX_EXPORTER.value)
        )
        scraped[Provider.PROMETHEUS].append(up(target))
    return scraped


@dataclass(frozen=True)
class Read:
    """One selector of one rule or dashboard query of one system."""

    system: str
    where: str
    expr: str
    selector: Selector


def inventory_metrics(system: System) -> frozenset[str]:
    """Metrics the inventory itself names (custom SLIs' queries): the user's, not an exporter's."""
    queries = [
        query
        for service in system.services
        for slo in service.slos
        for query in (slo.good_query, slo.bad_query, slo.total_query, slo.error_ratio_query, slo.gauge_query)
        if query
    ]
    return frozenset(selector.name for query in queries for selector in selectors(at_window(query)) if selector.name)


def reads(system: System) -> Iterator[Read]:
    """Every selector of the system's generated rules and dashboard queries (variables as Grafana
    opens the dashboard, over an hour scraped every 30 s), but those of the inventory's own queries."""
    own = inventory_metrics(system)
    groups = [group.to_dict() for group in rule_groups(system, DEFAULT_CONFIG.rules)]
    located = [(where, rule["expr"]) for where, rule in iter_rules(groups)]
    for board in dashboards_of(system, DEFAULT_CONFIG):
        values = opening_values(board, scrape_interval=30, range_seconds=3600)
        located += [(f"dashboard {where}", expr) for where, expr in expressions(board, values)]
    for where, expr in located:
        for selector in selectors(expr):
            if selector.name not in own:
                yield Read(system.name, where, expr, selector)


def recorded(system: System) -> dict[str, list[Recorded]]:
    groups = [group.to_dict() for group in rule_groups(system, DEFAULT_CONFIG.rules)]
    return recorded_series(iter_rules(groups))


def problem(read: Read, scraped: Mapping[Provider, Sequence[Series]], records: Mapping[str, list[Recorded]]) -> str:
    """Why `read` selects nothing (empty: it selects something)."""
    selector = read.selector
    name = selector.name or ""
    if name in records:
        refuted = [rule.refutes(selector) for rule in records[name]]
        if all(refuted):
            best = min(zip(refuted, records[name], strict=True), key=lambda pair: len(pair[0]))
            return f"no rule writes it: nearest {best[1].where} gives {'; '.join(best[0])}"
        return ""
    source = source_of(name)
    if source is None:
        close = get_close_matches(name, sorted(records), n=1, cutoff=0.0)
        hint = f"; closest recorded: {close[0]}" if close and ":" in name else ""
        return f"no component provides it and no generated rule records it{hint}"
    series = scraped.get(source.provider, [])
    if matches_any(selector, series):
        return ""
    return f"not in {source.provider.value}'s series: {nearest(selector, series)}"


def failures(stack: Stack) -> list[str]:
    found: list[str] = []
    for system in systems():
        scraped = stack_series(stack, system)
        for provider, series in monitored_series(system).items():
            scraped.setdefault(provider, []).extend(series)
        records = recorded(system)
        seen: set[tuple[str, str]] = set()
        for read in reads(system):
            if (read.where, read.selector.text) in seen:
                continue
            seen.add((read.where, read.selector.text))
            why = problem(read, scraped, records)
            if why:
                found.append(f"{read.system}: {read.where}\n    {read.selector.text}\n    {why}")
    return found


@pytest.mark.parametrize("stack", list(Stack), ids=[stack.value for stack in Stack])
def test_every_selector_of_every_rule_and_panel_selects_a_real_series(stack: Stack) -> None:
    found = failures(stack)
    assert not found, f"{len(found)} selectors select nothing under {stack.value}:\n" + "\n".join(found)


def test_every_metric_read_has_a_provider_or_a_generated_recording_rule() -> None:
    unprovided = sorted({
        f"{read.system}: {read.selector.name} ({read.where})"
        for system in systems()
        for records in [recorded(system)]
        for read in reads(system)
        if read.selector.name not in records and source_of(read.selector.name or "") is None
    })
    assert not unprovided, "metrics nobody provides:\n" + "\n".join(unprovided)


def test_a_selector_with_a_wrong_label_value_is_reported_with_the_real_series_nearest_to_it() -> None:
    system = systems()[0]
    scraped = stack_series(Stack.KUBE_PROMETHEUS_STACK, system)
    wrong = selectors('kube_node_status_condition{job="kube-state-metrics",condition="Ready",status="yes"}')[0]
    why = problem(Read(system.name, "example", "", wrong), scraped, {})
    assert re.fullmatch(
        r"not in kube-state-metrics's series: nearest: kube_node_status_condition\{[^}]*condition=\"Ready\"[^}]*\} "
        r"\(status=\"yes\" but has status='(true|false|unknown)'\)",
        why,
    ), why


def test_node_exporter_instance_is_the_host_address_under_the_helm_chart_and_the_node_name_under_jsonnet() -> None:
    node = nodes()[0]
    helm = exporter_target_labels(Stack.KUBE_PROMETHEUS_STACK, Exporter.NODE_EXPORTER, node)
    jsonnet = exporter_target_labels(Stack.KUBE_PROMETHEUS, Exporter.NODE_EXPORTER, node)
    assert (helm["instance"], jsonnet["instance"]) == (f"{node.host_ip}:9100", node.name)


def test_an_exposed_label_that_clashes_with_a_target_label_is_kept_as_exported_unless_labels_are_honoured() -> None:
    exposed = Series.of("grpc_server_processing_duration_seconds_count", {"service": "TestService"})
    target = {"service": "logpilot-grpc", "pod": None}
    assert instantiate(exposed, target, honor_labels=False).label_map == {
        "service": "logpilot-grpc", "exported_service": "TestService", "pod": ANY,
    }
    assert instantiate(exposed, target, honor_labels=True).label_map == {"service": "TestService", "pod": ANY}


def test_a_selector_of_a_recorded_series_must_agree_with_the_labels_its_rule_keeps() -> None:
    records = recorded_series([(
        "group g / record r",
        {"record": "namespace_service:requests:rate5m",
         "expr": 'sum by (namespace, service) (rate(http_requests_total{namespace="shop",service="cart"}[5m]))',
         "labels": {"system": "shop"}},
    )])
    (rule,) = records["namespace_service:requests:rate5m"]
    assert rule.refutes(selectors('namespace_service:requests:rate5m{service="cart",system="shop"}')[0]) == []
    assert rule.refutes(selectors('namespace_service:requests:rate5m{service="till"}')[0]) == [
        "service=\"till\" (service='cart')"
    ]
    assert rule.refutes(selectors('namespace_service:requests:rate5m{pod="x"}')[0]) == ['pod="x" (no such label)']


DOCS_SECTION = "## Where each series comes from"


def test_docs_list_every_provider_and_setting_exactly_as_the_catalogue_has_them() -> None:
    text = (REPO / "docs" / "rules.md").read_text(encoding="utf-8")
    assert DOCS_SECTION in text, f"docs/rules.md has no section {DOCS_SECTION!r}"
    section = text.split(DOCS_SECTION, 1)[1].split("\n## ", 1)[0]
    table = "".join(line + "\n" for line in section.splitlines() if line.startswith("|"))
    assert table == markdown_table(), "docs/rules.md's table differs from obsbundle.providers.markdown_table()"
