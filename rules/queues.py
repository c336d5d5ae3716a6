"""Queue alerts: backlogs from the pool & queue exporter, consumer lag from kafka_exporter.

RabbitMQ, Redis and Postgres-table queues (`poolq_queue_*`, selected by the exporter source of the
queue's datastore): ready messages above `max_backlog`, a backlog that keeps growing, no consumer
while messages wait (RabbitMQ reports consumers; the others cannot), and an oldest message older
than `max_age`. Kafka (kafka_exporter's `kafka_consumergroup_lag`): the consumer group's lag on the
queue's topic above `max_lag`. The team is the consumers' owner when they share one.
"""

from __future__ import annotations

import math
import shlex

from obsbundle import naming
from obsbundle.durations import parse_duration
from obsbundle.links import Board, PanelId
from obsbundle.model import Broker, Queue, System
from obsbundle.promql import selector
from obsbundle.rules.alert_labels import AlertSubject, exporter_labels, queue_team
from obsbundle.rules.cases import queues as cases
from obsbundle.rules.commands import exec_in, workload_checks
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.definitions import Alert, AlertDoc, RuleGroup, RunbookCheck
from obsbundle.rules.templating import Description, ValueFormat

BACKLOG_HIGH = AlertDoc(
    name="QueueBacklogHigh",
    summary="A queue holds more ready messages than its limit.",
    meaning="Messages wait faster than consumers take them: work is delayed by the backlog's size divided "
    "by the consumers' throughput.",
    actions=(
        "Check the consumers: running, ready, not crash looping (see their workload alerts)?",
        "Scale the consumers out if they are healthy but too few.",
        "Look for a producer burst or poison messages being retried.",
    ),
)
BACKLOG_GROWING = AlertDoc(
    name="QueueBacklogGrowing",
    summary="A queue's backlog keeps growing.",
    meaning="Ready messages have been rising for a while: consumers process fewer messages than arrive. "
    "The backlog will reach its limit if nothing changes.",
    actions=(
        "Compare the producers' rate with the consumers' throughput on the queue dashboard.",
        "Scale the consumers, or find what slows them (a dependency, a slow message type).",
    ),
)
NO_CONSUMERS = AlertDoc(
    name="QueueNoConsumers",
    summary="Messages wait in a queue that has no consumer.",
    meaning="The broker reports no consumer on the queue while it holds ready messages: nothing is being "
    "processed at all.",
    actions=(
        "Check the consumer workloads named in the description and under How to check: scaled to zero, "
        "crash looping, or unable to connect to the broker (their logs)?",
        "Restart or redeploy the consumers; check broker credentials and connection limits.",
    ),
)
MESSAGES_TOO_OLD = AlertDoc(
    name="QueueMessagesTooOld",
    summary="The oldest message in a queue is older than allowed.",
    meaning="The message at the head of the queue has waited longer than the queue's `max_age`: work is late, "
    "even if the backlog is small (a stuck consumer, a message that cannot be processed).",
    actions=(
        "Look at the head message: is one message failing and being requeued?",
        "Check the consumers' logs and throughput; move poison messages to a dead-letter queue.",
    ),
)
CONSUMER_LAG = AlertDoc(
    name="QueueConsumerLagHigh",
    summary="A Kafka consumer group lags too far behind its topic.",
    meaning="The consumer group's lag (messages produced but not yet committed, over all partitions) is above "
    "the queue's `max_lag`: consumers are too slow or stopped.",
    actions=(
        "Describe the consumer group (the command under How to check): which partitions lag, which members own them?",
        "Check the consumers (rebalancing loops, crash loops, slow processing); scale them up to the partition count.",
    ),
)


def _reads(query: str) -> tuple[RunbookCheck, ...]:
    return (RunbookCheck("What the alert reads", query, "promql"),)


def _consumer_names(system: System, queue: Queue) -> str:
    """`storage-worker (default)`, or a sentence that the inventory names none."""
    if not queue.consumers:
        return "no consumer is named in the inventory (queues[].consumers)"
    return ", ".join(f"{name} ({system.service(name).namespace})" for name in queue.consumers)


