"""Generation cost for 10, 100 and 1,000 synthetic services: time and peak memory, per stage.

    python bench/generate.py [--sizes 10 100 1000] [--jobs 1 2] [--repeat 3]
                             [--baseline GIT-REVISION] [--json bench/results/generate.json]

Each run is a fresh interpreter, so peak RSS belongs to that run alone. Variants: one process,
a worker process per CPU, and optionally an earlier revision of obsbundle (`--baseline`, taken
from git into a scratch folder), all on the same inventory. The variants take turns, so that a
slow spell of a shared machine slows them alike and the ratios between them hold. The job counts
must write the same bytes; whether the earlier revision did too is reported. Stages: load (parse
+ validate the YAML) and generate (every generator, rendering and the atomic writer: what
`generate.py` does after loading). The ms/svc column divides the total by the service count:
flat means the cost grows linearly.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from obsbundle.bundle import PARALLEL_FROM_SERVICES, default_jobs, worker_count, write_output
from obsbundle.config import DEFAULT_CONFIG
from obsbundle.loader import load_inventory
from obsbundle.writer import MARKER

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parent.parent


def synthetic_system(services: int) -> dict[str, Any]:
    """One system with `services` APIs spread over pools of ten, each with two SLOs and a datastore."""
    pools = max(1, services // 10)
    return {
        "apiVersion": "obsbundle/v1",
        "kind": "System",
        "name": "bench",
        "cluster": "bench",
        "owner": {"team": "platform", "slack_channel": "#platform", "oncall_channel": "#platform-oncall"},
        "monitoring": {
            "grafana_url": "https://grafana.bench.test",
            "alertmanager_url": "https://alertmanager.bench.test",
            "runbook_url": "https://runbooks.bench.test/{system}/{alert}.md",
        },
        "node_pools": [{"name": f"pool-{index}", "min_nodes": 1, "max_nodes": 5} for index in range(pools)],
        "datastores": [
            {"name": "main-db", "kind": "postgres", "namespace": "data"},
            {"name": "broker", "kind": "rabbitmq", "namespace": "data"},
        ],
        "services": [
            {
                "name": f"svc-{index:04d}",
                "namespace": f"team-{index % 20}",
                "node_pool": f"pool-{index % pools}",
                "replicas": 2,
                "autoscaling": {"min": 2, "max": 6},
                "metrics": {"port": "http", "instrumentation": "prometheus-client"},
                "owner": {"team": f"team-{index % 20}", "slack_channel": f"#team-{index % 20}"},
                "datastores": ["main-db"],
                "latency_alert": "1s",
                "error_rate_alert": 0.05,
                "slos": [
                    {"name": "availability", "objective": 99.9, "window": "30d"},
                    {"name": "latency", "objective": 99, "threshold": "500ms", "window": "30d"},
                ],
            }
            for index in range(services)
        ],
        "queues": [{"name": f"jobs-{index}", "broker": "rabbitmq", "datastore": "broker"} for index in range(pools)],
    }


def measure_once(inventory_path: Path, jobs: int, trace_memory: bool, scratch: Path) -> dict[str, Any]:
    """Time each stage of one run, in this process; returns seconds and memory.

    tracemalloc slows allocation-heavy code several times over, so the timed runs leave it off
    and one extra run, in one process, measures the Python heap peak.
    """
    # Outputs stay until the whole bench ends: deleting 300 MiB (with online discard) slows the
    # file creation of the next run for seconds, which would charge one run for another's cleanup.
    os.sync()  # nor is the previous run's writeback this run's cost
    out = Path(tempfile.mkdtemp(prefix="run-", dir=scratch)) / "out"
    if trace_memory:
        tracemalloc.start()
    started = time.perf_counter()
    inventory = load_inventory([inventory_path])
    loaded = time.perf_counter()
    write_output(inventory, DEFAULT_CONFIG, out, jobs=jobs)
    written = time.perf_counter()
    traced_peak = tracemalloc.get_traced_memory()[1] if trace_memory else 0
    tracemalloc.stop()
    return {
        "load_s": loaded - started,
        "generate_s": written - loaded,
        "total_s": written - started,
        "workers": worker_count(inventory, jobs),
        "python_peak_mib": traced_peak / 2**20,
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "worker_max_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "out": str(out),
    }


# The same run with an earlier revision's API (build everything in memory, then write it).
BASELINE_CHILD = """
import json, os, resource, sys, tempfile, time
from pathlib import Path
from obsbundle.bundle import build
from obsbundle.loader import load_inventory
from obsbundle.settings import Settings
from obsbundle.writer import write_tree
inventory_path, scratch = Path(sys.argv[1]), Path(sys.argv[2])
os.sync()
out = Path(tempfile.mkdtemp(prefix="baseline-", dir=scratch)) / "out"
started = time.perf_counter()
inventory = load_inventory([inventory_path])
loaded = time.perf_counter()
write_tree(build(inventory, Settings()), out)
written = time.perf_counter()
print(json.dumps({
    "load_s": loaded - started, "generate_s": written - loaded, "total_s": written - started, "workers": 0,
    "python_peak_mib": None, "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "worker_max_rss_mib": 0.0, "out": str(out),
}))
"""


@dataclass(frozen=True)
class Variant:
    """One way of generating: this checkout with a job count, or an earlier revision."""

    label: str
    jobs: int
    tree: Path | None = None
    """The earlier revision's source tree; None for this checkout."""

    def run(self, inventory_path: Path, scratch: Path, *flags: str) -> dict[str, Any]:
        """One run in a fresh interpreter (import time excluded), with the output's size and digest."""
        if self.tree is None:
            arguments = ["--child", str(inventory_path), "--jobs", str(self.jobs), "--scratch", str(scratch), *flags]
            command, environment = [sys.executable, __file__, *arguments], None
        else:
            command = [sys.executable, "-c", BASELINE_CHILD, str(inventory_path), str(scratch)]
            environment = {**os.environ, "PYTHONPATH": str(self.tree / "src")}
        completed = subprocess.run(command, capture_output=True, text=True, check=True, env=environment)
        result: dict[str, Any] = json.loads(completed.stdout)
        return {**result, **_output_summary(Path(result.pop("out")))}


