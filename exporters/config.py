"""The exporter's configuration file: validated once into frozen models, or refused with located messages.

Errors read like the inventory's: `exporter.yaml: postgres[0].password_file: cannot read the
password file … (got '/secrets/pg')`, and the command exits 2. Passwords are never inline: a
source names a file (`password_file`) or an environment variable (`password_env`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from obsbundle.durations import parse_duration_ms
from obsbundle.errors import InputError, KeyPath, Problem, format_key_path
from obsbundle.exporters.credentials import PasswordRef, scrub
from obsbundle.loader import read_document

DEFAULT_APPLICATION_NAME = "obsbundle-exporter"
"""application_name of the exporter's Postgres sessions and client name of its Redis connections."""


def _check_duration(value: str) -> str:
    parse_duration_ms(value)
    return value


Duration = Annotated[str, AfterValidator(_check_duration)]
SourceName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=63)]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
Port = Annotated[int, Field(ge=1, le=65535)]
NonEmpty = Annotated[str, Field(min_length=1)]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class WithPassword(Frozen):
    """A source that may log in with a password kept in a file or an environment variable."""

    password_file: Path | None = Field(default=None, description="File holding the password (a mounted Secret).")
    password_env: EnvName | None = Field(default=None, description="Environment variable holding the password.")

    @model_validator(mode="after")
    def _one_place(self) -> WithPassword:
        if self.password_file is not None and self.password_env is not None:
            raise ValueError("give the password either in password_file or in password_env, not both")
        return self

    @property
    def password(self) -> PasswordRef:
        return PasswordRef(self.password_file, self.password_env)


SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]


class PostgresConnection(WithPassword):
    """How to reach a PostgreSQL server (or PgBouncer) with libpq."""

    name: SourceName
    host: NonEmpty = Field(description="Host name, IP address, or a Unix socket folder (starting with /).")
    port: Port = 5432
    user: NonEmpty
    dbname: NonEmpty = "postgres"
    sslmode: SslMode = "prefer"
    sslrootcert: Path | None = None
    application_name: NonEmpty = DEFAULT_APPLICATION_NAME


class PostgresSource(PostgresConnection):
    """Server-side connection and activity statistics of one PostgreSQL server."""


class PgBouncerSource(PostgresConnection):
    """PgBouncer's admin console (a user listed in stats_users is enough)."""

    port: Port = 6432
    dbname: NonEmpty = "pgbouncer"


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL of the management API, e.g. http://rabbitmq:15672")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not hold credentials: put the user in `user` and the password in password_file")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query string or fragment")
    return value.rstrip("/")


# rabbitmq_prometheus listens on 15692 (15691 with TLS) wherever the management API does.
_PLUGIN_PORTS = {"http": 15692, "https": 15691}


def _check_prometheus_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL of rabbitmq_prometheus, e.g. http://rabbitmq:15692")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not hold credentials: rabbitmq_prometheus needs none")
    if parts.query or parts.fragment or parts.path.strip("/"):
        raise ValueError("must be the endpoint's root, without a path, query string or fragment")
    return value.rstrip("/")


