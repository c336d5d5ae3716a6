"""The command line: parse arguments, call the generators and the writer, return an exit code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from obsbundle.alerting.policy import no_deadmans_switch_notice
from obsbundle.bundle import PARALLEL_FROM_SERVICES, default_jobs, stale_output, write_output
from obsbundle.config import Config, build_config
from obsbundle.errors import InputError
from obsbundle.importer import import_specs
from obsbundle.loader import load_inventory
from obsbundle.model import Inventory
from obsbundle.schema import inventory_json_schema
from obsbundle.settings import OutputFormat, Ruler
from obsbundle.verify import (
    DEFAULT_CONCURRENCY,
    DEFAULT_LOOKBACK,
    DEFAULT_RANGE,
    DEFAULT_TIMEOUT,
    Connection,
    VerifyError,
    verify,
)

EXIT_OK = 0
EXIT_STALE = 1
"""--check found the output out of date, or --verify found series missing."""
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
        "--ruler", choices=[r.value for r in Ruler], default=Ruler.LOCAL.value,
        help="local: rules for each cluster's own Prometheus (default); global: rules for a ruler that sees "
        "many clusters (Thanos Ruler, Mimir, a Prometheus receiving remote_write), which keep each "
        "system's clusters apart",
    )
    parser.add_argument(
        "--jobs", type=_positive_int, default=default_jobs(), metavar="N",
        help=f"worker processes for inventories of {PARALLEL_FROM_SERVICES} services or more "
        "(default: the CPUs available); the output is the same for any N",
    )
    parser.add_argument("--schema", action="store_true", help="print the inventory's JSON Schema and exit")
    parser.add_argument(
        "--import", dest="import_files", type=Path, nargs="+", metavar="FILE",
        help="print an inventory converted from Sloth, OpenSLO and Pyrra SLO specs, and exit",
    )
    _verify_arguments(parser)
    return parser


def _verify_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("--verify: ask a live Prometheus which series the output reads are missing")
    group.add_argument(
        "--verify", metavar="URL",
        help="write nothing; exit 1 and name each missing series, its component and the fix",
    )
    group.add_argument(
        "--verify-range", default=DEFAULT_RANGE, metavar="DURATION",
        help=f"a series counts as present if it has samples in this recent range (default: {DEFAULT_RANGE})",
    )
    group.add_argument(
        "--verify-lookback", default=DEFAULT_LOOKBACK, metavar="DURATION",
        help=f"how far back to look for when a missing series was last seen (default: {DEFAULT_LOOKBACK})",
    )
    group.add_argument("--json", action="store_true", help="print the --verify report as JSON")
    group.add_argument("--bearer-token-file", type=Path, metavar="FILE", help="send FILE's token as a bearer token")
    group.add_argument("--basic-auth-user", metavar="USER", help="basic auth user (with --basic-auth-password-file)")
    group.add_argument("--basic-auth-password-file", type=Path, metavar="FILE", help="basic auth password, in FILE")
    group.add_argument("--ca-file", type=Path, metavar="FILE", help="CA certificates to verify an https:// URL with")
    group.add_argument("--tenant", metavar="ID", help="tenant for Mimir or Cortex (sent as X-Scope-OrgID)")
    group.add_argument(
        "--timeout", type=_positive_float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
        help=f"give up on a request after this long (default: {DEFAULT_TIMEOUT:g})",
    )
    group.add_argument(
        "--concurrency", type=_positive_int, default=DEFAULT_CONCURRENCY, metavar="N",
        help=f"requests in flight at once (default: {DEFAULT_CONCURRENCY})",
    )


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return int(text)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns 0 done, 1 stale output under --check or series missing under --verify,
    2 bad input or usage, or a Prometheus that --verify cannot ask."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # argparse has printed its usage message
        return EXIT_OK if exit_.code == 0 else EXIT_BAD_INPUT
    if args.schema:
        sys.stdout.write(inventory_json_schema())
        return EXIT_OK
    if args.import_files:
        try:
            sys.stdout.write(import_specs(args.import_files))
        except InputError as error:
            for problem in error.problems:
                print(f"error: {problem}", file=sys.stderr)
            return EXIT_BAD_INPUT
        return EXIT_OK
    config = build_config(OutputFormat(args.format), ruler=Ruler(args.ruler))
    try:
        inventory = load_inventory(args.inventory or [Path("inventory")])
        if args.verify:
            return _verify(inventory, config, args)
        if args.check:
            differing, count = stale_output(inventory, config, args.out, jobs=args.jobs)
            if differing:
                print(
                    f"{args.out} is out of date; run generate.py to update these files "
                    "(stale: differs, missing: not there, extra: no longer generated):",
                    file=sys.stderr,
                )
                for path, how in differing:
                    print(f"  {how:<8} {path}", file=sys.stderr)
                return EXIT_STALE
            print(f"{args.out} is up to date ({count} files)")
            return EXIT_OK
        count = write_output(inventory, config, args.out, jobs=args.jobs)
    except InputError as error:
        for problem in error.problems:
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    systems = ", ".join(system.name for system in inventory.systems)
    print(f"wrote {count} files for {systems} to {args.out}")
    for system in inventory.systems:
        if config.alerting.watchdog_url_of(system) is None:
            print(f"note: {no_deadmans_switch_notice(system)}", file=sys.stderr)
    return EXIT_OK


def _verify(inventory: Inventory, config: Config, args: argparse.Namespace) -> int:
    """--verify: the report on stdout; 0 every series present, 1 some missing, 2 Prometheus not asked."""
    connection = Connection(
        url=args.verify,
        bearer_token_file=args.bearer_token_file,
        basic_auth_user=args.basic_auth_user,
        basic_auth_password_file=args.basic_auth_password_file,
        ca_file=args.ca_file,
        tenant=args.tenant,
        timeout=args.timeout,
        concurrency=args.concurrency,
    )
    try:
        report = verify(inventory, connection, config, range_=args.verify_range, lookback=args.verify_lookback)
    except VerifyError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    sys.stdout.write(report.to_json() if args.json else report.to_text())
    return EXIT_STALE if report.missing else EXIT_OK
