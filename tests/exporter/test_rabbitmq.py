"""The RabbitMQ source against a real broker with published, delivered and unacknowledged messages."""

from __future__ import annotations

import time
from pathlib import Path

import pika
import pytest

from tests.exporter.conftest import (
    MONITOR,
    Passwords,
    collect_once,
    config_from,
    exporter_of,
    fresh_registry,
    rabbitmq_entry,
    unique,
    value,
)
from tests.support.servers_db import RabbitMQServer

pytestmark = pytest.mark.servers


def fresh_vhost(rabbitmq: RabbitMQServer) -> str:
    """A vhost of the test's own, where the exporter's user has permissions that allow nothing: the
    `monitoring` tag and a permission entry (however empty) are all the management API asks for."""
    vhost = unique("vhost")
    rabbitmq.add_vhost(vhost)
    rabbitmq.grant(MONITOR, vhost, configure="", write="", read="")
    return vhost


def test_ready_unacked_consumers_and_head_age_are_read_per_queue(
    rabbitmq: RabbitMQServer, passwords: Passwords, tmp_path: Path
) -> None:
    vhost = fresh_vhost(rabbitmq)
    published_at = int(time.time()) - 3600  # an AMQP timestamp an hour old
    with rabbitmq.amqp(vhost) as publisher, rabbitmq.amqp(vhost) as consumer:
        channel = publisher.channel()
        channel.queue_declare("scan-jobs")
        channel.queue_declare("empty")
        for _ in range(5):
            channel.basic_publish("", "scan-jobs", b"job", pika.BasicProperties(timestamp=published_at))
        worker = consumer.channel()
        worker.basic_qos(prefetch_count=2)
        worker.basic_consume("scan-jobs", lambda *_: None, auto_ack=False)  # takes 2, acknowledges none
        rabbitmq.wait_for_totals(vhost, "scan-jobs",
                                 {"messages_ready": 3, "messages_unacknowledged": 2, "consumers": 1})
        rabbitmq.wait_for_totals(vhost, "empty", {"messages_ready": 0})
        entry = rabbitmq_entry(rabbitmq, passwords, vhost, queues=["scan-jobs", "empty"])
        config = config_from(tmp_path, {"rabbitmq": [entry]})
        with exporter_of(config) as exporter:
            samples = collect_once(fresh_registry(exporter))
        age_bound = time.time() - published_at + 1

    queue = {"source": "broker", "broker": "rabbitmq", "queue": "scan-jobs"}
    assert value(samples, "poolq_up", source="broker", kind="rabbitmq") == 1
    assert value(samples, "poolq_queue_messages_ready", **queue) == 3
    assert value(samples, "poolq_queue_messages_unacked", **queue) == 2
    assert value(samples, "poolq_queue_consumers", **queue) == 1
    age = value(samples, "poolq_queue_oldest_message_age_seconds", **queue)
    assert age is not None and 3600 <= age <= age_bound
    empty = {**queue, "queue": "empty"}
    assert value(samples, "poolq_queue_messages_ready", **empty) == 0
    assert value(samples, "poolq_queue_consumers", **empty) == 0
    # No head message, so no age: the metric is left out rather than guessed.
    assert value(samples, "poolq_queue_oldest_message_age_seconds", **empty) is None


def test_messages_without_a_timestamp_leave_the_age_out(
    rabbitmq: RabbitMQServer, passwords: Passwords, tmp_path: Path
) -> None:
    vhost = fresh_vhost(rabbitmq)
    with rabbitmq.amqp(vhost) as publisher:
        channel = publisher.channel()
        channel.queue_declare("plain")
        channel.basic_publish("", "plain", b"job")
        rabbitmq.wait_for_totals(vhost, "plain", {"messages_ready": 1})
    config = config_from(tmp_path, {"rabbitmq": [rabbitmq_entry(rabbitmq, passwords, vhost, queues=["plain"])]})
    with exporter_of(config) as exporter:
        samples = collect_once(fresh_registry(exporter))
    queue = {"source": "broker", "broker": "rabbitmq", "queue": "plain"}
    assert value(samples, "poolq_queue_messages_ready", **queue) == 1
    assert value(samples, "poolq_queue_oldest_message_age_seconds", **queue) is None


