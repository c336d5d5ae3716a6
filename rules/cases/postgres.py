"""Postgres and PgBouncer cases: the pool & queue exporter's gauges for one datastore's sources."""

from __future__ import annotations

from collections.abc import Mapping

from obsbundle import naming
from obsbundle.model import Datastore, System
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.definitions import Case, Inputs
from obsbundle.rules.input_series import constant

TEST_MINUTES = 20
DATABASE = {"datname": "app"}
PGBOUNCER_POOL = {"database": "app", "user": "app"}


class PostgresCases:
    """The cases of one Postgres datastore and the PgBouncer in front of it."""

    def __init__(self, system: System, config: RuleConfig, store: Datastore) -> None:
        self.system, self.config, self.store = system, config, store

    def gauge(self, metric: str, source: str, labels: Mapping[str, str], value: float) -> Inputs:
        series = {naming.SYSTEM_LABEL: self.system.name, "source": source, **labels}
        return (constant(metric, series, value, TEST_MINUTES),)

    def _case(self, metric: str, source: str, labels: Mapping[str, str], *, by: str, high: float, low: float) -> Case:
        """`metric` at `high` fires, at `low` stays quiet; the alert keeps the one label it is `by`."""
        return Case(
            firing=self.gauge(metric, source, labels, high),
            quiet=self.gauge(metric, source, labels, low),
            labels={by: labels[by]},
            value=high,
            eval_time="15m",
        )

    def connections(self) -> Case:
        """Halfway between the threshold and every usable slot fires; half the threshold stays quiet.
        103 slots with 3 reserved: 100 usable, so the share is the count of open sessions."""
        threshold = self.store.max_connections_alert
        share = (1 + threshold) / 2

        def slots(open_share: float) -> Inputs:
            session = {"datname": "app", "usename": "app", "state": "active"}
            return (
                *self.gauge("poolq_pg_connections", self.store.source, session, round(open_share * 100, 6)),
                *self.gauge("poolq_pg_max_connections", self.store.source, {}, 103),
                *self.gauge("poolq_pg_reserved_connections", self.store.source, {}, 3),
            )

        return Case(
            firing=slots(float(share)),
            quiet=slots(float(threshold) / 2),
            labels={},
            value=float(share),
            eval_time="15m",
        )

    def lock_waits(self) -> Case:
        return self._case("poolq_pg_waiting_connections", self.store.source, DATABASE, by="datname", high=3, low=0)

    def long_transaction(self) -> Case:
        limit = self.config.postgres_oldest_transaction_seconds
        return self._case(
            "poolq_pg_oldest_transaction_seconds", self.store.source, DATABASE, by="datname", high=limit * 1.5, low=2
        )

    def pgbouncer_waiting(self, bouncer: str) -> Case:
        return self._case("poolq_pgbouncer_client_waiting", bouncer, PGBOUNCER_POOL, by="database", high=4, low=0)

    def pgbouncer_max_wait(self, bouncer: str) -> Case:
        limit = self.config.pgbouncer_max_wait_seconds
        return self._case(
            "poolq_pgbouncer_client_maxwait_seconds", bouncer, PGBOUNCER_POOL, by="database", high=limit * 3, low=0
        )
