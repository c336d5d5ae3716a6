"""An exporter's answer, read from it once and then served the way the exporter serves it: what
the HTTP exchange and gzip alone cost a scrape, with nothing collected or written.

    python -m bench.answer_server --from http://127.0.0.1:PORT/metrics --listen 127.0.0.1:PORT

bench/exporter.py runs one next to each exporter it measures: the raw fetch plus this is the least
any exporter of the same series over HTTP can cost.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import requests
from prometheus_client import CollectorRegistry

from obsbundle.exporters.exposition import CONTENT_TYPE
from obsbundle.exporters.server import ExporterServer, MetricsHandler, parse_listen


class AnswerHandler(MetricsHandler):
    """The exporter's handler (keep-alive, no Nagle, gzip at the exporter's level), with a fixed answer."""

    server: AnswerServer

    def _metrics(self) -> None:
        self._send_answer(self.server.answer, CONTENT_TYPE)


class AnswerServer(ExporterServer):
    def __init__(self, address: tuple[str, int], answer: bytes) -> None:
        super().__init__(address, CollectorRegistry(auto_describe=False))
        self.RequestHandlerClass = AnswerHandler
        self.answer = answer


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--from", dest="source", required=True, help="the exporter's /metrics URL, read once")
    parser.add_argument("--listen", required=True, help="HOST:PORT to serve the answer on")
    args = parser.parse_args(argv)
    answer = requests.get(args.source, headers={"Accept-Encoding": "identity"}, timeout=60)
    answer.raise_for_status()
    server = AnswerServer(parse_listen(args.listen), answer.content)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
