"""PgBouncer: clients and servers of each pool (SHOW POOLS) and pool sizes (SHOW DATABASES / CONFIG).

A user listed in PgBouncer's `stats_users` may run these; no admin rights are needed. The
console's own pseudo-database `pgbouncer` is left out: it pools nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import compress
from typing import Any, TypeVar

from obsbundle.exporters import families as f
from obsbundle.exporters.config import PgBouncerSource
from obsbundle.exporters.families import Batch, Sample
from obsbundle.exporters.sources.base import SourceError
from obsbundle.exporters.sources.pgsession import Connection, PgSource, fetch_columns, fetch_dicts

_CONSOLE_DATABASE = "pgbouncer"
T = TypeVar("T")


class PgBouncerPoolsSource(PgSource):
    kind = "pgbouncer"

    def __init__(self, settings: PgBouncerSource) -> None:
        super().__init__(settings, admin_console=True)

    def _read(self, conn: Connection) -> list[Sample | Batch]:
        pools = _without_console(fetch_columns(conn, "SHOW POOLS", _POOLS_READ), "database")
        # One batch per family, its columns the pools' databases and users: a thousand pools are
        # five batches to write, not five thousand samples.
        labels = (_column(pools, "database", str), _column(pools, "user", str))
        batches: list[Sample | Batch] = [
            Batch(family, (), labels, _column(pools, column, float)) for family, column in _POOL_COLUMNS
        ]
        # maxwait holds whole seconds; maxwait_us (PgBouncer 1.8+) the microseconds beyond them.
        waits = _column(pools, "maxwait", float)
        if "maxwait_us" in pools:
            waits = [whole + float(micro or 0) / 1e6 for whole, micro in zip(waits, pools["maxwait_us"], strict=True)]
        batches.append(Batch(f.PGBOUNCER_CLIENT_MAXWAIT, (), labels, waits))
        databases = _without_console(fetch_columns(conn, "SHOW DATABASES", _DATABASES_READ), "name")
        default_pool_size: float | None = None
        sizes: list[float] = []
        for size in databases.get("pool_size", ()):
            if size is not None and int(size) >= 0:
                sizes.append(float(size))
                continue
            # Older PgBouncers print -1 for "the default": read default_pool_size once.
            if default_pool_size is None:
                default_pool_size = _default_pool_size(conn)
            sizes.append(default_pool_size)
        names = _column(databases, "name", str)
        if len(sizes) != len(names):
            raise SourceError("SHOW DATABASES has no column pool_size: is this PgBouncer?")
        batches.append(Batch(f.PGBOUNCER_POOL_SIZE, (), (names,), sizes))
        return batches


_POOL_COLUMNS = (
    (f.PGBOUNCER_CLIENT_ACTIVE, "cl_active"),
    (f.PGBOUNCER_CLIENT_WAITING, "cl_waiting"),
    (f.PGBOUNCER_SERVER_ACTIVE, "sv_active"),
    (f.PGBOUNCER_SERVER_IDLE, "sv_idle"),
)
"""The families read straight from a SHOW POOLS column."""
_POOLS_READ = frozenset({"database", "user", "maxwait", "maxwait_us", *(column for _, column in _POOL_COLUMNS)})
_DATABASES_READ = frozenset({"name", "pool_size"})


def _default_pool_size(conn: Connection) -> float:
    for row in fetch_dicts(conn, "SHOW CONFIG"):
        if row.get("key") == "default_pool_size":
            return float(row["value"])
    raise SourceError("SHOW CONFIG has no default_pool_size")


def _without_console(columns: dict[str, tuple[Any, ...]], name: str) -> dict[str, tuple[Any, ...]]:
    """The rows whose `name` column is not the console's pseudo-database."""
    keep = [value != _CONSOLE_DATABASE for value in columns.get(name, ())]
    if all(keep):
        return columns
    return {column: tuple(compress(values, keep)) for column, values in columns.items()}


def _column(columns: dict[str, tuple[Any, ...]], name: str, kind: Callable[[Any], T]) -> list[T]:
    values = columns.get(name)
    if values is None:
        raise SourceError(f"PgBouncer's answer has no column {name}: is this PgBouncer?")
    return list(map(kind, values))
