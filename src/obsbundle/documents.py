"""What generators return: documents with a relative path and plain data, never bytes or files."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Format(StrEnum):
    YAML = "yaml"
    JSON = "json"
    TEXT = "text"
    MARKDOWN = "markdown"


@dataclass(frozen=True)
class Document:
    """One output file of a system, relative to `OUT/<system>/`.

    `content` is plain data (dicts, lists, strings, numbers) for YAML and JSON, or a str for text
    and Markdown. Data that several documents hold is wrapped once, in a `SharedBlock` or a
    `JsonText`, and the render layer renders it once for all of them.
    `kubernetes` marks objects that `kustomization.yaml` lists for `kubectl apply -k`.
    """

    path: str
    content: Any
    format: Format = Format.YAML
    kubernetes: bool = False


@dataclass(frozen=True, eq=False)
class SharedBlock:
    """An item of a YAML sequence that several documents hold: a rule group, in its plain rule file
    and in its PrometheusRule. It renders as `data` would in its place, rendered once per depth."""

    data: Any
    rendered: dict[int, str] = field(default_factory=dict, init=False, repr=False, compare=False)
    """The render layer's cache: the block's YAML text by indentation."""


@dataclass(frozen=True, eq=False)
class JsonText:
    """Data held as its JSON text: a dashboard, as a JSON document and as its ConfigMap's value (a
    ConfigMap holds strings). Both hold the same bytes, encoded once."""

    data: Any
    rendered: list[str] = field(default_factory=list, init=False, repr=False, compare=False)
    """The render layer's cache: the JSON text, once encoded."""


def kubernetes_document(obj: Mapping[str, Any]) -> Document:
    """A Kubernetes object as `<name>-<kind>.yaml` at the top of the system folder."""
    name = obj["metadata"]["name"]
    return Document(path=f"{name}-{str(obj['kind']).lower()}.yaml", content=obj, kubernetes=True)
