"""Datastore health cases: postgres_exporter's and redis_exporter's series of one datastore.

The label names are those the exporters publish (tests/fixtures/exposition/postgres-exporter/,
redis-exporter/: `datname`, `server`, `schemaname`, `relname`, `role`, `master_host`…) and those the
datastore's generated monitor gives its targets (`namespace`, `service` = the datastore, `pod`).
"""

from __future__ import annotations

from collections.abc import Mapping

from obsbundle.model import Datastore, System
from obsbundle.monitors.datastores import datastore_target_labels
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.definitions import Case, Inputs
from obsbundle.rules.input_series import constant, counter

TEST_MINUTES = 30
EVAL = "20m"
SERVER = {"server": "127.0.0.1:5432"}
"""postgres_exporter 0.11 labels every series with the server it reads."""
DATABASE = {"datname": "app", "datid": "16417"}
TABLE = {"datname": "app", "schemaname": "public", "relname": "accounts"}
VACUUM_MINUTES = 11 * 60
"""Longer than the vacuum age of 10 hours plus the alert's `for`; promtool's clock starts at 0."""


class DatastoreCases:
    """The cases of one Postgres or Redis datastore's health alerts."""

    def __init__(self, system: System, config: RuleConfig, store: Datastore) -> None:
        self.config, self.store = config, store
        self.target = datastore_target_labels(store)
        self.pod = f"{store.statefulset or store.name}-0"

    def _labels(self, pod: str | None = None, **extra: str) -> dict[str, str]:
        return {**self.target, "pod": pod or self.pod, **extra}

    def _gauge(self, metric: str, labels: Mapping[str, str], value: float, minutes: int = TEST_MINUTES) -> Inputs:
        return (constant(metric, labels, value, minutes),)

    def exporter_down(self) -> Case:
        """The exporter's `up` at 0 fires, at 1 stays quiet; no target at all fires too (background)."""
        return Case(
            firing=self._gauge("up", self._labels(), 0),
            quiet=self._gauge("up", self._labels(), 1),
            labels={},
            value=0,
            eval_time=EVAL,
            background=True,
        )

    def down(self, metric: str) -> Case:
        labels = self._labels(**SERVER) if metric.startswith("pg_") else self._labels()
        return Case(
            firing=self._gauge(metric, labels, 0),
            quiet=self._gauge(metric, labels, 1),
            labels={"pod": self.pod},
            value=0,
            eval_time=EVAL,
        )

    def _database_counters(self, per_minute: Mapping[str, float]) -> Inputs:
        labels = self._labels(**SERVER, **DATABASE)
        return tuple(
            counter(f"pg_stat_database_{name}", labels, rate, TEST_MINUTES) for name, rate in per_minute.items()
        )

    def deadlocks(self) -> Case:
        limit = self.config.postgres_deadlocks_per_minute
        return Case(
            firing=self._database_counters({"deadlocks": limit + 1}),
            quiet=self._database_counters({"deadlocks": 1}),
            labels={"datname": DATABASE["datname"]},
            value=limit + 1,
            eval_time=EVAL,
        )

    def rollbacks(self) -> Case:
        """Twice the threshold's share of transactions rolled back fires; a hundredth stays quiet."""
        share = float(self.config.postgres_rollback_ratio) * 2
        return Case(
            firing=self._database_counters({"xact_rollback": share * 100, "xact_commit": (1 - share) * 100}),
            quiet=self._database_counters({"xact_rollback": 1, "xact_commit": 99}),
            labels={"datname": DATABASE["datname"]},
            value=share,
            eval_time=EVAL,
        )

    def cache_hit(self) -> Case:
        """Half the blocks read from disk fires; one in a thousand stays quiet."""
        return Case(
            firing=self._database_counters({"blks_hit": 500, "blks_read": 500}),
            quiet=self._database_counters({"blks_hit": 999, "blks_read": 1}),
            labels={"datname": DATABASE["datname"]},
            value=0.5,
            eval_time=EVAL,
        )

    def not_vacuumed(self) -> Case:
        """1,000 live rows trigger autovacuum at 50 + 0.2 × 1,000 = 250 dead ones (PostgreSQL's
        defaults); 400 dead rows and no vacuum ever fires, the same rows vacuumed a minute ago stay quiet."""
        table, server = self._labels(**SERVER, **TABLE), self._labels(**SERVER)
        minutes = VACUUM_MINUTES

        def inputs(last_vacuum: str) -> Inputs:
            return (
                *self._gauge("pg_stat_user_tables_n_dead_tup", table, 400, minutes),
                *self._gauge("pg_stat_user_tables_n_live_tup", table, 1000, minutes),
                *self._gauge("pg_settings_autovacuum_vacuum_scale_factor", server, 0.2, minutes),
                *self._gauge("pg_settings_autovacuum_vacuum_threshold", server, 50, minutes),
                *self._gauge("pg_stat_user_tables_last_vacuum", table, 0, minutes),
                (constant("pg_stat_user_tables_last_autovacuum", table, 0, minutes) if last_vacuum == "never"
                 else counter("pg_stat_user_tables_last_autovacuum", table, 60, minutes)),
            )

        return Case(
            firing=inputs("never"),
            quiet=inputs("every minute"),
            labels={name: TABLE[name] for name in ("datname", "schemaname", "relname")},
            value=400,
            eval_time=f"{minutes}m",
            evaluation_interval="5m",
        )

    def wraparound(self) -> Case:
        share = (1 + float(self.config.postgres_xid_age_share)) / 2
        labels = self._labels(**SERVER, datname=DATABASE["datname"])
        return Case(
            firing=self._gauge("pg_database_wraparound_age_datfrozenxid_seconds", labels, share * 2**31),
            quiet=self._gauge("pg_database_wraparound_age_datfrozenxid_seconds", labels, 200_000_000),
            labels={"datname": DATABASE["datname"]},
            value=share,
            eval_time=EVAL,
        )

    def replication_lag(self) -> Case:
        limit = self.config.postgres_replication_lag_seconds
        replica = f"{self.store.statefulset or self.store.name}-1"
        labels = self._labels(replica, **SERVER)
        return Case(
            firing=self._gauge("pg_replication_lag_seconds", labels, limit * 2),
            quiet=self._gauge("pg_replication_lag_seconds", labels, 3),
            labels={"pod": replica},
            value=limit * 2,
            eval_time=EVAL,
        )

    def memory(self) -> Case:
        """95 % of a 100 MiB maxmemory fires, half of it stays quiet."""
        maxmemory = 100 * 2**20

        def used(share: float) -> Inputs:
            return (
                *self._gauge("redis_memory_used_bytes", self._labels(), share * maxmemory),
                *self._gauge("redis_memory_max_bytes", self._labels(), maxmemory),
            )

        return Case(firing=used(0.95), quiet=used(0.5), labels={"pod": self.pod}, value=0.95, eval_time=EVAL)

    def increase(self, metric: str) -> Case:
        """A counter that grows by 2 a minute fires (10 in 5 minutes); a constant one stays quiet."""
        return Case(
            firing=(counter(metric, self._labels(), 2, TEST_MINUTES, start=7),),
            quiet=self._gauge(metric, self._labels(), 7),
            labels={"pod": self.pod},
            value=10,
            eval_time=EVAL,
        )

    def hit_ratio(self, target: float) -> Case:
        """Halfway between 0 and the target fires; halfway between the target and 1 stays quiet."""

        def lookups(share: float) -> Inputs:
            return (
                counter("redis_keyspace_hits_total", self._labels(), share * 100, TEST_MINUTES),
                counter("redis_keyspace_misses_total", self._labels(), (1 - share) * 100, TEST_MINUTES),
            )

        low = target / 2
        return Case(firing=lookups(low), quiet=lookups((1 + target) / 2), labels={}, value=low, eval_time=EVAL)

    def replica_link(self) -> Case:
        replica = f"{self.store.statefulset or self.store.name}-1"
        labels = self._labels(replica, master_host="10.244.1.7", master_port="6379")
        return Case(
            firing=self._gauge("redis_master_link_up", labels, 0),
            quiet=self._gauge("redis_master_link_up", labels, 1),
            labels={"pod": replica},
            value=0,
            eval_time=EVAL,
        )

    def replicas_missing(self) -> Case:
        """One master: with one replica fewer connected than the rest of the pods it fires, with all quiet."""
        expected = self.store.replicas - 1

        def connected(count: int) -> Inputs:
            return (
                *self._gauge("redis_connected_slaves", self._labels(), count),
                *self._gauge("redis_instance_info", self._labels(role="master", redis_mode="standalone"), 1),
            )

        return Case(
            firing=connected(expected - 1),
            quiet=connected(expected),
            labels={},
            value=expected - 1,
            eval_time=EVAL,
        )
