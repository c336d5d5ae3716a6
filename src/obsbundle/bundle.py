"""Assemble every generator's documents for every system into one map of output files."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable
from typing import Any

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

# One entry per component; each is a pure function of (system, settings).
GENERATORS: tuple[Generator, ...] = (generate_monitors, generate_rules, generate_alerting, generate_dashboards)


def system_documents(system: System, settings: Settings) -> list[Document]:
    """Every document of one system, the kustomization included, sorted by path."""
    documents: dict[str, Document] = {}
    for generator in GENERATORS:
        for document in generator(system, settings):
            if settings.output_format is OutputFormat.PROMETHEUS and document.kubernetes:
                continue
            if document.path in documents:
                raise InputError(
                    [
                        Problem(
                            system.name,
                            (),
                            f"two generated objects would both be written to {document.path}: "
                            "rename one of the inventory entries they come from",
                        )
                    ]
                )
            documents[document.path] = document
    if settings.output_format is OutputFormat.OPERATOR:
        kustomization = _kustomization(sorted(d.path for d in documents.values() if d.kubernetes))
        documents[kustomization.path] = kustomization
    return [documents[path] for path in sorted(documents)]


def build(inventory: Inventory, settings: Settings) -> dict[str, bytes]:
    """Output files for the whole inventory: `<system>/<path>` → bytes."""
    # Generation allocates millions of short-lived, acyclic objects while the output it keeps grows
    # to hundreds of MiB; the cyclic collector would rescan that growing heap again and again
    # (a third of the run at 300 services). Nothing here relies on it, so it waits until the end.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return {
            f"{system.name}/{document.path}": render(document)
            for system in inventory.systems
            for document in system_documents(system, settings)
        }
    finally:
        if collecting:
            gc.enable()


def _kustomization(resources: list[str]) -> Document:
    content: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": resources,
    }
    return Document(path="kustomization.yaml", content=content, format=Format.YAML)
