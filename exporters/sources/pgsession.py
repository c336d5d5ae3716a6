"""One reused libpq connection per source: opened on first use, reopened after it breaks, never two.

`PgSource` is the base of the sources that speak the PostgreSQL protocol (PostgreSQL, PgBouncer,
job tables): it owns the session, so each of them only says what to read on the connection.
"""

from __future__ import annotations

import math
import threading
from abc import abstractmethod
from collections.abc import Callable, Collection, Sequence
from typing import Any, NamedTuple, TypeVar, cast

import psycopg
from psycopg import sql
from psycopg.pq import ExecStatus, TransactionStatus

from obsbundle.exporters.config import PostgresConnection
from obsbundle.exporters.credentials import Secret
from obsbundle.exporters.families import Batch, Sample
from obsbundle.exporters.sources.base import Deadline, Source

T = TypeVar("T")
Connection = psycopg.Connection[tuple[Any, ...]]

# libpq waits at least two seconds for a connection, whatever is asked for.
_MIN_CONNECT_TIMEOUT = 2


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


def fetch_together(conn: Connection, queries: Sequence[bytes]) -> list[list[tuple[Any, ...]]]:
    """The rows of each parameterless query, all sent in one simple-protocol message: one round trip,
    run back to back by the server in one transaction."""
    with conn.cursor() as cursor:
        cursor.execute(b";\n".join(queries))
        answers = [cursor.fetchall()]
        while cursor.nextset():
            answers.append(cursor.fetchall())
    if len(answers) != len(queries):
        raise psycopg.InterfaceError(f"{len(queries)} queries sent, {len(answers)} answers read")
    return answers


class ConsoleRead(NamedTuple):
    """What to read of one admin console command's answer."""

    command: str
    columns: Collection[str]
    """The columns wanted; one the answer lacks is left out."""
    without: tuple[str, str] | None = None
    """(column, text): the rows whose column holds that text are left out (the column is read too)."""


ConsoleColumns = dict[str, list[str | None]]
"""An answer's columns: {name: its texts as the console wrote them, one per row, None for NULL}."""


def read_console(conn: Connection, reads: Sequence[ConsoleRead]) -> list[ConsoleColumns]:
    """The columns of each command's answer, the commands run one after the other on `conn`.

    The console speaks only the simple query protocol, one command per message, so each command is
    sent as soon as the answer before it has arrived: while PgBouncer writes the next answer, this
    thread reads the cells of the last one. The cells are taken from libpq's result one by one, and
    only the wanted ones become Python objects: SHOW DATABASES of a thousand databases holds
    seventeen thousand cells, of which the PgBouncer source reads two thousand."""
    if not reads:
        return []
    pgconn, encoding = conn.pgconn, conn.info.encoding
    answers: list[ConsoleColumns] = []
    result = pgconn.exec_(reads[0].command.encode())
    for index, read in enumerate(reads):
        if result.status != ExecStatus.TUPLES_OK:
            raise psycopg.errors.error_from_result(result, encoding=encoding)
        if index + 1 < len(reads):
            pgconn.send_query(reads[index + 1].command.encode())
        answers.append(_columns(result, read, encoding))
        if index + 1 < len(reads):
            result = _last_result(pgconn)
    return answers


def _last_result(pgconn: psycopg.pq.abc.PGconn) -> psycopg.pq.abc.PGresult:
    """The answer of the command sent, once it has arrived whole (libpq waits without the GIL); an
    error, if the console answered with one. The connection is left ready for the next command."""
    results = []
    while (result := pgconn.get_result()) is not None:
        results.append(result)
    failed = [result for result in results if result.status != ExecStatus.TUPLES_OK]
    if not results:
        raise psycopg.OperationalError("the console sent no answer")
    return (failed or results)[0]


def _columns(result: psycopg.pq.abc.PGresult, read: ConsoleRead, encoding: str) -> ConsoleColumns:
    names = [(result.fname(index) or b"").decode(encoding) for index in range(result.nfields)]
    wanted = set(read.columns) if read.without is None else {*read.columns, read.without[0]}
    cell, rows = result.get_value, range(result.ntuples)
    columns = {name: _decoded([cell(row, index) for row in rows], encoding)
               for index, name in enumerate(names) if name in wanted}
    if read.without is not None and read.without[0] in columns:
        column, text = read.without
        unwanted = [row for row, value in enumerate(columns[column]) if value == text]
        for texts in columns.values():
            for row in reversed(unwanted):
                del texts[row]
    return columns


def _decoded(cells: list[bytes | None], encoding: str) -> list[str | None]:
    if None in cells:
        return [None if cell is None else cell.decode(encoding) for cell in cells]
    if not cells:
        return []
    # libpq's texts never hold a NUL byte: joined on it, a column is decoded in one call and split again.
    return cast("list[str | None]", b"\0".join(cast("list[bytes]", cells)).decode(encoding).split("\0"))
