"""The pool & queue exporter: PostgreSQL connections, PgBouncer pools and queue backlogs (RabbitMQ,
Redis lists, Postgres job tables) for Prometheus.

A separate runtime component (`python -m obsbundle.exporters`); importing this package starts,
registers and connects nothing. See docs/exporter.md.
"""
