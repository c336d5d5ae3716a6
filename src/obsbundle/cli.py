"""The command line: parse arguments, call the generators and the writer, return an exit code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from obsbundle.bundle import PARALLEL_FROM_SERVICES, default_jobs, stale_output, write_output
from obsbundle.errors import InputError
from obsbundle.loader import load_inventory
from obsbundle.schema import inventory_json_schema
from obsbundle.settings import OutputFormat, Settings

EXIT_OK = 0
EXIT_STALE = 1
EXIT_BAD_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="generate.py",
        description="Generate monitors, rules, dashboards and alert routing from inventory files.",
    )
    parser.add_argument(
        "--inventory", type=Path, action="append", metavar="PATH",
        help="inventory file or folder (repeatable; default: inventory/)",
    )
    parser.add_argument("--out", type=Path, default=Path("out"), metavar="DIR", help="output folder (default: out/)")
    parser.add_argument(
        "--check", action="store_true",
        help="write nothing; exit 1 and name the files when the output folder is out of date",
    )
    parser.add_argument(
        "--format", choices=[f.value for f in OutputFormat], default=OutputFormat.OPERATOR.value,
        help="operator: Prometheus Operator objects and plain files (default); prometheus: plain files only",
    )
    parser.add_argument(
        "--jobs", type=_positive_int, default=default_jobs(), metavar="N",
        help=f"worker processes for inventories of {PARALLEL_FROM_SERVICES} services or more "
        "(default: the CPUs available); the output is the same for any N",
    )
    parser.add_argument("--schema", action="store_true", help="print the inventory's JSON Schema and exit")
    return parser


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return int(text)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns 0 done, 1 stale output under --check, 2 bad input or usage."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # argparse has printed its usage message
        return EXIT_OK if exit_.code == 0 else EXIT_BAD_INPUT
    if args.schema:
        sys.stdout.write(inventory_json_schema())
        return EXIT_OK
    settings = Settings(output_format=OutputFormat(args.format))
    try:
        inventory = load_inventory(args.inventory or [Path("inventory")])
        if args.check:
            stale, count = stale_output(inventory, settings, args.out, jobs=args.jobs)
            if stale:
                print(f"{args.out} is out of date; run generate.py to update these files:", file=sys.stderr)
                for path in stale:
                    print(f"  {path}", file=sys.stderr)
                return EXIT_STALE
            print(f"{args.out} is up to date ({count} files)")
            return EXIT_OK
        count = write_output(inventory, settings, args.out, jobs=args.jobs)
    except InputError as error:
        for problem in error.problems:
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    systems = ", ".join(system.name for system in inventory.systems)
    print(f"wrote {count} files for {systems} to {args.out}")
    return EXIT_OK
