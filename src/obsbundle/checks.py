"""Checks that span more than one field of a System, each reported at the key path to fix."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

import promql_parser

from obsbundle.durations import parse_duration, parse_duration_ms
from obsbundle.errors import KeyPath, Problem, format_key_path
from obsbundle.model import (
    HISTOGRAM_SETTING,
    Broker,
    Controller,
    Datastore,
    DatastoreKind,
    Dependency,
    Instrumentation,
    Metrics,
    NodePool,
    Owner,
    Platform,
    Queue,
    Service,
    SliKind,
    Slo,
    System,
)
from obsbundle.monitors.probes import MODULES
from obsbundle.rules.sli import at_window, has_window, request_metrics
from obsbundle.slo_math import BURN_TIERS, fastest_page_factor, format_factor

# Which datastore kind can hold which broker's queues.
_BROKER_STORE: dict[Broker, DatastoreKind] = {
    Broker.RABBITMQ: DatastoreKind.RABBITMQ,
    Broker.REDIS: DatastoreKind.REDIS,
    Broker.POSTGRES: DatastoreKind.POSTGRES,
    Broker.KAFKA: DatastoreKind.KAFKA,
}


@dataclass(frozen=True)
class Parts:
    """The sections of one System that validated, each entry with its index in the file.

    A file with a broken entry still gets its cross-references checked on the entries that
    validated; names of the broken ones count as defined, so that a typo in one datastore does
    not make every service that uses it an error too.
    """

    owner: Owner | None
    node_pools: tuple[tuple[int, NodePool], ...]
    # Each service with the file's indexes of the SLOs it kept.
    services: tuple[tuple[int, Service, tuple[int, ...]], ...]
    datastores: tuple[tuple[int, Datastore], ...]
    queues: tuple[tuple[int, Queue], ...]
    dependencies: tuple[tuple[int, Dependency], ...] = ()
    platform: Platform | None = None
    """None when the file's `platform` did not validate."""
    # Section → index and name of its entries that did not validate; None when a nameless one is among them.
    unparsed: Mapping[str, tuple[tuple[int, str], ...] | None] = field(default_factory=dict)

    def names(self, section: str, kept: Iterable[tuple[int, str]]) -> list[tuple[int, str]]:
        """Index and name of every entry of a section that has a name, validated or not, in file order."""
        return sorted([*kept, *(self.unparsed.get(section) or ())])

    @classmethod
    def of(cls, system: System) -> Parts:
        return cls(
            owner=system.owner,
            node_pools=tuple(enumerate(system.node_pools)),
            services=tuple(
                (index, service, tuple(range(len(service.slos)))) for index, service in enumerate(system.services)
            ),
            datastores=tuple(enumerate(system.datastores)),
            queues=tuple(enumerate(system.queues)),
            dependencies=tuple(enumerate(system.dependencies)),
            platform=system.platform,
        )


def check_system(system: System, file: str) -> list[Problem]:
    """Every cross-reference and consistency problem of one system, in file order."""
    return check_parts(Parts.of(system), file)


def check_parts(parts: Parts, file: str) -> list[Problem]:
    """The problems `check_system` finds, among the entries of a file that validated."""
    return [Problem(file, path, message) for path, message in _problems(parts)]


