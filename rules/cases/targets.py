"""Scrape health's cases: targets that answer (`up` 1) or not (0), and the exporter's sources."""

from __future__ import annotations

from collections.abc import Mapping

from obsbundle.rules.definitions import Case, Inputs
from obsbundle.rules.input_series import constant

TEST_MINUTES = 15


def _series(metric: str, labels: Mapping[str, str], value: int) -> Inputs:
    return (constant(metric, labels, value, TEST_MINUTES),)


def all_down(target: Mapping[str, str], *, background: bool = False) -> Case:
    """The target's `up` at 0 fires, at 1 stays quiet. `background`: the alert fires on a missing
    target too, so its sibling rules need their quiet inputs in every test."""
    return Case(
        firing=_series("up", target, 0),
        quiet=_series("up", target, 1),
        labels={},
        value=0,
        eval_time="10m",
        background=background,
    )


def source_down(series: Mapping[str, str], source: str) -> Case:
    """The exporter's `poolq_up` for the source at 0 fires, at 1 stays quiet."""
    return Case(
        firing=_series("poolq_up", series, 0),
        quiet=_series("poolq_up", series, 1),
        labels={"source": source},
        value=0,
        eval_time="10m",
    )


def watchdog() -> Case:
    """Watchdog fires on no input at all, and cannot be quiet."""
    return Case(firing=(), quiet=None, labels={}, value=1, eval_time="1m")
