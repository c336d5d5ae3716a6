"""The SLI kinds beyond the standard request metrics: good/total and bad/total event queries, a
ready-made error ratio (Sloth's `raw`) and a 0/1 gauge (`probe_success`, `up`). Each one's outage
pages in promtool, a healthy day raises nothing, and the loader refuses one kind's keys on another."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from obsbundle.config import DEFAULT_CONFIG
from obsbundle.errors import InputError
from obsbundle.loader import load_inventory
from obsbundle.model import System
from obsbundle.monitors.probes import probe_labels
from obsbundle.promql import selector
from obsbundle.render import render
from obsbundle.rules import generate_rules, rule_groups
from obsbundle.rules.slo import ServiceSlo
from obsbundle.rules.slo_scenarios import page_detection_bound_minutes
from obsbundle.slo_math import BURN_TIERS
from obsbundle.tools import promtool
from tests.support.slo_promtool import (
    burn_alerts,
    count_at,
    counter_values,
    gauge_values,
    page_for_minutes,
    run_service_tests,
)

RULES = DEFAULT_CONFIG.rules

KINDS_SYSTEM = """\
apiVersion: obsbundle/v1
kind: System
name: kinds
cluster: kinds-prod
owner: {team: payments, slack_channel: "#payments-alerts"}
monitoring: {grafana_url: "https://grafana.kinds.test", alertmanager_url: "https://am.kinds.test",
             runbook_url: "https://runbooks.kinds.test/{alert}"}
dependencies:
  - {name: card-network, url: "https://status.card-network.example/health"}
services:
  - name: ledger
    namespace: pay
    metrics: {port: http, instrumentation: custom}
    slos:
      - {name: postings, objective: 99.9, window: 30d,
         bad_query: 'ledger_postings_total{outcome="failed"}', total_query: ledger_postings_total}
  - name: invoices
    namespace: pay
    metrics: {port: http, instrumentation: custom}
    slos:
      - {name: issued, objective: 99.9, window: 30d,
         good_query: 'sum(increase(invoices_issued_total{outcome=~"ok|retried"}[{{.window}}]))',
         total_query: 'sum(increase(invoices_issued_total[{{.window}}]))'}
  - name: wallet
    namespace: pay
    metrics: {port: http, instrumentation: custom}
    slos:
      - name: transfers
        objective: 99.9
        window: 30d
        error_ratio_query: |
          sum(rate(wallet_transfers_total{outcome="failed"}[{{.window}}]))
          /
          sum(rate(wallet_transfers_total[{{.window}}]))
  - name: gateway
    namespace: pay
    metrics: {port: http, instrumentation: custom}
    slos:
      - {name: card-network, objective: 99.9, window: 30d, gauge_query: 'probe_success{dependency="card-network"}'}
"""

HISTORY = 60
"""Minutes of clean traffic before an outage: the page tier's 1h window is full."""
RATE = 600
"""Events a minute of the event and ratio SLIs."""
DAY = 24 * 60


@pytest.fixture(scope="module")
def kinds(tmp_path_factory: pytest.TempPathFactory) -> System:
    path = tmp_path_factory.mktemp("kinds") / "kinds.yaml"
    path.write_text(KINDS_SYSTEM)
    return load_inventory([path]).systems[0]


def _counters(
    metric: str, bad_label: str, good_label: str, runs: list[tuple[int, float, float]]
) -> list[dict[str, str]]:
    """A counter's good and bad series for runs of (minutes, good a minute, bad a minute)."""
    return [
        {"series": selector(metric, {"outcome": good_label}), "values": counter_values([(m, g) for m, g, _ in runs])},
        {"series": selector(metric, {"outcome": bad_label}), "values": counter_values([(m, b) for m, _, b in runs])},
    ]


def _probe_series(system: System) -> str:
    """probe_success as the dependency's Probe stores it: its static labels, the URL as `instance`."""
    dependency = system.dependencies[0]
    return selector("probe_success", {**probe_labels(system, dependency), "instance": dependency.url})


def _event_inputs(service: str, runs: list[tuple[int, float, float]]) -> list[dict[str, str]]:
    metric = {
        "ledger": "ledger_postings_total",
        "invoices": "invoices_issued_total",
        "wallet": "wallet_transfers_total",
    }
    return _counters(metric[service], "failed", "ok", runs)


