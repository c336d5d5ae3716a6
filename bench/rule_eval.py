"""Rule evaluation cost in a real Prometheus: the generated SLO rules against Sloth's and Pyrra's shapes.

    python -m bench.rule_eval [--services 1000] [--history 30d] [--step 1m] [--measure 330] [--warmup 90]
        [--json bench/results/rule_eval.json] [--behaviour-only]

One synthetic system of `--services` APIs (prometheus-client), each with a 99.9 % availability SLO
and a 95 % latency SLO over 30 days: 2,000 SLOs for 1,000 services. Three rule sets for the same
SLOs, each loaded alone, one after the other, into one Prometheus on the same data:

- generated: the system's SLO groups exactly as `generate.py` writes them (5-minute event counts,
  every longer window a sum of recorded pieces read at offsets, alerts per SLO);
- sloth: as Sloth v0.16 generates them (slok/sloth examples/_gen/getting-started.yml and
  kubernetes-apiserver.yml): per window `slo:sli_error:ratio_rate<w>` as a ratio of rates of the raw
  series, the period as the average of the 5-minute ratios over 30 days, its meta recordings and its
  two multiwindow alerts (page, ticket; no `for`);
- pyrra: as Pyrra generates them (pyrra-dev/pyrra slo/rules.go, golden output in slo/rules_test.go):
  `increase(<raw>[30d])` per SLO every 2m30s with `SLOMetricAbsent`, burn-rate recordings per window
  from the raw series every 30 s, and four `ErrorBudgetBurn` alerts with its windows scaled from 28
  days (`Windows()` in slo/rules.go).

History: the raw series (requests by status, the 500 ms bucket and the histogram count) are
backfilled for `--history` at one sample per `--step` with `promtool tsdb create-blocks-from
openmetrics`, and so are the recorded series that a shape reads over a range or at an offset
(Sloth's 5-minute ratios over 30 days; the generated 5m…3d event counts at their offsets, up to 27
days back), with the values the rules would have recorded from the same counters, at their group's
interval (or `--step` if coarser), written into the same OpenMetrics: evaluating the rules over 30
days with `promtool tsdb create-blocks-from rules` would take one pass per level of rules reading
rules (eight for the generated windows) over 2,000 SLOs. A shape whose long windows found no history
would be measured too cheap. A local target then continues the same counters live; the recorded
series resume when their rule set is loaded.

After a warm-up, `/api/v1/rules` is read every 15 s for `--measure` seconds; each group's median
`evaluationTime` is summed per rule set, per round and per minute (a group every 5 minutes counts a
fifth, one every 30 s twice), and Prometheus's own CPU time per minute above an idle baseline (the
same Prometheus scraping, no rules) is the cross-check. Evaluation time is wall-clock: it includes
the wait of each rule's query for one of the engine's 20 slots (`--query.max-concurrency`), which
thousands of slow groups make minutes long, so the mean wait is reported too. CPU per minute is a
rule set's whole cost only while its groups keep to their schedule: the evaluations Prometheus
missed (a group still running when its next one is due) are counted, and the CPU a minute of the
full schedule would take is the measured CPU over the share that ran.

Behaviour, in promtool on a handful of SLOs (real rule evaluation, not a model of it): for each
shape the time from the start of a full outage to the first page alert firing (its `for` included)
at 600 and at 1 request a minute, and the period's error ratio each shape reports after a day of
busy clean hours and quiet error-heavy night hours, against the event-weighted ratio of the counts.
Every Prometheus and promtool process is stopped by its own pid.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO

import requests
import yaml

from obsbundle.config import DEFAULT_CONFIG
from obsbundle.durations import format_duration, parse_duration
from obsbundle.model import Slo, System
from obsbundle.rules import rule_groups
from obsbundle.tools import promtool
from obsbundle.tools.processes import free_port
from obsbundle.tools.prometheus import start_prometheus

RESULTS = Path(__file__).resolve().parent / "results"
NAMESPACE = "bench"
SCRAPE_INTERVAL = 60
THRESHOLD_LE = "0.5"
ERROR_SHARE = 0.001
"""Share of requests that fail (status 500): the availability SLOs spend their budget at 1×."""
SLOW_SHARE = 0.03
"""Share of requests slower than the threshold: the latency SLOs spend 60 % of theirs."""
SHAPES = ("generated", "sloth", "pyrra")
SLOTH_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
"""Sloth's 30-day windows (internal/alert/windows/google-30d.yaml): page 1h/5m ×14.4 and 6h/30m ×6,
ticket 1d/2h ×3 and 3d/6h ×1."""
SLOTH_TIERS = (("page", (("5m", "1h", 14.4), ("30m", "6h", 6.0))), ("ticket", (("2h", "1d", 3.0), ("6h", "3d", 1.0))))


# ----------------------------------------------------------------------------- the SLOs


def synthetic_system(services: int, *, latency: bool = True, rename: Callable[[int], str] | None = None) -> System:
    """`services` APIs with a 99.9 % availability SLO (and a 95 % / 500 ms latency SLO) over 30 days."""
    slos: list[dict[str, Any]] = [{"name": "availability", "objective": 99.9, "window": "30d"}]
    if latency:
        slos.append({"name": "latency", "objective": 95, "threshold": "500ms", "window": "30d"})
    return System.model_validate(
        {
            "apiVersion": "obsbundle/v1",
            "kind": "System",
            "name": "bench",
            "cluster": "bench",
            "owner": {"team": "bench", "slack_channel": "#bench"},
            "monitoring": {
                "grafana_url": "https://grafana.bench.test",
                "alertmanager_url": "https://alertmanager.bench.test",
                "runbook_url": "https://runbooks.bench.test/{system}/{alert}.md",
            },
            "services": [
                {
                    "name": (rename or service_name)(index),
                    "namespace": NAMESPACE,
                    "metrics": {"port": "http"},
                    "slos": slos,
                }
                for index in range(services)
            ],
        }
    )


def service_name(index: int) -> str:
    return f"svc-{index:04d}"


@dataclass(frozen=True)
class Target:
    """One SLO's raw series: the selectors every shape reads, and what they count."""

    service: str
    slo: Slo

    @property
    def selector(self) -> str:
        return f'namespace="{NAMESPACE}",service="{self.service}"'

    @property
    def latency(self) -> bool:
        return self.slo.threshold is not None

    @property
    def total(self) -> str:
        metric = "http_request_duration_seconds_count" if self.latency else "http_requests_total"
        return f"{metric}{{{self.selector}}}"

    @property
    def errors(self) -> str:
        """Availability: the 5xx requests. Latency: the good (fast) requests' bucket, subtracted."""
        if self.latency:
            return f'http_request_duration_seconds_bucket{{{self.selector},le="{THRESHOLD_LE}"}}'
        return f'http_requests_total{{{self.selector},status=~"5.."}}'

    def error_ratio(self, window: str) -> str:
        """Bad over all requests in `window` from the raw series, as Sloth's and Pyrra's rules write it."""
        total = f"sum(rate({self.total}[{window}]))"
        if self.latency:
            return f"({total} - sum(rate({self.errors}[{window}]))) / {total}"
        return f"sum(rate({self.errors}[{window}])) / {total}"


