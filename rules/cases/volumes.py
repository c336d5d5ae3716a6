"""Volume cases: a claim's kubelet volume stats, full to a share and growing at a rate, and its
phase as kube-state-metrics reports it."""

from __future__ import annotations

from collections.abc import Mapping

from obsbundle import naming
from obsbundle.durations import parse_duration
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.definitions import Case, Inputs
from obsbundle.rules.input_series import constant, counter

CAPACITY = 100_000_000_000
INODES = 6_553_600
"""A 100 GB ext4 volume's inodes at mkfs's default of one per 16 KiB."""
CLAIM_PHASES = ("Bound", "Lost", "Pending")
"""kube_persistentvolumeclaim_status_phase's phases (tests/fixtures/exposition/kube-state-metrics/storage.prom)."""


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


def _inode_inputs(labels: Mapping[str, str], used: float, growth_per_minute: float, minutes: int) -> Inputs:
    return (
        counter("kubelet_volume_stats_inodes_used", labels, growth_per_minute, minutes, start=INODES * used),
        counter("kubelet_volume_stats_inodes_free", labels, -growth_per_minute, minutes, start=INODES * (1 - used)),
        constant("kubelet_volume_stats_inodes", labels, INODES, minutes),
    )


def inodes_exhausted(config: RuleConfig, namespace: str, claim: str) -> Case:
    """Half the critical share free fires; half the inodes free stays quiet."""
    claim_labels = _claim(config, namespace, claim)
    at = parse_duration(config.volume_usage_for) // 60 + 7
    free = float(config.volume_inodes_critical_free) / 2
    return Case(
        firing=_inode_inputs(claim_labels, 1 - free, 0, at),
        quiet=_inode_inputs(claim_labels, 0.5, 0, at),
        labels={},
        value=free,
        eval_time=f"{at}m",
    )


def inodes_filling(config: RuleConfig, namespace: str, claim: str) -> Case:
    """A claim with 12 % of its inodes free that uses 0.05 % more a minute fires; the same claim
    standing still stays quiet."""
    claim_labels = _claim(config, namespace, claim)
    at = parse_duration(config.fill_for) // 60 + 30
    growth = INODES * 0.0005
    used = 0.88
    return Case(
        firing=_inode_inputs(claim_labels, used, growth, at),
        quiet=_inode_inputs(claim_labels, used, 0, at),
        labels={},
        value=(INODES * (1 - used) - growth * at) / INODES,
        eval_time=f"{at}m",
        evaluation_interval="5m",
    )


def _phase(config: RuleConfig, namespace: str, claim: str, current: str, minutes: int) -> Inputs:
    """The claim's phase series as kube-state-metrics serves them: 1 for the current phase, 0 for the others."""
    labels = {**config.kube_state_metrics, naming.NAMESPACE_LABEL: namespace, "persistentvolumeclaim": claim}
    return tuple(
        constant("kube_persistentvolumeclaim_status_phase", {**labels, "phase": phase}, int(phase == current), minutes)
        for phase in CLAIM_PHASES
    )


def not_bound(config: RuleConfig, namespace: str, claim: str) -> Case:
    """A claim Pending fires with its phase; a Bound one stays quiet."""
    at = parse_duration(config.volume_claim_pending_for) // 60 + 5
    return Case(
        firing=_phase(config, namespace, claim, "Pending", at),
        quiet=_phase(config, namespace, claim, "Bound", at),
        labels={"phase": "Pending"},
        value=1,
        eval_time=f"{at}m",
    )
