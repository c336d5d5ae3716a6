"""PgBouncer: clients and servers of each pool (SHOW POOLS) and pool sizes (SHOW DATABASES / CONFIG).

A user listed in PgBouncer's `stats_users` may run these; no admin rights are needed. The
console's own pseudo-database `pgbouncer` is left out: it pools nothing.
"""

from __future__ import annotations

from typing import Any

from obsbundle.exporters import families as f
from obsbundle.exporters.config import PgBouncerSource
from obsbundle.exporters.families import Sample
from obsbundle.exporters.sources.base import SourceError
from obsbundle.exporters.sources.pgsession import Connection, PgSource, fetch_dicts

_CONSOLE_DATABASE = "pgbouncer"


class PgBouncerPoolsSource(PgSource):
    kind = "pgbouncer"

    def __init__(self, settings: PgBouncerSource) -> None:
        super().__init__(settings, admin_console=True)

    def _read(self, conn: Connection) -> list[Sample]:
        samples: list[Sample] = []
        for pool in fetch_dicts(conn, "SHOW POOLS"):
            if pool["database"] == _CONSOLE_DATABASE:
                continue
            labels = (str(pool["database"]), str(pool["user"]))
            samples += [
                Sample(f.PGBOUNCER_CLIENT_ACTIVE, labels, _number(pool, "cl_active")),
                Sample(f.PGBOUNCER_CLIENT_WAITING, labels, _number(pool, "cl_waiting")),
                Sample(f.PGBOUNCER_SERVER_ACTIVE, labels, _number(pool, "sv_active")),
                Sample(f.PGBOUNCER_SERVER_IDLE, labels, _number(pool, "sv_idle")),
                # maxwait holds whole seconds; maxwait_us (PgBouncer 1.8+) the microseconds beyond them.
                Sample(f.PGBOUNCER_CLIENT_MAXWAIT, labels,
                       _number(pool, "maxwait") + float(pool.get("maxwait_us") or 0) / 1e6),
            ]
        databases = [row for row in fetch_dicts(conn, "SHOW DATABASES") if row["name"] != _CONSOLE_DATABASE]
        default_pool_size: float | None = None
        for database in databases:
            size = database.get("pool_size")
            if size is None or int(size) < 0:
                # Older PgBouncers print -1 for "the default": read default_pool_size once.
                if default_pool_size is None:
                    default_pool_size = _default_pool_size(conn)
                size = default_pool_size
            samples.append(Sample(f.PGBOUNCER_POOL_SIZE, (str(database["name"]),), float(size)))
        return samples


def _default_pool_size(conn: Connection) -> float:
    for row in fetch_dicts(conn, "SHOW CONFIG"):
        if row.get("key") == "default_pool_size":
            return float(row["value"])
    raise SourceError("SHOW CONFIG has no default_pool_size")


def _number(row: dict[str, Any], column: str) -> float:
    value = row.get(column)
    if value is None:
        raise SourceError(f"SHOW POOLS has no column {column}: is this PgBouncer?")
    return float(value)
