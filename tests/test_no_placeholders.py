"""No made-up address reaches the output: the links every alert carries come from the inventory,
which must name them, and nothing the inventory did not write says example.com."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from obsbundle.bundle import build
from obsbundle.config import DEFAULT_CONFIG
from obsbundle.errors import InputError
from obsbundle.loader import load_inventory

TESTS = Path(__file__).resolve().parent
INVENTORIES = [
    TESTS / "fixtures" / "inventory" / "shop.yaml",
    TESTS / "rules" / "fixtures" / "skiff.yaml",
    TESTS / "rules" / "fixtures" / "shipyard.yaml",
]
NAME = re.compile(r"[A-Za-z0-9.-]*example\.com")
"""A host or label under example.com, the placeholder domain."""


@pytest.mark.parametrize("inventory", INVENTORIES, ids=lambda path: path.stem)
def test_every_example_com_name_in_the_output_is_one_the_inventory_wrote(inventory: Path) -> None:
    written = set(NAME.findall(inventory.read_text()))
    assert NAME.findall("https://grafana.example.com/d/x") == ["grafana.example.com"]
    output = build(load_inventory([inventory]), DEFAULT_CONFIG)
    assert len(output) > 20
    leaked = sorted(
        {(name, path) for path, data in output.items() for name in NAME.findall(data.decode()) if name not in written}
    )
    assert not leaked, f"names the inventory never wrote: {leaked[:5]}"


def test_a_missing_address_is_an_error_that_says_what_it_is_for_with_an_example(tmp_path: Path) -> None:
    text = (TESTS / "rules" / "fixtures" / "skiff.yaml").read_text()
    kept = [line for line in text.splitlines() if not line.strip().startswith(("grafana_url:", "runbook_url:"))]
    broken = tmp_path / "skiff.yaml"
    broken.write_text("\n".join(kept) + "\n")
    with pytest.raises(InputError) as raised:
        load_inventory([broken])
    messages = [str(problem) for problem in raised.value.problems]
    assert len(messages) == 2, messages
    grafana, runbook = sorted(messages)
    assert grafana.startswith(f"{broken}: monitoring.grafana_url: required key is missing: add it (")
    assert "e.g. grafana_url: https://" in grafana
    assert "runbook_url:" in runbook and "{system}" in runbook and "{alert}" in runbook
