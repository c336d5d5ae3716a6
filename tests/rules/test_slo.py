"""SLO arithmetic: windows that tile exactly, exact factors, the guard, and the Workbook's detection times."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml

from obsbundle import naming
from obsbundle.config import DEFAULT_CONFIG
from obsbundle.errors import InputError
from obsbundle.loader import load_inventory
from obsbundle.model import Inventory, Service, Slo, System
from obsbundle.monitors.workloads import workload_monitor
from obsbundle.promql import selector
from obsbundle.render import render
from obsbundle.rules import generate_rules, rule_groups
from obsbundle.rules.definitions import Alert, Recording
from obsbundle.rules.slo import (
    WINDOW_CHAIN,
    ServiceSlo,
    budget_burned,
    chain_pieces,
    min_bad_events,
    period_pieces,
    tier_threshold,
)
from obsbundle.rules.slo_scenarios import detection_rows, detection_table, quiet_page_bound_minutes, steady_service
from obsbundle.rules.templating import humanize_percentage
from obsbundle.settings import Settings
from obsbundle.slo_math import BURN_TIERS
from obsbundle.stacks import workload_target_labels
from obsbundle.tools import promtool
from tests.support import exposition

RULES = DEFAULT_CONFIG.rules

DOCS = Path(__file__).resolve().parents[2] / "docs" / "rules.md"
DAY = 86400


def _tiles(window_s: int, pieces: list[tuple[int, int]]) -> bool:
    """Pieces (length, offset) cover [0, window) back from now, each second exactly once."""
    covered = sorted((offset, offset + length) for length, offset in pieces)
    return (
        covered[0][0] == 0
        and covered[-1][1] == window_s
        and all(end == start for (_, end), (start, _) in itertools.pairwise(covered))
    )


@pytest.mark.parametrize("window_s", [window for window, _, _ in WINDOW_CHAIN])
def test_each_chained_window_is_tiled_exactly_by_the_window_before_it(window_s: int) -> None:
    assert _tiles(window_s, chain_pieces(window_s))


@pytest.mark.parametrize("days", [1, 2, 7, 28, 30, 90])
def test_an_slo_period_is_tiled_exactly_by_three_day_and_one_day_pieces(days: int) -> None:
    pieces = period_pieces(days * DAY)
    assert _tiles(days * DAY, pieces)
    assert len(pieces) == days // 3 + days % 3


def test_a_28_day_slo_gets_the_exact_factors_in_its_alert_thresholds(default_inventory: Inventory) -> None:
    aegis = next(system for system in default_inventory.systems if system.name == "aegis")
    exprs = {
        alert.labels[naming.WINDOW_LABEL]: alert.expr
        for group in rule_groups(aegis, RULES)
        for alert in group.alerts
        if alert.name == "SloErrorBudgetBurn" and alert.labels["service"] == "aegis-api"
        and alert.labels["slo"] == "availability"
    }  # fmt: skip
    assert "> (13.44 * 0.001)" in exprs["1h-5m"]
    assert "> (5.6 * 0.001)" in exprs["6h-30m"]
    assert "> (2.8 * 0.001)" in exprs["1d-2h"]
    assert "> (0.933333 * 0.001)" in exprs["3d-6h"]


def test_every_tier_guards_on_five_bad_events_in_its_long_window_by_default(shipyard: System) -> None:
    groups = rule_groups(shipyard, RULES)
    burns = [alert for group in groups for alert in group.alerts if alert.name == "SloErrorBudgetBurn"]
    assert burns
    for alert in burns:
        tier = next(t for t in BURN_TIERS if t.window_pair == alert.labels[naming.WINDOW_LABEL])
        labels = selector("", {name: alert.labels[name] for name in ("system", "namespace", "service", "slo")})
        total, good = (f"slo:sli_{kind}_events:increase{tier.long_window}{labels}" for kind in ("total", "good"))
        bad = f"{total} - {good}"
        assert f"\n  and {bad} >= 5\n)" in alert.expr, alert.expr
        assert alert.threshold is not None and alert.threshold.endswith(f"≥ 5 bad events over {tier.long_window}")


def test_an_slo_sets_its_own_minimum_of_bad_events(shipyard: System) -> None:
    service = next(service for service in shipyard.services if service.slos)
    strict = service.slos[0].model_copy(update={"min_bad_events": 12})
    changed = service.model_copy(update={"slos": (strict, *service.slos[1:])})
    system = shipyard.model_copy(update={"services": tuple(changed if s is service else s for s in shipyard.services)})
    assert min_bad_events(strict, RULES) == 12
    assert min_bad_events(service.slos[0], RULES) == RULES.slo_min_bad_events
    groups = rule_groups(system, RULES)
    guards = {
        alert.labels["slo"]: alert.expr.rsplit(">= ", 1)[1].split("\n", 1)[0]
        for group in groups
        for alert in group.alerts
        if alert.name == "SloErrorBudgetBurn" and alert.labels["service"] == service.name
    }
    assert guards[strict.name] == "12"
    assert all(guard == "5" for slo, guard in guards.items() if slo != strict.name)
    prefix = f"{service.name} {strict.name}: "
    names = [test.name[len(prefix) :] for group in groups for test in group.tests if test.name.startswith(prefix)]
    assert any(name.startswith("11 failed") and name.endswith("one more pages: the guard needs 12") for name in names)


def test_a_minimum_of_bad_events_below_one_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "hush.yaml"
    path.write_text(QUIET_SYSTEM.replace("window: 30d}", "window: 30d, min_bad_events: 0}"))
    with pytest.raises(InputError, match=r"services\[0\]\.slos\[0\]\.min_bad_events"):
        load_inventory([path])


def test_a_quiet_99_9_slo_pages_a_full_outage_within_15_minutes_in_every_generated_system(
    rule_systems: dict[str, System],
) -> None:
    """The generated quiet-outage scenario of every SLO of 99.9 % and above (one request a minute)."""
    found = 0
    for system in rule_systems.values():
        for service in system.services:
            for slo in service.slos:
                if slo.objective < Decimal("99.9"):
                    continue
                found += 1
                assert quiet_page_bound_minutes(ServiceSlo(service, slo), RULES) <= 15
                names = [test.name for group in rule_groups(system, RULES) for test in group.tests]
                prefix = f"{service.name} {slo.name}: at one request a minute a full outage pages "
                pages = [int(name[len(prefix) :].split("m", 1)[0]) for name in names if name.startswith(prefix)]
                assert len(pages) == 1 and pages[0] <= 15, pages
    assert found


def test_window_rules_cover_every_slo_of_the_system_in_one_expression(shipyard: System) -> None:
    windows = [
        rule
        for group in rule_groups(shipyard, RULES)
        if group.name.startswith("shipyard-slo-windows")
        for rule in group.rules
        if isinstance(rule, Recording)
    ]
    assert windows
    for rule in windows:
        assert "service=" not in rule.expr, rule.record


def test_each_slo_records_its_objective_and_budget_left(shipyard: System) -> None:
    recorded = {
        (rule.record, rule.labels.get("service"), rule.labels.get("slo"))
        for group in rule_groups(shipyard, RULES)
        for rule in group.rules
        if isinstance(rule, Recording)
    }
    for service in shipyard.services:
        for slo in service.slos:
            assert (naming.SLO_OBJECTIVE, service.name, slo.name) in recorded
            assert (naming.SLO_ERROR_BUDGET_REMAINING, service.name, slo.name) in recorded


def test_a_full_outage_pages_within_the_workbook_detection_time_plus_for(default_inventory: Inventory) -> None:
    """With one-minute evaluations: the first evaluation past factor × budget × 1h, then `for`."""
    for system in default_inventory.systems:
        for row in detection_rows(system, RULES):
            bound = math.ceil(row.detection_seconds / 60) + 1
            assert row.pages_after_minutes <= bound, row


def test_a_999_slo_over_30_days_detects_a_full_outage_in_52_seconds(default_inventory: Inventory) -> None:
    logpilot = next(system for system in default_inventory.systems if system.name == "logpilot")
    row = next(row for row in detection_rows(logpilot, RULES) if row.slo == "availability")
    assert round(row.detection_seconds) == 52
    assert row.pages_after_minutes == 2


def test_every_slo_has_a_generated_full_outage_scenario(rule_systems: dict[str, System]) -> None:
    for system in rule_systems.values():
        names = {test.name for group in rule_groups(system, RULES) for test in group.tests}
        for service in system.services:
            for slo in service.slos:
                assert any(name.startswith(f"{service.name} {slo.name}: a full outage pages") for name in names)


def test_one_service_per_system_runs_days_of_steady_traffic(rule_systems: dict[str, System]) -> None:
    for system in rule_systems.values():
        chosen = steady_service(system)
        groups = rule_groups(system, RULES)
        steady = [test for group in groups for test in group.tests if "raise no SLO alert" in test.name]
        assert len(steady) == 1
        assert steady[0].name and chosen is not None
        assert steady[0].evaluation_interval == "5m"


def test_the_detection_table_in_the_docs_is_the_one_the_rules_give(default_inventory: Inventory) -> None:
    assert detection_table(default_inventory.systems, RULES) in DOCS.read_text()


def test_page_thresholds_are_factor_times_budget_for_every_default_slo(default_inventory: Inventory) -> None:
    for system in default_inventory.systems:
        groups = rule_groups(system, RULES)
        burns: list[Alert] = [alert for group in groups for alert in group.alerts if alert.name == "SloErrorBudgetBurn"]
        for alert in burns:
            slo = next(s for s in system.service(alert.labels["service"]).slos if s.name == alert.labels["slo"])
            tier = next(t for t in BURN_TIERS if t.window_pair == alert.labels[naming.WINDOW_LABEL])
            assert tier_threshold(tier, slo) == tier.factor(slo.window_seconds) * Fraction(slo.error_budget)
            assert f"slo:sli_error:ratio_rate{tier.long_window}{{" in alert.expr
            assert f"slo:sli_error:ratio_rate{tier.short_window}{{" in alert.expr


# --- the low-traffic guard on a quiet service, run by promtool -------------------------------------
# A one-service system whose only traffic is one request a minute. Its series are those
# prometheus-client exposes (tests/fixtures/exposition/prometheus-client), as Prometheus stores them
# after the generated ServiceMonitor's scrape. Every expectation below is worked out by hand here,
# not by rules/slo_scenarios.py's model, so these tests stand apart from the generated ones.

QUIET_SYSTEM = """\
apiVersion: obsbundle/v1
kind: System
name: hush
cluster: hush-test
owner: {team: crew, slack_channel: "#crew"}
monitoring: {grafana_url: "https://grafana.hush.test", alertmanager_url: "https://am.hush.test",
             runbook_url: "https://runbooks.hush.test/{alert}"}
