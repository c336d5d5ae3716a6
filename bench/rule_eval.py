"""Rule evaluation cost in a real Prometheus: the generated SLO rules against a naive equivalent.

    python -m bench.rule_eval [--services 1000] [--history 1d] [--measure 390] [--warmup 60]
        [--json bench/results/rule_eval.json]

One synthetic system of `--services` APIs (prometheus-client), each with a 99.9 % availability SLO
and a 95 % latency SLO over 30 days. Their raw series (requests by status, the 500 ms bucket and
the histogram count; one minute apart) are backfilled for `--history` with `promtool tsdb
create-blocks-from openmetrics`, then served live by a local target that continues the same
counters. The same Prometheus then evaluates each rule set alone, one after the other, on the same
data in the same run:

- generated: the system's SLO groups as `generate.py` writes them (5-minute event counts, windows
  derived from them, alerts per SLO);
- naive: the same alerts and budgets with every window computed from the raw series
  (`rate(…[1h])`, `rate(…[30d])`, …), as if no recording rule existed.

After a warm-up, `/api/v1/rules` is read every 15 s for `--measure` seconds; each group's median
`evaluationTime` is summed per rule set, per round and per minute (a group every 5 minutes counts a
fifth), and Prometheus's own CPU time per minute (above an idle baseline with no rules) is the
cross-check. Loading the rule sets one at a time keeps one from waiting on the other's CPU. The
naive set's cost grows with the history it reads (up to 30 days of raw samples in production); the
generated set's does not, so a longer `--history` widens the gap.
The Prometheus is stopped by its own pid at the end.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
import yaml

from obsbundle.config import DEFAULT_CONFIG
from obsbundle.durations import format_duration, parse_duration
from obsbundle.model import Slo, System
from obsbundle.rules import rule_groups
from obsbundle.rules.slo import budget_text, min_bad_events, tier_threshold
from obsbundle.slo_math import BURN_TIERS
from obsbundle.tools import promtool
from obsbundle.tools.processes import free_port
from obsbundle.tools.prometheus import start_prometheus

RESULTS = Path(__file__).resolve().parent / "results"
NAMESPACE = "bench"
STEP = 60
"""Seconds between samples, backfilled and scraped."""
THRESHOLD_LE = "0.5"


def synthetic_system(services: int) -> System:
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
                    "name": service_name(index),
                    "namespace": NAMESPACE,
                    "metrics": {"port": "http"},
                    "slos": [
                        {"name": "availability", "objective": 99.9, "window": "30d"},
                        {"name": "latency", "objective": 95, "threshold": "500ms", "window": "30d"},
                    ],
                }
                for index in range(services)
            ],
        }
    )


def service_name(index: int) -> str:
    return f"svc-{index:04d}"


class Traffic:
    """Counters that grow at a per-service constant rate from `origin`: 0.1 % failed, 3 % slow."""

    def __init__(self, services: int, origin: int, instance: str) -> None:
        self.services, self.origin, self.instance = services, origin, instance

    def series(self) -> Iterator[tuple[str, str, float]]:
        """(metric, labels text, events per second) of every raw series."""
        for index in range(self.services):
            rate = 5.0 + index % 17
            base = f'namespace="{NAMESPACE}",service="{service_name(index)}"'
            target = f'{base},job="bench",instance="{self.instance}"'
            yield "http_requests_total", f'{target},status="200"', rate * 0.999
            yield "http_requests_total", f'{target},status="500"', rate * 0.001
            yield "http_request_duration_seconds_bucket", f'{target},le="{THRESHOLD_LE}"', rate * 0.97
            yield "http_request_duration_seconds_count", target, rate

    def value(self, per_second: float, at: int) -> int:
        return int(per_second * (at - self.origin))


def write_openmetrics(path: Path, traffic: Traffic, start: int, end: int) -> int:
    """The raw series from `start` to `end` (exclusive), one family after the other; returns samples."""
    samples = 0
    by_metric: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for metric, labels, rate in traffic.series():
        by_metric[metric].append((labels, rate))
    with path.open("w") as out:
        for metric, series in by_metric.items():
            out.write(f"# TYPE {metric} unknown\n")
            for labels, rate in series:
                lines = [f"{metric}{{{labels}}} {traffic.value(rate, at)} {at}\n" for at in range(start, end, STEP)]
                out.writelines(lines)
                samples += len(lines)
        out.write("# EOF\n")
    return samples


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


def generated_groups(system: System) -> list[dict[str, Any]]:
    return [group.to_dict() for group in rule_groups(system, DEFAULT_CONFIG.rules) if "-slo-" in group.name]


def naive_ratio(slo: Slo, target: str, window: str) -> str:
    """The SLO's error ratio over `window`, read from the raw series."""
    if slo.threshold is None:
        bad = f'http_requests_total{{{target},status=~"5.."}}'
        return f"(sum(rate({bad}[{window}])) / sum(rate(http_requests_total{{{target}}}[{window}])))"
    good = f'http_request_duration_seconds_bucket{{{target},le="{THRESHOLD_LE}"}}'
    total = f"http_request_duration_seconds_count{{{target}}}"
    return f"(1 - sum(rate({good}[{window}])) / sum(rate({total}[{window}])))"


