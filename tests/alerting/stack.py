"""A generated Alertmanager config on disk, wired to a local Slack receiver instead of Slack.

The config is the generator's own output with two test settings: short timers (so a test waits
seconds, not minutes) and a secrets folder in a temp dir whose `slack-<team>/url` files hold the
receiver's address, exactly as the mounted Secrets would hold Slack's.
"""

from __future__ import annotations

from pathlib import Path

from obsbundle.alerting import alerting_documents
from obsbundle.alerting.plan import teams
from obsbundle.alerting.policy import AlertingOptions, Timing
from obsbundle.model import System
from obsbundle.render import render
from obsbundle.settings import Settings

# One second to the first message and between updates; no repeats within a test.
FAST = Timing(group_wait="1s", group_interval="1s", repeat_interval="1h")


def fast_options(secrets_dir: Path, watchdog_url: str) -> AlertingOptions:
    return AlertingOptions(
        page=FAST, ticket=FAST, info=FAST, watchdog=FAST, secrets_dir=str(secrets_dir), watchdog_url=watchdog_url
    )


def slack_path(team: str, prefix: str = "") -> str:
    """The receiver path a team's webhook URL points at, so a delivery shows which secret was used."""
    return f"{prefix}/services/{team}"


def write_alerting(
    system: System, folder: Path, receiver_url: str, prefix: str = "", settings: Settings | None = None
) -> Path:
    """Generate the system's alerting files into `folder` and its Slack secrets; returns alertmanager.yaml."""
    secrets = folder / "secrets"
    for owner in teams(system):
        url_file = secrets / f"slack-{owner.team}" / "url"
        url_file.parent.mkdir(parents=True, exist_ok=True)
        url_file.write_text(receiver_url + slack_path(owner.team, prefix) + "\n")
    options = fast_options(secrets, f"{receiver_url}{prefix}/watchdog/{{system}}")
    for document in alerting_documents(system, settings or Settings(), options):
        target = folder / "out" / document.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(render(document))
    return folder / "out" / "alertmanager" / "alertmanager.yaml"
