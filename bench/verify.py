"""`--verify` for 10, 100 and 1,000 synthetic services against a real Prometheus that holds their series.

    python -m bench.verify [--sizes 10 100 1000] [--concurrency 4] [--json bench/results/verify.json]

For each size, bench/generate.py's synthetic system is built in memory and every selector its
rules and dashboards read is collected. One series per selector, with labels that satisfy its
matchers, is written as OpenMetrics and loaded into a fresh data folder with `promtool tsdb
create-blocks-from openmetrics`; a real Prometheus is started on it. Then, in the same run and
against the same Prometheus: `--verify` as shipped (50 selectors per request), and the naive
way, one request per selector. The table shows time, requests and selectors; ms/selector flat
across sizes means the cost grows linearly, and the ratio is naive time over batched time.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.generate import synthetic_system
from obsbundle.config import DEFAULT_CONFIG
from obsbundle.loader import load_inventory
from obsbundle.model import Inventory
from obsbundle.tools.prometheus import start_prometheus
from obsbundle.verify import BATCH_SIZE, DEFAULT_CONCURRENCY, Connection, Selector, Window, check, system_reads

RESULTS = Path(__file__).resolve().parent / "results"
# The regex parser `re` itself uses: the public sre_parse alias is deprecated, and nothing else
# turns a pattern into a tree from which a matching string can be read.
sre_parse: Any = importlib.import_module("re._parser")
sre_constants: Any = importlib.import_module("re._constants")


def _example(node: Any) -> str:
    """A short string that the parsed regex `node` matches (first branch, fewest repeats, at least one)."""
    out = []
    for op, arg in node:
        if op is sre_constants.LITERAL:
            out.append(chr(arg))
        elif op is sre_constants.ANY:
            out.append("x")
        elif op is sre_constants.IN:
            out.append(_first_of(arg))
        elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
            low, _, item = arg
            out.append(_example(item) * max(low, 1))
        elif op is sre_constants.SUBPATTERN:
            out.append(_example(arg[-1]))
        elif op is sre_constants.BRANCH:
            out.append(_example(arg[1][0]))
    return "".join(out)


def _first_of(items: Any) -> str:
    for op, arg in items:
        if op is sre_constants.LITERAL:
            return chr(arg)
        if op is sre_constants.RANGE:
            return chr(arg[0])
        if op is sre_constants.CATEGORY:
            return "0" if arg is sre_constants.CATEGORY_DIGIT else "a"
    return "a"


def labels_for(selector: Selector) -> dict[str, str] | None:
    """A label set the selector matches, or None when the simple choices here do not find one."""
    labels = {"__name__": selector.metric}
    for matcher in selector.matchers:
        if matcher.op == "=":
            labels[matcher.label] = matcher.value
        elif matcher.op == "=~":
            labels[matcher.label] = _example(sre_parse.parse(matcher.value))
        elif matcher.op == "!=" and matcher.value == "":
            labels[matcher.label] = "x"
    labels = {name: value for name, value in labels.items() if value != ""}
    return labels if selector.matches(labels) else None


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def openmetrics(selectors: list[Selector], at: float) -> tuple[str, int]:
    """One sample at `at` for each selector that a label set is found for, as OpenMetrics; and how many."""
    by_metric: dict[str, set[str]] = {}
    for selector in selectors:
        labels = labels_for(selector)
        if labels is None or not selector.metric:
            continue
        name = labels.pop("__name__")
        body = ",".join(f'{key}="{_escape(value)}"' for key, value in sorted(labels.items()))
        by_metric.setdefault(name, set()).add(f"{name}{{{body}}} 1 {at:.3f}")
    lines = []
    for name in sorted(by_metric):
        # Counter-like names need no declared type: "unknown" families take any name.
        lines.append(f"# TYPE {re.sub(r'[^a-zA-Z0-9_:]', '_', name)} unknown")
        lines.extend(sorted(by_metric[name]))
    lines.append("# EOF")
    return "\n".join(lines) + "\n", sum(len(series) for series in by_metric.values())


def measure(services: int, concurrency: int, scratch: Path) -> dict[str, Any]:
    folder = scratch / str(services)
    folder.mkdir()
    inventory_path = folder / "bench.yaml"
    inventory_path.write_text(yaml.safe_dump(synthetic_system(services), sort_keys=False))
    inventory: Inventory = load_inventory([inventory_path])
    started = time.perf_counter()
    reads = [system_reads(system, DEFAULT_CONFIG) for system in inventory.systems]
    selectors = sorted({selector for read in reads for selector in read.selectors})
    collect_s = time.perf_counter() - started
    now = time.time()
    text, series = openmetrics(selectors, now - 600)
    (folder / "series.om").write_text(text)
    data = folder / "data"
    subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(folder / "series.om"), str(data)],
        check=True, capture_output=True,
    )
    prometheus = start_prometheus(folder, {"global": {"scrape_interval": "1m"}, "scrape_configs": []}, tsdb=data)
    try:
        connection = Connection(prometheus.url, concurrency=concurrency)
        rows = {}
        for label, batch in (("batched", BATCH_SIZE), ("naive", 1)):
            begun = time.perf_counter()
            report = check(reads, connection, Window.ending_now(3600, 7 * 86400), batch_size=batch)
            rows[label] = {
                "seconds": time.perf_counter() - begun,
                "requests": report.requests,
                "missing": sum(len(system.findings) for system in report.systems),
            }
    finally:
        prometheus.stop()
    return {
        "services": services,
        "selectors": len(selectors),
        "series_loaded": series,
        "collect_s": collect_s,
        **{f"{label}_{key}": value for label, row in rows.items() for key, value in row.items()},
        "naive_vs_batched": rows["naive"]["seconds"] / rows["batched"]["seconds"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--json", type=Path, default=RESULTS / "verify.json")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="obsbundle-bench-verify-"))
    try:
        rows = [measure(size, args.concurrency, scratch) for size in args.sizes]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    header = (
        f"{'services':>8} {'selectors':>9} {'series':>7} {'collect s':>9} {'batched s':>9} {'requests':>8} "
        f"{'ms/sel':>7} {'naive s':>8} {'requests':>8} {'ms/sel':>7} {'naive/batched':>13} {'missing':>7}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['services']:>8} {row['selectors']:>9} {row['series_loaded']:>7} {row['collect_s']:>9.2f} "
            f"{row['batched_seconds']:>9.2f} {row['batched_requests']:>8} "
            f"{1000 * row['batched_seconds'] / row['selectors']:>7.3f} {row['naive_seconds']:>8.2f} "
            f"{row['naive_requests']:>8} {1000 * row['naive_seconds'] / row['selectors']:>7.3f} "
            f"{row['naive_vs_batched']:>12.1f}× {row['batched_missing']:>7}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "benchmark": "verify",
                "python": platform.python_version(),
                "machine": platform.machine(),
                "concurrency": args.concurrency,
                "batch_size": BATCH_SIZE,
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
