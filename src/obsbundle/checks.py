"""Checks that span more than one field of a System, each reported at the key path to fix."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal
from fractions import Fraction

from obsbundle.errors import KeyPath, Problem, format_key_path
from obsbundle.model import (
    HISTOGRAM_SETTING,
    Broker,
    DatastoreKind,
    Instrumentation,
    Metrics,
    Owner,
    SliKind,
    System,
)
from obsbundle.slo_math import fastest_page_factor, format_factor

# Which datastore kind can hold which broker's queues.
_BROKER_STORE: dict[Broker, DatastoreKind] = {
    Broker.RABBITMQ: DatastoreKind.RABBITMQ,
    Broker.REDIS: DatastoreKind.REDIS,
    Broker.POSTGRES: DatastoreKind.POSTGRES,
    Broker.KAFKA: DatastoreKind.KAFKA,
}


def check_system(system: System, file: str) -> list[Problem]:
    """Every cross-reference and consistency problem of one system, in file order."""
    return [Problem(file, path, message) for path, message in _problems(system)]


def _problems(system: System) -> Iterator[tuple[KeyPath, str]]:
    yield from _duplicates("node_pools", (pool.name for pool in system.node_pools), "node pool")
    yield from _duplicates("services", (service.name for service in system.services), "service")
    yield from _duplicates("datastores", (store.name for store in system.datastores), "datastore")
    yield from _duplicates("queues", (queue.name for queue in system.queues), "queue")

    pools = {pool.name for pool in system.node_pools}
    stores = {store.name: store for store in system.datastores}
    services = {service.name for service in system.services}

    for index, service in enumerate(system.services):
        at: KeyPath = ("services", index)
        if service.node_pool is not None and service.node_pool not in pools:
            yield (*at, "node_pool"), _undefined("node pool", service.node_pool, pools, "node_pools")
        for position, store_name in enumerate(service.datastores):
            if store_name not in stores:
                yield (*at, "datastores", position), _undefined("datastore", store_name, set(stores), "datastores")
        if service.autoscaling and service.replicas is not None and not (
            service.autoscaling.min <= service.replicas <= service.autoscaling.max
        ):
            yield (*at, "replicas"), (
                f"{service.replicas} is outside autoscaling min..max "
                f"({service.autoscaling.min}..{service.autoscaling.max}): make them agree"
            )
        yield from _duplicates((*at, "slos"), (slo.name for slo in service.slos), "SLO")
        for position in range(len(service.slos)):
            yield from _slo_problems(system, index, position)

    for index, datastore in enumerate(system.datastores):
        if datastore.node_pool is not None and datastore.node_pool not in pools:
            yield ("datastores", index, "node_pool"), _undefined(
                "node pool", datastore.node_pool, pools, "node_pools"
            )

    for index, queue in enumerate(system.queues):
        at = ("queues", index)
        backing = stores.get(queue.datastore)
        if backing is None:
            yield (*at, "datastore"), _undefined("datastore", queue.datastore, set(stores), "datastores")
        elif _BROKER_STORE[queue.broker] is not backing.kind:
            yield (*at, "broker"), (
                f"'{queue.broker.value}' does not match datastore '{backing.name}', which is "
                f"{backing.kind.value}: point datastore at a {_BROKER_STORE[queue.broker].value} datastore"
            )
        for position, consumer in enumerate(queue.consumers):
            if consumer not in services:
                yield (*at, "consumers", position), _undefined("service", consumer, services, "services")

    yield from _team_channels(system)


def _slo_problems(system: System, service_index: int, slo_index: int) -> Iterator[tuple[KeyPath, str]]:
    service = system.services[service_index]
    slo = service.slos[slo_index]
    at: KeyPath = ("services", service_index, "slos", slo_index)
    factor = fastest_page_factor(slo.window_seconds)
    if factor * Fraction(slo.error_budget) >= 1:
        lowest = Decimal(100) - Decimal(100) * Decimal(factor.denominator) / Decimal(factor.numerator)
        yield (*at, "objective"), (
            f"the page alert can never fire: at {slo.objective} % over {slo.window} it needs an error "
            f"ratio of {format_factor(factor)} × {slo.error_budget.normalize()} ≥ 1: "
            f"raise the objective above {lowest.quantize(Decimal('0.01'))} or lengthen the window"
        )
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


def _team_channels(system: System) -> Iterator[tuple[KeyPath, str]]:
    """One team, one set of channels: routing goes by team, so two answers would be ambiguous."""
    first: dict[str, tuple[KeyPath, tuple[str, str | None]]] = {
        system.owner.team: (("owner",), (system.owner.slack_channel, system.owner.oncall_channel))
    }
    owned: list[tuple[KeyPath, Owner | None]] = [
        *((("services", index, "owner"), service.owner) for index, service in enumerate(system.services)),
        *((("datastores", index, "owner"), store.owner) for index, store in enumerate(system.datastores)),
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


def _duplicates(at: str | KeyPath, names: Iterable[str], what: str) -> Iterator[tuple[KeyPath, str]]:
    prefix: KeyPath = (at,) if isinstance(at, str) else at
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
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