class RabbitMQSource(WithPassword):
    """Queues of one virtual host: counts from rabbitmq_prometheus, head message ages of the named
    queues from the management HTTP API (a user tagged `monitoring`), which serves everything when
    the plugin does not answer."""

    name: SourceName
    url: Annotated[str, AfterValidator(_check_http_url)]
    user: NonEmpty
    vhost: NonEmpty = "/"
    page_size: int = Field(
        default=500, ge=1, le=500,
        description="Queues per management API page (RabbitMQ allows 500), when it serves the counts.",
    )
    queue_details: bool = Field(
        default=True,
        description="False reads only ready and unacknowledged counts: no consumers and no head message age.",
    )
    queues: tuple[NonEmpty, ...] = Field(
        default=(),
        description="Queues whose head message age is read (one small management API request each per scrape).",
    )
    prometheus_plugin: bool = Field(
        default=True,
        description="Read the counts from rabbitmq_prometheus (RabbitMQ 3.8.10+); false: from the management API.",
    )
    prometheus_url: Annotated[str, AfterValidator(_check_prometheus_url)] | None = Field(
        default=None,
        description="rabbitmq_prometheus's address; default: the management URL's host on port 15692 "
        "(15691 for https).",
    )
    ca_file: Path | None = Field(default=None, description="CA bundle to verify https:// URLs.")

    @model_validator(mode="after")
    def _unique_queues(self) -> RabbitMQSource:
        _require_unique(self.queues, "queues")
        return self

    @property
    def plugin_url(self) -> str:
        """Where rabbitmq_prometheus answers: `prometheus_url`, or the management URL's host on the
        plugin's port for its scheme."""
        if self.prometheus_url is not None:
            return self.prometheus_url
        parts = urlsplit(self.url)
        host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
        return f"{parts.scheme}://{host}:{_PLUGIN_PORTS[parts.scheme]}"


def _check_redis_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError("must be a redis://, rediss:// or unix:// URL, e.g. redis://redis:6379/0")
    if parts.password is not None:
        raise ValueError("must not hold a password: use password_file or password_env")
    return value


class RedisSource(WithPassword):
    """Lengths of list queues (Celery, RQ-style) and keyspace hit statistics of one Redis database."""

    name: SourceName
    url: Annotated[str, AfterValidator(_check_redis_url)]
    username: NonEmpty | None = Field(default=None, description="ACL user; the password alone uses `default`.")
    queues: tuple[NonEmpty, ...] = Field(default=(), description="Keys of the lists to measure.")

    @model_validator(mode="after")
    def _unique_queues(self) -> RedisSource:
        _require_unique(self.queues, "queues")
        return self


class PostgresQueueSource(PostgresConnection):
    """Jobs kept as rows of a table: ready, running and oldest ready per queue."""

    dbname: NonEmpty
    table: NonEmpty
    schema_name: NonEmpty | None = Field(default=None, alias="schema", description="Schema; default: search_path.")
    queue_column: NonEmpty | None = Field(
        default=None, description="One queue per distinct value; without it the table is one queue named after it."
    )
    status_column: NonEmpty
    ready_statuses: tuple[NonEmpty, ...] = Field(min_length=1)
    running_statuses: tuple[NonEmpty, ...] = ()
    created_column: NonEmpty | None = Field(default=None, description="Timestamp column; gives the oldest age.")
    queues: tuple[NonEmpty, ...] = Field(
        default=(), description="Queues reported even when they have no rows (as 0), so alerts see them."
    )

    @model_validator(mode="after")
    def _statuses_apart(self) -> PostgresQueueSource:
        both = sorted(set(self.ready_statuses) & set(self.running_statuses))
        if both:
            raise ValueError(f"statuses {both} are in both ready_statuses and running_statuses: keep each in one")
        _require_unique(self.queues, "queues")
        return self


