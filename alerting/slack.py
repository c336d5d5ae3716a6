"""The Slack message: Go template snippets and the per-receiver fields that use them.

The snippets only use data Alertmanager hands every notification (status, labels, annotations),
so one templates file serves every system; what is particular to a system (its Alertmanager and
Grafana addresses, runbook pattern, cluster, the team's mention) is written into the receiver's
fields. The plain config calls the snippets by name from the shipped templates file; the
AlertmanagerConfig carries their bodies inline, because Prometheus Operator cannot attach a
templates file to an AlertmanagerConfig and a template that is missing at notification time
makes Alertmanager drop the message (see docs/alerting.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from obsbundle import naming
from obsbundle.alerting.plan import SlackReceiver
from obsbundle.links import Board, dashboard_url
from obsbundle.model import System
from obsbundle.render import HEADER

TEMPLATES_FILE = "slack.tmpl"
"""The templates file, next to alertmanager.yaml (Alertmanager resolves it relative to the config)."""

MAX_LISTED_ALERTS = 10
"""Alerts spelled out in one message; Slack truncates long attachments, so the rest are counted."""

# Labels worth reading in the message. alertname, system and service are in the title, severity
# is the colour, team is the channel; the rest would be noise.
SHOWN_LABELS: tuple[str, ...] = (
    naming.NAMESPACE_LABEL,
    naming.NODE_POOL_LABEL,
    "node",
    naming.SLO_LABEL,
    naming.WINDOW_LABEL,
    naming.DATASTORE_LABEL,
    naming.QUEUE_LABEL,
    "pod",
    "instance",
)

SEVERITY_COLOURS: tuple[tuple[str, str], ...] = (("critical", "danger"), ("warning", "warning"))
RESOLVED_COLOUR = "good"
OTHER_COLOUR = "#439FE0"


@dataclass(frozen=True)
class Snippet:
    """A named Go template: defined in the templates file, or inlined where no file can be mounted."""

    name: str
    body: str

    def call(self, inline: bool) -> str:
        return self.body if inline else f'{{{{ template "{self.name}" . }}}}'

    def definition(self) -> str:
        return f'{{{{ define "{self.name}" }}}}{self.body}{{{{ end }}}}'


def _colour_body() -> str:
    branches = "".join(
        f'{{{{ else if eq .CommonLabels.severity "{severity}" }}}}{colour}' for severity, colour in SEVERITY_COLOURS
    )
    return f'{{{{ if eq .Status "resolved" }}}}{RESOLVED_COLOUR}{branches}{{{{ else }}}}{OTHER_COLOUR}{{{{ end }}}}'


COLOUR = Snippet("obsbundle.slack.color", _colour_body())

TITLE = Snippet(
    "obsbundle.slack.title",
    '{{ if eq .Status "firing" }}[FIRING:{{ .Alerts.Firing | len }}]{{ else }}[RESOLVED]{{ end }} '
    "{{ .GroupLabels.alertname }}{{ with .GroupLabels.service }} · {{ . }}{{ end }}"
    "{{ with .GroupLabels.system }} · {{ . }}{{ end }}",
)

TEXT = Snippet(
    "obsbundle.slack.text",
    "{{ range $index, $alert := .Alerts }}{{ if lt $index " + str(MAX_LISTED_ALERTS) + " }}"
    '{{ if eq $alert.Status "firing" }}:red_circle:{{ else }}:large_green_circle:{{ end }} '
    "*{{ $alert.Annotations.summary }}*\n"
    "{{ with $alert.Annotations.description }}{{ . }}\n{{ end }}"
    "{{ range $alert.Labels.SortedPairs }}"
    '{{ if match "^(' + "|".join(SHOWN_LABELS) + ')$" .Name }}`{{ .Name }}={{ .Value }}` {{ end }}'
    "{{ end }}"
    '{{ if eq $alert.Status "firing" }}since {{ $alert.StartsAt.UTC.Format "2006-01-02 15:04 MST" }}'
    '{{ else }}resolved {{ $alert.EndsAt.UTC.Format "2006-01-02 15:04 MST" }}{{ end }}\n'
    "{{ end }}{{ end }}"
    "{{ if gt (len .Alerts) " + str(MAX_LISTED_ALERTS) + " }}"
    "_{{ len .Alerts }} alerts in this group; the first " + str(MAX_LISTED_ALERTS) + " are shown._{{ end }}",
)

FILTER = Snippet(
    "obsbundle.slack.filter",
    # The group's labels as an Alertmanager matcher list, URL-encoded: {alertname="X",service="Y"}.
    "%7B{{ range $index, $label := .GroupLabels.SortedPairs }}{{ if $index }}%2C{{ end }}"
    "{{ $label.Name }}%3D%22{{ $label.Value | urlquery }}%22{{ end }}%7D",
)

SNIPPETS: tuple[Snippet, ...] = (COLOUR, TITLE, TEXT, FILTER)


# With global rules the alerts carry `cluster` and are grouped by it: the page names the cluster
# its alerts come from, not the system's one `cluster` of the inventory.
CLUSTER_TITLE = "{{ with .GroupLabels.cluster }} · {{ . }}{{ end }}"
CLUSTER_FOOTER = "{{ .CommonLabels.cluster }}"


def templates_file() -> str:
    """Contents of the templates file that the plain config lists under `templates`."""
    definitions = "\n".join(snippet.definition() for snippet in SNIPPETS)
    return f"{{{{/* {HEADER} */}}}}\n{definitions}\n"


def literal(text: str) -> str:
    """Inventory text placed in a template field: printed as is, even if it contains `{{`."""
    if "{{" not in text:
        return text
    return "{{ " + json.dumps(text) + " }}"  # a Go string literal: JSON's escapes are Go's


def _annotation_or(annotation: str, fallback: str) -> str:
    """The group's common annotation; `fallback` when its alerts disagree or lack it (a button needs a URL)."""
    return f"{{{{ with .CommonAnnotations.{annotation} }}}}{{{{ . }}}}{{{{ else }}}}{fallback}{{{{ end }}}}"