def _problems(parts: Parts) -> Iterator[tuple[KeyPath, str]]:
    sections: tuple[tuple[str, Iterable[tuple[int, str]], str], ...] = (
        ("node_pools", ((i, pool.name) for i, pool in parts.node_pools), "node pool"),
        ("services", ((i, service.name) for i, service, _ in parts.services), "service"),
        ("datastores", ((i, store.name) for i, store in parts.datastores), "datastore"),
        ("queues", ((i, queue.name) for i, queue in parts.queues), "queue"),
        ("dependencies", ((i, dependency.name) for i, dependency in parts.dependencies), "dependency"),
    )
    for section, kept, what in sections:
        yield from _duplicates(section, parts.names(section, kept), what)

    pools = {pool.name for _, pool in parts.node_pools}
    stores = {store.name: store for _, store in parts.datastores}
    services = {service.name for _, service, _ in parts.services}

    def undefined(name: str, defined: Iterable[str], section: str) -> bool:
        if section in parts.unparsed and parts.unparsed[section] is None:
            return False  # a broken entry without a name might be the one meant
        return name not in defined and name not in {broken for _, broken in parts.unparsed.get(section) or ()}

    for index, service, slo_positions in parts.services:
        at: KeyPath = ("services", index)
        if service.node_pool is not None and undefined(service.node_pool, pools, "node_pools"):
            yield (*at, "node_pool"), _undefined("node pool", service.node_pool, pools, "node_pools")
        for position, store_name in enumerate(service.datastores):
            if undefined(store_name, stores, "datastores"):
                yield (*at, "datastores", position), _undefined("datastore", store_name, set(stores), "datastores")
        if service.autoscaling and service.replicas is not None and not (
            service.autoscaling.min <= service.replicas <= service.autoscaling.max
        ):
            yield (*at, "replicas"), (
                f"{service.replicas} is outside autoscaling min..max "
                f"({service.autoscaling.min}..{service.autoscaling.max}): make them agree"
            )
        yield from _duplicates(
            (*at, "slos"), zip(slo_positions, (slo.name for slo in service.slos), strict=True), "SLO"
        )
        for slo, position in zip(service.slos, slo_positions, strict=True):
            yield from _slo_problems(service, slo, (*at, "slos", position), index)

    for index, datastore in parts.datastores:
        if datastore.node_pool is not None and undefined(datastore.node_pool, pools, "node_pools"):
            yield ("datastores", index, "node_pool"), _undefined(
                "node pool", datastore.node_pool, pools, "node_pools"
            )

    for index, queue in parts.queues:
        at = ("queues", index)
        backing = stores.get(queue.datastore)
        if backing is None:
            if undefined(queue.datastore, stores, "datastores"):
                yield (*at, "datastore"), _undefined("datastore", queue.datastore, set(stores), "datastores")
        elif _BROKER_STORE[queue.broker] is not backing.kind:
            yield (*at, "broker"), (
                f"'{queue.broker.value}' does not match datastore '{backing.name}', which is "
                f"{backing.kind.value}: point datastore at a {_BROKER_STORE[queue.broker].value} datastore"
            )
        for position, consumer in enumerate(queue.consumers):
            if undefined(consumer, services, "services"):
                yield (*at, "consumers", position), _undefined("service", consumer, services, "services")

    for index, dependency in parts.dependencies:
        yield from _dependency_problems(dependency, ("dependencies", index), lambda name: undefined(
            name, services, "services"
        ), services)

    yield from _platform_workload_problems(parts, lambda name: undefined(name, pools, "node_pools"), pools)
    yield from _broker_endpoint_problems(parts)
    yield from _datastore_exporter_problems(parts)
    yield from _team_channels(parts)


RABBITMQ_AGGREGATED_PATH = "/metrics"
"""rabbitmq_prometheus's aggregated endpoint: the only one that serves the alarm gauges (its
/metrics/per-object has none: tests/fixtures/exposition/rabbitmq/)."""


def _broker_endpoint_problems(parts: Parts) -> Iterator[tuple[KeyPath, str]]:
    """A RabbitMQ's exporter endpoint must be the plugin's aggregated one, or its alarm alerts (rules/
    brokers.py) could never fire."""
    for index, store in parts.datastores:
        path = store.metrics.path if store.metrics is not None else RABBITMQ_AGGREGATED_PATH
        if store.kind is DatastoreKind.RABBITMQ and path != RABBITMQ_AGGREGATED_PATH:
            yield ("datastores", index, "metrics", "path"), (
                f"'{path}' serves no memory or disk alarm (rabbitmq_prometheus has them on its aggregated "
                "endpoint only), so RabbitmqMemoryAlarm and RabbitmqDiskAlarm could never fire: "
                f"set path: {RABBITMQ_AGGREGATED_PATH} (scrape /metrics/per-object with a monitor of your own "
                "if you need per-queue series)"
            )


