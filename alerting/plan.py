"""The routing plan of one system: receivers, the routing tree and inhibition rules.

The plan is built once from the owners in the inventory and the alert label contract in
`obsbundle.naming`; `alerting.alertmanager_yaml` and `alerting.operator` only render it, so the
plain Alertmanager config and the AlertmanagerConfig object cannot route differently.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from obsbundle import naming
from obsbundle.alerting.policy import (
    NULL_RECEIVER,
    WATCHDOG_RECEIVER,
    AlertingOptions,
    Timing,
    page_receiver,
    ticket_receiver,
)
from obsbundle.model import Datastore, Dependency, Owner, Service, System
from obsbundle.promql import regex_literal
from obsbundle.promql_clusters import CLUSTER
from obsbundle.providers import Provider
from obsbundle.settings import Ruler
from obsbundle.slo_math import BURN_TIERS

MatchOp = Literal["=", "!=", "=~", "!~"]

ALERTNAME = "alertname"

# Labels that say which thing an alert is about. "Critical inhibits warning" compares all of them
# (labels missing on both sides compare equal), so that a critical alert only silences the warning
# about the same service, pool, datastore, queue or SLO, never a sibling's.
IDENTITY_LABELS: tuple[str, ...] = (
    ALERTNAME,
    naming.SYSTEM_LABEL,
    naming.NAMESPACE_LABEL,
    naming.SERVICE_LABEL,
    naming.SLO_LABEL,
    naming.NODE_POOL_LABEL,
    "node",
    naming.DATASTORE_LABEL,
    naming.QUEUE_LABEL,
)


@dataclass(frozen=True)
class Matcher:
    """One label matcher, as Alertmanager ≥ 0.22 writes it: `name="value"`, `name=~"regex"`."""

    name: str
    op: MatchOp
    value: str

    def text(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op}"{escaped}"'


def equals(name: str, value: str) -> Matcher:
    return Matcher(name, "=", value)


def matches_any(name: str, values: tuple[str, ...]) -> Matcher:
    """`name=~"a|b|c"`, each value matched literally (Alertmanager anchors the regex)."""
    return Matcher(name, "=~", "|".join(regex_literal(value) for value in values))


@dataclass(frozen=True)
class SlackReceiver:
    """A team's Slack channel; `mention` is set on page receivers only."""

    name: str
    team: str
    channel: str
    page: bool
    mention: str | None = None
    cluster: bool = False
    """Name the alerts' cluster in the message: with global rules one Alertmanager pages for many."""


@dataclass(frozen=True)
class WebhookReceiver:
    """The dead man's switch: gets Watchdog's heartbeat, never anything else."""

    name: str
    url: str


@dataclass(frozen=True)
class NullReceiver:
    name: str


Receiver = SlackReceiver | WebhookReceiver | NullReceiver


@dataclass(frozen=True)
class Route:
    """A node of the routing tree; the first matching child wins (no `continue` anywhere)."""

    receiver: str
    timing: Timing
    matchers: tuple[Matcher, ...] = ()
    routes: tuple[Route, ...] = ()


@dataclass(frozen=True)
class InhibitRule:
    """While an alert matching `source` fires, alerts matching `target` with the same `equal` labels are muted."""

    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]


@dataclass(frozen=True)
class RoutingPlan:
    system: str
    group_by: tuple[str, ...]
    route: Route
    receivers: tuple[Receiver, ...]
    inhibit_rules: tuple[InhibitRule, ...]


def teams(system: System) -> tuple[Owner, ...]:
    """Every owner of the system, one per team, sorted by team (checks.py: one team, one set of channels)."""
    owners: dict[str, Owner] = {system.owner.team: system.owner}
    entities: list[Service | Datastore | Dependency] = [*system.services, *system.datastores, *system.dependencies]
    for entity in entities:
        owner = system.owner_of(entity)
        owners.setdefault(owner.team, owner)
    return tuple(owners[team] for team in sorted(owners))


def routing_plan(system: System, options: AlertingOptions, ruler: Ruler = Ruler.LOCAL) -> RoutingPlan:
    """Receivers, routes and inhibition rules of one system, in a stable order.

    For global rules (`Ruler.GLOBAL`) alerts carry `cluster`, and one Alertmanager gets those of
    every cluster: they are grouped by it, no inhibition crosses from one cluster to another, and
    the Slack message names it, so that an outage in one cluster is one page that says which."""
    clusters = ruler is Ruler.GLOBAL
    owners = teams(system)
    heartbeat = options.watchdog_url_of(system)
    # Without a switch Watchdog still gets its own receiver and route, so that it never falls
    # through to a team's channel; the generator tells the user it reaches no one.
    watchdog: Receiver = (
        NullReceiver(WATCHDOG_RECEIVER) if heartbeat is None else WebhookReceiver(WATCHDOG_RECEIVER, heartbeat)
    )
    receivers: list[Receiver] = [NullReceiver(NULL_RECEIVER), watchdog]
    for owner in owners:
        receivers.append(
            SlackReceiver(
                page_receiver(owner.team), owner.team, owner.page_channel, True, owner.oncall_mention, clusters
            )
        )
        receivers.append(
            SlackReceiver(ticket_receiver(owner.team), owner.team, owner.slack_channel, False, cluster=clusters)
        )

    critical = equals(naming.SEVERITY_LABEL, "critical")
    routes: list[Route] = [
        Route(WATCHDOG_RECEIVER, options.watchdog, (equals(ALERTNAME, naming.ALERT_WATCHDOG),)),
        Route(NULL_RECEIVER, options.info, (equals(naming.SEVERITY_LABEL, "info"),)),
    ]
    routes.extend(
        Route(
            ticket_receiver(owner.team),
            options.ticket,
            (equals(naming.TEAM_LABEL, owner.team),),
            (Route(page_receiver(owner.team), options.page, (critical,)),),
        )
        for owner in owners
    )
    # An alert whose team label names no team of this system (a rule written by hand, or a
    # label lost on the way) still reaches someone: the system's owner.
    routes.append(Route(page_receiver(system.owner.team), options.page, (critical,)))
    root = Route(ticket_receiver(system.owner.team), options.ticket, (), tuple(routes))
    rules = inhibit_rules(system)
    if not clusters:
        return RoutingPlan(system.name, options.group_by, root, tuple(receivers), rules)
    group_by = options.group_by if CLUSTER in options.group_by else (*options.group_by, CLUSTER)
    apart = tuple(replace(rule, equal=(*rule.equal, CLUSTER)) for rule in rules)
    return RoutingPlan(system.name, group_by, root, tuple(receivers), apart)


