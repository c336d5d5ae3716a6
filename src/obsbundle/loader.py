"""Read inventory files (YAML or Jsonnet) into the frozen model, or fail with located messages.

This is the edge of the program: the only place that sees raw dictionaries. Everything past
`load_inventory` works on `obsbundle.model` objects.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

import _jsonnet
import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from obsbundle.checks import Parts, check_parts, check_system
from obsbundle.errors import InputError, KeyPath, Problem
from obsbundle.model import (
    API_VERSION,
    Datastore,
    Dependency,
    Inventory,
    NodePool,
    Owner,
    Platform,
    Queue,
    Service,
    Slo,
    System,
)
from obsbundle.schema import allowed_keys, field_hint

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
        raise InputError([Problem(name, (), f"Jsonnet error: {_jsonnet_message(str(error))}")]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError([Problem(name, (), f"cannot read the file: {error}")]) from None
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.composer.ComposerError as error:
        if error.context != "expected a single document in the stream":
            raise InputError([Problem(name, (), f"not valid YAML: {error}")]) from None
        line = error.problem_mark.line + 1 if error.problem_mark else 0
        raise InputError(
            [
                Problem(
                    name,
                    (),
                    f"holds more than one YAML document (another starts at line {line}): "
                    "one system per file: split it into files of their own",
                )
            ]
        ) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        raise InputError([Problem(name, (), f"not valid YAML at {where}: {error.problem}")]) from None
    except yaml.YAMLError as error:
        raise InputError([Problem(name, (), f"not valid YAML: {error}")]) from None


def parse_system(data: Any, file: str) -> System:
    """Validate raw data against the model and the cross-checks; raise InputError with every problem."""
    if data is None:
        raise InputError(
            [Problem(file, (), f"the file is empty: write one System mapping, apiVersion: {API_VERSION}, kind: System")]
        )
    if isinstance(data, list):
        raise InputError(
            [
                Problem(
                    file,
                    (),
                    f"is a list of {len(data)}, but a file holds one System mapping (apiVersion: {API_VERSION}, "
                    "kind: System): put each system in a file of its own",
                )
            ]
        )
    if not isinstance(data, dict):
        message = f"must be a mapping with apiVersion: {API_VERSION} and kind: System (got {_show(data)})"
        raise InputError([Problem(file, (), message)])
    try:
        system = System.model_validate(data)
    except ValidationError as error:
        problems = [_problem(file, detail, data) for detail in error.errors()]
        # The model stops at a broken field; the parts that did validate still get every other check.
        problems += _salvage(data, file)
        raise InputError(list(dict.fromkeys(problems))) from None
    problems = check_system(system, file)
    if problems:
        raise InputError(problems)
    return system


def _salvage(data: dict[str, Any], file: str) -> list[Problem]:
    """The problems hidden behind a model error: each entry validated on its own, then cross-checked.

    A service whose SLOs are broken is validated again without them, so that its own checks
    (metrics, schedule) and its references are reported in the same run.
    """
    problems: list[Problem] = []
    unparsed: dict[str, tuple[tuple[int, str], ...] | None] = {}

    def entries(section: str, model: type[_Entry]) -> list[tuple[int, _Entry]]:
        raw = data.get(section, [])
        items = enumerate(raw) if isinstance(raw, list) else iter(())
        kept = [(index, entry) for index, item in items if (entry := _validated(model, item)) is not None]
        unparsed[section] = _names_of_broken(raw, {index for index, _ in kept})
        return kept

    services: list[tuple[int, Service, tuple[int, ...]]] = []
    raw_services = data.get("services", [])
    for index, item in enumerate(raw_services if isinstance(raw_services, list) else []):
        salvaged = _service_without_broken_slos(item)
        if salvaged is None:
            continue
        service, positions, error = salvaged
        if error is not None:
            problems += [_problem(file, _under(detail, ("services", index)), data) for detail in error.errors()]
        elif service is not None:
            services.append((index, service, positions))
    parts = Parts(
        owner=_validated(Owner, data.get("owner")),
        node_pools=tuple(entries("node_pools", NodePool)),
        services=tuple(services),
        datastores=tuple(entries("datastores", Datastore)),
        queues=tuple(entries("queues", Queue)),
        dependencies=tuple(entries("dependencies", Dependency)),
        platform=_validated(Platform, data.get("platform", {})),
        unparsed={**unparsed, "services": _names_of_broken(data.get("services", []), {i for i, _, _ in services})},
    )
    return problems + check_parts(parts, file)


_Entry = TypeVar("_Entry", bound=BaseModel)


def _validated(model: type[_Entry], raw: Any) -> _Entry | None:
    try:
        return model.model_validate(raw)
    except ValidationError:
        return None


def _service_without_broken_slos(
    item: Any,
) -> tuple[Service | None, tuple[int, ...], ValidationError | None] | None:
    """The service validated with those of its SLOs that validate on their own, and their positions.

    When it fails only after broken SLOs were set aside, also its error; None for a non-mapping.
    """
    if not isinstance(item, dict):
        return None
    slos = item.get("slos")
    positions: tuple[int, ...] = ()
    trimmed = dict(item)
    if isinstance(slos, list):
        positions = tuple(i for i, slo in enumerate(slos) if _validated(Slo, slo) is not None)
        trimmed["slos"] = [slos[i] for i in positions]
    try:
        service = Service.model_validate(trimmed)
    except ValidationError as error:
        if isinstance(slos, list) and len(positions) < len(slos):
            # Errors outside the SLOs are reported by the whole file's validation already; the
            # new ones are the service's own checks, which ran only once its SLOs were set aside.
            return None, positions, error
        return None, positions, None
    return service, positions, None


def _under(detail: ErrorDetails, prefix: KeyPath) -> ErrorDetails:
    moved = dict(detail)
    moved["loc"] = (*prefix, *detail["loc"])
    return moved  # type: ignore[return-value]


def _names_of_broken(raw: Any, kept: set[int]) -> tuple[tuple[int, str], ...] | None:
    """Index and name of the entries of a section that did not validate; None when one has no name."""
    if not isinstance(raw, list):
        return None
    names: list[tuple[int, str]] = []
    for index, item in enumerate(raw):
        if index in kept:
            continue
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            return None
        names.append((index, name.strip()))
    return tuple(names)


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
        purpose = field_hint(path)
        return Problem(file, path, "required key is missing: add it" + (f" ({purpose})" if purpose else ""))
    message = detail["msg"].removeprefix("Value error, ")
    if kind == "string_pattern_mismatch":
        message = f"has the wrong form ({_pattern_hint(path)})"
    if kind == "literal_error" and path == ("apiVersion",):
        message = f"must be {API_VERSION}"
    message = _library_fix(path, kind, value) or message
    if isinstance(value, dict | list):  # a whole section: the message itself names the values
        return Problem(file, path, message)
    return Problem(file, path, f"{message} (got {_show(value)})")


# Fields that hold a share of 1 (0.8 is 80 %), and the durations with the units each takes.
_SHARES = frozenset({"max_connections_alert", "memory_limit_alert", "error_rate_alert"})
_FINE_UNITS = "ms, s, m, h, d, w or y"
_DURATION_UNITS = {
    "threshold": _FINE_UNITS,
    "latency_alert": _FINE_UNITS,
    "interval": "s, m, h, d, w or y",
    "scrape_timeout": "s, m, h, d, w or y",
    "max_age": "s, m, h, d, w or y",
    "window": "d (whole days, 1d to 90d)",
}


def _library_fix(path: KeyPath, kind: str, value: Any) -> str | None:
    """A message with its fix for the errors pydantic words for programmers, or None to keep its own."""
    key = next((part for part in reversed(path) if isinstance(part, str)), "")
    number = _decimal(value)
    if key in _SHARES and kind in {"less_than", "greater_than"}:
        if number is not None and kind == "less_than" and 1 <= number < 100:
            return f"is a share of 1, not a percentage: write {(number / 100).normalize():f} for {number} %"
        return "must be a share between 0 and 1, exclusive: write 0.8 for 80 %"
    if key in _DURATION_UNITS and kind == "string_type" and number is not None:
        example = f"{number}{'d' if key == 'window' else 's'}"
        return f"a duration needs a unit: write e.g. {example}; the units allowed here are {_DURATION_UNITS[key]}"
    if key == "objective" and kind == "decimal_parsing" and isinstance(value, str):
        bare = _decimal(value.strip().removesuffix("%").strip())
        written = f"{bare}" if bare is not None else "99.9"
        return f"must be a plain number of percent, without '%' or words: write {written}"
    return None


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _jsonnet_message(text: str) -> str:
    """The Jsonnet library's first line, with the file:line:column it names first when on a later line.

    Runtime errors put the location on the first line of the trace ("\tfile:3:9-27\tobject"),
    static errors in the message itself ("STATIC ERROR: file:1:3: ...").
    """
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return "evaluation failed"
    located = next((match for line in lines[1:] if (match := _JSONNET_LOCATION.match(line))), None)
    if located is None or _JSONNET_LOCATION.search(lines[0]):
        return lines[0]
    return f"{lines[0]} (at {located.group(0)})"


# file:line:column, or file:line:column-column / file:(line:column)-(line:column) as Jsonnet prints ranges.
_JSONNET_LOCATION = re.compile(r"\S+?:(?:\d+:\d+(?:-\d+)?|\(\d+:\d+\)-\(\d+:\d+\))")


def _pattern_hint(path: KeyPath) -> str:
    key = next((part for part in reversed(path) if isinstance(part, str)), "")
    hints = {
        "slack_channel": "a Slack channel such as #team-alerts, lower case",
        "oncall_channel": "a Slack channel such as #team-oncall, lower case",
        "path": "an absolute URL path such as /metrics",
        "cluster": "letters, digits, '.', '_' and '-'",
        "clusters": "letters, digits, '.', '_' and '-'",
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
