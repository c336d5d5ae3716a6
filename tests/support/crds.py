"""Validate generated Kubernetes objects against the real Prometheus Operator CRD schemas."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

CRD_DIR = Path(__file__).resolve().parent.parent / "crds"


class _CrdLoader(yaml.SafeLoader):
    """SafeLoader that reads a bare `=` (an enum value in the CRDs) as the string it is."""


def _construct_str(loader: _CrdLoader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


_CrdLoader.add_constructor("tag:yaml.org,2002:value", _construct_str)


def _to_json_schema(node: Any) -> Any:
    """OpenAPI v3 → JSON Schema: int-or-string becomes a type union; other x- keys are dropped."""
    if isinstance(node, dict):
        out = {k: _to_json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes")}
        if node.get("x-kubernetes-int-or-string"):
            out.pop("type", None)
            out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        if node.get("x-kubernetes-preserve-unknown-fields") and "type" not in out:
            out["type"] = "object"
        return out
    if isinstance(node, list):
        return [_to_json_schema(item) for item in node]
    return node


@cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) → JSON Schema, for every CRD in tests/crds/."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        crd = yaml.load(path.read_text(), Loader=_CrdLoader)
        group = crd["spec"]["group"]
        kind = crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = _to_json_schema(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
            schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


def validation_errors(obj: dict[str, Any]) -> list[str]:
    """Every schema violation of one object, as `path: message` lines; [] when it is valid."""
    key = (obj.get("apiVersion", ""), obj.get("kind", ""))
    schema = crd_schemas().get(key)
    if schema is None:
        return [f"no CRD schema for {key[0]} {key[1]}"]
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
    ]


def is_monitoring_object(obj: dict[str, Any]) -> bool:
    return str(obj.get("apiVersion", "")).startswith("monitoring.coreos.com/")
