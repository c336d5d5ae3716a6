"""The RabbitMQ source against a real broker with published, delivered and unacknowledged messages,
through both of its paths: rabbitmq_prometheus for the counts (the default), and the management API
for everything (`prometheus_plugin: false`, and what the source falls back to when the plugin is off)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pika
import pytest
import requests

from obsbundle.exporters.families import Batch, Sample, WrittenNumbers
from obsbundle.exporters.sources import rabbitmq as rabbitmq_source
from obsbundle.tools.processes import wait_until
from tests.exporter.conftest import (
    MONITOR,
    Passwords,
    Samples,
    collect_once,
    config_from,
    exporter_of,
    fresh_registry,
    rabbitmq_entry,
    scrape_within_deadline,
    serve,
    silent_server,
    unique,
    value,
)
from tests.support.servers_db import RabbitMQServer

pytestmark = pytest.mark.servers

PATHS = {"rabbitmq_prometheus": {}, "management API": {"prometheus_plugin": False}}
"""The keys that choose each path."""
QUEUE_FAMILIES = ("poolq_queue_messages_ready", "poolq_queue_messages_unacked", "poolq_queue_consumers",
                  "poolq_queue_oldest_message_age_seconds")
FALLBACK_LINE = "rabbitmq_prometheus does not answer"


@pytest.fixture(params=list(PATHS))
def path(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The configuration keys of one of the source's two paths; each test taking it runs on both."""
    keys: dict[str, Any] = PATHS[request.param]
    return keys


def entry_of(rabbitmq: RabbitMQServer, passwords: Passwords, vhost: str, path: dict[str, Any],
             **extra: Any) -> dict[str, Any]:
    return rabbitmq_entry(rabbitmq, passwords, vhost, **path, **extra)


def fresh_vhost(rabbitmq: RabbitMQServer) -> str:
    """A vhost of the test's own, where the exporter's user has permissions that allow nothing: the
    `monitoring` tag and a permission entry (however empty) are all the management API asks for."""
    vhost = unique("vhost")
    rabbitmq.add_vhost(vhost)
    rabbitmq.grant(MONITOR, vhost, configure="", write="", read="")
    return vhost


def queue_series(samples: Samples) -> dict[tuple[str, str], float]:
    """{(metric, queue): value} of every poolq_queue_* sample."""
    return {(name, dict(labels)["queue"]): count for (name, labels), count in samples.items()
            if name in QUEUE_FAMILIES}


def test_ready_unacked_consumers_and_head_age_are_read_per_queue(
    rabbitmq: RabbitMQServer, passwords: Passwords, tmp_path: Path, path: dict[str, Any]
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
        entry = entry_of(rabbitmq, passwords, vhost, path, queues=["scan-jobs", "empty"])
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
    rabbitmq: RabbitMQServer, passwords: Passwords, tmp_path: Path, path: dict[str, Any]
) -> None:
    vhost = fresh_vhost(rabbitmq)
    with rabbitmq.amqp(vhost) as publisher:
        channel = publisher.channel()
        channel.queue_declare("plain")
        channel.basic_publish("", "plain", b"job")
        rabbitmq.wait_for_totals(vhost, "plain", {"messages_ready": 1})
    config = config_from(tmp_path, {"rabbitmq": [entry_of(rabbitmq, passwords, vhost, path, queues=["plain"])]})
    with exporter_of(config) as exporter:
        samples = collect_once(fresh_registry(exporter))
    queue = {"source": "broker", "broker": "rabbitmq", "queue": "plain"}
    assert value(samples, "poolq_queue_messages_ready", **queue) == 1
    assert value(samples, "poolq_queue_oldest_message_age_seconds", **queue) is None