def _datastore_exporter_problems(parts: Parts) -> Iterator[tuple[KeyPath, str]]:
    """A Redis's cache_hit_target is held against redis_exporter's keyspace counters (rules/
    datastore_health.py): without the exporter's endpoint no alert or panel would ever read it."""
    for index, store in parts.datastores:
        if store.cache_hit_target is not None and store.metrics is None:
            yield ("datastores", index, "cache_hit_target"), (
                f"{store.cache_hit_target.normalize():f} % is compared with redis_exporter's hit ratio, but "
                f"{store.name} names no exporter: add metrics (e.g. {{port: http-metrics}}, the Bitnami chart's "
                "metrics Service port) or drop cache_hit_target"
            )


def _platform_workload_problems(
    parts: Parts, undefined_pool: Callable[[str], bool], pools: set[str]
) -> Iterator[tuple[KeyPath, str]]:
    """Platform workloads on defined pools, one per namespace and name, and Rollouts with the
    namespace of the controller whose metrics describe them."""
    platform = parts.platform
    if platform is None:
        return
    seen: dict[tuple[str, str], int] = {}
    for index, workload in enumerate(platform.workloads):
        at: KeyPath = ("platform", "workloads", index)
        if workload.node_pool is not None and undefined_pool(workload.node_pool):
            yield (*at, "node_pool"), _undefined("node pool", workload.node_pool, pools, "node_pools")
        key = (workload.namespace, workload.name)
        if key in seen:
            yield (*at, "name"), (
                f"duplicate platform workload '{workload.namespace}/{workload.name}' (also at "
                f"{format_key_path(('platform', 'workloads', seen[key]))}): a namespace holds one "
                f"{workload.controller.value} of a name, so list it once"
            )
        else:
            seen[key] = index
        if workload.controller is Controller.ROLLOUT and platform.argo_rollouts_namespace is None:
            yield (*at, "controller"), _rollouts_unwatched()
    if platform.argo_rollouts_namespace is None:
        for index, service, _ in parts.services:
            if service.controller is Controller.ROLLOUT:
                yield ("services", index, "controller"), _rollouts_unwatched()


def _rollouts_unwatched() -> str:
    return (
        "'rollout' needs platform.argo_rollouts_namespace: a Rollout has no kube_deployment_* series, its "
        "replicas and phase come only from the Argo Rollouts controller's metrics, so set "
        "platform.argo_rollouts_namespace to the controller's namespace (argo-rollouts in its install "
        "manifest), or use controller: deployment"
    )


def _dependency_problems(
    dependency: Dependency, at: KeyPath, undefined: Callable[[str], bool], services: set[str]
) -> Iterator[tuple[KeyPath, str]]:
    for position, user in enumerate(dependency.used_by):
        if undefined(user):
            yield (*at, "used_by", position), _undefined("service", user, services, "services")
    if dependency.module not in MODULES:
        # blackbox_exporter answers a probe of a module it lacks with 400 "Unknown module" and stores
        # nothing: the dependency's alerts could never fire. Only modules obsbundle writes into
        # blackbox/blackbox.yml are sure to exist.
        yield (*at, "module"), (
            f"'{dependency.module}' is not a module obsbundle writes into blackbox_exporter's configuration "
            f"(known: {', '.join(sorted(MODULES))}); blackbox_exporter refuses a probe of a module it lacks "
            "(400 \"Unknown module\"), so the probe would store no series and its alerts could never fire: "
            "use one of those, or add the module to MODULES in monitors/probes.py"
        )
    if 2 * parse_duration_ms(dependency.latency_alert) > 1000 * parse_duration(dependency.interval):
        yield (*at, "latency_alert"), (
            f"{dependency.latency_alert} is more than half the interval ({dependency.interval}): a probe slower "
            "than latency_alert needs up to twice that to finish within its scrape timeout, which cannot exceed "
            "the interval: lower latency_alert or raise interval"
        )


