"""PostgreSQL and Redis health from their standard exporters, postgres_exporter and redis_exporter.

Per datastore with `metrics` (its exporter, scraped by the monitor of monitors/datastores.py, so
every series carries the datastore's namespace and `service=<datastore>`):

- Postgres: down (`pg_up`), deadlocks, the rollback ratio, the buffer cache hit ratio, tables past
  their autovacuum trigger that are not vacuumed, transaction ID wraparound and, with more than one
  replica, replication lag. Thresholds are the postgres mixin's where it has one (rules/config.py).
- Redis: down (`redis_up`), memory against maxmemory, evictions, rejected connections, the keyspace
  hit ratio against the inventory's `cache_hit_target` and, with more than one replica, broken
  replication (a replica's link to its master; the masters' replicas against the inventory's count).

Everything is taken from postgres_exporter, none from the pool & queue exporter: the datastore's
own exporter already sees every database, and the series that postgres_exporter 0.11 (Debian 12)
lacks, table vacuum state, replication lag and wraparound age, come from its later collectors,
under the same names through deploy/postgres-exporter/queries.yaml on older versions. The pool &
queue exporter stays what the standard exporters leave out: pools and queues.

Each datastore's exporter has its own absence alert (`PostgresExporterDown`, `RedisExporterDown`,
naming.DATASTORE_EXPORTER_DOWN_ALERTS): Alertmanager mutes that datastore's health alerts while it
fires (alerting/plan.py), and only that datastore's.
"""

from __future__ import annotations

from decimal import Decimal

from obsbundle import naming
from obsbundle.links import Board, PanelId
from obsbundle.model import Datastore, DatastoreKind, System
from obsbundle.monitors.datastores import datastore_target_labels
from obsbundle.promql import selector
from obsbundle.providers import DATASTORE_EXPORTERS
from obsbundle.rules.alert_labels import AlertSubject, datastore_labels
from obsbundle.rules.cases import datastore_health as cases
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.definitions import Alert, AlertDoc, RuleGroup, RunbookCheck
from obsbundle.rules.templating import Description, ValueFormat

XID_SPACE = 2**31
"""Transaction IDs PostgreSQL can tell apart: past this the oldest unfrozen one would wrap around."""
USER_DATABASES = 'datname!~"|template.*"'
"""The postgres mixin's dbNameFilter (template databases take no traffic), and the row of shared
objects, whose `datname` is empty."""
TABLE = ("datname", "schemaname", "relname")

