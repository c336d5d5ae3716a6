"""Assemble every generator's documents for every system into the output files.

Generators are pure functions of (system, settings), so each (system, generator) pair is an
independent task. Large inventories run those tasks in worker processes, which generate, render
and deliver: into the writer's staging folder, compared with the output folder (`--check`), or
back as bytes. This process checks the paths and adds each system's kustomization. The bytes are
the same whichever process made them.
"""

from __future__ import annotations

import functools
import gc
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from obsbundle.alerting import generate_alerting
from obsbundle.dashboards import generate_dashboards
from obsbundle.documents import Document, Format
from obsbundle.errors import InputError, Problem
from obsbundle.model import Inventory, System
from obsbundle.monitors import generate_monitors
from obsbundle.render import render
from obsbundle.rules import generate_rules
from obsbundle.settings import OutputFormat, Settings
from obsbundle.writer import Staging, is_stale, present_files, write_file

Generator = Callable[[System, Settings], Iterable[Document]]

# One entry per component; each is a pure function of (system, settings). The costliest come
# first, so that worker processes start on them and the small ones fill the gaps.
GENERATORS: tuple[Generator, ...] = (generate_rules, generate_dashboards, generate_monitors, generate_alerting)

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
    stale: bool = False


def system_documents(system: System, settings: Settings) -> list[Document]:
    """Every document of one system, the kustomization included, sorted by path."""
    kept = (document for generator in GENERATORS for document in _kept(generator, system, settings))
    documents = _checked(system, kept)
    return _with_kustomization(documents, settings, lambda document: document)


def _kept(generator: Generator, system: System, settings: Settings) -> Iterator[Document]:
    """A generator's documents, without Kubernetes objects where the output format has none."""
    for document in generator(system, settings):
        if not (settings.output_format is OutputFormat.PROMETHEUS and document.kubernetes):
            yield document


def build(inventory: Inventory, settings: Settings, *, jobs: int = 1) -> dict[str, bytes]:
    """Output files for the whole inventory, in memory: `<system>/<path>` → bytes."""
    placed = _produce(inventory, settings, Keep(), jobs)
    return {f"{system}/{file.path}": _kept_bytes(file) for system, files in placed.items() for file in files}


def _kept_bytes(file: Placed) -> bytes:
    assert file.data is not None, "Keep delivers the bytes"
    return file.data


def write_output(inventory: Inventory, settings: Settings, out: Path, *, jobs: int = 1) -> int:
    """Replace `out` with the inventory's output, atomically; returns the number of files."""
    with Staging(out) as staging:
        placed = _produce(inventory, settings, WriteTo(staging.path), jobs)
        staging.commit()
    return sum(len(files) for files in placed.values())


def stale_output(inventory: Inventory, settings: Settings, out: Path, *, jobs: int = 1) -> tuple[list[str], int]:
    """Paths under `out` that differ from the inventory's output (changed, missing, or no longer
    generated), and the number of files generated."""
    placed = _produce(inventory, settings, CompareWith(out), jobs)
    generated = {f"{system}/{file.path}": file.stale for system, files in placed.items() for file in files}
    stale = [path for path, differs in generated.items() if differs]
    stale.extend(path for path in present_files(out) if path not in generated)
    return sorted(stale), len(generated)


def _produce(inventory: Inventory, settings: Settings, destination: Destination, jobs: int) -> dict[str, list[Placed]]:
    """Every system's files delivered to `destination`, by system, sorted by path.

    `jobs` > 1 runs the (system, generator) tasks in that many worker processes when the inventory
    is large enough to gain from them; the files are the same bytes either way.
    """
    tasks = [(system, generator) for generator in range(len(GENERATORS)) for system in inventory.systems]
    workers = worker_count(inventory, jobs)
    with _collector_paused():
        pool = _worker_pool(workers) if workers else None
        if pool is not None:
            delivered = _run_in_workers(pool, tasks, settings, destination)
        else:
            delivered = [_run_task(system, generator, settings, destination) for system, generator in tasks]
    by_system: dict[str, list[Placed]] = {system.name: [] for system in inventory.systems}
    for (system, _), files in zip(tasks, delivered, strict=True):
        by_system[system.name].extend(files)
    return {
        system.name: _with_kustomization(
            _checked(system, by_system[system.name]),
            settings,
            functools.partial(_deliver, system.name, destination=destination),
        )
        for system in inventory.systems
    }


def worker_count(inventory: Inventory, jobs: int) -> int:
    """Worker processes generation asks for with `jobs`: none below PARALLEL_FROM_SERVICES or for
    one job, and never more than there are (system, generator) tasks."""
    services = sum(len(system.services) for system in inventory.systems)
    if jobs <= 1 or services < PARALLEL_FROM_SERVICES:
        return 0
    return min(jobs, len(GENERATORS) * len(inventory.systems))


def _deliver(system_name: str, document: Document, *, destination: Destination) -> Placed:
    data = render(document)
    relative = f"{system_name}/{document.path}"
    match destination:
        case WriteTo(staging):
            write_file(staging, relative, data)
            return Placed(document.path, document.kubernetes)
        case CompareWith(out):
            return Placed(document.path, document.kubernetes, stale=is_stale(out, relative, data))
        case Keep():
            return Placed(document.path, document.kubernetes, data)


def _run_task(system: System, generator: int, settings: Settings, destination: Destination) -> list[Placed]:
    """One generator's documents for one system, rendered and delivered."""
    documents = _kept(GENERATORS[generator], system, settings)
    return [_deliver(system.name, document, destination=destination) for document in documents]


def _run_task_in_worker(system: System, generator: int, settings: Settings, destination: Destination) -> list[Placed]:
    with _collector_paused():
        return _run_task(system, generator, settings, destination)


def _worker_pool(workers: int) -> ProcessPoolExecutor | None:
    """`workers` worker processes, or None where the platform cannot start them (some containers
    have no /dev/shm for the pool's semaphores): generation then runs in this process, to the
    same bytes."""
    try:
        return ProcessPoolExecutor(max_workers=workers, mp_context=_worker_context())
    except (OSError, NotImplementedError):
        return None


def _run_in_workers(
    pool: ProcessPoolExecutor, tasks: list[tuple[System, int]], settings: Settings, destination: Destination
) -> list[list[Placed]]:
    with pool:
        futures = [pool.submit(_run_task_in_worker, system, index, settings, destination) for system, index in tasks]
        return [future.result() for future in futures]


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
    by_path: dict[str, PlacedT], settings: Settings, place: Callable[[Document], PlacedT]
) -> list[PlacedT]:
    """The documents sorted by path, with `kustomization.yaml` listing the Kubernetes objects."""
    if settings.output_format is OutputFormat.OPERATOR:
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
