"""Generation cost for 10, 100 and 1,000 synthetic services: time and peak memory, per stage.

    python bench/generate.py [--sizes 10 100 1000] [--jobs 1 2] [--repeat 3] [--json bench/results/generate.json]

Each size runs in a fresh interpreter, once in one process and once with a worker process per
CPU, so peak RSS belongs to that run alone; both must give the same bytes. Stages: load (parse +
validate the YAML) and generate (every generator, rendering, and the atomic writer: what
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
from pathlib import Path
from typing import Any

import yaml

from obsbundle.bundle import PARALLEL_FROM_SERVICES, default_jobs, write_output
from obsbundle.loader import load_inventory
from obsbundle.settings import Settings
from obsbundle.writer import MARKER

RESULTS = Path(__file__).resolve().parent / "results"


def synthetic_system(services: int) -> dict[str, Any]:
    """One system with `services` APIs spread over pools of ten, each with two SLOs and a datastore."""
    pools = max(1, services // 10)
    return {
        "apiVersion": "obsbundle/v1",
        "kind": "System",
        "name": "bench",
        "cluster": "bench",
        "owner": {"team": "platform", "slack_channel": "#platform", "oncall_channel": "#platform-oncall"},
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


def measure_once(services: int, jobs: int, trace_memory: bool, scratch: Path) -> dict[str, Any]:
    """Time each stage for one size, in this process; returns seconds, file counts and memory.

    tracemalloc slows allocation-heavy code several times over, so the timed runs leave it off
    and one extra run, in one process, measures the Python heap peak.
    """
    # Outputs stay until the whole bench ends: deleting 300 MiB (with online discard) slows the
    # file creation of the next run for seconds, which would charge one run for another's cleanup.
    os.sync()  # nor is the previous run's writeback this run's cost
    folder = Path(tempfile.mkdtemp(prefix="run-", dir=scratch))
    inventory_path = folder / "bench.yaml"
    inventory_path.write_text(yaml.safe_dump(synthetic_system(services), sort_keys=False))
    if trace_memory:
        tracemalloc.start()
    started = time.perf_counter()
    inventory = load_inventory([inventory_path])
    loaded = time.perf_counter()
    count = write_output(inventory, Settings(), folder / "out", jobs=jobs)
    written = time.perf_counter()
    traced_peak = tracemalloc.get_traced_memory()[1] if trace_memory else 0
    tracemalloc.stop()
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker_max_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    # Read back after the clock stopped, for the size and the digest that proves both job
    # counts wrote the same bytes.
    digest = hashlib.sha256()
    files = total_bytes = 0
    for path in sorted((folder / "out").rglob("*")):
        if path.is_file() and path.name != MARKER:
            data = path.read_bytes()
            digest.update(path.relative_to(folder / "out").as_posix().encode() + data)
            files += 1
            total_bytes += len(data)
    assert files == count, "the output holds every generated file and nothing else"
    return {
        "services": services,
        "jobs": jobs,
        "load_s": loaded - started,
        "generate_s": written - loaded,
        "total_s": written - started,
        "workers": jobs if jobs > 1 and services >= PARALLEL_FROM_SERVICES else 0,
        "files": files,
        "bytes": total_bytes,
        "sha256": digest.hexdigest(),
        "python_peak_mib": traced_peak / 2**20,
        "max_rss_mib": max_rss,
        "worker_max_rss_mib": worker_max_rss,
    }


def _child(services: int, jobs: int, scratch: Path, *flags: str) -> dict[str, Any]:
    """One run in a fresh interpreter (import time excluded)."""
    arguments = ["--child", str(services), "--jobs", str(jobs), "--scratch", str(scratch), *flags]
    completed = subprocess.run([sys.executable, __file__, *arguments], capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def measure(services: int, job_counts: list[int], repeat: int, scratch: Path) -> list[dict[str, Any]]:
    """Best of `repeat` runs per job count. The job counts take turns, so that a slow spell of a
    shared machine slows both alike and the ratio between them holds."""
    runs: dict[int, list[dict[str, Any]]] = {jobs: [] for jobs in job_counts}
    for _ in range(repeat):
        for jobs in job_counts:
            runs[jobs].append(_child(services, jobs, scratch))
    rows = []
    for jobs, found in runs.items():
        best = min(found, key=lambda run: run["total_s"])
        best["python_peak_mib"] = (
            _child(services, jobs, scratch, "--trace-memory")["python_peak_mib"] if jobs == 1 else None
        )
        best["runs"] = repeat
        best["all_totals_s"] = [run["total_s"] for run in found]
        rows.append(best)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--jobs", type=int, nargs="+", default=sorted({1, default_jobs()}))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=RESULTS / "generate.json")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--trace-memory", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure_once(args.child, args.jobs[0], args.trace_memory, args.scratch)))
        return 0

    scratch = Path(tempfile.mkdtemp(prefix="obsbundle-bench-"))
    try:
        rows = [row for size in args.sizes for row in measure(size, args.jobs, args.repeat, scratch)]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    header = (
        f"{'services':>8} {'jobs':>4} {'workers':>7} {'files':>6} {'MiB out':>8} {'load s':>7} {'generate s':>10} "
        f"{'total s':>8} {'ms/svc':>7} {'py peak MiB':>11} {'max RSS MiB':>11} {'worker RSS':>10}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        peak = f"{row['python_peak_mib']:>11.1f}" if row["python_peak_mib"] is not None else f"{'':>11}"
        print(
            f"{row['services']:>8} {row['jobs']:>4} {row['workers']:>7} {row['files']:>6} {row['bytes'] / 2**20:>8.1f} "
            f"{row['load_s']:>7.2f} {row['generate_s']:>10.2f} {row['total_s']:>8.2f} "
            f"{1000 * row['total_s'] / row['services']:>7.2f} {peak} {row['max_rss_mib']:>11.1f} "
            f"{row['worker_max_rss_mib']:>10.1f}"
        )
    # Linearity is a property of the work, so it is read off the runs in one process.
    alone = [row for row in rows if row["workers"] == 0 and row["jobs"] == min(args.jobs)]
    smallest, largest = alone[0], alone[-1]
    growth = (largest["total_s"] / smallest["total_s"]) / (largest["services"] / smallest["services"])
    print(
        f"\none process: cost per service at {largest['services']} vs {smallest['services']} services: "
        f"{growth:.2f}× (1.00 = linear; below 1 = fixed costs amortised)"
    )
    speedups: dict[int, float] = {}
    for size in args.sizes:
        by_jobs = {row["jobs"]: row for row in rows if row["services"] == size}
        digests = {row["sha256"] for row in by_jobs.values()}
        assert len(digests) == 1, f"{size} services: the output differs between job counts"
        fewest, most = min(by_jobs), max(by_jobs)
        if size < PARALLEL_FROM_SERVICES:
            print(f"{size} services: one process whatever the job count (workers from {PARALLEL_FROM_SERVICES})")
        elif fewest != most:
            speedups[size] = by_jobs[fewest]["total_s"] / by_jobs[most]["total_s"]
            print(f"{size} services: {most} jobs are {speedups[size]:.2f}× as fast as {fewest} (same bytes)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "benchmark": "generate",
                "python": platform.python_version(),
                "machine": platform.machine(),
                "cpus": default_jobs(),
                "rows": rows,
                "per_service_cost_ratio_largest_to_smallest": growth,
                "speedup_by_size": speedups,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
