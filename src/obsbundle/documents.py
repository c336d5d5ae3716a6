"""What generators return: documents with a relative path and plain data, never bytes or files."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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

    `content` is plain data (dicts, lists, strings, numbers) for YAML and JSON, or a str for text.
    YAML and JSON content may also be text already rendered with `render.to_yaml` or
    `render.to_json`, when a generator writes the same block twice (a rule group in its plain
    file and in its PrometheusRule, a dashboard in its file and in its ConfigMap).
    `kubernetes` marks objects that `kustomization.yaml` lists for `kubectl apply -k`.
    """

    path: str
    content: Any
    format: Format = Format.YAML
    kubernetes: bool = False


def kubernetes_document(obj: Mapping[str, Any]) -> Document:
    """A Kubernetes object as `<name>-<kind>.yaml` at the top of the system folder."""
    name = obj["metadata"]["name"]
    return Document(path=f"{name}-{str(obj['kind']).lower()}.yaml", content=obj, kubernetes=True)
