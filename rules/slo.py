"""SLO rules: 5-minute event counts, every window derived from them, multiwindow burn-rate alerts.

Windows. Each SLO's good and total events are recorded once, as 5-minute increases
(`slo:sli_good_events:increase5m`, `slo:sli_total_events:increase5m`). Every longer window is a
sum of adjacent shorter ones read at offsets: 30m = 6 × 5m, 1h = 2 × 30m, 2h = 2 × 1h,
6h = 3 × 2h, 1d = 4 × 6h, 3d = 3 × 1d, and the SLO's period from 3d and 1d pieces
(30d = 10 × 3d, 28d = 9 × 3d + 1d). The pieces tile the window exactly, so a window

- weighs every event once (a ratio of event counts, not an average of 5-minute ratios),
- has no lag at its leading edge (an outage is seen as soon as the Workbook's arithmetic says),
- costs a handful of lookups per SLO however long it is, where a `sum_over_time` over 30 days of
  one-minute samples reads 43,200 points per series, and
- survives label churn below the SLO (pods come and go; the recorded counts keep their labels).

A piece that is missing (the first hours after deployment, a gap in evaluation) counts as zero,
as it would in a `sum_over_time`. Window rules cover every SLO of the system in one expression;
objectives, SLIs, budgets and alerts are per SLO.

Alerts follow the SRE Workbook's table (`slo_math.BURN_TIERS`): a tier fires when both its long
and short windows burn faster than its factor (exact for the SLO's period), and the long window
holds at least the SLO's minimum of bad events (`min_bad_events`, else
`RuleConfig.slo_min_bad_events`). The guard counts bad events, not all events: a guard on the
total would need `minimum / threshold` requests in the long window (348 an hour for 99.9 %), so
a service with one request a minute would never page, not even on a total outage; counting bad
events pages that outage within minutes, while a handful of failures in a quiet hour stays quiet.
All tiers share the alert name `SloErrorBudgetBurn` and differ in `window` and `severity`, so
Alertmanager can inhibit a slower tier while a faster one fires.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from obsbundle import naming
from obsbundle.durations import format_duration, parse_duration
from obsbundle.links import Board, PanelId
from obsbundle.model import Service, SliKind, Slo, System
from obsbundle.promql import selector
from obsbundle.rules.alert_labels import AlertSubject, recorded_service_labels, service_labels
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.definitions import Alert, AlertDoc, Recording, RuleGroup, RunbookCheck, url_label
from obsbundle.rules.sli import sli_event_queries
from obsbundle.rules.templating import Description, ValueFormat
from obsbundle.slo_math import BURN_TIERS, BurnTier, format_factor

SHORT_WINDOW_S = 300
WINDOW_CHAIN: tuple[tuple[int, int, int], ...] = (
    (1800, 300, 6),
    (3600, 1800, 2),
    (7200, 3600, 2),
    (21600, 7200, 3),
    (86400, 21600, 4),
    (259200, 86400, 3),
)
"""(window, piece, pieces): each window as a sum of pieces of the one before it."""
DAY_S = 86400
FAST_WINDOWS = (1800, 3600, 7200, 21600)
"""Recorded every `RuleConfig.interval`: the page tiers read them."""

BURN = AlertDoc(
    name="SloErrorBudgetBurn",
    summary="An SLO is spending its error budget too fast.",
    meaning=(
        "The service's bad events (failed or too slow, per the SLO) over both windows named in the "
        "`window` label exceed the tier's burn rate: at 1h-5m and 6h-30m (critical) the budget would "
        "be gone in days, at 1d-2h and 3d-6h (warning) within the SLO period. Users are affected now "
        "(page) or the SLO will be missed if nothing changes (ticket)."
    ),
    actions=(
        "Open the dashboard link: which endpoints, pods or status codes carry the errors or the slow requests?",
        "Check what changed: a rollout (`kubectl rollout history`), a config change, a dependency "
        "(database, queue, external API), traffic growth.",
        "Mitigate first: roll back, scale out, shed load or fail over; investigate after the burn stops.",
        "A ticket tier (warning) needs a fix within days, not a wake-up: file it and link the graph.",
        "If the SLO itself is wrong (threshold too tight, bad events that users never see), change the "
        "inventory's objective rather than silencing the alert.",
    ),
)

SLI_ABSENT = AlertDoc(
    name="SloSliAbsent",
    summary="An SLO has no data: its burn-rate alerts cannot fire.",
    meaning=(
        "The recorded 5-minute good or total event count of the SLO is missing. Either the service is "
        "not scraped (target down, monitor broken), it has served no request since it started (client "
        "libraries create labelled counters on first use), or the metric or bucket it counts no longer "
        "exists (a library upgrade renamed it, the latency threshold is no longer a bucket boundary). "
        "While this fires the SLO is blind."
    ),
    actions=(
        "Check the service's targets: is ServiceTargetDown firing for it as well?",
        "Query the raw SLI series shown below; if a library upgrade renamed them, update the "
        "inventory's instrumentation or histogram_buckets.",
        "For a latency SLO, check that the threshold is still one of the histogram's `le` values.",
        "For an error-ratio SLO (`error_ratio_query`), the ratio is not a number while nothing is served "
        "(0/0) and records nothing: a quiet service's ratio SLI is absent; prefer bad_query and total_query "
        "where the counters exist.",
        "For a gauge SLO (`gauge_query`, such as probe_success or up), check what produces the gauge: the "
        "Probe and blackbox_exporter (DependencyAbsent, BlackboxExporterDown) or the target's scrape.",
    ),
)


@dataclass(frozen=True)
class ServiceSlo:
    service: Service
    slo: Slo


def service_slos(system: System) -> list[ServiceSlo]:
    """Every SLO of the system, by service name then SLO name."""
    return [
        ServiceSlo(service, slo)
        for service in sorted(system.services, key=lambda s: s.name)
        for slo in sorted(service.slos, key=lambda s: s.name)
    ]


def windows_group_names(system: System) -> tuple[str, str]:
    """(short windows, long windows): one pair of groups for every SLO of the system."""
    return f"{system.name}-slo-windows", f"{system.name}-slo-windows-long"


def sli_group_name(system: System, service: Service) -> str:
    return f"{system.name}-slo-sli-{service.name}"


def alerts_group_name(system: System, service: Service) -> str:
    return f"{system.name}-slo-alerts-{service.name}"


SLO_IDENTITY = (naming.SYSTEM_LABEL, naming.NAMESPACE_LABEL, naming.SERVICE_LABEL, naming.SLO_LABEL)
"""The labels that tell one SLO's recorded series from another's; a grouped SLO's add its group labels."""


