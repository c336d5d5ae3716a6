"""Assemble every generator's documents for every system into the output files.

Generators are pure functions of (system, config). Each system's rules are built once, by its
rules task, which hands the dashboards task the alert index its alert tables need; the other
(system, generator) pairs are independent tasks. Large inventories run the tasks in worker
processes, which generate, render and deliver: into the writer's staging folder, compared with
the output folder (`--check`), or back as bytes. This process checks the paths and adds each
system's kustomization. The bytes are the same whichever process made them.
"""

from __future__ import annotations

import functools
import gc
import multiprocessing
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from obsbundle.alerting import generate_alerting
from obsbundle.config import Config
from obsbundle.dashboards import generate_dashboards, system_dashboards
from obsbundle.dashboards.alerts import AlertIndex
from obsbundle.documents import Document, Format
from obsbundle.errors import InputError, Problem
from obsbundle.exporter_manifests import generate_exporter_manifests
from obsbundle.model import Inventory, System
from obsbundle.monitors import generate_monitors
from obsbundle.monitors.probes import generate_probes
from obsbundle.monitors.scrape_configs import generate_scrape_configs
from obsbundle.render import render
from obsbundle.rules import ComponentGroups, alerting_components, rule_documents
from obsbundle.settings import OutputFormat
from obsbundle.writer import Drift, Staging, drift, present_files, write_file

Generator = Callable[[System, Config], Iterable[Document]]

GENERATORS: tuple[Generator, ...] = (
    generate_monitors, generate_probes, generate_scrape_configs, generate_alerting, generate_exporter_manifests
)
"""The generators that need nothing but (system, config); the rules and the dashboards, which
share the system's rule groups, are the bundle's own tasks (`_rules_task`, `_dashboards_task`)."""

PARALLEL_FROM_SERVICES = 50
"""From this many services in the inventory, worker processes pay for themselves: on two CPUs,
generation took 1/1.31 of the time at 50 services, 1/1.43 at 200 and 1/1.66 at 400. Forked
workers start in about 10 ms; from a fork server (see `_worker_context`) in about half a second."""


def default_jobs() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class _Placed(Protocol):
    @property
    def path(self) -> str: ...

    @property
    def kubernetes(self) -> bool: ...


PlacedT = TypeVar("PlacedT", bound=_Placed)


@dataclass(frozen=True)
class Keep:
    """Deliver the bytes back to the caller."""


@dataclass(frozen=True)
class WriteTo:
    """Write each file into a staging folder (see `writer.Staging`)."""

    staging: Path


@dataclass(frozen=True)
class CompareWith:
    """Compare each file with the output folder; write nothing."""

    out: Path


Destination = Keep | WriteTo | CompareWith


@dataclass(frozen=True)
class Placed:
    """A rendered document after delivery: what a worker process sends back. Only `Keep` sends the
    bytes; the others send a few fields per file, not hundreds of MiB."""

    path: str
    kubernetes: bool
    data: bytes | None = None
    drift: Drift | None = None


def system_documents(system: System, config: Config) -> list[Document]:
    """Every document of one system, the kustomization included, sorted by path."""
    built = alerting_components(system, config.rules)
    generated = [
        rule_documents(system, config, built),
        generate_dashboards(system, config, _alert_index(built)),
        *(generator(system, config) for generator in GENERATORS),
    ]
    documents = _checked(system, (document for documents in generated for document in _kept(documents, config)))
    return _with_kustomization(documents, config, lambda document: document)


def dashboards_of(system: System, config: Config) -> list[dict[str, Any]]:
    """A system's dashboards as Grafana JSON, with the alert index of its rules."""
    alerts = _alert_index(alerting_components(system, config.rules))
    return system_dashboards(system, config.dashboards, alerts, config.output.ruler)


def _alert_index(built: ComponentGroups) -> AlertIndex:
    return AlertIndex.of(group for _, groups in built for group in groups)


def _kept(documents: Iterable[Document], config: Config) -> Iterator[Document]:
    """Documents without Kubernetes objects where the output format has none."""
    for document in documents:
        if not (config.output.output_format is OutputFormat.PROMETHEUS and document.kubernetes):
            yield document


def build(inventory: Inventory, config: Config, *, jobs: int = 1) -> dict[str, bytes]:
    """Output files for the whole inventory, in memory: `<system>/<path>` → bytes."""
    placed = _produce(inventory, config, Keep(), jobs)
    return {f"{system}/{file.path}": _kept_bytes(file) for system, files in placed.items() for file in files}


