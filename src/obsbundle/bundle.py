"""Assemble every generator's documents for every system into one map of output files.

Generators are pure functions of (system, settings), so each (system, generator) pair is an
independent task. Large inventories run those tasks in worker processes, which generate and
render; this process only checks the paths, adds the kustomization and hands the bytes to the
writer. The bytes are the same whichever process made them.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
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

Generator = Callable[[System, Settings], Iterable[Document]]

# One entry per component; each is a pure function of (system, settings). The costliest come
# first, so that worker processes start on them and the small ones fill the gaps.
GENERATORS: tuple[Generator, ...] = (generate_rules, generate_dashboards, generate_monitors, generate_alerting)

PARALLEL_FROM_SERVICES = 200
"""Below this many services in the inventory, worker processes save less than a tenth of a second
(bench/generate.py); in one process the output is ready sooner and nothing is copied between them."""


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
class RenderedFile:
    """A document after rendering: what a worker process sends back."""

    path: str
    kubernetes: bool
    data: bytes


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
    """Output files for the whole inventory: `<system>/<path>` → bytes.

    `jobs` > 1 generates in that many worker processes when the inventory is large enough to
    gain from them; the result is the same bytes.
    """
    tasks = [(system, generator) for generator in range(len(GENERATORS)) for system in inventory.systems]
    services = sum(len(system.services) for system in inventory.systems)
    with _collector_paused():
        if jobs > 1 and services >= PARALLEL_FROM_SERVICES:
            rendered = _run_in_workers(tasks, settings, jobs)
        else:
            rendered = [_render_task(system, generator, settings) for system, generator in tasks]
    by_system: dict[str, list[RenderedFile]] = {system.name: [] for system in inventory.systems}
    for (system, _), files in zip(tasks, rendered, strict=True):
        by_system[system.name].extend(files)
    return {
        f"{system.name}/{file.path}": file.data
        for system in inventory.systems
        for file in _with_kustomization(_checked(system, by_system[system.name]), settings, _rendered)
    }


def _render_task(system: System, generator: int, settings: Settings) -> list[RenderedFile]:
    """One generator's documents for one system, rendered."""
    return [_rendered(document) for document in _kept(GENERATORS[generator], system, settings)]


def _render_task_in_worker(system: System, generator: int, settings: Settings) -> list[RenderedFile]:
    with _collector_paused():
        return _render_task(system, generator, settings)


def _run_in_workers(tasks: list[tuple[System, int]], settings: Settings, jobs: int) -> list[list[RenderedFile]]:
    context = _worker_context()
    with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=context) as pool:
        futures = [pool.submit(_render_task_in_worker, system, generator, settings) for system, generator in tasks]
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


def _rendered(document: Document) -> RenderedFile:
    return RenderedFile(document.path, document.kubernetes, render(document))


def _kustomization(resources: list[str]) -> Document:
    content: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": resources,
    }
    return Document(path="kustomization.yaml", content=content, format=Format.YAML)