POSTGRES_EXPORTER_DOWN = AlertDoc(
    name=naming.DATASTORE_EXPORTER_DOWN_ALERTS[DATASTORE_EXPORTERS[DatastoreKind.POSTGRES]],
    summary="Prometheus gets nothing from a PostgreSQL's postgres_exporter.",
    meaning="No target of the datastore's postgres_exporter answers, or there is none. It runs beside the "
    "database (a metrics sidecar of its StatefulSet), so the database's pod may be gone with it. The "
    "datastore's health alerts cannot fire meanwhile, and Alertmanager mutes them.",
    actions=(
        "Are the StatefulSet's pods running, the metrics container among them (`kubectl get pods` in the "
        "namespace below)?",
        "Prometheus's targets page (Status → Targets): is the datastore's ServiceMonitor there, and what error shows?",
        "The exporter's logs: a refused login means the monitoring role's password or pg_hba.conf changed.",
    ),
)
POSTGRES_DOWN = AlertDoc(
    name="PostgresDown",
    summary="postgres_exporter cannot query PostgreSQL.",
    meaning="The exporter answers but reports `pg_up == 0`: PostgreSQL refuses or drops its connection. "
    "The database is down, restarting, out of connection slots or refusing the monitoring role; the "
    "applications that use it are likely failing too.",
    actions=(
        "Is the server accepting connections? Run the `pg_isready` below.",
        "Its logs (`kubectl logs` of the pod, container of the database): crash recovery, a full disk, "
        "'too many clients', authentication failures.",
        "If it is out of connection slots, see PostgresConnectionsHigh's runbook.",
    ),
)
DEADLOCKS = AlertDoc(
    name="PostgresDeadlocks",
    summary="PostgreSQL keeps detecting deadlocks.",
    meaning="Transactions of the database keep waiting on each other's locks; PostgreSQL aborts one of each "
    "pair after deadlock_timeout, so requests fail with 'deadlock detected' and are retried or lost.",
    actions=(
        "The server's log holds each deadlock's two statements ('deadlock detected ... Process ... waits for'): "
        "find which code paths take the same rows or tables in opposite orders.",
        "Fix the lock order (take rows in a fixed order, `SELECT ... FOR UPDATE` up front), or shorten the "
        "transactions.",
    ),
)
ROLLBACKS = AlertDoc(
    name="PostgresHighRollbackRatio",
    summary="A large share of a PostgreSQL database's transactions roll back.",
    meaning="More than the threshold of the database's transactions end in ROLLBACK: application errors, "
    "serialization failures, deadlocks or statement timeouts abort them. Work is done and thrown away.",
    actions=(
        "Look for errors in the database's log (ERROR lines) and in the applications that use it.",
        "Check for deadlocks and statement timeouts; an ORM that rolls back read-only transactions by design "
        "shows here too: then raise the threshold.",
    ),
)
CACHE_HIT = AlertDoc(
    name="PostgresCacheHitRatioLow",
    summary="PostgreSQL reads too many blocks from disk rather than from its buffer cache.",
    meaning="Fewer than the threshold of the database's block reads are served from shared buffers: the "
    "working set no longer fits in shared_buffers, or large sequential scans evict it. Queries wait on disk.",
    actions=(
        "Find the statements with the most blocks read (pg_stat_statements' shared_blks_read, below).",
        "Add the missing index, or raise shared_buffers (and the pod's memory) if the working set grew.",
    ),
)
NOT_VACUUMED = AlertDoc(
    name="PostgresTableNotVacuumed",
    summary="A PostgreSQL table has more dead rows than its autovacuum trigger, and no vacuum for hours.",
    meaning="The table's dead rows exceed autovacuum_vacuum_threshold plus autovacuum_vacuum_scale_factor of "
    "its live rows, yet neither autovacuum nor a manual VACUUM has run on it for the threshold's time. "
    "Something blocks vacuum (a long transaction, a replication slot, autovacuum workers all busy) and the "
    "table bloats.",
    actions=(
        "Look for what holds back the xmin horizon: long transactions (PostgresLongTransaction), prepared "
        "transactions, replication slots (`SELECT slot_name, active, xmin FROM pg_replication_slots;`).",
        "See whether autovacuum is running on it now (`SELECT * FROM pg_stat_progress_vacuum;`), then VACUUM "
        "the table by hand.",
    ),
)
WRAPAROUND = AlertDoc(
    name="PostgresTransactionIdWraparound",
    summary="A PostgreSQL database's oldest unfrozen transaction ID is halfway to wraparound.",
    meaning="age(datfrozenxid) of the database has used more than the threshold of the 2^31 transaction IDs. "
    "Autovacuum should have frozen its tables at autovacuum_freeze_max_age (200 million by default); it "
    "has not. Close to the limit PostgreSQL stops assigning transaction IDs: every write fails until a "
    "VACUUM in single-user mode.",
    actions=(
        "Find the oldest tables: `SELECT c.oid::regclass, age(c.relfrozenxid) FROM pg_class c WHERE "
        "c.relkind = 'r' ORDER BY 2 DESC LIMIT 10;`",
        "Remove what blocks freezing: long or prepared transactions, stale replication slots.",
        "Run `VACUUM (FREEZE, VERBOSE)` on those tables, off-peak.",
    ),
)
REPLICATION_LAG = AlertDoc(
    name="PostgresReplicationLag",
    summary="A PostgreSQL replica is far behind its primary.",
    meaning="The replica has received WAL it has not replayed, and the last transaction it replayed is older "
    "than the threshold. Reads from it are stale, and a failover to it would lose or delay that much.",
    actions=(
        "On the primary, see each replica's lag: `SELECT application_name, state, replay_lag FROM "
        "pg_stat_replication;`",
        "On the replica: long queries conflicting with replay (max_standby_streaming_delay), disk or CPU "
        "saturation, network between the pods.",
    ),
)
REDIS_EXPORTER_DOWN = AlertDoc(
    name=naming.DATASTORE_EXPORTER_DOWN_ALERTS[DATASTORE_EXPORTERS[DatastoreKind.REDIS]],
    summary="Prometheus gets nothing from a Redis's redis_exporter.",
    meaning="No target of the datastore's redis_exporter answers, or there is none. It runs beside Redis (a "
    "metrics sidecar of its StatefulSet), so the Redis pod may be gone with it. The datastore's health "
    "alerts cannot fire meanwhile, and Alertmanager mutes them.",
    actions=(
        "Are the StatefulSet's pods running, the metrics container among them (`kubectl get pods` in the "
        "namespace below)?",
        "Prometheus's targets page (Status → Targets): is the datastore's ServiceMonitor there, and what error shows?",
        "The exporter's logs: NOAUTH or WRONGPASS means its REDIS_PASSWORD is not the server's.",
    ),
)
REDIS_DOWN = AlertDoc(
    name="RedisDown",
    summary="redis_exporter cannot reach Redis.",
    meaning="The exporter answers but reports `redis_up == 0`: Redis does not answer it. Clients that use "
    "this Redis (caches, sessions, token blacklists, queues) are failing or falling back.",
    actions=(
        "Does Redis answer? Run the `PING` below.",
        "Its logs (`kubectl logs` of the pod): out of memory, a failed AOF or RDB load, a crash loop.",
    ),
)
REDIS_MEMORY = AlertDoc(
    name="RedisMemoryHigh",
    summary="Redis is close to its maxmemory.",
    meaning="Used memory is above the threshold of maxmemory. At maxmemory Redis evicts keys under an "
    "eviction policy, or refuses writes ('OOM command not allowed') under noeviction.",
    actions=(
        "See what uses it (`INFO memory`, and `--bigkeys` below) and which maxmemory-policy is set.",
        "Expire keys that should expire (keys without a TTL grow for ever), or raise maxmemory together "
        "with the pod's memory limit.",
    ),
)
REDIS_EVICTIONS = AlertDoc(
    name="RedisEvictingKeys",
    summary="Redis is evicting keys to stay under maxmemory.",
    meaning="Redis reached maxmemory and dropped keys under its eviction policy. A cache loses entries "
    "early (its hit ratio falls); data that must stay, such as a token blacklist, is lost.",
    actions=(
        "Check the policy and memory (`INFO memory`, `CONFIG GET maxmemory-policy`): is this a cache?",
        "For data that must stay: raise maxmemory (and the pod's limit) or move it to a Redis of its own "
        "with noeviction.",
    ),
)
REDIS_REJECTED = AlertDoc(
    name="RedisRejectingConnections",
    summary="Redis refuses new connections.",
    meaning="Redis rejected connections because it has maxclients clients already. Clients that cannot "
    "connect fail their requests.",
    actions=(
        "Who holds the connections: `CLIENT LIST` below (addr, name, idle). Idle ones are pool leaks.",
        "Cap the clients' pool sizes, or raise maxclients (and the file descriptor limit).",
    ),
)
REDIS_HIT_RATIO = AlertDoc(
    name="RedisCacheHitRatioLow",
    summary="The Redis cache hit ratio is below its target.",
    meaning="Fewer keyspace lookups find their key than the target the inventory sets (`cache_hit_target`): "
    "requests go to the slower source behind the cache more often than planned.",
    actions=(
        "Did keys expire early or get evicted (RedisEvictingKeys, `INFO stats` below: evicted_keys, "
        "expired_keys)?",
        "Did a deployment change key names or TTLs? A cold cache after a restart recovers by itself.",
    ),
)
REDIS_REPLICA_LINK = AlertDoc(
    name="RedisReplicaLinkDown",
    summary="A Redis replica has lost its link to its master.",
    meaning="The replica reports `master_link_status: down`: it no longer receives writes, serves stale "
    "reads, and cannot take over without losing data.",
    actions=(
        "On the replica, `INFO replication` below: master_host, master_link_down_since_seconds.",
        "Is the master up and reachable from the replica's pod? Check the replica's logs for the reason "
        "(authentication, a full sync that keeps failing, output buffer limits).",
    ),
)
REDIS_REPLICAS_MISSING = AlertDoc(
    name="RedisReplicasMissing",
    summary="The Redis masters have fewer replicas than the datastore should have.",
    meaning="The replicas connected to the Redis masters number fewer than the inventory's replicas minus "
    "the masters: a replica is down or disconnected, and a master's failure would now lose data.",
    actions=(
        "`INFO replication` on each master (below): connected_slaves and each slave's state.",
        "`kubectl get pods` in the namespace: which pod is missing or not ready, and why?",
    ),
)


