"""The longest gap between two runs of a Kubernetes CronJob schedule.

Kubernetes parses schedules with robfig/cron's standard parser: five fields (minute, hour, day of
month, month, day of week), `*`, `?`, lists, ranges, steps, month and weekday names, and the
descriptors @yearly, @monthly, @weekly, @daily, @hourly. When both day fields are restricted a
day matches either of them; when one starts with `*` or `?` both must match. Gaps are measured
over a 28-year cycle of the Gregorian calendar without a skipped leap year (2001-2028), which
holds every combination of weekday and month length, so `0 0 31 * *` gives 61 days and
`0 0 29 2 *` four years. Times are in the schedule's own time zone; a daylight-saving shift
moves a run by an hour, which the alert's grace covers.
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Sequence

_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_CYCLE_START = datetime.date(2001, 1, 1)
_CYCLE_END = datetime.date(2029, 1, 1)


class CronError(ValueError):
    """A schedule that cannot be read or never runs."""


def _value(text: str, names: Sequence[str], offset: int) -> int:
    lowered = text.lower()
    if lowered in names:
        return names.index(lowered) + offset
    if not text.isdigit():
        raise CronError(f"'{text}' is not a number{' or a name' if names else ''}")
    return int(text)


def _field(text: str, low: int, high: int, names: Sequence[str] = (), name_offset: int = 0) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step_text and (not step_text.isdigit() or step < 1):
            raise CronError(f"'{part}' has a bad step")
        if base in ("*", "?"):
            start, stop = low, high
        elif "-" in base:
            first, last = base.split("-", 1)
            start, stop = _value(first, names, name_offset), _value(last, names, name_offset)
        else:
            start = _value(base, names, name_offset)
            stop = high if step_text else start
        if not low <= start <= stop <= high:
            raise CronError(f"'{part}' is outside {low}-{high}")
        values.update(range(start, stop + 1, step))
    return values


def max_interval_seconds(schedule: str) -> int:
    """The longest time between two consecutive runs of `schedule`, in seconds."""
    fields = _DESCRIPTORS.get(schedule.strip().lower(), schedule).split()
    if len(fields) != 5:
        raise CronError(f"'{schedule}' does not have five fields")
    minute_text, hour_text, dom_text, month_text, dow_text = fields
    minutes = _field(minute_text, 0, 59)
    hours = _field(hour_text, 0, 23)
    days_of_month = _field(dom_text, 1, 31)
    months = _field(month_text, 1, 12, _MONTHS, 1)
    weekdays = {day % 7 for day in _field(dow_text, 0, 7, _WEEKDAYS, 0)}
    either_day = not (dom_text.startswith(("*", "?")) or dow_text.startswith(("*", "?")))

    times = sorted(hour * 60 + minute for hour in hours for minute in minutes)
    longest = max((later - earlier for earlier, later in itertools.pairwise(times)), default=0)

    run_days: list[int] = []
    day = _CYCLE_START
    while day < _CYCLE_END:
        if day.month in months:
            by_date = day.day in days_of_month
            by_weekday = (day.isoweekday() % 7) in weekdays
            if (by_date or by_weekday) if either_day else (by_date and by_weekday):
                run_days.append(day.toordinal())
        day += datetime.timedelta(days=1)
    if not run_days:
        raise CronError(f"'{schedule}' never runs")
    cycle = _CYCLE_END.toordinal() - _CYCLE_START.toordinal()
    following = [*run_days[1:], run_days[0] + cycle]
    for earlier, later in zip(run_days, following, strict=True):
        longest = max(longest, (later - earlier) * 1440 - times[-1] + times[0])
    return longest * 60
