"""promtool accepts every generated rule file, every generated unit test passes, and the tests
fail when a rule drifts from what they prove."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from obsbundle.tools import promtool

SYSTEMS = ("aegis", "ecoeco", "logpilot", "shipyard")


def _rules_dir(tree: Path, system: str) -> Path:
    return tree / system / "prometheus" / "rules"


def _test_all(files: Sequence[Path]) -> list[promtool.ToolResult]:
    """One promtool per test file, as many at a time as there are cores."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return list(pool.map(lambda file: promtool.test_rules([file]), files))


@pytest.mark.parametrize("system", SYSTEMS)
def test_promtool_accepts_every_rule_file_of_the_system(rule_tree: Path, system: str) -> None:
    files = sorted(_rules_dir(rule_tree, system).glob("*.rules.yaml"))
    assert files
    result = promtool.check_rules(files)
    assert result.ok, result.output


@pytest.mark.parametrize("system", SYSTEMS)
def test_every_generated_promtool_test_of_the_system_passes(rule_tree: Path, system: str) -> None:
    files = sorted(_rules_dir(rule_tree, system).glob("*.test.yaml"))
    assert files
    failures = [result.output for result in _test_all(files) if not result.ok]
    assert not failures, "\n\n".join(failures)


def _copy_group(tree: Path, system: str, group: str, into: Path) -> Path:
    """The group's test files and every rule file next to them, copied so that one can be changed."""
    source = _rules_dir(tree, system)
    for file in source.glob("*.rules.yaml"):
        shutil.copy(file, into / file.name)
    for file in source.glob(f"{group}.*test.yaml"):
        shutil.copy(file, into / file.name)
    return into


def _replace(file: Path, old: str, new: str) -> None:
    text = file.read_text()
    assert old in text, f"{old!r} is not in {file.name}"
    file.write_text(text.replace(old, new))


def test_the_node_cpu_tests_fail_when_the_alert_threshold_drifts(rule_tree: Path, tmp_path: Path) -> None:
    folder = _copy_group(rule_tree, "ecoeco", "ecoeco-node-pool-auth", tmp_path)
    _replace(folder / "ecoeco-node-pool-auth.rules.yaml", 'node_pool="auth"} > 0.9', 'node_pool="auth"} > 0.97')
    result = promtool.test_rules([folder / "ecoeco-node-pool-auth.test.yaml"])
    assert not result.ok
    assert "NodeCpuHigh" in result.output


def test_the_slo_tests_fail_when_a_burn_factor_drifts(rule_tree: Path, tmp_path: Path) -> None:
    folder = _copy_group(rule_tree, "logpilot", "logpilot-slo-alerts-logpilot-grpc", tmp_path)
    # 12 instead of 14.4: the page now fires at 0.9 × the Workbook's threshold, and the quiet test says no.
    _replace(folder / "logpilot-slo-alerts-logpilot-grpc.rules.yaml", "(14.4 * 0.001)", "(12 * 0.001)")
    result = promtool.test_rules([folder / "logpilot-slo-alerts-logpilot-grpc.test.yaml"])
    assert not result.ok
    assert "1h-5m tier stays quiet" in result.output


def test_the_slo_tests_fail_when_a_window_loses_a_piece(rule_tree: Path, tmp_path: Path) -> None:
    folder = _copy_group(rule_tree, "logpilot", "logpilot-slo-alerts-logpilot-grpc", tmp_path)
    # A 1h window that forgets its older half sees an outage twice as fast as the Workbook allows.
    windows = folder / "logpilot-slo-windows.rules.yaml"
    text = windows.read_text()
    pieces = text.count('increase30m{system="logpilot"} offset 30m')
    assert pieces == 2
    windows.write_text(text.replace(" offset 30m or 0 *", " offset 30m * 0 or 0 *"))
    result = promtool.test_rules([folder / "logpilot-slo-alerts-logpilot-grpc.test.yaml"])
    assert not result.ok
    assert "a full outage pages" in result.output
