"""Rendering is the same on every machine, whichever YAML emitter writes it: obsbundle's block writer,
libyaml, or PyYAML's pure-Python emitter."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bench.generate import synthetic_system
from obsbundle.bundle import system_documents
from obsbundle.config import DEFAULT_CONFIG
from obsbundle.documents import Document, Format
from obsbundle.loader import load_inventory
from obsbundle.model import Inventory
from obsbundle.render import Emitter, indent_yaml, render, to_yaml


def _assert_every_yaml_document_is_written_alike(inventory: Inventory) -> None:
    """obsbundle's block writer, libyaml and PyYAML's pure-Python emitter agree on every document."""
    assert yaml.__with_libyaml__, "PyYAML without libyaml: this test compares the emitters"
    compared = 0
    for system in inventory.systems:
        for document in system_documents(system, DEFAULT_CONFIG):
            if document.format is not Format.YAML:
                continue
            written, data = to_yaml(document.content), document.content
            assert written == to_yaml(data, emitter=Emitter.LIBYAML), document.path
            assert written == to_yaml(data, emitter=Emitter.PURE), document.path
            compared += 1
    assert compared > 100


def test_every_emitter_writes_identical_bytes_for_the_whole_fleet(default_inventory: Inventory) -> None:
    _assert_every_yaml_document_is_written_alike(default_inventory)


def test_every_emitter_writes_identical_bytes_for_the_benchmark_system(tmp_path: Path) -> None:
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(synthetic_system(12), sort_keys=False))
    _assert_every_yaml_document_is_written_alike(load_inventory([path]))


def test_multi_line_strings_become_literal_blocks_without_trailing_spaces() -> None:
    text = render(Document("x.yaml", {"expr": "sum(rate(x[5m]))   \n  / 2\n"})).decode()
    assert "expr: |\n  sum(rate(x[5m]))\n    / 2\n" in text
    assert yaml.safe_load(text) == {"expr": "sum(rate(x[5m]))\n  / 2\n"}


def test_repeated_objects_are_written_out_rather_than_aliased() -> None:
    shared = {"a": 1}
    text = render(Document("x.yaml", {"first": shared, "second": shared})).decode()
    assert "&" not in text and "*" not in text


# Strings chosen to hit every branch of PyYAML's scalar analysis: values that read as other types,
# indicators first, inside and last, blanks at either end, quotes, escapes, non-ASCII, line breaks.
AWKWARD_SCALARS: list[object] = [
    "", " ", "a", "yes", "No", "ON", "off", "true", "False", "null", "Null", "~", "y", "n",
    "0", "1", "-1", "+1", "0x1F", "0o17", "017", "1_000", "1.5", "1e3", "1.0e+3", ".5", "-.inf", ".NaN",
    "2026-11-22", "2026-11-22T10:00:00Z", "12:30", "1:20:30", "<<", "=", "---", "...", "--- a", "... a",
    "-", "- a", "-a", "?", "? a", "?a", ":", ": a", ":a", "a:", "a: b", "a:b", "a :b", "#", "# a", "a #b",
    "a#b", "a# b", ",", "a,b", "[a]", "{a}", "a[0]", "a{b}", "&a", "*a", "!a", "|", ">", "'", "'a'", '"',
    '"a"', "%a", "@a", "`a`", "a'b", 'a"b', "a\\b", " a", "a ", "a  b", "\ta", "a\tb", "a\t", "é", "—",
    "a — b", "\u00a0a", "a\u00a0", "\u2028", "a\u2028b", "a\u2029", "\x85", "a\x85b", "\ufeff", "a\ufeffb",
    "\x00", "a\x07", "\x7f", "\ue000", "\U0001f600", "x" * 200, "a " * 3000, "b" * 5000,
    'sum(rate(x{a="b",c=~"d|e"}[5m])) by (le)', "{{ $value | humanize }}", "https://x.example/d/a?b=c#d",
    "a\nb", "a\nb\n", "a\nb\n\n", "\na", " a\nb", "a \nb", "a\n\nb", "a\n  b\n", "a\r\nb", "a\rb",
    "a\x0bb\n", "a\u2028b\nc", "a\tb\nc", "a\n\tb", "a\n\x07", "é\n—\n", "a\n" * 50, "a\n\U0001f600",
    "\U0001f600\nb", "\ue000\n", "a\n\ufffe", "a\n\ufeff", "a\u00a0\nb", "a\n\u3000", "a\u3000\nb ", "\ufffd\n",
    "\uffff", "\ud7ff", "\ue000", 0, 1, -1, 10**20,
    0.5, 1e-9, 1e20, float("inf"), True, False, None,
]


@pytest.mark.parametrize("value", AWKWARD_SCALARS, ids=repr)
def test_the_block_writer_writes_what_pyyaml_writes_for_every_kind_of_scalar(value: object) -> None:
    for data in (
        {"key": value},
        {"outer": {"inner": [value, {"key": value}]}},
        [value, [value]],
        {"list": [[{"a": value}]], "empty": {}, "none": []},
    ):
        assert to_yaml(data) == to_yaml(data, emitter=Emitter.LIBYAML)
    if isinstance(value, str | int) and not isinstance(value, bool):
        keyed = {value: "v", "next": {value: [value]}}
        assert to_yaml(keyed) == to_yaml(keyed, emitter=Emitter.LIBYAML)


def test_a_rendered_block_moved_deeper_is_what_pyyaml_writes_there() -> None:
    item = {"name": "g", "rules": [{"expr": "a\n\n  b\n", "labels": {"x": "y"}}, {"record": "r"}]}
    moved = "spec:\n  groups:\n" + indent_yaml(to_yaml([item]), 2)
    assert moved == to_yaml({"spec": {"groups": [item]}}, emitter=Emitter.PURE)