def _broker_check(system: System, queue: Queue) -> RunbookCheck | None:
    """The queue as its broker sees it, from the broker's first pod."""
    store = system.datastore(queue.datastore)
    name = shlex.quote(queue.name)
    match queue.broker:
        case Broker.RABBITMQ:
            command = exec_in(
                store,
                "rabbitmqctl list_queues name messages_ready messages_unacknowledged consumers "
                f"| grep -w -- {name}",
            )
            consumers = exec_in(store, f"rabbitmqctl list_consumers | grep -w -- {name}")
            code = None if command is None or consumers is None else f"{command}\n{consumers}"
        case Broker.REDIS:
            length = exec_in(store, f"redis-cli LLEN {name}")
            head = exec_in(store, f"redis-cli LRANGE {name} -1 -1")
            code = None if length is None or head is None else f"{length}\n{head}"
        case Broker.KAFKA:
            group = shlex.quote(queue.consumer_group or "")
            code = exec_in(
                store, f"kafka-consumer-groups.sh --bootstrap-server localhost:9092 --describe --group {group}"
            )
        case Broker.POSTGRES:
            # The job table's shape is the exporter source's (its config's queue query), not the inventory's.
            code = None
    return None if code is None else RunbookCheck(f"Queue {queue.name} on {store.name}", code)


def _queue_checks(system: System, queue: Queue, query: str) -> tuple[RunbookCheck, ...]:
    """What the alert reads, the broker's view of the queue, and each consumer's pods, logs and rollout."""
    broker = _broker_check(system, queue)
    consumers = tuple(check for name in queue.consumers for check in workload_checks(system.service(name)))
    return (*_reads(query), *((broker,) if broker else ()), *consumers)


