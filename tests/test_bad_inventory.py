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
    "clusters without the system's cluster": (
        _set("clusters", ["shop-eu", "shop-us"]),
        ["clusters", "must include the system's `cluster` (shop-test)"],
    ),
    "a cluster listed twice": (
        _set("clusters", ["shop-test", "shop-us", "shop-us"]),
        ["clusters", "names shop-us more than once"],
    ),
    "a cluster name with a space": (
        _set("clusters", ["shop-test", "shop us"]),
        ["clusters[1]", "letters, digits", "got 'shop us'"],
    ),
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
        [
            "services[0].slos[0].objective",
            "the page alert can never fire: at 90 % over 28d it needs an error ratio of 13.44 × 0.1 ≥ 1",
            # 20d gives 0.02 × 480 h / 1 h × 0.1 = 0.96 < 1, 21d gives 1.008; 100 − 100 / 13.44 = 92.5595…
            "shorten the window to 20d or less, or raise the objective above 92.56",
        ],
    ),
    "objective written as a fraction": (
        _set("services.0.slos.0.objective", 0.999),
        ["services[0].slos[0].objective", "is in percent, not a fraction: write 99.9 for 0.999", "got 0.999"],
    ),
    "objective with a percent sign": (
        _set("services.0.slos.0.objective", "99.9%"),
        ["services[0].slos[0].objective", "without '%'", "write 99.9", "got '99.9%'"],
    ),
    "max_connections_alert written as a percentage": (
        _set("datastores.0.max_connections_alert", 80),
        ["datastores[0].max_connections_alert", "is a share of 1, not a percentage: write 0.8 for 80 %", "got 80"],
    ),
    "a gauge SLO with another kind's query": (
        _append(
            "services.0.slos",
            {"name": "probe", "objective": 99.9, "gauge_query": "probe_success", "bad_query": "x_total"},
        ),
        ["services[0].slos[1]", "bad_query is for bad-events SLOs, but gauge_query makes this a gauge SLO",
         "remove it, or set sli: bad-events and give its keys (bad_query, total_query)"],
    ),
    "an event SLO counting a rate over the window": (
        _append(
            "services.0.slos",
            {"name": "jobs", "objective": 99, "bad_query": "sum(rate(jobs_failed_total[{{.window}}]))",
             "total_query": "sum(increase(jobs_total[{{.window}}]))"},
        ),
        ["services[0].slos[1].bad_query", "counts events per second", "write increase(...[{{.window}}]) instead"],
    ),
    "latency threshold without a unit": (
        _append("services.0.slos", {"name": "latency", "objective": 99, "threshold": 300}),
        ["services[0].slos[1].threshold", "a duration needs a unit", "ms, s, m, h, d, w or y", "got 300"],
    ),
    "SLO window without a unit": (
        _set("services.0.slos.0.window", 30),
        ["services[0].slos[0].window", "write e.g. 30d", "d (whole days, 1d to 90d)", "got 30"],
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
    "rollout controller without the Rollouts controller's namespace": (
        _set("services.0.controller", "rollout"),
        ["services[0].controller", "'rollout' needs platform.argo_rollouts_namespace", "controller: deployment"],
    ),
    "platform workload's rollout controller without the Rollouts controller's namespace": (
        _set("platform", {"workloads": [{"name": "web", "namespace": "edge", "controller": "rollout"}]}),
        ["platform.workloads[0].controller", "'rollout' needs platform.argo_rollouts_namespace"],
    ),
    "platform workload of any controller on an undefined pool": (
        _set("platform", {"workloads": [{"name": "coredns", "namespace": "kube-system", "node_pool": "system"}]}),
        ["platform.workloads[0].node_pool", "'system' is not a defined node pool (defined: general)"],
    ),
    "platform workload listed twice in a namespace, whatever its controller": (
        _set("platform", {"workloads": [
            {"name": "coredns", "namespace": "kube-system"},
            {"name": "coredns", "namespace": "kube-system", "controller": "daemonset"},
        ]}),
        ["platform.workloads[1].name", "duplicate platform workload 'kube-system/coredns'",
         "(also at platform.workloads[0])"],
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


def test_a_jsonnet_error_is_reported_with_its_file_and_the_location_jsonnet_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.jsonnet"
    broken.write_text("{\n  name: std.nosuchfunction(),\n}")
    assert main(["--inventory", str(broken), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == (
        f"error: {broken}: (top level): Jsonnet error: RUNTIME ERROR: field does not exist: nosuchfunction "
        f"(at {broken}:2:9-27)\n"
    )


def test_a_jsonnet_syntax_error_keeps_the_location_in_its_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.jsonnet"
    broken.write_text("{ name: + }")
    assert main(["--inventory", str(broken), "--out", str(tmp_path / "out")]) == 2
    assert f"error: {broken}: (top level): Jsonnet error: STATIC ERROR: {broken}:1:11: " in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "(top level): the file is empty: write one System mapping, apiVersion: obsbundle/v1, kind: System"),
        ("# nothing yet\n", "(top level): the file is empty"),
        ("- name: shop\n- name: other\n", "(top level): is a list of 2, but a file holds one System mapping"),
        (
            "apiVersion: obsbundle/v1\n---\nkind: System\n",
            "(top level): holds more than one YAML document (another starts at line 2): one system per file: "
            "split it into files of their own",
        ),
    ],
    ids=["empty", "only a comment", "a list", "two documents"],
)
def test_a_file_that_is_not_one_system_mapping_says_what_it_is(
    text: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(text)
    assert main(["--inventory", str(broken), "--out", str(tmp_path / "out")]) == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith(f"error: {broken}: {expected}"), stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert not (tmp_path / "out").exists()


def _several_mistakes() -> dict[str, Any]:
    """The shop with mistakes of every sort, each of which used to hide the ones after it."""
    data = copy.deepcopy(BASE)
    data["owner"]["slack_channel"] = "shop-alerts"  # a field the model refuses
    data["services"][0]["metrics"]["interval"] = 30  # a field of a service that then does not validate
    data["services"][1]["slos"] = [{"name": "availability", "objective": "99.9%"}]  # an SLO refused
    data["services"][1]["node_pool"] = "gpu"  # a cross-reference of the service whose SLO was refused
    data["services"][2]["node_pool"] = "gpu"  # a cross-reference of a valid service
    data["services"][3]["name"] = "checkout"  # a duplicate of the service that does not validate
    data["datastores"][0]["max_connections_alert"] = 80
    return data


SEVERAL_MISTAKES = [
    "owner.slack_channel: has the wrong form",
    "services[0].metrics.interval: a duration needs a unit",
    "services[1].slos[0].objective: must be a plain number of percent",
    "services[1].node_pool: 'gpu' is not a defined node pool",
    "services[2].node_pool: 'gpu' is not a defined node pool",
    "services[3].name: duplicate service name 'checkout' (also at services[0])",
    "datastores[0].max_connections_alert: is a share of 1, not a percentage: write 0.8 for 80 %",
]


def test_every_mistake_of_a_file_is_reported_in_one_run(
    tmp_path: Path, previous_output: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(_several_mistakes(), sort_keys=False))
    before = _tree_digest(previous_output)
    capsys.readouterr()

    assert main(["--inventory", str(broken), "--out", str(previous_output)]) == 2

    lines = capsys.readouterr().err.strip().splitlines()
    for expected in SEVERAL_MISTAKES:
        assert sum(line.startswith(f"error: {broken}: {expected}") for line in lines) == 1, (expected, lines)
    assert len(lines) == len(SEVERAL_MISTAKES), lines
    assert _tree_digest(previous_output) == before


def test_the_mistakes_of_every_file_are_reported_in_one_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "inventory"
    folder.mkdir()
    (folder / "a.yaml").write_text(yaml.safe_dump(_several_mistakes(), sort_keys=False))
    other = copy.deepcopy(BASE)
    other["name"] = "other"
    other["services"][0]["slos"][0]["objective"] = 90
    (folder / "b.yaml").write_text(yaml.safe_dump(other, sort_keys=False))

    assert main(["--inventory", str(folder), "--out", str(tmp_path / "out")]) == 2

    lines = capsys.readouterr().err.strip().splitlines()
    assert [line for line in lines if line.startswith(f"error: {folder / 'b.yaml'}: ")] == [
        f"error: {folder / 'b.yaml'}: services[0].slos[0].objective: the page alert can never fire: at 90 % over "
        "28d it needs an error ratio of 13.44 × 0.1 ≥ 1: shorten the window to 20d or less, or raise the objective "
        "above 92.56"
    ]
    assert len([line for line in lines if line.startswith(f"error: {folder / 'a.yaml'}: ")]) == len(SEVERAL_MISTAKES)
    assert not (tmp_path / "out").exists()


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
