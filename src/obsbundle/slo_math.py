"""Exact burn-rate arithmetic of the SRE Workbook's multiwindow, multi-burn-rate alerts.

Factors are Fractions, so a 28-day window gets 13.44 and not 13.440000000000001; the rules
render them with `format_factor`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import cached_property
from typing import Literal

from obsbundle.durations import format_duration


@dataclass(frozen=True)
class BurnTier:
    """One alert of the four: how much budget it lets burn, over which pair of windows."""

    tier: Literal["page", "ticket"]
    budget_spent: Fraction
    long_window_s: int
    short_window_s: int
    severity: Literal["critical", "warning"]

    # Cached: rule and test generation ask for these names tens of thousands of times.
    @cached_property
    def long_window(self) -> str:
        return format_duration(self.long_window_s)

    @cached_property
    def short_window(self) -> str:
        return format_duration(self.short_window_s)

    @cached_property
    def window_pair(self) -> str:
        """Label value that names the pair, e.g. `1h-5m`, for inhibiting the slower tiers."""
        return f"{self.long_window}-{self.short_window}"

    def factor(self, slo_window_s: int) -> Fraction:
        """Burn rate that spends `budget_spent` of the budget in `long_window` over an SLO window."""
        return self.budget_spent * slo_window_s / self.long_window_s


# The Workbook's table (chapter "Alerting on SLOs", table 5-8), fastest first.
BURN_TIERS: tuple[BurnTier, ...] = (
    BurnTier("page", Fraction(2, 100), 3600, 300, "critical"),
    BurnTier("page", Fraction(5, 100), 6 * 3600, 1800, "critical"),
    BurnTier("ticket", Fraction(10, 100), 86400, 2 * 3600, "warning"),
    BurnTier("ticket", Fraction(10, 100), 3 * 86400, 6 * 3600, "warning"),
)


def format_factor(factor: Fraction) -> str:
    """A factor as PromQL text: exact when it terminates (13.44), else rounded to 6 places (0.933333)."""
    exact = Decimal(factor.numerator) / Decimal(factor.denominator)
    shown = exact if factor == Fraction(exact) else round(exact, 6)
    return format(shown.normalize(), "f")


def fastest_page_factor(slo_window_s: int) -> Fraction:
    return BURN_TIERS[0].factor(slo_window_s)
