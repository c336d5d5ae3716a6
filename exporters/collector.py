"""The prometheus-client collector: every source at once, under one deadline, one collection at a time.

A scrape's budget is the smaller of the configured timeout and Prometheus's
`X-Prometheus-Scrape-Timeout-Seconds` (passed in through `SCRAPE_TIMEOUT`), minus a margin for
writing the answer. Each source runs on its own worker thread; whatever has not answered when the
budget is spent is reported with `poolq_up` 0 and the others are served as usual.

Scrapes that arrive while a collection runs wait for it and share its result (coalescing), so two
Prometheus replicas, or a burst of scrapes, cost the servers one collection. A source whose
collection outlived its deadline is not started again until it returns: at most one connection
and one query per source, ever.
"""

from __future__ import annotations

import logging
import platform
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from contextvars import ContextVar
from dataclasses import dataclass
from importlib import metadata
from operator import itemgetter
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from obsbundle.exporters import families as f
from obsbundle.exporters.exposition import Block, Row, RowsMetric
from obsbundle.exporters.families import Batch, Family, Sample, WrittenNumbers
from obsbundle.exporters.sources.base import Deadline, Source

log = logging.getLogger(__name__)

SCRAPE_TIMEOUT: ContextVar[float | None] = ContextVar("SCRAPE_TIMEOUT", default=None)
"""Set by the HTTP handler to Prometheus's scrape timeout header, for the collection it triggers."""


@dataclass(frozen=True)
class SourceResult:
    source: Source
    samples: Sequence[Sample | Batch]
    seconds: float
    error: str | None = None
    """Why the source is down for this scrape; None when it is up."""


