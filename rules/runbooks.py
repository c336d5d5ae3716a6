"""One Markdown runbook per alert name and system: what it means, how to check, what to do.

The page lists every rule of the name in the system (entity, severity, condition, team), the
expression each one evaluates and the commands that check it by hand, so that the on-call
engineer who follows `runbook_url` finds the exact query behind the page.
"""

from __future__ import annotations

from collections.abc import Sequence

from obsbundle import naming
from obsbundle.model import System
from obsbundle.rules.definitions import Alert

_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2, "none": 3}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(code: str, language: str) -> str:
    return f"```{language}\n{code}\n```"


def runbook(system: System, alerts: Sequence[Alert]) -> str:
    """The runbook page of one alert name; `alerts` are its rules in the system, in rule order."""
    doc = alerts[0].doc
    severities = sorted({alert.severity for alert in alerts}, key=_SEVERITY_ORDER.__getitem__)
    lines = [
        f"# {doc.name}",
        "",
        f"**{doc.summary}**",
        "",
        f"System: `{system.name}` · severity: {', '.join(f'`{s}`' for s in severities)} · rules: {len(alerts)}",
        "",
        "## Meaning",
        "",
        doc.meaning,
        "",
        "## Where it applies",
        "",
        "| Rule | Severity | Condition | Team |",
        "|---|---|---|---|",
    ]
    for alert in alerts:
        team = alert.labels.get(naming.TEAM_LABEL, "")
        lines.append(f"| {_cell(alert.entity)} | {alert.severity} | {_cell(alert.threshold)} | {_cell(team)} |")
    lines += ["", "## How to check", ""]
    for alert in alerts:
        lines += [f"<details><summary>{alert.entity}</summary>", "", f"Dashboard: {alert.dashboard_url}", ""]
        lines += [
            "The alert's expression" + (f" (for {alert.for_}):" if alert.for_ else ":"),
            "",
            _code(alert.expr, "promql"),
            "",
        ]
        for check in alert.checks:
            lines += [f"{check.title}:", "", _code(check.code, check.language), ""]
        lines += ["</details>", ""]
    lines += ["## What to do", ""]
    lines += [f"{number}. {action}" for number, action in enumerate(doc.actions, start=1)]
    return "\n".join(lines) + "\n"
