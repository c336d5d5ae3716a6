"""The fast text writer says exactly what prometheus-client's generate_latest says, scrape after scrape."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import pytest
from prometheus_client import CollectorRegistry, Histogram, ProcessCollector, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from obsbundle.exporters import families as f
from obsbundle.exporters.collector import PoolQueueCollector
from obsbundle.exporters.exposition import Block, Row, RowsMetric, TextWriter, text_exposition
from obsbundle.exporters.families import Batch, Sample, written_numbers
from obsbundle.exporters.sources.base import Deadline, Source


class Fixed(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self._metrics


def awkward_families() -> list[Metric]:
    gauge = GaugeMetricFamily("poolq_queue_messages_ready", 'Help with a \\ backslash\nand a newline.',
                              labels=("source", "broker", "queue"))
    for queue, value in (('quote " here', 3), ("back\\slash", 0.5), ("new\nline", 1e21), ("ünïcødé", float("nan")),
                         ("big", 12345678.0), ("inf", float("inf")), ("minus", float("-inf")), ("neg", -2.0)):
        gauge.add_metric(("main", "rabbitmq", queue), value)
    counter = CounterMetricFamily("poolq_pg_blocks_hit", "Blocks.", labels=("source", "datname"))
    counter.add_metric(("main", "postgres"), 42)
    created = CounterMetricFamily("with_created", "A counter with a created time.", labels=("a",))
    created.add_metric(("x",), 1, created=1700000000.0)
    stamped = GaugeMetricFamily("stamped", "A sample with a timestamp.")
    stamped.add_metric((), 1.0, timestamp=1700000000.5)
    bare = GaugeMetricFamily("poolq_pg_max_connections", "No labels.", value=100)
    return [gauge, counter, created, stamped, bare]


def test_text_exposition_is_byte_for_byte_what_generate_latest_writes() -> None:
    registry = CollectorRegistry()
    registry.register(Fixed(awkward_families()))
    ProcessCollector(registry=registry)
    histogram = Histogram("request_seconds", "A histogram it leaves to prometheus-client.", registry=registry)
    histogram.observe(0.2)
    # The process collector's values change between two collections; compare two fixed snapshots.
    snapshot = list(registry.collect())
    assert text_exposition(Fixed(snapshot)) == generate_latest(Fixed(snapshot))


def test_the_collectors_rows_and_blocks_are_written_as_generate_latest_writes_their_samples() -> None:
    names = ("source", "broker", "queue")
    awkward = [('quote " here', 3.0), ("back\\slash", 0.5), ("new\nline", 1e21), ("ünïcødé", float("nan")),
               ("big", 12345678.0), ("inf", float("inf")), ("minus", float("-inf")), ("neg", -2.0), ("100%", 7.0)]
    plain = [(f"queue-{index:03d}", float(index)) for index in range(5)]
    rows: list[Row] = [(("main", "redis", queue), count) for queue, count in awkward]
    blocks: list[Block] = [(("broker", "rabbitmq"), ([queue for queue, _ in batch],), [count for _, count in batch])
                           for batch in (awkward, plain)]
    metric = RowsMetric("poolq_queue_messages_ready", "Help with a \\ backslash\nand a newline.", "gauge", names,
                        rows=rows, blocks=blocks)
    counter = RowsMetric("poolq_pg_blocks_hit", "Blocks.", "counter", ("source", "datname"),
                         rows=[(("main", "postgres"), 42.0)], blocks=[(("other",), (["app", "postgres"],), [1.0, 2.0])])
    # PgBouncer's pools: two columns, and the shared `source` sorts between them (database, source, user).
    pools = [("app", 'us"er', 3.0), ("app", "batch", 1.0), ("ünï", "100%", 0.25)]
    pool_names = ("source", "database", "user")
    pool_block: Block = (("bouncer",), ([pool[0] for pool in pools], [pool[1] for pool in pools]),
                         [pool[2] for pool in pools])
    clients = RowsMetric("poolq_pgbouncer_client_active", "Pools.", "gauge", pool_names, rows=[],
                         blocks=[pool_block])
    bare = RowsMetric("poolq_pg_max_connections", "No labels but the source.", "gauge", ("source",),
                      rows=[(("main",), 100.0)], blocks=[])
    # The same samples as prometheus-client's own families, in the same order.
    gauge = GaugeMetricFamily("poolq_queue_messages_ready", "Help with a \\ backslash\nand a newline.", labels=names)
    for values, count in rows:
        gauge.add_metric(values, count)
    for shared, (queues,), counts in blocks:
        for queue, written in zip(queues, counts, strict=True):
            gauge.add_metric((*shared, queue), float(written))
    blocks_hit = CounterMetricFamily("poolq_pg_blocks_hit", "Blocks.", labels=("source", "datname"))
    for database, count in ((("main", "postgres"), 42.0), (("other", "app"), 1.0), (("other", "postgres"), 2.0)):
        blocks_hit.add_metric(database, count)
    max_connections = GaugeMetricFamily("poolq_pg_max_connections", "No labels but the source.", labels=("source",))
    max_connections.add_metric(("main",), 100.0)

    client_active = GaugeMetricFamily("poolq_pgbouncer_client_active", "Pools.", labels=pool_names)
    for pool_database, pool_user, pool_clients in pools:
        client_active.add_metric(("bouncer", pool_database, pool_user), pool_clients)

    expected = generate_latest(Fixed([gauge, blocks_hit, max_connections, client_active]))
    assert text_exposition(Fixed([metric, counter, bare, clients])) == expected
    # Readers that ask for prometheus-client samples (OpenMetrics, tests) get the same ones.
    assert generate_latest(Fixed([metric, counter, bare, clients])) == expected


def test_a_writer_reuses_a_blocks_lines_only_while_its_labels_stay_the_same() -> None:
    names = ("source", "vhost", "queue")

    def family(queues: list[str], counts: list[float]) -> RowsMetric:
        return RowsMetric("poolq_queue_messages_ready", "Ready.", "gauge", names, rows=[],
                          blocks=[(("main", "/"), (queues,), counts), (("main", "/"), (["other"],), [9.0])])

    def expected(queues: list[str], counts: list[float]) -> bytes:
        gauge = GaugeMetricFamily("poolq_queue_messages_ready", "Ready.", labels=names)
        for queue, count in zip(queues, counts, strict=True):
            gauge.add_metric(("main", "/", queue), count)
        gauge.add_metric(("main", "/", "other"), 9.0)
        return generate_latest(Fixed([gauge]))

    writer = TextWriter()
    scrapes = [
        (["a", "b", 'c"'], [1.0, 2.0, 3.0]),
        (["a", "b", 'c"'], [4.0, 0.0, 1e21]),  # the same queues: the kept lines, new values
        (["a", "c\"", "d"], [5.0, 6.0, 7.0]),  # one queue gone, one new: written again
        (["a", "b", 'c"'], [1.0, 2.0, 3.0]),
    ]
    for queues, counts in scrapes:
        assert writer(Fixed([family(queues, counts)])) == expected(queues, counts)
    # A block whose labels are all shared (no column) still writes one line per value.
    only_shared = RowsMetric("poolq_up", "Up.", "gauge", ("source",), rows=[], blocks=[(("main",), (), [1.0])])
    up = GaugeMetricFamily("poolq_up", "Up.", labels=("source",))
    up.add_metric(("main",), 1.0)
    for _ in range(2):
        assert writer(Fixed([only_shared])) == generate_latest(Fixed([up]))


class Batches(Source):
    """A source whose batches are set by the test before each scrape."""

    kind = "rabbitmq"

    def __init__(self, *, written: bool = False) -> None:
        super().__init__("broker")
        self.queues: list[str] = []
        self.written = written
        """Counts as a server writes them (digits), rather than floats."""

    def collect(self, deadline: Deadline) -> Sequence[Sample | Batch]:
        counts: Sequence[float | str] = [float(index) for index in range(len(self.queues))]
        if self.written:
            counts = written_numbers([str(index) for index in range(len(self.queues))]) or []
        return [Batch(f.QUEUE_READY, ("rabbitmq",), (list(self.queues),), counts),
                Batch(f.QUEUE_CONSUMERS, ("rabbitmq",), (list(self.queues),), [1.0] * len(counts))]

    def close(self) -> None:
        pass


def test_the_collector_sorts_a_batch_again_when_its_queues_change() -> None:
    source = Batches()
    collector = PoolQueueCollector([source], timeout=5, margin=0.5)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    writer = TextWriter()
    for queues in (["c", "a", "b"], ["c", "a", "b"], ["b", "d", "a"], ["c", "a", "b"]):
        source.queues = queues
        ready = {sample.labels["queue"]: sample.value
                 for family in text_string_to_metric_families(writer(registry).decode())
                 if family.name == "poolq_queue_messages_ready" for sample in family.samples}
        # In the queues' order of names, each with its own count.
        assert list(ready) == sorted(queues)
        assert ready == {queue: float(index) for index, queue in enumerate(queues)}
    collector.close()


def test_counts_as_the_server_wrote_them_are_copied_and_sorted_with_their_queues() -> None:
    source = Batches(written=True)
    collector = PoolQueueCollector([source], timeout=5, margin=0.5)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    writer = TextWriter()
    for queues in (["c", "a", "b"], ["c", "a", "b"], ["b", "d", "a"]):
        source.queues = queues
        text = writer(registry).decode()
        # The digits as written (PgBouncer and rabbitmq_prometheus write "3", not "3.0"), each on its queue's line.
        lines = [line for line in text.splitlines() if line.startswith("poolq_queue_messages_ready{")]
        assert lines == [f'poolq_queue_messages_ready{{broker="rabbitmq",queue="{queue}",source="broker"}} '
                         f"{queues.index(queue)}" for queue in sorted(queues)]
        # A reader of prometheus-client's samples (OpenMetrics, a fresh registry) gets the same values, as floats.
        ready = {sample.labels["queue"]: sample.value for metric in collector.scrape()
                 if metric.name == "poolq_queue_messages_ready" for sample in metric.samples}
        assert ready == {queue: float(index) for index, queue in enumerate(queues)}
        assert all(isinstance(value, float) for value in ready.values())
    collector.close()


@pytest.mark.parametrize("texts", [["1", "2.5"], ["-1"], ["1", ""], ["NaN"], ["+Inf"], ["1e3"], ["\u0661"], [" 1"]])
def test_only_plain_digits_are_taken_as_written(texts: list[str]) -> None:
    # Anything else is read as a float and spelled by the writer, as prometheus-client spells it.
    assert written_numbers(texts) is None
    assert written_numbers(["0", "7", "12345678901234567890"]) == ("0", "7", "12345678901234567890")


class Held(Source):
    """A source that answers only once the test lets it."""

    kind = "postgres"

    def __init__(self) -> None:
        super().__init__("held")
        self.asked = threading.Event()
        self.release = threading.Event()

    def collect(self, deadline: Deadline) -> Sequence[Sample | Batch]:
        self.asked.set()
        if not self.release.wait(10):
            raise TimeoutError("never released")
        return [Sample(f.PG_MAX_CONNECTIONS, (), 100.0)]

    def close(self) -> None:
        pass


class WhileHeld(Collector):
    """Process metrics stand-in: notes whether the source was still answering when it was read."""

    def __init__(self, source: Held) -> None:
        self.source = source
        self.read_while_answering: list[bool] = []

    def collect(self) -> Iterable[Metric]:
        self.read_while_answering.append(self.source.asked.wait(5) and not self.source.release.is_set())
        self.source.release.set()
        return [GaugeMetricFamily("process_open_fds", "Open fds.", value=7)]


def test_the_process_metrics_are_read_while_the_sources_answer_and_served_after_them() -> None:
    source = Held()
    alongside = WhileHeld(source)
    collector = PoolQueueCollector([source], timeout=5, margin=0.5, alongside=[alongside])
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    families = list(text_string_to_metric_families(TextWriter()(registry).decode()))
    collector.close()
    assert alongside.read_while_answering == [True]
    names = [family.name for family in families]
    assert names[-1] == "process_open_fds"
    assert names.index("poolq_pg_max_connections") < names.index("process_open_fds")
    up = next(family for family in families if family.name == "poolq_up")
    assert [sample.value for sample in up.samples] == [1.0]


def test_a_block_of_unchanged_digits_is_written_as_before_and_a_changed_one_anew() -> None:
    names = ("source", "database", "user")

    def family(databases: list[str], counts: list[str]) -> RowsMetric:
        values = written_numbers(counts)
        assert values is not None
        return RowsMetric("poolq_pgbouncer_client_active", "Active.", "gauge", names, rows=[],
                          blocks=[(("pool",), (databases, ["app"] * len(databases)), values)])

    def expected(databases: list[str], counts: list[str]) -> str:
        return "".join(f'poolq_pgbouncer_client_active{{database="{database}",source="pool",user="app"}} {count}\n'
                       for database, count in zip(databases, counts, strict=True))

    writer = TextWriter()
    scrapes = [
        (["a", "b", "c"], ["1", "2", "3"]),
        (["a", "b", "c"], ["1", "2", "3"]),  # nothing changed
        (["a", "b", "c"], ["1", "2", "30"]),  # one count changed
        (["a", "b", "d"], ["1", "2", "30"]),  # the same counts on other pools
        (["a", "b", "c"], ["1", "2", "3"]),
    ]
    for databases, counts in scrapes:
        text = writer(Fixed([family(databases, counts)])).decode()
        assert text.split("\n", 2)[2] == expected(databases, counts)
