"""Queue cases: the pool & queue exporter's queue gauges, and kafka_exporter's consumer lag."""

from __future__ import annotations

import math

from obsbundle import naming
from obsbundle.durations import parse_duration
from obsbundle.model import Queue, System
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.definitions import Case, Inputs
from obsbundle.rules.input_series import constant, counter

TEST_MINUTES = 45


class QueueCases:
    """The cases of one queue's alerts, in the series its broker's source publishes."""

    def __init__(self, system: System, config: RuleConfig, queue: Queue) -> None:
        self.config, self.queue = config, queue
        store = system.datastore(queue.datastore)
        self.series = {
            naming.SYSTEM_LABEL: system.name,
            "source": store.source,
            "queue": queue.name,
            "broker": queue.broker.value,
        }
        self.labels = {"queue": queue.name}

    def gauge(self, metric: str, value: float) -> Inputs:
        return (constant(metric, self.series, value, TEST_MINUTES),)

    def _above(self, metric: str, high: float, low: float, eval_time: str) -> Case:
        return Case(
            firing=self.gauge(metric, high),
            quiet=self.gauge(metric, low),
            labels=self.labels,
            value=high,
            eval_time=eval_time,
        )

    def backlog_high(self) -> Case:
        limit = self.queue.max_backlog
        return self._above("poolq_queue_messages_ready", limit * 2, limit // 2, "20m")

    def backlog_growing(self) -> Case:
        """A backlog just above the floor that grows a hundredth of the limit a minute fires; the same
        backlog standing still stays quiet."""
        floor = math.ceil(self.queue.max_backlog * self.config.queue_growth_min_share)
        slope = max(1, self.queue.max_backlog // 100)
        start = floor + 10
        at = parse_duration(self.config.queue_growth_for) // 60 + 15
        return Case(
            firing=(counter("poolq_queue_messages_ready", self.series, slope, TEST_MINUTES, start=start),),
            quiet=self.gauge("poolq_queue_messages_ready", start),
            labels=self.labels,
            value=start + slope * at,
            eval_time=f"{at}m",
        )

    def no_consumers(self) -> Case:
        """Twelve messages ready and no consumer fires; two consumers keep it quiet."""
        return Case(
            firing=(*self.gauge("poolq_queue_consumers", 0), *self.gauge("poolq_queue_messages_ready", 12)),
            quiet=(*self.gauge("poolq_queue_consumers", 2), *self.gauge("poolq_queue_messages_ready", 12)),
            labels=self.labels,
            value=0,
            eval_time="15m",
        )

    def too_old(self) -> Case:
        limit = parse_duration(self.queue.max_age)
        return self._above("poolq_queue_oldest_message_age_seconds", limit * 2, limit // 4, "15m")

    def consumer_lag(self) -> Case:
        """kafka_exporter's lag of one partition at twice the limit fires, at half stays quiet."""
        assert self.queue.consumer_group is not None
        group = {"consumergroup": self.queue.consumer_group, "topic": self.queue.name, "partition": "0"}
        limit = self.queue.max_lag

        def lagging(value: int) -> Inputs:
            return (constant("kafka_consumergroup_lag", group, value, TEST_MINUTES),)

        return Case(firing=lagging(limit * 2), quiet=lagging(limit // 2), labels={}, value=limit * 2, eval_time="20m")