node_pools:
  - {name: general, min_nodes: 1, max_nodes: 1}
services:
  - name: api
    namespace: hush
    node_pool: general
    metrics: {port: http}
    slos:
      - {name: availability, objective: 99.9, window: 30d}
"""
QUIET_HISTORY = 60
"""Minutes of one successful request a minute before the outage: the page tier's 1h window is full."""
QUIET_DAYS = 1
"""Days of one successful request a minute before the single failure: every page and 1d window is
full of success. (The generated tests take the harder case of an hour: every window holds only it.)"""
PAGE_THRESHOLD = "(14.4 * 0.001)"
"""The 1h-5m tier's threshold for a 99.9 % SLO over 30 days, as the generated rule writes it."""


@pytest.fixture(scope="module")
def quiet_system(tmp_path_factory: pytest.TempPathFactory) -> System:
    path = tmp_path_factory.mktemp("hush") / "hush.yaml"
    path.write_text(QUIET_SYSTEM)
    return load_inventory([path]).systems[0]


def _stored_requests(system: System, status: str) -> str:
    """The stored series of the API's requests answered with `status`: an exposed prometheus-client
    series of that status, with the target labels of the generated ServiceMonitor's scrape."""
    service = system.services[0]
    exposed = next(
        series
        for series in exposition.load("prometheus-client")
        if series.name == "http_requests_total" and series.label_map["status"] == status
    )
    cluster_decided = {
        "job": service.name,
        "service": service.name,
        "instance": "10.244.0.12:8000",
        "pod": f"{service.name}-5d8f7c9b6-q7x2m",
        "container": service.name,
    }
    target = workload_target_labels(workload_monitor(system, service, Settings()))
    filled = {name: value if value is not None else cluster_decided[name] for name, value in target.items()}
    stored = exposition.instantiate(exposed, filled, honor_labels=False)
    return selector(stored.name, dict(stored.labels))