def _output_summary(out: Path) -> dict[str, Any]:
    """Files, bytes and a digest of an output folder, read after the clock stopped: the digest
    proves that the variants wrote the same bytes."""
    digest = hashlib.sha256()
    files = total = 0
    for path in sorted(out.rglob("*")):
        if path.is_file() and path.name != MARKER:
            data = path.read_bytes()
            digest.update(path.relative_to(out).as_posix().encode() + b"\0" + data)
            files += 1
            total += len(data)
    return {"files": files, "bytes": total, "sha256": digest.hexdigest()}


def _baseline_tree(revision: str, scratch: Path) -> Path:
    """The source tree of `revision`, exported from git (symbolic links kept)."""
    tree = scratch / "baseline"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    return tree


def measure(services: int, variants: list[Variant], repeat: int, scratch: Path) -> list[dict[str, Any]]:
    """Best of `repeat` runs per variant, the variants taking turns."""
    inventory_path = scratch / f"bench-{services}.yaml"
    inventory_path.write_text(yaml.safe_dump(synthetic_system(services), sort_keys=False))
    runs: dict[str, list[dict[str, Any]]] = {variant.label: [] for variant in variants}
    for _ in range(repeat):
        for variant in variants:
            runs[variant.label].append(variant.run(inventory_path, scratch))
    rows = []
    for variant in variants:
        found = runs[variant.label]
        best = min(found, key=lambda run: run["total_s"])
        if variant.tree is None and variant.jobs == 1:
            best["python_peak_mib"] = variant.run(inventory_path, scratch, "--trace-memory")["python_peak_mib"]
        rows.append(
            {
                "services": services,
                "variant": variant.label,
                "jobs": variant.jobs,
                **best,
                "runs": repeat,
                "all_totals_s": [run["total_s"] for run in found],
            }
        )
    current = {row["sha256"] for row, variant in zip(rows, variants, strict=True) if variant.tree is None}
    assert len(current) == 1, f"{services} services: the job counts wrote different bytes"
    for row in rows:
        row["same_bytes_as_this_checkout"] = row["sha256"] in current
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--jobs", type=int, nargs="+", default=sorted({1, default_jobs()}))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", metavar="GIT-REVISION", help="also time this earlier revision of obsbundle")
    parser.add_argument("--json", type=Path, default=RESULTS / "generate.json")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--trace-memory", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure_once(args.child, args.jobs[0], args.trace_memory, args.scratch)))
        return 0

    scratch = Path(tempfile.mkdtemp(prefix="obsbundle-bench-"))
    try:
        variants = [Variant(f"{jobs} job{'s' if jobs > 1 else ''}", jobs) for jobs in args.jobs]
        if args.baseline:
            variants.append(Variant(f"baseline {args.baseline}", 1, _baseline_tree(args.baseline, scratch)))
        rows = [row for size in args.sizes for row in measure(size, variants, args.repeat, scratch)]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _print_table(rows)

    # Linearity is a property of the work, so it is read off the runs in one process.
    alone = [row for row in rows if row["variant"] == variants[0].label]
    smallest, largest = alone[0], alone[-1]
    growth = (largest["total_s"] / smallest["total_s"]) / (largest["services"] / smallest["services"])
    print(
        f"\n{variants[0].label}: cost per service at {largest['services']} vs {smallest['services']} services: "
        f"{growth:.2f}× (1.00 = linear; below 1 = fixed costs amortised)"
    )
    ratios: dict[str, dict[str, float]] = {}
    for size in args.sizes:
        by_label = {row["variant"]: row for row in rows if row["services"] == size}
        reference = by_label[variants[-1].label] if args.baseline else by_label[variants[0].label]
        for variant in variants:
            if variant.label == reference["variant"]:
                continue
            ratio = reference["total_s"] / by_label[variant.label]["total_s"]
            ratios.setdefault(str(size), {})[f"{variant.label} vs {reference['variant']}"] = ratio
            same = "same bytes" if reference["same_bytes_as_this_checkout"] else "its output differs"
            print(f"{size} services, {variant.label}: {ratio:.2f}× as fast as {reference['variant']} ({same})")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "benchmark": "generate",
                "python": platform.python_version(),
                "machine": platform.machine(),
                "cpus": default_jobs(),
                "workers_from_services": PARALLEL_FROM_SERVICES,
                "rows": rows,
                "per_service_cost_ratio_largest_to_smallest": growth,
                "speed_ratios_by_size": ratios,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.json}")
    return 0


def _print_table(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'services':>8} {'variant':<17} {'workers':>7} {'files':>6} {'MiB out':>8} {'load s':>7} "
        f"{'generate s':>10} {'total s':>8} {'ms/svc':>7} {'py peak MiB':>11} {'max RSS MiB':>11} {'worker RSS':>10}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        peak = f"{row['python_peak_mib']:>11.1f}" if row["python_peak_mib"] else f"{'':>11}"
        print(
            f"{row['services']:>8} {row['variant']:<17} {row['workers']:>7} {row['files']:>6} "
            f"{row['bytes'] / 2**20:>8.1f} {row['load_s']:>7.2f} {row['generate_s']:>10.2f} {row['total_s']:>8.2f} "
            f"{1000 * row['total_s'] / row['services']:>7.2f} {peak} {row['max_rss_mib']:>11.1f} "
            f"{row['worker_max_rss_mib']:>10.1f}"
        )


if __name__ == "__main__":
    sys.exit(main())