def test_the_head_age_is_read_only_for_the_queues_the_config_names(
    rabbitmq: RabbitMQServer, passwords: Passwords, tmp_path: Path, path: dict[str, Any]
) -> None:
    vhost = fresh_vhost(rabbitmq)
    stamp = pika.BasicProperties(timestamp=int(time.time()) - 600)
    with rabbitmq.amqp(vhost) as publisher:
        channel = publisher.channel()
        for name in ("named", "unnamed"):
            channel.queue_declare(name)
            channel.basic_publish("", name, b"job", stamp)
        rabbitmq.wait_for_totals(vhost, "unnamed", {"messages_ready": 1})
    # A named queue nobody declared yet has no head message: no age, and the source stays up.
    entry = entry_of(rabbitmq, passwords, vhost, path, queues=["named", "not-declared-yet"])
    with exporter_of(config_from(tmp_path, {"rabbitmq": [entry]})) as exporter:
        samples = collect_once(fresh_registry(exporter))
    assert value(samples, "poolq_up", source="broker", kind="rabbitmq") == 1
    ages = {queue: age for (name, queue), age in queue_series(samples).items()
            if name == "poolq_queue_oldest_message_age_seconds"}
    assert list(ages) == ["named"] and ages["named"] >= 600
    assert value(samples, "poolq_queue_messages_ready", source="broker", broker="rabbitmq", queue="unnamed") == 1


def test_every_queue_is_read_across_pages(
    rabbitmq: RabbitMQServer, passwords: Passwords, tmp_path: Path, path: dict[str, Any]
) -> None:
    vhost = fresh_vhost(rabbitmq)
    names = [f"q{index:02d}" for index in range(11)]
    with rabbitmq.amqp(vhost) as connection:
        channel = connection.channel()
        for index, name in enumerate(names):
            channel.queue_declare(name)
            for _ in range(index):
                channel.basic_publish("", name, b"job")
        rabbitmq.wait_for_totals(vhost, names[-1], {"messages_ready": 10})
    # Four queues a management API page: pages of 4, 4 and 3 (the plugin serves them in one answer).
    config = config_from(tmp_path, {"rabbitmq": [entry_of(rabbitmq, passwords, vhost, path, page_size=4)]})
    with exporter_of(config) as exporter:
        samples = collect_once(fresh_registry(exporter))
    ready = {queue: count for (name, queue), count in queue_series(samples).items()
             if name == "poolq_queue_messages_ready"}
    assert ready == {name: index for index, name in enumerate(names)}


def test_both_paths_read_the_same_queue_series_from_the_same_broker(
    rabbitmq: RabbitMQServer, passwords: Passwords, tmp_path: Path
) -> None:
    vhost = fresh_vhost(rabbitmq)
    other = fresh_vhost(rabbitmq)
    # Names the text format must escape or carry as UTF-8, next to plain ones.
    names = ["emails", 'quote " here', "back\\slash", "ünïcødé-jobs", "with space/and%2Fslash", "a,b}c"]
    stamp = pika.BasicProperties(timestamp=int(time.time()) - 120)
    with rabbitmq.amqp(vhost) as publisher, rabbitmq.amqp(vhost) as consumer, rabbitmq.amqp(other) as elsewhere:
        channel = publisher.channel()
        for index, name in enumerate(names):
            channel.queue_declare(name)
            for _ in range(index + 2):
                channel.basic_publish("", name, b"job", stamp)
        worker = consumer.channel()
        worker.basic_qos(prefetch_count=1)
        worker.basic_consume(names[1], lambda *_: None, auto_ack=False)
        # A queue of the same name in another vhost must not leak into this source.
        elsewhere.channel().queue_declare("emails")
        rabbitmq.wait_for_totals(vhost, names[1], {"messages_ready": 2, "messages_unacknowledged": 1, "consumers": 1})
        for index, name in enumerate(names[2:], start=2):
            rabbitmq.wait_for_totals(vhost, name, {"messages_ready": index + 2})
        entries = [
            entry_of(rabbitmq, passwords, vhost, PATHS["rabbitmq_prometheus"], name="plugin", queues=names),
            entry_of(rabbitmq, passwords, vhost, PATHS["management API"], name="management", queues=names),
        ]
        with exporter_of(config_from(tmp_path, {"rabbitmq": entries})) as exporter:
            samples = collect_once(fresh_registry(exporter))

    by_source: dict[str, dict[tuple[str, str], float]] = {"plugin": {}, "management": {}}
    for (name, labels), count in samples.items():
        if name in QUEUE_FAMILIES:
            label = dict(labels)
            assert label["broker"] == "rabbitmq"
            by_source[label["source"]][(name, label["queue"])] = count
    plugin, management = by_source["plugin"], by_source["management"]
    assert sorted(plugin.keys() - management.keys()) == sorted(management.keys() - plugin.keys()) == []
    assert {queue for _, queue in plugin} == set(names)
    for key, count in plugin.items():
        if key[0] == "poolq_queue_oldest_message_age_seconds":
            assert abs(count - management[key]) < 5, key  # read a moment apart
        else:
            assert count == management[key], key
    assert plugin[("poolq_queue_messages_unacked", names[1])] == 1
    assert plugin[("poolq_queue_consumers", names[1])] == 1