def _slo_problems(service: Service, slo: Slo, at: KeyPath, service_index: int) -> Iterator[tuple[KeyPath, str]]:
    factor = fastest_page_factor(slo.window_seconds)
    if factor * Fraction(slo.error_budget) >= 1:
        yield (*at, "objective"), _never_fires(slo, factor)
    metrics = service.metrics
    threshold = slo.threshold_seconds
    if slo.kind is SliKind.LATENCY and metrics is not None and threshold is not None:
        if metrics.instrumentation is Instrumentation.CUSTOM:
            yield (*at, "sli"), "a custom-instrumented service needs sli: custom with good_query and total_query"
            return
        boundaries = {Decimal(str(bucket)).normalize() for bucket in metrics.buckets}
        if threshold not in boundaries:
            yield (*at, "threshold"), (
                f"{slo.threshold} is not a bucket boundary of the service's latency histogram "
                f"({_describe_buckets(metrics, threshold)}), so the SLI cannot count requests under it: "
                f"pick one of those, or publish it with {HISTOGRAM_SETTING[metrics.instrumentation]} "
                f"and list the real boundaries in services[{service_index}].metrics.histogram_buckets"
            )
    if slo.kind is SliKind.AVAILABILITY and metrics is not None and metrics.instrumentation is Instrumentation.CUSTOM:
        yield (*at, "sli"), "a custom-instrumented service needs sli: custom with good_query and total_query"
    yield from _sli_query_problems(slo, at)
    yield from _group_problems(service, slo, at)


_EVENT_QUERY_KEYS = ("good_query", "bad_query", "total_query")


def _sli_queries(slo: Slo) -> Iterator[tuple[str, str, promql_parser.Expr | ValueError]]:
    """(key, query, its parse with `{{.window}}` set to 5m, or the parser's error) of each of the
    SLO's own queries."""
    for key in (*_EVENT_QUERY_KEYS, "error_ratio_query", "gauge_query"):
        query = getattr(slo, key)
        if not query:
            continue
        try:
            yield key, query, promql_parser.parse(at_window(query))
        except ValueError as error:
            yield key, query, error


def _sli_query_problems(slo: Slo, at: KeyPath) -> Iterator[tuple[KeyPath, str]]:
    """The SLO's own PromQL: it parses; an event query over the window counts events (increase),
    not a rate; a gauge query is a selector, whose samples are the events."""
    for key, query, parsed in _sli_queries(slo):
        if isinstance(parsed, ValueError):
            yield (*at, key), f"is not PromQL ({parsed}): {query!r}"
            continue
        if key in _EVENT_QUERY_KEYS and has_window(query) and _rate_calls(parsed):
            yield (*at, key), (
                f"counts events per second ({', '.join(sorted(_rate_calls(parsed)))} over [{{{{.window}}}}]), and "
                "the SLI sums event counts: write increase(...[{{.window}}]) instead (Sloth's rate() ratios "
                "become increase() ratios; the ratio is the same)"
            )
        if key == "gauge_query" and not isinstance(parsed, promql_parser.VectorSelector):
            yield (*at, key), (
                f"must be a selector such as probe_success{{dependency=\"api\"}} or up{{job=\"x\"}} (got {query!r}): "
                "its scraped samples are the SLI's events, which an expression's evaluation steps would replace; "
                "record the expression first and select the recorded series"
            )


