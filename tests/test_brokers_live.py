"""The RabbitMQ health alerts against a real broker: RabbitMQ 3.10 (Debian) with rabbitmq_prometheus,
scraped by a real Prometheus under the target labels the generated datastore monitor gives it
(EcoEco's `rabbitmq`: namespace `default`, `service=rabbitmq`, pod `rabbitmq-0`).

Each generated expression is asked of Prometheus as it is written, from the rules built with the
windows shortened (a rule setting, `RuleConfig`), so that the module runs in well under two
minutes; one broker and one Prometheus serve the whole module.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pika
import pytest

from obsbundle.config import DEFAULT_CONFIG
from obsbundle.loader import load_inventory
from obsbundle.monitors.datastores import datastore_monitor
from obsbundle.rules.brokers import broker_groups
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.definitions import Alert
from obsbundle.settings import Settings
from obsbundle.stacks import workload_target_labels
from obsbundle.tools.processes import wait_until
from obsbundle.tools.prometheus import PrometheusServer, start_prometheus
from tests.support.servers_db import RabbitMQServer, rabbitmq_server

REPO = Path(__file__).resolve().parent.parent
SCRAPE_SECONDS = 1
WINDOW = "10s"
"""The alarm and unroutable windows of the rules under test: ten scrapes."""
CONFIG: RuleConfig = replace(
    DEFAULT_CONFIG.rules,
    rabbitmq_alarm_window=WINDOW,
    rabbitmq_unroutable_window=WINDOW,
    rabbitmq_fd_share=Decimal("0.0001"),
)
"""The default rules with short windows, and a descriptor share any running node exceeds."""
DEFAULT_WATERMARK = "0.4"
"""RabbitMQ's default vm_memory_high_watermark."""


def _ecoeco_alerts() -> dict[str, Alert]:
    (system,) = [s for s in load_inventory([REPO / "inventory"]).systems if s.name == "ecoeco"]
    (group,) = broker_groups(system, CONFIG)
    return {alert.name: alert for alert in group.alerts}


def _target_labels() -> dict[str, str]:
    """The generated monitor's target labels for EcoEco's RabbitMQ, with the values the cluster
    would fill in for its first pod; `instance` stays Prometheus's own (the target's address)."""
    (system,) = [s for s in load_inventory([REPO / "inventory"]).systems if s.name == "ecoeco"]
    store = system.datastore("rabbitmq")
    labels = workload_target_labels(datastore_monitor(system, store, Settings()))
    cluster_values = {"job": "rabbitmq", "pod": "rabbitmq-0", "container": "rabbitmq"}
    return {name: value or cluster_values[name] for name, value in labels.items() if name != "instance"}


ALERTS = _ecoeco_alerts()
TARGET = _target_labels()


@pytest.fixture(scope="module")
def broker() -> Iterator[RabbitMQServer]:
    with rabbitmq_server() as server:
        yield server


