"""The Prometheus text format, written for the exporter's gauges and counters at a fraction of the cost.

prometheus-client's `generate_latest` validates and escapes every label name of every sample; at
a thousand queues (four series each) that is most of a scrape's CPU. The names here are fixed
and valid, so this writer checks each distinct name once and only escapes label values. Its output
is byte for byte what `generate_latest` writes (a test holds it to that); any family it does
not handle (histograms, summaries, `_created` samples, unusual names) is written by
`generate_latest` itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# prometheus-client's own float spelling (Go's: +Inf, NaN, exponents from 1e+07), so both writers agree.
_number: Callable[[float], str] = floatToGoString
_LEGACY_METRIC = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LEGACY_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


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


def text_exposition(registry: Collector) -> bytes:
    """What `generate_latest(registry)` returns, faster for plain gauges and counters."""
    output: list[str] = []
    for metric in registry.collect():
        if _fast_path(metric):
            _family(metric, output)
        else:
            output.append(generate_latest(_Single(metric)).decode("utf-8"))
    return "".join(output).encode("utf-8")
