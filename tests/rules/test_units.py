"""Cron schedule gaps, and descriptions rendered the way Prometheus renders them."""

from __future__ import annotations

import pytest

from obsbundle.rules.cron import CronError, max_interval_seconds
from obsbundle.rules.templating import (
    Description,
    ValueFormat,
    humanize,
    humanize_duration,
    humanize_percentage,
    humanize_timestamp,
)

HOUR = 3600
DAY = 86400


@pytest.mark.parametrize(
    ("schedule", "gap"),
    [
        ("0 2 * * *", DAY),
        ("*/15 * * * *", 15 * 60),
        ("30 1 * * 1-5", 3 * DAY),
        ("0 9,17 * * *", 16 * HOUR),
        ("@weekly", 7 * DAY),
        ("@hourly", HOUR),
        ("0 0 31 * *", 61 * DAY),
        ("0 0 29 2 *", 1461 * DAY),
        ("0 0 1 * MON", 7 * DAY),
        ("0 0 1,15 * *", 17 * DAY),
        ("0 4 * * sun", 7 * DAY),
    ],
)
def test_the_longest_gap_of_a_cron_schedule_is_found(schedule: str, gap: int) -> None:
    assert max_interval_seconds(schedule) == gap


@pytest.mark.parametrize("schedule", ["0 0 30 2 *", "61 * * * *", "* * *", "0 0 * * fun"])
def test_a_schedule_that_cannot_run_is_an_error(schedule: str) -> None:
    with pytest.raises(CronError):
        max_interval_seconds(schedule)


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.2, "200m"), (0, "0"), (1500, "1.5k"), (20000, "20k"), (3, "3"), (12.5, "12.5")],
)
def test_humanize_prints_what_prometheus_prints(value: float, text: str) -> None:
    assert humanize(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(4.85, "4.85s"), (0.25, "250ms"), (93600, "1d 2h 0m 0s"), (5400, "1h 30m 0s"), (1200, "20m 0s"), (0, "0s")],
)
def test_humanize_duration_prints_what_prometheus_prints(value: float, text: str) -> None:
    assert humanize_duration(value) == text


def test_percentages_and_timestamps_print_what_prometheus_prints() -> None:
    assert humanize_percentage(1 / 60) == "1.667%"
    assert humanize_percentage(0.95) == "95%"
    assert humanize_timestamp(7200) == "1970-01-01 02:00:00 +0000 UTC"


def test_a_description_is_a_prometheus_template_and_renders_like_one() -> None:
    description = Description("{pod} uses {value} of its limit", ValueFormat.PERCENT)
    assert description.template() == "{{ $labels.pod }} uses {{ $value | humanizePercentage }} of its limit"
    assert description.render(0.9, {"pod": "api-1"}) == "api-1 uses 90% of its limit"
