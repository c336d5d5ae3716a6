"""promtool tests that prove the SLO alerts do what the SRE Workbook says.

Traffic is described as segments of constant request rate and bad share; `BurnModel` computes,
minute by minute and with exact fractions, what the recorded windows hold and when each tier's
alert fires, so every expected alert (labels, value, description) is derived, not typed in.
The model relies on what slo.py's windows guarantee: pieces tile a window exactly, so the
error ratio over a window is the share of bad events in it.

Tests per SLO:
- each tier fires at 1.1 × its threshold and stays quiet at 0.9 × (no faster tier involved);
- a full outage after an hour of clean traffic pages at the first evaluation after the Workbook's
  detection time (factor × budget × long window) plus `for`, and not a minute earlier;
- the low-traffic guard counts bad events: at one request a minute a full outage pages as soon as
  the guard's bad events are in (within 15 minutes for 99.9 %), one failed request raises no tier,
  and in a quiet hour one bad event fewer than the guard does not page while the guard's number does;
- the absent-SLI alert fires without data and stays quiet with it.
Per system: every SLO burning at 90 % of its slowest tier for three days and six hours raises
nothing, and its recorded counts and budget match the traffic.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction

from obsbundle import naming
from obsbundle.durations import format_duration, parse_duration
from obsbundle.model import Instrumentation, Service, SliKind, Slo, System
from obsbundle.promql import selector
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.definitions import (
    Alert,
    AlertCheck,
    ExpectedAlert,
    Inputs,
    InputSeries,
    RuleGroup,
    UnitTest,
    merge_inputs,
)
from obsbundle.rules.input_series import close_to, number
from obsbundle.rules.sli import le_values, plain_selector_labels, request_metrics, target_labels
from obsbundle.rules.slo import (
    SLI_ABSENT,
    ServiceSlo,
    alerts_group_name,
    budget_burned,
    burn_doc,
    enabled_tiers,
    min_bad_events,
    percent_text,
    service_slos,
    slo_labels,
    tier_factor,
    tier_for_seconds,
    tier_threshold,
)
from obsbundle.slo_math import BURN_TIERS, BurnTier, format_factor

HOUR = 60
CLEAN_HISTORY = HOUR
"""Minutes of clean traffic before an outage: the page tier's long window is full when it starts."""
BASE_RATE = 600
"""Requests per minute in SLO tests (10 per second), raised where a guard needs more."""
QUIET_RATE = Fraction(1)
"""Requests per minute of a quiet service: the traffic at which a guard on all events hid outages."""
STEADY_MINUTES = 3 * 24 * HOUR + 6 * HOUR + 10
SLOW_STEP = 5
"""Minutes between evaluations in tests that span hours or days and need no finer clock (ticket
tiers, the guard, steady traffic): the 5-minute pieces still tile every window."""
STEADY_EVALUATION_INTERVAL = "5m"


@dataclass(frozen=True)
class Segment:
    minutes: int
    per_minute: Fraction
    bad_share: Fraction


def _events(segments: tuple[Segment, ...], start: int, end: int) -> tuple[Fraction, Fraction]:
    total = bad = Fraction(0)
    begin = 0
    for segment in segments:
        stop = begin + segment.minutes
        low, high = max(begin, start, 0), min(stop, end)
        if high > low:
            total += segment.per_minute * (high - low)
            bad += segment.per_minute * segment.bad_share * (high - low)
        begin = stop
    return total, bad


def _burn_condition(
    segments: tuple[Segment, ...], long_minutes: int, short_minutes: int, *, threshold: Fraction, guard: int, at: int
) -> bool:
    """Whether a tier's expression is true at minute `at`: both windows above the threshold, and
    at least `guard` bad events in the long window (the low-traffic guard)."""
    if at < 1:  # a 5-minute increase needs two samples
        return False
    long_total, long_bad = _events(segments, at - long_minutes, at)
    short_total, short_bad = _events(segments, at - short_minutes, at)
    return (
        long_total > 0
        and short_total > 0
        and long_bad / long_total > threshold
        and short_bad / short_total > threshold
        and long_bad >= guard
    )


@dataclass(frozen=True)
class _TierRule:
    """What a tier's alert rule evaluates for one SLO, in whole minutes and exact ratios."""

    long_minutes: int
    short_minutes: int
    threshold: Fraction
    guard: int
    hold_minutes: int

    def key(self) -> tuple[int, ...]:
        return (
            self.long_minutes,
            self.short_minutes,
            self.threshold.numerator,
            self.threshold.denominator,
            self.guard,
            self.hold_minutes,
        )


_TIER_RULES: dict[tuple[object, ...], tuple[_TierRule, tuple[int, ...]]] = {}


def _tier_rule(
    tier: BurnTier, slo: Slo, config: RuleConfig, *, guarded: bool = True
) -> tuple[_TierRule, tuple[int, ...]]:
    """The rule and its cache key, per distinct SLO target: thousands of SLOs share a few.

    Unguarded, it is the rule without its low-traffic guard: what would fire if the guard were gone."""
    guard = min_bad_events(slo, config) if guarded else 0
    # The window pair names the tier: hashing the tier itself would hash its Fraction every time.
    hold = tier_for_seconds(tier, config, slo)
    key = (tier.window_pair, slo.objective, slo.window, guard, hold)
    found = _TIER_RULES.get(key)
    if found is None:
        rule = _TierRule(
            long_minutes=tier.long_window_s // 60,
            short_minutes=tier.short_window_s // 60,
            threshold=tier_threshold(tier, slo),
            guard=guard,
            hold_minutes=hold // 60,
        )
        found = _TIER_RULES[key] = (rule, rule.key())
    return found


