"""A real Alertmanager for tests: own temp dir, free port, no cluster gossip, stopped by pid."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from obsbundle.tools.processes import ManagedProcess, free_port, require_binary, wait_until


@dataclass
class AlertmanagerServer:
    """A started Alertmanager; `post_alerts()` and `alerts()` speak its v2 API."""

    process: ManagedProcess
    port: int
    config: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """Send alerts as Prometheus does (`labels`, `annotations`, `startsAt`, `endsAt`)."""
        requests.post(f"{self.url}/api/v2/alerts", json=alerts, timeout=30).raise_for_status()

    def alerts(self, **filters: str) -> list[dict[str, Any]]:
        """Current alerts with their status (`state`, `inhibitedBy`, `silencedBy`) and receivers."""
        params = [("filter", f'{name}="{value}"') for name, value in sorted(filters.items())]
        response = requests.get(f"{self.url}/api/v2/alerts", params=params, timeout=30)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result

    def reload(self) -> None:
        requests.post(f"{self.url}/-/reload", timeout=30).raise_for_status()

    def stop(self) -> None:
        self.process.stop()


def start_alertmanager(workdir: Path, config: Path, *, extra_args: tuple[str, ...] = ()) -> AlertmanagerServer:
    """Start `prometheus-alertmanager --config.file=CONFIG` on a free loopback port and wait until ready.

    Clustering is switched off (`--cluster.listen-address=`): a test instance must neither bind
    the gossip port 9094 nor find peers.
    """
    binary = require_binary("prometheus-alertmanager", "prometheus-alertmanager", extra_dirs=("/usr/bin",))
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process = ManagedProcess(
        "alertmanager",
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            *extra_args,
        ],
        workdir,
    ).start()
    server = AlertmanagerServer(process, port, config)

    def ready() -> bool:
        if not process.alive():
            raise AssertionError(f"alertmanager exited:\n{process.log_tail()}")
        return requests.get(f"{server.url}/-/ready", timeout=2).status_code == 200

    wait_until(ready, timeout=60, what="alertmanager to become ready")
    return server
