"""A broken inventory exits 2 with one message naming file, key path, value and fix; nothing is lost."""

from __future__ import annotations

import copy
import hashlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from obsbundle.cli import main
from tests.conftest import FIXTURES, REPO

BASE: dict[str, Any] = yaml.safe_load((FIXTURES / "inventory" / "shop.yaml").read_text())

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    """Mutation that sets a dotted path (`services.0.slos.0.objective`) in the inventory."""

    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _append(path: str, value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        node: Any = data
        for part in path.split("."):
            node = node[int(part)] if isinstance(node, list) else node[part]
        node.append(value)

    return mutate


def _delete(key: str) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        del data[key]

    return mutate


CASES: dict[str, tuple[Mutation, list[str]]] = {
    "objective above 100": (
        _set("services.0.slos.0.objective", 150),
        ["services[0].slos[0].objective", "must be between 0 and 100", "got 150"],
    ),
    "objective of zero": (
        _set("services.0.slos.0.objective", 0),
        ["services[0].slos[0].objective", "must be between 0 and 100", "got 0"],
    ),
    "service on an undefined node pool": (
        _set("services.0.node_pool", "gpu"),
        ["services[0].node_pool", "'gpu' is not a defined node pool", "defined: general", "define it under node_pools"],
    ),
    "duplicate service name": (
        _set("services.1.name", "checkout"),
        ["services[1].name", "duplicate service name 'checkout'", "also at services[0]"],
    ),
    "bad duration": (
        _set("services.0.metrics.interval", "30 seconds"),
        ["services[0].metrics.interval", "'30 seconds' is not a Prometheus duration", "e.g. 30s"],
    ),
    "unknown key": (
        _set("services.0.replicaz", 3),
        ["services[0].replicaz", "unknown key 'replicaz'", "allowed keys here:", "replicas"],
    ),
    "unknown top-level key": (
        _set("nodepools", []),
        ["nodepools", "unknown key 'nodepools'", "node_pools"],
    ),
    "page alert that can never fire": (
        _set("services.0.slos.0.objective", 90),
        ["services[0].slos[0].objective", "the page alert can never fire", "raise the objective above"],
    ),
    "latency threshold that is not a bucket boundary": (
        _append("services.0.slos", {"name": "latency", "objective": 99, "threshold": "300ms"}),
        ["services[0].slos[1].threshold", "300ms is not a bucket boundary", "histogram_buckets"],
    ),
    "wrong api version": (
        _set("apiVersion", "obsbundle/v2"),
        ["apiVersion", "must be obsbundle/v1", "got 'obsbundle/v2'"],
    ),
    "missing required key": (
        _delete("cluster"),
        ["cluster", "required key is missing"],
    ),
    "scrape timeout longer than the interval": (
        _set("services.0.metrics.scrape_timeout", "60s"),
        ["services[0].metrics", "scrape_timeout (60s) is longer than interval (15s)"],
    ),
    "undefined datastore": (
        _set("services.0.datastores", ["orders-db", "cache"]),
        ["services[0].datastores[1]", "'cache' is not a defined datastore"],
    ),
    "queue on a datastore of another kind": (
        _set("queues", [{"name": "mail", "broker": "rabbitmq", "datastore": "orders-db"}]),
        ["queues[0].broker", "does not match datastore 'orders-db', which is postgres"],
    ),
    "a datastore owner's team with other channels": (
        _set("datastores.0.owner", {"team": "shop", "slack_channel": "#elsewhere"}),
        ["datastores[0].owner", "team 'shop' already has channels #shop-alerts"],
    ),
    "one team with two sets of channels": (
        _set("services.1.owner", {"team": "shop", "slack_channel": "#elsewhere"}),
        ["services[1].owner", "team 'shop' already has channels #shop-alerts"],
    ),
    "numbered port on a ServiceMonitor": (
        _set("services.0.metrics.port", 8080),
        ["services[0].metrics", "port 8080 is a number", "monitor: pod"],
    ),
    "bad slack channel": (
        _set("owner.slack_channel", "shop-alerts"),
        ["owner.slack_channel", "a Slack channel such as #team-alerts", "got 'shop-alerts'"],
    ),
}


def _tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def previous_output(tmp_path: Path) -> Path:
    """An output folder from a good run, to prove that a bad run leaves it alone."""
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(BASE))
    out = tmp_path / "out"
    assert main(["--inventory", str(good), "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_broken_inventory_exits_2_with_one_located_message_and_leaves_the_output_alone(
    case: str, tmp_path: Path, previous_output: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mutate, expected = CASES[case]
    data = copy.deepcopy(BASE)
    mutate(data)
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(data, sort_keys=False))
    before = _tree_digest(previous_output)
    capsys.readouterr()

    code = main(["--inventory", str(broken), "--out", str(previous_output)])

    stderr = capsys.readouterr().err
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"error: {broken}: "), stderr
    for fragment in expected:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    assert _tree_digest(previous_output) == before


def test_yaml_syntax_errors_name_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: obsbundle/v1\nkind: System\nname: [unclosed\n")
    assert main(["--inventory", str(broken), "--out", str(tmp_path / "out")]) == 2
    assert f"error: {broken}: (top level): not valid YAML at line" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_key_given_twice_is_an_error_rather_than_a_silent_override(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text((FIXTURES / "inventory" / "shop.yaml").read_text() + "cluster: other\n")
    assert main(["--inventory", str(broken), "--out", str(tmp_path / "out")]) == 2
    assert "found the key 'cluster' twice (first on line" in capsys.readouterr().err


def test_two_files_defining_the_same_system_are_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text(yaml.safe_dump(BASE))
    assert main(["--inventory", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert f"{tmp_path / 'b.yaml'}: name: system 'shop' is already defined in {tmp_path / 'a.yaml'}" in (
        capsys.readouterr().err
    )


def test_a_jsonnet_error_is_reported_with_its_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.jsonnet"
    broken.write_text("{ name: std.nosuchfunction() }")
    assert main(["--inventory", str(broken), "--out", str(tmp_path / "out")]) == 2
    assert f"error: {broken}: (top level): Jsonnet error:" in capsys.readouterr().err


def test_a_missing_inventory_path_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--inventory", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "out")]) == 2
    assert "no such file or directory" in capsys.readouterr().err


def test_unknown_flags_are_usage_errors_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--frobnicate"]) == 2
    assert "usage:" in capsys.readouterr().err


@pytest.mark.parametrize("jobs", ["0", "-1", "two"])
def test_a_job_count_below_one_is_a_usage_error(jobs: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--jobs", jobs]) == 2
    assert f"argument --jobs: {jobs!r} is not a whole number of 1 or more" in capsys.readouterr().err


def test_the_real_command_prints_no_traceback_for_bad_input(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["services"][0]["slos"][0]["objective"] = 150
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(data))
    result = subprocess.run(
        [sys.executable, str(REPO / "generate.py"), "--inventory", str(broken), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr == (
        f"error: {broken}: services[0].slos[0].objective: must be between 0 and 100, exclusive: "
        "write 99.9 for a 99.9 % objective (got 150)\n"
    )
