"""The Redis source against a real redis-server holding list queues."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.exporter.conftest import (
    Passwords,
    collect_once,
    config_from,
    exporter_of,
    fresh_registry,
    redis_entry,
    unique,
    value,
)
from tests.support.servers_db import RedisServer

pytestmark = pytest.mark.servers


def test_list_lengths_are_the_ready_messages_and_a_missing_list_is_empty(
    redis_db: RedisServer, passwords: Passwords, tmp_path: Path
) -> None:
    celery, scan, missing = unique("celery"), unique("scan"), unique("missing")
    client = redis_db.client()
    client.rpush(celery, *[f"task-{index}" for index in range(4)])
    client.rpush(scan, "task")
    config = config_from(tmp_path, {"redis": [redis_entry(redis_db, passwords, [celery, scan, missing])]})
    with exporter_of(config) as exporter:
        samples = collect_once(fresh_registry(exporter))
    assert value(samples, "poolq_up", source="celery", kind="redis") == 1
    ready = {queue: value(samples, "poolq_queue_messages_ready", source="celery", broker="redis", queue=queue)
             for queue in (celery, scan, missing)}
    assert ready == {celery: 4, scan: 1, missing: 0}


def test_keyspace_hits_and_misses_are_read_from_info_stats(
    redis_db: RedisServer, passwords: Passwords, tmp_path: Path
) -> None:
    key = unique("cached")
    client = redis_db.client()
    client.set(key, "value")
    client.config_resetstat()
    for _ in range(3):
        client.get(key)
    for _ in range(2):
        client.get(unique("absent"))
    config = config_from(tmp_path, {"redis": [redis_entry(redis_db, passwords, [key + "-list"])]})
    with exporter_of(config) as exporter:
        registry = fresh_registry(exporter)
        first = collect_once(registry)
        second = collect_once(registry)
    assert value(first, "poolq_redis_keyspace_hits_total", source="celery") == 3
    assert value(first, "poolq_redis_keyspace_misses_total", source="celery") == 2
    # The exporter's own LLEN of the (missing) list is a miss, counted from the next scrape on.
    assert value(second, "poolq_redis_keyspace_misses_total", source="celery") == 3


def test_a_key_that_is_not_a_list_takes_the_source_down(
    redis_db: RedisServer, passwords: Passwords, tmp_path: Path
) -> None:
    key = unique("string")
    redis_db.client().set(key, "not a list")
    config = config_from(tmp_path, {"redis": [redis_entry(redis_db, passwords, [key])]})
    with exporter_of(config) as exporter:
        samples = collect_once(fresh_registry(exporter))
    assert value(samples, "poolq_up", source="celery", kind="redis") == 0
    assert not [name for name, _ in samples if name.startswith("poolq_queue_")]


def test_an_acl_user_allowed_only_info_llen_and_client_setname_is_enough(
    redis_db: RedisServer, passwords: Passwords, tmp_path: Path
) -> None:
    queue = unique("celery")
    user = unique("obsbundle")
    password_file = tmp_path / "acl.password"
    password_file.write_text(passwords.redis + "-acl", encoding="utf-8")
    client = redis_db.client()
    client.rpush(queue, "task", "task")
    # The least privilege docs/exporter.md documents: these commands, on the queue keys only.
    client.acl_setuser(user, enabled=True, passwords=[f"+{passwords.redis}-acl"], keys=[queue],
                       commands=["+info", "+llen", "+client|setname"])
    entry = {**redis_entry(redis_db, passwords, [queue]), "username": user, "password_file": str(password_file)}
    config = config_from(tmp_path, {"redis": [entry]})
    try:
        with exporter_of(config) as exporter:
            samples = collect_once(fresh_registry(exporter))
    finally:
        client.acl_deluser(user)
    assert value(samples, "poolq_up", source="celery", kind="redis") == 1
    assert value(samples, "poolq_queue_messages_ready", source="celery", broker="redis", queue=queue) == 2