def _shell(store: Datastore, command: str) -> str:
    pod = f"{store.statefulset or store.name}-0"
    return f"kubectl exec -n {store.namespace} {pod} -- {command}"


def _psql(store: Datastore, statement: str) -> RunbookCheck:
    return RunbookCheck(
        f"On {store.name} (namespace {store.namespace})", _shell(store, f'psql -U postgres -c "{statement}"'), "shell"
    )


def _redis_cli(store: Datastore, *arguments: str) -> RunbookCheck:
    # REDIS_PASSWORD is the server container's own variable (Bitnami's charts set it), expanded in the pod.
    cli = f"redis-cli -a \"$REDIS_PASSWORD\" --no-auth-warning {' '.join(arguments)}"
    return RunbookCheck(f"On {store.name} (namespace {store.namespace})", _shell(store, f"sh -c '{cli}'"), "shell")


def _reads(query: str) -> RunbookCheck:
    return RunbookCheck("What the exporter reports", query, "promql")


def _share(value: Decimal) -> str:
    return f"{float(value) * 100:g}%"


def _rate(metric: str, labels: dict[str, str], window: str, *extra: str) -> str:
    return f"rate({selector(metric, labels, *extra)}[{window}])"


def _all_down(up: str) -> str:
    """Nothing answers: every target down, or no target at all."""
    return f"(max({up}) or on () vector(0)) == 0"


