"""The default fleet and the rule fixtures, their rule groups, and their rule documents on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from obsbundle.config import DEFAULT_CONFIG
from obsbundle.loader import load_inventory
from obsbundle.model import Inventory, System
from obsbundle.render import render
from obsbundle.rules import generate_rules

FIXTURES = Path(__file__).resolve().parent / "fixtures"
GOLDEN = Path(__file__).resolve().parent / "golden"


@pytest.fixture(scope="session")
def shipyard() -> System:
    """A system with one of every rule shape (see fixtures/shipyard.yaml)."""
    return load_inventory([FIXTURES / "shipyard.yaml"]).systems[0]


@pytest.fixture(scope="session")
def rule_systems(default_inventory: Inventory, shipyard: System) -> dict[str, System]:
    """The default fleet and the shipyard fixture, by name."""
    return {system.name: system for system in (*default_inventory.systems, shipyard)}


@pytest.fixture(scope="session")
def rule_tree(tmp_path_factory: pytest.TempPathFactory, rule_systems: dict[str, System]) -> Path:
    """Every system's rule documents written to `<tmp>/<system>/…`, as generate.py lays them out."""
    root = tmp_path_factory.mktemp("rules")
    for system in rule_systems.values():
        for document in generate_rules(system, DEFAULT_CONFIG):
            target = root / system.name / document.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(render(document))
    return root
