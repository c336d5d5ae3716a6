"""`python -m obsbundle.exporters --config FILE [--listen 0.0.0.0:9187] [--web-config FILE]`.

Exit codes: 0 after SIGTERM or SIGINT, 1 when the address cannot be bound, 2 for a bad
configuration or command line (one line per problem, naming file and key; no traceback).
"""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from obsbundle.errors import InputError
from obsbundle.exporters.config import load_config
from obsbundle.exporters.exporter import Exporter
from obsbundle.exporters.server import ExporterServer, parse_listen
from obsbundle.exporters.webconfig import BasicAuth, load_web_config

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
DEFAULT_LISTEN = "0.0.0.0:9187"
_YOUNG_OBJECTS_BEFORE_A_COLLECTION = 50_000
"""The garbage collector's first threshold in the serving process (700 by default)."""

log = logging.getLogger("obsbundle.exporters")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="obsbundle-exporter",
        description="Serve PostgreSQL, PgBouncer, RabbitMQ, Redis and job table pools and queues to Prometheus.",
    )
    parser.add_argument("--config", type=Path, required=True, metavar="FILE", help="sources to read (YAML)")
    parser.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                        help=f"address to serve /metrics on (default: {DEFAULT_LISTEN})")
    parser.add_argument("--web-config", type=Path, metavar="FILE",
                        help="TLS and basic auth, in the exporter-toolkit web configuration format")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the exporter until SIGTERM or SIGINT; see the module's docstring for exit codes."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # argparse has printed its usage message
        return EXIT_OK if exit_.code == 0 else EXIT_BAD_INPUT
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        host, port = parse_listen(args.listen)
        config = load_config(args.config)
        web = load_web_config(args.web_config) if args.web_config else None
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except InputError as error:
        for problem in error.problems:
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    auth = BasicAuth(web[0].basic_auth_users) if web and web[0].basic_auth_users else None
    ssl_context = web[1] if web else None

    exporter = Exporter(config)
    try:
        server = ExporterServer((host, port), exporter.registry, auth, ssl_context)
    except OSError as error:
        print(f"error: cannot listen on {args.listen}: {error.strerror or error}", file=sys.stderr)
        exporter.close()
        return EXIT_FAILED

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        # shutdown() waits for serve_forever to return, so it cannot run on serve_forever's thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    scheme = "https" if ssl_context else "http"
    log.info("serving %d sources on %s://%s:%d/metrics%s", len(exporter.collector.sources), scheme, host,
             server.port, " with basic auth" if auth else "")
    # What start-up made lives as long as the process: keep it out of the garbage collector's full
    # passes, which the tens of thousands of objects a large scrape makes would otherwise trigger
    # again and again (a third of a 10,000-queue scrape's CPU).
    gc.freeze()
    # A scrape's objects (rows, label values, lines) die with it, freed by their reference counts,
    # and make no cycles: collecting the youngest generation every 700 of them, as by default,
    # only walks them again and again (0.7 ms of a 1,100-row PgBouncer scrape, measured against
    # the collector switched off). A cycle, should one be made, is collected after 50,000.
    gc.set_threshold(_YOUNG_OBJECTS_BEFORE_A_COLLECTION)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        exporter.close()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
