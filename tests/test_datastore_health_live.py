"""The datastore health alerts against real servers and their real exporters.

PostgreSQL 15 (Debian) with Debian's postgres_exporter 0.11.1 and deploy/postgres-exporter/queries.yaml,
and Redis 7 (Debian) with Debian's redis_exporter 1.45, are scraped every second by a real
Prometheus under the target labels their generated monitors give them (EcoEco's `postgresql` and
`redis` in namespace `default`; Aegis's `redis`, a master and a replica, in `aegis-production`).
Each test forces a condition on the real server and asks Prometheus the generated alert's
expression exactly as it is written (without its `for`), with the rules' default thresholds.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from psycopg import errors

from obsbundle.config import DEFAULT_CONFIG
from obsbundle.loader import load_inventory
from obsbundle.model import Datastore, System
from obsbundle.monitors.datastores import datastore_monitor
from obsbundle.rules.datastore_health import datastore_health_groups
from obsbundle.rules.definitions import Alert
from obsbundle.settings import Settings
from obsbundle.stacks import workload_target_labels
from obsbundle.tools.processes import ManagedProcess, free_port, require_binary, wait_until
from obsbundle.tools.prometheus import PrometheusServer, start_prometheus
from tests.support.servers_db import PostgresServer, RedisServer, postgres_server, redis_server

pytestmark = pytest.mark.servers

REPO = Path(__file__).resolve().parent.parent
QUERIES = REPO / "deploy" / "postgres-exporter" / "queries.yaml"
SCRAPE_SECONDS = 1
POSTGRES_SCRAPE_SECONDS = 3
MONITOR, MONITOR_PASSWORD = "monitor", "monitor-secret"
APP = "app"
PASSWORD = "redis-secret"


def _system(name: str) -> System:
    (system,) = [s for s in load_inventory([REPO / "inventory"]).systems if s.name == name]
    return system


def _alerts(system: System, datastore: str) -> dict[str, Alert]:
    (group,) = datastore_health_groups(system, DEFAULT_CONFIG.rules)
    return {alert.name: alert for alert in group.alerts if alert.labels["datastore"] == datastore}


def _target(system: System, store: Datastore, pod: str) -> dict[str, str]:
    """The generated monitor's target labels, with the values the cluster fills in for `pod`;
    `instance` stays Prometheus's own (the target's address)."""
    labels = workload_target_labels(datastore_monitor(system, store, Settings()))
    cluster = {"job": f"{store.name}-metrics", "service": store.name, "pod": pod, "container": "metrics"}
    return {name: value or cluster[name] for name, value in labels.items() if name != "instance"}


ECOECO, AEGIS = _system("ecoeco"), _system("aegis")
PG = _alerts(ECOECO, "postgresql")
REDIS = _alerts(ECOECO, "redis")
REPLICATED = _alerts(AEGIS, "redis")


@contextmanager
def _exporter(name: str, argv: list[str], env: dict[str, str], root: Path) -> Iterator[int]:
    port = free_port()
    process = ManagedProcess(name, [*argv, f"--web.listen-address=127.0.0.1:{port}"], root, env).start()
    try:
        def answers() -> bool:
            if not process.alive():
                raise AssertionError(f"{name} exited:\n{process.log_tail()}")
            try:
                return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        wait_until(answers, 20, f"{name} on port {port}")
        yield port
    finally:
        process.stop()


def _redis_exporter(server: RedisServer, root: Path) -> Any:
    binary = require_binary("prometheus-redis-exporter", "prometheus-redis-exporter")
    return _exporter(f"redis-exporter-{server.port}", [binary, f"--redis.addr=redis://127.0.0.1:{server.port}"],
                     {"REDIS_PASSWORD": server.password}, root)


@dataclass
class Servers:
    postgres: PostgresServer
    cache: RedisServer
    master: RedisServer
    replica: RedisServer
    prometheus: PrometheusServer


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    root = tmp_path_factory.mktemp("datastores")
    with ExitStack() as stack:
        postgres = stack.enter_context(postgres_server())
        postgres.create_role(MONITOR, MONITOR_PASSWORD, "pg_monitor")
        postgres.create_database(APP)
        # Deadlocks are detected after deadlock_timeout (1 s by default): short, so that many fit a test.
        postgres.execute("ALTER SYSTEM SET deadlock_timeout = '20ms'")
        postgres.execute("SELECT pg_reload_conf()")
        postgres.execute("CREATE TABLE accounts (id int PRIMARY KEY, balance int)", dbname=APP)
        postgres.execute("INSERT INTO accounts SELECT generate_series(1, 1000), 0", dbname=APP)
        dsn = f"postgresql://{MONITOR}:{MONITOR_PASSWORD}@127.0.0.1:{postgres.port}/{APP}?sslmode=disable"
        binary = require_binary("prometheus-postgres-exporter", "prometheus-postgres-exporter")
        pg_port = stack.enter_context(_exporter(
            "postgres-exporter", [binary, f"--extend.query-path={QUERIES}"], {"DATA_SOURCE_NAME": dsn}, root,
        ))
        cache, master, replica = (stack.enter_context(redis_server(PASSWORD)) for _ in range(3))
        replica.client().config_set("masterauth", PASSWORD)
        replica.client().replicaof("127.0.0.1", master.port)
        ports = {name: stack.enter_context(_redis_exporter(server, root))
                 for name, server in (("cache", cache), ("master", master), ("replica", replica))}
        postgres_target = (_target(ECOECO, ECOECO.datastore("postgresql"), "postgresql-0"), pg_port)
        targets = [
            (_target(ECOECO, ECOECO.datastore("redis"), "redis-0"), ports["cache"]),
            (_target(AEGIS, AEGIS.datastore("redis"), "redis-0"), ports["master"]),
            (_target(AEGIS, AEGIS.datastore("redis"), "redis-1"), ports["replica"]),
        ]
        config = {
            "global": {"scrape_interval": f"{SCRAPE_SECONDS}s", "scrape_timeout": f"{SCRAPE_SECONDS}s"},
            "scrape_configs": [
                {
                    "job_name": "datastores",
                    "static_configs": [
                        {"targets": [f"127.0.0.1:{port}"], "labels": labels} for labels, port in targets
                    ],
                },
                {
                    # postgres_exporter 0.11 answers a scrape about 1 s late once its server refuses
                    # connections (it waits before retrying): within a 1 s timeout that scrape would
                    # fail and hide the pg_up 0 the down alert reads. Stacks time scrapes out at 10 s.
                    "job_name": "postgres",
                    "scrape_interval": f"{POSTGRES_SCRAPE_SECONDS}s",
                    "scrape_timeout": f"{POSTGRES_SCRAPE_SECONDS}s",
                    "static_configs": [
                        {"targets": [f"127.0.0.1:{postgres_target[1]}"], "labels": postgres_target[0]},
                    ],
                },
            ],
        }
        prometheus = start_prometheus(root / "prometheus", config)
        stack.callback(prometheus.stop)
        wait_until(lambda: len(prometheus.query('up{service=~"postgresql|redis"} == 1')) == 4, 30,
                   "Prometheus to scrape the four exporters")
        wait_until(lambda: bool(prometheus.query('redis_master_link_up{service="redis",pod="redis-1"} == 1')), 30,
                   "the replica's link to its master")
        yield Servers(postgres, cache, master, replica, prometheus)


def _series(prometheus: PrometheusServer, expr: str) -> list[tuple[dict[str, str], float]]:
    return [(sample["metric"], float(sample["value"][1])) for sample in prometheus.query(expr)]


def _until(
    prometheus: PrometheusServer, expr: str, what: str, timeout: float = 90
) -> list[tuple[dict[str, str], float]]:
    wait_until(lambda: bool(prometheus.query(expr)), timeout, what, interval=0.5)
    return _series(prometheus, expr)


def _inner(alert: Alert) -> str:
    """The alert's expression without its final comparison: the value it compares."""
    return alert.expr.rsplit(">", 1)[0] if ">" in alert.expr.splitlines()[-1] else alert.expr.rsplit("<", 1)[0]


