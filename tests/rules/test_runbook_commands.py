"""The runbooks' commands come from the inventory and work: the SQL they run finds the real culprit
in a real PostgreSQL, and queue runbooks name the consumers to look at."""

from __future__ import annotations

import shlex
import threading
from collections.abc import Iterator

import pytest

from obsbundle.model import Inventory, System
from obsbundle.rules import alert_groups
from obsbundle.rules.commands import workload_checks
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.definitions import Alert
from tests.support.servers_db import PostgresServer, postgres_server


def _alerts(system: System, name: str) -> list[Alert]:
    return [alert for group in alert_groups(system, RuleConfig()) for alert in group.alerts if alert.name == name]


def _sql_of(command: str) -> str:
    """The statement a `kubectl exec … psql … -c '<sql>'` runbook command runs."""
    words = shlex.split(command)
    return words[words.index("-c") + 1]


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="module")
def ecoeco(default_inventory: Inventory) -> System:
    return next(system for system in default_inventory.systems if system.name == "ecoeco")


def _check(alert: Alert, title_start: str) -> str:
    [check] = [check for check in alert.checks if check.title.startswith(title_start)]
    return check.code


def test_the_lock_wait_runbook_runs_psql_in_the_datastores_pod_and_names_the_blocker(
    ecoeco: System, postgres: PostgresServer
) -> None:
    [alert] = _alerts(ecoeco, "PostgresLockWaits")
    command = _check(alert, "The blocked sessions")
    assert command.startswith("kubectl -n default exec postgresql-0 -- psql -U postgres -X -c ")
    postgres.execute("CREATE TABLE IF NOT EXISTS orders (id int)")
    with postgres.connect(autocommit=False) as holder:
        holder.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
        holder_pid = holder.info.backend_pid
        waiter = threading.Thread(target=postgres.execute, args=("SELECT count(*) FROM orders",))
        waiter.start()
        try:
            rows: list[tuple[object, ...]] = []
            for _ in range(50):
                rows = postgres.execute(_sql_of(command))
                if rows:
                    break
                threading.Event().wait(0.1)
            assert rows, "the runbook's query found no blocked session while one waited"
            [(_, blocked_by, wait_event_type, _, query)] = rows
            assert blocked_by == [holder_pid] and wait_event_type == "Lock"
            assert "FROM orders" in str(query)
        finally:
            holder.rollback()
            waiter.join(timeout=10)


def test_the_long_transaction_runbook_lists_the_oldest_open_transaction_first(
    ecoeco: System, postgres: PostgresServer
) -> None:
    [alert] = _alerts(ecoeco, "PostgresLongTransaction")
    command = _check(alert, "The oldest open transactions")
    with postgres.connect(autocommit=False) as old:
        old.execute("SELECT txid_current()")
        old_pid = old.info.backend_pid
        rows = postgres.execute(_sql_of(command))
        old.rollback()
    assert rows and rows[0][0] == old_pid


def test_the_connections_runbook_query_counts_sessions_by_user_and_state(
    ecoeco: System, postgres: PostgresServer
) -> None:
    [alert] = _alerts(ecoeco, "PostgresConnectionsHigh")
    rows = postgres.execute(_sql_of(_check(alert, "Who holds the connections")))
    assert any(row[1] == "postgres" and row[4] >= 1 for row in rows), rows


def test_queue_alerts_name_their_consumers_and_give_the_commands_for_broker_and_consumers(ecoeco: System) -> None:
    [alert] = [a for a in _alerts(ecoeco, "QueueNoConsumers") if a.labels["queue"] == "storage-uploads"]
    assert "Its consumers: storage-worker (default)." in alert.description.text
    assert "storage-worker" in alert.entity
    broker = _check(alert, "Queue storage-uploads on rabbitmq")
    assert "kubectl -n default exec rabbitmq-0 -- rabbitmqctl list_consumers | grep -w -- storage-uploads" in broker
    consumer = _check(alert, "storage-worker: pods, logs and rollout")
    assert "kubectl -n default get pods -l app=storage-worker -o wide" in consumer
    assert "kubectl -n default rollout status deployment/storage-worker" in consumer


def test_a_rollout_consumer_gets_the_argo_rollouts_command(default_inventory: Inventory) -> None:
    logpilot = next(system for system in default_inventory.systems if system.name == "logpilot")
    [check] = workload_checks(logpilot.service("logpilot-all"))
    assert "kubectl argo rollouts -n logpilot get rollout/logpilot-all" in check.code
    assert "kubectl -n logpilot rollout status" not in check.code