def _kept_bytes(file: Placed) -> bytes:
    assert file.data is not None, "Keep delivers the bytes"
    return file.data


def write_output(inventory: Inventory, config: Config, out: Path, *, jobs: int = 1) -> int:
    """Replace `out` with the inventory's output, atomically; returns the number of files."""
    with Staging(out) as staging:
        placed = _produce(inventory, config, WriteTo(staging.path), jobs)
        staging.commit()
    return sum(len(files) for files in placed.values())


def stale_output(
    inventory: Inventory, config: Config, out: Path, *, jobs: int = 1
) -> tuple[list[tuple[str, Drift]], int]:
    """The paths under `out` that differ from the inventory's output, sorted, each with how (stale,
    missing, or extra: no longer generated), and the number of files generated."""
    placed = _produce(inventory, config, CompareWith(out), jobs)
    generated = {f"{system}/{file.path}": file.drift for system, files in placed.items() for file in files}
    differing = [(path, how) for path, how in generated.items() if how is not None]
    differing.extend((path, Drift.EXTRA) for path in present_files(out) if path not in generated)
    return sorted(differing), len(generated)


def _produce(inventory: Inventory, config: Config, destination: Destination, jobs: int) -> dict[str, list[Placed]]:
    """Every system's files delivered to `destination`, by system, sorted by path.

    `jobs` > 1 runs the tasks in that many worker processes when the inventory is large enough to
    gain from them; the files are the same bytes either way.
    """
    systems = inventory.systems
    workers = worker_count(inventory, jobs)
    with _collector_paused():
        context = _worker_context()
        pool = _worker_pool(workers, context) if workers else None
        if pool is not None:
            delivered = _run_in_workers(pool, context, systems, config, destination)
        else:
            delivered = [_run_in_process(system, config, destination) for system in systems]
    return {
        system.name: _with_kustomization(
            _checked(system, files),
            config,
            functools.partial(_deliver, system.name, destination=destination),
        )
        for system, files in zip(systems, delivered, strict=True)
    }


def worker_count(inventory: Inventory, jobs: int) -> int:
    """Worker processes generation asks for with `jobs`: none below PARALLEL_FROM_SERVICES or for
    one job, and never more than there are (system, generator) tasks."""
    services = sum(len(system.services) for system in inventory.systems)
    if jobs <= 1 or services < PARALLEL_FROM_SERVICES:
        return 0
    return min(jobs, _TASKS_PER_SYSTEM * len(inventory.systems))


_TASKS_PER_SYSTEM = 2 + len(GENERATORS)
"""The rules, the dashboards and each of GENERATORS."""


def _deliver(system_name: str, document: Document, *, destination: Destination) -> Placed:
    data = render(document)
    relative = f"{system_name}/{document.path}"
    match destination:
        case WriteTo(staging):
            write_file(staging, relative, data)
            return Placed(document.path, document.kubernetes)
        case CompareWith(out):
            return Placed(document.path, document.kubernetes, drift=drift(out, relative, data))
        case Keep():
            return Placed(document.path, document.kubernetes, data)


def _delivered(system: System, documents: Iterable[Document], config: Config, destination: Destination) -> list[Placed]:
    return [_deliver(system.name, document, destination=destination) for document in _kept(documents, config)]


def _run_in_process(system: System, config: Config, destination: Destination) -> list[Placed]:
    """Every task of one system, one after the other."""
    alerts: list[AlertIndex] = []
    files = _rules_task(system, config, destination, alerts.append)
    files += _dashboards_task(system, config, alerts[0], destination)
    for generator in range(len(GENERATORS)):
        files += _generator_task(system, generator, config, destination)
    return files


def _rules_task(
    system: System, config: Config, destination: Destination, hand_over: Callable[[AlertIndex], object]
) -> list[Placed]:
    """Build the system's rule groups once, `hand_over` their alert index to the dashboards as soon
    as it is known, then render and deliver the rule documents."""
    built = alerting_components(system, config.rules)
    hand_over(_alert_index(built))
    return _delivered(system, rule_documents(system, config, built), config, destination)


def _dashboards_task(system: System, config: Config, alerts: AlertIndex, destination: Destination) -> list[Placed]:
    return _delivered(system, generate_dashboards(system, config, alerts), config, destination)


def _generator_task(system: System, generator: int, config: Config, destination: Destination) -> list[Placed]:
    return _delivered(system, GENERATORS[generator](system, config), config, destination)