# Answers of `BurnModel.condition` and `.firing`, shared by every model. `firing` re-checks each
# minute of a tier's `for`, and services with the same SLO and traffic profile ask identical
# questions; caching keeps the test generation linear and cheap in the number of SLOs. Keys are
# plain ints, as hashing Fractions and models again and again cost more than the arithmetic.
_CONDITIONS: dict[tuple[object, ...], bool] = {}
_FIRING: dict[tuple[object, ...], bool] = {}
_CACHE_LIMIT = 1 << 20


def _remember(cache: dict[tuple[object, ...], bool], key: tuple[object, ...], answer: bool) -> bool:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = answer
    return answer


class BurnModel:
    """Events and alert states of one SLO under a traffic profile, evaluated every `step` minutes.

    `guarded=False` models the rules without their low-traffic guard, to show what the guard holds back."""

    def __init__(
        self,
        item: ServiceSlo,
        segments: Sequence[Segment],
        config: RuleConfig,
        step: int = 1,
        *,
        guarded: bool = True,
    ) -> None:
        self.item = item
        self.segments = tuple(segments)
        self.config = config
        self.step = step
        self.guarded = guarded
        self._profile = tuple(
            (segment.minutes, *segment.per_minute.as_integer_ratio(), *segment.bad_share.as_integer_ratio())
            for segment in self.segments
        )
        self._rules: dict[str, tuple[_TierRule, tuple[int, ...]]] = {}  # by window pair

    def events(self, start: int, end: int) -> tuple[Fraction, Fraction]:
        """(total, bad) events in the minutes (start, end]; nothing before minute 0."""
        return _events(self.segments, start, end)

    def ratio(self, window_minutes: int, at: int) -> Fraction | None:
        total, bad = self.events(at - window_minutes, at)
        return bad / total if total else None

    def _rule(self, tier: BurnTier) -> tuple[_TierRule, tuple[int, ...]]:
        found = self._rules.get(tier.window_pair)
        if found is None:
            found = self._rules[tier.window_pair] = _tier_rule(
                tier, self.item.slo, self.config, guarded=self.guarded
            )
        return found

    def condition(self, tier: BurnTier, at: int) -> bool:
        rule, rule_key = self._rule(tier)
        key = (self._profile, rule_key, at)
        known = _CONDITIONS.get(key)
        if known is not None:
            return known
        answer = _burn_condition(
            self.segments,
            rule.long_minutes,
            rule.short_minutes,
            threshold=rule.threshold,
            guard=rule.guard,
            at=at,
        )
        return _remember(_CONDITIONS, key, answer)

    def firing(self, tier: BurnTier, at: int) -> bool:
        """Firing at evaluation `at`: true at every evaluation since one at least `for` earlier."""
        rule, rule_key = self._rule(tier)
        key = (self._profile, rule_key, self.step, at)
        known = _FIRING.get(key)
        if known is not None:
            return known
        since = (at - rule.hold_minutes) // self.step * self.step
        answer = since >= 0 and all(self.condition(tier, t) for t in range(since, at + 1, self.step))
        return _remember(_FIRING, key, answer)

    def firing_tiers(self, at: int) -> list[BurnTier]:
        return [tier for tier in enabled_tiers(self.item.slo) if self.firing(tier, at)]

    def first_firing(self, tier: BurnTier, start: int, end: int) -> int:
        found = self.first_firing_or_none(tier, start, end)
        if found is None:
            raise AssertionError(f"{tier.window_pair} never fires between minute {start} and {end}")
        return found

    def first_firing_or_none(self, tier: BurnTier, start: int, end: int) -> int | None:
        for at in range(start, end + 1, self.step):
            if self.firing(tier, at):
                return at
        return None


@functools.lru_cache(maxsize=4096)  # services with the same SLO and profile share their notations
def _counter_notation(increments: tuple[tuple[int, float], ...]) -> str:
    """Expanding notation of a counter from 0 that grows `per_minute` for `minutes`, segment by segment.

    promtool adds the step repeatedly; the next segment starts from the same float sum.
    """
    parts = ["0"]
    value = 0.0
    for minutes, per_minute in increments:
        if minutes <= 0:
            continue
        first = value + per_minute
        parts.append(f"{number(first)}+{number(per_minute)}x{minutes - 1}")
        value = first
        for _ in range(minutes - 1):
            value += per_minute
    return " ".join(parts)


def _counter(metric: str, labels: dict[str, str], per_minute: Sequence[tuple[int, float]]) -> InputSeries:
    return InputSeries(selector(metric, labels), _counter_notation(tuple(per_minute)))


def _share_of(segments: Sequence[Segment], share: Callable[[Segment], Fraction]) -> list[tuple[int, float]]:
    return [(segment.minutes, float(segment.per_minute * share(segment))) for segment in segments]


GROUP = "/group a"
"""The value of every group label in a grouped SLO's tests; the failing-group test adds OTHER_GROUP.
A slash and a space, as in a route: the alerts' links escape them (urlquery), and the tests check it."""
OTHER_GROUP = "/group b"


