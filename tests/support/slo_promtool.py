"""promtool tests of one service's generated SLO rules, with input series written by the test.

The generator's own SLO tests feed the series it can derive (plain selectors); these helpers let a
test feed the series behind any SLI (regex matchers, ratios, gauges) and run them against the
rule files and group order of the service's generated SLO test file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from obsbundle.config import DEFAULT_CONFIG
from obsbundle.model import System
from obsbundle.render import render
from obsbundle.rules import generate_rules, rule_groups
from obsbundle.rules.slo import alerts_group_name
from obsbundle.tools import promtool


def counter_values(per_minute: Sequence[tuple[int, float]]) -> str:
    """promtool values of a counter from 0 growing by each (minutes, events a minute) in turn."""
    parts, total = ["0"], 0.0
    for minutes, rate in per_minute:
        parts.append(f"{total + rate:g}+{rate:g}x{minutes - 1}" if rate else f"{total:g}x{minutes - 1}")
        total += rate * minutes
    return " ".join(parts)


def gauge_values(per_minute: Sequence[tuple[int, int]]) -> str:
    """promtool values of a gauge: each (minutes, value) in turn, one sample a minute from minute 0."""
    parts = []
    for index, (minutes, value) in enumerate(per_minute):
        count = minutes + 1 if index == 0 else minutes  # the first run also covers minute 0
        parts.append(f"{value}x{count - 1}")
    return " ".join(parts)


def burn_alerts(service: str, state: str, window: str | None = None) -> str:
    """How many SloErrorBudgetBurn alerts of `service` are in `state` (of one tier, such as
    `1h-5m`, or any)."""
    tier = f',window="{window}"' if window else ""
    return f'count(ALERTS{{alertname="SloErrorBudgetBurn",service="{service}",alertstate="{state}"{tier}}})'


def count_at(minute: int, expr: str, count: int | None) -> dict[str, Any]:
    """A promql_expr_test: `expr` (a count) is `count` at `minute`, or returns nothing for None."""
    samples = [] if count is None else [{"labels": "{}", "value": count}]
    return {"expr": expr, "eval_time": f"{minute}m", "exp_samples": samples}


def page_for_minutes(system: System) -> int:
    """The `for` of the fastest page tier, in minutes."""
    page = next(
        alert
        for group in rule_groups(system, DEFAULT_CONFIG.rules)
        for alert in group.alerts
        if alert.name == "SloErrorBudgetBurn" and alert.labels["window"] == "1h-5m"
    )
    assert page.for_ is not None and page.for_.endswith("m"), page.for_
    return int(page.for_[:-1])


def run_service_tests(
    tmp_path: Path, system: System, service: str, tests: list[dict[str, Any]], *, interval: str = "1m"
) -> promtool.ToolResult:
    """Writes the system's generated rule files and `tests` next to them; runs promtool on the
    tests with the rule files and group order of `service`'s generated SLO test file."""
    for document in generate_rules(system, DEFAULT_CONFIG):
        (tmp_path / Path(document.path).name).write_bytes(render(document))
    generated_name = f"{alerts_group_name(system, system.service(service))}.test.yaml"
    generated = yaml.safe_load((tmp_path / generated_name).read_text())
    test_file = tmp_path / f"{service}-outage.test.yaml"
    test_file.write_text(
        yaml.safe_dump(
            {
                "rule_files": generated["rule_files"],
                "evaluation_interval": interval,
                "group_eval_order": generated["group_eval_order"],
                "tests": tests,
            },
            sort_keys=False,
        )
    )
    return promtool.test_rules([test_file])