class _Store:
    """One datastore's subject, selector and cases."""

    exporter_doc: AlertDoc
    exporter: str
    """The exporter in words."""

    def __init__(self, system: System, config: RuleConfig, store: Datastore) -> None:
        self.system, self.config, self.store = system, config, store
        self.target = datastore_target_labels(store)
        self.subject = AlertSubject(
            system, datastore_labels(system, store), f"{store.name} ({store.namespace})", Board.DATABASE,
            variables={"datastore": store.name},
        )
        self.cases = cases.DatastoreCases(system, config, store)

    def sel(self, metric: str, *extra: str) -> str:
        return selector(metric, self.target, *extra)

    def exporter_down(self) -> Alert:
        up = self.sel("up")
        return self.subject.alert(
            self.exporter_doc,
            expr=_all_down(up),
            # As urgent as the most urgent alert it mutes (PostgresDown, RedisDown), as exporters.py's
            # absence alerts are: a sidecar's absence may be its database's.
            severity="critical",
            description=Description(
                f"No {self.exporter} target of {self.store.name} in {self.store.namespace} has answered a scrape for "
                f"{self.config.datastore_exporter_down_for}; its health alerts are muted meanwhile."
            ),
            panel=PanelId.DB_DATASTORE_EXPORTER_UP,
            for_=self.config.datastore_exporter_down_for,
            case=self.cases.exporter_down(),
            threshold=f"no target up for {self.config.datastore_exporter_down_for}",
            checks=(
                _reads(up),
                RunbookCheck(
                    f"Pods of {self.store.name}", f"kubectl get pods -n {self.store.namespace} -o wide", "shell"
                ),
            ),
        )