def inhibit_rules(system: System) -> tuple[InhibitRule, ...]:
    """The inhibitions of the label contract; every rule compares `system`, so systems never mute each other.

    Grouped SLOs' alerts differ only in their group labels (one per handler, tenant…): the rules
    compare those too, so that one group's page never mutes another group's ticket."""
    groups = system.slo_group_labels()
    rules = [
        # The same problem at two thresholds: the page is enough.
        InhibitRule(
            (equals(naming.SEVERITY_LABEL, "critical"),),
            (equals(naming.SEVERITY_LABEL, "warning"),),
            (*IDENTITY_LABELS, *groups),
        )
    ]
    # Burn-rate tiers, fastest first: a faster tier firing already says what every slower one
    # would, with more urgency; the slower ones matter again once it resolves.
    windows = tuple(tier.window_pair for tier in BURN_TIERS)
    slo_identity = (naming.SYSTEM_LABEL, naming.NAMESPACE_LABEL, naming.SERVICE_LABEL, naming.SLO_LABEL, *groups)
    rules.extend(
        InhibitRule(
            (equals(naming.WINDOW_LABEL, faster), _has(naming.SLO_LABEL)),
            (matches_any(naming.WINDOW_LABEL, windows[position + 1 :]),),
            slo_identity,
        )
        for position, faster in enumerate(windows[:-1])
    )
    # A pool with no ready node explains every alert of the workloads pinned to it; the pool's own
    # NodePoolDown is kept (it is the one message that matters).
    rules.append(
        InhibitRule(
            (equals(ALERTNAME, naming.ALERT_NODE_POOL_DOWN),),
            (Matcher(ALERTNAME, "!=", naming.ALERT_NODE_POOL_DOWN),),
            (naming.SYSTEM_LABEL, naming.NODE_POOL_LABEL),
        )
    )
    # An absent exporter explains every alert that reads it: without its series they cannot fire,
    # and what does fire on them is noise. An alert names all the exporters it reads in one
    # `exporter` label (sorted, comma-joined), so each absence matches its name within the list
    # and an alert reading two exporters is muted while either is absent.
    rules.extend(
        InhibitRule(
            (equals(ALERTNAME, alertname),),
            (
                Matcher(naming.EXPORTER_LABEL, "=~", naming.exporter_label_regex(provider)),
                Matcher(ALERTNAME, "!=", alertname),
            ),
            (naming.SYSTEM_LABEL,),
        )
        for provider, alertname in sorted(naming.EXPORTER_ABSENT_ALERTS.items())
    )
    # A datastore's own exporter (a sidecar per StatefulSet) explains that datastore's alerts only.
    rules.extend(
        InhibitRule(
            (equals(ALERTNAME, alertname),),
            (
                Matcher(naming.EXPORTER_LABEL, "=~", naming.exporter_label_regex(provider)),
                Matcher(ALERTNAME, "!=", alertname),
            ),
            (naming.SYSTEM_LABEL, naming.DATASTORE_LABEL),
        )
        for provider, alertname in sorted(naming.DATASTORE_EXPORTER_DOWN_ALERTS.items())
    )
    pool_queue = Matcher(naming.EXPORTER_LABEL, "=~", naming.exporter_label_regex(Provider.POOL_QUEUE_EXPORTER))
    exporter_alerts = (naming.ALERT_EXPORTER_DOWN, naming.ALERT_EXPORTER_SOURCE_DOWN)
    # One unreadable source likewise explains the exporter alerts about that datastore.
    rules.append(
        InhibitRule(
            (equals(ALERTNAME, naming.ALERT_EXPORTER_SOURCE_DOWN),),
            (pool_queue, Matcher(ALERTNAME, "!~", "|".join(exporter_alerts))),
            (naming.SYSTEM_LABEL, naming.DATASTORE_LABEL),
        )
    )
    return tuple(rules)


def _has(name: str) -> Matcher:
    """`name` is set: Alertmanager treats a missing label as the empty string."""
    return Matcher(name, "=~", ".+")
