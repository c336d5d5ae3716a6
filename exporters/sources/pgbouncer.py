"""PgBouncer: clients and servers of each pool (SHOW POOLS) and pool sizes (SHOW DATABASES / CONFIG).

A user listed in PgBouncer's `stats_users` may run these; no admin rights are needed. The
console's own pseudo-database `pgbouncer` is left out: it pools nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import cast

from obsbundle.exporters import families as f
from obsbundle.exporters.config import PgBouncerSource
from obsbundle.exporters.families import Batch, Sample, WrittenNumbers, written_numbers
from obsbundle.exporters.sources.base import SourceError
from obsbundle.exporters.sources.pgsession import Connection, ConsoleRead, PgSource, fetch_dicts, read_console

_CONSOLE_DATABASE = "pgbouncer"


class PgBouncerPoolsSource(PgSource):
    kind = "pgbouncer"

    def __init__(self, settings: PgBouncerSource) -> None:
        super().__init__(settings, admin_console=True)

    def _read(self, conn: Connection) -> list[Sample | Batch]:
        pools, databases = read_console(conn, _READS)
        # One batch per family, its columns the pools' databases and users: a thousand pools are
        # five batches to write, not five thousand samples.
        labels = (_labels(pools, "database"), _labels(pools, "user"))
        batches: list[Sample | Batch] = [
            Batch(family, (), labels, _counts(pools, column)) for family, column in _POOL_COLUMNS
        ]
        batches.append(Batch(f.PGBOUNCER_CLIENT_MAXWAIT, (), labels, _waits(pools)))
        names = _labels(databases, "name")
        if "pool_size" not in databases:
            raise SourceError("SHOW DATABASES has no column pool_size: is this PgBouncer?")
        batches.append(Batch(f.PGBOUNCER_POOL_SIZE, (), (names,), _pool_sizes(conn, databases["pool_size"])))
        return batches


def _waits(pools: Columns) -> WrittenNumbers | list[float]:
    """The longest wait of each pool's clients: maxwait holds whole seconds, maxwait_us (PgBouncer
    1.8+) the microseconds beyond them."""
    micros = pools.get("maxwait_us")
    if micros is None or micros.count("0") == len(micros):
        return _counts(pools, "maxwait")  # nobody waits a fraction of a second: the seconds as written
    wholes = _texts(pools, "maxwait")
    return [float(whole or 0) + float(micro or 0) / 1e6 for whole, micro in zip(wholes, micros, strict=True)]


def _pool_sizes(conn: Connection, texts: Sequence[str | None]) -> WrittenNumbers | list[float]:
    written = _written(texts)
    if written is not None:
        return written
    default_pool_size: float | None = None
    sizes: list[float] = []
    for size in texts:
        if size is not None and int(size) >= 0:
            sizes.append(float(size))
            continue
        # Older PgBouncers print -1 for "the default": read default_pool_size once.
        if default_pool_size is None:
            default_pool_size = _default_pool_size(conn)
        sizes.append(default_pool_size)
    return sizes


_POOL_COLUMNS = (
    (f.PGBOUNCER_CLIENT_ACTIVE, "cl_active"),
    (f.PGBOUNCER_CLIENT_WAITING, "cl_waiting"),
    (f.PGBOUNCER_SERVER_ACTIVE, "sv_active"),
    (f.PGBOUNCER_SERVER_IDLE, "sv_idle"),
)
"""The families read straight from a SHOW POOLS column."""
_READS = (
    ConsoleRead("SHOW POOLS", frozenset({"database", "user", "maxwait", "maxwait_us",
                                          *(column for _, column in _POOL_COLUMNS)}),
                without=("database", _CONSOLE_DATABASE)),
    ConsoleRead("SHOW DATABASES", frozenset({"name", "pool_size"}), without=("name", _CONSOLE_DATABASE)),
)


def _default_pool_size(conn: Connection) -> float:
    for row in fetch_dicts(conn, "SHOW CONFIG"):
        if row.get("key") == "default_pool_size":
            return float(row["value"])
    raise SourceError("SHOW CONFIG has no default_pool_size")


Columns = Mapping[str, Sequence[str | None]]
"""Columns of a console answer as PgBouncer wrote them: {name: one text (None for NULL) per row}."""


def _labels(columns: Columns, name: str) -> Sequence[str]:
    texts = _texts(columns, name)
    return [text or "" for text in texts] if None in texts else cast("Sequence[str]", texts)


def _counts(columns: Columns, name: str) -> WrittenNumbers | list[float]:
    """A column of counts: the digits PgBouncer wrote, copied into the answer as they are."""
    texts = _texts(columns, name)
    written = _written(texts)
    if written is not None:
        return written
    return [math.nan if text is None else float(text) for text in texts]


def _written(texts: Sequence[str | None]) -> WrittenNumbers | None:
    """A column as PgBouncer wrote it, when it holds no NULL and only whole numbers."""
    return None if None in texts else written_numbers(cast("Sequence[str]", texts))


def _texts(columns: Columns, name: str) -> Sequence[str | None]:
    texts = columns.get(name)
    if texts is None:
        raise SourceError(f"PgBouncer's answer has no column {name}: is this PgBouncer?")
    return texts
