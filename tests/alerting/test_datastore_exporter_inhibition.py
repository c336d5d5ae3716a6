"""A real Alertmanager running aegis's generated config mutes, while one datastore's exporter-down
alert fires, that datastore's health alerts, and neither another datastore's nor the pool & queue
exporter's alerts about the same datastore.

Aegis has two Postgres (`postgres`, `user-postgres`) and two Redis (`redis`, `user-redis`) with
their own exporters; the alerts posted carry the labels of aegis's generated rules for each.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from obsbundle import naming
from obsbundle.model import System
from obsbundle.tools.processes import wait_until
from tests.alerting.generated import Labels, alert_labels, alert_rules
from tests.alerting.stack import write_alerting
from tests.support.alertmanager import AlertmanagerServer, start_alertmanager
from tests.support.slack_receiver import SlackReceiver

pytestmark = pytest.mark.servers

SYSTEM = "aegis"
_cases = itertools.count(1)


@pytest.fixture(scope="module")
def alertmanager(
    tmp_path_factory: pytest.TempPathFactory, fleet_systems: dict[str, System]
) -> Iterator[AlertmanagerServer]:
    slack = SlackReceiver().start()
    folder = tmp_path_factory.mktemp("alertmanager-datastores")
    server = start_alertmanager(folder / "run", write_alerting(fleet_systems[SYSTEM], folder, slack.url))
    yield server
    server.stop()
    slack.stop()


@pytest.fixture(scope="module")
def generated(default_output: dict[str, bytes]) -> dict[tuple[str, str], Labels]:
    """The labels of aegis's generated rules, by (alert name, datastore)."""
    return {
        (rule["alert"], labels[naming.DATASTORE_LABEL]): labels
        for rule in alert_rules(default_output, SYSTEM)
        for labels in [alert_labels(rule)]
        if naming.DATASTORE_LABEL in labels
    }


def _posted(labels: Labels, system: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "labels": {**labels, naming.SYSTEM_LABEL: system},
        "annotations": {"summary": "posted by the test"},
        "startsAt": (now - timedelta(minutes=1)).isoformat(),
        "endsAt": (now + timedelta(hours=1)).isoformat(),
    }


Key = tuple[str, str]
CASES: dict[str, tuple[Key, set[Key], set[Key]]] = {
    "postgres": (
        ("PostgresExporterDown", "user-postgres"),
        {("PostgresDeadlocks", "user-postgres"), ("PostgresDown", "user-postgres"),
         ("PostgresReplicationLag", "user-postgres")},
        # Another Postgres's health, and the pool & queue exporter's view of the same one.
        {("PostgresDeadlocks", "postgres"), ("PostgresConnectionsHigh", "user-postgres")},
    ),
    "redis": (
        ("RedisExporterDown", "redis"),
        {("RedisMemoryHigh", "redis"), ("RedisDown", "redis"), ("RedisReplicasMissing", "redis")},
        {("RedisMemoryHigh", "user-redis"), ("PostgresDeadlocks", "postgres")},
    ),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_a_datastore_exporter_down_mutes_that_datastores_health_alerts_only(
    alertmanager: AlertmanagerServer, generated: dict[Key, Labels], kind: str
) -> None:
    absence, muted, kept = CASES[kind]
    system = f"datastores{next(_cases)}"
    posted = sorted({absence, *muted, *kept})
    alertmanager.post_alerts([_posted(generated[key], system) for key in posted])

    def states() -> dict[Key, bool]:
        return {
            (a["labels"]["alertname"], a["labels"][naming.DATASTORE_LABEL]): bool(a["status"]["inhibitedBy"])
            for a in alertmanager.alerts(system=system)
        }

    wait_until(lambda: all(states().get(key) for key in muted), timeout=30, what=f"{absence[0]} to mute")
    assert states() == {absence: False} | dict.fromkeys(muted, True) | dict.fromkeys(kept, False)