def _page_bound(system: System, service: str) -> int:
    item = ServiceSlo(system.service(service), system.service(service).slos[0])
    return page_detection_bound_minutes(item, BURN_TIERS[0], RULES)


@pytest.mark.parametrize("service", ["ledger", "invoices", "wallet"])
def test_a_full_outage_of_an_event_or_ratio_sli_pages_within_the_workbook_detection_time_plus_for(
    kinds: System, service: str, tmp_path: Path
) -> None:
    """An hour at 600 events a minute, then every event bad: the 1h-5m tier is firing at the first
    evaluation after the Workbook's detection time (14.4 × 0.1 % × 1h = 52 s) plus `for`, and not
    a minute earlier; bad/total, good/total over {{.window}} and the ready-made ratio alike."""
    bound = _page_bound(kinds, service)
    pages_at = HISTORY + bound
    test = {
        "name": f"{service}: a full outage pages",
        "interval": "1m",
        "input_series": _event_inputs(service, [(HISTORY, RATE, 0), (bound + 2, 0, RATE)]),
        "promql_expr_test": [
            count_at(HISTORY, burn_alerts(service, "pending"), None),
            count_at(pages_at - 1, burn_alerts(service, "firing", "1h-5m"), None),
            count_at(pages_at, burn_alerts(service, "firing", "1h-5m"), 1),
        ],
    }
    result = run_service_tests(tmp_path, kinds, service, [test])
    assert result.ok, result.output


@pytest.mark.parametrize("service", ["ledger", "invoices", "wallet"])
def test_a_day_of_events_at_half_the_budget_raises_no_slo_alert(kinds: System, service: str, tmp_path: Path) -> None:
    """A day at 600 events a minute, 0.05 % of them bad (half the 99.9 % budget): no tier is even
    pending at any hour of it."""
    bad = RATE * 0.0005
    test = {
        "name": f"{service}: a healthy day raises nothing",
        "interval": "1m",
        "input_series": _event_inputs(service, [(DAY, RATE - bad, bad)]),
        "promql_expr_test": [
            count_at(minute, f'count(ALERTS{{alertname="SloErrorBudgetBurn",service="{service}"}})', None)
            for minute in range(60, DAY + 1, 60)
        ],
    }
    result = run_service_tests(tmp_path, kinds, service, [test], interval="5m")
    assert result.ok, result.output


def test_a_failing_probe_pages_a_gauge_slo_once_the_guard_s_failed_samples_are_in(
    kinds: System, tmp_path: Path
) -> None:
    """probe_success 1 a minute for an hour, then 0. Each sample is one event: the first failure puts
    both page windows above 1.44 %, the guard wants 5 failed samples in the hour, there after 5
    minutes; `for` adds its minutes. Probes are low traffic by nature (one a minute): the page comes
    as it does for a service with one request a minute."""
    guard = RULES.slo_min_bad_events
    met = HISTORY + guard
    pages_at = met + page_for_minutes(kinds)
    test = {
        "name": "gateway: a failing probe pages",
        "interval": "1m",
        "input_series": [{"series": _probe_series(kinds), "values": gauge_values([(HISTORY, 1), (guard + 10, 0)])}],
        "promql_expr_test": [
            count_at(met - 1, burn_alerts("gateway", "pending", "1h-5m"), None),
            count_at(met, burn_alerts("gateway", "pending", "1h-5m"), 1),
            count_at(pages_at - 1, burn_alerts("gateway", "firing", "1h-5m"), None),
            count_at(pages_at, burn_alerts("gateway", "firing", "1h-5m"), 1),
        ],
    }
    result = run_service_tests(tmp_path, kinds, "gateway", [test])
    assert result.ok, result.output


def test_a_day_of_probes_with_one_failure_raises_no_slo_alert(kinds: System, tmp_path: Path) -> None:
    """A day of successful probes with one failed probe at noon: its page windows are above their
    threshold for minutes, but one failed sample is below the guard; no tier is even pending."""
    noon = DAY // 2
    test = {
        "name": "gateway: one failed probe in a day raises nothing",
        "interval": "1m",
        "input_series": [
            {"series": _probe_series(kinds), "values": gauge_values([(noon - 1, 1), (1, 0), (DAY - noon, 1)])}
        ],
        "promql_expr_test": [
            count_at(minute, 'count(ALERTS{alertname="SloErrorBudgetBurn",service="gateway"})', None)
            for minute in (*range(noon, noon + 75), *range(60, DAY + 1, 60))
        ],
    }
    result = run_service_tests(tmp_path, kinds, "gateway", [test])
    assert result.ok, result.output