def group_values(slos: Sequence[Slo], value: str = GROUP) -> dict[str, str]:
    """Group labels of grouped SLOs, each set to `value`: what a test's series carry so that every
    SLO listed sees one group."""
    return {label: value for slo in slos for label in slo.group_by}


def traffic_inputs(
    service: Service, profiles: Sequence[tuple[Slo, Sequence[Segment]]], group: str = GROUP
) -> Inputs | None:
    """Raw series of a service for the traffic profile of each of its SLOs listed; None when a custom
    SLI query is no plain selector. The series of grouped SLOs carry their group labels at `group`.

    An availability profile's bad events fail (fast); a latency profile's are successful but slower
    than the threshold. Micrometer counts requests and durations in one histogram, so its SLOs share
    series: their profiles must then have the same segments and rates, and a request is either fine,
    failed or slow.
    """
    metrics = request_metrics(service)
    grouped = group_values([slo for slo, _ in profiles], group)
    labels = {**target_labels(service), **grouped}
    inputs: list[InputSeries] = []
    availability = [segments for slo, segments in profiles if slo.kind is SliKind.AVAILABILITY]
    latency = [(slo, segments) for slo, segments in profiles if slo.kind is SliKind.LATENCY]
    for slo, segments in profiles:
        if slo.kind in (SliKind.ERROR_RATIO, SliKind.GAUGE):
            # A ratio or a gauge has no counters to feed with these segments; tests/rules/test_sli_kinds.py
            # runs their outages and healthy days in promtool.
            return None
        if slo.kind not in (SliKind.CUSTOM, SliKind.BAD_EVENTS):
            continue
        assert slo.total_query is not None
        counted = slo.good_query if slo.kind is SliKind.CUSTOM else slo.bad_query
        assert counted is not None
        counted_selector = _with_group(plain_selector_labels(counted), grouped)
        total_selector = _with_group(plain_selector_labels(slo.total_query), grouped)
        if counted_selector is None or total_selector is None:
            return None

        def counted_share(segment: Segment, kind: SliKind = slo.kind) -> Fraction:
            return 1 - segment.bad_share if kind is SliKind.CUSTOM else segment.bad_share

        def other_share(segment: Segment) -> Fraction:
            return 1 - counted_share(segment)

        inputs.append(_counter(*counted_selector, _share_of(segments, counted_share)))
        (counted_metric, counted_labels), (total_metric, total_labels) = counted_selector, total_selector
        narrower = [name for name in counted_labels if name not in total_labels]
        if counted_metric == total_metric and narrower and total_labels.items() <= counted_labels.items():
            # The total counts the counted series too: the other events are a sibling series.
            other_labels = {**counted_labels, narrower[0]: counted_labels[narrower[0]] + "-not"}
            inputs.append(_counter(counted_metric, other_labels, _share_of(segments, other_share)))
        else:
            inputs.append(_counter(total_metric, total_labels, _share_of(segments, lambda s: Fraction(1))))
    if metrics is None or not (availability or latency):
        return merge_inputs(inputs)
    assert service.metrics is not None
    ok, failed = {**labels, **metrics.ok_labels}, {**labels, **metrics.error_labels}
    histogram = {**labels, **metrics.duration_labels}
    shared = f"{metrics.duration}_count" == metrics.requests
    if shared:
        segments = (availability or [latency[0][1]])[0]
        fail = availability[0] if availability else [Segment(s.minutes, s.per_minute, Fraction(0)) for s in segments]
        inputs.append(_counter(metrics.requests, ok, _share_of(fail, lambda s: 1 - s.bad_share)))
        inputs.append(_counter(metrics.requests, failed, _share_of(fail, lambda s: s.bad_share)))
    else:
        for segments in availability:
            inputs.append(_counter(metrics.requests, ok, _share_of(segments, lambda s: 1 - s.bad_share)))
            inputs.append(_counter(metrics.requests, failed, _share_of(segments, lambda s: s.bad_share)))
    for slo, segments in latency:
        assert slo.threshold_seconds is not None
        spellings = le_values(slo.threshold_seconds)
        # Go clients write `1`, Python and Java `1.0`: test the spelling the service's library uses.
        le = spellings[0] if service.metrics.instrumentation is Instrumentation.GRPC else spellings[-1]
        if shared:
            fail = (
                availability[0] if availability else [Segment(s.minutes, s.per_minute, Fraction(0)) for s in segments]
            )
            fast_ok = [
                (s.minutes, float(s.per_minute * (1 - f.bad_share - s.bad_share)))
                for s, f in zip(segments, fail, strict=True)
            ]
            inputs.append(_counter(f"{metrics.duration}_bucket", {**ok, "le": le}, fast_ok))
            inputs.append(
                _counter(f"{metrics.duration}_bucket", {**failed, "le": le}, _share_of(fail, lambda s: s.bad_share))
            )
        else:
            inputs.append(
                _counter(
                    f"{metrics.duration}_bucket",
                    {**histogram, "le": le},
                    _share_of(segments, lambda s: 1 - s.bad_share),
                )
            )
            inputs.append(_counter(f"{metrics.duration}_count", histogram, _share_of(segments, lambda s: Fraction(1))))
    return merge_inputs(inputs)


def _with_group(found: tuple[str, dict[str, str]] | None, grouped: dict[str, str]) -> tuple[str, dict[str, str]] | None:
    if found is None:
        return None
    metric, labels = found
    return metric, {**labels, **grouped}


