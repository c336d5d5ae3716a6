"""Assemble the exporter from its configuration: sources, the collector and its own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, ProcessCollector

from obsbundle.exporters.collector import PoolQueueCollector
from obsbundle.exporters.config import ExporterConfig
from obsbundle.exporters.sources.base import Source
from obsbundle.exporters.sources.pg_queues import PostgresJobsSource
from obsbundle.exporters.sources.pgbouncer import PgBouncerPoolsSource
from obsbundle.exporters.sources.postgres import PostgresServerSource
from obsbundle.exporters.sources.rabbitmq import RabbitMQQueuesSource
from obsbundle.exporters.sources.redis_lists import RedisListsSource


def build_sources(config: ExporterConfig) -> list[Source]:
    """One Source per configuration entry, in the file's order of kinds. Nothing connects yet."""
    sources: list[Source] = []
    sources += [PostgresServerSource(settings) for settings in config.postgres]
    sources += [PgBouncerPoolsSource(settings) for settings in config.pgbouncer]
    sources += [RabbitMQQueuesSource(settings) for settings in config.rabbitmq]
    sources += [RedisListsSource(settings, config.timeout_seconds) for settings in config.redis]
    sources += [PostgresJobsSource(settings) for settings in config.postgres_queues]
    return sources


class Exporter:
    """The collector of every configured source, and of the process metrics while the sources answer,
    on a registry of its own (never prometheus-client's global one)."""

    def __init__(self, config: ExporterConfig, process_metrics: bool = True) -> None:
        self.config = config
        alongside = [ProcessCollector(registry=None)] if process_metrics else []
        self.collector = PoolQueueCollector(build_sources(config), config.timeout_seconds, config.margin_seconds,
                                            alongside)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)

    def close(self) -> None:
        """Close every source's connection."""
        self.collector.close()
