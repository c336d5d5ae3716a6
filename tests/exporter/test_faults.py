"""Servers that stop, come back, hang, refuse or reject: the exporter answers within its deadline,
marks only the affected sources down, keeps one connection per source and recovers by itself."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from obsbundle.tools.processes import free_port, wait_until
from tests.exporter.conftest import (
    SCRAPE_TIMEOUT,
    Endpoint,
    Passwords,
    Servers,
    backends,
    config_from,
    jobs_database,
    jobs_entry,
    parse_samples,
    pgbouncer_entry,
    postgres_entry,
    rabbitmq_entry,
    redis_entry,
    scrape_within_deadline,
    serve,
    silent_server,
    unique,
    value,
)
from tests.support.servers_db import PgBouncerServer, PostgresServer, RabbitMQServer, RedisServer

pytestmark = pytest.mark.servers

def test_a_stopped_postgres_is_down_and_its_sources_recover_after_a_restart(
    postgres: PostgresServer, pgbouncer: PgBouncerServer, passwords: Passwords, tmp_path: Path
) -> None:
    database = jobs_database(postgres)
    config = config_from(tmp_path, {
        "postgres": [postgres_entry(postgres, passwords)],
        "pgbouncer": [pgbouncer_entry(pgbouncer, passwords)],
        "postgres_queues": [jobs_entry(postgres, passwords, database)],
    })
    with serve(config) as endpoint:
        assert scrape_within_deadline(endpoint) == {"main": 1, "pool": 1, "jobs": 1}
        postgres.stop()
        try:
            # PgBouncer's console answers without PostgreSQL behind it.
            assert scrape_within_deadline(endpoint) == {"main": 0, "pool": 1, "jobs": 0}
        finally:
            postgres.start()
        assert scrape_within_deadline(endpoint) == {"main": 1, "pool": 1, "jobs": 1}
        assert backends(postgres, "exporter-main") == 1
        assert backends(postgres, "exporter-jobs") == 1


def test_a_stopped_pgbouncer_is_down_and_recovers_after_a_restart(
    pgbouncer: PgBouncerServer, postgres: PostgresServer, passwords: Passwords, tmp_path: Path
) -> None:
    config = config_from(tmp_path, {
        "postgres": [postgres_entry(postgres, passwords)],
        "pgbouncer": [pgbouncer_entry(pgbouncer, passwords)],
    })
    with serve(config) as endpoint:
        assert scrape_within_deadline(endpoint) == {"main": 1, "pool": 1}
        pgbouncer.stop()
        try:
            assert scrape_within_deadline(endpoint) == {"main": 1, "pool": 0}
        finally:
            pgbouncer.start()
        assert scrape_within_deadline(endpoint) == {"main": 1, "pool": 1}
        clients = [row for row in pgbouncer.show("stats", "CLIENTS") if row.get("application_name") == "exporter-pool"]
        assert len(clients) == 1


def test_a_stopped_rabbitmq_is_down_and_recovers_after_a_restart(
    rabbitmq: RabbitMQServer, redis_db: RedisServer, passwords: Passwords, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    vhost = unique("vhost")
    rabbitmq.add_vhost(vhost)
    rabbitmq.grant("monitor", vhost, "", "", "")
    config = config_from(tmp_path, {
        "rabbitmq": [rabbitmq_entry(rabbitmq, passwords, vhost)],
        "redis": [redis_entry(redis_db, passwords, ["celery"])],
    })
    with serve(config) as endpoint:
        assert scrape_within_deadline(endpoint) == {"broker": 1, "celery": 1}
        rabbitmq.stop()
        try:
            assert scrape_within_deadline(endpoint) == {"broker": 0, "celery": 1}
        finally:
            rabbitmq.start()
        assert scrape_within_deadline(endpoint) == {"broker": 1, "celery": 1}
    # Its plugin's port refused too, but so did the management API: a broker down, not a plugin off.
    assert "rabbitmq_prometheus does not answer" not in caplog.text


def test_a_stopped_redis_is_down_and_recovers_after_a_restart(
    redis_db: RedisServer, postgres: PostgresServer, passwords: Passwords, tmp_path: Path
) -> None:
    config = config_from(tmp_path, {
        "postgres": [postgres_entry(postgres, passwords)],
        "redis": [redis_entry(redis_db, passwords, ["celery"])],
    })
    with serve(config) as endpoint:
        assert scrape_within_deadline(endpoint) == {"main": 1, "celery": 1}
        redis_db.stop()
        try:
            assert scrape_within_deadline(endpoint) == {"main": 1, "celery": 0}
        finally:
            redis_db.start()
        assert scrape_within_deadline(endpoint) == {"main": 1, "celery": 1}
        exporter_clients = [line for line in redis_db.client().client_list() if line["name"] == "obsbundle-exporter"]
        assert len(exporter_clients) == 1


@contextmanager
def locked(postgres: PostgresServer, database: str, *tables: str) -> Iterator[None]:
    """Hold ACCESS EXCLUSIVE locks on `tables`, so that every read of them waits."""
    with postgres.connect(database) as conn:
        conn.execute("BEGIN")
        for table in tables:
            conn.execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE'.encode())
        try:
            yield
        finally:
            conn.execute("ROLLBACK")


def test_queries_slower_than_the_deadline_are_cancelled_and_only_their_sources_are_down(
    postgres: PostgresServer, redis_db: RedisServer, passwords: Passwords, tmp_path: Path
) -> None:
    database = jobs_database(postgres, tables=("jobs", "jobs_b"))
    config = config_from(tmp_path, {
        "postgres": [postgres_entry(postgres, passwords)],
        "redis": [redis_entry(redis_db, passwords, ["celery"])],
        "postgres_queues": [jobs_entry(postgres, passwords, database),
                            jobs_entry(postgres, passwords, database, name="jobs_b", table="jobs_b")],
    })
    with serve(config) as endpoint:
        assert scrape_within_deadline(endpoint) == {"main": 1, "celery": 1, "jobs": 1, "jobs_b": 1}
        (pid_before,), = postgres.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'exporter-jobs'")
        with locked(postgres, database, "jobs", "jobs_b"):
            # Both blocked sources wait at the same time: one deadline, not one each.
            assert scrape_within_deadline(endpoint, 2.0) == {"main": 1, "celery": 1, "jobs": 0, "jobs_b": 0}
            # statement_timeout ended the waiting queries on the server too.
            wait_until(lambda: backends(postgres, "exporter-jobs", waiting_on_lock=True) == 0, 5,
                       "the blocked query to be cancelled")
        assert scrape_within_deadline(endpoint) == {"main": 1, "celery": 1, "jobs": 1, "jobs_b": 1}
        # The cancelled query did not cost the connection.
        (pid_after,), = postgres.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'exporter-jobs'")
        assert pid_after == pid_before


def test_scrapes_that_arrive_during_a_collection_share_it(
    postgres: PostgresServer, passwords: Passwords, tmp_path: Path
) -> None:
    database = jobs_database(postgres)
    config = config_from(tmp_path, {"postgres_queues": [jobs_entry(postgres, passwords, database)]})
    bodies: list[str] = []

    def scrape(endpoint: Endpoint) -> None:
        bodies.append(endpoint.scrape(timeout_header=SCRAPE_TIMEOUT).text)

    with serve(config) as endpoint, locked(postgres, database, "jobs"):
        first = threading.Thread(target=scrape, args=(endpoint,))
        first.start()
        wait_until(lambda: backends(postgres, "exporter-jobs", waiting_on_lock=True) == 1, 5,
                   "the first scrape's query to wait on the lock")
        others = [threading.Thread(target=scrape, args=(endpoint,)) for _ in range(4)]
        for thread in others:
            thread.start()
        time.sleep(0.3)  # give the four scrapes time to arrive at the exporter while the query waits
        assert backends(postgres, "exporter-jobs") == 1
        assert backends(postgres, "exporter-jobs", waiting_on_lock=True) == 1
        for thread in [first, *others]:
            thread.join(timeout=10)
    assert len(bodies) == 5
    # One collection served all five: same durations to the last digit.
    assert len(set(bodies)) == 1
    assert value(parse_samples(bodies[0]), "poolq_up", source="jobs", kind="postgres_queues") == 0


def test_a_server_that_never_answers_holds_at_most_one_connection_across_scrapes(
    postgres: PostgresServer, passwords: Passwords, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with silent_server() as (port, accepted):
        entry = {**postgres_entry(postgres, passwords, name="mute"), "port": port, "sslmode": "disable"}
        config = config_from(tmp_path, {"postgres": [entry, postgres_entry(postgres, passwords)]})
        with serve(config) as endpoint:
            # libpq waits at least 2 s to connect; two 0.5 s scrapes fall inside that wait, the
            # second while the first one's connection attempt still runs.
            for _ in range(2):
                assert scrape_within_deadline(endpoint, 1.0) == {"mute": 0, "main": 1}
            assert len(accepted) == 1
    assert "still busy with a collection that missed an earlier deadline" in caplog.text


def test_a_refused_connection_is_a_source_down_and_a_200_for_the_rest(
    postgres: PostgresServer, passwords: Passwords, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    closed = free_port()
    config = config_from(tmp_path, {
        "postgres": [{**postgres_entry(postgres, passwords, name="refused"), "port": closed},
                     postgres_entry(postgres, passwords)],
        "rabbitmq": [{"name": "no-broker", "url": f"http://127.0.0.1:{closed}", "user": "monitor",
                      "password_file": str(passwords.file("rabbitmq"))}],
        "redis": [{"name": "no-redis", "url": f"redis://127.0.0.1:{closed}/0", "queues": ["celery"]}],
    })
    with serve(config) as endpoint:
        assert scrape_within_deadline(endpoint) == {"refused": 0, "main": 1, "no-broker": 0, "no-redis": 0}
    down_lines = [line for line in caplog.text.splitlines() if "is down for this scrape" in line]
    assert len(down_lines) == 3
    assert all("refused" in line.lower() for line in down_lines)


def test_a_wrong_password_is_a_source_down_and_no_password_is_ever_printed(
    servers: Servers, passwords: Passwords, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    postgres, pgbouncer, rabbitmq, redis_db = servers.postgres, servers.pgbouncer, servers.rabbitmq, servers.redis
    wrong = f"wrong-{unique('secret')}"
    wrong_file = tmp_path / "wrong.password"
    wrong_file.write_text(wrong, encoding="utf-8")
    vhost = unique("vhost")
    rabbitmq.add_vhost(vhost)
    rabbitmq.grant("monitor", vhost, "", "", "")
    bad = {"password_file": str(wrong_file)}
    config = config_from(tmp_path, {
        "postgres": [{**postgres_entry(postgres, passwords), **bad}, postgres_entry(postgres, passwords, name="ok")],
        "pgbouncer": [{**pgbouncer_entry(pgbouncer, passwords), **bad}],
        "rabbitmq": [{**rabbitmq_entry(rabbitmq, passwords, vhost), **bad}],
        "redis": [{**redis_entry(redis_db, passwords, ["celery"]), **bad}],
    })
    caplog.set_level("DEBUG")
    with serve(config) as endpoint:
        response = endpoint.scrape()
        basic = requests.get(endpoint.url, auth=("monitor", wrong), timeout=10)  # ignored without basic auth
    assert response.status_code == basic.status_code == 200
    up = {dict(labels)["source"]: count for (name, labels), count in parse_samples(response.text).items()
          if name == "poolq_up"}
    assert up == {"main": 0, "ok": 1, "pool": 0, "broker": 0, "celery": 0}
    log = caplog.text
    assert "password authentication failed" in log
    assert "HTTP 401" in log
    for secret in [wrong, *passwords.all()]:
        assert secret not in response.text
        assert secret not in log
