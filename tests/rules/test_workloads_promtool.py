"""The workload alerts of every system pass their own promtool cases, and those cases fail when a
rule drifts from the kubernetes-mixin semantics they prove.

Only the `workloads` and `platform-workloads` components are written and tested here, so that this
file runs in seconds; tests/rules/test_promtool.py runs every group of every system.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from obsbundle.config import DEFAULT_CONFIG
from obsbundle.documents import Document
from obsbundle.model import System
from obsbundle.render import render
from obsbundle.rules import component_groups, promtool_tests
from obsbundle.tools import promtool

COMPONENTS = ("workloads", "platform-workloads")


def write_workload_groups(system: System, into: Path) -> list[Path]:
    """The system's workload groups as rule files and promtool test files in `into`; the test files."""
    written: list[Path] = []
    for component, groups in component_groups(system, DEFAULT_CONFIG.rules):
        if component not in COMPONENTS:
            continue
        for group in groups:
            rules = Document("rules", {"groups": [group.to_dict()]})
            (into / promtool_tests.rule_file_name(group.name)).write_bytes(render(rules))
            for name, content in promtool_tests.test_files(group).items():
                (into / name).write_bytes(render(Document("tests", content)))
                written.append(into / name)
    return written


def _test_all(files: Sequence[Path]) -> list[promtool.ToolResult]:
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return list(pool.map(lambda file: promtool.test_rules([file]), files))


@pytest.fixture(scope="module")
def workload_tree(tmp_path_factory: pytest.TempPathFactory, rule_systems: dict[str, System]) -> dict[str, Path]:
    tree = {}
    for name, system in rule_systems.items():
        folder = tmp_path_factory.mktemp(name)
        write_workload_groups(system, folder)
        tree[name] = folder
    return tree


@pytest.mark.parametrize("system", ["aegis", "ecoeco", "logpilot", "shipyard"])
def test_promtool_accepts_the_workload_rule_files_and_every_workload_case_passes(
    workload_tree: dict[str, Path], system: str
) -> None:
    folder = workload_tree[system]
    rules = sorted(folder.glob("*.rules.yaml"))
    assert rules
    checked = promtool.check_rules(rules)
    assert checked.ok, checked.output
    failures = [result.output for result in _test_all(sorted(folder.glob("*.test.yaml"))) if not result.ok]
    assert not failures, "\n\n".join(failures)


def _drift(folder: Path, group: str, old: str, new: str) -> promtool.ToolResult:
    rules = folder / promtool_tests.rule_file_name(group)
    text = rules.read_text()
    assert old in text, f"{old!r} is not in {rules.name}"
    rules.write_text(text.replace(old, new))
    try:
        return promtool.test_rules(sorted(folder.glob(f"{group}.*test.yaml")))
    finally:
        rules.write_text(text)


def test_the_cpu_throttling_case_fails_when_the_threshold_drifts_above_the_throttled_share(
    workload_tree: dict[str, Path],
) -> None:
    result = _drift(workload_tree["ecoeco"], "ecoeco-workload-auth-service", "> 0.25", "> 0.6")
    assert not result.ok and "WorkloadCpuThrottlingHigh" in result.output


def test_the_statefulset_update_case_fails_when_the_revisions_are_no_longer_compared(
    workload_tree: dict[str, Path],
) -> None:
    # `unless` is what tells an update in flight from a settled StatefulSet; `and` would fire on neither.
    result = _drift(
        workload_tree["ecoeco"],
        "ecoeco-workload-datastore-postgresql",
        '} unless kube_statefulset_status_update_revision',
        '} and kube_statefulset_status_update_revision',
    )
    assert not result.ok and "WorkloadStatefulSetUpdateNotRolledOut" in result.output


def test_the_oom_case_fails_when_an_old_oom_kill_without_a_restart_is_enough(workload_tree: dict[str, Path]) -> None:
    result = _drift(workload_tree["ecoeco"], "ecoeco-workload-auth-service", "[15m])) > 0", "[15m])) >= 0")
    assert not result.ok
    assert re.search(r"name: WorkloadOomKilled.* stays quiet", result.output), result.output


def test_the_container_waiting_case_fails_when_the_alert_no_longer_waits_an_hour(
    workload_tree: dict[str, Path],
) -> None:
    # The quiet case is a container waiting for 50 minutes: 20m would fire on it.
    result = _drift(workload_tree["ecoeco"], "ecoeco-platform-workload-kube-system-coredns", "for: 1h", "for: 20m")
    assert not result.ok and "WorkloadContainerWaiting" in result.output
