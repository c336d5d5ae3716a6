"""One reused libpq connection per source: opened on first use, reopened after it breaks, never two.

`PgSource` is the base of the sources that speak the PostgreSQL protocol (PostgreSQL, PgBouncer,
job tables): it owns the session, so each of them only says what to read on the connection.
"""

from __future__ import annotations

import math
import threading
from abc import abstractmethod
from collections.abc import Callable, Collection, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus
from psycopg.types.string import TextLoader

from obsbundle.exporters.config import PostgresConnection
from obsbundle.exporters.credentials import Secret
from obsbundle.exporters.families import Batch, Sample
from obsbundle.exporters.sources.base import Deadline, Source

T = TypeVar("T")
Connection = psycopg.Connection[tuple[Any, ...]]

# libpq waits at least two seconds for a connection, whatever is asked for.
_MIN_CONNECT_TIMEOUT = 2
_CONSOLE_NUMBERS = ("int2", "int4", "int8", "numeric")
"""The types of the numbers PgBouncer's console answers with."""


class PgSession:
    """The connection of one source. `admin_console` speaks only the simple query protocol, as
    PgBouncer's console requires, and never sets a statement_timeout (the console has none)."""

    def __init__(self, settings: PostgresConnection, admin_console: bool = False) -> None:
        self._settings = settings
        self._admin_console = admin_console
        self._conn: Connection | None = None
        self._statement_timeout_ms: int | None = None
        """What the open connection's statement_timeout is set to; None before it is set."""
        self._secret: Secret | None = None
        self._lock = threading.Lock()

    @property
    def secret(self) -> Secret | None:
        return self._secret

    def run(self, deadline: Deadline, work: Callable[[Connection], T]) -> T:
        """`work(connection)` on the open connection, with statement_timeout set to what is left of
        `deadline`. A connection left broken or inside a transaction is closed, to be reopened next time."""
        with self._lock:
            conn = self._connection(deadline)
            try:
                if not self._admin_console:
                    self._limit_statements(conn, deadline)
                return work(conn)
            except BaseException:
                if conn.closed or conn.broken or conn.info.transaction_status != TransactionStatus.IDLE:
                    self._close()
                raise

    def _limit_statements(self, conn: Connection, deadline: Deadline) -> None:
        """statement_timeout at what is left of the deadline, rounded down to a tenth of a second, so
        that the scrapes of an unchanged budget skip the round trip that would set it again."""
        milliseconds = max(1, int(deadline.left() * 10) * 100)
        if milliseconds != self._statement_timeout_ms:
            conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(milliseconds)))
            self._statement_timeout_ms = milliseconds

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        self._statement_timeout_ms = None
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _connection(self, deadline: Deadline) -> Connection:
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        self._close()
        settings = self._settings
        self._secret = settings.password.read()
        remaining = deadline.left()
        params: dict[str, Any] = {
            "host": settings.host,
            "port": settings.port,
            "user": settings.user,
            "dbname": settings.dbname,
            "sslmode": settings.sslmode,
            "application_name": settings.application_name,
            "connect_timeout": max(_MIN_CONNECT_TIMEOUT, math.ceil(remaining)),
            # A server that vanishes without closing the socket must not hold the source forever.
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
        }
        if settings.sslrootcert is not None:
            params["sslrootcert"] = str(settings.sslrootcert)
        if self._secret is not None:
            params["password"] = self._secret.reveal()
        if self._admin_console:
            self._conn = psycopg.connect(
                autocommit=True, prepare_threshold=None, cursor_factory=psycopg.ClientCursor, **params
            )
            # The console's numbers stay the text PgBouncer wrote: the counts are copied into the
            # answer as they are, with no int to make and no float to spell again.
            for number in _CONSOLE_NUMBERS:
                self._conn.adapters.register_loader(number, TextLoader)
        else:
            self._conn = psycopg.connect(autocommit=True, prepare_threshold=None, **params)
        return self._conn


class PgSource(Source):
    """A source read over its own PgSession: `collect` runs `_read` on the session's connection, and
    the session's password is the secret that error messages are scrubbed of."""

    def __init__(self, settings: PostgresConnection, *, admin_console: bool = False) -> None:
        super().__init__(settings.name)
        self._session = PgSession(settings, admin_console=admin_console)

    def collect(self, deadline: Deadline) -> Sequence[Sample | Batch]:
        return self._session.run(deadline, self._read)

    def close(self) -> None:
        self._session.close()

    def secrets(self) -> Sequence[Secret | None]:
        return (self._session.secret,)

    @abstractmethod
    def _read(self, conn: Connection) -> Sequence[Sample | Batch]:
        """The source's samples, read on `conn` (statement_timeout already set to the deadline)."""


def fetch_dicts(conn: Connection, query: str) -> list[dict[str, Any]]:
    """Rows of a parameterless query as {column: value}, for results read by column name."""
    with conn.cursor() as cursor:
        cursor.execute(query.encode())
        names = [column.name for column in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def fetch_columns(conn: Connection, query: str, wanted: Collection[str],
                  without: tuple[str, Any] | None = None) -> dict[str, Sequence[Any]]:
    """The `wanted` columns of a parameterless query's result, as {column: its values, one per row},
    less the rows whose column `without[0]` holds `without[1]`: a wide answer (PgBouncer's SHOW POOLS
    of a thousand pools, seventeen columns) is turned into columns in one pass, not into a dict per
    row. A wanted column the answer lacks is left out."""
    with conn.cursor() as cursor:
        cursor.execute(query.encode())
        names = [column.name for column in cursor.description or ()]
        rows = cursor.fetchall()
    if without is not None and without[0] in names:
        index, unwanted = names.index(without[0]), without[1]
        rows = [row for row in rows if row[index] != unwanted]
    if not rows:
        return {name: () for name in names if name in wanted}
    return {name: values for name, values in zip(names, zip(*rows, strict=True), strict=True) if name in wanted}