@pytest.fixture(scope="module")
def prometheus(broker: RabbitMQServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    config = {
        "global": {"scrape_interval": f"{SCRAPE_SECONDS}s", "scrape_timeout": f"{SCRAPE_SECONDS}s"},
        "scrape_configs": [{
            "job_name": TARGET["job"],
            "metrics_path": "/metrics",
            "static_configs": [{
                "targets": [f"127.0.0.1:{broker.prometheus_port}"],
                "labels": {name: value for name, value in TARGET.items() if name != "job"},
            }],
        }],
    }
    server = start_prometheus(tmp_path_factory.mktemp("prometheus"), config)
    try:
        wait_until(lambda: bool(server.query('rabbitmq_identity_info{service="rabbitmq"}')), 30,
                   "Prometheus to scrape RabbitMQ")
        yield server
    finally:
        server.stop()


def _series(prometheus: PrometheusServer, expr: str) -> list[tuple[dict[str, Any], float]]:
    return [(sample["metric"], float(sample["value"][1])) for sample in prometheus.query(expr)]


def _until(prometheus: PrometheusServer, expr: str, what: str, *, present: bool, timeout: float = 40) -> None:
    wait_until(lambda: bool(prometheus.query(expr)) is present, timeout, what, interval=0.5)


def test_the_contract_labels_select_the_broker_and_the_node_down_alert_stays_quiet_while_it_answers(
    prometheus: PrometheusServer,
) -> None:
    node_down = ALERTS["RabbitmqNodeDown"]
    assert _series(prometheus, node_down.expr) == []
    assert _series(prometheus, 'up{namespace="default",service="rabbitmq",pod="rabbitmq-0"}')[0][1] == 1


def test_the_memory_alarm_alert_names_the_node_while_the_watermark_is_below_its_memory_and_clears_when_raised(
    broker: RabbitMQServer, prometheus: PrometheusServer
) -> None:
    alarm = ALERTS["RabbitmqMemoryAlarm"]
    assert _series(prometheus, alarm.expr) == []
    broker.ctl("set_vm_memory_high_watermark", "0.0001")
    try:
        _until(prometheus, alarm.expr, "the memory alarm alert to return its series", present=True)
        assert _series(prometheus, alarm.expr) == [({"pod": "rabbitmq-0"}, 1.0)]
        assert "memory" in broker.ctl("eval", "rabbit_alarm:get_alarms().")
    finally:
        broker.ctl("set_vm_memory_high_watermark", DEFAULT_WATERMARK)
    raw = 'rabbitmq_alarms_memory_used_watermark{service="rabbitmq"} == 0'
    _until(prometheus, raw, "RabbitMQ to clear its memory alarm", present=True)
    _until(prometheus, alarm.expr, "the memory alarm alert to clear", present=False)


def test_the_disk_alarm_alert_stays_quiet_with_the_free_disk_above_its_limit(prometheus: PrometheusServer) -> None:
    assert _series(prometheus, ALERTS["RabbitmqDiskAlarm"].expr) == []
    free = _series(prometheus, 'rabbitmq_disk_space_available_bytes{service="rabbitmq"}')
    limit = _series(prometheus, 'rabbitmq_disk_space_available_limit_bytes{service="rabbitmq"}')
    assert free[0][1] > limit[0][1]


def test_the_file_descriptor_alert_reads_the_nodes_open_and_maximum_descriptors(prometheus: PrometheusServer) -> None:
    """With a share every running node exceeds, the expression gives the node's real share."""
    usage = _series(prometheus, ALERTS["RabbitmqFileDescriptorsNearLimit"].expr)
    assert [labels for labels, _ in usage] == [{"pod": "rabbitmq-0"}]
    assert 0 < usage[0][1] < 0.8


def _publish_unroutable(broker: RabbitMQServer, count: int) -> pika.BlockingConnection:
    """`count` messages to the default exchange for a queue that does not exist, on a channel left open."""
    connection = broker.amqp()
    channel = connection.channel()
    for _ in range(count):
        channel.basic_publish("", "no-such-queue", b"{}")
    return connection


def test_unroutable_messages_fire_the_alert_and_outlive_their_channel_only_in_the_global_counters(
    broker: RabbitMQServer, prometheus: PrometheusServer
) -> None:
    unroutable = ALERTS["RabbitmqUnroutableMessages"]
    channel_counter = 'rabbitmq_channel_messages_unroutable_dropped_total{service="rabbitmq"}'
    global_counter = 'sum(rabbitmq_global_messages_unroutable_dropped_total{service="rabbitmq"})'
    before = _series(prometheus, global_counter)[0][1]
    # Two scrapes at the old count, so that the window's increase starts from it.
    time.sleep(2 * SCRAPE_SECONDS + 0.5)
    connection = _publish_unroutable(broker, 3)
    try:
        _until(prometheus, f"{channel_counter} == 3", "the open channel to report 3 dropped", present=True)
        fired = _series(prometheus, unroutable.expr)
    finally:
        connection.close()
    assert len(fired) == 1 and fired[0][0] == {} and fired[0][1] >= 1
    _until(prometheus, f"{channel_counter} == 0", "the closed channel's count to leave /metrics", present=True)
    assert _series(prometheus, global_counter)[0][1] == before + 3
    _until(prometheus, unroutable.expr, "the unroutable alert to clear once its window passes", present=False)
