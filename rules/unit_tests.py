"""promtool unit-test files: every alert's firing and quiet cases, plus each group's own tests.

One test file per rule group, next to its rule file, loading the groups it depends on first
(`group_eval_order`), so that recording rules feed the alerts within the same evaluation.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from obsbundle.rules.definitions import (
    Alert,
    AlertCheck,
    ExpectedAlert,
    RuleGroup,
    UnitTest,
    merge_inputs,
)
from obsbundle.rules.test_inputs import STEP


def rule_file_name(group: str) -> str:
    return f"{group}.rules.yaml"


def test_file_name(group: str, evaluation_interval: str = STEP) -> str:
    """`<group>.test.yaml`, or `<group>.every-5m.test.yaml` for tests evaluated every 5 minutes."""
    if evaluation_interval == STEP:
        return f"{group}.test.yaml"
    return f"{group}.every-{evaluation_interval}.test.yaml"


def case_tests(group: RuleGroup) -> list[UnitTest]:
    """Two tests per alert with a `Case`: the alert fires on its firing input, and nothing of its
    name fires on its quiet input. Other rules of the name add their quiet input when it matters."""
    by_name: dict[str, list[Alert]] = defaultdict(list)
    for alert in group.alerts:
        by_name[alert.name].append(alert)
    tests: list[UnitTest] = []
    for alert in group.alerts:
        case = alert.case
        if case is None:
            continue
        others = [other for other in by_name[alert.name] if other is not alert]
        background = (
            merge_inputs(*(other.case.quiet for other in others if other.case and other.case.quiet))
            if case.background
            else ()
        )
        about = f" ({alert.entity})" if alert.entity else ""
        tests.append(
            UnitTest(
                f"{alert.name}{about} fires",
                merge_inputs(background, case.firing),
                (AlertCheck(case.eval_time, alert.name, (ExpectedAlert(alert, case.labels, case.value),)),),
                evaluation_interval=case.evaluation_interval,
            )
        )
        if case.quiet is not None:
            tests.append(
                UnitTest(
                    f"{alert.name}{about} stays quiet",
                    merge_inputs(background, case.quiet),
                    (AlertCheck(case.eval_time, alert.name, ()),),
                    evaluation_interval=case.evaluation_interval,
                )
            )
    return tests


def _expected(alert: ExpectedAlert) -> dict[str, Any]:
    return {
        "exp_labels": alert.alert.expected_labels(alert.labels),
        "exp_annotations": alert.alert.expected_annotations(alert.labels, alert.value),
    }


def _test_dict(test: UnitTest) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": test.name,
        "interval": STEP,
        "input_series": [{"series": item.series, "values": item.values} for item in test.inputs],
    }
    if test.alert_checks:
        entry["alert_rule_test"] = [_alert_check(check) for check in test.alert_checks]
    if test.sample_checks:
        entry["promql_expr_test"] = [
            {
                "expr": check.expr,
                "eval_time": check.eval_time,
                "exp_samples": [{"labels": labels, "value": value} for labels, value in check.samples],
            }
            for check in test.sample_checks
        ]
    return entry


def _alert_check(check: AlertCheck) -> dict[str, Any]:
    expected = sorted((_expected(alert) for alert in check.firing), key=lambda e: sorted(e["exp_labels"].items()))
    return {"eval_time": check.eval_time, "alertname": check.alertname, "exp_alerts": expected}


def test_files(group: RuleGroup) -> dict[str, dict[str, Any]]:
    """The promtool test files of a group by file name: one per evaluation interval its tests use."""
    by_interval: dict[str, list[UnitTest]] = defaultdict(list)
    for test in [*case_tests(group), *group.tests]:
        by_interval[test.evaluation_interval].append(test)
    order = [*group.depends_on, group.name]
    return {
        test_file_name(group.name, interval): {
            "rule_files": [rule_file_name(name) for name in order],
            "evaluation_interval": interval,
            "group_eval_order": order,
            "tests": [_test_dict(test) for test in tests],
        }
        for interval, tests in sorted(by_interval.items())
    }