def test_the_line_parser_reads_the_plugins_answer_as_the_fast_split_does(rabbitmq: RabbitMQServer) -> None:
    plain, awkward = fresh_vhost(rabbitmq), fresh_vhost(rabbitmq)
    # A name holding `"} ` and a digit: RabbitMQ 3.10 writes it unescaped, so its line splits into more
    # pieces than one queue and one number, and the fast split must hand over to the scan of each
    # line up to its last `"} `.
    queues = {plain: ("plain", "ünïcødé", "sla\\sh"), awkward: ("plain", 'odd"} 7', "last")}
    for vhost, names in queues.items():
        with rabbitmq.amqp(vhost) as publisher:
            channel = publisher.channel()
            for name in names:
                channel.queue_declare(name)
                channel.basic_publish("", name, b"job")
            rabbitmq.wait_for_totals(vhost, names[-1], {"messages_ready": 1})
    read_fast: dict[str, Sequence[Sample | Batch]] = {}
    for vhost, names in queues.items():
        body = requests.get(
            f"http://127.0.0.1:{rabbitmq.prometheus_port}/metrics/detailed",
            params=[("vhost", vhost), ("family", "queue_coarse_metrics"), ("family", "queue_consumer_count")],
            timeout=30,
        ).content.decode("utf-8")
        # The broker's own answer, read by the split that relies on its label order and by the line
        # parser that does not (used when a line has another shape): the same samples.
        fast = read_fast[vhost] = rabbitmq_source.plugin_samples(body, vhost)
        by_line = rabbitmq_source.plugin_samples_by_line("\n" + body, vhost)
        unpacked = sorted(
            [(batch.family.name, queue, float(count)) for batch in fast if isinstance(batch, Batch)
             for queue, count in zip(batch.columns[0], batch.values, strict=True)]
            + [(sample.family.name, sample.labels[1], sample.value) for sample in fast if isinstance(sample, Sample)]
        )
        lines = sorted((sample.family.name, sample.labels[1], sample.value) for sample in by_line
                       if isinstance(sample, Sample))
        assert unpacked == lines
        assert {queue for _, queue, _ in unpacked} == set(names)
        assert ("poolq_queue_messages_ready", names[1], 1.0) in unpacked
    # The plain answer took the split: a batch per family, its counts as the broker wrote them.
    assert [type(batch) for batch in read_fast[plain]] == [Batch] * 3
    assert all(isinstance(batch, Batch) and isinstance(batch.values, WrittenNumbers) for batch in read_fast[plain])