_CHURNING_LABELS = {
    "pod": "a pod's name changes at every rollout",
    "instance": "a target's address changes when its pod is replaced",
    "container_id": "a container's id changes at every restart",
}
"""Labels whose values do not outlive a rollout: a group by them starts a new budget each time."""

_KEEPS_LABELS = {"topk", "bottomk", "limitk", "limit_ratio"}
"""Aggregations that return input series with their labels."""


def _group_problems(service: Service, slo: Slo, at: KeyPath) -> Iterator[tuple[KeyPath, str]]:
    """Every group label must be one the SLI's series carry through its queries: the standard
    libraries' labels (rules/sli.py REQUEST_METRICS), or labels the SLO's own queries keep."""
    if not slo.group_by:
        return
    for position, label in enumerate(slo.group_by):
        if label in _CHURNING_LABELS and slo.kind is not SliKind.GAUGE:
            yield (*at, "group_by", position), (
                f"{label}: {_CHURNING_LABELS[label]}, so each group's budget would start again at the next "
                "rollout and its long windows would never fill: group by what users see (handler, route, tenant)"
            )
    if slo.kind in (SliKind.AVAILABILITY, SliKind.LATENCY):
        metrics = request_metrics(service)
        if metrics is None:
            return
        instrumentation = service.metrics.instrumentation.value if service.metrics else ""
        for position, label in enumerate(slo.group_by):
            if label in metrics.outcome_labels:
                yield (*at, "group_by", position), (
                    f"{label} tells good requests from bad ones: a group per {label} would put every failure in "
                    "a group of its own, whose SLI is always 0 %: group by what users see (handler, route, tenant)"
                )
            elif metrics.group_labels is not None and label not in metrics.group_labels:
                yield (*at, "group_by", position), (
                    f"{label} is not a label {instrumentation} puts on {metrics.requests}"
                    f"{' and its histogram' if slo.kind is SliKind.LATENCY else ''}: group by "
                    f"{' or '.join(sorted(metrics.group_labels))}, or write the SLI's queries (sli: custom) "
                    "over series that carry it"
                )
        return
    for key, _, parsed in _sli_queries(slo):
        if isinstance(parsed, ValueError):
            continue  # _sli_query_problems reports it
        for label in slo.group_by:
            dropped = _aggregation_dropping(parsed, label)
            if dropped:
                yield (*at, key), (
                    f"{dropped} drops {label}, which group_by splits the SLO by: keep it "
                    f"(sum by (..., {label})), or remove it from group_by"
                )


def _aggregation_dropping(expr: promql_parser.Expr, label: str) -> str:
    """The first aggregation in `expr` whose result has no `label` (as PromQL text), else ""."""
    found: list[str] = []

    def visit(node: object) -> None:
        if found or not isinstance(node, promql_parser.AggregateExpr) or str(node.op) in _KEEPS_LABELS:
            return
        modifier = node.modifier
        if modifier is None:
            found.append(f"{node.op}(...) without by ({label})")
        elif modifier.type == promql_parser.AggModifierType.By and label not in modifier.labels:
            found.append(f"{node.op} by ({', '.join(modifier.labels)})")
        elif modifier.type == promql_parser.AggModifierType.Without and label in modifier.labels:
            found.append(f"{node.op} without ({', '.join(modifier.labels)})")

    promql_parser.walk(expr, visit)
    return found[0] if found else ""


def _rate_calls(expr: promql_parser.Expr) -> set[str]:
    """Names of the per-second functions (rate, irate) the expression calls."""
    found: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.Call) and node.func.name in ("rate", "irate"):
            found.add(node.func.name)

    promql_parser.walk(expr, visit)
    return found


