"""Who is told, how soon and how often: the alerting policy that both config formats share.

Everything here is a choice of the on-call experience rather than a fact of the inventory, so it
lives apart from the rendering code; tests (and users with other habits) pass their own
`AlertingOptions` to the generators.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from obsbundle.model import System


@dataclass(frozen=True)
class Timing:
    """Alertmanager's three notification timers for one kind of route."""

    group_wait: str
    """How long a new group waits for more alerts before its first message."""
    group_interval: str
    """How long a group waits before a message about alerts that joined or resolved."""
    repeat_interval: str
    """How long before an unchanged, still-firing group is posted again."""


# Pages: 30s collects the burst one incident causes (the error-rate, latency and SLO alerts of a
# service fire within seconds of each other) into one message while still paging in under a
# minute; 5m between updates keeps a flapping group from spamming the on-call channel; a page
# that is still firing after 4h is posted again so that an unsilenced, forgotten page resurfaces
# during the same shift.
PAGE_TIMING = Timing(group_wait="30s", group_interval="5m", repeat_interval="4h")

# Tickets: nobody is woken, so a minute of waiting costs nothing and merges more alerts into
# one message; updates every 10m at most; a daily reminder keeps a ticket from being forgotten
# without becoming background noise (a 12h reminder would land in the night half the time).
TICKET_TIMING = Timing(group_wait="1m", group_interval="10m", repeat_interval="24h")

# Info alerts reach no one (see NULL_RECEIVER); long timers only save Alertmanager work.
INFO_TIMING = Timing(group_wait="5m", group_interval="30m", repeat_interval="24h")

# The dead man's switch wants a heartbeat, not a message: send at once, then every 5 minutes,
# so that a switch set to alarm after ~15 minutes of silence tolerates one lost request.
# Watchdog's group never changes, so only repeat_interval triggers the heartbeats.
WATCHDOG_TIMING = Timing(group_wait="0s", group_interval="1m", repeat_interval="5m")

NULL_RECEIVER = "null"
"""Info alerts: recorded, visible in Alertmanager and Grafana, but posted nowhere. Info alerts are
context (a deployment started, a budget is half spent); posting them, even to a quiet channel,
trains people to mute the channel that also carries the tickets."""

WATCHDOG_RECEIVER = "deadmans-switch"

SLACK_SECRETS_DIR = "/etc/alertmanager/secrets"
"""Where Prometheus Operator mounts the Secrets listed in the Alertmanager resource's `spec.secrets`."""

SECRET_KEY = "url"
"""Key of the URL in every Secret the alerting config reads (Slack webhooks, dead man's switch)."""


def slack_secret_name(team: str) -> str:
    """The Kubernetes Secret that holds a team's Slack incoming-webhook URL under key `url`."""
    return f"slack-{team}"


def page_receiver(team: str) -> str:
    """Receiver of a team's critical alerts: the on-call channel, with the mention."""
    return f"{team}-page"


def ticket_receiver(team: str) -> str:
    """Receiver of a team's warnings (and of any alert without a known severity)."""
    return f"{team}-ticket"


WATCHDOG_SECRET_NAME = "deadmans-switch"
"""Operator variant: the Secret that holds the dead man's switch URL under key `url`."""


@dataclass(frozen=True)
class AlertingOptions:
    """Knobs of the generated Alertmanager configuration; the defaults are the product's policy."""

    page: Timing = PAGE_TIMING
    ticket: Timing = TICKET_TIMING
    info: Timing = INFO_TIMING
    watchdog: Timing = WATCHDOG_TIMING
    secrets_dir: str | None = None
    """Folder under which each team's webhook URL is read from `slack-<team>/url`; None: the
    inventory's `monitoring.alertmanager_secrets_dir` (tests point it at a temporary folder)."""
    watchdog_url: str | None = None
    """Heartbeat URL of the dead man's switch ({system} is replaced); None: the inventory's
    `monitoring.deadmans_switch_url`. Alertmanager 0.25 has no `url_file` for webhooks, so the
    plain config carries this URL: use a switch whose URL is not a credential. The Operator
    variant reads it from a Secret instead."""
    group_by: tuple[str, ...] = field(default=("alertname", "system", "service"))

    def slack_url_file(self, system: System, team: str) -> str:
        folder = self.secrets_dir or system.monitoring.alertmanager_secrets_dir
        return f"{folder.rstrip('/')}/{slack_secret_name(team)}/{SECRET_KEY}"

    def watchdog_url_of(self, system: System) -> str | None:
        """The system's heartbeat URL, or None when it has no dead man's switch."""
        url = self.watchdog_url or system.monitoring.deadmans_switch_url
        return None if url is None else url.replace("{system}", system.name)


def no_deadmans_switch_notice(system: System) -> str:
    """What the user is told when Watchdog has nowhere to go: an unwatched Alertmanager fails silently."""
    return (
        f"{system.name}: no dead man's switch: set monitoring.deadmans_switch_url to a heartbeat URL "
        "(Healthchecks.io, Dead Man's Snitch, a PagerDuty or Opsgenie heartbeat); until then Watchdog "
        "reaches no one and a dead Prometheus or Alertmanager goes unnoticed"
    )