def sli_inputs(item: ServiceSlo, segments: Sequence[Segment], group: str = GROUP) -> Inputs | None:
    """Raw series of one SLO's SLI for a traffic profile (see traffic_inputs)."""
    return traffic_inputs(item.service, [(item.slo, segments)], group)


def _on_grid(minutes: int, step: int) -> int:
    """`minutes` rounded up to a multiple of `step`."""
    return -(-minutes // step) * step


def _steady(minutes: int, per_minute: Fraction, bad_share: Fraction) -> list[Segment]:
    return [Segment(minutes, per_minute, bad_share)]


def _rate_for(bad_events: int, threshold: Fraction) -> Fraction:
    """Requests per minute at which one minute of traffic bad at `threshold` holds `bad_events`
    bad events: at 1.1 × the threshold the guard is met from the first minute, at 0.9 × from the
    second, so the threshold alone decides whether a tier test fires."""
    return Fraction(max(BASE_RATE, math.ceil(math.ceil(bad_events / threshold) / 100) * 100))


def _distinct_share(share: Fraction) -> Fraction:
    """`share`, nudged so that its percentage is not a rounding tie at Prometheus's 4 digits."""
    for step in range(100):
        candidate = share * (1 + Fraction(step, 10_000))
        shown = {f"{float(candidate) * 100 * (1 + drift):.4g}" for drift in (-1e-12, 0.0, 1e-12)}
        if len(shown) == 1:
            return candidate
    return share


Firing = tuple[tuple[str, float], ...]
"""The tiers firing at one evaluation: (window pair, the alert's value: the budget share its
long-window error ratio burns per long window) in BURN_TIERS order."""


@dataclass(frozen=True)
class Scenario:
    """The numbers of one SLO test: traffic, and which tiers fire at each check. They depend on the
    SLO's objective and window and on the rule settings only, so SLOs alike share them; each
    service adds its own series and labels."""

    name: str
    segments: tuple[Segment, ...]
    checks: tuple[tuple[int, Firing], ...]
    """(minute, tiers firing then)"""
    step: int = 1
    """Minutes between evaluations."""


def _firing_at(model: BurnModel, at: int) -> Firing:
    firing = []
    for tier in model.firing_tiers(at):
        ratio = model.ratio(tier.long_window_s // 60, at)
        assert ratio is not None
        firing.append((tier.window_pair, budget_burned(float(ratio), tier, model.item.slo)))
    return tuple(firing)


_SCENARIOS: dict[tuple[object, ...], tuple[Scenario, ...]] = {}


def _scenarios(item: ServiceSlo, config: RuleConfig) -> tuple[Scenario, ...]:
    """The tier, outage and guard scenarios of an SLO, worked out once per distinct SLO target."""
    tiers = enabled_tiers(item.slo)
    holds = tuple(tier_for_seconds(tier, config, item.slo) for tier in tiers)
    key = (
        item.slo.objective,
        item.slo.window,
        min_bad_events(item.slo, config),
        tuple(tier.window_pair for tier in tiers),
        holds,
    )
    found = _SCENARIOS.get(key)
    if found is None:
        pages = BURN_TIERS[0] in tiers
        found = (
            *_tier_scenarios(item, config),
            *((_outage_scenario(item, config), *_guard_scenarios(item, config)) if pages else ()),
        )
        _SCENARIOS[key] = found
    return found


def _tier_scenarios(item: ServiceSlo, config: RuleConfig) -> list[Scenario]:
    """Each tier fires at 1.1 × its threshold and stays quiet at 0.9 ×, at the first evaluation
    after its `for` (ticket tiers on a 5-minute clock, which their `for` of 24m and more allows)."""
    scenarios = []
    for tier in enabled_tiers(item.slo):
        step = 1 if tier.severity == "critical" else SLOW_STEP
        threshold = tier_threshold(tier, item.slo)
        hold = tier_for_seconds(tier, config, item.slo) // 60
        at = _on_grid(hold + step + 2, step)
        guard = min_bad_events(item.slo, config)
        rate = _rate_for(guard, threshold)
        for verb, share in (
            ("fires", min(threshold * Fraction(11, 10), (threshold + 1) / 2)),
            ("stays quiet", threshold * Fraction(9, 10)),
        ):
            segments = _steady(at + 1, rate, _distinct_share(share))
            model = BurnModel(item, segments, config, step)
            _, bad = model.events(at - hold - tier.long_window_s // 60, at - hold)
            assert bad >= guard, "the guard must be met throughout `for`, so that the threshold decides"
            firing = _firing_at(model, at)
            fires = any(window_pair == tier.window_pair for window_pair, _ in firing)
            assert fires == (verb == "fires"), f"{item.slo.objective}/{item.slo.window} {tier.window_pair} {verb}"
            scenarios.append(
                Scenario(
                    f"the {tier.window_pair} tier {verb} at {float(share / threshold):.1f} × its threshold",
                    tuple(segments),
                    ((at, firing),),
                    step,
                )
            )
    return scenarios


def _outage_scenario(item: ServiceSlo, config: RuleConfig) -> Scenario:
    """A full outage after clean traffic pages at the Workbook's detection time plus `for`."""
    page = BURN_TIERS[0]
    rate = _rate_for(min_bad_events(item.slo, config), tier_threshold(page, item.slo))
    horizon = CLEAN_HISTORY + HOUR + tier_for_seconds(page, config, item.slo) // 60 + 2
    segments = (Segment(CLEAN_HISTORY, rate, Fraction(0)), Segment(horizon - CLEAN_HISTORY + 1, rate, Fraction(1)))
    model = BurnModel(item, segments, config)
    fired = model.first_firing(page, CLEAN_HISTORY, horizon)
    bound = CLEAN_HISTORY + page_detection_bound_minutes(item, page, config)
    assert fired <= bound, f"{item.slo.objective}/{item.slo.window} pages at {fired}, after {bound}"
    return Scenario(
        f"a full outage pages {fired - CLEAN_HISTORY}m after it starts "
        f"(Workbook detection {workbook_detection_seconds(item, page):.1f}s + for "
        f"{format_duration(tier_for_seconds(page, config, item.slo))})",
        segments,
        ((fired - 1, _firing_at(model, fired - 1)), (fired, _firing_at(model, fired))),
    )


def _guard_scenarios(item: ServiceSlo, config: RuleConfig) -> list[Scenario]:
    """The low-traffic guard counts bad events: a quiet service's outage pages, a quiet service's
    single failure and one bad event fewer than the guard do not, the guard's number does."""
    scenarios = [_quiet_outage_scenario(item, config)]
    guard = min_bad_events(item.slo, config)
    if guard > 1:
        scenarios.append(_single_failure_scenario(item, config))
    scenarios.append(_burst_scenario(item, config))
    return scenarios


def quiet_outage_rate(item: ServiceSlo, config: RuleConfig) -> Fraction:
    """Requests per minute of the quiet outage: one, unless the page tier's long window could not
    hold the guard's bad events then (a minimum above 30 bad events an hour)."""
    page_minutes = BURN_TIERS[0].long_window_s // 60
    return max(QUIET_RATE, Fraction(math.ceil(2 * min_bad_events(item.slo, config) / page_minutes)))


def quiet_page_bound_minutes(item: ServiceSlo, config: RuleConfig) -> int:
    """Minutes from a quiet service's full outage to the page: the Workbook's bound, or the minutes
    the guard's bad events take to arrive, whichever is later, then `for`."""
    page = BURN_TIERS[0]
    hold = tier_for_seconds(page, config, item.slo) // 60
    guard_minutes = math.ceil(min_bad_events(item.slo, config) / quiet_outage_rate(item, config))
    return max(page_detection_bound_minutes(item, page, config), guard_minutes + hold)


def _quiet_outage_scenario(item: ServiceSlo, config: RuleConfig) -> Scenario:
    """A full outage after an hour of one request a minute pages once the guard's bad events are in."""
    page = BURN_TIERS[0]
    rate = quiet_outage_rate(item, config)
    bound = CLEAN_HISTORY + quiet_page_bound_minutes(item, config)
    segments = (Segment(CLEAN_HISTORY, rate, Fraction(0)), Segment(bound - CLEAN_HISTORY + 1, rate, Fraction(1)))
    model = BurnModel(item, segments, config)
    fired = model.first_firing(page, CLEAN_HISTORY, bound)
    guard = min_bad_events(item.slo, config)
    return Scenario(
        f"at {_per_minute_text(rate)} a full outage pages {fired - CLEAN_HISTORY}m after it starts "
        f"(the later of {guard} bad events for the guard and the Workbook detection "
        f"{workbook_detection_seconds(item, page):.1f}s, then for "
        f"{format_duration(tier_for_seconds(page, config, item.slo))})",
        segments,
        ((fired - 1, _firing_at(model, fired - 1)), (fired, _firing_at(model, fired))),
    )


def _per_minute_text(rate: Fraction) -> str:
    """`one request a minute`, `one request every 64 minutes`, `2 requests a minute`."""
    if rate == 1:
        return "one request a minute"
    if rate.numerator == 1:
        return f"one request every {rate.denominator} minutes"
    return f"{rate} requests a minute"


def _end_of_holds(item: ServiceSlo, tiers: Sequence[BurnTier], config: RuleConfig, after: int) -> int:
    """The first minute after `after` by which each of `tiers` has had its `for` to fire."""
    return after + max(tier_for_seconds(tier, config, item.slo) // 60 for tier in tiers) + 1


def _quiet_checks(
    item: ServiceSlo, segments: tuple[Segment, ...], config: RuleConfig, tiers: Sequence[BurnTier], after: int
) -> list[int]:
    """Minutes at which to check that none of `tiers` fires after minute `after`: the next minute,
    each minute at which one of them would start firing without the guard, and the end of their
    slowest `for`."""
    unguarded = BurnModel(item, segments, config, guarded=False)
    end = _end_of_holds(item, tiers, config, after)
    firsts = {unguarded.first_firing_or_none(tier, after, end) for tier in tiers}
    return sorted({after + 1, end} | {at for at in firsts if at is not None})


def _single_failure_scenario(item: ServiceSlo, config: RuleConfig) -> Scenario:
    """One failed request after an hour of one request a minute raises no tier.

    An hour of history is the hard case: every window, the ticket tiers' days included, holds only
    that hour, so the one failure weighs as much as it can and only the guard keeps a tier quiet
    where its ratios are above the threshold (all four for a 99.9 % SLO)."""
    failure = CLEAN_HISTORY + 1
    end = _end_of_holds(item, enabled_tiers(item.slo), config, failure)
    segments = (
        Segment(CLEAN_HISTORY, QUIET_RATE, Fraction(0)),
        Segment(1, QUIET_RATE, Fraction(1)),
        Segment(end - failure, QUIET_RATE, Fraction(0)),
    )
    model = BurnModel(item, segments, config)
    checked = _quiet_checks(item, segments, config, enabled_tiers(item.slo), failure)
    checks = tuple((at, _firing_at(model, at)) for at in checked)
    assert not any(firing for _, firing in checks), "one failed request must raise no tier"
    return Scenario(
        f"one failed request after an hour of {_per_minute_text(QUIET_RATE)} raises no tier",
        segments,
        checks,
    )


def burst_quiet_rate(item: ServiceSlo, failed: int) -> Fraction:
    """Requests per minute of a quiet hour in which `failed` failed requests in one minute put the
    page tier's long window above its threshold: one, or the largest power of two below it that
    does (exact in floats, so that promtool's event counts are exact too)."""
    page = BURN_TIERS[0]
    threshold = tier_threshold(page, item.slo)
    quiet_minutes = page.long_window_s // 60 - 1
    rate = QUIET_RATE
    while Fraction(failed) / (failed + rate * quiet_minutes) <= threshold:
        rate /= 2
    return rate


def _burst_scenario(item: ServiceSlo, config: RuleConfig) -> Scenario:
    """In a quiet hour whose traffic lets a few failures cross the page tier's threshold in both
    windows, one bad event fewer than the guard (in one minute) pages nobody; one more failure
    pages at the first evaluation after `for`."""
    guard = min_bad_events(item.slo, config)
    page = BURN_TIERS[0]
    pages = [tier for tier in enabled_tiers(item.slo) if tier.severity == page.severity]
    rate = burst_quiet_rate(item, max(guard - 1, 1))
    burst = HOUR + 1
    quiet_until = _end_of_holds(item, pages, config, burst) if guard > 1 else burst - 1
    last = quiet_until + 1
    paged_at = last + tier_for_seconds(page, config, item.slo) // 60
    fewer = (Segment(1, Fraction(guard - 1), Fraction(1)), Segment(quiet_until - burst, rate, Fraction(0)))
    segments = (
        Segment(HOUR, rate, Fraction(0)),
        *(fewer if guard > 1 else ()),
        Segment(1, Fraction(1), Fraction(1)),
        Segment(paged_at - last, rate, Fraction(0)),
    )
    model = BurnModel(item, segments, config)
    checks_at = [*(_quiet_checks(item, segments, config, pages, burst) if guard > 1 else []), paged_at]
    checks = tuple((at, _firing_at(model, at)) for at in checks_at)
    page_pairs = {tier.window_pair for tier in pages}
    before = {pair for at, firing in checks if at < last for pair, _ in firing} & page_pairs
    assert not before, f"{guard - 1} bad events must not page when the guard needs {guard}"
    if guard > 1:
        unguarded = BurnModel(item, segments, config, guarded=False)
        crossed = unguarded.firing(page, burst + tier_for_seconds(page, config, item.slo) // 60)
        assert crossed, "the first failures must cross the page threshold in both windows"
    assert page.window_pair in {pair for pair, _ in checks[-1][1]}, f"{guard} bad events above the threshold must page"
    return Scenario(
        f"{guard - 1} failed requests in a quiet hour ({_per_minute_text(rate)}) page nobody, one more pages: "
        f"the guard needs {guard}",
        segments,
        checks,
    )


class SloTests:
    """Builds the promtool tests of one service's SLO alerts."""

    def __init__(
        self, system: System, alerts: Sequence[Alert], items: Sequence[ServiceSlo], config: RuleConfig
    ) -> None:
        self.system = system
        self.config = config
        self.items = list(items)
        self.burn: dict[tuple[str, str, str], Alert] = {}
        self.absent: dict[tuple[str, str], Alert] = {}
        for alert in alerts:
            key = (alert.labels[naming.SERVICE_LABEL], alert.labels[naming.SLO_LABEL])
            if naming.WINDOW_LABEL in alert.labels:  # a burn-rate tier, whatever the SLO names it
                self.burn[(*key, alert.labels[naming.WINDOW_LABEL])] = alert
            elif alert.doc is SLI_ABSENT:
                self.absent[key] = alert

    def _key(self, item: ServiceSlo) -> tuple[str, str]:
        return item.service.name, item.slo.name

    def _expected_burns(self, model: BurnModel, at: int) -> tuple[ExpectedAlert, ...]:
        return self._expected(model.item, _firing_at(model, at))

    def _expected(self, item: ServiceSlo, firing: Firing, group: str = GROUP) -> tuple[ExpectedAlert, ...]:
        labels = {**slo_labels(self.system, item), **group_values([item.slo], group)}
        return tuple(
            ExpectedAlert(self.burn[(*self._key(item), window_pair)], labels, ratio) for window_pair, ratio in firing
        )

    def _scenario_test(self, item: ServiceSlo, scenario: Scenario) -> UnitTest | None:
        """`scenario` for one SLO: its series, and its alerts expected at each check; None when its
        SLI has no plain selector to feed."""
        inputs = sli_inputs(item, scenario.segments)
        if inputs is None:
            return None
        return UnitTest(
            f"{item.service.name} {item.slo.name}: {scenario.name}",
            inputs,
            tuple(
                AlertCheck(format_duration(at * 60), burn_doc(item.slo).name, self._expected(item, firing))
                for at, firing in scenario.checks
            ),
            evaluation_interval=format_duration(scenario.step * 60),
        )

    def item_tests(self, item: ServiceSlo) -> list[UnitTest]:
        """Each tier at 1.1 × and 0.9 × its threshold, a full outage, and traffic below the guard."""
        if sli_inputs(item, _steady(1, QUIET_RATE, Fraction(0))) is None:
            return []  # no series to feed: the scenarios need not be worked out
        scenarios = _scenarios(item, self.config)
        tests = [test for scenario in scenarios if (test := self._scenario_test(item, scenario)) is not None]
        if item.slo.group_by and BURN_TIERS[0] in enabled_tiers(item.slo):
            tests.append(self._failing_group_test(item))
        return tests

    def _failing_group_test(self, item: ServiceSlo) -> UnitTest:
        """A grouped SLO pages for the group that fails, and only for it: group a has the outage
        scenario's full outage, group b the same traffic without a failure."""
        outage = _outage_scenario(item, self.config)
        healthy = tuple(Segment(segment.minutes, segment.per_minute, Fraction(0)) for segment in outage.segments)
        failing, fine = sli_inputs(item, outage.segments, GROUP), sli_inputs(item, healthy, OTHER_GROUP)
        assert failing is not None and fine is not None
        name = burn_doc(item.slo).name
        groups = ", ".join(item.slo.group_by)
        return UnitTest(
            f"{item.service.name} {item.slo.name}: a full outage of one {groups} pages for it alone, "
            f"not for the {groups} that serves",
            merge_inputs(failing, fine),
            tuple(
                AlertCheck(format_duration(at * 60), name, self._expected(item, firing, GROUP))
                for at, firing in outage.checks
            ),
        )

    def _healthy(self, item: ServiceSlo, minutes: int) -> Inputs | None:
        return sli_inputs(item, _steady(minutes, Fraction(BASE_RATE), Fraction(0)))

    def absent_tests(self) -> list[UnitTest]:
        """The absent-SLI alert fires for an SLO without data, and not while every SLO has data.

        SLOs that read the same metric (Micrometer's availability and latency both count
        `http_server_requests_seconds_count`) lose their data together."""
        if not self.absent:
            return []
        at = self._absent_eval_minutes()
        healthy = {self._key(item): self._healthy(item, at + 1) for item in self.items}
        # An SLO whose `alerting.absent` is off has no absent alert to expect, blind or not.
        blind = [item for item in self.items if healthy[self._key(item)] is None and self._key(item) in self.absent]

        def metrics_of(item: ServiceSlo) -> set[str]:
            return {series.series.split("{", 1)[0] for series in healthy[self._key(item)] or ()}

        def expected(missing: Sequence[ServiceSlo]) -> tuple[ExpectedAlert, ...]:
            return tuple(
                ExpectedAlert(self.absent[self._key(item)], slo_labels(self.system, item), 1.0)
                for item in [*missing, *blind]
                if self._key(item) in self.absent
            )

        def inputs_of(present: Sequence[ServiceSlo]) -> Inputs:
            return merge_inputs(*(healthy[self._key(item)] or () for item in present))

        when = format_duration(at * 60)
        tests = [
            UnitTest(
                "every SLO has data: no absent-SLI alert",
                inputs_of(self.items),
                (AlertCheck(when, SLI_ABSENT.name, expected([])),),
            )
        ]
        for item in self.items:
            if healthy[self._key(item)] is None or self._key(item) not in self.absent:
                continue
            missing = [other for other in self.items if other not in blind and metrics_of(other) & metrics_of(item)]
            tests.append(
                UnitTest(
                    f"{item.service.name} {item.slo.name} has no data: its absent-SLI alert fires",
                    inputs_of([other for other in self.items if other not in missing]),
                    (AlertCheck(when, SLI_ABSENT.name, expected(missing)),),
                )
            )
        return tests

    def _absent_eval_minutes(self) -> int:
        return parse_duration(self.config.slo_absent_for) // 60 + 5

    def steady_test(self) -> UnitTest | None:
        """Days of traffic inside every SLO's budget raise nothing; counts and budgets add up."""
        share = Fraction(9, 10) * min(tier_threshold(tier, item.slo) for item in self.items for tier in BURN_TIERS)
        segments = _steady(STEADY_MINUTES + 1, Fraction(BASE_RATE), share)
        inputs = traffic_inputs(self.items[0].service, [(item.slo, segments) for item in self.items])
        if inputs is None:
            return None
        models = [BurnModel(item, segments, self.config) for item in self.items]
        checkpoints = [HOUR, 6 * HOUR, 24 * HOUR, 3 * 24 * HOUR, STEADY_MINUTES]
        alert_checks: list[AlertCheck] = []
        names = sorted({burn_doc(item.slo).name for item in self.items})
        for at in checkpoints:
            expected = tuple(alert for model in models for alert in self._expected_burns(model, at))
            assert not expected, "steady traffic inside the budget must raise nothing"
            alert_checks.extend(AlertCheck(format_duration(at * 60), name, expected) for name in names)
        end = STEADY_MINUTES
        sample_checks = []
        for model in models:
            labels = {**slo_labels(self.system, model.item), **group_values([model.item.slo])}
            total_3d, _ = model.events(end - 3 * 24 * HOUR, end)
            sample_checks.append(close_to(naming.slo_total_events("3d"), labels, float(total_3d), end))
            period = model.item.slo.window_seconds // 60
            total, bad = model.events(end - period, end)
            remaining = 1 - (bad / total) / Fraction(model.item.slo.error_budget)
            sample_checks.append(close_to(naming.SLO_ERROR_BUDGET_REMAINING, labels, float(remaining), end))
        return UnitTest(
            f"{format_duration(STEADY_MINUTES * 60)} of traffic at {float(share) * 100:.4g}% bad "
            "(90 % of the slowest tier) raise no SLO alert",
            inputs,
            tuple(alert_checks),
            tuple(sample_checks),
            evaluation_interval=STEADY_EVALUATION_INTERVAL,
        )

    def all_tests(self, *, steady: bool) -> list[UnitTest]:
        tests: list[UnitTest] = []
        for item in self.items:
            tests.extend(self.item_tests(item))
        tests.extend(self.absent_tests())
        steady_test = self.steady_test() if steady else None
        if steady_test is not None:
            tests.append(steady_test)
        return tests


def workbook_detection_seconds(item: ServiceSlo, tier: BurnTier) -> float:
    """The Workbook's detection time of a 100 % outage: threshold × long window."""
    return float(tier_threshold(tier, item.slo) * tier.long_window_s)


def page_detection_bound_minutes(item: ServiceSlo, tier: BurnTier, config: RuleConfig) -> int:
    """Minutes from an outage to the page at one-minute evaluations: the first evaluation after the
    detection time (strictly above the threshold), then `for`."""
    detection = tier_threshold(tier, item.slo) * tier.long_window_s / 60
    return math.floor(detection) + 1 + tier_for_seconds(tier, config, item.slo) // 60


@dataclass(frozen=True)
class DetectionRow:
    system: str
    service: str
    slo: str
    objective: Decimal
    window: str
    factor: str
    threshold: str
    detection_seconds: float
    for_: str
    pages_after_minutes: int


def detection_rows(system: System, config: RuleConfig) -> list[DetectionRow]:
    """Per SLO: how long a full outage takes to page, per the Workbook and per the generated rules."""
    page = BURN_TIERS[0]
    rows = []
    for item in service_slos(system):
        if page not in enabled_tiers(item.slo):
            continue  # `alerting.page.enabled: false`: nothing pages
        segments = [
            Segment(CLEAN_HISTORY, Fraction(BASE_RATE) * 100, Fraction(0)),
            Segment(2 * HOUR, Fraction(BASE_RATE) * 100, Fraction(1)),
        ]
        model = BurnModel(item, segments, config)
        fired = model.first_firing(page, CLEAN_HISTORY, CLEAN_HISTORY + 2 * HOUR)
        rows.append(
            DetectionRow(
                system.name,
                item.service.name,
                item.slo.name,
                item.slo.objective,
                item.slo.window,
                format_factor(tier_factor(page, item.slo)),
                percent_text(tier_threshold(page, item.slo)),
                workbook_detection_seconds(item, page),
                format_duration(tier_for_seconds(page, config, item.slo)),
                fired - CLEAN_HISTORY,
            )
        )
    return rows


def steady_service(system: System) -> str | None:
    """The service whose steady-traffic test runs: the one with the most SLOs, first by name.

    Days of traffic are the slowest tests; each tier's quiet test already proves every SLO's own
    factors, so one service per system shows that nothing fires over days."""
    with_slos = [service for service in system.services if service.slos]
    if not with_slos:
        return None
    return min(with_slos, key=lambda service: (-len(service.slos), service.name)).name


def with_slo_tests(system: System, groups: Sequence[RuleGroup], config: RuleConfig) -> list[RuleGroup]:
    """The SLO groups, each service's alert group carrying its tests."""
    steady = steady_service(system)
    by_group: dict[str, list[ServiceSlo]] = {}
    for item in service_slos(system):
        by_group.setdefault(alerts_group_name(system, item.service), []).append(item)
    result: list[RuleGroup] = []
    for group in groups:
        own = by_group.get(group.name, [])
        if not own:
            result.append(group)
            continue
        tests = SloTests(system, group.alerts, own, config).all_tests(steady=own[0].service.name == steady)
        result.append(replace(group, tests=(*group.tests, *tests)))
    return result


def detection_table(systems: Sequence[System], config: RuleConfig) -> str:
    """Markdown table of every SLO's page detection time for a full outage: the Workbook's
    arithmetic, and when the generated rules page with one-minute evaluations (promtool proves it)."""
    lines = [
        "| System | Service | SLO | Objective | Window | Page factor | Threshold | Workbook detection | `for` "
        "| Pages after |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for system in systems:
        for row in detection_rows(system, config):
            lines.append(
                f"| {row.system} | {row.service} | {row.slo} | {row.objective} % | {row.window} | {row.factor} | "
                f"{row.threshold} | {_seconds_text(row.detection_seconds)} | {row.for_} | "
                f"{row.pages_after_minutes} min |"
            )
    return "\n".join(lines) + "\n"


def _seconds_text(seconds: float) -> str:
    """`48.4 s`, or `2419.2 s (40m19s)` past two minutes."""
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds:.1f} s ({format_duration(int(seconds))})"
