"""Broker cases: rabbitmq_prometheus and kafka_exporter series of one datastore, as its generated
monitor stores them.

The series carry the exporters' own label sets (tests/fixtures/exposition/rabbitmq/metrics.prom,
kafka-exporter/metrics.prom: the alarm, descriptor and broker gauges have none, the unroutable
counters `protocol`, the partition gauges `topic` and `partition`) and the target labels the
monitor decides: `namespace`, `service` = the datastore's name, `endpoint` = its port's name, and
`pod`, one of the StatefulSet's (the cluster decides the rest, which no rule reads).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from obsbundle import naming
from obsbundle.durations import parse_duration
from obsbundle.model import Datastore, System
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.definitions import Alert, AlertCheck, Case, ExpectedAlert, Inputs, UnitTest
from obsbundle.rules.input_series import constant, counter

TEST_MINUTES = 30
TOPIC = "__consumer_offsets"
"""A topic every Kafka cluster has (kafka_exporter's README shows its partitions)."""
PROTOCOL = {"protocol": "amqp091"}


def _after(duration: str | None, margin_minutes: int = 5) -> str:
    """An evaluation time past the alert's `for`."""
    minutes = (parse_duration(duration) // 60 if duration else 0) + margin_minutes
    return f"{minutes}m"


class BrokerCases:
    """The cases of one RabbitMQ or Kafka datastore's health alerts."""

    def __init__(self, system: System, config: RuleConfig, store: Datastore) -> None:
        self.config, self.store = config, store
        self.target = {naming.NAMESPACE_LABEL: store.namespace, naming.SERVICE_LABEL: store.name}
        if store.metrics is not None and isinstance(store.metrics.port, str):
            self.target["endpoint"] = store.metrics.port

    def pod(self, ordinal: int) -> str:
        return f"{self.store.statefulset or self.store.name}-{ordinal}"

    def on_pod(self, ordinal: int, labels: Mapping[str, str] | None = None) -> dict[str, str]:
        return {**self.target, "pod": self.pod(ordinal), **(labels or {})}

    def node_gauge(self, metric: str, value: float, ordinal: int = 0) -> Inputs:
        return (constant(metric, self.on_pod(ordinal), value, TEST_MINUTES),)

    # --- RabbitMQ -----------------------------------------------------------------------------------

    def nodes_answering(self, answering: int) -> Inputs:
        """`up` of every node's target, the first `answering` of them 1 and the rest 0."""
        return tuple(
            constant("up", self.on_pod(ordinal), 1 if ordinal < answering else 0, TEST_MINUTES)
            for ordinal in range(self.store.replicas)
        )

    def rabbitmq_alarm(self, metric: str) -> Case:
        """The alarm raised on the first node fires with that node's pod; cleared stays quiet."""
        return Case(
            firing=self.node_gauge(metric, 1),
            quiet=self.node_gauge(metric, 0),
            labels={"pod": self.pod(0)},
            value=1,
            eval_time="10m",
        )

    def rabbitmq_file_descriptors(self, limit: int = 1_048_576) -> Case:
        """Descriptors at 90 % of the limit fire; the 41 a freshly started node holds stay quiet."""
        high = limit * 9 // 10

        def open_fds(count: int) -> Inputs:
            return (*self.node_gauge("rabbitmq_process_open_fds", count),
                    *self.node_gauge("rabbitmq_process_max_fds", limit))

        return Case(
            firing=open_fds(high),
            quiet=open_fds(41),
            labels={"pod": self.pod(0)},
            value=high / limit,
            eval_time=_after(self.config.rabbitmq_fd_for),
        )

    def unroutable_counters(self, dropped_per_minute: int) -> Inputs:
        labels = self.on_pod(0, PROTOCOL)
        return (
            counter("rabbitmq_global_messages_unroutable_dropped_total", labels, dropped_per_minute, TEST_MINUTES),
            counter("rabbitmq_global_messages_unroutable_returned_total", labels, 0, TEST_MINUTES),
        )

    def rabbitmq_unroutable(self) -> Case:
        """One message dropped a minute fires with the window's count; none stays quiet."""
        window_minutes = parse_duration(self.config.rabbitmq_unroutable_window) // 60
        return Case(
            firing=self.unroutable_counters(1),
            quiet=self.unroutable_counters(0),
            labels={},
            value=window_minutes,
            eval_time="15m",
        )

    # --- Kafka --------------------------------------------------------------------------------------

    def exporter_gauge(self, metric: str, value: float, labels: Mapping[str, str] | None = None) -> Inputs:
        return (constant(metric, {**self.target, **(labels or {})}, value, TEST_MINUTES),)

    def partitions(self, *, led: int, under_replicated: int, count: int = 3) -> Inputs:
        """`count` partitions of TOPIC, each with its replicas; the first `led` have a leader, the
        first `under_replicated` are under-replicated."""
        series: Inputs = ()
        for number in range(count):
            partition = {"topic": TOPIC, "partition": str(number)}
            series += self.exporter_gauge("kafka_topic_partition_replicas", 3, partition)
            series += self.exporter_gauge(
                "kafka_topic_partition_under_replicated_partition", 1 if number < under_replicated else 0, partition
            )
            if number < led:
                series += self.exporter_gauge("kafka_topic_partition_leader", number, partition)
        return series

    def kafka_brokers_missing(self) -> Case:
        replicas = self.store.replicas
        return Case(
            firing=self.exporter_gauge("kafka_brokers", replicas - 1),
            quiet=self.exporter_gauge("kafka_brokers", replicas),
            labels={},
            value=replicas - 1,
            eval_time=_after(self.config.kafka_brokers_missing_for),
        )

    def kafka_under_replicated(self) -> Case:
        return Case(
            firing=self.partitions(led=3, under_replicated=1),
            quiet=self.partitions(led=3, under_replicated=0),
            labels={},
            value=1,
            eval_time=_after(self.config.kafka_under_replicated_for),
        )

    def kafka_offline(self) -> Case:
        """The last of three partitions without a leader series fires; all three led stay quiet."""
        return Case(
            firing=self.partitions(led=2, under_replicated=0),
            quiet=self.partitions(led=3, under_replicated=0),
            labels={},
            value=1,
            eval_time=_after(self.config.kafka_offline_for),
        )


def _needed(alert: Alert) -> int:
    """The node count a node-down tier alerts below (`… < n`)."""
    return int(alert.expr.rsplit("<", 1)[1])


def _node_down_test(
    title: str, tiers: Sequence[Alert], inputs: Inputs, answering: int | None, eval_time: str
) -> UnitTest:
    """`answering` nodes make every tier that needs more fire with that value; None: none fires."""
    firing = () if answering is None else tuple(
        ExpectedAlert(alert, {}, answering) for alert in tiers if answering < _needed(alert)
    )
    return UnitTest(title, inputs, (AlertCheck(eval_time, tiers[0].name, firing),))


def rabbitmq_node_down_tests(
    brokers: Sequence[tuple[BrokerCases, Sequence[Alert]]], config: RuleConfig
) -> tuple[UnitTest, ...]:
    """RabbitmqNodeDown fires on missing data (no target is no node), so each broker's tests hold
    every other broker with all its nodes answering: per broker, all nodes answering stays quiet;
    one node fewer than each tier needs fires that tier and every tier above it; no target at all
    fires every tier with 0 nodes."""
    eval_time = _after(config.rabbitmq_node_down_for)
    tests: list[UnitTest] = []
    for cases, tiers in brokers:
        store = cases.store
        others = tuple(
            series
            for other, _ in brokers
            if other is not cases
            for series in other.nodes_answering(other.store.replicas)
        )
        about = f"{tiers[0].name} ({store.name})"
        tests.append(_node_down_test(
            f"{about} stays quiet with all {store.replicas} nodes answering",
            tiers, others + cases.nodes_answering(store.replicas), None, eval_time,
        ))
        for alert in tiers:
            below = _needed(alert) - 1
            tests.append(_node_down_test(
                f"{about} fires {alert.severity} with {below} of {store.replicas} nodes answering",
                tiers, others + cases.nodes_answering(below), below, eval_time,
            ))
        tests.append(_node_down_test(
            f"{about} fires when Prometheus has no target of the broker", tiers, others, 0, eval_time
        ))
    return tuple(tests)
