"""Queues: backlog, age of the oldest message and consumers from the pool & queue exporter, Kafka
consumer lag from kafka_exporter, and the brokers' own health: RabbitMQ's from its
rabbitmq_prometheus plugin (nodes, alarms, memory against the watermark, file descriptors,
connections and channels, unroutable messages) and Kafka's from kafka_exporter (brokers, under-
replicated and offline partitions).

The `queue` variable narrows the queue panels (a Kafka queue by its topic), the `datastore`
variable the broker rows; alert links set them (`var-queue`, `var-datastore`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from obsbundle.dashboards import queries as q
from obsbundle.dashboards.common import sibling_links, tags, variables
from obsbundle.dashboards.config import DashboardConfig
from obsbundle.dashboards.panels import (
    GOOD_BELOW,
    Query,
    Row,
    Step,
    Unit,
    dashboard,
    higher_is_worse,
    state_timeline,
    timeseries,
)
from obsbundle.dashboards.variables import inventory_variable
from obsbundle.durations import parse_duration
from obsbundle.links import Board, PanelId, dashboard_uid
from obsbundle.model import Broker, Datastore, DatastoreKind, Queue, System
from obsbundle.rules.brokers import broker_datastores

ALARM_STATES: dict[float, str] = {0: "clear", 1: "alarm"}


def queues_dashboard(system: System, config: DashboardConfig) -> dict[str, Any]:
    rabbitmq = broker_datastores(system, DatastoreKind.RABBITMQ)
    kafka = broker_datastores(system, DatastoreKind.KAFKA)
    rows: list[Row] = []
    board_variables = variables(system, config)
    if system.queues:
        rows.append(Row("Queues", queue_panels(system, system.queues, config, linked=True)))
        board_variables.append(inventory_variable("queue", "Queue", (queue.name for queue in system.queues)))
    if rabbitmq:
        rows.append(Row("RabbitMQ brokers", rabbitmq_panels(rabbitmq, config)))
    if kafka:
        rows.append(Row("Kafka brokers", kafka_panels(kafka)))
    if rabbitmq or kafka:
        board_variables.append(
            inventory_variable("datastore", "Datastore", (store.name for store in (*rabbitmq, *kafka)))
        )
    return dashboard(
        uid=dashboard_uid(system, Board.QUEUES),
        title=f"{system.name} / Queues",
        description="Backlog, oldest message and consumers of every queue; Kafka consumer lag; the health of "
        "the RabbitMQ and Kafka brokers",
        tags=tags(system, "queues"),
        rows=rows,
        variables=board_variables,
        links=sibling_links(system),
        config=config,
    )


def _shared_limit(values: Sequence[float]) -> list[Step]:
    """A threshold line when every queue has the same limit; otherwise the description lists them."""
    return higher_is_worse(None, values[0]) if len(set(values)) == 1 else GOOD_BELOW


def _limits(queues: Sequence[Queue], limit: str) -> str:
    return ", ".join(f"{queue.name} {getattr(queue, limit)}" for queue in queues)


def queue_panels(system: System, queues: Sequence[Queue], config: DashboardConfig, *, linked: bool) -> list[Any]:
    """Panels for `queues`; `linked` gives them the PanelIds alerts link to and narrows them by the
    `queue` variable (the Queues dashboard)."""
    exported = [queue for queue in queues if queue.broker is not Broker.KAFKA]
    kafka = [queue for queue in queues if queue.broker is Broker.KAFKA]
    by_queue = (q.QUEUE_MATCHER,) if linked else ()
    by_topic = (q.TOPIC_MATCHER,) if linked else ()
    panels: list[Any] = []
    if exported:
        backlog_limits = [float(queue.max_backlog) for queue in exported]
        age_limits = [float(parse_duration(queue.max_age)) for queue in exported]
        panels += [
            timeseries(
                "Backlog",
                "Messages ready for delivery (and delivered but not yet acknowledged) per queue. "
                f"Alert limits on ready messages: {_limits(exported, 'max_backlog')}.",
                [
                    Query(q.queue_series(system, exported, "messages_ready", "sum", *by_queue), "{{queue}} ready"),
                    Query(q.queue_series(system, exported, "messages_unacked", "sum", *by_queue), "{{queue}} unacked"),
                ],
                Unit.COUNT,
                panel_id=PanelId.QUEUE_BACKLOG if linked else None,
                thresholds=_shared_limit(backlog_limits),
                show_thresholds=len(set(backlog_limits)) == 1,
                width=8,
            ),
            timeseries(
                "Oldest message age",
                "Age of the oldest waiting message per queue: growing means consumers fall behind. "
                f"Alert limits: {_limits(exported, 'max_age')}.",
                [Query(q.oldest_message_age(system, exported, *by_queue), "{{queue}}")],
                Unit.SECONDS,
                panel_id=PanelId.QUEUE_OLDEST_AGE if linked else None,
                thresholds=_shared_limit(age_limits),
                show_thresholds=len(set(age_limits)) == 1,
                width=8,
            ),
            timeseries(
                "Consumers",
                "Consumers the broker sees on each queue, and available pods of the Deployments that consume it. "
                "Zero consumers with a backlog means nothing drains the queue.",
                [Query(q.queue_series(system, exported, "consumers", "sum", *by_queue), "{{queue}} consumers")]
                + [
                    Query(q.consumer_replicas(config.exporters, system, queue), f"{queue.name} consumer pods")
                    for queue in exported
                    if queue.consumers
                ],
                Unit.COUNT,
                panel_id=PanelId.QUEUE_CONSUMERS if linked else None,
                width=8,
            ),
        ]
    if kafka:
        lag_limits = [float(queue.max_lag) for queue in kafka]
        panels += [
            timeseries(
                "Kafka consumer lag",
                "Messages each consumer group still has to read, per topic (kafka_exporter). "
                f"Alert limits: {_limits(kafka, 'max_lag')}.",
                [Query(q.kafka_lag(kafka, *by_topic), "{{consumergroup}} · {{topic}}")],
                Unit.COUNT,
                panel_id=PanelId.QUEUE_KAFKA_LAG if linked else None,
                thresholds=_shared_limit(lag_limits),
                show_thresholds=len(set(lag_limits)) == 1,
                width=12,
            ),
            timeseries(
                "Kafka produced and consumed",
                "Messages per second written to each topic and read by each consumer group: consumed below "
                "produced for long makes the lag grow.",
                [
                    Query(q.kafka_produced(kafka, *by_topic), "{{topic}} produced"),
                    Query(q.kafka_consumed(kafka, *by_topic), "{{consumergroup}} consumed"),
                ],
                Unit.OPS,
                width=12,
            ),
        ]
    return panels


def _replicas(stores: Sequence[Datastore]) -> str:
    return ", ".join(f"{store.name} {store.replicas}" for store in stores)


def rabbitmq_panels(stores: Sequence[Datastore], config: DashboardConfig) -> list[Any]:
    """Each RabbitMQ's health from its rabbitmq_prometheus endpoint, per node (pod)."""
    fd_share = float(config.exporters.rabbitmq_fd_share)
    return [
        timeseries(
            "RabbitMQ nodes answering",
            "Nodes whose rabbitmq_prometheus endpoint Prometheus scrapes, per broker. A node that does not "
            f"answer is down (the plugin runs inside it). StatefulSet replicas: {_replicas(stores)}.",
            [Query(q.broker_nodes_up(stores), "{{service}}")],
            Unit.COUNT,
            panel_id=PanelId.QUEUE_RABBITMQ_NODES,
            width=8,
        ),
        state_timeline(
            "RabbitMQ alarms",
            "Memory, disk and file-descriptor alarms per node. While any node has one, every publishing "
            "connection of its cluster is blocked.",
            [
                Query(q.broker_by_pod(stores, "rabbitmq_alarms_memory_used_watermark"), "{{pod}} memory"),
                Query(q.broker_by_pod(stores, "rabbitmq_alarms_free_disk_space_watermark"), "{{pod}} disk"),
                Query(q.broker_by_pod(stores, "rabbitmq_alarms_file_descriptor_limit"), "{{pod}} file descriptors"),
            ],
            Unit.COUNT,
            panel_id=PanelId.QUEUE_RABBITMQ_ALARMS,
            thresholds=higher_is_worse(None, 1),
            states=ALARM_STATES,
            width=8,
        ),
        timeseries(
            "RabbitMQ memory against the watermark",
            "Resident memory of each node over its memory high watermark (vm_memory_high_watermark, in bytes). "
            "At 100 % the node raises the memory alarm.",
            [Query(
                q.broker_ratio_by_pod(stores, "rabbitmq_process_resident_memory_bytes",
                                      "rabbitmq_resident_memory_limit_bytes"),
                "{{pod}}",
            )],
            Unit.RATIO,
            panel_id=PanelId.QUEUE_RABBITMQ_MEMORY,
            thresholds=higher_is_worse(None, 1),
            show_thresholds=True,
            width=8,
        ),
        timeseries(
            "RabbitMQ free disk",
            "Free space on each node's data volume, and the disk_free_limit below which it raises the disk alarm.",
            [
                Query(q.broker_by_pod(stores, "rabbitmq_disk_space_available_bytes"), "{{pod}} free"),
                Query(q.broker_by_pod(stores, "rabbitmq_disk_space_available_limit_bytes"), "{{pod}} limit"),
            ],
            Unit.BYTES,
            width=8,
        ),
        timeseries(
            "RabbitMQ file descriptors",
            f"Open file descriptors of each node over its limit. The alert fires above {fd_share * 100:g} % for "
            f"{config.exporters.rabbitmq_fd_for}; at 100 % the node accepts no new connection.",
            [Query(q.broker_ratio_by_pod(stores, "rabbitmq_process_open_fds", "rabbitmq_process_max_fds"), "{{pod}}")],
            Unit.RATIO,
            panel_id=PanelId.QUEUE_RABBITMQ_FDS,
            thresholds=higher_is_worse(None, fd_share),
            show_thresholds=True,
            width=8,
        ),
        timeseries(
            "RabbitMQ connections and channels",
            "Open client connections and channels per broker. A saw-tooth or a steady climb means clients "
            "that open a connection per message.",
            [
                Query(q.broker_total(stores, "rabbitmq_connections"), "{{service}} connections"),
                Query(q.broker_total(stores, "rabbitmq_channels"), "{{service}} channels"),
            ],
            Unit.COUNT,
            width=8,
        ),
        timeseries(
            "RabbitMQ unroutable messages",
            "Messages per second published to an exchange that routed them to no queue: dropped, or returned "
            "to publishers that set `mandatory`. Anything above zero is lost work.",
            [
                Query(q.broker_rate(stores, "rabbitmq_global_messages_unroutable_dropped_total"),
                      "{{service}} dropped"),
                Query(q.broker_rate(stores, "rabbitmq_global_messages_unroutable_returned_total"),
                      "{{service}} returned"),
            ],
            Unit.OPS,
            panel_id=PanelId.QUEUE_RABBITMQ_UNROUTABLE,
            width=12,
        ),
    ]


def kafka_panels(stores: Sequence[Datastore]) -> list[Any]:
    """Each Kafka's health from its kafka_exporter."""
    return [
        timeseries(
            "Kafka brokers",
            "Brokers in each Kafka cluster's metadata, as kafka_exporter sees them. StatefulSet replicas: "
            f"{_replicas(stores)}; fewer means a broker is down or fenced.",
            [Query(f"max by (service) ({q.broker(stores, 'kafka_brokers')})", "{{service}}")],
            Unit.COUNT,
            panel_id=PanelId.QUEUE_KAFKA_BROKERS,
            width=12,
        ),
        timeseries(
            "Kafka under-replicated and offline partitions",
            "Partitions with fewer in-sync replicas than replicas, and partitions with no leader (kafka_exporter "
            "publishes no leader for them): offline partitions can be neither written nor read.",
            [
                Query(q.broker_total(stores, "kafka_topic_partition_under_replicated_partition"),
                      "{{service}} under-replicated"),
                Query(q.kafka_offline_partitions(stores), "{{service}} offline"),
            ],
            Unit.COUNT,
            panel_id=PanelId.QUEUE_KAFKA_PARTITIONS,
            thresholds=higher_is_worse(None, 1),
            width=12,
        ),
    ]
