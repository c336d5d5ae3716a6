"""The pool & queue exporter's deployment for one system: its configuration, Deployment, Service,
credentials Secret and a Kustomization, under `exporter/`.

The configuration has one source per datastore the exporter reads (Postgres and its PgBouncer,
RabbitMQ, Redis with the inventory's list queues), each named as the rules and dashboards select
it (`Datastore.source`), each reading its password from a file of the Secret. Addresses are the
in-cluster DNS name of the datastore's Service (`Datastore.service_name`, else its name); a
PgBouncer's is the Service named like its exporter source. The README beside them lists them.

The folder is its own Kustomization (`kubectl apply -k exporter/`), apart from the system's: the
Secret must exist first and is created from files that never enter the output folder, which the
writer replaces as a whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from obsbundle.documents import Document, Format
from obsbundle.labels import EXPORTER_NAME, EXPORTER_PORT, exporter_selector, exporter_service_name, object_labels
from obsbundle.model import Broker, Datastore, DatastoreKind, System
from obsbundle.monitors.workloads import needs_exporter
from obsbundle.settings import Settings

if TYPE_CHECKING:
    from obsbundle.config import Config

FOLDER = "exporter"
IMAGE = "obsbundle-exporter:0.1.0"
"""The image deploy/exporter/Dockerfile builds; a Kustomization `images:` entry retags it."""
LISTEN_PORT = 9187
SECRETS_MOUNT = "/etc/obsbundle-exporter/secrets"
CONFIG_MOUNT = "/etc/obsbundle-exporter/config.yaml"
MONITOR_ROLE = "obsbundle_monitor"
"""The Postgres login role with pg_monitor (docs/exporter.md)."""
RABBITMQ_USER = "obsbundle-monitor"
"""A RabbitMQ user tagged `monitoring` with no permissions on the vhost (docs/exporter.md)."""
PGBOUNCER_USER = "stats"
"""A user listed in PgBouncer's stats_users."""


def config_map_name(system: System) -> str:
    return f"{exporter_service_name(system)}-config"


def secret_name(system: System) -> str:
    return f"{exporter_service_name(system)}-credentials"


def password_key(source: str) -> str:
    """The Secret key, and file name under SECRETS_MOUNT, of a source's password."""
    return f"{source}-password"


def _address(store: Datastore, name: str | None = None) -> str:
    return f"{name or store.service_name or store.name}.{store.namespace}.svc"


def _password(source: str) -> dict[str, str]:
    return {"password_file": f"{SECRETS_MOUNT}/{password_key(source)}"}


def exporter_config(system: System) -> dict[str, Any]:
    """The exporter's configuration: one source per datastore it reads, sorted by name."""
    stores = sorted(system.datastores, key=lambda store: store.name)
    postgres: list[dict[str, Any]] = []
    pgbouncer: list[dict[str, Any]] = []
    rabbitmq: list[dict[str, Any]] = []
    redis: list[dict[str, Any]] = []
    for store in stores:
        match store.kind:
            case DatastoreKind.POSTGRES:
                postgres.append(
                    {"name": store.source, "host": _address(store), "port": 5432, "user": MONITOR_ROLE,
                     "dbname": "postgres", **_password(store.source)}
                )
                if store.pgbouncer_source is not None:
                    pgbouncer.append(
                        {"name": store.pgbouncer_source, "host": _address(store, store.pgbouncer_source),
                         "port": 6432, "user": PGBOUNCER_USER, **_password(store.pgbouncer_source)}
                    )
            case DatastoreKind.RABBITMQ:
                # The queues the rules alert on get their head message's age; the counts of every
                # queue come from rabbitmq_prometheus on the same host (port 15692).
                named = sorted(
                    q.name for q in system.queues if q.broker is Broker.RABBITMQ and q.datastore == store.name
                )
                rabbitmq.append(
                    {"name": store.source, "url": f"http://{_address(store)}:15672", "user": RABBITMQ_USER,
                     "vhost": "/", **_password(store.source), "queues": named}
                )
            case DatastoreKind.REDIS:
                lists = sorted(q.name for q in system.queues if q.broker is Broker.REDIS and q.datastore == store.name)
                redis.append(
                    {"name": store.source, "url": f"redis://{_address(store)}:6379/0", **_password(store.source),
                     "queues": lists}
                )
            case DatastoreKind.KAFKA | DatastoreKind.SQLITE:
                pass  # kafka_exporter reads Kafka; SQLite has no server
    config: dict[str, Any] = {"timeout": "10s", "timeout_margin": "500ms"}
    for key, sources in (("postgres", postgres), ("pgbouncer", pgbouncer), ("rabbitmq", rabbitmq), ("redis", redis)):
        if sources:
            config[key] = sources
    return config