def naive_total(slo: Slo, target: str) -> str:
    metric = "http_requests_total" if slo.threshold is None else "http_request_duration_seconds_count"
    return f"{metric}{{{target}}}"


def naive_groups(system: System) -> list[dict[str, Any]]:
    """Per service, the generated alerts and budgets with every window read from raw series."""
    groups = []
    for service in system.services:
        target = f'namespace="{service.namespace}",service="{service.name}"'
        alerts: list[dict[str, Any]] = []
        budgets: list[dict[str, Any]] = []
        for slo in service.slos:
            labels = {"namespace": service.namespace, "service": service.name, "slo": slo.name}
            total = naive_total(slo, target)
            for tier in BURN_TIERS:
                threshold = float(tier_threshold(tier, slo))
                long_ratio = naive_ratio(slo, target, tier.long_window)
                short_ratio = naive_ratio(slo, target, tier.short_window)
                guard = min_bad_events(slo, DEFAULT_CONFIG.rules)
                alerts.append(
                    {
                        "alert": "NaiveSloErrorBudgetBurn",
                        "expr": f"{long_ratio} > {threshold!r}\nand {short_ratio} > {threshold!r}\n"
                        f"and sum(increase({total}[{tier.long_window}])) * {long_ratio} >= {guard}",
                        "for": format_duration(tier.short_window_s // 5),
                        "labels": {**labels, "window": tier.window_pair, "severity": tier.severity},
                    }
                )
            alerts.append({"alert": "NaiveSloSliAbsent", "expr": f"absent({total})", "for": "15m", "labels": labels})
            budgets.append(
                {
                    "record": "naive:error_budget_remaining:ratio",
                    "expr": f"1 - {naive_ratio(slo, target, slo.window)} / {budget_text(slo)}",
                    "labels": labels,
                }
            )
        groups.append({"name": f"naive-alerts-{service.name}", "interval": "1m", "rules": alerts})
        groups.append({"name": f"naive-budget-{service.name}", "interval": "5m", "rules": budgets})
    return groups


def evaluation_times(url: str) -> dict[str, tuple[str, float, float]]:
    """Group name → (last evaluation, seconds it took, interval seconds)."""
    body = requests.get(f"{url}/api/v1/rules", timeout=60).json()
    return {
        group["name"]: (
            group.get("lastEvaluation", ""),
            float(group.get("evaluationTime", 0.0)),
            float(group["interval"]),
        )
        for group in body["data"]["groups"]
    }


def cpu_seconds(url: str) -> float:
    """CPU time Prometheus has used so far (its own process_cpu_seconds_total)."""
    for line in requests.get(f"{url}/metrics", timeout=60).text.splitlines():
        if line.startswith("process_cpu_seconds_total "):
            return float(line.split()[1])
    raise RuntimeError("Prometheus does not report process_cpu_seconds_total")


@dataclass
class Phase:
    """One rule set loaded alone: every group's evaluation times, and the CPU Prometheus used."""

    times: dict[str, list[float]] = field(default_factory=dict)
    intervals: dict[str, float] = field(default_factory=dict)
    cpu_per_minute: float = 0.0


def measure(url: str, seconds: float) -> Phase:
    """Read `/api/v1/rules` every 15 s for `seconds`; keep each group's distinct evaluations."""
    seen: dict[str, dict[str, float]] = defaultdict(dict)
    phase = Phase()
    cpu_before, started = cpu_seconds(url), time.monotonic()
    while time.monotonic() - started < seconds:
        for name, (last, took, interval) in evaluation_times(url).items():
            if last and not last.startswith("0001-"):
                seen[name][last] = took
            phase.intervals[name] = interval
        time.sleep(15)
    phase.cpu_per_minute = (cpu_seconds(url) - cpu_before) / (time.monotonic() - started) * 60
    phase.times = {name: list(seen[name].values()) for name in phase.intervals}
    return phase


def group_kind(name: str) -> str:
    """A group's name without its service: `bench-slo-alerts-svc-0001` → `bench-slo-alerts`."""
    return re.sub(r"-svc-\d+$", "", name)


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
        "seconds_per_round": sum(medians.values()),
        "seconds_per_minute": sum(per_minute.values()),
        "seconds_per_minute_by_group_kind": dict(sorted(by_kind.items())),
        "cpu_seconds_per_minute": phase.cpu_per_minute - idle_cpu_per_minute,
    }


