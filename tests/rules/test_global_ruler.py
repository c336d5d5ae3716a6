"""`--ruler global`: rules for a ruler that sees many clusters keep each cluster apart.

The promtool cases here run the generated global rule files with input series that carry `cluster`
as remote-written or Thanos series do (their Prometheus's external label): the same system runs in
two clusters, and an outage in one pages for that cluster alone, then in the other for it alone.
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml

from obsbundle.bundle import build
from obsbundle.cli import main
from obsbundle.config import build_config
from obsbundle.errors import InputError
from obsbundle.loader import load_inventory
from obsbundle.model import Inventory, System
from obsbundle.promql_clusters import CLUSTER, series_in_cluster
from obsbundle.render import render
from obsbundle.rules import RULES_DIR, alerting_components, generate_rules
from obsbundle.rules.definitions import Alert, InputSeries, RuleGroup, merge_inputs
from obsbundle.rules.input_series import STEP
from obsbundle.rules.promtool_tests import rule_file_name
from obsbundle.rules.ruler import MIMIR_DIR, dashboard_link_in_cluster
from obsbundle.rules.slo import ServiceSlo, alerts_group_name, burn_doc, service_slos
from obsbundle.rules.slo_scenarios import SloTests, _outage_scenario, sli_inputs
from obsbundle.settings import Ruler
from obsbundle.tools import promtool
from tests.rules.conftest import FIXTURES

GLOBAL = build_config(ruler=Ruler.GLOBAL)
A, B = "cluster-a", "cluster-b"


def _in_two_clusters(system: System) -> System:
    """`system` as it runs in clusters a and b (the same services, namespaces and SLOs in each)."""
    return system.model_copy(update={"cluster": A, "clusters": (A, B)})


def _write_rules(system: System, root: Path) -> Path:
    for document in generate_rules(system, GLOBAL):
        target = root / document.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(render(document))
    return root / RULES_DIR


def test_without_ruler_the_output_is_byte_identical_to_ruler_local(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path / "default"), "--jobs", "1"]) == 0
    assert main(["--out", str(tmp_path / "local"), "--ruler", "local", "--jobs", "1"]) == 0
    default, local = (
        {path.relative_to(root): path.read_bytes() for path in root.rglob("*") if path.is_file()}
        for root in (tmp_path / "default", tmp_path / "local")
    )
    assert len(default) > 700
    assert local == default
    assert not any(MIMIR_DIR in path.parts for path in default)


@pytest.mark.parametrize("two_clusters", [False, True], ids=["one cluster", "two clusters"])
def test_promtool_accepts_every_global_rule_file(
    tmp_path: Path, rule_systems: dict[str, System], two_clusters: bool
) -> None:
    files: list[Path] = []
    for system in rule_systems.values():
        chosen = _in_two_clusters(system) if two_clusters else system
        files.extend(sorted(_write_rules(chosen, tmp_path / system.name).glob("*.rules.yaml")))
    result = promtool.check_rules(files)
    assert result.ok, result.output
    assert result.output.count("SUCCESS") == len(files) > 100


def test_the_mimir_file_holds_every_group_of_the_system_in_one_namespace_named_after_it(
    default_inventory: Inventory,
) -> None:
    system = default_inventory.systems[0]
    output = build(Inventory(systems=(system,)), GLOBAL)
    namespace = yaml.safe_load(output[f"{system.name}/{MIMIR_DIR}/{system.name}.rules.yaml"])
    plain = [
        group
        for path, content in sorted(output.items())
        if path.startswith(f"{system.name}/{RULES_DIR}/") and path.endswith(".rules.yaml")
        for group in yaml.safe_load(content)["groups"]
    ]
    assert set(namespace) == {"namespace", "groups"}
    assert namespace["namespace"] == system.name
    assert sorted(namespace["groups"], key=lambda group: group["name"]) == sorted(plain, key=lambda g: g["name"])


def _relabelled(inputs: Iterable[InputSeries], cluster: str) -> tuple[InputSeries, ...]:
    return tuple(InputSeries(series_in_cluster(item.series, cluster), item.values) for item in inputs)


def _expected(alert: Alert, labels: dict[str, str], value: float) -> dict[str, Any]:
    annotations = alert.expected_annotations(labels, value)
    if "dashboard_url" in annotations:  # the page's link opens the dashboard on the failing cluster
        annotations["dashboard_url"] = dashboard_link_in_cluster(annotations["dashboard_url"], labels[CLUSTER])
    return {"exp_labels": alert.expected_labels(labels), "exp_annotations": annotations}


def _test(name: str, inputs: Iterable[InputSeries], eval_time: str, alertname: str,
          expected: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": name,
        "interval": STEP,
        "input_series": [{"series": item.series, "values": item.values} for item in inputs],
        "alert_rule_test": [{"eval_time": eval_time, "alertname": alertname, "exp_alerts": expected}],
    }


def _one_cluster_fails(group: RuleGroup) -> dict[str, list[dict[str, Any]]]:
    """For every alert of `group` with a firing and a quiet case, by evaluation interval: it fires
    in cluster a alone while b is quiet, and in b alone while a is quiet. Alerts that fire on missing
    data, when a group has several of one name, get their siblings' quiet inputs in both clusters,
    as their own tests do (`promtool_tests.case_tests`)."""
    by_name: dict[str, list[Alert]] = defaultdict(list)
    for alert in group.alerts:
        if alert.case is not None and alert.case.quiet is not None:
            by_name[alert.name].append(alert)
    tests: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for name, alerts in by_name.items():
        background = any(alert.case and alert.case.background for alert in alerts) and len(alerts) > 1
        quiet_all = merge_inputs(*(alert.case.quiet for alert in alerts if alert.case and alert.case.quiet))
        for alert in alerts[:1] if background else alerts:
            case = alert.case
            assert case is not None and case.quiet is not None
            quiet = quiet_all if background else case.quiet
            for failing, fine in ((A, B), (B, A)):
                inputs = (
                    *merge_inputs(_relabelled(quiet, failing) if background else (), _relabelled(case.firing, failing)),
                    *_relabelled(quiet, fine),
                )
                labels = {**case.labels, CLUSTER: failing}
                tests[case.evaluation_interval].append(
                    _test(f"{name} ({alert.entity}) fires in {failing} alone, not in {fine}", inputs,
                          case.eval_time, name, [_expected(alert, labels, case.value)])
                )
    return tests


def _write_tests(rules: Path, group: RuleGroup, tests: dict[str, list[dict[str, Any]]]) -> list[Path]:
    order = [*group.depends_on, group.name]
    written = []
    for interval, entries in sorted(tests.items()):
        path = rules / f"{group.name}.two-clusters.every-{interval}.test.yaml"
        path.write_text(yaml.safe_dump({
            "rule_files": [rule_file_name(name) for name in order],
            "evaluation_interval": interval,
            "group_eval_order": order,
            "tests": entries,
        }, sort_keys=False, width=10_000))
        written.append(path)
    return written


def test_an_outage_in_one_of_two_clusters_running_the_same_system_pages_for_that_cluster_alone(
    tmp_path: Path, shipyard: System
) -> None:
    system = _in_two_clusters(shipyard)  # one of every rule shape
    rules = _write_rules(system, tmp_path)
    files: list[Path] = []
    cases = 0
    for _, groups in alerting_components(system, GLOBAL.rules):
        for group in groups:
            tests = _one_cluster_fails(group)
            cases += sum(map(len, tests.values()))
            files.extend(_write_tests(rules, group, tests))
    assert cases > 100
    result = promtool.test_rules(files)
    assert result.ok, result.output[-6000:]


def _slo_outage_tests(system: System, item: ServiceSlo, slo_tests: SloTests) -> list[dict[str, Any]]:
    """A full outage of one SLO in cluster a while b serves the same traffic cleanly pages for a
    alone, at the outage scenario's detection time; then the same with the clusters swapped."""
    outage = _outage_scenario(item, GLOBAL.rules)
    healthy = tuple(dataclasses.replace(segment, bad_share=Fraction(0)) for segment in outage.segments)
    failing_inputs, fine_inputs = sli_inputs(item, outage.segments), sli_inputs(item, healthy)
    assert failing_inputs is not None and fine_inputs is not None
    name = burn_doc(item.slo).name
    tests = []
    for failing, fine in ((A, B), (B, A)):
        inputs = (*_relabelled(failing_inputs, failing), *_relabelled(fine_inputs, fine))
        checks = []
        for at, firing in outage.checks:
            expected = [
                _expected(each.alert, {**each.labels, CLUSTER: failing}, each.value)
                for each in slo_tests._expected(item, firing)
            ]
            checks.append({"eval_time": f"{at}m", "alertname": name, "exp_alerts": expected})
        test = _test(f"{item.service.name} {item.slo.name}: a full outage in {failing} pages for it, not {fine}",
                     inputs, "0m", name, [])
        test["alert_rule_test"] = checks
        tests.append(test)
    return tests


