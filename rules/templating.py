"""Alert descriptions written once, rendered two ways: as a Prometheus template for the rule, and
as the exact text Prometheus produces, for the `exp_annotations` of generated promtool tests.

A description is a Python format string whose fields are `{value}` (the alert's value, shown in
one of the `ValueFormat`s) and label names (`{pod}` → `{{ $labels.pod }}`). The humanize
functions below follow Prometheus's template functions digit for digit (Go's `%.4g`), so a test
that expects "95%" fails if the rule's value or its formatting drifts.
"""

from __future__ import annotations

import datetime
import math
import string
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum


class ValueFormat(Enum):
    """How an alert's value appears in its description."""

    PERCENT = "humanizePercentage"
    DURATION = "humanizeDuration"
    NUMBER = "humanize"
    PER_SECOND = "printf_3g"
    """Small per-second rates: `0.15`, where humanize would print `150m`."""
    TIMESTAMP = "humanizeTimestamp"


def _go_g(value: float) -> str:
    """Go's `%.4g` (Python's `%g` agrees with it for finite numbers)."""
    return f"{value:.4g}"


def humanize(value: float) -> str:
    """Prometheus's `humanize`: SI prefixes (k, M, … and m, u, …) with four significant digits."""
    if value == 0 or math.isnan(value) or math.isinf(value):
        return _go_g(value)
    prefix = ""
    if abs(value) >= 1:
        for step in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(value) < 1000:
                break
            prefix, value = step, value / 1000
    else:
        for step in ("m", "u", "n", "p", "f", "a", "z", "y"):
            if abs(value) >= 1:
                break
            prefix, value = step, value * 1000
    return _go_g(value) + prefix


def humanize_percentage(value: float) -> str:
    return _go_g(value * 100) + "%"


def humanize_duration(value: float) -> str:
    """Prometheus's `humanizeDuration`: `1d 2h 0m 0s`, `3m 20s`, `4.85s`, `250ms`."""
    if math.isnan(value) or math.isinf(value):
        return _go_g(value)
    if value == 0:
        return _go_g(value) + "s"
    if abs(value) >= 1:
        sign = "-" if value < 0 else ""
        whole = int(abs(value))
        seconds, minutes = whole % 60, (whole // 60) % 60
        hours, days = (whole // 3600) % 24, whole // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{_go_g(abs(value))}s"
    prefix = ""
    for step in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(value) >= 1:
            break
        prefix, value = step, value * 1000
    return f"{_go_g(value)}{prefix}s"


def humanize_timestamp(value: float) -> str:
    """Prometheus's `humanizeTimestamp` for whole seconds: `1970-01-01 02:00:00 +0000 UTC`."""
    moment = datetime.datetime.fromtimestamp(value, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


_TEMPLATE_OF: dict[ValueFormat, str] = {
    ValueFormat.PERCENT: "{{ $value | humanizePercentage }}",
    ValueFormat.DURATION: "{{ $value | humanizeDuration }}",
    ValueFormat.NUMBER: "{{ $value | humanize }}",
    ValueFormat.PER_SECOND: '{{ printf "%.3g" $value }}',
    ValueFormat.TIMESTAMP: "{{ $value | humanizeTimestamp }}",
}


def render_value(value: float, value_format: ValueFormat) -> str:
    """The text Prometheus prints for `value` in `value_format`."""
    match value_format:
        case ValueFormat.PERCENT:
            return humanize_percentage(value)
        case ValueFormat.DURATION:
            return humanize_duration(value)
        case ValueFormat.NUMBER:
            return humanize(value)
        case ValueFormat.PER_SECOND:
            return f"{value:.3g}"
        case ValueFormat.TIMESTAMP:
            return humanize_timestamp(value)


@dataclass(frozen=True)
class Description:
    """An alert description: `text` with `{value}` and `{<label>}` fields."""

    text: str
    value_format: ValueFormat = ValueFormat.NUMBER
    context: str = ""
    """A Prometheus template appended as is: a `query` of what else fires now (the failing
    dependencies of a service, rules/dependencies.py). It prints nothing while that query returns
    nothing, as in the generated tests, so `render` leaves it out."""

    def fields(self) -> list[str]:
        return [name for _, name, _, _ in string.Formatter().parse(self.text) if name is not None]

    def template(self) -> str:
        """The Prometheus template for the rule's `description` annotation."""
        parts: list[str] = []
        for literal, name, _, _ in string.Formatter().parse(self.text):
            parts.append(literal)
            if name is None:
                continue
            parts.append(_TEMPLATE_OF[self.value_format] if name == "value" else f"{{{{ $labels.{name} }}}}")
        return "".join(parts) + self.context

    def render(self, value: float, labels: Mapping[str, str]) -> str:
        """What Prometheus writes into the annotation for an alert with `value` and `labels`."""
        shown = {name: labels[name] for name in self.fields() if name != "value"}
        return self.text.format(value=render_value(value, self.value_format), **shown)