def password_sources(system: System) -> list[str]:
    """Every source whose password the Secret holds, in config order."""
    config = exporter_config(system)
    return [source["name"] for key in ("postgres", "pgbouncer", "rabbitmq", "redis") for source in config.get(key, [])]


def _labels(system: System, settings: Settings) -> dict[str, str]:
    return {**object_labels(system, settings), **exporter_selector(system), "app.kubernetes.io/component": "exporter"}


def _node_selector(system: System) -> dict[str, str]:
    """Pinned next to Prometheus when the system has a node pool named like its monitoring namespace."""
    pools = {pool.name for pool in system.node_pools}
    namespace = system.monitoring.namespace
    return {system.node_pool_label: namespace} if namespace in pools else {}


def deployment(system: System, settings: Settings) -> dict[str, Any]:
    labels = _labels(system, settings)
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
            # Lets the non-root user read the Secret's files (mode 0440).
            "fsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "exporter",
                "image": IMAGE,
                "args": [f"--config={CONFIG_MOUNT}", f"--listen=0.0.0.0:{LISTEN_PORT}"],
                "ports": [{"name": EXPORTER_PORT, "containerPort": LISTEN_PORT, "protocol": "TCP"}],
                "readinessProbe": {"httpGet": {"path": "/-/healthy", "port": EXPORTER_PORT}, "periodSeconds": 10},
                "livenessProbe": {
                    "httpGet": {"path": "/-/healthy", "port": EXPORTER_PORT},
                    "periodSeconds": 30,
                    "failureThreshold": 3,
                },
                "resources": {
                    "requests": {"cpu": "20m", "memory": "64Mi"},
                    "limits": {"cpu": "200m", "memory": "128Mi"},
                },
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [
                    {"name": "config", "mountPath": CONFIG_MOUNT, "subPath": "config.yaml", "readOnly": True},
                    {"name": "credentials", "mountPath": SECRETS_MOUNT, "readOnly": True},
                ],
            }
        ],
        "volumes": [
            {"name": "config", "configMap": {"name": config_map_name(system)}},
            # A folder mount (no subPath): a rotated password reaches the running exporter, which
            # reads it again at each reconnection.
            {"name": "credentials", "secret": {"secretName": secret_name(system), "defaultMode": 0o440}},
        ],
    }
    selector = _node_selector(system)
    if selector:
        pod_spec["nodeSelector"] = selector
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": exporter_service_name(system), "namespace": system.monitoring.namespace, "labels": labels},
        # One replica: each replica holds its own connection per source, and Prometheus scrapes every pod.
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": exporter_selector(system)},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def service(system: System, settings: Settings) -> dict[str, Any]:
    """The Service the generated ServiceMonitor selects (its labels, port `metrics`)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": exporter_service_name(system), "namespace": system.monitoring.namespace,
            "labels": _labels(system, settings),
        },
        "spec": {
            "selector": exporter_selector(system),
            "ports": [{"name": EXPORTER_PORT, "port": LISTEN_PORT, "targetPort": EXPORTER_PORT, "protocol": "TCP"}],
        },
    }


def secret(system: System, settings: Settings) -> dict[str, Any]:
    """The credentials Secret's shape: its name and one key per source, every value left empty.
    It is not in the Kustomization, so applying the folder never overwrites the real one."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": secret_name(system), "namespace": system.monitoring.namespace,
                     "labels": _labels(system, settings)},
        "type": "Opaque",
        "stringData": {password_key(source): "" for source in password_sources(system)},
    }


