"""The committed live-captured exposition fixtures are still what the installed components serve.

Every component of tests/fixtures/exposition/LIVE.md is started for real (each server once for the
module) and scraped; every series shape of its fixtures — metric name and set of label names — must
be in the live answer. Values differ from run to run and are not compared. When a package upgrade
changes a label set, the failure names the series and the command that rewrites the fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import exposition_capture as capture
from tests.support.servers_db import PgBouncerServer, PostgresServer, RedisServer

pytestmark = pytest.mark.servers

Shape = tuple[str, frozenset[str]]


def shapes(text: str) -> set[Shape]:
    """(sample name, label names) of every sample of an exposition."""
    return {
        (sample.name, frozenset(sample.labels))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def show(shape: Shape) -> str:
    name, labels = shape
    return f"{name}{{{','.join(sorted(labels))}}}"


def assert_fixtures_served(exporter: str, live: capture.Live) -> None:
    """Each fixture file of `exporter` has its header and only series shapes that `live` serves now, and
    every file in the folder is one the capture writes."""
    expositions = live.scrape()
    folder = capture.FIXTURES / exporter
    assert sorted(path.name for path in folder.glob("*.prom")) == sorted(e.path.name for e in expositions), (
        f"{folder} holds other files than the capture writes: rewrite with {capture.WRITE_COMMAND}"
    )
    for exposition in expositions:
        committed = exposition.path.read_text(encoding="utf-8")
        header = committed.splitlines()[:3]
        assert [line.split(":", 1)[0] for line in header] == ["# source", "# version", "# captured"], (
            f"{exposition.path} must start with # source:, # version: and # captured: lines"
        )
        expected = shapes(committed)
        assert expected, f"{exposition.path} holds no series"
        missing = expected - shapes(exposition.text)
        assert not missing, (
            f"{exposition.path}: the live {exporter} no longer serves "
            f"{', '.join(sorted(map(show, missing)))}; rewrite with {capture.WRITE_COMMAND}"
        )


def fixture_series(exporter: str, name: str) -> set[str]:
    return {sample_name for sample_name, _ in shapes((capture.FIXTURES / exporter / f"{name}.prom").read_text())}


# --- Servers, once for the module --------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys() -> Iterator[capture.Secrets]:
    with capture.secrets_folder() as folder:
        yield folder


@pytest.fixture(scope="module")
def postgres(keys: capture.Secrets) -> Iterator[PostgresServer]:
    with capture.postgres(keys) as server:
        yield server


@pytest.fixture(scope="module")
def pgbouncer(postgres: PostgresServer, keys: capture.Secrets) -> Iterator[PgBouncerServer]:
    with capture.pgbouncer(postgres, keys) as server:
        yield server


@pytest.fixture(scope="module")
def rabbitmq(keys: capture.Secrets) -> Iterator[capture.Broker]:
    with capture.rabbitmq(keys) as broker:
        yield broker


@pytest.fixture(scope="module")
def redis(keys: capture.Secrets) -> Iterator[RedisServer]:
    with capture.redis(keys) as server:
        yield server


# --- One test per component --------------------------------------------------------------------------


def test_node_exporter_serves_every_series_shape_of_its_fixture() -> None:
    with capture.node_exporter() as live:
        assert_fixtures_served("node-exporter", live)


def test_node_exporter_fixture_keeps_the_families_the_node_rules_read() -> None:
    series = fixture_series("node-exporter", "default")
    assert {"node_cpu_seconds_total", "node_memory_MemAvailable_bytes", "node_memory_MemTotal_bytes",
            "node_filesystem_avail_bytes", "node_filesystem_size_bytes", "node_uname_info",
            "node_exporter_build_info"} <= series


def test_redis_exporter_serves_every_series_shape_of_its_fixture(redis: RedisServer) -> None:
    with capture.redis_exporter(redis) as live:
        assert_fixtures_served("redis-exporter", live)


def test_redis_exporter_fixture_has_the_list_lengths_the_check_keys_flags_ask_for() -> None:
    text = (capture.FIXTURES / "redis-exporter" / "check-keys.prom").read_text()
    lengths = {
        sample.labels["key"]: sample.value
        for family in text_string_to_metric_families(text) if family.name == "redis_key_size"
        for sample in family.samples
    }
    assert lengths == {**capture.REDIS_LISTS, capture.REDIS_MISSING_LIST: 0}


def test_blackbox_exporter_serves_every_series_shape_of_its_fixtures() -> None:
    with capture.blackbox_exporter() as live:
        assert_fixtures_served("blackbox-exporter", live)


def test_postgres_exporter_serves_every_series_shape_of_its_fixture(postgres: PostgresServer,
                                                                   keys: capture.Secrets) -> None:
    with capture.postgres_exporter(postgres, keys) as live:
        assert_fixtures_served("postgres-exporter", live)


def test_rabbitmq_prometheus_plugin_serves_every_series_shape_of_both_fixtures(rabbitmq: capture.Broker) -> None:
    with capture.rabbitmq_prometheus(rabbitmq) as live:
        assert_fixtures_served("rabbitmq", live)


def test_only_the_per_object_endpoint_of_rabbitmq_labels_series_by_queue() -> None:
    def queue_series(name: str) -> set[str]:
        text = (capture.FIXTURES / "rabbitmq" / f"{name}.prom").read_text()
        return {sample_name for sample_name, labels in shapes(text) if "queue" in labels}

    assert "rabbitmq_queue_messages_ready" in queue_series("per-object")
    assert not queue_series("metrics")


def test_obsbundle_exporter_serves_every_series_shape_of_its_fixture(
    keys: capture.Secrets, postgres: PostgresServer, pgbouncer: PgBouncerServer, rabbitmq: capture.Broker,
    redis: RedisServer,
) -> None:
    with capture.obsbundle_exporter(capture.Backends(keys, postgres, pgbouncer, rabbitmq, redis)) as live:
        assert_fixtures_served("obsbundle-exporter", live)


def test_obsbundle_exporter_fixture_has_every_source_kind_up() -> None:
    text = (capture.FIXTURES / "obsbundle-exporter" / "all-sources.prom").read_text()
    up = {
        sample.labels["kind"]: sample.value
        for family in text_string_to_metric_families(text) if family.name == "poolq_up"
        for sample in family.samples
    }
    assert up == dict.fromkeys(("postgres", "pgbouncer", "rabbitmq", "redis", "postgres_queues"), 1.0)


def test_fastapi_instrumentator_defaults_serve_every_series_shape_of_the_fixture() -> None:
    with capture.fastapi_instrumentator() as live:
        assert_fixtures_served("fastapi-instrumentator", live)


def test_prometheus_client_app_serves_every_series_shape_of_the_fixture() -> None:
    with capture.prometheus_client_http() as live:
        assert_fixtures_served("prometheus-client", live)


# --- What the fixture files are made of --------------------------------------------------------------


def body_lines(text: str) -> Sequence[str]:
    return text.splitlines()[3:]


def test_a_fixture_is_the_served_text_less_whole_runtime_families() -> None:
    with capture.node_exporter() as live:
        (exposition,) = live.scrape()
    served = exposition.text.splitlines()
    kept = body_lines(exposition.fixture_text())
    assert any(line.startswith("go_memstats_") for line in served)
    assert not any(line.split("{")[0].split(" ")[0].startswith(capture.DROPPED_PREFIXES) for line in kept
                   if not line.startswith("#"))
    # What is kept is the served text in order, line for line: families are dropped whole, nothing else.
    remaining = iter(served)
    assert all(any(line == candidate for candidate in remaining) for line in kept)
    assert {name for name, _ in shapes(exposition.text) if not name.startswith(capture.DROPPED_PREFIXES)} == {
        name for name, _ in shapes("\n".join(kept) + "\n")
    }


def test_live_md_lists_every_live_fixture_file() -> None:
    table = (capture.FIXTURES / "LIVE.md").read_text(encoding="utf-8")
    listed = {Path(line.split("`")[1]) for line in table.splitlines() if line.startswith("| ") and "`" in line}
    on_disk = {
        path.relative_to(capture.FIXTURES)
        for folder in ("node-exporter", "redis-exporter", "blackbox-exporter", "postgres-exporter", "rabbitmq",
                       "obsbundle-exporter", "fastapi-instrumentator", "prometheus-client")
        for path in (capture.FIXTURES / folder).glob("*.prom")
    }
    assert listed == on_disk
