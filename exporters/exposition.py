"""The Prometheus text format, written for the exporter's gauges and counters at a fraction of the cost.

prometheus-client's `generate_latest` validates and escapes every label name of every sample; at
ten thousand queues (three series each) that is most of a scrape's CPU. The names here are fixed
and valid, so this writer checks each distinct name once and only escapes label values. The
collector's own families are `RowsMetric`s: their samples stay rows of label values, written
through one template per family, and become prometheus-client samples only for a reader that asks
(OpenMetrics, tests). A `TextWriter` also keeps, from one scrape to the next, the text of each
block's lines up to the value: a thousand pools or ten thousand queues rarely change between two
scrapes, so their names, labels and escaping are written once, and a scrape only compares the
label columns and writes the values. Values a source hands over as `WrittenNumbers` (the digits a
pooler or a broker wrote) are copied as written, `3` where `generate_latest` writes `3.0`; apart
from that the output is byte for byte what `generate_latest` writes (tests hold it to both), and
any family it does not handle (histograms, summaries, `_created` samples, unusual names) is
written by `generate_latest` itself.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from typing import NamedTuple

from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from obsbundle.exporters.families import WrittenNumbers

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# prometheus-client's own float spelling (Go's: +Inf, NaN, exponents from 1e+07), so both writers agree.
_number: Callable[[float], str] = floatToGoString
_LEGACY_METRIC = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LEGACY_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


Row = tuple[tuple[str, ...], float]
"""One sample: the values of the family's labels, in its label order, and its value."""
Block = tuple[tuple[str, ...], tuple[Sequence[str], ...], Sequence[float | str]]
"""Samples that share the values of their first labels: (those values, a column of values per remaining
label, the samples' values: floats, or a WrittenNumbers)."""


class RowsMetric(Metric):
    """A gauge or counter family held as rows (single samples) and blocks (a source's batches),
    for the collector: `samples` is built on first use."""

    def __init__(self, name: str, documentation: str, typ: str, labels: Sequence[str], *, rows: list[Row],
                 blocks: list[Block]) -> None:
        self._built: list[Sample] | None = None
        super().__init__(name, documentation, typ)
        self.label_names = tuple(labels)
        self.rows = rows
        self.blocks = blocks
        self.sample_name = name + "_total" if typ == "counter" else name

    @property
    def samples(self) -> list[Sample]:
        if self._built is None:
            names, sample_name = self.label_names, self.sample_name
            self._built = [Sample(sample_name, dict(zip(names, values, strict=True)), float(value))
                           for values, value in self.rows]
            self._built += [
                Sample(sample_name, dict(zip(names, (*shared, *rest), strict=True)), float(value))
                for shared, columns, values in self.blocks
                for rest, value in zip(zip(*columns, strict=True), values, strict=True)
            ]
        return self._built

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        # Metric.__init__ assigns an empty list; the rows and blocks are the family's only content.
        if value:
            raise AttributeError("a RowsMetric's samples are its rows and blocks: give them to the constructor")


class _Single(Collector):
    """One metric family as a collector, for generate_latest."""

    def __init__(self, metric: Metric) -> None:
        self._metric = metric

    def collect(self) -> Iterable[Metric]:
        return [self._metric]


def _escape_value(value: str) -> str:
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


def _fast_path(metric: Metric) -> bool:
    if metric.type not in ("gauge", "counter") or not _LEGACY_METRIC.match(metric.name):
        return False
    expected = metric.name + "_total" if metric.type == "counter" else metric.name
    label_names: set[str] = set()
    for sample in metric.samples:
        if sample.name != expected or sample.timestamp is not None:
            return False
        label_names.update(sample.labels)
    return all(_LEGACY_LABEL.match(name) for name in label_names)


def _family(metric: Metric, output: list[str]) -> None:
    name = metric.name + "_total" if metric.type == "counter" else metric.name
    documentation = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
    output.append(f"# HELP {name} {documentation}\n# TYPE {name} {metric.type}\n")
    for sample in metric.samples:
        labels = sample.labels
        if labels:
            pairs = ",".join(f'{key}="{_escape_value(labels[key])}"' for key in sorted(labels))
            output.append(f"{name}{{{pairs}}} {_number(sample.value)}\n")
        else:
            output.append(f"{name} {_number(sample.value)}\n")


def _rows_fast_path(metric: RowsMetric) -> bool:
    return (bool(_LEGACY_METRIC.match(metric.name)) and bool(metric.label_names)
            and all(_LEGACY_LABEL.match(name) for name in metric.label_names))


def _numbers(values: Sequence[float | str]) -> Sequence[str]:
    if isinstance(values, WrittenNumbers):
        return values  # whole numbers in digits, as the server wrote them: valid exposition as they are
    floats = list(map(float, values))
    # Finite values within a million print as repr() prints them (a NaN or an infinity makes the sum
    # NaN or infinite); floatToGoString spells the rest as Go does (exponents, NaN, +Inf).
    if floats and not math.isnan(sum(floats)) and min(floats) > -1e6 and max(floats) < 1e6:
        return list(map(repr, floats))
    return list(map(_number, floats))


