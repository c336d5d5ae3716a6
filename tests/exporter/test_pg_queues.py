"""The Postgres job table source against real tables of jobs in known states."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.exporter.conftest import (
    MONITOR,
    Passwords,
    collect_once,
    config_from,
    exporter_of,
    fresh_registry,
    jobs_database,
    jobs_entry,
    postgres_entry,
    unique,
    value,
)
from tests.support.servers_db import PostgresServer

pytestmark = pytest.mark.servers

def test_each_queue_value_reports_ready_running_and_oldest_ready_age(
    postgres: PostgresServer, passwords: Passwords, tmp_path: Path
) -> None:
    database = jobs_database(postgres)
    entry = jobs_entry(postgres, passwords, database, queue_column="queue", queues=["push", "email"])
    config = config_from(tmp_path, {"postgres_queues": [entry]})
    before = time.monotonic()
    with exporter_of(config) as exporter:
        samples = collect_once(fresh_registry(exporter))
    elapsed = time.monotonic() - before

    def of(name: str, queue: str) -> float | None:
        return value(samples, name, source="jobs", broker="postgres", queue=queue)

    assert value(samples, "poolq_up", source="jobs", kind="postgres_queues") == 1
    assert (of("poolq_queue_messages_ready", "email"), of("poolq_queue_messages_unacked", "email")) == (3, 2)
    assert (of("poolq_queue_messages_ready", "sms"), of("poolq_queue_messages_unacked", "sms")) == (1, 0)
    # Only done and failed jobs: reported because the configuration lists it, with zeros.
    assert (of("poolq_queue_messages_ready", "push"), of("poolq_queue_messages_unacked", "push")) == (0, 0)
    assert of("poolq_queue_oldest_message_age_seconds", "push") == 0
    email_age = of("poolq_queue_oldest_message_age_seconds", "email")
    assert email_age is not None and 100 <= email_age <= 100 + elapsed + 5
    sms_age = of("poolq_queue_oldest_message_age_seconds", "sms")
    assert sms_age is not None and 5 <= sms_age <= 5 + elapsed + 5
    # Job tables know no consumers.
    assert not [name for name, _ in samples if name == "poolq_queue_consumers"]


def test_without_a_queue_column_the_table_is_one_queue_named_after_it(
    postgres: PostgresServer, passwords: Passwords, tmp_path: Path
) -> None:
    database = jobs_database(postgres)
    config = config_from(tmp_path, {"postgres_queues": [jobs_entry(postgres, passwords, database)]})
    with exporter_of(config) as exporter:
        samples = collect_once(fresh_registry(exporter))
    queue = {"source": "jobs", "broker": "postgres", "queue": "jobs"}
    assert value(samples, "poolq_queue_messages_ready", **queue) == 4
    assert value(samples, "poolq_queue_messages_unacked", **queue) == 2
    age = value(samples, "poolq_queue_oldest_message_age_seconds", **queue)
    assert age is not None and age >= 100
    assert len([name for name, _ in samples if name == "poolq_queue_messages_ready"]) == 1


def test_an_empty_table_without_a_queue_column_reports_zero(
    postgres: PostgresServer, passwords: Passwords, tmp_path: Path
) -> None:
    database = jobs_database(postgres)
    postgres.execute("DELETE FROM jobs", dbname=database)
    config = config_from(tmp_path, {"postgres_queues": [jobs_entry(postgres, passwords, database)]})
    with exporter_of(config) as exporter:
        samples = collect_once(fresh_registry(exporter))
    queue = {"source": "jobs", "broker": "postgres", "queue": "jobs"}
    assert value(samples, "poolq_queue_messages_ready", **queue) == 0
    assert value(samples, "poolq_queue_messages_unacked", **queue) == 0
    assert value(samples, "poolq_queue_oldest_message_age_seconds", **queue) == 0


def test_names_are_quoted_identifiers_and_enum_statuses_compare_as_written(
    postgres: PostgresServer, passwords: Passwords, tmp_path: Path
) -> None:
    """Mixed case, spaces and quotes in names, and an enum status column: all read as configured."""
    database = unique("odd")
    postgres.create_database(database)
    for statement in (
        'CREATE SCHEMA "Work Queue"',
        "CREATE TYPE job_state AS ENUM ('new', 'taken', 'finished')",
        'CREATE TABLE "Work Queue"."Job ""Table""" ("Queue Name" text, "State" job_state, "Created" timestamp)',
        'INSERT INTO "Work Queue"."Job ""Table""" VALUES'
        " ('resize', 'new', now() - interval '30 seconds'), ('resize', 'new', now()),"
        " ('resize', 'taken', now()), ('resize', 'finished', now()), (NULL, 'new', now())",
        f'GRANT USAGE ON SCHEMA "Work Queue" TO {MONITOR}',
        f'GRANT SELECT ON "Work Queue"."Job ""Table""" TO {MONITOR}',
    ):
        postgres.execute(statement, dbname=database)
    entry = postgres_entry(postgres, passwords, name="odd", dbname=database, schema="Work Queue",
                           table='Job "Table"', queue_column="Queue Name", status_column="State",
                           ready_statuses=["new"], running_statuses=["taken"], created_column="Created")
    config = config_from(tmp_path, {"postgres_queues": [entry]})
    with exporter_of(config) as exporter:
        samples = collect_once(fresh_registry(exporter))
    assert value(samples, "poolq_up", source="odd", kind="postgres_queues") == 1
    resize = {"source": "odd", "broker": "postgres", "queue": "resize"}
    assert value(samples, "poolq_queue_messages_ready", **resize) == 2
    assert value(samples, "poolq_queue_messages_unacked", **resize) == 1
    age = value(samples, "poolq_queue_oldest_message_age_seconds", **resize)
    assert age is not None and age >= 30
    # A job without a queue counts under the table's name.
    assert value(samples, "poolq_queue_messages_ready", source="odd", broker="postgres", queue='Job "Table"') == 1


def test_a_table_that_does_not_exist_takes_only_its_source_down(
    postgres: PostgresServer, passwords: Passwords, tmp_path: Path
) -> None:
    database = jobs_database(postgres)
    config = config_from(tmp_path, {"postgres_queues": [
        jobs_entry(postgres, passwords, database),
        jobs_entry(postgres, passwords, database, name="typo", table="jobz"),
    ]})
    with exporter_of(config) as exporter:
        samples = collect_once(fresh_registry(exporter))
    assert value(samples, "poolq_up", source="jobs", kind="postgres_queues") == 1
    assert value(samples, "poolq_up", source="typo", kind="postgres_queues") == 0