def _never_fires(slo: Slo, factor: Fraction) -> str:
    """Why the fastest page cannot fire, and the two ways out: a shorter window or a higher objective.

    The page fires when the error ratio can exceed factor × budget, which needs that product
    below 1. The factor grows with the window (budget_spent × window / long window), so the
    longest window that works is the one just under long window / (budget_spent × budget),
    and the lowest objective is the one just above 100 − 100 / factor.
    """
    tier = BURN_TIERS[0]
    budget = Fraction(slo.error_budget)
    lowest = Fraction(100) - Fraction(100) / factor
    # Rounded up, so that any objective above the number shown can fire.
    shown = Decimal(math.ceil(lowest * 100)) / 100
    longest_days = math.ceil(tier.long_window_s / (tier.budget_spent * budget) / 86400) - 1
    shorten = f"shorten the window to {longest_days}d or less, or " if longest_days >= 1 else ""
    return (
        f"the page alert can never fire: at {slo.objective} % over {slo.window} it needs an error "
        f"ratio of {format_factor(factor)} × {slo.error_budget.normalize()} ≥ 1: "
        f"{shorten}raise the objective above {shown.normalize():f}"
    )


# Beyond this many boundaries (Micrometer publishes 68) the message names the two around the threshold.
_LISTED_BUCKETS = 16


def _describe_buckets(metrics: Metrics, threshold: Decimal) -> str:
    """The boundaries in force and where they come from: the inventory's or the library's defaults."""
    buckets = [Decimal(str(bucket)).normalize() for bucket in metrics.buckets]
    if len(buckets) <= _LISTED_BUCKETS:
        listed = ", ".join(f"{bucket:f}" for bucket in buckets) + " s"
    else:
        below = [bucket for bucket in buckets if bucket < threshold]
        above = [bucket for bucket in buckets if bucket > threshold]
        nearest = " and ".join(f"{bucket:f} s" for bucket in (below[-1:] + above[:1]))
        listed = f"{len(buckets)} boundaries from {buckets[0]:f} to {buckets[-1]:f} s, nearest {nearest}"
    if metrics.histogram_buckets is not None:
        return f"{listed}, from histogram_buckets"
    return f"{listed}: the defaults of {metrics.instrumentation.value}"


def _team_channels(parts: Parts) -> Iterator[tuple[KeyPath, str]]:
    """One team, one set of channels: routing goes by team, so two answers would be ambiguous."""
    first: dict[str, tuple[KeyPath, tuple[str, str | None]]] = {}
    if parts.owner is not None:
        first[parts.owner.team] = (("owner",), (parts.owner.slack_channel, parts.owner.oncall_channel))
    owned: list[tuple[KeyPath, Owner | None]] = [
        *((("services", index, "owner"), service.owner) for index, service, _ in parts.services),
        *((("datastores", index, "owner"), store.owner) for index, store in parts.datastores),
        *((("dependencies", index, "owner"), dependency.owner) for index, dependency in parts.dependencies),
    ]
    for at, owner in owned:
        if owner is None:
            continue
        channels = (owner.slack_channel, owner.oncall_channel)
        seen = first.setdefault(owner.team, (at, channels))
        if seen[1] != channels:
            yield at, (
                f"team '{owner.team}' already has channels {seen[1][0]}"
                f"{' / ' + seen[1][1] if seen[1][1] else ''} at {format_key_path(seen[0])}: "
                "give a team the same channels everywhere, or name a different team"
            )


def _duplicates(
    at: str | KeyPath, names: Iterable[tuple[int, str]], what: str
) -> Iterator[tuple[KeyPath, str]]:
    prefix: KeyPath = (at,) if isinstance(at, str) else at
    seen: dict[str, int] = {}
    for index, name in names:
        if name in seen:
            yield (*prefix, index, "name"), (
                f"duplicate {what} name '{name}' (also at {format_key_path((*prefix, seen[name]))}): "
                "names must be unique"
            )
        else:
            seen[name] = index


def _undefined(what: str, name: str, defined: set[str], section: str) -> str:
    known = ", ".join(sorted(defined)) or "none"
    return f"'{name}' is not a defined {what} (defined: {known}): define it under {section} or fix the name"