def _needs_escaping(text: str) -> bool:
    return "\\" in text or '"' in text or "\n" in text


class KeptBlock(NamedTuple):
    """A block as the scrape before wrote it."""

    columns: tuple[Sequence[str], ...]
    """The label columns it was written for."""
    lines: str
    """The text of its lines with a `%s` where each value goes."""
    values: Sequence[float | str]
    """The values written into it, and the text they made."""
    text: str


Prefixes = dict[tuple[str, int, tuple[str, ...]], KeptBlock]
"""Per block (its sample name, place in the family and shared values): how it was last written."""


def _rows_family(metric: RowsMetric, output: list[str], kept: Prefixes, keep: Prefixes) -> None:
    name, names = metric.sample_name, metric.label_names
    documentation = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
    output.append(f"# HELP {name} {documentation}\n# TYPE {name} {metric.type}\n")
    # Labels in sorted order, as generate_latest writes them, through templates with a slot per value.
    order = sorted(range(len(names)), key=names.__getitem__)
    if metric.rows:
        template = name + "{" + ",".join(f'{names[index]}="%s"' for index in order) + "} %s\n"
        labels = [values for values, _ in metric.rows]
        pick = itemgetter(*order)
        picked: Iterable[tuple[str, ...]] = map(pick, labels) if len(order) > 1 else ((pick(v),) for v in labels)
        if _needs_escaping("".join("".join(values) for values in labels)):
            picked = [tuple(map(_escape_value, values)) for values in picked]
        texts = _numbers([value for _, value in metric.rows])
        output.append("".join(template % (*values, text) for values, text in zip(picked, texts, strict=True)))
    for place, (shared, columns, values) in enumerate(metric.blocks):
        if not values:
            continue
        key = (name, place, shared)
        known = kept.get(key)
        if known is not None and known.columns == columns:
            lines = known.lines
            if isinstance(values, WrittenNumbers) and known.values == values:
                # The same digits as the scrape before (an idle pool, a quiet queue): the same text.
                # (Floats are written anew: -0.0 equals 0.0 but is spelled apart.)
                keep[key] = known
                output.append(known.text)
                continue
        else:
            lines = _block_lines(_block_prefixes(name, names, order, shared, columns, count=len(values)))
        texts = _numbers(values)
        # One formatting of the whole block, in C: no string per line to make and join.
        text = lines % (texts if isinstance(texts, tuple) else tuple(texts))
        keep[key] = KeptBlock(columns, lines, values, text)
        output.append(text)


def _block_lines(prefixes: list[str]) -> str:
    """A block's lines as one template: each line's text up to its value, then a slot for it."""
    body = "\n".join(prefixes)
    if "%" in body:
        body = body.replace("%", "%%")
    # A line never holds a newline (label values spell it as `\n`): each one is where a slot goes.
    return body.replace("\n", "%s\n") + "%s\n"


def _block_prefixes(name: str, names: tuple[str, ...], order: list[int], shared: tuple[str, ...],
                    columns: tuple[Sequence[str], ...], *, count: int) -> list[str]:
    """The text of each of a block's lines up to its value: the family's name and labels, sorted as
    generate_latest sorts them, the shared values written in and the columns' values escaped."""
    first_column = len(names) - len(columns)
    pairs = ",".join(
        f'{names[index]}="%s"' if index >= first_column
        else f'{names[index]}="{_escape_value(shared[index]).replace("%", "%%")}"'
        for index in order
    )
    template = f"{name}{{{pairs}}} "
    # The slots follow the sorted label order, so the columns are taken in that order too.
    slots = [
        list(map(_escape_value, column)) if _needs_escaping("".join(column)) else column
        for column in (columns[index - first_column] for index in order if index >= first_column)
    ]
    if not slots:
        return [template % ()] * count
    return list(map(template.__mod__, zip(*slots, strict=True)))


class TextWriter:
    """What `generate_latest(registry)` returns, faster for plain gauges and counters. One serves all
    the scrapes of a server, so that the lines of unchanged blocks are reused from the scrape before;
    threads may share it, as a scrape only reads the prefixes the one before kept and replaces them
    whole."""

    def __init__(self) -> None:
        self._prefixes: Prefixes = {}

    def __call__(self, registry: Collector) -> bytes:
        output: list[str] = []
        kept: Prefixes = self._prefixes
        keep: Prefixes = {}
        for metric in registry.collect():
            if isinstance(metric, RowsMetric) and _rows_fast_path(metric):
                _rows_family(metric, output, kept, keep)
            elif _fast_path(metric):
                _family(metric, output)
            else:
                output.append(generate_latest(_Single(metric)).decode("utf-8"))
        # Only this scrape's blocks are kept: a deleted queue, or a pool gone, is forgotten.
        self._prefixes = keep
        return "".join(output).encode("utf-8")


def text_exposition(registry: Collector) -> bytes:
    """What `generate_latest(registry)` returns, faster for plain gauges and counters (nothing kept
    between calls: a server holds a `TextWriter`)."""
    return TextWriter()(registry)