def _require_unique(values: tuple[str, ...], key: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{key} lists '{value}' twice: list each once")
        seen.add(value)


class ExporterConfig(Frozen):
    """The whole file: a deadline and one list per source kind."""

    timeout: Duration = Field(
        default="10s", description="Longest a scrape may take; Prometheus's own scrape timeout lowers it."
    )
    timeout_margin: Duration = Field(
        default="500ms", description="Kept back from the deadline to write the answer before Prometheus gives up."
    )
    postgres: tuple[PostgresSource, ...] = ()
    pgbouncer: tuple[PgBouncerSource, ...] = ()
    rabbitmq: tuple[RabbitMQSource, ...] = ()
    redis: tuple[RedisSource, ...] = ()
    postgres_queues: tuple[PostgresQueueSource, ...] = ()

    @property
    def timeout_seconds(self) -> float:
        return parse_duration_ms(self.timeout) / 1000

    @property
    def margin_seconds(self) -> float:
        return parse_duration_ms(self.timeout_margin) / 1000

    @model_validator(mode="after")
    def _sane_deadline(self) -> ExporterConfig:
        if self.margin_seconds >= self.timeout_seconds:
            raise ValueError(
                f"timeout_margin ({self.timeout_margin}) must be shorter than timeout ({self.timeout})"
            )
        return self

    def sources(self) -> list[tuple[KeyPath, PostgresConnection | RabbitMQSource | RedisSource]]:
        """Every source with its key path, in file order of the kinds above."""
        found: list[tuple[KeyPath, PostgresConnection | RabbitMQSource | RedisSource]] = []
        for kind in SOURCE_KINDS:
            for index, source in enumerate(getattr(self, kind)):
                found.append(((kind, index), source))
        return found


SOURCE_KINDS = ("postgres", "pgbouncer", "rabbitmq", "redis", "postgres_queues")


def load_config(path: Path) -> ExporterConfig:
    """Read and validate the configuration file; raise InputError listing every problem."""
    file = str(path)
    if not path.is_file():
        raise InputError([Problem(file, (), "no such file: pass the exporter's configuration with --config")])
    data = read_document(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError([Problem(file, (), f"must be a mapping with the keys {', '.join(SOURCE_KINDS)}")])
    try:
        config = ExporterConfig.model_validate(data)
    except ValidationError as error:
        raise InputError([validation_problem(file, detail) for detail in error.errors()]) from None
    problems = _check_sources(config, file)
    if problems:
        raise InputError(problems)
    return config


def _check_sources(config: ExporterConfig, file: str) -> list[Problem]:
    problems: list[Problem] = []
    sources = config.sources()
    if not sources:
        problems.append(Problem(file, (), f"configures no source: add at least one under {', '.join(SOURCE_KINDS)}"))
    first_use: dict[str, KeyPath] = {}
    for path, source in sources:
        if source.name in first_use:
            where = format_key_path(first_use[source.name])
            problems.append(
                Problem(
                    file, (*path, "name"),
                    f"'{source.name}' is already the name of {where}: the name is the `source` label, "
                    "so give each source its own",
                )
            )
        else:
            first_use[source.name] = path
        if source.password_file is not None or source.password_env is not None:
            reason = source.password.problem()
            if reason is not None:
                key = "password_file" if source.password_file is not None else "password_env"
                problems.append(Problem(file, (*path, key), reason))
    return problems


_SECRET_KEYS = frozenset({"password", "passwd", "pass", "secret", "token"})


def validation_problem(file: str, detail: ErrorDetails) -> Problem:
    """One pydantic error as a Problem: key path, rule, the value shown only when it holds no secret."""
    path: KeyPath = tuple(part for part in detail["loc"] if isinstance(part, str | int))
    path = tuple(part for part in path if part not in _PYDANTIC_NOISE)
    kind = detail["type"]
    key = next((part for part in reversed(path) if isinstance(part, str)), "")
    if kind == "extra_forbidden" and key in _SECRET_KEYS:
        return Problem(
            file, path,
            "passwords are never written in the configuration: put it in a file named by password_file "
            "(e.g. a mounted Secret) or in an environment variable named by password_env",
        )
    if kind == "extra_forbidden":
        return Problem(file, path, f"unknown key '{key}': remove it or fix its spelling")
    if kind == "missing":
        return Problem(file, path, "required key is missing: add it")
    message = detail["msg"].removeprefix("Value error, ")
    if kind in ("tuple_type", "list_type"):
        message = "must be a list"
    if kind == "string_pattern_mismatch":
        message = "has the wrong form: use letters, digits, '.', '_' and '-', starting with a letter or digit"
    value = detail.get("input")
    if isinstance(value, dict):  # a rule across several keys: the message names them
        return Problem(file, path, message)
    return Problem(file, path, f"{message} (got {_show(value)})")


# Names pydantic adds to error locations that are not keys of the input.
_PYDANTIC_NOISE = frozenset({"function-after", "lax-or-strict", "json-or-python", "str", "int"})


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    text = scrub(text)
    return text if len(text) <= 80 else text[:77] + "..."