def run(services: int, history_s: int, measure_s: float, warmup_s: float) -> dict[str, Any]:
    system = synthetic_system(services)
    rule_sets = {"generated": generated_groups(system), "naive": naive_groups(system)}
    with tempfile.TemporaryDirectory(prefix="obsbundle-rule-eval-") as folder:
        workdir = Path(folder)
        port = free_port()
        now = int(time.time()) // STEP * STEP
        traffic = Traffic(services, now - history_s - 3600, f"127.0.0.1:{port}")
        started = time.perf_counter()
        samples = write_openmetrics(workdir / "history.om", traffic, now - history_s, now)
        blocks = workdir / "data"
        backfill = promtool.create_blocks_from_openmetrics(workdir / "history.om", blocks)
        if not backfill.ok:
            raise SystemExit(f"backfill failed: {backfill.output}")
        (workdir / "history.om").unlink()
        backfill_s = time.perf_counter() - started
        target = serve(traffic, port)
        config: dict[str, Any] = {
            "global": {"scrape_interval": f"{STEP}s", "evaluation_interval": "1m"},
            "rule_files": [],
            "scrape_configs": [
                {"job_name": "bench", "honor_labels": True, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
            ],
        }
        server = start_prometheus(workdir / "prometheus", config, tsdb=blocks)
        phases: dict[str, Phase] = {}
        try:
            time.sleep(warmup_s)
            idle = measure(server.url, warmup_s).cpu_per_minute
            for name, groups in rule_sets.items():
                # One rule set at a time, on the same server and data, so neither waits for the other's CPU.
                rules_file = workdir / f"{name}.rules.yaml"
                rules_file.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
                (workdir / "prometheus" / "prometheus.yml").write_text(
                    yaml.safe_dump({**config, "rule_files": [str(rules_file)]}, sort_keys=False)
                )
                server.reload()
                time.sleep(warmup_s)
                phases[name] = measure(server.url, measure_s)
        finally:
            server.stop()
            target.shutdown()
    rows = {
        name: summarise(phases[name], idle, sum(len(group["rules"]) for group in groups))
        for name, groups in rule_sets.items()
    }
    return {
        "benchmark": "rule_eval",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "prometheus": promtool.version(),
        "services": services,
        "slos": services * 2,
        "history": format_duration(history_s),
        "raw_series": services * 4,
        "backfilled_samples": samples,
        "backfill_seconds": round(backfill_s, 1),
        "measured_seconds_per_rule_set": measure_s,
        "idle_cpu_seconds_per_minute": round(idle, 3),
        "rows": rows,
        "naive_over_generated": {
            "evaluation_time_per_minute": _ratio(rows, "seconds_per_minute"),
            "evaluation_time_per_round": _ratio(rows, "seconds_per_round"),
            "cpu_per_minute": _ratio(rows, "cpu_seconds_per_minute"),
        },
    }


def _ratio(rows: dict[str, dict[str, Any]], key: str) -> float:
    generated = rows["generated"][key]
    return round(rows["naive"][key] / generated, 2) if generated > 0 else 0.0


def print_table(result: dict[str, Any]) -> None:
    print(
        f"{result['services']} services, {result['slos']} SLOs, {result['history']} of history "
        f"({result['backfilled_samples']:,} samples backfilled in {result['backfill_seconds']} s), "
        f"Prometheus {result['prometheus']}; each rule set alone for {result['measured_seconds_per_rule_set']:.0f} s"
    )
    header = (
        f"{'rule set':<10} {'groups':>7} {'rules':>7} {'evals':>7} {'eval s/round':>13} {'eval s/min':>11} "
        f"{'CPU s/min':>10}"
    )
    print(header)
    print("-" * len(header))
    for name, row in result["rows"].items():
        print(
            f"{name:<10} {row['groups']:>7} {row['rules']:>7} {row['evaluations']:>7} "
            f"{row['seconds_per_round']:>13.3f} {row['seconds_per_minute']:>11.3f} "
            f"{row['cpu_seconds_per_minute']:>10.3f}"
        )
    ratios = result["naive_over_generated"]
    print(
        f"naive / generated: evaluation time per minute {ratios['evaluation_time_per_minute']}×, "
        f"per round {ratios['evaluation_time_per_round']}×, Prometheus CPU per minute {ratios['cpu_per_minute']}×"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--history", default="1d", help="raw history to backfill (a Prometheus duration)")
    parser.add_argument("--measure", type=float, default=390, help="seconds each rule set is measured")
    parser.add_argument("--warmup", type=float, default=60, help="seconds before measuring (and of idle baseline)")
    parser.add_argument("--json", type=Path, default=RESULTS / "rule_eval.json")
    args = parser.parse_args(argv)
    result = run(args.services, parse_duration(args.history), args.measure, args.warmup)
    print_table(result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