def targets(system: System) -> list[Target]:
    return [Target(service.name, slo) for service in system.services for slo in service.slos]


# ----------------------------------------------------------------------------- the three shapes


def generated_groups(system: System) -> list[dict[str, Any]]:
    return [group.to_dict() for group in rule_groups(system, DEFAULT_CONFIG.rules) if "-slo-" in group.name]


def sloth_budget(slo: Slo) -> float:
    """Sloth's error budget as Go computes it in float64: (100 − 99.9) / 100 = 0.0009999999999999432."""
    return (100 - float(slo.objective)) / 100


def sloth_groups(system: System) -> list[dict[str, Any]]:
    """Per SLO, Sloth's three groups (sli recordings, meta recordings, alerts), as in its examples/_gen."""
    groups = []
    for target in targets(system):
        sloth_id = f"{target.service}-{target.slo.name}"
        ids = {"sloth_id": sloth_id, "sloth_service": target.service, "sloth_slo": target.slo.name}
        match = f'sloth_id="{sloth_id}", sloth_service="{target.service}", sloth_slo="{target.slo.name}"'
        sli = [
            {
                "record": f"slo:sli_error:ratio_rate{window}",
                "expr": target.error_ratio(window),
                "labels": {**ids, "sloth_window": window},
            }
            for window in SLOTH_WINDOWS
        ]
        sli.append(
            {
                "record": "slo:sli_error:ratio_rate30d",
                "expr": f"sum_over_time(slo:sli_error:ratio_rate5m{{{match}}}[30d])\n/ ignoring (sloth_window)\n"
                f"count_over_time(slo:sli_error:ratio_rate5m{{{match}}}[30d])",
                "labels": {**ids, "sloth_window": "30d"},
            }
        )
        on = "/ on(sloth_id, sloth_slo, sloth_service) group_left"
        objective = float(target.slo.objective) / 100
        meta = [
            {"record": "slo:objective:ratio", "expr": f"vector({objective!r})", "labels": dict(ids)},
            {"record": "slo:error_budget:ratio", "expr": f"vector(1-{objective!r})", "labels": dict(ids)},
            {"record": "slo:time_period:days", "expr": "vector(30)", "labels": dict(ids)},
            {
                "record": "slo:current_burn_rate:ratio",
                "expr": f"slo:sli_error:ratio_rate5m{{{match}}}\n{on}\nslo:error_budget:ratio{{{match}}}",
                "labels": dict(ids),
            },
            {
                "record": "slo:period_burn_rate:ratio",
                "expr": f"slo:sli_error:ratio_rate30d{{{match}}}\n{on}\nslo:error_budget:ratio{{{match}}}",
                "labels": dict(ids),
            },
            {
                "record": "slo:period_error_budget_remaining:ratio",
                "expr": f"1 - slo:period_burn_rate:ratio{{{match}}}",
                "labels": dict(ids),
            },
            {
                "record": "sloth_slo_info",
                "expr": "vector(1)",
                "labels": {**ids, "sloth_mode": "cli-gen-prom", "sloth_objective": f"{float(target.slo.objective):g}"},
            },
        ]
        budget = sloth_budget(target.slo)
        alerts = []
        for severity, pairs in SLOTH_TIERS:
            expr = "\nor\n".join(
                f"(\n  max(slo:sli_error:ratio_rate{short}{{{match}}} > ({factor:g} * {budget!r}))"
                " without (sloth_window)\n  and\n"
                f"  max(slo:sli_error:ratio_rate{long}{{{match}}} > ({factor:g} * {budget!r}))"
                " without (sloth_window)\n)"
                for short, long, factor in pairs
            )
            alerts.append({"alert": "SlothSloBurn", "expr": expr, "labels": {"sloth_severity": severity}})
        groups += [
            {"name": f"sloth-slo-sli-recordings-{sloth_id}", "rules": sli},
            {"name": f"sloth-slo-meta-recordings-{sloth_id}", "rules": meta},
            {"name": f"sloth-slo-alerts-{sloth_id}", "rules": alerts},
        ]
    return groups


