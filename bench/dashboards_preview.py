"""Draw every dashboard of an inventory as a PNG, with synthetic data from a real Prometheus.

    python -m bench.dashboards_preview [--inventory inventory/] [--out build/dashboard-previews]
        [--only UID ...] [--json bench/results/dashboards_preview.json]

Backfills the fleet's synthetic series (tests/support/fleet_series.py) and the recording rules
generated for it into a Prometheus on a free port, draws each dashboard with
tests/support/preview.py, and prints per dashboard its panels, queries and drawing time.
The Prometheus is stopped by its own pid at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from obsbundle.bundle import dashboards_of
from obsbundle.config import DEFAULT_CONFIG
from obsbundle.dashboards.variables import opening_values
from obsbundle.dashboards.walk import panels, targets
from obsbundle.loader import load_inventory
from obsbundle.rules import rule_groups
from tests.support.fleet_series import Window, start_fleet_prometheus
from tests.support.preview import Data, http_fetch, render_png

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", type=Path, nargs="+", default=[REPO / "inventory"])
    parser.add_argument("--out", type=Path, default=REPO / "build" / "dashboard-previews")
    parser.add_argument("--only", nargs="*", default=[], help="uids of the dashboards to draw (default: all)")
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    args = parser.parse_args(argv)
    systems = load_inventory(args.inventory).systems
    window = Window()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="obsbundle-preview-") as workdir:
        groups = [group.to_dict() for system in systems for group in rule_groups(system, DEFAULT_CONFIG.rules)]
        server = start_fleet_prometheus(Path(workdir), systems, window, rule_groups=groups)
        try:
            fetch = http_fetch(server.url, window.start, window.end, "2m")
            for system in systems:
                for board in dashboards_of(system, DEFAULT_CONFIG):
                    if args.only and board["uid"] not in args.only:
                        continue
                    values = opening_values(board, scrape_interval=window.step, range_seconds=window.duration)
                    started = time.perf_counter()
                    data = render_png(board, Data(fetch, values, (window.start, window.end)))
                    seconds = time.perf_counter() - started
                    path = args.out / system.name / f"{board['uid']}.png"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(data)
                    rows.append({"uid": board["uid"], "panels": sum(1 for _ in panels(board)),
                                 "queries": sum(1 for _ in targets(board)), "seconds": round(seconds, 3),
                                 "path": str(path)})
        finally:
            server.stop()
    print(f"{'dashboard':44} {'panels':>6} {'queries':>7} {'seconds':>7}")
    for row in rows:
        print(f"{row['uid']:44} {row['panels']:6} {row['queries']:7} {row['seconds']:7.2f}")
    print(f"{len(rows)} previews in {args.out}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
