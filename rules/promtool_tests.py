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
from obsbundle.rules.input_series import STEP


def rule_file_name(group: str) -> str:
    return f"{group}.rules.yaml"


def test_file_name(group: str, evaluation_interval: str = STEP) -> str:
    """`<group>.test.yaml`, or `<group>.every-5m.test.yaml` for tests evaluated every 5 minutes."""
    if evaluation_interval == STEP:
        return f"{group}.test.yaml"
    return f"{group}.every-{evaluation_interval}.test.yaml"


def case_tests(group: RuleGroup) -> list[UnitTest]:
    """Every alert with a `Case` fires on its firing input, with exactly its labels and annotations,
    and stays quiet on its quiet input.

    Most alerts get two tests each. Alerts that fire on missing data (`background`) would need every
    sibling rule's quiet input in each of those tests, which grows with the square of the number of
    services; they get three tests per name instead, each carrying every sibling once.
    """
    by_name: dict[str, list[Alert]] = defaultdict(list)
    for alert in group.alerts:
        if alert.case is not None:
            by_name[alert.name].append(alert)
    tests: list[UnitTest] = []
    for name, alerts in by_name.items():
        if any(alert.case and alert.case.background for alert in alerts) and len(alerts) > 1:
            tests.extend(_sibling_tests(name, alerts))
        else:
            tests.extend(test for alert in alerts for test in _own_tests(alert))
    return tests


def _own_tests(alert: Alert) -> list[UnitTest]:
    case = alert.case
    assert case is not None
    about = f" ({alert.entity})" if alert.entity else ""
    tests = [
        UnitTest(
            f"{alert.name}{about} fires",
            case.firing,
            (AlertCheck(case.eval_time, alert.name, (ExpectedAlert(alert, case.labels, case.value),)),),
            evaluation_interval=case.evaluation_interval,
        )
    ]
    if case.quiet is not None:
        tests.append(
            UnitTest(
                f"{alert.name}{about} stays quiet",
                case.quiet,
                (AlertCheck(case.eval_time, alert.name, ()),),
                evaluation_interval=case.evaluation_interval,
            )
        )
    return tests


def _sibling_tests(name: str, alerts: list[Alert]) -> list[UnitTest]:
    """Every sibling fires at once; none fires; only the first fires (each rule selects its own)."""
    cases = [(alert, alert.case) for alert in alerts if alert.case is not None]
    first, first_case = cases[0]
    eval_time, interval = first_case.eval_time, first_case.evaluation_interval
    quiet = [case.quiet for _, case in cases if case.quiet is not None]
    return [
        UnitTest(
            f"{name} fires for each of {len(cases)}",
            merge_inputs(*(case.firing for _, case in cases)),
            (AlertCheck(eval_time, name, tuple(ExpectedAlert(a, c.labels, c.value) for a, c in cases)),),
            evaluation_interval=interval,
        ),
        UnitTest(
            f"{name} stays quiet for all {len(cases)}",
            merge_inputs(*quiet),
            (AlertCheck(eval_time, name, ()),),
            evaluation_interval=interval,
        ),
        UnitTest(
            f"{name} ({first.entity}) fires alone",
            merge_inputs(*quiet, first_case.firing),
            (AlertCheck(eval_time, name, (ExpectedAlert(first, first_case.labels, first_case.value),)),),
            evaluation_interval=interval,
        ),
    ]


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