def _slo_outage_files(system: System, rules: Path, services: set[str] | None = None) -> list[Path]:
    """The two-cluster SLO outage tests of `system` (of `services` only, if given), written next to
    the rule files in `rules`."""
    files: list[Path] = []
    for group in dict(alerting_components(system, GLOBAL.rules))["slo"]:
        items = [
            item for item in service_slos(system)
            if alerts_group_name(system, item.service) == group.name and not item.slo.group_by
            and (services is None or item.service.name in services)
        ]
        if not group.alerts or not items:
            continue
        slo_tests = SloTests(system, group.alerts, items, GLOBAL.rules)
        tests = [test for item in items for test in _slo_outage_tests(system, item, slo_tests)]
        files.extend(_write_tests(rules, group, {STEP: tests}))
    return files


def test_a_full_slo_outage_in_one_of_two_clusters_pages_for_that_cluster_alone(
    tmp_path: Path, rule_systems: dict[str, System]
) -> None:
    system = _in_two_clusters(rule_systems["ecoeco"])
    files = _slo_outage_files(system, _write_rules(system, tmp_path))
    assert len(files) == sum(1 for service in system.services if any(not slo.group_by for slo in service.slos)) > 3
    result = promtool.test_rules(files)
    assert result.ok, result.output[-6000:]


