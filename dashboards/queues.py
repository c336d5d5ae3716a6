"""Queues: backlog, age of the oldest message and consumers from the pool & queue exporter, and
Kafka consumer lag from kafka_exporter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from obsbundle.dashboards import queries as q
from obsbundle.dashboards.common import sibling_links, tags, variables
from obsbundle.dashboards.config import DashboardConfig
from obsbundle.dashboards.panels import GOOD_BELOW, Query, Row, Step, Unit, dashboard, higher_is_worse, timeseries
from obsbundle.durations import parse_duration
from obsbundle.links import Board, PanelId, dashboard_uid
from obsbundle.model import Broker, Queue, System


def queues_dashboard(system: System, config: DashboardConfig) -> dict[str, Any]:
    rows = [Row("Queues", queue_panels(system, system.queues, config, linked=True))]
    return dashboard(
        uid=dashboard_uid(system, Board.QUEUES),
        title=f"{system.name} / Queues",
        description="Backlog, oldest message and consumers of every queue; Kafka consumer lag",
        tags=tags(system, "queues"),
        rows=rows,
        variables=variables(system, config),
        links=sibling_links(system),
        config=config,
    )


def _shared_limit(values: Sequence[float]) -> list[Step]:
    """A threshold line when every queue has the same limit; otherwise the description lists them."""
    return higher_is_worse(None, values[0]) if len(set(values)) == 1 else GOOD_BELOW


def _limits(queues: Sequence[Queue], limit: str) -> str:
    return ", ".join(f"{queue.name} {getattr(queue, limit)}" for queue in queues)


def queue_panels(system: System, queues: Sequence[Queue], config: DashboardConfig, *, linked: bool) -> list[Any]:
    """Panels for `queues`; `linked` gives them the PanelIds alerts link to (the Queues dashboard)."""
    exported = [queue for queue in queues if queue.broker is not Broker.KAFKA]
    kafka = [queue for queue in queues if queue.broker is Broker.KAFKA]
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
                    Query(q.queue_series(system, exported, "messages_ready"), "{{queue}} ready"),
                    Query(q.queue_series(system, exported, "messages_unacked"), "{{queue}} unacked"),
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
                [Query(q.oldest_message_age(system, exported), "{{queue}}")],
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
                [Query(q.queue_series(system, exported, "consumers"), "{{queue}} consumers")]
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
                [Query(q.kafka_lag(kafka), "{{consumergroup}} · {{topic}}")],
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
                    Query(q.kafka_produced(kafka), "{{topic}} produced"),
                    Query(q.kafka_consumed(kafka), "{{consumergroup}} consumed"),
                ],
                Unit.OPS,
                width=12,
            ),
        ]
    return panels
