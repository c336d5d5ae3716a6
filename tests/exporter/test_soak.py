"""A thousand scrapes of every kind of source: no connection, file or memory leaks."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import requests

from obsbundle.tools.processes import free_port, wait_until
from tests.exporter.conftest import (
    Passwords,
    Servers,
    backends,
    jobs_database,
    jobs_entry,
    parse_samples,
    pgbouncer_entry,
    postgres_entry,
    rabbitmq_entry,
    redis_entry,
    unique,
    write_config,
)
from tests.exporter.test_http import exporter_process

pytestmark = pytest.mark.servers

SCRAPES = 1_000
WARM_UP = 100
RSS_GROWTH_LIMIT = 4 * 1024 * 1024
"""Allocator noise stays well under this (56 KiB in one run); a leak of 5 KiB per scrape does not."""


def resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc status")


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_a_thousand_scrapes_hold_one_connection_per_source_and_do_not_grow(
    servers: Servers, passwords: Passwords, tmp_path: Path
) -> None:
    vhost = unique("vhost")
    servers.rabbitmq.add_vhost(vhost)
    servers.rabbitmq.grant("monitor", vhost, "", "", "")
    with servers.rabbitmq.amqp(vhost) as connection:
        channel = connection.channel()
        for index in range(20):
            channel.queue_declare(f"queue-{index}")
    database = jobs_database(servers.postgres)
    config = write_config(tmp_path, {
        "postgres": [postgres_entry(servers.postgres, passwords, name="soak-pg")],
        "pgbouncer": [pgbouncer_entry(servers.pgbouncer, passwords, name="soak-pool")],
        "rabbitmq": [rabbitmq_entry(servers.rabbitmq, passwords, vhost, name="soak-broker")],
        "redis": [redis_entry(servers.redis, passwords, ["celery", "scan"], name="soak-redis")],
        "postgres_queues": [jobs_entry(servers.postgres, passwords, database, name="soak-jobs", queue_column="queue")],
    })
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    with exporter_process(config, port, tmp_path / "exporter.log") as process, requests.Session() as session:
        wait_until(lambda: session.get(url.replace("/metrics", "/-/healthy"), timeout=2).ok, 30, "the exporter")

        def scrape() -> None:
            response = session.get(url, headers={"X-Prometheus-Scrape-Timeout-Seconds": "10"}, timeout=15)
            assert response.status_code == 200
            samples = parse_samples(response.text)
            up = [count for (name, _), count in samples.items() if name == "poolq_up"]
            assert up == [1.0] * 5, response.text


        for _ in range(WARM_UP):
            scrape()
        rss_after_warm_up = resident_bytes(process.pid)
        files_after_warm_up = open_files(process.pid)
        for _ in range(SCRAPES - WARM_UP):
            scrape()
        rss_growth = resident_bytes(process.pid) - rss_after_warm_up
        files = open_files(process.pid)

        assert backends(servers.postgres, "exporter-soak-pg") == 1
        assert backends(servers.postgres, "exporter-soak-jobs") == 1
        pool_clients = [row for row in servers.pgbouncer.show("stats", "CLIENTS")
                        if row.get("application_name") == "exporter-soak-pool"]
        assert len(pool_clients) == 1
        redis_clients = [client for client in servers.redis.client().client_list()
                         if client["name"] == "obsbundle-exporter"]
        assert len(redis_clients) == 1
        assert files <= files_after_warm_up
        assert rss_growth < RSS_GROWTH_LIMIT, f"RSS grew by {rss_growth / 1024:.0f} KiB over {SCRAPES} scrapes"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
