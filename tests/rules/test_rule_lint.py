"""`promtool check rules --lint-fatal` accepts every generated rule file: no two rules of a group share
a name and labels (promtool warns that such rules make recorded series and alerts inconsistent)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from obsbundle.config import DEFAULT_CONFIG
from obsbundle.loader import load_inventory
from obsbundle.model import System
from obsbundle.render import render
from obsbundle.rules import generate_rules
from obsbundle.tools import promtool

TESTS = Path(__file__).resolve().parent.parent
INVENTORIES = (
    TESTS.parent / "inventory",
    *sorted((TESTS / "fixtures" / "inventory").glob("*.yaml")),
    *sorted((TESTS / "rules" / "fixtures").glob("*.yaml")),
)


def _systems() -> list[System]:
    return [system for path in INVENTORIES for system in load_inventory([path]).systems]


def _rule_files(system: System, folder: Path) -> list[Path]:
    files = []
    for document in generate_rules(system, DEFAULT_CONFIG):
        if document.path.endswith(".rules.yaml"):
            target = folder / Path(document.path).name
            target.write_bytes(render(document))
            files.append(target)
    return files


@pytest.mark.parametrize("system", _systems(), ids=lambda system: system.name)
def test_promtool_lint_fatal_accepts_every_rule_file_of_the_fleet_and_the_test_systems(
    system: System, tmp_path: Path
) -> None:
    files = _rule_files(system, tmp_path)
    assert files
    result = promtool.check_rules(files, lint_fatal=True)
    assert result.ok, result.output


def test_lint_fatal_fails_on_the_two_source_down_target_rules_of_a_pgbouncer_datastore_without_their_source(
    tmp_path: Path,
) -> None:
    """The check can fail: the targets rules as they were before each carried its `source` label."""
    [shipyard] = load_inventory([TESTS / "rules" / "fixtures" / "shipyard.yaml"]).systems
    [targets] = [file for file in _rule_files(shipyard, tmp_path) if file.name == "shipyard-targets.rules.yaml"]
    document = yaml.safe_load(targets.read_text())
    source_down = [rule for rule in document["groups"][0]["rules"] if rule.get("alert") == "PoolQueueSourceDown"]
    by_datastore = [rule["labels"]["datastore"] for rule in source_down]
    assert len(by_datastore) > len(set(by_datastore)), "shipyard has a datastore with a PgBouncer source"
    assert promtool.check_rules([targets], lint_fatal=True).ok
    for rule in source_down:
        del rule["labels"]["source"]
    targets.write_text(yaml.safe_dump(document, sort_keys=False))
    assert promtool.check_rules([targets]).ok, "without --lint-fatal promtool only warns"
    result = promtool.check_rules([targets], lint_fatal=True)
    assert result.returncode == promtool.LINT_EXIT_CODE
    assert "duplicate rule" in result.output and "PoolQueueSourceDown" in result.output