def _counter_values(per_minute: Sequence[tuple[int, int]]) -> str:
    """promtool values of a counter from 0 growing by each (minutes, requests a minute) in turn."""
    parts, total = ["0"], 0
    for minutes, rate in per_minute:
        parts.append(f"{total + rate}+{rate}x{minutes - 1}" if rate else f"{total}x{minutes - 1}")
        total += rate * minutes
    return " ".join(parts)


def _burn_alerts(state: str, window: str | None = None) -> str:
    """How many SloErrorBudgetBurn alerts of the API are in `state`, of one tier or of any."""
    tier = f',window="{window}"' if window else ""
    return f'count(ALERTS{{alertname="SloErrorBudgetBurn",service="api",alertstate="{state}"{tier}}})'


def _run_quiet(tmp_path: Path, system: System, tests: list[dict[str, Any]]) -> promtool.ToolResult:
    """Writes the system's generated rule files and `tests` next to them; runs promtool on the tests
    with the generated SLO test's rule files and group order, at one-minute evaluations."""
    for document in generate_rules(system, DEFAULT_CONFIG):
        (tmp_path / Path(document.path).name).write_bytes(render(document))
    generated = yaml.safe_load((tmp_path / "hush-slo-alerts-api.test.yaml").read_text())
    test_file = tmp_path / "quiet.test.yaml"
    test_file.write_text(
        yaml.safe_dump(
            {
                "rule_files": generated["rule_files"],
                "evaluation_interval": "1m",
                "group_eval_order": generated["group_eval_order"],
                "tests": tests,
            },
            sort_keys=False,
        )
    )
    return promtool.test_rules([test_file])