def test_with_the_local_rules_an_outage_in_one_cluster_never_pages_for_that_cluster(
    tmp_path: Path, rule_systems: dict[str, System]
) -> None:
    # The same tests against the local rules, which sum both clusters: what the issue measured, and
    # proof that the tests above can fail. The local rules page late (half the traffic fails) or
    # not at all when each check expects the page, and what they raise names no cluster.
    system = _in_two_clusters(rule_systems["ecoeco"])
    rules = tmp_path / RULES_DIR
    for document in generate_rules(system, build_config()):
        if document.path.startswith(RULES_DIR):
            (tmp_path / document.path).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / document.path).write_bytes(render(document))
    result = promtool.test_rules(_slo_outage_files(system, rules, {"auth-service"}))
    assert not result.ok
    assert result.output.count("a full outage in") >= 4  # each SLO, each cluster: failed
    raised = re.findall(r"got:\[(.*?)\]", result.output, flags=re.DOTALL)
    assert not any(f'{CLUSTER}="' in alerts for alerts in raised)


def test_an_sli_query_that_matches_cluster_itself_is_refused_for_a_global_ruler_naming_it(tmp_path: Path) -> None:
    text = (FIXTURES / "shipyard.yaml").read_text().replace(
        "good_query: 'invoices_processed_total{outcome=\"ok\"}'",
        "good_query: 'invoices_processed_total{outcome=\"ok\",cluster=\"eu\"}'",
    )
    assert 'cluster="eu"' in text
    (tmp_path / "shipyard.yaml").write_text(text)
    system = load_inventory([tmp_path / "shipyard.yaml"]).systems[0]
    list(generate_rules(system, build_config()))  # the local rules take it as it is
    with pytest.raises(InputError, match=r"shipyard: --ruler: global rules cannot keep clusters apart: a selector "
                       r"that matches `cluster` itself in: .*invoices_processed_total"):
        list(generate_rules(system, GLOBAL))