def go_round_minute(nanoseconds: int) -> int:
    """Go's `time.Duration.Round(time.Minute)` (halves away from zero), in seconds."""
    minute = 60 * 10**9
    return (nanoseconds + minute // 2) // minute * 60


@dataclass(frozen=True)
class PyrraWindow:
    severity: str
    for_s: int
    long_s: int
    short_s: int
    factor: int


def pyrra_windows(period_s: int) -> list[PyrraWindow]:
    """Pyrra's `Windows(sloWindow)` (slo/rules.go): every duration a fixed fraction of the period."""
    period = period_s * 10**9

    def scaled(divisor: int) -> int:
        return go_round_minute(period // divisor)

    return [
        PyrraWindow("critical", scaled(28 * 24 * 30), scaled(28 * 24), scaled(28 * 24 * 12), 14),
        PyrraWindow("critical", scaled(28 * 24 * 4), scaled(28 * 4), scaled(28 * 24 * 2), 7),
        PyrraWindow("warning", scaled(28 * 24), scaled(28), scaled(28 * 12), 2),
        PyrraWindow("warning", scaled(28 * 8), scaled(7), scaled(28 * 4), 1),
    ]


def pyrra_absent_for(slo: Slo, windows: list[PyrraWindow]) -> int:
    """Pyrra's `AbsentDuration()` (slo/slo.go): the fastest tier's detection time plus its `for`."""
    fastest = windows[0]
    seconds = int(fastest.factor * (1 - float(slo.objective) / 100) * fastest.long_s) + fastest.for_s
    return go_round_minute(seconds * 10**9)


def pyrra_groups(system: System) -> list[dict[str, Any]]:
    """Per SLO, Pyrra's increase group (every 2m30s for a 30-day window) and burn-rate group (every 30 s)."""
    groups = []
    for target in targets(system):
        name = f"{target.service}-{target.slo.name}"
        labels = {"namespace": NAMESPACE, "service": target.service, "slo": name}
        metric = "http_request_duration_seconds" if target.latency else "http_requests"
        windows = pyrra_windows(parse_duration(target.slo.window))
        period = format_duration(parse_duration(target.slo.window))
        # Pyrra groups the increase by the labels its error selector matches with a regex (`code` in its tests).
        if target.latency:
            increases = [f"sum(increase({target.total}[{period}]))", f"sum(increase({target.errors}[{period}]))"]
        else:
            increases = [f"sum by (status) (increase({target.total}[{period}]))"]
        absent = [target.total, target.errors] if target.latency else [target.total]
        # The bucket's recordings keep its `le`, so that they differ from the count's.
        extra = [{}, {"le": THRESHOLD_LE}] if target.latency else [{}]
        increase_rules: list[dict[str, Any]] = [
            {"record": f"{metric}:increase{period}", "expr": expr, "labels": {**labels, **more}}
            for expr, more in zip(increases, extra, strict=True)
        ]
        increase_rules += [
            {
                "alert": "SLOMetricAbsent",
                "expr": f"absent({selector}) == 1",
                "for": format_duration(pyrra_absent_for(target.slo, windows)),
                "labels": {**labels, **more, "severity": "critical"},
            }
            for selector, more in zip(absent, extra, strict=True)
        ]
        durations = sorted({window.short_s for window in windows} | {window.long_s for window in windows})
        burnrates: list[dict[str, Any]] = [
            {
                "record": f"{metric}:burnrate{format_duration(seconds)}",
                "expr": target.error_ratio(format_duration(seconds)),
                "labels": dict(labels),
            }
            for seconds in durations
        ]
        matchers = f'namespace="{NAMESPACE}",service="{target.service}",slo="{name}"'
        objective = f"{float(target.slo.objective) / 100!r}"
        for window in windows:
            short, long = format_duration(window.short_s), format_duration(window.long_s)
            burnrates.append(
                {
                    "alert": "ErrorBudgetBurn",
                    "expr": f"{metric}:burnrate{short}{{{matchers}}} > ({window.factor} * (1-{objective})) and "
                    f"{metric}:burnrate{long}{{{matchers}}} > ({window.factor} * (1-{objective}))",
                    "for": format_duration(window.for_s),
                    "labels": {**labels, "severity": window.severity, "long": long, "short": short},
                }
            )
        groups += [
            {"name": f"{name}-increase", "interval": "2m30s", "rules": increase_rules},
            {"name": name, "interval": "30s", "rules": burnrates},
        ]
    return groups


def rule_sets(system: System) -> dict[str, list[dict[str, Any]]]:
    return {"generated": generated_groups(system), "sloth": sloth_groups(system), "pyrra": pyrra_groups(system)}


# ----------------------------------------------------------------------------- history


class Traffic:
    """Counters that grow at a per-service constant rate from `origin`: 0.1 % failed, 3 % slow."""

    def __init__(self, services: int, origin: int, instance: str) -> None:
        self.services, self.origin, self.instance = services, origin, instance

    @staticmethod
    def total_rate(service: str) -> float:
        return 5.0 + int(service.removeprefix("svc-")) % 17

    def series(self) -> Iterator[tuple[str, str, float]]:
        """(metric, labels text, events per second) of every raw series."""
        for index in range(self.services):
            rate = self.total_rate(service_name(index))
            base = f'namespace="{NAMESPACE}",service="{service_name(index)}"'
            target = f'{base},job="bench",instance="{self.instance}"'
            yield "http_requests_total", f'{target},status="200"', rate * (1 - ERROR_SHARE)
            yield "http_requests_total", f'{target},status="500"', rate * ERROR_SHARE
            yield "http_request_duration_seconds_bucket", f'{target},le="{THRESHOLD_LE}"', rate * (1 - SLOW_SHARE)
            yield "http_request_duration_seconds_count", target, rate

    def value(self, per_second: float, at: int) -> int:
        return int(per_second * (at - self.origin))


def bad_share(slo_name: str) -> float:
    return SLOW_SHARE if slo_name == "latency" else ERROR_SHARE


@dataclass(frozen=True)
class Recorded:
    """A recorded series some rule reads over a range or at an offset: its history must exist."""

    name: str
    labels: dict[str, str]
    value: float
    interval: int
    reach: int
    """Seconds back from now that the rules read it."""


RANGE_OR_OFFSET = re.compile(r"([a-z_]+:[a-z_]+:[a-z0-9_]+)\{[^}]*\}(?:\[(\w+)\]| offset (\w+))")
WINDOW_OF_COUNT = re.compile(r"slo:sli_(good|total)_events:increase(\w+)")


def read_back(groups: list[dict[str, Any]]) -> dict[str, int]:
    """Recorded series name → how far back (seconds) any rule of `groups` reads it."""
    reach: dict[str, int] = defaultdict(int)
    for group in groups:
        for rule in group["rules"]:
            for name, range_, offset in RANGE_OR_OFFSET.findall(rule["expr"]):
                reach[name] = max(reach[name], parse_duration(range_ or offset))
    return dict(reach)


def recorded_history(shape: str, groups: list[dict[str, Any]], default_interval: int) -> list[Recorded]:
    """The recorded series of `shape` read back in time, with the values its rules record from `Traffic`.

    Raises if a rule reads back a recorded series this bench cannot compute, so that a change of the
    rules' shape fails the bench instead of silently measuring it without history.
    """
    reach = read_back(groups)
    out = []
    for group in groups:
        interval = parse_duration(group.get("interval", format_duration(default_interval)))
        for rule in group["rules"]:
            name = rule.get("record", "")
            if name not in reach:
                continue
            labels = dict(rule.get("labels") or {})
            if shape == "sloth" and name == "slo:sli_error:ratio_rate5m":
                value = bad_share(labels["sloth_slo"])
                out.append(Recorded(name, labels, value, interval, reach[name]))
            elif shape == "generated" and name == "slo:sli_total_events:increase5m":
                # The window rules aggregate every SLO at once, so each SLO's label set comes from its SLI rule.
                for window_name in sorted(reach):
                    count = WINDOW_OF_COUNT.fullmatch(window_name)
                    if count is None:
                        continue
                    kind, window = count.groups()
                    events = Traffic.total_rate(labels["service"]) * parse_duration(window)
                    if kind == "good":
                        events *= 1 - bad_share(labels["slo"])
                    recording = recording_interval(groups, window_name, default_interval)
                    out.append(Recorded(window_name, labels, events, recording, reach[window_name]))
    known = {series.name for series in out}
    unknown = sorted(set(reach) - known)
    if unknown:
        raise SystemExit(f"{shape}: rules read back {unknown}, whose history this bench cannot compute")
    return out


def recording_interval(groups: list[dict[str, Any]], name: str, default_interval: int) -> int:
    for group in groups:
        if any(rule.get("record") == name for rule in group["rules"]):
            return parse_duration(group.get("interval", format_duration(default_interval)))
    raise SystemExit(f"no rule records {name}")


def labels_text(labels: dict[str, str]) -> str:
    return ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))