def _count_at(minute: int, expr: str, count: int | None) -> dict[str, Any]:
    """A promql_expr_test: `expr` (a count) is `count` at `minute`, or returns nothing for None."""
    samples = [] if count is None else [{"labels": "{}", "value": count}]
    return {"expr": expr, "eval_time": f"{minute}m", "exp_samples": samples}


def _page_for_minutes(system: System) -> int:
    page = next(
        alert
        for group in rule_groups(system, RULES)
        for alert in group.alerts
        if alert.name == "SloErrorBudgetBurn" and alert.labels[naming.WINDOW_LABEL] == "1h-5m"
    )
    assert page.for_ is not None and page.for_.endswith("m"), page.for_
    return int(page.for_[:-1])


def test_a_total_outage_at_one_request_a_minute_pages_once_five_requests_have_failed(
    quiet_system: System, tmp_path: Path
) -> None:
    """One request a minute for an hour, then every request fails. The 1h-5m tier's ratios are above
    1.44 % from the first failure (1/60 and 1/5); the guard wants 5 bad events in the hour, there
    after 5 minutes; `for` adds its minute. A guard on total events (348 in the hour) never lets it
    fire, no guard would make it pending after the first failure."""
    guard = RULES.slo_min_bad_events
    met = QUIET_HISTORY + guard
    pages_at = met + _page_for_minutes(quiet_system)
    assert pages_at - QUIET_HISTORY <= 15
    outage = pages_at - QUIET_HISTORY + 1
    test = {
        "name": "a total outage at one request a minute pages once five requests have failed",
        "interval": "1m",
        "input_series": [
            {
                "series": _stored_requests(quiet_system, "200"),
                "values": _counter_values([(QUIET_HISTORY, 1), (outage, 0)]),
            },
            {
                "series": _stored_requests(quiet_system, "500"),
                "values": _counter_values([(QUIET_HISTORY, 0), (outage, 1)]),
            },
        ],
        "promql_expr_test": [
            _count_at(met - 1, _burn_alerts("pending", "1h-5m"), None),
            _count_at(met, _burn_alerts("pending", "1h-5m"), 1),
            _count_at(pages_at - 1, _burn_alerts("firing", "1h-5m"), None),
            _count_at(pages_at, _burn_alerts("firing", "1h-5m"), 1),
        ],
    }
    result = _run_quiet(tmp_path, quiet_system, [test])
    assert result.ok, result.output