def test_every_queue_is_read_across_pages(rabbitmq: RabbitMQServer, passwords: Passwords, tmp_path: Path) -> None:
    vhost = fresh_vhost(rabbitmq)
    names = [f"q{index:02d}" for index in range(11)]
    with rabbitmq.amqp(vhost) as connection:
        channel = connection.channel()
        for index, name in enumerate(names):
            channel.queue_declare(name)
            for _ in range(index):
                channel.basic_publish("", name, b"job")
        rabbitmq.wait_for_totals(vhost, names[-1], {"messages_ready": 10})
    # Four queues a page: pages of 4, 4 and 3.
    config = config_from(tmp_path, {"rabbitmq": [rabbitmq_entry(rabbitmq, passwords, vhost, page_size=4)]})
    with exporter_of(config) as exporter:
        samples = collect_once(fresh_registry(exporter))
    ready = {labels_queue(labels): count for (name, labels), count in samples.items()
             if name == "poolq_queue_messages_ready"}
    assert ready == {name: index for index, name in enumerate(names)}


def test_a_vhost_without_queues_is_up_with_no_queue_series(
    rabbitmq: RabbitMQServer, passwords: Passwords, tmp_path: Path
) -> None:
    vhost = fresh_vhost(rabbitmq)
    config = config_from(tmp_path, {"rabbitmq": [rabbitmq_entry(rabbitmq, passwords, vhost)]})
    with exporter_of(config) as exporter:
        samples = collect_once(fresh_registry(exporter))
    assert value(samples, "poolq_up", source="broker", kind="rabbitmq") == 1
    assert not [name for name, _ in samples if name.startswith("poolq_queue_")]


def test_a_vhost_that_does_not_exist_is_a_source_down(
    rabbitmq: RabbitMQServer, passwords: Passwords, tmp_path: Path
) -> None:
    config = config_from(tmp_path, {"rabbitmq": [rabbitmq_entry(rabbitmq, passwords, unique("missing"))]})
    with exporter_of(config) as exporter:
        samples = collect_once(fresh_registry(exporter))
    assert value(samples, "poolq_up", source="broker", kind="rabbitmq") == 0


def labels_queue(labels: frozenset[tuple[str, str]]) -> str:
    return dict(labels)["queue"]


def test_without_queue_details_only_ready_and_unacked_are_read(
    rabbitmq: RabbitMQServer, passwords: Passwords, tmp_path: Path
) -> None:
    vhost = fresh_vhost(rabbitmq)
    with rabbitmq.amqp(vhost) as publisher, rabbitmq.amqp(vhost) as consumer:
        channel = publisher.channel()
        channel.queue_declare("totals")
        for _ in range(4):
            channel.basic_publish("", "totals", b"job", pika.BasicProperties(timestamp=int(time.time())))
        worker = consumer.channel()
        worker.basic_qos(prefetch_count=1)
        worker.basic_consume("totals", lambda *_: None, auto_ack=False)
        rabbitmq.wait_for_totals(vhost, "totals", {"messages_ready": 3, "messages_unacknowledged": 1})
        entry = rabbitmq_entry(rabbitmq, passwords, vhost, queue_details=False)
        config = config_from(tmp_path, {"rabbitmq": [entry]})
        with exporter_of(config) as exporter:
            samples = collect_once(fresh_registry(exporter))
    queue = {"source": "broker", "broker": "rabbitmq", "queue": "totals"}
    assert value(samples, "poolq_queue_messages_ready", **queue) == 3
    assert value(samples, "poolq_queue_messages_unacked", **queue) == 1
    assert value(samples, "poolq_queue_consumers", **queue) is None
    assert value(samples, "poolq_queue_oldest_message_age_seconds", **queue) is None