class _Postgres(_Store):
    exporter_doc = POSTGRES_EXPORTER_DOWN
    exporter = "postgres_exporter"

    def down(self) -> Alert:
        up = self.sel("pg_up")
        return self.subject.alert(
            POSTGRES_DOWN,
            expr=f"min by (pod) ({up}) == 0",
            severity="critical",
            description=Description(
                f"postgres_exporter in pod {{pod}} cannot query {self.store.name} ({self.store.namespace}) "
                f"for {self.config.postgres_down_for}."
            ),
            panel=PanelId.DB_POSTGRES_UP,
            for_=self.config.postgres_down_for,
            case=self.cases.down("pg_up"),
            threshold=f"pg_up == 0 for {self.config.postgres_down_for}",
            checks=(_reads(up), RunbookCheck(
                f"On {self.store.name} (namespace {self.store.namespace})",
                _shell(self.store, "pg_isready -U postgres"), "shell",
            )),
        )

    def deadlocks(self) -> Alert:
        per_minute = f"sum by (datname) ({_rate('pg_stat_database_deadlocks', self.target, '5m', USER_DATABASES)}) * 60"
        limit = self.config.postgres_deadlocks_per_minute
        return self.subject.alert(
            DEADLOCKS,
            expr=f"{per_minute} > {limit}",
            severity="warning",
            description=Description(
                f"Database {{datname}} on {self.store.name} has {{value}} deadlocks a minute "
                f"(alert above {limit})."
            ),
            panel=PanelId.DB_DEADLOCKS,
            for_=self.config.postgres_deadlocks_for,
            case=self.cases.deadlocks(),
            threshold=f"> {limit} a minute for {self.config.postgres_deadlocks_for}",
            checks=(_reads(per_minute), _psql(
                self.store, "SELECT datname, deadlocks FROM pg_stat_database ORDER BY deadlocks DESC;"
            )),
        )

    def rollbacks(self) -> Alert:
        rollback = f"sum by (datname) ({_rate('pg_stat_database_xact_rollback', self.target, '5m', USER_DATABASES)})"
        commit = f"sum by (datname) ({_rate('pg_stat_database_xact_commit', self.target, '5m', USER_DATABASES)})"
        ratio = f"{rollback}\n/ ({commit} + {rollback})"
        limit = self.config.postgres_rollback_ratio
        return self.subject.alert(
            ROLLBACKS,
            expr=f"{ratio}\n> {format(limit.normalize(), 'f')}",
            severity="warning",
            description=Description(
                f"{{value}} of the transactions of database {{datname}} on {self.store.name} roll back "
                f"(alert above {_share(limit)}).",
                ValueFormat.PERCENT,
            ),
            panel=PanelId.DB_ROLLBACKS,
            for_=self.config.postgres_rollback_for,
            case=self.cases.rollbacks(),
            threshold=f"> {_share(limit)} of transactions for {self.config.postgres_rollback_for}",
            checks=(_reads(ratio), _psql(
                self.store, "SELECT datname, xact_commit, xact_rollback FROM pg_stat_database;"
            )),
        )

    def cache_hit(self) -> Alert:
        hit = f"sum by (datname) ({_rate('pg_stat_database_blks_hit', self.target, '5m', USER_DATABASES)})"
        read = f"sum by (datname) ({_rate('pg_stat_database_blks_read', self.target, '5m', USER_DATABASES)})"
        ratio = f"{hit}\n/ ({hit} + {read})"
        limit = self.config.postgres_cache_hit_ratio
        return self.subject.alert(
            CACHE_HIT,
            expr=f"{ratio}\n< {format(limit.normalize(), 'f')}",
            severity="warning",
            description=Description(
                f"Database {{datname}} on {self.store.name} finds {{value}} of its blocks in shared buffers "
                f"(alert below {_share(limit)}).",
                ValueFormat.PERCENT,
            ),
            panel=PanelId.DB_CACHE_HIT,
            for_=self.config.postgres_cache_hit_for,
            case=self.cases.cache_hit(),
            threshold=f"< {_share(limit)} for {self.config.postgres_cache_hit_for}",
            checks=(_reads(ratio), _psql(
                self.store,
                "SELECT query, shared_blks_read FROM pg_stat_statements ORDER BY shared_blks_read DESC LIMIT 5;",
            )),
        )

    def not_vacuumed(self) -> Alert:
        table = ", ".join(TABLE)
        dead = self.sel("pg_stat_user_tables_n_dead_tup")
        trigger = (
            f"{self.sel('pg_stat_user_tables_n_live_tup')}\n"
            f"    * ignoring ({table}) group_left {self.sel('pg_settings_autovacuum_vacuum_scale_factor')}\n"
            f"    + ignoring ({table}) group_left {self.sel('pg_settings_autovacuum_vacuum_threshold')}"
        )
        age = self.config.postgres_vacuum_age_seconds
        stale = " and ".join(
            f"(time() - {self.sel(f'pg_stat_user_tables_{last}')} > {age})"
            for last in ("last_autovacuum", "last_vacuum")
        )
        return self.subject.alert(
            NOT_VACUUMED,
            expr=f"max by ({table}) (\n  ({dead}\n    > {trigger})\n  and {stale}\n)",
            severity="warning",
            description=Description(
                f"Table {{schemaname}}.{{relname}} of database {{datname}} on {self.store.name} has {{value}} dead "
                f"rows, past its autovacuum trigger, and no vacuum for {age // 3600} hours."
            ),
            panel=PanelId.DB_DEAD_TUPLES,
            for_=self.config.postgres_not_vacuumed_for,
            case=self.cases.not_vacuumed(),
            threshold=f"dead rows past the autovacuum trigger, no vacuum for {age}s, for "
            f"{self.config.postgres_not_vacuumed_for}",
            checks=(_reads(dead), _psql(
                self.store,
                "SELECT relname, n_dead_tup, last_autovacuum, last_vacuum FROM pg_stat_user_tables "
                "ORDER BY n_dead_tup DESC LIMIT 10;",
            )),
        )

    def wraparound(self) -> Alert:
        used = f"max by (datname) ({self.sel('pg_database_wraparound_age_datfrozenxid_seconds')}) / {XID_SPACE}"
        limit = self.config.postgres_xid_age_share
        return self.subject.alert(
            WRAPAROUND,
            expr=f"{used} > {format(limit.normalize(), 'f')}",
            severity="warning",
            description=Description(
                f"Database {{datname}} on {self.store.name} has used {{value}} of its transaction IDs since its "
                f"oldest unfrozen one (alert above {_share(limit)}).",
                ValueFormat.PERCENT,
            ),
            panel=PanelId.DB_XID_AGE,
            for_=self.config.postgres_xid_age_for,
            case=self.cases.wraparound(),
            threshold=f"age(datfrozenxid) > {_share(limit)} of 2^31 for {self.config.postgres_xid_age_for}",
            checks=(_reads(used), _psql(
                self.store, "SELECT datname, age(datfrozenxid) FROM pg_database ORDER BY 2 DESC;"
            )),
        )

    def replication_lag(self) -> Alert:
        lag = f"max by (pod) ({self.sel('pg_replication_lag_seconds')})"
        limit = self.config.postgres_replication_lag_seconds
        return self.subject.alert(
            REPLICATION_LAG,
            expr=f"{lag} > {limit}",
            severity="warning",
            description=Description(
                f"Replica {{pod}} of {self.store.name} is {{value}} behind its primary.", ValueFormat.DURATION
            ),
            panel=PanelId.DB_REPLICATION_LAG,
            for_=self.config.postgres_replication_lag_for,
            case=self.cases.replication_lag(),
            threshold=f"> {limit}s for {self.config.postgres_replication_lag_for}",
            checks=(_reads(lag), _psql(
                self.store, "SELECT application_name, state, replay_lag FROM pg_stat_replication;"
            )),
        )

    def alerts(self) -> list[Alert]:
        found = [
            self.exporter_down(), self.down(), self.deadlocks(), self.rollbacks(), self.cache_hit(),
            self.not_vacuumed(), self.wraparound(),
        ]
        if self.store.replicas > 1:
            found.append(self.replication_lag())
        return found