BLOCK_RANGE = 54 * 3600
"""promtool's block range 2h × 3³: one file and one block per range. promtool re-reads its whole
input once per block it writes and holds a block in memory (one 30-day block of 170 M samples
outgrew the machine's 23 GB)."""


class RangeFiles:
    """One OpenMetrics file per block range; each family's `# TYPE` line before its first sample in a file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files: dict[int, TextIO] = {}
        self.typed: set[tuple[int, str]] = set()
        self.samples = 0

    def add(self, family: str, samples: Iterable[tuple[int, str]]) -> None:
        """One series' samples as (timestamp, OpenMetrics line), ascending in time."""
        for block, in_block in itertools.groupby(samples, key=lambda sample: sample[0] // BLOCK_RANGE):
            out = self.files.get(block)
            if out is None:
                out = self.files[block] = (self.folder / f"history-{block}.om").open("w")
            if (block, family) not in self.typed:
                self.typed.add((block, family))
                out.write(f"# TYPE {family} unknown\n")
            lines = [line for _, line in in_block]
            out.writelines(lines)
            self.samples += len(lines)

    def close(self) -> list[Path]:
        for out in self.files.values():
            out.write("# EOF\n")
            out.close()
        return [self.folder / f"history-{block}.om" for block in sorted(self.files)]


def write_openmetrics(
    out: RangeFiles, traffic: Traffic, recorded: list[Recorded], *, start: int, end: int, step: int
) -> None:
    """The raw series from `start` to `end` (exclusive) every `step`, then each recorded series over
    its reach at its interval (or `step`, if coarser). A family's series stay together in each file,
    as OpenMetrics wants."""
    by_metric: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for metric, labels, rate in traffic.series():
        by_metric[metric].append((labels, rate))
    for metric, family_rates in by_metric.items():
        for labels, rate in family_rates:
            text = f"{metric}{{{labels}}}"
            out.add(metric, ((at, f"{text} {traffic.value(rate, at)} {at}\n") for at in range(start, end, step)))
    by_name: dict[str, list[Recorded]] = defaultdict(list)
    for series in recorded:
        by_name[series.name].append(series)
    for name, family in by_name.items():
        for series in family:
            every = max(series.interval, step)
            first = max(start, end - series.reach - 2 * every) // every * every
            text = f"{name}{{{labels_text(series.labels)}}} {series.value!r}"
            out.add(name, ((at, f"{text} {at}\n") for at in range(first, end, every)))


def serve(traffic: Traffic, port: int) -> ThreadingHTTPServer:
    """A scrape target that continues the backfilled counters at the time of each scrape."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            now = int(time.time())
            body = "".join(
                f"{metric}{{{labels}}} {traffic.value(rate, now)}\n" for metric, labels, rate in traffic.series()
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            del format, args

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# ----------------------------------------------------------------------------- measuring


def evaluation_times(url: str) -> tuple[dict[str, tuple[str, float, float]], set[str]]:
    """Group name → (last evaluation, seconds it took, interval seconds); and the rules that failed."""
    body = requests.get(f"{url}/api/v1/rules", timeout=60).json()
    groups = body["data"]["groups"]
    failing = {
        f"{group['name']}: {rule['name']}: {rule.get('lastError', '')}"
        for group in groups
        for rule in group["rules"]
        if rule.get("health") == "err"
    }
    times = {
        group["name"]: (
            group.get("lastEvaluation", ""),
            float(group.get("evaluationTime", 0.0)),
            float(group["interval"]),
        )
        for group in groups
    }
    return times, failing


def cpu_seconds(url: str) -> float:
    """CPU time Prometheus has used so far (its own process_cpu_seconds_total)."""
    return own_metrics(url)["process_cpu_seconds_total"]


QUEUE_SUM = 'prometheus_engine_query_duration_seconds_sum{slice="queue_time"}'
QUEUE_COUNT = 'prometheus_engine_query_duration_seconds_count{slice="queue_time"}'
MISSED = "prometheus_rule_group_iterations_missed_total"
SCHEDULED = "prometheus_rule_group_iterations_total"
"""Scheduled group evaluations, whether run or missed (summed over groups)."""


def own_metrics(url: str) -> dict[str, float]:
    """Prometheus's CPU time so far; the time its queries (every rule is one) waited for one of the
    engine's `--query.max-concurrency` slots, with their count; and the evaluations its groups missed
    because the one before had not finished (summed over groups). CPU per minute is the cost of the
    rule set only while none is missed."""
    wanted = ("process_cpu_seconds_total", QUEUE_SUM, QUEUE_COUNT)
    found = {MISSED: 0.0, SCHEDULED: 0.0}
    for line in requests.get(f"{url}/metrics", timeout=60).text.splitlines():
        name, _, value = line.rpartition(" ")
        if name in wanted:
            found[name] = float(value)
        elif name.startswith((MISSED + "{", SCHEDULED + "{")):
            found[name.partition("{")[0]] += float(value)
    missing = [name for name in wanted if name not in found]
    if missing:
        raise RuntimeError(f"Prometheus does not report {', '.join(missing)}")
    return found


@dataclass
class Phase:
    """One rule set loaded alone: every group's evaluation times, and the CPU Prometheus used."""

    times: dict[str, list[float]] = field(default_factory=dict)
    intervals: dict[str, float] = field(default_factory=dict)
    cpu_per_minute: float = 0.0
    queue_seconds_per_query: float = 0.0
    """Mean wait of a rule's query for an engine slot: evaluation time is wall-clock and includes it,
    CPU does not."""
    missed: int = 0
    """Group evaluations skipped because the previous one was still running."""
    scheduled: int = 0
    """Group evaluations due, run or missed."""
    failing: set[str] = field(default_factory=set)


def measure(url: str, seconds: float) -> Phase:
    """Read `/api/v1/rules` every 15 s for `seconds`; keep each group's distinct evaluations."""
    seen: dict[str, dict[str, float]] = defaultdict(dict)
    phase = Phase()
    before, started = own_metrics(url), time.monotonic()
    while time.monotonic() - started < seconds:
        times, failing = evaluation_times(url)
        phase.failing |= failing
        for name, (last, took, interval) in times.items():
            if last and not last.startswith("0001-"):
                seen[name][last] = took
            phase.intervals[name] = interval
        time.sleep(15)
    after = own_metrics(url)
    phase.cpu_per_minute = (after["process_cpu_seconds_total"] - before["process_cpu_seconds_total"]) / (
        time.monotonic() - started) * 60
    queries = after[QUEUE_COUNT] - before[QUEUE_COUNT]
    phase.queue_seconds_per_query = (after[QUEUE_SUM] - before[QUEUE_SUM]) / queries if queries else 0.0
    phase.missed = int(after[MISSED] - before[MISSED])
    phase.scheduled = int(after[SCHEDULED] - before[SCHEDULED])
    phase.times = {name: list(seen[name].values()) for name in phase.intervals}
    return phase


def group_kind(name: str) -> str:
    """A group's name without its SLO: `sloth-slo-alerts-svc-0001-latency` → `sloth-slo-alerts`."""
    kind = re.sub(r"-?svc-\d+(-availability|-latency)?", "", name)
    return kind or "burnrates"


def summarise(phase: Phase, idle_cpu_per_minute: float, rules: int) -> dict[str, Any]:
    medians = {name: statistics.median(times) for name, times in phase.times.items() if times}
    per_minute = {name: median * 60 / phase.intervals[name] for name, median in medians.items()}
    by_kind: dict[str, float] = defaultdict(float)
    for name, seconds in per_minute.items():
        by_kind[group_kind(name)] += seconds
    return {
        "groups": len(phase.intervals),
        "groups_measured": len(medians),
        "rules": rules,
        "evaluations": sum(len(times) for times in phase.times.values()),
        "seconds_per_round": round(sum(medians.values()), 4),
        "seconds_per_minute": round(sum(per_minute.values()), 4),
        "seconds_per_minute_by_group_kind": {kind: round(value, 4) for kind, value in sorted(by_kind.items())},
        "cpu_seconds_per_minute": round(phase.cpu_per_minute - idle_cpu_per_minute, 3),
        "query_queue_seconds_mean": round(phase.queue_seconds_per_query, 4),
        "evaluations_missed": phase.missed,
        "evaluations_scheduled": phase.scheduled,
        # What a minute of the rule set's schedule costs: CPU per minute over the share it ran.
        "cpu_seconds_per_minute_on_schedule": round(
            (phase.cpu_per_minute - idle_cpu_per_minute) * phase.scheduled / (phase.scheduled - phase.missed), 3
        ) if phase.scheduled > phase.missed else None,
        "rules_failing": sorted(phase.failing)[:5],
    }


def backfill(sources: list[Path], blocks: Path) -> None:
    """One block per file, two promtools at a time (the machine's two CPUs); each file is removed once read."""
    pending = list(sources)
    running: list[tuple[Path, subprocess.Popen[bytes]]] = []
    while pending or running:
        while pending and len(running) < 2:
            source = pending.pop(0)
            argv = [promtool.promtool_path(), "tsdb", "create-blocks-from", "openmetrics", "--quiet"]
            argv += [f"--max-block-duration={BLOCK_RANGE // 3600}h", str(source), str(blocks)]
            running.append((source, subprocess.Popen(argv, stderr=subprocess.PIPE)))
        source, process = running.pop(0)
        _, stderr = process.communicate()
        if process.returncode:
            raise SystemExit(f"backfill of {source.name} failed: {stderr.decode()[-2000:]}")
        source.unlink()


def cost(services: int, history_s: int, step: int, measure_s: float, warmup_s: float) -> dict[str, Any]:
    system = synthetic_system(services)
    sets = rule_sets(system)
    recorded = {shape: recorded_history(shape, groups, SCRAPE_INTERVAL) for shape, groups in sets.items()}
    with tempfile.TemporaryDirectory(prefix="obsbundle-rule-eval-") as folder:
        workdir = Path(folder)
        port = free_port()
        now = int(time.time()) // SCRAPE_INTERVAL * SCRAPE_INTERVAL
        traffic = Traffic(services, now - history_s - 3600, f"127.0.0.1:{port}")
        started = time.perf_counter()
        files = RangeFiles(workdir)
        every_shape = [series for shape in SHAPES for series in recorded[shape]]
        write_openmetrics(files, traffic, every_shape, start=now - history_s, end=now, step=step)
        samples = files.samples
        blocks = workdir / "data"
        backfill(files.close(), blocks)
        backfill_s = time.perf_counter() - started
        target = serve(traffic, port)
        config: dict[str, Any] = {
            "global": {"scrape_interval": f"{SCRAPE_INTERVAL}s", "evaluation_interval": "1m"},
            "rule_files": [],
            "scrape_configs": [
                {"job_name": "bench", "honor_labels": True, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
            ],
        }
        # No compaction of the backfilled blocks while measuring: it would bill one rule set for it.
        server = start_prometheus(
            workdir / "prometheus", config, tsdb=blocks, extra_args=("--storage.tsdb.max-block-duration=2h",)
        )
        phases: dict[str, Phase] = {}
        try:
            time.sleep(warmup_s)
            idle = measure(server.url, warmup_s).cpu_per_minute
            for shape in SHAPES:
                # One rule set at a time, on the same server and data, so none waits for another's CPU.
                rules_file = workdir / f"{shape}.rules.yaml"
                rules_file.write_text(yaml.safe_dump({"groups": sets[shape]}, sort_keys=False))
                (workdir / "prometheus" / "prometheus.yml").write_text(
                    yaml.safe_dump({**config, "rule_files": [str(rules_file)]}, sort_keys=False)
                )
                # A reload waits for the previous set's running evaluations: thousands of groups on a busy
                # machine take longer than the runner's 30-second request timeout.
                requests.post(f"{server.url}/-/reload", timeout=600).raise_for_status()
                time.sleep(warmup_s)
                phases[shape] = measure(server.url, measure_s)
        finally:
            server.stop()
            target.shutdown()
    rows = {
        shape: summarise(phases[shape], idle, sum(len(group["rules"]) for group in sets[shape])) for shape in SHAPES
    }
    return {
        "services": services,
        "slos": len(targets(system)),
        "history": format_duration(history_s),
        "history_step": format_duration(step),
        "raw_series": services * 4,
        "recorded_series_backfilled": {shape: len(recorded[shape]) for shape in SHAPES},
        "backfilled_samples": samples,
        "backfill_seconds": round(backfill_s, 1),
        "warmup_seconds": warmup_s,
        "measured_seconds_per_rule_set": measure_s,
        "idle_cpu_seconds_per_minute": round(idle, 3),
        "rows": rows,
        "over_generated": {
            shape: {
                "evaluation_time_per_minute": _ratio(rows, shape, "seconds_per_minute"),
                "evaluation_time_per_round": _ratio(rows, shape, "seconds_per_round"),
                "cpu_per_minute": _ratio(rows, shape, "cpu_seconds_per_minute"),
            }
            for shape in ("sloth", "pyrra")
        },
    }


def _ratio(rows: dict[str, dict[str, Any]], shape: str, key: str) -> float:
    generated = rows["generated"][key]
    return round(rows[shape][key] / generated, 2) if generated > 0 else 0.0


# ----------------------------------------------------------------------------- behaviour in promtool

BEHAVIOUR_SERVICES = ("busy", "quiet", "uneven")
OUTAGE_AT = 3600
"""Seconds of clean traffic before the outages start."""
OUTAGE_SPAN = 3 * 3600
UNEVEN_SPAN = 86400
DAY_HOURS = (8, 24)
"""Busy from 08:00 to midnight, quiet overnight."""
UNEVEN = {"day": (600.0, 0.0005), "night": (6.0, 0.05)}
"""Requests a minute and the share that fails, by day and by night."""


def behaviour_counts(service: str) -> list[tuple[float, float]]:
    """(requests, failures) in each minute of the behaviour scenarios."""
    minutes = []
    span = UNEVEN_SPAN if service == "uneven" else OUTAGE_SPAN
    for minute in range(span // 60):
        if service == "uneven":
            hour = minute // 60 % 24
            requests_, share = UNEVEN["day" if DAY_HOURS[0] <= hour < DAY_HOURS[1] else "night"]
        else:
            requests_ = 600.0 if service == "busy" else 1.0
            share = 1.0 if minute * 60 >= OUTAGE_AT else 0.0
        minutes.append((requests_, requests_ * share))
    return minutes


def behaviour_input(service: str) -> list[dict[str, str]]:
    """promtool input series: the two status counters, one sample a minute from 0."""
    good, bad, good_values, bad_values = 0.0, 0.0, ["0"], ["0"]
    for requests_, failures in behaviour_counts(service):
        good += requests_ - failures
        bad += failures
        good_values.append(f"{good:g}")
        bad_values.append(f"{bad:g}")
    base = f'namespace="{NAMESPACE}",service="{service}",job="bench",instance="bench:8080"'
    return [
        {"series": f'http_requests_total{{{base},status="200"}}', "values": " ".join(good_values)},
        {"series": f'http_requests_total{{{base},status="500"}}', "values": " ".join(bad_values)},
    ]


def page_selector(shape: str, service: str) -> str:
    """The firing page alerts of `service` under `shape`."""
    if shape == "sloth":
        return f'ALERTS{{alertstate="firing",sloth_severity="page",sloth_service="{service}"}}'
    name = "SloErrorBudgetBurn" if shape == "generated" else "ErrorBudgetBurn"
    return f'ALERTS{{alertstate="firing",alertname="{name}",severity="critical",service="{service}"}}'


def period_error(shape: str, service: str) -> str:
    """The period's error ratio as each shape reports it (Pyrra's as its `pyrra_availability` rule
    computes it from the recorded increases: slo/rules.go GenericRules)."""
    if shape == "generated":
        return f'slo:sli_error:ratio_rate30d{{service="{service}",slo="availability"}}'
    if shape == "sloth":
        return f'slo:sli_error:ratio_rate30d{{sloth_service="{service}"}}'
    slo = f"{service}-availability"
    return (
        f'sum(http_requests:increase30d{{slo="{slo}",status=~"5.."}} or vector(0))'
        f' / sum(http_requests:increase30d{{slo="{slo}"}})'
    )


GOT = re.compile(r'expr: "(?P<expr>(?:[^"\\]|\\.)*)", time: \S+,\s*exp: [^\n]*\n\s*got: (?P<got>[^\n]*)')


def promtool_values(test_file: Path, exprs: list[str]) -> dict[str, float | None]:
    """Each expression's one value at its evaluation time, read from promtool's report of a failed
    expectation (every test expects an impossible −1); None when the expression returned nothing."""
    result = promtool.test_rules([test_file])
    if not GOT.search(result.output):
        raise SystemExit(f"promtool did not report the values:\n{result.output[-3000:]}")
    values: dict[str, float | None] = dict.fromkeys(exprs)
    for match in GOT.finditer(result.output):
        expr = json.loads(f'"{match["expr"]}"')
        # One sample, `{labels} value`, or nothing.
        got = re.fullmatch(r"\{[^}]*\} (\S+)", match["got"].strip())
        if expr in values and got:
            values[expr] = float(got.group(1))
    return values


def expect_impossible(exprs: list[str], at: int) -> list[dict[str, Any]]:
    return [
        {"expr": expr, "eval_time": format_duration(at), "exp_samples": [{"labels": "{}", "value": -1}]}
        for expr in exprs
    ]


def behaviour() -> dict[str, Any]:
    system = synthetic_system(len(BEHAVIOUR_SERVICES), latency=False, rename=lambda index: BEHAVIOUR_SERVICES[index])
    sets = rule_sets(system)
    out: dict[str, Any] = {"detection_seconds": {}, "uneven_period_error": {}}
    counts = behaviour_counts("uneven")
    true_ratio = sum(bad for _, bad in counts) / sum(total for total, _ in counts)
    with tempfile.TemporaryDirectory(prefix="obsbundle-rule-eval-behaviour-") as folder:
        workdir = Path(folder)
        for shape in SHAPES:
            (workdir / f"{shape}.rules.yaml").write_text(yaml.safe_dump({"groups": sets[shape]}, sort_keys=False))
            # The first firing page alert's timestamp: ALERTS is written to promtool's storage at every evaluation.
            first_page = {
                service: f"min(min_over_time(timestamp({page_selector(shape, service)})"
                f"[{format_duration(OUTAGE_SPAN)}:30s]))"
                for service in ("busy", "quiet")
            }
            error = period_error(shape, "uneven")
            test = {
                "rule_files": [f"{shape}.rules.yaml"],
                # Each shape's page path at its own interval: Pyrra's burn-rate groups run every 30 s.
                "evaluation_interval": "30s" if shape == "pyrra" else "1m",
                # Recordings before the alerts that read them, as written: promtool's order is random otherwise.
                "group_eval_order": [group["name"] for group in sets[shape]],
                "tests": [
                    {
                        "name": "outage",
                        "interval": "1m",
                        "input_series": behaviour_input("busy") + behaviour_input("quiet"),
                        "promql_expr_test": expect_impossible(list(first_page.values()), OUTAGE_SPAN),
                    },
                    {
                        "name": "uneven",
                        "interval": "1m",
                        "input_series": behaviour_input("uneven"),
                        "promql_expr_test": expect_impossible([error], UNEVEN_SPAN),
                    },
                ],
            }
            test_file = workdir / f"{shape}.test.yaml"
            test_file.write_text(yaml.safe_dump(test, sort_keys=False, width=1 << 20))
            values = promtool_values(test_file, [*first_page.values(), error])
            detection: dict[str, int | None] = {}
            for service, expr in first_page.items():
                fired = values[expr]
                detection[service] = None if fired is None else round(fired - OUTAGE_AT)
            out["detection_seconds"][shape] = detection
            reported = values[error]
            out["uneven_period_error"][shape] = {
                "reported": reported,
                "relative_error": None if reported is None else round(reported / true_ratio - 1, 4),
            }
    out["uneven_true_ratio"] = true_ratio
    out["scenarios"] = {
        "outage": f"600 (busy) and 1 (quiet) requests a minute, all failing from {format_duration(OUTAGE_AT)}; "
        "99.9 % over 30d; the first firing page alert, its for included, evaluated every minute (Pyrra's "
        "every 30 s, its burn-rate groups' interval)",
        "uneven": f"{format_duration(UNEVEN_SPAN)} of {UNEVEN['day'][0]:g} requests a minute "
        f"({UNEVEN['day'][1]:.2%} failing) from {DAY_HOURS[0]:02d}:00 to midnight and {UNEVEN['night'][0]:g} a "
        f"minute ({UNEVEN['night'][1]:.0%} failing) overnight; the 30d error ratio each shape reports at its end",
    }
    return out


# ----------------------------------------------------------------------------- report


def print_table(result: dict[str, Any]) -> None:
    if "rows" in result:
        print(
            f"{result['services']} services, {result['slos']} SLOs, {result['history']} of history every "
            f"{result['history_step']} ({result['backfilled_samples']:,} samples backfilled in "
            f"{result['backfill_seconds']} s), Prometheus {result['prometheus']}; each rule set alone for "
            f"{result['measured_seconds_per_rule_set']:.0f} s"
        )
        header = (
            f"{'rule set':<10} {'groups':>7} {'rules':>7} {'evals':>7} {'eval s/round':>13} {'eval s/min':>11} "
            f"{'CPU s/min':>10} {'queued s/query':>15}"
        )
        print(header)
        print("-" * len(header))
        for name, row in result["rows"].items():
            print(
                f"{name:<10} {row['groups']:>7} {row['rules']:>7} {row['evaluations']:>7} "
                f"{row['seconds_per_round']:>13.3f} {row['seconds_per_minute']:>11.3f} "
                f"{row['cpu_seconds_per_minute']:>10.3f} {row.get('query_queue_seconds_mean', 0.0):>15.4f}"
            )
        for shape, ratios in result["over_generated"].items():
            print(
                f"{shape} / generated: evaluation time per minute {ratios['evaluation_time_per_minute']}×, "
                f"per round {ratios['evaluation_time_per_round']}×, "
                f"Prometheus CPU per minute {ratios['cpu_per_minute']}×"
            )
    behaviour_ = result["behaviour"]
    print(f"uneven traffic: true error ratio {behaviour_['uneven_true_ratio']:.6f}")
    for shape in SHAPES:
        detection = behaviour_["detection_seconds"][shape]
        error = behaviour_["uneven_period_error"][shape]
        relative = "no value" if error["relative_error"] is None else f"{error['relative_error']:+.1%}"
        print(
            f"{shape:<10} pages after {_seconds(detection['busy'])} (600/min), {_seconds(detection['quiet'])} "
            f"(1/min); period error ratio {error['reported']} ({relative} against the counts)"
        )


def _seconds(value: int | None) -> str:
    return "never" if value is None else f"{value} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--history", default="30d", help="history to backfill (a Prometheus duration)")
    parser.add_argument("--step", default="1m", help="seconds between backfilled raw samples")
    parser.add_argument("--measure", type=float, default=330, help="seconds each rule set is measured")
    parser.add_argument("--warmup", type=float, default=90, help="seconds before measuring (and of idle baseline)")
    parser.add_argument("--behaviour-only", action="store_true", help="only the promtool detection and error runs")
    parser.add_argument("--json", type=Path, default=RESULTS / "rule_eval.json")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {
        "benchmark": "rule_eval",
        "command": " ".join(["python3 -m bench.rule_eval", *(argv if argv is not None else sys.argv[1:])]),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "prometheus": promtool.version(),
        "commit": _commit(),
    }
    if not args.behaviour_only:
        history, step = parse_duration(args.history), parse_duration(args.step)
        result |= cost(args.services, history, step, args.measure, args.warmup)
    result["behaviour"] = behaviour()
    print_table(result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


def _commit() -> str:
    """The commit whose rules were measured, when run from a checkout."""
    completed = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False, cwd=Path(__file__).parent
    )
    return completed.stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