class _Queue:
    def __init__(self, system: System, config: RuleConfig, queue: Queue) -> None:
        self.system, self.config, self.queue = system, config, queue
        store = system.datastore(queue.datastore)
        labels = {
            naming.SYSTEM_LABEL: system.name,
            naming.TEAM_LABEL: queue_team(system, queue),
            naming.QUEUE_LABEL: queue.name,
            naming.DATASTORE_LABEL: store.name,
        }
        if queue.broker is not Broker.KAFKA:
            # Kafka's one alert reads kafka_exporter's lag; every other queue alert reads the pool &
            # queue exporter, and PoolQueueExporterDown inhibits them by this label.
            labels |= exporter_labels()
        entity = f"{queue.name} ({queue.broker.value} {store.name}; consumers: {_consumer_names(system, queue)})"
        self.subject = AlertSubject(system, labels, entity, Board.QUEUES, variables={"queue": queue.name})
        self.cases = cases.QueueCases(system, config, queue)
        self.series_labels = {naming.SYSTEM_LABEL: system.name, "source": store.source, "queue": queue.name}

    def poolq(self, metric: str) -> str:
        return selector(metric, self.series_labels)

    def backlog_high(self) -> Alert:
        ready = f"max by (queue) ({self.poolq('poolq_queue_messages_ready')})"
        limit = self.queue.max_backlog
        return self.subject.alert(
            BACKLOG_HIGH,
            expr=f"{ready} > {limit}",
            severity="warning",
            description=Description(f"Queue {{queue}} holds {{value}} ready messages (limit {limit})."),
            panel=PanelId.QUEUE_BACKLOG,
            for_=self.config.queue_backlog_for,
            case=self.cases.backlog_high(),
            threshold=f"> {limit} ready for {self.config.queue_backlog_for}",
            checks=_queue_checks(self.system, self.queue, ready),
        )

    def backlog_growing(self) -> Alert:
        raw = self.poolq("poolq_queue_messages_ready")
        ready = f"max by (queue) ({raw})"
        floor = math.ceil(self.queue.max_backlog * self.config.queue_growth_min_share)
        window = self.config.queue_growth_window
        return self.subject.alert(
            BACKLOG_GROWING,
            expr=f"{ready} > {floor}\nand on (queue) max by (queue) (deriv({raw}[{window}])) > 0",
            severity="warning",
            description=Description(
                f"Queue {{queue}} holds {{value}} ready messages and has been growing for "
                f"{self.config.queue_growth_for}."
            ),
            panel=PanelId.QUEUE_BACKLOG,
            for_=self.config.queue_growth_for,
            case=self.cases.backlog_growing(),
            threshold=f"> {floor} ready and rising over {window}, for {self.config.queue_growth_for}",
            checks=_queue_checks(self.system, self.queue, f"deriv({raw}[{window}])"),
        )

    def no_consumers(self) -> Alert:
        consumers = f"max by (queue) ({self.poolq('poolq_queue_consumers')})"
        ready = f"max by (queue) ({self.poolq('poolq_queue_messages_ready')})"
        return self.subject.alert(
            NO_CONSUMERS,
            expr=f"{consumers} == 0\nand on (queue) {ready} > 0",
            severity="critical",
            description=Description(
                "Queue {queue} has no consumer while messages wait. Its consumers: "
                f"{_consumer_names(self.system, self.queue)}."
            ),
            panel=PanelId.QUEUE_CONSUMERS,
            for_=self.config.queue_no_consumers_for,
            case=self.cases.no_consumers(),
            threshold=f"0 consumers with messages ready, for {self.config.queue_no_consumers_for}",
            checks=_queue_checks(self.system, self.queue, consumers),
        )

    def too_old(self) -> Alert:
        age = f"max by (queue) ({self.poolq('poolq_queue_oldest_message_age_seconds')})"
        limit = parse_duration(self.queue.max_age)
        return self.subject.alert(
            MESSAGES_TOO_OLD,
            expr=f"{age} > {limit}",
            severity="warning",
            description=Description(
                f"The oldest message in queue {{queue}} has waited {{value}} (limit {self.queue.max_age}).",
                ValueFormat.DURATION,
            ),
            panel=PanelId.QUEUE_OLDEST_AGE,
            for_=self.config.queue_age_for,
            case=self.cases.too_old(),
            threshold=f"> {self.queue.max_age} for {self.config.queue_age_for}",
            checks=_queue_checks(self.system, self.queue, age),
        )

    def consumer_lag(self) -> Alert:
        assert self.queue.consumer_group is not None
        group = {"consumergroup": self.queue.consumer_group, "topic": self.queue.name}
        lag = f"sum({selector('kafka_consumergroup_lag', group)})"
        limit = self.queue.max_lag

        return self.subject.alert(
            CONSUMER_LAG,
            expr=f"{lag} > {limit}",
            severity="warning",
            description=Description(
                f"Consumer group {self.queue.consumer_group} lags {{value}} messages behind topic "
                f"{self.queue.name} (limit {limit})."
            ),
            panel=PanelId.QUEUE_KAFKA_LAG,
            for_=self.config.kafka_lag_for,
            case=self.cases.consumer_lag(),
            threshold=f"> {limit} for {self.config.kafka_lag_for}",
            checks=_queue_checks(self.system, self.queue, lag),
        )


def queue_alerts(system: System, config: RuleConfig, queue: Queue) -> list[Alert]:
    build = _Queue(system, config, queue)
    if queue.broker is Broker.KAFKA:
        return [build.consumer_lag()]
    alerts = [build.backlog_high(), build.backlog_growing()]
    if queue.broker is Broker.RABBITMQ:
        alerts.append(build.no_consumers())
    alerts.append(build.too_old())
    return alerts


def queue_groups(system: System, config: RuleConfig) -> list[RuleGroup]:
    alerts = [
        alert for queue in sorted(system.queues, key=lambda q: q.name) for alert in queue_alerts(system, config, queue)
    ]
    if not alerts:
        return []
    return [RuleGroup(f"{system.name}-queues", config.interval, tuple(alerts))]
