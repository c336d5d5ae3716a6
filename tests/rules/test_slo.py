"""SLO arithmetic: windows that tile exactly, exact factors, the guard, and the Workbook's detection times."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from pathlib import Path

import pytest

from obsbundle import naming
from obsbundle.model import Inventory, System
from obsbundle.rules import rule_groups
from obsbundle.rules.config import DEFAULT_CONFIG
from obsbundle.rules.definitions import Alert, Recording
from obsbundle.rules.slo import WINDOW_CHAIN, chain_pieces, period_pieces, tier_guard, tier_threshold
from obsbundle.rules.slo_tests import detection_rows, detection_table, steady_service
from obsbundle.slo_math import BURN_TIERS

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
        for group in rule_groups(aegis)
        for alert in group.alerts
        if alert.name == "SloErrorBudgetBurn" and alert.labels["service"] == "aegis-api"
        and alert.labels["slo"] == "availability"
    }  # fmt: skip
    assert "> (13.44 * 0.001)" in exprs["1h-5m"]
    assert "> (5.6 * 0.001)" in exprs["6h-30m"]
    assert "> (2.8 * 0.001)" in exprs["1d-2h"]
    assert "> (0.933333 * 0.001)" in exprs["3d-6h"]


def test_the_guard_needs_enough_events_that_five_failures_cross_the_threshold(shipyard: System) -> None:
    for service in shipyard.services:
        for slo in service.slos:
            for tier in BURN_TIERS:
                guard = tier_guard(tier, slo, DEFAULT_CONFIG)
                threshold = tier_threshold(tier, slo)
                assert guard * threshold >= DEFAULT_CONFIG.slo_min_bad_events
                assert (guard - 1) * threshold < DEFAULT_CONFIG.slo_min_bad_events


def test_window_rules_cover_every_slo_of_the_system_in_one_expression(shipyard: System) -> None:
    windows = [
        rule
        for group in rule_groups(shipyard)
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
        for group in rule_groups(shipyard)
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
        for row in detection_rows(system, DEFAULT_CONFIG):
            bound = math.ceil(row.detection_seconds / 60) + 1
            assert row.pages_after_minutes <= bound, row


def test_a_999_slo_over_30_days_detects_a_full_outage_in_52_seconds(default_inventory: Inventory) -> None:
    logpilot = next(system for system in default_inventory.systems if system.name == "logpilot")
    row = next(row for row in detection_rows(logpilot, DEFAULT_CONFIG) if row.slo == "availability")
    assert round(row.detection_seconds) == 52
    assert row.pages_after_minutes == 2


def test_every_slo_has_a_generated_full_outage_scenario(rule_systems: dict[str, System]) -> None:
    for system in rule_systems.values():
        names = {test.name for group in rule_groups(system) for test in group.tests}
        for service in system.services:
            for slo in service.slos:
                assert any(name.startswith(f"{service.name} {slo.name}: a full outage pages") for name in names)


def test_one_service_per_system_runs_days_of_steady_traffic(rule_systems: dict[str, System]) -> None:
    for system in rule_systems.values():
        chosen = steady_service(system)
        steady = [test for group in rule_groups(system) for test in group.tests if "raise no SLO alert" in test.name]
        assert len(steady) == 1
        assert steady[0].name and chosen is not None
        assert steady[0].evaluation_interval == "5m"


def test_the_detection_table_in_the_docs_is_the_one_the_rules_give(default_inventory: Inventory) -> None:
    assert detection_table(default_inventory.systems, DEFAULT_CONFIG) in DOCS.read_text()


def test_page_thresholds_are_factor_times_budget_for_every_default_slo(default_inventory: Inventory) -> None:
    for system in default_inventory.systems:
        burns: list[Alert] = [
            alert for group in rule_groups(system) for alert in group.alerts if alert.name == "SloErrorBudgetBurn"
        ]
        for alert in burns:
            slo = next(s for s in system.service(alert.labels["service"]).slos if s.name == alert.labels["slo"])
            tier = next(t for t in BURN_TIERS if t.window_pair == alert.labels[naming.WINDOW_LABEL])
            assert tier_threshold(tier, slo) == tier.factor(slo.window_seconds) * Fraction(slo.error_budget)
            assert f"slo:sli_error:ratio_rate{tier.long_window}{{" in alert.expr
            assert f"slo:sli_error:ratio_rate{tier.short_window}{{" in alert.expr
