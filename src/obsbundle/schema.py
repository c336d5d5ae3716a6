"""The inventory's JSON Schema (for editors) and key lookups used in error messages."""

from __future__ import annotations

import json
import types
import typing
from decimal import Decimal
from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from obsbundle.model import System, decimal_json_schema


class _InventorySchema(GenerateJsonSchema):
    """Pydantic's schema, with the loader's range on the text form of Decimal thresholds.

    Pydantic gives a Decimal's number form its bounds but lets any decimal text through, so that
    `max_connections_alert: "80"` would pass an editor and fail the loader.
    """

    def decimal_schema(self, schema: core_schema.DecimalSchema) -> JsonSchemaValue:
        bounds = (schema.get("gt"), schema.get("lt"), schema.get("ge"), schema.get("le"))
        if bounds in ((Decimal(0), None, None, None), (Decimal(0), Decimal(1), None, None)):
            return decimal_json_schema(below_one=bounds[1] == 1)
        return super().decimal_schema(schema)


def inventory_json_schema() -> str:
    """JSON Schema of one inventory document, as deterministic JSON text."""
    schema = System.model_json_schema(by_alias=True, schema_generator=_InventorySchema)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://obsbundle.dev/schema/inventory-v1.json"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def allowed_keys(path: tuple[str | int, ...]) -> list[str]:
    """Keys the model accepts at `path` (a path into the raw data), sorted; [] when unknown."""
    model: Any = System
    for part in path:
        model = _item_type(model) if isinstance(part, int) else _field_type(model, part)
        if model is None:
            return []
    if isinstance(model, type) and issubclass(model, BaseModel):
        return sorted(field.alias or name for name, field in model.model_fields.items())
    return []


def field_hint(path: tuple[str | int, ...]) -> str | None:
    """What the field at `path` is for and an example value, from its description and `examples`,
    for the message about a missing required key; None when the model says neither."""
    model: Any = System
    for part in path[:-1]:
        model = _item_type(model) if isinstance(part, int) else _field_type(model, part)
        if model is None:
            return None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return None
    key = path[-1]
    field = next((f for name, f in model.model_fields.items() if key in (name, f.alias)), None)
    if field is None:
        return None
    parts = [field.description.rstrip(".")] if field.description else []
    if field.examples:
        parts.append(f"e.g. {key}: {field.examples[0]}")
    return "; ".join(parts) or None


def _field_type(model: Any, key: str) -> Any:
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return None
    for name, field in model.model_fields.items():
        if key in (name, field.alias):
            return _unwrap(field.annotation)
    return None


def _item_type(annotation: Any) -> Any:
    args = get_args(annotation)
    if get_origin(annotation) in (tuple, list) and args:
        return _unwrap(args[0])
    return None


def _unwrap(annotation: Any) -> Any:
    """Strip Optional and Annotated so that the model class or container remains."""
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        return _unwrap(members[0]) if len(members) == 1 else None
    return annotation