def burn_doc(slo: Slo) -> AlertDoc:
    """The burn-rate alerts' text under the SLO's own alert name (`alerting.name`), else BURN."""
    name = slo.alerting.name
    return BURN if name is None or name == BURN.name else dataclasses.replace(BURN, name=name)


def enabled_tiers(slo: Slo) -> tuple[BurnTier, ...]:
    """The tiers the SLO alerts on: its page (critical) and ticket (warning) tiers, unless `alerting` turns them off."""
    return tuple(tier for tier in BURN_TIERS if slo.alerting.tier(tier.severity).enabled)


def slo_labels(system: System, item: ServiceSlo) -> dict[str, str]:
    """Labels of the SLO's recorded series: system, namespace, service, slo."""
    return {**recorded_service_labels(system, item.service), naming.SLO_LABEL: item.slo.name}


def budget_text(slo: Slo) -> str:
    """The error budget as an exact decimal (`0.001`)."""
    return format(slo.error_budget.normalize(), "f")


def percent_text(value: Fraction | Decimal) -> str:
    """A ratio as a percentage with up to four decimals (`0.072` → `7.2%`)."""
    exact = Decimal(value.numerator) / Decimal(value.denominator) if isinstance(value, Fraction) else value
    shown = round(exact * 100, 4).normalize()
    return f"{format(shown, 'f')}%"


def tier_factor(tier: BurnTier, slo: Slo) -> Fraction:
    return tier.factor(slo.window_seconds)


def tier_threshold(tier: BurnTier, slo: Slo) -> Fraction:
    """Error ratio above which the tier burns: factor × error budget."""
    return _threshold(tier, slo.window_seconds, slo.error_budget)


@functools.cache  # exact Fraction arithmetic, asked for every minute the SLO tests simulate
def _threshold(tier: BurnTier, period_s: int, error_budget: Decimal) -> Fraction:
    return tier.factor(period_s) * Fraction(error_budget)


def budget_burned_text(tier: BurnTier, slo: Slo) -> str:
    """PromQL that turns the long window's error ratio into the share of the SLO period's budget it
    burns per long window: the burn rate (ratio / budget) times the window's share of the period."""
    return f"/ {budget_text(slo)} * {tier.long_window_s} / {slo.window_seconds}"