def test_a_vhost_without_queues_is_up_with_no_queue_series(
    rabbitmq: RabbitMQServer, passwords: Passwords, tmp_path: Path, path: dict[str, Any]
) -> None:
    vhost = fresh_vhost(rabbitmq)
    config = config_from(tmp_path, {"rabbitmq": [entry_of(rabbitmq, passwords, vhost, path)]})
    with exporter_of(config) as exporter:
        samples = collect_once(fresh_registry(exporter))
    assert value(samples, "poolq_up", source="broker", kind="rabbitmq") == 1
    assert not [name for name, _ in samples if name.startswith("poolq_queue_")]


def test_a_vhost_that_does_not_exist_is_a_source_down(
    rabbitmq: RabbitMQServer, passwords: Passwords, tmp_path: Path, path: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The plugin would serve a mistyped vhost as one without queues: the management API says it is missing.
    config = config_from(tmp_path, {"rabbitmq": [entry_of(rabbitmq, passwords, unique("missing"), path)]})
    with exporter_of(config) as exporter:
        samples = collect_once(fresh_registry(exporter))
    assert value(samples, "poolq_up", source="broker", kind="rabbitmq") == 0
    assert "vhost" in caplog.text


def test_without_queue_details_only_ready_and_unacked_are_read(
    rabbitmq: RabbitMQServer, passwords: Passwords, tmp_path: Path, path: dict[str, Any]
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
        entry = entry_of(rabbitmq, passwords, vhost, path, queue_details=False, queues=["totals"])
        config = config_from(tmp_path, {"rabbitmq": [entry]})
        with exporter_of(config) as exporter:
            samples = collect_once(fresh_registry(exporter))
    queue = {"source": "broker", "broker": "rabbitmq", "queue": "totals"}
    assert value(samples, "poolq_queue_messages_ready", **queue) == 3
    assert value(samples, "poolq_queue_messages_unacked", **queue) == 1
    assert value(samples, "poolq_queue_consumers", **queue) is None
    assert value(samples, "poolq_queue_oldest_message_age_seconds", **queue) is None


# --- The plugin off, and the deadline ------------------------------------------------------------------


def test_with_the_plugin_stopped_the_management_api_serves_the_same_series_and_says_so_once(
    rabbitmq: RabbitMQServer, passwords: Passwords, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    vhost = fresh_vhost(rabbitmq)
    stamp = pika.BasicProperties(timestamp=int(time.time()) - 300)
    with rabbitmq.amqp(vhost) as publisher:
        channel = publisher.channel()
        for index, name in enumerate(("alpha", "beta")):
            channel.queue_declare(name)
            for _ in range(index + 1):
                channel.basic_publish("", name, b"job", stamp)
        rabbitmq.wait_for_totals(vhost, "beta", {"messages_ready": 2})
    entry = entry_of(rabbitmq, passwords, vhost, PATHS["rabbitmq_prometheus"], queues=["alpha"])
    caplog.set_level(logging.INFO, logger=rabbitmq_source.__name__)
    with exporter_of(config_from(tmp_path, {"rabbitmq": [entry]})) as exporter:
        registry = fresh_registry(exporter)
        through_plugin = queue_series(collect_once(registry))
        read_at = time.monotonic()
        fallback: list[tuple[float, dict[tuple[str, str], float]]] = []
        rabbitmq.ctl("eval", "application:stop(rabbitmq_prometheus).")
        try:
            for _ in range(3):
                samples = collect_once(registry)
                assert value(samples, "poolq_up", source="broker", kind="rabbitmq") == 1
                fallback.append((time.monotonic() - read_at, queue_series(samples)))
            # Back on: tried again once the interval is over, and said once too.
            monkeypatch.setattr(rabbitmq_source, "REPROBE_SECONDS", 0.0)
        finally:
            rabbitmq.ctl("eval", "application:ensure_all_started(rabbitmq_prometheus).")
        wait_for_plugin(rabbitmq)
        for _ in range(2):
            assert value(collect_once(registry), "poolq_up", source="broker", kind="rabbitmq") == 1

    for later, series in fallback:
        assert series.keys() == through_plugin.keys()
        for key, count in series.items():
            if key[0] == "poolq_queue_oldest_message_age_seconds":
                # The same head, read `later` seconds on (stopping the plugin takes seconds on a busy
                # machine); its timestamp has whole seconds.
                assert abs(count - through_plugin[key] - later) < 2, key
            else:
                assert count == through_plugin[key], key
    off_lines = [record for record in caplog.records if FALLBACK_LINE in record.getMessage()]
    assert len(off_lines) == 1, "the fallback is said once, not once per scrape"
    assert off_lines[0].levelno == logging.WARNING and "connection refused" in off_lines[0].getMessage()
    back_lines = [record for record in caplog.records if "answers at" in record.getMessage()]
    assert len(back_lines) == 1


def wait_for_plugin(rabbitmq: RabbitMQServer) -> None:
    def answers() -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{rabbitmq.prometheus_port}/metrics", timeout=5).ok
        except requests.RequestException:
            return False

    wait_until(answers, 30, "rabbitmq_prometheus to answer again")


def test_a_plugin_address_that_answers_404_is_the_plugin_off(
    rabbitmq: RabbitMQServer, passwords: Passwords, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    vhost = fresh_vhost(rabbitmq)
    with rabbitmq.amqp(vhost) as publisher:
        channel = publisher.channel()
        channel.queue_declare("jobs")
        channel.basic_publish("", "jobs", b"job")
        rabbitmq.wait_for_totals(vhost, "jobs", {"messages_ready": 1})
    # The management listener has no /metrics/detailed: the answer a broker without the plugin gives.
    entry = {**rabbitmq_entry(rabbitmq, passwords, vhost), "prometheus_url": rabbitmq.management_url}
    with exporter_of(config_from(tmp_path, {"rabbitmq": [entry]})) as exporter:
        samples = collect_once(fresh_registry(exporter))
    assert value(samples, "poolq_up", source="broker", kind="rabbitmq") == 1
    assert value(samples, "poolq_queue_messages_ready", source="broker", broker="rabbitmq", queue="jobs") == 1
    assert "HTTP 404" in caplog.text and FALLBACK_LINE in caplog.text


def test_a_management_api_that_never_answers_is_a_source_down_within_the_deadline(
    rabbitmq: RabbitMQServer, passwords: Passwords, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    vhost = fresh_vhost(rabbitmq)
    with silent_server() as (port, accepted):
        entry = {**entry_of(rabbitmq, passwords, vhost, PATHS["rabbitmq_prometheus"], queues=["jobs"]),
                 "url": f"http://127.0.0.1:{port}"}
        with serve(config_from(tmp_path, {"rabbitmq": [entry]})) as endpoint:
            # The plugin answers at once; the vhost check and the head age cannot, so the source is down
            # and the answer still comes before Prometheus's timeout.
            assert scrape_within_deadline(endpoint, 1.5) == {"broker": 0}
        assert len(accepted) == 1
    assert FALLBACK_LINE not in caplog.text


def test_a_plugin_that_never_answers_is_a_source_down_within_the_deadline_not_a_fallback(
    rabbitmq: RabbitMQServer, passwords: Passwords, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    vhost = fresh_vhost(rabbitmq)
    with silent_server() as (port, accepted):
        entry = {**rabbitmq_entry(rabbitmq, passwords, vhost), "prometheus_url": f"http://127.0.0.1:{port}"}
        with serve(config_from(tmp_path, {"rabbitmq": [entry]})) as endpoint:
            for _ in range(2):
                assert scrape_within_deadline(endpoint, 1.5) == {"broker": 0}
        # A plugin that accepts and then stalls is a broker in trouble, not a plugin turned off: no
        # fallback to the management API, whose listing would cost the struggling broker more.
        assert FALLBACK_LINE not in caplog.text
        assert len(accepted) <= 2
    assert "did not answer" in caplog.text
