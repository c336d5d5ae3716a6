"""`obsbundle-preview`: draw every dashboard of an inventory as a PNG, from healthy synthetic traffic.

    obsbundle-preview [--inventory PATH ...] [--out build/dashboard-previews] [--only UID ...]
        [--traffic healthy|incident] [--json FILE]

Writes the systems' synthetic series (obsbundle.preview.synthetic) into a Prometheus started on a
free loopback port in a temporary folder, backfills the generated recording rules over them,
draws each dashboard (obsbundle.preview.draw) and prints per dashboard its panels, queries and
drawing time. The Prometheus is stopped by its own pid at the end. Exit code 2 for bad input, a
missing binary or a missing extra, each named with its fix.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from obsbundle.bundle import dashboards_of
from obsbundle.config import DEFAULT_CONFIG
from obsbundle.dashboards.variables import opening_values
from obsbundle.dashboards.walk import panels, targets
from obsbundle.errors import InputError
from obsbundle.loader import load_inventory
from obsbundle.preview.synthetic import Traffic, Window, start_fleet_prometheus
from obsbundle.rules import rule_groups
from obsbundle.tools.processes import MissingBinaryError

EXIT_OK = 0
EXIT_BAD_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="obsbundle-preview", description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", type=Path, nargs="+", default=[Path("inventory")],
                        help="inventory files or folders (default: inventory/)")
    parser.add_argument("--out", type=Path, default=Path("build/dashboard-previews"),
                        help="folder of the PNGs, one subfolder per system (default: build/dashboard-previews)")
    parser.add_argument("--only", nargs="*", default=[], help="uids of the dashboards to draw (default: all)")
    parser.add_argument("--traffic", choices=["healthy", "incident"], default="healthy",
                        help="healthy: every service inside its SLOs; incident: one API fails for a while")
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        # matplotlib is the `preview` extra's; say how to get it rather than fail on an import.
        from obsbundle.preview.draw import Data, http_fetch, render_png  # noqa: PLC0415
    except ModuleNotFoundError as missing:
        print(f"error: {missing.name} is not installed: pip install 'obsbundle[preview]'", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        systems = load_inventory(args.inventory).systems
    except InputError as error:
        for problem in error.problems:
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    window = Window()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="obsbundle-preview-") as workdir:
        groups = [group.to_dict() for system in systems for group in rule_groups(system, DEFAULT_CONFIG.rules)]
        try:
            server = start_fleet_prometheus(Path(workdir), systems, window, rule_groups=groups,
                                            traffic=Traffic(args.traffic))
        except MissingBinaryError as missing:
            print(f"error: {missing}", file=sys.stderr)
            return EXIT_BAD_INPUT
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
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
