"""Read inventory files (YAML or Jsonnet) into the frozen model, or fail with located messages.

This is the edge of the program: the only place that sees raw dictionaries. Everything past
`load_inventory` works on `obsbundle.model` objects.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import _jsonnet
import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from obsbundle.checks import check_system
from obsbundle.errors import InputError, KeyPath, Problem
from obsbundle.model import API_VERSION, Inventory, System
from obsbundle.schema import allowed_keys

INVENTORY_SUFFIXES = (".yaml", ".yml", ".jsonnet", ".json")


# libyaml's parser when present: same data, several times faster on large inventories.
_SafeBase: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_SafeBase):  # type: ignore[valid-type,misc]
    """SafeLoader that refuses duplicate keys, which plain YAML silently resolves to the last one."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"found the key '{key}' twice (first on line {seen[key].start_mark.line + 1}); "
                "remove one of them",
                key_node.start_mark,
            )
        seen[key] = key_node
    mapping: dict[Any, Any] = loader.construct_mapping(node, deep=deep)
    return mapping


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def inventory_files(paths: Sequence[Path]) -> list[Path]:
    """Expand directories to the inventory files they hold, sorted, so the order is stable."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in INVENTORY_SUFFIXES and p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise InputError([Problem(str(path), (), "no such file or directory: pass an inventory file or folder")])
    if not files:
        raise InputError(
            [Problem(", ".join(map(str, paths)), (), "holds no inventory files (*.yaml, *.yml, *.jsonnet)")]
        )
    return files


def read_document(path: Path) -> Any:
    """The raw data of one inventory file: YAML parsed strictly, or Jsonnet evaluated."""
    name = str(path)
    try:
        if path.suffix == ".jsonnet":
            return json.loads(_jsonnet.evaluate_file(name))
        text = path.read_text(encoding="utf-8")
    except RuntimeError as error:  # _jsonnet reports every evaluation error as RuntimeError
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else "evaluation failed"
        raise InputError([Problem(name, (), f"Jsonnet error: {first_line}")]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError([Problem(name, (), f"cannot read the file: {error}")]) from None
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        raise InputError([Problem(name, (), f"not valid YAML at {where}: {error.problem}")]) from None
    except yaml.YAMLError as error:
        raise InputError([Problem(name, (), f"not valid YAML: {error}")]) from None


def parse_system(data: Any, file: str) -> System:
    """Validate raw data against the model and the cross-checks; raise InputError with every problem."""
    if not isinstance(data, dict):
        raise InputError(
            [Problem(file, (), f"must be a mapping with apiVersion: {API_VERSION} and kind: System")]
        )
    try:
        system = System.model_validate(data)
    except ValidationError as error:
        raise InputError([_problem(file, detail, data) for detail in error.errors()]) from None
    problems = check_system(system, file)
    if problems:
        raise InputError(problems)
    return system


def load_inventory(paths: Sequence[Path]) -> Inventory:
    """Load every inventory file under `paths` into one Inventory, systems sorted by name."""
    systems: list[System] = []
    problems: list[Problem] = []
    origin: dict[str, str] = {}
    for file in inventory_files(paths):
        try:
            system = parse_system(read_document(file), str(file))
        except InputError as error:
            problems.extend(error.problems)
            continue
        if system.name in origin:
            problems.append(
                Problem(
                    str(file),
                    ("name",),
                    f"system '{system.name}' is already defined in {origin[system.name]}: "
                    "give each system its own name",
                )
            )
            continue
        origin[system.name] = str(file)
        systems.append(system)
    if problems:
        raise InputError(problems)
    return Inventory(systems=tuple(sorted(systems, key=lambda s: s.name)))


def _problem(file: str, detail: ErrorDetails, data: Any) -> Problem:
    path: KeyPath = tuple(part for part in detail["loc"] if isinstance(part, str | int))
    # Pydantic appends the failing union member or validator name to the path; keep real keys only.
    path = _existing_prefix(path, data) if detail["type"] != "missing" else path
    kind = detail["type"]
    value = detail.get("input")
    if kind == "extra_forbidden":
        allowed = allowed_keys(path[:-1])
        hint = f"; allowed keys here: {', '.join(allowed)}" if allowed else ""
        return Problem(file, path, f"unknown key '{path[-1]}': remove it or fix its spelling{hint}")
    if kind == "missing":
        return Problem(file, path, "required key is missing: add it")
    message = detail["msg"].removeprefix("Value error, ")
    if kind == "string_pattern_mismatch":
        message = f"has the wrong form ({_pattern_hint(path)})"
    if kind == "literal_error" and path == ("apiVersion",):
        message = f"must be {API_VERSION}"
    if isinstance(value, dict | list):  # a whole section: the message itself names the values
        return Problem(file, path, message)
    return Problem(file, path, f"{message} (got {_show(value)})")


def _pattern_hint(path: KeyPath) -> str:
    key = next((part for part in reversed(path) if isinstance(part, str)), "")
    hints = {
        "slack_channel": "a Slack channel such as #team-alerts, lower case",
        "oncall_channel": "a Slack channel such as #team-oncall, lower case",
        "path": "an absolute URL path such as /metrics",
        "cluster": "letters, digits, '.', '_' and '-'",
        "cpu": "a CPU quantity such as 500m or 2",
        "memory": "a memory quantity such as 512Mi or 1Gi",
    }
    return hints.get(key, "lower case letters, digits and '-', starting and ending with a letter or digit")


def _existing_prefix(path: KeyPath, data: Any) -> KeyPath:
    """The longest prefix of `path` that exists in the raw data, plus the first key that does not."""
    node = data
    kept: list[str | int] = []
    for part in path:
        if _has_key(node, part):
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and part not in _MODEL_NOISE:
            kept.append(part)
            break
        else:
            break
        kept.append(part)
    return tuple(kept)


def _has_key(node: Any, part: str | int) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


# Names pydantic adds to error locations that are not keys of the input.
_MODEL_NOISE = frozenset({"str", "int", "float", "function-after", "lax-or-strict", "json-or-python"})


def _show(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
