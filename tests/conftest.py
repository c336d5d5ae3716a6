"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from obsbundle.bundle import build
from obsbundle.config import DEFAULT_CONFIG
from obsbundle.loader import load_inventory
from obsbundle.model import Inventory
from obsbundle.writer import write_tree

REPO = Path(__file__).resolve().parent.parent
DEFAULT_INVENTORY = REPO / "inventory"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def default_inventory() -> Inventory:
    return load_inventory([DEFAULT_INVENTORY])


@pytest.fixture(scope="session")
def default_output(default_inventory: Inventory) -> dict[str, bytes]:
    """The generated files of the default fleet, `<system>/<path>` → bytes (built once per run)."""
    return build(default_inventory, DEFAULT_CONFIG)


@pytest.fixture(scope="session")
def generated_tree(tmp_path_factory: pytest.TempPathFactory, default_output: dict[str, bytes]) -> Iterator[Path]:
    """The default fleet's output written to disk by the real writer, as `generate.py` would."""
    out = tmp_path_factory.mktemp("generated") / "out"
    write_tree(default_output, out)
    yield out