class PoolQueueCollector(Collector):
    """Collects all sources for each registry collection; see the module's docstring."""

    def __init__(self, sources: Sequence[Source], timeout: float, margin: float,
                 alongside: Sequence[Collector] = ()) -> None:
        self._sources = tuple(sources)
        self._alongside = tuple(alongside)
        """Collected while the sources answer (the exporter's process metrics), served after them."""
        self._timeout = timeout
        self._margin = margin
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._busy: set[str] = set()
        self._down: set[str] = set()
        self._in_flight: Future[list[Metric]] | None = None
        self._orders: Orders = {}
        """The sort orders of the last collection's batches; collections never overlap."""
        self._build_labels = (_package_version(), platform.python_version())

    @property
    def sources(self) -> tuple[Source, ...]:
        return self._sources

    def describe(self) -> Iterable[Metric]:
        # Registering must not trigger a collection (prometheus-client would call collect()).
        return []

    def collect(self) -> Iterator[Metric]:
        yield from self.scrape(SCRAPE_TIMEOUT.get())

    def budget(self, requested: float | None) -> float:
        """Seconds a collection may take: min(configured timeout, Prometheus's timeout) minus the margin."""
        timeout = self._timeout if requested is None or requested <= 0 else min(self._timeout, requested)
        # Never less than a sliver: a tiny header still gets an answer, with every slow source down.
        return max(timeout - self._margin, 0.05)

    def scrape(self, requested_timeout: float | None = None) -> list[Metric]:
        """All metric families, from a new collection or from the one in flight when this call came."""
        with self._lock:
            in_flight = self._in_flight
            leader = in_flight is None
            if in_flight is None:
                in_flight = self._in_flight = Future()
        if not leader:
            return in_flight.result()
        try:
            metrics = self._collect_all(Deadline.after(self.budget(requested_timeout)))
        except BaseException as error:
            in_flight.set_exception(error)
            raise
        finally:
            with self._lock:
                self._in_flight = None
        in_flight.set_result(metrics)
        return metrics

    def close(self) -> None:
        """Stop the workers (without waiting for stragglers) and close every source's connection."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        for source in self._sources:
            try:
                source.close()
            except Exception as error:
                log.debug("source %s: closing failed: %s", source.name, source.describe_error(error))

    def _workers(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=max(1, len(self._sources)), thread_name_prefix="poolq-source"
            )
        return self._executor

    def _collect_all(self, deadline: Deadline) -> list[Metric]:
        started = time.monotonic()
        pending: dict[Future[SourceResult], Source] = {}
        results: list[SourceResult] = []
        for source in self._sources:
            with self._lock:
                busy = source.name in self._busy
                self._busy.add(source.name)
            if busy:
                reason = "still busy with a collection that missed an earlier deadline"
                results.append(SourceResult(source, (), 0.0, reason))
            else:
                pending[self._workers().submit(self._run, source, deadline)] = source
        # This thread would only wait for the servers' answers: it reads the process metrics meanwhile.
        alongside = [metric for collector in self._alongside for metric in collector.collect()]
        done, _ = wait_for(pending, timeout=max(0.0, deadline.remaining()))
        for future, source in pending.items():
            if future in done:
                results.append(future.result())
            else:
                reason = f"did not answer within {deadline.at - started:.1f}s"
                results.append(SourceResult(source, (), time.monotonic() - started, reason))
        order = {source.name: index for index, source in enumerate(self._sources)}
        results.sort(key=lambda result: order[result.source.name])
        for result in results:
            self._log_state(result)
        return [*self._families(results), *alongside]

    def _run(self, source: Source, deadline: Deadline) -> SourceResult:
        started = time.monotonic()
        try:
            samples = source.collect(deadline)
        except Exception as error:
            return SourceResult(source, (), time.monotonic() - started, source.describe_error(error))
        finally:
            with self._lock:
                self._busy.discard(source.name)
        return SourceResult(source, samples, time.monotonic() - started)

    def _log_state(self, result: SourceResult) -> None:
        """One line per source that is down in this scrape, and one when it comes back."""
        source = result.source
        if result.error is not None:
            self._down.add(source.name)
            log.warning("source %s (%s) is down for this scrape: %s", source.name, source.kind, result.error)
        elif source.name in self._down:
            self._down.discard(source.name)
            log.info("source %s (%s) is answering again", source.name, source.kind)

    def _families(self, results: Sequence[SourceResult]) -> list[Metric]:
        read = [
            (result.source.name, [Sample(f.UP, (result.source.kind,), 0.0 if result.error else 1.0),
                                  Sample(f.SCRAPE_DURATION, (), result.seconds), *result.samples])
            for result in results
        ]
        keep: Orders = {}
        by_family = _by_family(read, self._orders, keep)
        self._orders = keep
        build = RowsMetric(f.BUILD_INFO_NAME, f.BUILD_INFO_HELP, "gauge", ("version", "python"),
                           rows=[(self._build_labels, 1.0)], blocks=[])
        metrics: list[Metric] = [_metric(f.UP, *by_family[f.UP]),
                                 _metric(f.SCRAPE_DURATION, *by_family[f.SCRAPE_DURATION]), build]
        for family in f.SOURCE_FAMILIES:
            entry = by_family.get(family)
            if entry is not None:
                metrics.append(_metric(family, *entry))
        return metrics


Orders = dict[tuple[str, str, int], tuple[tuple[Sequence[str], ...], "Order"]]
"""Per batch (family, source, place among the source's batches of that family): the label columns it
was sorted for, and its order."""
Order = tuple[Callable[[Sequence[Any]], Any] | None, tuple[Sequence[str], ...]]
"""What picks a batch's samples in sorted order (None: they came sorted), and its columns so picked."""


def _by_family(read: Sequence[tuple[str, Sequence[Sample | Batch]]], kept: Orders,
               keep: Orders) -> dict[Family, tuple[list[Row], list[Block]]]:
    """Every source's samples (as rows) and batches (as blocks) per family, the `source` label
    first; rows in order of their labels, blocks of their shared labels and a block's samples of
    their last label, so that the answer's order never depends on the order the servers answered in.
    A batch's order is taken from `kept` while its columns are those it was sorted for (a broker's
    queues rarely change between two scrapes), and every order used is put in `keep`. The sorted
    columns handed on are then the very objects of the scrape before, which the writer, keeping
    each block's lines, recognises without comparing them again."""
    found: dict[Family, tuple[list[Row], list[Block]]] = {}
    # Orders made in this collection, by the columns they sort: a broker's three families list the
    # same queues, in an order of its own that may change from one scrape to the next.
    sorted_now: dict[tuple[Sequence[str], ...], Order] = {}
    # Columns found equal to those kept, by identity: PgBouncer's five pool families share theirs.
    equal: dict[tuple[int, int], bool] = {}
    for source, samples in read:
        places: dict[Family, int] = {}
        for sample in samples:
            entry = found.get(sample.family)
            if entry is None:
                entry = found[sample.family] = ([], [])
            if isinstance(sample, Batch):
                columns, values = sample.columns, sample.values
                if len(values) > 1 and columns:
                    place = places[sample.family] = places.get(sample.family, -1) + 1
                    key = (sample.family.name, source, place)
                    known = kept.get(key)
                    if known is not None and _same(known[0], columns, equal):
                        order = known[1]
                    else:
                        content = tuple(map(tuple, columns))
                        made = sorted_now.get(content)
                        if made is None:
                            made = sorted_now[content] = _sort_order(columns)
                        order = made
                    keep[key] = (columns, order)
                    pick, columns = order
                    if pick is not None:
                        picked = pick(values)
                        values = WrittenNumbers(picked) if isinstance(values, WrittenNumbers) else picked
                entry[1].append(((source, *sample.labels), columns, values))
            else:
                entry[0].append(((source, *sample.labels), sample.value))
    for rows, blocks in found.values():
        rows.sort(key=_labels_of)
        blocks.sort(key=_labels_of)
    return found


def _same(before: tuple[Sequence[str], ...], now: tuple[Sequence[str], ...],
          equal: dict[tuple[int, int], bool]) -> bool:
    """Whether `before` and `now` hold the same values, compared once per pair of objects a collection."""
    key = (id(before), id(now))
    answer = equal.get(key)
    if answer is None:
        answer = equal[key] = before == now
    return answer


def _sort_order(columns: tuple[Sequence[str], ...]) -> Order:
    """How a batch's samples are put in the order of their label values, column by column."""
    # A single column sorts by its strings: no tuple per sample to make (and collect).
    keys: Sequence[Any] = columns[0] if len(columns) == 1 else list(zip(*columns, strict=True))
    order = sorted(range(len(keys)), key=keys.__getitem__)
    if order == list(range(len(keys))):
        return None, columns
    pick = itemgetter(*order)
    return pick, tuple(map(pick, columns))


def _labels_of(entry: Row | Block) -> tuple[str, ...]:
    return entry[0]


def _metric(family: Family, rows: list[Row], blocks: list[Block]) -> RowsMetric:
    return RowsMetric(family.name, family.help, family.kind, (f.SOURCE_LABEL, *family.labels), rows=rows,
                      blocks=blocks)


def _package_version() -> str:
    try:
        return metadata.version("obsbundle")
    except metadata.PackageNotFoundError:
        return "unknown"