def _rules_task_in_worker(
    system: System,
    config: Config,
    destination: Destination,
    indexes: queue.Queue[tuple[int, AlertIndex]],
    position: int,
) -> list[Placed]:
    with _collector_paused():
        return _rules_task(system, config, destination, lambda alerts: indexes.put((position, alerts)))


def _dashboards_task_in_worker(
    system: System, config: Config, alerts: AlertIndex, destination: Destination
) -> list[Placed]:
    with _collector_paused():
        return _dashboards_task(system, config, alerts, destination)


def _generator_task_in_worker(system: System, generator: int, config: Config, destination: Destination) -> list[Placed]:
    with _collector_paused():
        return _generator_task(system, generator, config, destination)


def _worker_pool(workers: int, context: multiprocessing.context.BaseContext) -> ProcessPoolExecutor | None:
    """`workers` worker processes, or None where the platform cannot start them (some containers
    have no /dev/shm for the pool's semaphores): generation then runs in this process, to the
    same bytes."""
    try:
        return ProcessPoolExecutor(max_workers=workers, mp_context=context)
    except (OSError, NotImplementedError):
        return None


def _run_in_workers(
    pool: ProcessPoolExecutor,
    context: multiprocessing.context.BaseContext,
    systems: Sequence[System],
    config: Config,
    destination: Destination,
) -> list[list[Placed]]:
    """Each system's files, its tasks run in `pool`. A system's dashboards task starts as soon as
    its rules task has sent the alert index, while that task goes on to render the rule files."""
    with pool, context.Manager() as manager:
        indexes: queue.Queue[tuple[int, AlertIndex]] = manager.Queue()
        rules = [
            pool.submit(_rules_task_in_worker, system, config, destination, indexes, position)
            for position, system in enumerate(systems)
        ]
        others = [
            [
                pool.submit(_generator_task_in_worker, system, generator, config, destination)
                for generator in range(len(GENERATORS))
            ]
            for system in systems
        ]
        dashboards: dict[int, Future[list[Placed]]] = {}
        while len(dashboards) < len(systems):
            try:
                position, alerts = indexes.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                _raise_failed(rules)
                continue
            dashboards[position] = pool.submit(
                _dashboards_task_in_worker, systems[position], config, alerts, destination
            )
        return [
            [
                *rules[position].result(),
                *dashboards[position].result(),
                *(file for future in others[position] for file in future.result()),
            ]
            for position in range(len(systems))
        ]


_POLL_SECONDS = 0.05
"""How often the wait for an alert index looks whether a rules task failed before sending one."""


def _raise_failed(futures: Iterable[Future[list[Placed]]]) -> None:
    for future in futures:
        if future.done() and future.exception() is not None:
            future.result()


def _worker_context() -> multiprocessing.context.BaseContext:
    """fork where it is safe, as generate.py is: no other thread can hold a lock across the fork,
    and workers start at once with obsbundle already imported. In a process with threads (a test
    with a server thread, say) workers fork from a clean server that imports obsbundle once."""
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["obsbundle.bundle"])
    return context


@contextmanager
def _collector_paused() -> Iterator[None]:
    # Generation allocates millions of short-lived, acyclic objects while the output it keeps grows
    # to hundreds of MiB; the cyclic collector would rescan that growing heap again and again
    # (a third of the run at 300 services). Nothing here relies on it, so it waits until the end.
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _checked(system: System, placed: Iterable[PlacedT]) -> dict[str, PlacedT]:
    """Documents by path; two documents on one path are an inventory problem (two entries whose
    names map to the same file)."""
    by_path: dict[str, PlacedT] = {}
    for item in placed:
        if item.path in by_path:
            raise InputError(
                [
                    Problem(
                        system.name,
                        (),
                        f"two generated objects would both be written to {item.path}: "
                        "rename one of the inventory entries they come from",
                    )
                ]
            )
        by_path[item.path] = item
    return by_path


def _with_kustomization(
    by_path: dict[str, PlacedT], config: Config, place: Callable[[Document], PlacedT]
) -> list[PlacedT]:
    """The documents sorted by path, with `kustomization.yaml` listing the Kubernetes objects."""
    if config.output.output_format is OutputFormat.OPERATOR:
        kustomization = _kustomization(sorted(path for path, item in by_path.items() if item.kubernetes))
        by_path[kustomization.path] = place(kustomization)
    return [by_path[path] for path in sorted(by_path)]


def _kustomization(resources: list[str]) -> Document:
    content: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": resources,
    }
    return Document(path="kustomization.yaml", content=content, format=Format.YAML)