def test_one_failed_request_after_a_day_of_one_request_a_minute_raises_no_slo_alert(
    quiet_system: System, tmp_path: Path
) -> None:
    """A day of one successful request a minute, one failure, then success again. The failure
    does put the 1h-5m tier's ratios above 1.44 % (1/60 over the hour, 1/5 over 5 minutes, for five
    minutes), so without the guard it would page; with the guard (5 bad events) no tier is even
    pending, up to the end of the slowest tier's `for` (1h12m)."""
    failure = QUIET_DAYS * 24 * 60 + 1
    end = failure + 73
    api = 'service="api",slo="availability"'
    test = {
        "name": "one failed request after a quiet day raises no SLO alert",
        "interval": "1m",
        "input_series": [
            {
                "series": _stored_requests(quiet_system, "200"),
                "values": _counter_values([(failure - 1, 1), (1, 0), (end - failure, 1)]),
            },
            {
                "series": _stored_requests(quiet_system, "500"),
                "values": _counter_values([(failure - 1, 0), (1, 1), (end - failure, 0)]),
            },
        ],
        "promql_expr_test": [
            _count_at(failure, f"count(slo:sli_error:ratio_rate1h{{{api}}} > {PAGE_THRESHOLD})", 1),
            _count_at(failure + 4, f"count(slo:sli_error:ratio_rate5m{{{api}}} > {PAGE_THRESHOLD})", 1),
            *(
                _count_at(minute, _burn_alerts(state), None)
                for minute in (failure, failure + 1, failure + 4, failure + 30, end)
                for state in ("pending", "firing")
            ),
        ],
    }
    result = _run_quiet(tmp_path, quiet_system, [test])
    assert result.ok, result.output


def test_a_page_states_the_budget_its_current_error_ratio_burns_not_the_thresholds() -> None:
    # 25 % of requests failing against a 99.5 % / 30d SLO: 50× the budget rate, so one hour burns
    # 50/720 of the period's budget. The threshold's own rate (2 % per hour) is stated separately.
    slo = Slo(name="availability", objective=Decimal("99.5"), window="30d")
    page = BURN_TIERS[0]
    assert page.window_pair == "1h-5m"
    value = budget_burned(0.25, page, slo)
    assert humanize_percentage(value) == "6.944%"
    service = Service(name="orders", namespace="shop", metrics={"port": "http"}, slos=(slo,))
    system = System.model_validate(
        {"apiVersion": "obsbundle/v1", "kind": "System", "name": "shop", "cluster": "c1",
         "owner": {"team": "shop", "slack_channel": "#shop"}, "services": [service.model_dump()],
         "monitoring": {"grafana_url": "https://grafana.shop.test", "alertmanager_url": "https://am.shop.test",
                        "runbook_url": "https://runbooks.shop.test/{alert}"}}
    )
    [alert] = [a for g in rule_groups(system, RULES) for a in g.alerts if a.labels.get("window") == "1h-5m"]
    text = alert.description.render(value, alert.all_labels)
    assert text.startswith("6.944% of the 30d error budget of orders' availability SLO burns every 1h"), text
    assert "Alerts above 2% per 1h" in text and "orders's" not in text