class _Redis(_Store):
    exporter_doc = REDIS_EXPORTER_DOWN
    exporter = "redis_exporter"

    def down(self) -> Alert:
        up = self.sel("redis_up")
        return self.subject.alert(
            REDIS_DOWN,
            expr=f"min by (pod) ({up}) == 0",
            severity="critical",
            description=Description(
                f"redis_exporter in pod {{pod}} cannot reach {self.store.name} ({self.store.namespace}) "
                f"for {self.config.redis_down_for}."
            ),
            panel=PanelId.DB_REDIS_UP,
            for_=self.config.redis_down_for,
            case=self.cases.down("redis_up"),
            threshold=f"redis_up == 0 for {self.config.redis_down_for}",
            checks=(_reads(up), _redis_cli(self.store, "PING")),
        )

    def memory(self) -> Alert:
        # maxmemory 0 means no limit: such a Redis has nothing to compare with and stays out.
        used = (
            f"max by (pod) ({self.sel('redis_memory_used_bytes')}"
            f" / ({self.sel('redis_memory_max_bytes')} > 0))"
        )
        limit = self.config.redis_memory_share
        return self.subject.alert(
            REDIS_MEMORY,
            expr=f"{used} > {format(limit.normalize(), 'f')}",
            severity="warning",
            description=Description(
                f"{self.store.name} in pod {{pod}} uses {{value}} of its maxmemory (alert above {_share(limit)}).",
                ValueFormat.PERCENT,
            ),
            panel=PanelId.DB_REDIS_MEMORY,
            for_=self.config.redis_memory_for,
            case=self.cases.memory(),
            threshold=f"> {_share(limit)} of maxmemory for {self.config.redis_memory_for}",
            checks=(_reads(used), _redis_cli(self.store, "INFO memory"), _redis_cli(self.store, "--bigkeys")),
        )

    def _increase(
        self, doc: AlertDoc, metric: str, *, panel: PanelId, for_: str, what: str, check: RunbookCheck
    ) -> Alert:
        """`doc` fires while `metric`, a counter of failures, grew within the last 5 minutes."""
        increase = f"sum by (pod) (increase({self.sel(metric)}[5m]))"
        return self.subject.alert(
            doc,
            expr=f"{increase} > 0",
            severity="warning",
            description=Description(
                f"{self.store.name} in pod {{pod}} {what} in the last 5 minutes.", ValueFormat.NUMBER
            ),
            panel=panel,
            for_=for_,
            case=self.cases.increase(metric),
            threshold=f"any in 5m, for {for_}",
            checks=(_reads(increase), check),
        )

    def evictions(self) -> Alert:
        return self._increase(
            REDIS_EVICTIONS, "redis_evicted_keys_total", panel=PanelId.DB_REDIS_EVICTIONS,
            for_=self.config.redis_evictions_for, what="evicted {value} keys",
            check=_redis_cli(self.store, "INFO stats"),
        )

    def rejected(self) -> Alert:
        return self._increase(
            REDIS_REJECTED, "redis_rejected_connections_total", panel=PanelId.DB_REDIS_CLIENTS,
            for_=self.config.redis_rejected_for, what="rejected {value} connections",
            check=_redis_cli(self.store, "CLIENT LIST"),
        )

    def hit_ratio(self, target: Decimal) -> Alert:
        window = self.config.redis_hit_ratio_window
        hits = f"sum({_rate('redis_keyspace_hits_total', self.target, window)})"
        misses = f"sum({_rate('redis_keyspace_misses_total', self.target, window)})"
        ratio = f"{hits}\n/ ({hits} + {misses})"
        share = target / 100
        return self.subject.alert(
            REDIS_HIT_RATIO,
            expr=f"{ratio}\n< {format(share.normalize(), 'f')}",
            severity="warning",
            description=Description(
                f"{{value}} of the lookups in {self.store.name} found their key over {window} "
                f"(target {target.normalize():f}%).",
                ValueFormat.PERCENT,
            ),
            panel=PanelId.DB_REDIS_HIT_RATIO,
            for_=self.config.redis_hit_ratio_for,
            case=self.cases.hit_ratio(float(share)),
            threshold=f"< {target.normalize():f}% over {window} for {self.config.redis_hit_ratio_for}",
            checks=(_reads(ratio), _redis_cli(self.store, "INFO stats")),
        )

    def replica_link(self) -> Alert:
        link = f"min by (pod) ({self.sel('redis_master_link_up')})"
        return self.subject.alert(
            REDIS_REPLICA_LINK,
            expr=f"{link} == 0",
            severity="warning",
            description=Description(f"Replica {{pod}} of {self.store.name} has no link to its master."),
            panel=PanelId.DB_REDIS_REPLICATION,
            for_=self.config.redis_replication_for,
            case=self.cases.replica_link(),
            threshold=f"master_link_up == 0 for {self.config.redis_replication_for}",
            checks=(_reads(link), _redis_cli(self.store, "INFO replication")),
        )

    def replicas_missing(self) -> Alert:
        masters = self.sel("redis_instance_info", 'role="master"')
        connected = f"sum({self.sel('redis_connected_slaves')} and on (pod) {masters})"
        expected = f"{self.store.replicas} - count({masters})"
        return self.subject.alert(
            REDIS_REPLICAS_MISSING,
            expr=f"({connected} or on () vector(0))\n< {expected}",
            severity="warning",
            description=Description(
                f"The masters of {self.store.name} have {{value}} replicas connected; {self.store.replicas} pods "
                "less the masters should be."
            ),
            panel=PanelId.DB_REDIS_REPLICATION,
            for_=self.config.redis_replication_for,
            case=self.cases.replicas_missing(),
            threshold=f"connected replicas < {self.store.replicas} − masters for {self.config.redis_replication_for}",
            checks=(_reads(connected), _redis_cli(self.store, "INFO replication")),
        )

    def alerts(self) -> list[Alert]:
        found = [self.exporter_down(), self.down(), self.memory(), self.evictions(), self.rejected()]
        if self.store.cache_hit_target is not None:
            found.append(self.hit_ratio(self.store.cache_hit_target))
        if self.store.replicas > 1:
            found += [self.replica_link(), self.replicas_missing()]
        return found


def health_datastores(system: System) -> list[Datastore]:
    """Postgres and Redis datastores with a standard exporter, sorted by name."""
    kinds = (DatastoreKind.POSTGRES, DatastoreKind.REDIS)
    return sorted(
        (store for store in system.datastores if store.kind in kinds and store.metrics is not None),
        key=lambda store: store.name,
    )


def datastore_health_groups(system: System, config: RuleConfig) -> list[RuleGroup]:
    alerts: list[Alert] = []
    for store in health_datastores(system):
        build = _Postgres if store.kind is DatastoreKind.POSTGRES else _Redis
        alerts += build(system, config, store).alerts()
    if not alerts:
        return []
    return [RuleGroup(f"{system.name}-datastore-health", config.interval, tuple(alerts))]