# --- PostgreSQL ------------------------------------------------------------------------------------


def test_the_postgres_series_the_rules_read_return_data_under_the_monitor_labels_and_the_alerts_stay_quiet(
    servers: Servers,
) -> None:
    prometheus = servers.prometheus
    assert _series(prometheus, 'pg_up{namespace="default",service="postgresql"}')[0][1] == 1
    for name in ("PostgresDown", "PostgresTransactionIdWraparound", "PostgresDeadlocks", "PostgresHighRollbackRatio"):
        assert _series(prometheus, PG[name].expr) == [], name
    # A primary: no lag (Aegis's replicated Postgres reads the same series, per pod).
    assert [value for _, value in _series(prometheus, 'pg_replication_lag_seconds{service="postgresql"}')] == [0]
    # The wraparound share and the table counts are read (a young cluster: far below any threshold).
    (wraparound,) = [value for labels, value in _series(prometheus, _inner(PG["PostgresTransactionIdWraparound"]))
                     if labels == {"datname": APP}]
    assert 0 < wraparound < 0.001
    live = _series(prometheus, 'pg_stat_user_tables_n_live_tup{service="postgresql",relname="accounts"}')
    assert [value for _, value in live] == [1000]


def _deadlock(dsn: str) -> None:
    """Two sessions update rows 1 and 2 in opposite orders; PostgreSQL aborts one of them."""
    barrier = threading.Barrier(2)

    def session(first: int, second: int) -> None:
        with psycopg.connect(dsn, autocommit=False) as conn:
            conn.execute("UPDATE accounts SET balance = balance + 1 WHERE id = %s", [first])
            barrier.wait()
            try:
                conn.execute("UPDATE accounts SET balance = balance + 1 WHERE id = %s", [second])
                conn.commit()
            except errors.DeadlockDetected:
                conn.rollback()

    threads = [threading.Thread(target=session, args=pair) for pair in ((1, 2), (2, 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_deadlocks_between_two_sessions_make_the_deadlock_alert_return_the_database(servers: Servers) -> None:
    """Above 5 a minute over the 5m rate: more than 25 deadlocks in the window."""
    prometheus, postgres = servers.prometheus, servers.postgres
    alert = PG["PostgresDeadlocks"]
    assert _series(prometheus, alert.expr) == []
    dsn = f"host={postgres.socket_dir} port={postgres.port} user=postgres dbname={APP}"
    for _ in range(30):
        _deadlock(dsn)
    (deadlocks,) = postgres.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = %s", [APP])
    assert deadlocks[0] == 30
    fired = _until(prometheus, alert.expr, "the deadlock alert's expression to return the database")
    assert [labels for labels, _ in fired] == [{"datname": APP}]
    assert fired[0][1] > DEFAULT_CONFIG.rules.postgres_deadlocks_per_minute


def test_rolled_back_transactions_make_the_rollback_ratio_alert_return_the_database(servers: Servers) -> None:
    prometheus, postgres = servers.prometheus, servers.postgres
    alert = PG["PostgresHighRollbackRatio"]
    with psycopg.connect(host=str(postgres.socket_dir), port=postgres.port, user="postgres", dbname=APP) as conn:
        for _ in range(200):
            conn.execute("SELECT balance FROM accounts WHERE id = 3")
            conn.rollback()
    fired = _until(prometheus, alert.expr, "the rollback ratio alert's expression to return the database")
    assert [labels for labels, _ in fired] == [{"datname": APP}]
    assert fired[0][1] > float(DEFAULT_CONFIG.rules.postgres_rollback_ratio)


def test_the_cache_hit_ratio_is_read_per_database_from_the_block_counters(servers: Servers) -> None:
    ratios = dict((labels["datname"], value)
                  for labels, value in _series(servers.prometheus, _inner(PG["PostgresCacheHitRatioLow"])))
    assert APP in ratios and 0 < ratios[APP] <= 1


def test_dead_rows_past_the_autovacuum_trigger_of_a_table_never_vacuumed_fire_and_a_vacuum_clears_them(
    servers: Servers,
) -> None:
    """Autovacuum off for the table, 400 of its 1,000 rows deleted: past 50 + 0.2 × live rows, and no
    vacuum ever (a last vacuum at 0, older than 10 hours). A manual VACUUM puts it at now."""
    prometheus, postgres = servers.prometheus, servers.postgres
    alert = PG["PostgresTableNotVacuumed"]
    postgres.execute("ALTER TABLE accounts SET (autovacuum_enabled = false)", dbname=APP)
    postgres.execute("DELETE FROM accounts WHERE id > 600", dbname=APP)
    fired = _until(prometheus, alert.expr, "the not-vacuumed alert's expression to return the table")
    # 400 deleted rows, and those the deadlock tests' updates left behind.
    assert [labels for labels, _ in fired] == [{"datname": APP, "schemaname": "public", "relname": "accounts"}]
    assert fired[0][1] >= 400
    postgres.execute("VACUUM accounts", dbname=APP)
    wait_until(lambda: not prometheus.query(alert.expr), 30, "a vacuum to clear the not-vacuumed alert", interval=0.5)


def test_a_stopped_postgres_makes_the_down_alert_return_its_pod(servers: Servers) -> None:
    """Last of the Postgres tests: the server does not come back."""
    prometheus = servers.prometheus
    alert = PG["PostgresDown"]
    assert _series(prometheus, alert.expr) == []
    servers.postgres.stop()
    fired = _until(prometheus, alert.expr, "the down alert's expression to return the pod")
    assert fired == [({"pod": "postgresql-0"}, 0.0)]
    assert _series(prometheus, PG["PostgresExporterDown"].expr) == []


# --- Redis -----------------------------------------------------------------------------------------


def test_the_redis_series_the_rules_read_return_data_and_the_alerts_stay_quiet(servers: Servers) -> None:
    prometheus = servers.prometheus
    assert [value for _, value in _series(prometheus, 'redis_up{namespace="default",service="redis"}')] == [1]
    for name in ("RedisDown", "RedisMemoryHigh", "RedisEvictingKeys", "RedisRejectingConnections"):
        assert _series(prometheus, REDIS[name].expr) == [], name
    # maxmemory 0 (no limit): the memory alert has nothing to compare with.
    assert _series(prometheus, _inner(REDIS["RedisMemoryHigh"])) == []


def test_a_small_maxmemory_and_writes_make_the_memory_and_eviction_alerts_return_the_pod(servers: Servers) -> None:
    prometheus, client = servers.prometheus, servers.cache.client()
    client.config_set("maxmemory-policy", "allkeys-lru")
    client.config_set("maxmemory", str(2 * 2**20))
    value = "x" * 1024
    for batch in range(10):
        pipe = client.pipeline(transaction=False)
        for n in range(500):
            pipe.set(f"session:{batch}:{n}", value)
        pipe.execute()
    assert int(client.info("stats")["evicted_keys"]) > 0
    evicted = _until(prometheus, REDIS["RedisEvictingKeys"].expr, "the eviction alert's expression to return the pod")
    assert [labels for labels, _ in evicted] == [{"pod": "redis-0"}] and evicted[0][1] > 0
    memory = _until(prometheus, REDIS["RedisMemoryHigh"].expr, "the memory alert's expression to return the pod")
    assert [labels for labels, _ in memory] == [{"pod": "redis-0"}]
    assert memory[0][1] > float(DEFAULT_CONFIG.rules.redis_memory_share)


def test_misses_drop_the_hit_ratio_below_the_inventory_target_and_hits_raise_it_above(servers: Servers) -> None:
    """EcoEco's Redis has cache_hit_target 70: the alert compares with 0.7."""
    prometheus, client = servers.prometheus, servers.cache.client()
    alert = REDIS["RedisCacheHitRatioLow"]
    assert alert.expr.endswith("< 0.7")
    client.set("hit", "1")
    for _ in range(300):
        client.get("hit")
    ratio = _inner(alert)
    wait_until(lambda: any(value > 0.7 for _, value in _series(prometheus, ratio)), 30, "the hit ratio above 70 %")
    assert _series(prometheus, alert.expr) == []
    for n in range(3000):
        client.get(f"missing:{n}")
    fired = _until(prometheus, alert.expr, "the hit ratio alert's expression to return")
    assert [labels for labels, _ in fired] == [{}] and fired[0][1] < 0.7


def test_a_master_with_one_replica_of_the_five_aegis_expects_makes_the_replicas_alert_return_the_count(
    servers: Servers,
) -> None:
    """Aegis's Redis has 6 replicas in the inventory: one master and five replicas."""
    fired = _series(servers.prometheus, REPLICATED["RedisReplicasMissing"].expr)
    assert fired == [({}, 1.0)]
    assert _series(servers.prometheus, REPLICATED["RedisReplicaLinkDown"].expr) == []


def test_a_replica_pointed_at_a_dead_master_makes_the_link_alert_return_its_pod(servers: Servers) -> None:
    prometheus = servers.prometheus
    alert = REPLICATED["RedisReplicaLinkDown"]
    servers.replica.client().replicaof("127.0.0.1", free_port())
    fired = _until(prometheus, alert.expr, "the link alert's expression to return the replica")
    assert fired == [({"pod": "redis-1"}, 0.0)]
    # The master drops the replica from connected_slaves once its link closes, a scrape or two
    # after the replica reports its own link down.
    missing = REPLICATED["RedisReplicasMissing"].expr
    wait_until(lambda: _series(prometheus, missing) == [({}, 0.0)], 30, "the master to count no replica", interval=0.5)


def test_a_stopped_redis_makes_the_down_alert_return_its_pod(servers: Servers) -> None:
    prometheus = servers.prometheus
    alert = REDIS["RedisDown"]
    servers.cache.stop()
    fired = _until(prometheus, alert.expr, "the down alert's expression to return the pod")
    assert fired == [({"pod": "redis-0"}, 0.0)]
    assert _series(prometheus, REDIS["RedisExporterDown"].expr) == []


def test_no_alert_expression_of_either_datastore_fails_to_parse_in_prometheus(servers: Servers) -> None:
    for alert in [*PG.values(), *REDIS.values(), *REPLICATED.values()]:
        servers.prometheus.query(alert.expr)

