"""Rendering is the same on every machine, whichever YAML emitter PyYAML has."""

from __future__ import annotations

import yaml

from obsbundle.bundle import system_documents
from obsbundle.documents import Document, Format
from obsbundle.model import Inventory
from obsbundle.render import render, to_yaml
from obsbundle.settings import Settings


def test_libyaml_and_the_pure_python_emitter_write_identical_bytes_for_the_whole_fleet(
    default_inventory: Inventory,
) -> None:
    assert yaml.__with_libyaml__, "PyYAML without libyaml: this test compares the two emitters"
    compared = 0
    for system in default_inventory.systems:
        for document in system_documents(system, Settings()):
            if document.format is Format.YAML:
                assert to_yaml(document.content) == to_yaml(document.content, pure=True), document.path
                compared += 1
    assert compared > 100


def test_multi_line_strings_become_literal_blocks_without_trailing_spaces() -> None:
    text = render(Document("x.yaml", {"expr": "sum(rate(x[5m]))   \n  / 2\n"})).decode()
    assert "expr: |\n  sum(rate(x[5m]))\n    / 2\n" in text
    assert yaml.safe_load(text) == {"expr": "sum(rate(x[5m]))\n  / 2\n"}


def test_repeated_objects_are_written_out_rather_than_aliased() -> None:
    shared = {"a": 1}
    text = render(Document("x.yaml", {"first": shared, "second": shared})).decode()
    assert "&" not in text and "*" not in text