def budget_burned(ratio: float, tier: BurnTier, slo: Slo) -> float:
    """What `budget_burned_text` computes, with the same float operations in the same order, so
    that the tests' expected descriptions are Prometheus's digit for digit."""
    return ratio / float(slo.error_budget) * tier.long_window_s / slo.window_seconds


def min_bad_events(slo: Slo, config: RuleConfig) -> int:
    """Fewest bad events in a tier's long window for it to alert: the SLO's own minimum, else the
    rule settings' `slo_min_bad_events`; 0 (no guard) for an error ratio, which counts no events."""
    if not slo.has_event_counts:
        return 0
    return config.slo_min_bad_events if slo.min_bad_events is None else slo.min_bad_events


def tier_for_seconds(tier: BurnTier, config: RuleConfig, slo: Slo | None = None) -> int:
    """The tier's `for`: the SLO's own (`alerting.page.for`, `alerting.ticket.for`), else a share of
    the short window (`RuleConfig.slo_for_share`)."""
    own = slo.alerting.tier(tier.severity).for_ if slo is not None else None
    if own is not None:
        return parse_duration(own)
    return int(tier.short_window_s * config.slo_for_share)


def period_pieces(period_s: int) -> list[tuple[int, int]]:
    """(piece window, offset) that tile an SLO period of whole days: 3-day pieces, then days."""
    days = period_s // DAY_S
    pieces: list[tuple[int, int]] = []
    offset = 0
    for _ in range(days // 3):
        pieces.append((3 * DAY_S, offset))
        offset += 3 * DAY_S
    for _ in range(days % 3):
        pieces.append((DAY_S, offset))
        offset += DAY_S
    return pieces


def chain_pieces(window_s: int) -> list[tuple[int, int]]:
    for window, piece, count in WINDOW_CHAIN:
        if window == window_s:
            return [(piece, index * piece) for index in range(count)]
    raise KeyError(window_s)


def _window_sum(system: System, pieces: list[tuple[int, int]], metric_of_piece: dict[int, str]) -> str:
    """Sum of recorded pieces at their offsets; a missing piece counts as zero (`or 0 * head`)."""
    labels = {naming.SYSTEM_LABEL: system.name}
    head_window, _ = pieces[0]
    head = selector(metric_of_piece[head_window], labels)
    terms = [head]
    for window, offset in pieces[1:]:
        piece = selector(metric_of_piece[window], labels)
        terms.append(f"({piece} offset {format_duration(offset)} or 0 * {head})")
    return "\n+ ".join(terms)


def _window_rules(system: System, window_s: int, pieces: list[tuple[int, int]]) -> list[Recording]:
    """Good and total events, error ratio and burn rate of every SLO over one window."""
    window = format_duration(window_s)
    system_only = {naming.SYSTEM_LABEL: system.name}
    rules: list[Recording] = []
    for name_of in (naming.slo_good_events, naming.slo_total_events):
        sources = {piece: name_of(format_duration(piece)) for piece, _ in pieces}
        rules.append(Recording(name_of(window), _window_sum(system, pieces, sources)))
    rules.extend(_ratio_rules(system_only, window))
    return rules


def _ratio_rules(system_only: dict[str, str], window: str) -> list[Recording]:
    good = selector(naming.slo_good_events(window), system_only)
    total = selector(naming.slo_total_events(window), system_only)
    ratio = selector(naming.slo_error_ratio(window), system_only)
    objective = selector(naming.SLO_OBJECTIVE, system_only)
    # A grouped SLO's ratios carry its group labels, its objective does not: one objective per SLO.
    per_slo = ", ".join(SLO_IDENTITY)
    return [
        Recording(naming.slo_error_ratio(window), f"1 - {good} / {total}"),
        Recording(naming.slo_burn_rate(window), f"{ratio}\n/ on ({per_slo}) group_left ()\n(1 - {objective})"),
    ]


def sli_rules(system: System, items: list[ServiceSlo]) -> list[Recording]:
    rules: list[Recording] = []
    for item in items:
        labels = slo_labels(system, item)
        good, total = sli_event_queries(item.service, item.slo)
        objective = format((item.slo.objective / 100).normalize(), "f")
        rules.append(Recording(naming.SLO_OBJECTIVE, f"vector({objective})", labels))
        rules.append(Recording(naming.SLO_GOOD_EVENTS, good, labels))
        rules.append(Recording(naming.SLO_TOTAL_EVENTS, total, labels))
    return rules


def fast_window_rules(system: System) -> list[Recording]:
    rules = _ratio_rules({naming.SYSTEM_LABEL: system.name}, format_duration(SHORT_WINDOW_S))
    for window_s in FAST_WINDOWS:
        rules.extend(_window_rules(system, window_s, chain_pieces(window_s)))
    return rules


def slow_window_rules(system: System, items: list[ServiceSlo]) -> list[Recording]:
    rules: list[Recording] = []
    recorded = {window for window, _, _ in WINDOW_CHAIN}
    for window_s in (DAY_S, 3 * DAY_S):
        rules.extend(_window_rules(system, window_s, chain_pieces(window_s)))
    for period_s in sorted({item.slo.window_seconds for item in items} - recorded):
        rules.extend(_window_rules(system, period_s, period_pieces(period_s)))
    return rules


def budget_rule(system: System, item: ServiceSlo) -> Recording:
    """Share of the period's error budget left, from the error ratio over the SLO's own period."""
    labels = slo_labels(system, item)
    ratio = selector(naming.slo_error_ratio(item.slo.window), labels)
    return Recording(naming.SLO_ERROR_BUDGET_REMAINING, f"1 - {ratio} / {budget_text(item.slo)}", labels)


def _bad_events_wording(slo: Slo) -> str:
    match slo.kind:
        case SliKind.AVAILABILITY:
            return "failed"
        case SliKind.LATENCY:
            return f"took longer than {slo.threshold}"
        case SliKind.CUSTOM | SliKind.BAD_EVENTS:
            return "were bad"
        case SliKind.ERROR_RATIO:
            return "the error-ratio query counts as bad; each 5-minute value weighs the same"
        case SliKind.GAUGE:
            return "are samples of the SLO's gauge that are not 1"


def _subject(system: System, item: ServiceSlo, **variables: str) -> AlertSubject:
    """An SLO's alerts: its service's labels and the SLO's, linked to the service's dashboard with
    the template `variables` given."""
    labels = {**service_labels(system, item.service), naming.SLO_LABEL: item.slo.name}
    entity = f"{item.service.name} / {item.slo.name}"
    return AlertSubject(system, labels, entity, Board.SERVICE, item.service.name, variables)


def burn_alert(system: System, item: ServiceSlo, tier: BurnTier, config: RuleConfig) -> Alert:
    """The tier's alert for one SLO: long and short windows above factor × budget, enough bad events."""
    slo, service = item.slo, item.service
    labels = slo_labels(system, item)
    factor = format_factor(tier_factor(tier, slo))
    threshold = f"({factor} * {budget_text(slo)})"
    long_ratio = selector(naming.slo_error_ratio(tier.long_window), labels)
    short_ratio = selector(naming.slo_error_ratio(tier.short_window), labels)
    long_total = selector(naming.slo_total_events(tier.long_window), labels)
    long_good = selector(naming.slo_good_events(tier.long_window), labels)
    guard = min_bad_events(slo, config)
    # The guard's bad events are total − good of the recorded windows, which `and` keeps out of
    # the alert's value. The value is the share of the period's budget that the long window's
    # error ratio burns per long window: what the on-call needs to weigh, where the bare ratio
    # (25 % of requests failing) says nothing about how soon the budget is gone.
    # An error-ratio SLI records one event per 5-minute piece: no bad events to count, no guard.
    guard_line = f"  and {long_total} - {long_good} >= {guard}\n" if guard else ""
    expr = (
        f"(\n  {long_ratio} > {threshold}\n  and {short_ratio} > {threshold}\n"
        f"{guard_line})\n{budget_burned_text(tier, slo)}"
    )
    guard_text = (
        f", ≥ {guard} bad events over {tier.long_window}"
        if guard
        else " (no low-traffic guard: an error ratio has no events to count)"
    )
    spent = percent_text(tier.budget_spent)
    description = Description(
        f"{{value}} of the {slo.window} error budget of {naming.possessive(service.name)} {slo.name} SLO"
        f"{group_text(slo)} "
        f"burns every {tier.long_window} at the last {tier.long_window}'s rate of bad events (events that "
        f"{_bad_events_wording(slo)}). Alerts above {spent} per {tier.long_window}: an error ratio above "
        f"{percent_text(tier_threshold(tier, slo))} ({factor}× the {percent_text(slo.error_budget)} error "
        f"budget) over the last {tier.long_window} and the last {tier.short_window}.",
        ValueFormat.PERCENT,
    )
    settings = slo.alerting.tier(tier.severity)
    alert = _subject(system, item, slo=slo.name).alert(
        burn_doc(slo),
        expr=expr,
        severity=tier.severity,
        description=description,
        panel=PanelId.SERVICE_SLO_BURN_RATE,
        for_=format_duration(tier_for_seconds(tier, config, slo)),
        case=None,
        extra_labels={naming.WINDOW_LABEL: tier.window_pair, **slo.alerting.labels, **settings.labels},
        extra_annotations={**slo.alerting.annotations, **settings.annotations},
        entity=f"{service.name} / {slo.name}{_grouped_entity(slo)} ({tier.window_pair})",
        threshold=(
            f"error ratio > {percent_text(tier_threshold(tier, slo))} ({factor} × {budget_text(slo)}) over "
            f"{tier.long_window} and {tier.short_window}{guard_text}"
        ),
        checks=(
            RunbookCheck("Error ratio over the alert's windows", f"{long_ratio}\n{short_ratio}", "promql"),
            RunbookCheck("Budget left", selector(naming.SLO_ERROR_BUDGET_REMAINING, labels), "promql"),
        ),
    )
    if not slo.group_by:
        return alert
    # The link opens the dashboard on the failing group: its variables are the group labels.
    groups = "".join(f"&var-{label}={url_label(label)}" for label in slo.group_by)
    return dataclasses.replace(alert, dashboard_url=alert.dashboard_url + groups)


def group_text(slo: Slo) -> str:
    """` (handler {handler})`: the group a grouped SLO's alert is about, as description fields."""
    if not slo.group_by:
        return ""
    return " (" + ", ".join(f"{label} {{{label}}}" for label in slo.group_by) + ")"


def _grouped_entity(slo: Slo) -> str:
    return f", per {', '.join(slo.group_by)}" if slo.group_by else ""


def absent_alert(system: System, item: ServiceSlo, config: RuleConfig) -> Alert:
    labels = slo_labels(system, item)
    good = selector(naming.SLO_GOOD_EVENTS, labels)
    total = selector(naming.SLO_TOTAL_EVENTS, labels)
    sli_good, sli_total = sli_event_queries(item.service, item.slo)
    return _subject(system, item).alert(
        SLI_ABSENT,
        expr=f"absent({good})\nor absent({total})",
        severity="warning",
        description=Description(
            f"No SLI data for {naming.possessive(item.service.name)} {item.slo.name} SLO for {config.slo_absent_for}: "
            "its burn-rate alerts cannot fire until the series it counts are back."
        ),
        panel=PanelId.SERVICE_REQUEST_RATE,
        for_=config.slo_absent_for,
        case=None,
        extra_labels=item.slo.alerting.labels,
        extra_annotations=item.slo.alerting.annotations,
        threshold=f"no recorded SLI for {config.slo_absent_for}",
        checks=(
            RunbookCheck("The SLI's raw good events", sli_good, "promql"),
            RunbookCheck("The SLI's raw total events", sli_total, "promql"),
        ),
    )


def slo_rule_groups(system: System, config: RuleConfig) -> list[RuleGroup]:
    """SLO groups of the system (none when it has no SLO); tests are added by slo_scenarios.

    Per service, a group of SLIs and a group of alerts (with the budgets), so that each service's
    tests load its own rules only; between them, the window groups cover every SLO of the system.
    """
    items = service_slos(system)
    if not items:
        return []
    windows, long_windows = windows_group_names(system)
    services = sorted({item.service.name: item.service for item in items}.values(), key=lambda s: s.name)
    by_service: dict[str, list[ServiceSlo]] = {service.name: [] for service in services}
    for item in items:
        by_service[item.service.name].append(item)
    sli_groups = [
        RuleGroup(sli_group_name(system, service), config.interval, tuple(sli_rules(system, by_service[service.name])))
        for service in services
    ]
    sli_names = tuple(group.name for group in sli_groups)
    groups = [
        *sli_groups,
        RuleGroup(windows, config.interval, tuple(fast_window_rules(system)), depends_on=sli_names),
        RuleGroup(
            long_windows,
            config.slow_interval,
            tuple(slow_window_rules(system, items)),
            depends_on=(*sli_names, windows),
        ),
    ]
    for service in services:
        own = by_service[service.name]
        rules: list[Recording | Alert] = [budget_rule(system, item) for item in own]
        for item in own:
            rules.extend(burn_alert(system, item, tier, config) for tier in enabled_tiers(item.slo))
            if item.slo.alerting.absent:
                rules.append(absent_alert(system, item, config))
        groups.append(
            RuleGroup(
                alerts_group_name(system, service),
                config.interval,
                tuple(rules),
                depends_on=(sli_group_name(system, service), windows, long_windows),
            )
        )
    return groups
