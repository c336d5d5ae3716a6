"""Volume cases: a claim's kubelet volume stats, full to a share and growing at a rate."""

from __future__ import annotations

from collections.abc import Mapping

from obsbundle import naming
from obsbundle.durations import parse_duration
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.definitions import Case, Inputs
from obsbundle.rules.input_series import constant, counter

CAPACITY = 100_000_000_000


def _claim(config: RuleConfig, namespace: str, claim: str) -> dict[str, str]:
    return {**config.kubelet, naming.NAMESPACE_LABEL: namespace, "persistentvolumeclaim": claim}


def _inputs(labels: Mapping[str, str], used: float, growth_per_minute: float, minutes: int) -> Inputs:
    return (
        counter("kubelet_volume_stats_used_bytes", labels, growth_per_minute, minutes, start=CAPACITY * used),
        counter(
            "kubelet_volume_stats_available_bytes", labels, -growth_per_minute, minutes, start=CAPACITY * (1 - used)
        ),
        constant("kubelet_volume_stats_capacity_bytes", labels, CAPACITY, minutes),
    )


def almost_full(config: RuleConfig, namespace: str, claim: str) -> Case:
    """Halfway between the threshold and full fires; half full stays quiet."""
    claim_labels = _claim(config, namespace, claim)
    at = parse_duration(config.volume_usage_for) // 60 + 7
    high = float((1 + config.volume_usage) / 2)
    return Case(
        firing=_inputs(claim_labels, high, 0, at),
        quiet=_inputs(claim_labels, 0.5, 0, at),
        labels={},
        value=high,
        eval_time=f"{at}m",
    )


def filling_up(config: RuleConfig, namespace: str, claim: str) -> Case:
    """A claim past the minimum usage that grows 0.05 % of its size a minute fires; the same claim
    standing still stays quiet."""
    claim_labels = _claim(config, namespace, claim)
    at = parse_duration(config.fill_for) // 60 + 30
    growth = CAPACITY * 0.0005
    start = 0.55
    return Case(
        firing=_inputs(claim_labels, start, growth, at),
        quiet=_inputs(claim_labels, start, 0, at),
        labels={},
        value=(CAPACITY * start + growth * at) / CAPACITY,
        eval_time=f"{at}m",
        evaluation_interval="5m",
    )