def slack_message(system: System, receiver: SlackReceiver, *, inline: bool) -> dict[str, Any]:
    """The message fields of a Slack receiver (Alertmanager's snake_case names), minus URL and channel."""
    alertmanager = literal(system.monitoring.alertmanager_url.rstrip("/"))
    filter_ = FILTER.call(inline)
    runbook_fallback = "{{ .GroupLabels.alertname }}".join(
        literal(part) for part in system.monitoring.runbook_url.replace("{system}", system.name).split("{alert}")
    )
    overview = literal(dashboard_url(system, Board.OVERVIEW))
    message: dict[str, Any] = {
        "send_resolved": True,
        "color": COLOUR.call(inline),
        "title": TITLE.call(inline) + (CLUSTER_TITLE if receiver.cluster else ""),
        "title_link": f"{alertmanager}/#/alerts?filter={filter_}",
        "text": TEXT.call(inline),
        "fallback": TITLE.call(inline),
        "footer": "{{ with .CommonLabels.team }}team {{ . }} · {{ end }}cluster "
        + (CLUSTER_FOOTER if receiver.cluster else literal(system.cluster)),
        "mrkdwn_in": ["text", "pretext"],
        "actions": [
            {
                "type": "button",
                "text": "Runbook",
                "url": _annotation_or("runbook_url", runbook_fallback),
                "style": "primary",
            },
            {
                "type": "button",
                "text": "Dashboard",
                "url": _annotation_or("dashboard_url", overview),
            },
            {
                "type": "button",
                "text": "Silence",
                "url": f"{alertmanager}/#/silences/new?filter={filter_}",
                "style": "danger",
            },
        ],
    }
    if receiver.page and receiver.mention:
        # Mention on the page itself, not on its resolution: nobody needs waking for good news.
        message["pretext"] = '{{ if eq .Status "firing" }}' + literal(receiver.mention) + "{{ end }}"
        message["link_names"] = True  # so that a plain `@handle` mention notifies
    return message
