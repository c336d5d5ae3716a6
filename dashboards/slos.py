"""SLOs: error budget remaining, burn rate per window, and which burn-rate alerts would fire."""

from __future__ import annotations

from typing import Any

from obsbundle import naming
from obsbundle.dashboards import queries as q
from obsbundle.dashboards.common import sibling_links, tags, variables
from obsbundle.dashboards.config import DashboardConfig
from obsbundle.dashboards.panels import (
    Query,
    Row,
    Unit,
    bar_gauge,
    dashboard,
    higher_is_worse,
    lower_is_worse,
    table,
    timeseries,
)
from obsbundle.links import Board, PanelId, dashboard_uid
from obsbundle.model import System
from obsbundle.slo_math import BURN_TIERS, BurnTier, format_factor

SLO_LEGEND = "{{service}} {{slo}}"
"""Legend of one SLO's series; a grouped SLO's add its group labels (`_legend`)."""
BURN_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
"""Every window an alert tier reads, short ones first."""


def slos_dashboard(system: System, config: DashboardConfig) -> dict[str, Any]:
    rows = [
        Row("Error budgets", [_budgets(system, config), _budget_history(system, config)]),
        Row("Burn rates", [_burn_table(system), _alerts_would_fire(system), _firing(system)]),
        Row("Burn rate over time", [_burn_history(system, tier) for tier in BURN_TIERS[:2]]),
    ]
    slos = ", ".join(f"{service.name} {slo.name} {slo.objective}% over {slo.window}"
                     for service, slo in q.slo_ids(system))
    return dashboard(
        uid=dashboard_uid(system, Board.SLOS),
        title=f"{system.name} / SLOs",
        description=f"Error budgets and burn rates of {slos}",
        tags=tags(system, "slo"),
        rows=rows,
        variables=[*variables(system, config), *q.slo_group_variables(system)],
        links=sibling_links(system),
        config=config,
        time_from=config.slo_time_from,
    )


def _legend(system: System) -> str:
    return SLO_LEGEND + q.group_legend(system.slo_group_labels())


def _windows(system: System) -> list[int]:
    return sorted({slo.window_seconds for _, slo in q.slo_ids(system)})


def _budgets(system: System, config: DashboardConfig) -> Any:
    return bar_gauge(
        "Error budget remaining",
        "Share of each SLO's error budget left over its window: 1 untouched, 0 spent (red), below 0 overspent; "
        f"orange below {config.budget_warning:.0%}.",
        [Query(q.slo_series(naming.SLO_ERROR_BUDGET_REMAINING, system), _legend(system))],
        Unit.RATIO,
        panel_id=PanelId.SLO_BUDGET,
        thresholds=lower_is_worse(0, config.budget_warning),
        max_value=1,
        width=12,
        height=max(6, len(q.slo_ids(system)) + 2),
    )


def _budget_history(system: System, config: DashboardConfig) -> Any:
    return timeseries(
        "Error budget remaining over time",
        "How each SLO's remaining budget moved: a steep fall is an incident, a slow slope a chronic problem.",
        [Query(q.slo_series(naming.SLO_ERROR_BUDGET_REMAINING, system), _legend(system))],
        Unit.RATIO,
        thresholds=lower_is_worse(0, config.budget_warning),
        show_thresholds=True,
        min_value=None,
        width=12,
        height=max(6, len(q.slo_ids(system)) + 2),
    )


def _burn_table(system: System) -> Any:
    return table(
        "Burn rate per window",
        "Burn rate of every SLO over each window the alerts read: 1 spends exactly the budget over the SLO "
        "window (orange above); the alerts compare a long and a short window with the factors on the right.",
        [Query(q.slo_series(naming.slo_burn_rate(window), system)) for window in BURN_WINDOWS],
        Unit.FACTOR,
        columns={f"Value #{chr(ord('A') + index)}": window for index, window in enumerate(BURN_WINDOWS)},
        thresholds=higher_is_worse(None, 1.0),
        colour_cells=True,
        panel_id=PanelId.SLO_BURN_RATE,
        width=10,
    )


def _tier_title(tier: BurnTier) -> str:
    return f"{tier.tier} {tier.window_pair}"


def _margin(system: System, tier: BurnTier) -> str:
    """The tier's firing margin for every SLO, whatever its window length (factors differ by window)."""
    return " or ".join(
        q.alert_margin(system, window, tier.long_window, tier.short_window,
                       format_factor(tier.factor(window)))
        for window in _windows(system)
    )


def _alerts_would_fire(system: System) -> Any:
    factors = "; ".join(
        f"{_tier_title(tier)} at " + ", ".join(f"{format_factor(tier.factor(w))}× ({w // 86400}d SLOs)"
                                               for w in _windows(system))
        for tier in BURN_TIERS
    )
    return table(
        "Would the burn-rate alerts fire?",
        "For each SLO and alert tier, the lower of its long- and short-window burn rates over the tier's factor: "
        f"at 1 or more (red) that alert fires. Factors: {factors}.",
        [Query(_margin(system, tier)) for tier in BURN_TIERS],
        Unit.FACTOR,
        columns={f"Value #{chr(ord('A') + index)}": _tier_title(tier) for index, tier in enumerate(BURN_TIERS)},
        thresholds=higher_is_worse(0.5, 1.0),
        colour_cells=True,
        width=8,
    )


def _firing(system: System) -> Any:
    return table(
        "SLO alerts firing",
        "Burn-rate and absent-SLI alerts of this system firing now, with their window pair.",
        [Query(q.firing_alerts_by(system, ["alertname", "service", "slo", "window", "severity"], 'slo!=""'))],
        Unit.COUNT,
        columns={"Value": "Series", "alertname": "Alert"},
        width=6,
    )


def _burn_history(system: System, tier: BurnTier) -> Any:
    windows = _windows(system)
    factor = float(tier.factor(windows[0])) if len(windows) == 1 else None
    return timeseries(
        f"Burn rate over {tier.long_window}",
        f"Burn rate of every SLO over {tier.long_window}, the long window of the {tier.tier} alert "
        f"{tier.window_pair}" + (f"; dashed: its factor {format_factor(tier.factor(windows[0]))}." if factor
                                 else "."),
        [Query(q.slo_series(naming.slo_burn_rate(tier.long_window), system), _legend(system))],
        Unit.FACTOR,
        thresholds=higher_is_worse(None, factor) if factor else higher_is_worse(None, 1.0),
        show_thresholds=factor is not None,
        width=12,
    )