def kustomization(system: System) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": system.monitoring.namespace,
        "resources": ["deployment.yaml", "service.yaml"],
        # The name hash rolls the Deployment whenever the configuration changes.
        "configMapGenerator": [{"name": config_map_name(system), "files": ["config.yaml"]}],
    }


def readme(system: System) -> str:
    sources = password_sources(system)
    files = " \\\n  ".join(f"--from-file={password_key(source)}=./{password_key(source)}" for source in sources)
    stores = sorted(
        (store for store in system.datastores if store.kind in (DatastoreKind.POSTGRES, DatastoreKind.RABBITMQ,
                                                                DatastoreKind.REDIS)),
        key=lambda store: store.name,
    )
    addresses = "\n".join(f"| {store.name} | {store.kind.value} | `{_address(store)}` |" for store in stores)
    waiting = sorted(q.name for q in system.queues if q.broker is Broker.POSTGRES)
    lines = [
        f"# The pool & queue exporter of {system.name}",
        "",
        f"Deploys `{EXPORTER_NAME}` in namespace `{system.monitoring.namespace}`, where the generated ServiceMonitor "
        f"`{exporter_service_name(system)}` scrapes it. Details: docs/exporter.md of obsbundle.",
        "",
        "1. Create the monitoring users: a Postgres role with `pg_monitor` "
        f"(`CREATE ROLE {MONITOR_ROLE} LOGIN; GRANT pg_monitor TO {MONITOR_ROLE};`), a RabbitMQ user "
        f"`{RABBITMQ_USER}` tagged `monitoring`, a PgBouncer user in `stats_users`.",
        "2. Create the Secret from files kept out of Git and out of this folder (the generator replaces it):",
        "",
        "```sh",
        f"kubectl -n {system.monitoring.namespace} create secret generic {secret_name(system)} \\\n  {files}",
        "```",
        "",
        "   `secret.yaml` shows the Secret's keys; it is not applied by the Kustomization.",
        "3. The addresses in `config.yaml` are each datastore's Service (inventory: `service_name`, else the "
        "datastore's name):",
        "",
        "| datastore | kind | address |",
        "|---|---|---|",
        addresses,
        "",
        f"4. Apply: `kubectl apply -k {FOLDER}/`. Retag the image with a Kustomization `images:` entry.",
    ]
    if waiting:
        lines += [
            "",
            f"Postgres job-table queues ({', '.join(waiting)}) need a `postgres_queues` entry naming the table, "
            "its status column and ready statuses (docs/exporter.md): the inventory does not know them.",
        ]
    return "\n".join(lines) + "\n"


def generate_exporter_manifests(system: System, config: Config) -> Iterator[Document]:
    """`exporter/`: config.yaml, deployment.yaml, service.yaml, secret.yaml, kustomization.yaml and a
    README, for a system whose datastores the exporter reads. Not listed in the system's own
    Kustomization: the folder is applied on its own, once its Secret exists."""
    if not needs_exporter(system):
        return
    settings = config.output
    yield Document(f"{FOLDER}/config.yaml", exporter_config(system))
    yield Document(f"{FOLDER}/deployment.yaml", deployment(system, settings))
    yield Document(f"{FOLDER}/service.yaml", service(system, settings))
    yield Document(f"{FOLDER}/secret.yaml", secret(system, settings))
    yield Document(f"{FOLDER}/kustomization.yaml", kustomization(system))
    yield Document(f"{FOLDER}/README.md", readme(system), Format.MARKDOWN)