def test_an_error_ratio_slo_has_no_low_traffic_guard_and_every_other_kind_has(kinds: System) -> None:
    guards = {
        alert.labels["service"]: "bad events" in (alert.threshold or "") and " >= " in alert.expr
        for group in rule_groups(kinds, RULES)
        for alert in group.alerts
        if alert.name == "SloErrorBudgetBurn"
    }
    assert guards == {"ledger": True, "invoices": True, "wallet": False, "gateway": True}


def _load(tmp_path: Path, slo: dict[str, Any]) -> list[str]:
    """The loader's messages for a one-service system with `slo`."""
    system = yaml.safe_load(KINDS_SYSTEM)
    system["services"] = [{**system["services"][0], "slos": [{"name": "s", "objective": 99.9, **slo}]}]
    path = tmp_path / "kinds.yaml"
    path.write_text(yaml.safe_dump(system))
    with pytest.raises(InputError) as raised:
        load_inventory([path])
    return [str(problem) for problem in raised.value.problems]


@pytest.mark.parametrize(
    ("slo", "expected"),
    [
        (
            {"sli": "gauge", "gauge_query": "up", "good_query": "x", "total_query": "y"},
            ["services[0].slos[0]", "good_query and total_query are for", "but sli is gauge", "remove them"],
        ),
        (
            {"error_ratio_query": "x", "total_query": "y"},
            [
                "total_query is for bad-events or custom SLOs, but error_ratio_query makes this an error-ratio SLO",
                "remove it",
            ],
        ),
        (
            {"good_query": "x", "bad_query": "y", "total_query": "z"},
            ["belong to different SLI kinds (custom, bad-events)", "keep one kind's keys"],
        ),
        ({"sli": "bad-events", "bad_query": "x"}, ["a bad-events SLO needs total_query"]),
        (
            {"error_ratio_query": "x", "min_bad_events": 3},
            ["min_bad_events counts bad events", "error-ratio SLI has none", "give bad_query and total_query"],
        ),
        (
            {"bad_query": "sum(rate(x[{{.window}}]))", "total_query": "sum(increase(x[{{.window}}]))"},
            ["slos[0].bad_query", "counts events per second (rate", "write increase(...[{{.window}}])"],
        ),
        (
            {"gauge_query": 'min(probe_success{dependency="card-network"})'},
            ["slos[0].gauge_query", "must be a selector", "record the expression first"],
        ),
        ({"error_ratio_query": "sum(rate(x[{{.window}}])) /"}, ["slos[0].error_ratio_query", "is not PromQL"]),
    ],
    ids=[
        "gauge-with-event-keys",
        "ratio-with-total",
        "good-and-bad",
        "bad-without-total",
        "ratio-guard",
        "rate-event-query",
        "gauge-expression",
        "ratio-not-promql",
    ],
)
def test_the_loader_refuses_a_kind_s_keys_on_another_kind_naming_the_fix(
    tmp_path: Path, slo: dict[str, Any], expected: list[str]
) -> None:
    messages = "\n".join(_load(tmp_path, slo))
    for part in expected:
        assert part in messages, messages


def test_a_bad_events_slo_on_plain_selectors_gets_the_generated_scenarios_and_every_kind_s_tests_pass(
    kinds: System, tmp_path: Path
) -> None:
    """The generator feeds a bad/total SLI's counters itself (tier, outage and guard scenarios);
    an error ratio's and a gauge's SLIs have no counters it can derive (the tests above run theirs),
    so their generated files test the absent-SLI alert only. promtool passes them all."""
    for document in generate_rules(kinds, DEFAULT_CONFIG):
        (tmp_path / Path(document.path).name).write_bytes(render(document))
    ledger = yaml.safe_load((tmp_path / "kinds-slo-alerts-ledger.test.yaml").read_text())
    names = [test["name"] for test in ledger["tests"]]
    assert any("a full outage pages" in name for name in names), names
    assert any("the guard needs 5" in name for name in names), names
    result = promtool.test_rules(sorted(tmp_path.glob("kinds-slo-alerts-*.test.yaml")))
    assert result.ok, result.output
