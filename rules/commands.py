"""Shell commands for runbooks, spelled out from the inventory: the namespace, the pods' labels, the
StatefulSet's first pod, the exporter source. An on-call engineer copies them as they are, instead
of working out `<namespace>` and `<pod>` at 3 a.m.
"""

from __future__ import annotations

import shlex

from obsbundle.model import Controller, Datastore, Service, System
from obsbundle.rules.definitions import RunbookCheck


def label_selector(labels: dict[str, str]) -> str:
    """`app=storage-worker,tier=backend`: kubectl's `-l` argument."""
    return ",".join(f"{name}={value}" for name, value in sorted(labels.items()))


def _workload_ref(service: Service) -> str | None:
    """`deployment/storage-worker`: what `kubectl rollout` and `kubectl logs` take, None for Jobs."""
    match service.workload_controller:
        case Controller.DEPLOYMENT:
            return f"deployment/{service.name}"
        case Controller.STATEFULSET:
            return f"statefulset/{service.name}"
        case Controller.DAEMONSET:
            return f"daemonset/{service.name}"
        case Controller.ROLLOUT:
            return f"rollout/{service.name}"
        case None:
            return None


def workload_checks(service: Service) -> tuple[RunbookCheck, ...]:
    """Its pods, their recent logs and its rollout, in its own namespace."""
    namespace = shlex.quote(service.namespace)
    selector = shlex.quote(label_selector(service.labels_selector))
    commands = [
        f"kubectl -n {namespace} get pods -l {selector} -o wide",
        f"kubectl -n {namespace} logs -l {selector} --prefix --tail=50",
    ]
    reference = _workload_ref(service)
    if reference is not None:
        # Argo Rollouts' kubectl plugin reads a Rollout's status; `kubectl rollout` does not know it.
        status = (
            f"kubectl argo rollouts -n {namespace} get {reference}"
            if service.workload_controller is Controller.ROLLOUT
            else f"kubectl -n {namespace} rollout status {reference} --timeout=10s"
        )
        commands.append(status)
    return (RunbookCheck(f"{service.name}: pods, logs and rollout", "\n".join(commands)),)


def exec_in(store: Datastore, command: str) -> str | None:
    """`command` run in the datastore's first pod (`<statefulset>-0`), None when the inventory
    names no StatefulSet for it."""
    if store.statefulset is None:
        return None
    return f"kubectl -n {shlex.quote(store.namespace)} exec {store.statefulset}-0 -- {command}"


def psql(store: Datastore, sql: str) -> str | None:
    """`sql` through psql in the Postgres pod, as the superuser the images run as."""
    return exec_in(store, f"psql -U postgres -X -c {shlex.quote(sql)}")


def pgbouncer_console(system: System, source: str, command: str) -> RunbookCheck:
    """PgBouncer's admin console: the special database `pgbouncer`, reached at the address the
    exporter's source reads, as a user of its `stats_users` (or `admin_users`)."""
    code = (
        f"# host and port: the pool & queue exporter's source {source!r} (its config's sources list);\n"
        "# the user must be in PgBouncer's stats_users or admin_users.\n"
        f"psql -h <pgbouncer host> -p 6432 -U <stats user> pgbouncer -c {shlex.quote(command)}"
    )
    return RunbookCheck(f"PgBouncer {source} ({system.name}): {command}", code)
