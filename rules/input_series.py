"""Input series for generated promtool tests, in promtool's expanding notation.

Tests run with a one-minute input interval and evaluation interval, so `minutes` below is also
the number of samples after the first.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from obsbundle.promql import selector
from obsbundle.rules.definitions import InputSeries, SampleCheck

STEP = "1m"
"""Input and evaluation interval of every generated test."""


def number(value: float | int | Decimal) -> str:
    """A number as promtool reads it, without float noise (`0.1`, not `0.1000000000000000055`)."""
    if isinstance(value, Decimal):
        value = float(value)
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def constant(metric: str, labels: Mapping[str, str], value: float | int | Decimal, minutes: int) -> InputSeries:
    """A gauge that holds `value` for `minutes`."""
    return InputSeries(selector(metric, labels), f"{number(value)}x{minutes}")


def counter(
    metric: str, labels: Mapping[str, str], per_minute: float | int | Decimal, minutes: int, start: float = 0
) -> InputSeries:
    """A series that starts at `start` and changes by `per_minute` every minute (a counter, or a
    draining gauge when negative)."""
    step = float(per_minute)
    sign = "-" if step < 0 else "+"
    return InputSeries(selector(metric, labels), f"{number(start)}{sign}{number(abs(step))}x{minutes}")


def close_to(metric: str, labels: Mapping[str, str], value: float, minutes: int) -> SampleCheck:
    """At `minutes`, `metric{labels}` is within a billionth (relative) of `value`: the check's query
    returns 1 with the series' labels (the name dropped), so float noise cannot fail it."""
    tolerance = max(abs(value) * 1e-9, 1e-12)
    expr = f"abs({selector(metric, labels)} - {value!r}) < bool {tolerance!r}"
    return SampleCheck(expr, f"{minutes}m", ((selector("", labels), 1.0),))
