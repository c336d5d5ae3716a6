"""A Kubernetes API server's list and watch answers for a fixed set of objects, on loopback.

The input of a real Kubernetes service discovery, not the engine under test: `GET /api/v1/<resource>`
and `GET /api/v1/namespaces/<namespace>/<resource>` answer a `<Kind>List` of the objects; a watch
(`?watch=…`) is answered with headers and then held open without events until the server stops, as
an API server does while nothing changes, so that a reflector keeps its list and does not relist.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

LIST_KINDS = {"services": "ServiceList", "endpoints": "EndpointsList", "pods": "PodList"}
RESOURCE_VERSION = "1"


@contextmanager
def kubernetes_api(objects: Mapping[str, list[dict[str, Any]]]) -> Iterator[str]:
    """Serve `objects` (resource → items) on a free loopback port; yields the API server's URL."""
    stopping = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            parts = url.path.strip("/").split("/")
            if parts[:2] != ["api", "v1"]:
                self._send(404, {"kind": "Status", "status": "Failure", "code": 404})
                return
            namespace, resource = (
                (parts[3], parts[4]) if len(parts) == 5 and parts[2] == "namespaces" else (None, parts[-1])
            )
            if resource not in LIST_KINDS:
                self._send(404, {"kind": "Status", "status": "Failure", "code": 404})
                return
            if parse_qs(url.query).get("watch", ["false"])[0] not in {"false", "0"}:
                self._hold_watch()
                return
            items = [item for item in objects.get(resource, []) if namespace in (None, item["metadata"]["namespace"])]
            self._send(
                200,
                {
                    "kind": LIST_KINDS[resource],
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": RESOURCE_VERSION},
                    "items": items,
                },
            )

        def _send(self, status: int, body: Mapping[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _hold_watch(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            stopping.wait()
            self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads the discovery's result, not the requests."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
