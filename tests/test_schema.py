"""The inventory's JSON Schema is as strict as the loader: an editor flags what `generate.py` rejects."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from obsbundle.errors import InputError
from obsbundle.loader import parse_system, read_document
from obsbundle.schema import inventory_json_schema
from tests.conftest import DEFAULT_INVENTORY, FIXTURES, REPO

SCHEMA: dict[str, Any] = json.loads(inventory_json_schema())
SHOP: dict[str, Any] = yaml.safe_load((FIXTURES / "inventory" / "shop.yaml").read_text())

INVENTORIES = [
    *sorted(DEFAULT_INVENTORY.glob("*.yaml")),
    FIXTURES / "inventory" / "shop.yaml",
    FIXTURES / "verify" / "verify.yaml",
    REPO / "tests" / "rules" / "fixtures" / "skiff.yaml",
    REPO / "tests" / "rules" / "fixtures" / "shipyard.yaml",
]

# (dotted path into shop.yaml, value): services.0 is checkout (an SLO, 15s interval), services.3 a job.
BAD_VALUES: list[tuple[str, Any]] = [
    ("services.0.slos.0.window", "30 days"),
    ("services.0.metrics.interval", "1 s"),
    ("services.0.metrics.scrape_timeout", "5min"),
    ("services.0.metrics.interval", "0s"),
    ("services.0.metrics.interval", "5m1h"),
    ("services.0.metrics.interval", "1500ms"),
    ("services.0.metrics.interval", "30"),
    ("services.0.latency_alert", "250 ms"),
    ("services.0.latency_alert", "0ms"),
    ("services.0.slos.0.objective", "99.9%"),
    ("services.0.slos.0.objective", 150),
    ("services.0.slos.0.objective", "150"),
    ("services.0.slos.0.objective", 100),
    ("services.0.slos.0.objective", 0),
    ("services.0.slos.0.objective", 0.999),
    ("services.0.slos.0.objective", "1.0"),
    ("services.0.error_rate_alert", 5),
    ("services.0.error_rate_alert", "5%"),
    ("services.0.memory_limit_alert", "90"),
    ("services.0.errors_per_second_alert", 0),
    ("datastores.0.max_connections_alert", 80),
    ("services.3", {"name": "migrate", "namespace": "shop", "kind": "cronjob", "schedule": "daily"}),
    ("owner.slack_channel", "shop-alerts"),
    ("owner.oncall_channel", "shop-oncall"),
    ("name", "Shop_1"),
    ("services.0.name", "checkout-"),
    # One SLI kind's keys on another, or two kinds' keys at once (tests/rules/test_sli_kinds.py has the messages).
    ("services.0.slos.0", {"name": "a", "objective": 99.9, "sli": "gauge", "gauge_query": "up", "total_query": "x"}),
    ("services.0.slos.0", {"name": "a", "objective": 99.9, "good_query": "x", "bad_query": "y", "total_query": "z"}),
    ("services.0.slos.0", {"name": "a", "objective": 99.9, "sli": "bad-events", "bad_query": "x"}),
    ("services.0.slos.0", {"name": "a", "objective": 99.9, "total_query": "x"}),
    ("services.0.slos.0", {"name": "a", "objective": 99.9, "error_ratio_query": "x", "min_bad_events": 3}),
    ("services.0.slos.0", {"name": "a", "objective": 99.9, "sli": "error-ratio", "gauge_query": "up"}),
    ("services.0.slos.0", {"name": "a", "objective": 99.9, "threshold": "1s", "gauge_query": "up"}),
]

GOOD_VALUES: list[tuple[str, Any]] = [
    ("services.0.slos.0.window", "4w"),
    ("services.0.metrics.interval", "1m30s"),
    ("services.0.metrics.scrape_timeout", "1000ms"),
    ("services.0.metrics.scrape_timeout", "5s0ms"),
    ("services.0.latency_alert", "250ms"),
    ("services.0.latency_alert", "1s500ms"),
    ("services.0.slos.0.objective", 99.95),
    ("services.0.slos.0.objective", "99.9"),
    ("services.0.slos.0.objective", 97.25),
    ("services.0.slos.0.objective", "95."),
    ("services.0.error_rate_alert", 0.05),
    ("services.0.error_rate_alert", "0.05"),
    ("services.0.errors_per_second_alert", "12.5"),
    ("services.0.memory_limit_alert", ".95"),
    ("datastores.0.max_connections_alert", 0.8),
    ("services.3", {"name": "migrate", "namespace": "shop", "kind": "cronjob", "schedule": "0 2 * * *"}),
    ("services.3", {"name": "migrate", "namespace": "shop", "kind": "cronjob", "schedule": "@daily"}),
    ("owner.slack_channel", "#shop-oncall"),
    ("name", "shop-2"),
    ("services.0.slos.0", {"name": "a", "objective": 99.9, "bad_query": "x", "total_query": "y"}),
    ("services.0.slos.0", {"name": "a", "objective": 99.9, "sli": "bad-events", "bad_query": "x", "total_query": "y"}),
    ("services.0.slos.0", {"name": "a", "objective": 99.9, "error_ratio_query": "x"}),
    ("services.0.slos.0", {"name": "a", "objective": 99.9, "gauge_query": "up", "min_bad_events": 2}),
    ("services.0.slos.0", {"name": "a", "objective": 99.9, "sli": "custom", "good_query": "x", "total_query": "y"}),
]


def _with(path: str, value: Any) -> dict[str, Any]:
    """shop.yaml with `value` at the dotted `path`."""
    data = copy.deepcopy(SHOP)
    *parents, last = path.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[int(last) if isinstance(node, list) else last] = value
    return data


def _schema_errors(data: dict[str, Any]) -> list[str]:
    return [error.message for error in jsonschema.Draft202012Validator(SCHEMA).iter_errors(data)]


@pytest.mark.parametrize("path", INVENTORIES, ids=lambda path: Path(path).name)
def test_the_schema_accepts_the_default_fleet_and_the_test_inventories(path: Path) -> None:
    assert _schema_errors(read_document(path)) == []


@pytest.mark.parametrize(("path", "value"), BAD_VALUES, ids=[f"{p}={v!r}" for p, v in BAD_VALUES])
def test_a_value_the_loader_rejects_is_rejected_by_the_schema_too(path: str, value: Any) -> None:
    data = _with(path, value)
    with pytest.raises(InputError):
        parse_system(data, "shop.yaml")
    assert _schema_errors(data), f"the schema accepts {path}: {value!r}, which the loader rejects"


@pytest.mark.parametrize(("path", "value"), GOOD_VALUES, ids=[f"{p}={v!r}" for p, v in GOOD_VALUES])
def test_a_value_the_loader_accepts_is_accepted_by_the_schema_too(path: str, value: Any) -> None:
    data = _with(path, value)
    parse_system(data, "shop.yaml")
    assert _schema_errors(data) == []
