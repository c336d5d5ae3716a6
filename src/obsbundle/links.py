"""Stable Grafana dashboard uids, panel ids and URLs, so alerts can link to the panel that explains them.

Dashboards give the linked panels exactly these ids; rules build `dashboard_url` annotations
with `panel_url`. Keeping both here means a layout change cannot break a link silently.
"""

from __future__ import annotations

import hashlib
import re
from enum import IntEnum, StrEnum
from urllib.parse import quote, urlencode

from obsbundle.model import System


class Board(StrEnum):
    """The dashboards of a system; per-service and per-pool boards take the entity's name too."""

    OVERVIEW = "overview"
    API = "api"
    NODE_POOLS = "node-pools"
    DATABASE = "database"
    QUEUES = "queues"
    SLOS = "slos"
    GITOPS = "gitops"
    PLATFORM = "platform"
    SERVICE = "service"
    NODE_POOL = "node-pool"


class PanelId(IntEnum):
    """Ids of panels that alerts link to. Dashboards may add panels with other ids (200 and up)."""

    # service dashboard
    SERVICE_REQUEST_RATE = 1
    SERVICE_ERROR_RATIO = 2
    SERVICE_LATENCY = 3
    SERVICE_TARGETS_UP = 4
    SERVICE_CPU = 5
    SERVICE_MEMORY = 6
    SERVICE_RESTARTS = 7
    SERVICE_REPLICAS = 8
    SERVICE_PVC_USAGE = 9
    SERVICE_JOBS = 10
    SERVICE_SLO_BUDGET = 11
    SERVICE_SLO_BURN_RATE = 12
    SERVICE_CPU_THROTTLING = 18
    SERVICE_CONTAINERS = 19
    """Containers waiting (image pulls, config errors) and OOM-killed."""
    # node pool dashboard (one per pool)
    POOL_NODES_READY = 20
    POOL_CPU = 21
    POOL_MEMORY = 22
    POOL_DISK = 23
    POOL_NETWORK = 24
    POOL_CLOCK = 25
    POOL_PRESSURE = 26
    POOL_INODES = 27
    POOL_VOLUMES = 28
    # database dashboard
    DB_CONNECTIONS = 30
    DB_WAITING = 31
    DB_OLDEST_TRANSACTION = 32
    DB_PGBOUNCER_WAITING = 33
    DB_PGBOUNCER_MAXWAIT = 34
    DB_EXPORTER_UP = 35
    DB_VOLUME_USAGE = 36
    # database dashboard: datastore health from the standard exporters (postgres_exporter,
    # redis_exporter), in the gaps below FIRST_FREE_ID (dashboards/panels.py numbers unlinked panels
    # from 200 up, so linked ids must stay below it)
    DB_DATASTORE_EXPORTER_UP = 37
    DB_POSTGRES_UP = 38
    DB_DEADLOCKS = 39
    DB_ROLLBACKS = 44
    DB_CACHE_HIT = 45
    DB_DEAD_TUPLES = 46
    DB_XID_AGE = 47
    DB_REPLICATION_LAG = 48
    DB_REDIS_UP = 49
    DB_REDIS_MEMORY = 52
    DB_REDIS_HIT_RATIO = 53
    DB_REDIS_EVICTIONS = 54
    DB_REDIS_CLIENTS = 55
    """Connected clients and rejected connections."""
    DB_REDIS_REPLICATION = 56
    # queues dashboard
    QUEUE_BACKLOG = 40
    QUEUE_OLDEST_AGE = 41
    QUEUE_CONSUMERS = 42
    QUEUE_KAFKA_LAG = 43
    # queues dashboard: broker health (rabbitmq_prometheus, kafka_exporter)
    QUEUE_RABBITMQ_NODES = 90
    QUEUE_RABBITMQ_ALARMS = 91
    QUEUE_RABBITMQ_MEMORY = 92
    QUEUE_RABBITMQ_FDS = 93
    QUEUE_RABBITMQ_UNROUTABLE = 94
    QUEUE_KAFKA_BROKERS = 95
    QUEUE_KAFKA_PARTITIONS = 96
    # slo dashboard
    SLO_BUDGET = 50
    SLO_BURN_RATE = 51
    # gitops dashboard
    GITOPS_SYNC = 60
    GITOPS_HEALTH = 61
    # overview
    OVERVIEW_ALERTS = 70
    OVERVIEW_NODES = 71
    # platform dashboard (control plane, cert-manager)
    PLATFORM_APISERVER_BUDGET = 140
    PLATFORM_APISERVER_ERRORS = 141
    PLATFORM_APISERVER_CLIENT_CERTS = 142
    PLATFORM_CONTROL_PLANE_UP = 143
    PLATFORM_ETCD_LEADER = 144
    PLATFORM_ETCD_DB_SIZE = 145
    PLATFORM_ETCD_DISK = 146
    PLATFORM_CERT_EXPIRY = 147
    PLATFORM_CERT_NOT_READY = 148
    # external dependencies: a row on the dashboard of each service that uses one
    DEPENDENCY_SUCCESS = 80
    DEPENDENCY_DURATION = 81
    DEPENDENCY_CERTIFICATE = 82


def dashboard_uid(system: System | str, board: Board, entity: str | None = None) -> str:
    """A uid derived from names only: stable across runs, at most Grafana's 40 characters."""
    system_name = system if isinstance(system, str) else system.name
    readable = "-".join(part for part in (system_name, board.value, entity) if part)
    readable = re.sub(r"[^a-zA-Z0-9-]", "-", readable)
    if len(readable) <= 40:
        return readable
    digest = hashlib.sha256(readable.encode()).hexdigest()[:8]
    return f"{readable[:31]}-{digest}"


def dashboard_url(system: System, board: Board, entity: str | None = None, **variables: str) -> str:
    """Absolute URL of a dashboard, with template variables set (`var-<name>=<value>`)."""
    uid = dashboard_uid(system, board, entity)
    base = system.monitoring.grafana_url.rstrip("/")
    query = urlencode({f"var-{name}": value for name, value in sorted(variables.items())})
    return f"{base}/d/{quote(uid)}" + (f"?{query}" if query else "")


def panel_url(system: System, board: Board, panel: PanelId, entity: str | None = None, **variables: str) -> str:
    """URL that opens one panel of a dashboard on its own (`viewPanel`)."""
    url = dashboard_url(system, board, entity, **variables)
    return f"{url}{'&' if '?' in url else '?'}viewPanel={int(panel)}"
