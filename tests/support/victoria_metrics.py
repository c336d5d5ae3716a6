"""A real VictoriaMetrics single-node server (Debian `victoria-metrics`): own temp dir, free port,
stopped by pid. Its scraper has a Kubernetes service discovery of its own, which Debian's Prometheus
lacks, and the same `/api/v1/targets` answer as Prometheus."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from obsbundle.tools.processes import ManagedProcess, free_port, require_binary, wait_until


@dataclass
class VictoriaMetrics:
    process: ManagedProcess
    port: int

    def targets(self) -> dict[str, Any]:
        """`/api/v1/targets`' data: `activeTargets` and `droppedTargets`, each with `discoveredLabels`."""
        response = requests.get(f"http://127.0.0.1:{self.port}/api/v1/targets", timeout=10)
        response.raise_for_status()
        data: dict[str, Any] = response.json()["data"]
        return data

    def stop(self) -> None:
        self.process.stop()


def start_victoria_metrics(workdir: Path, scrape_config: dict[str, Any]) -> VictoriaMetrics:
    """Write `scrape_config` and start VictoriaMetrics scraping by it, with its strict parser: a
    field it does not know fails the start."""
    binary = require_binary("victoria-metrics", "victoria-metrics")
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "scrape.yml"
    config.write_text(yaml.safe_dump(scrape_config, sort_keys=False))
    port = free_port()
    process = ManagedProcess(
        "victoria-metrics",
        [
            binary,
            f"-promscrape.config={config}",
            "-promscrape.config.strictParse",
            # Every dropped target is listed (1000 by default): the tests look for the ones they expect dropped.
            "-promscrape.maxDroppedTargets=1000000",
            f"-storageDataPath={workdir / 'data'}",
            f"-httpListenAddr=127.0.0.1:{port}",
        ],
        workdir,
    ).start()
    server = VictoriaMetrics(process, port)

    def ready() -> bool:
        if not process.alive():
            raise AssertionError(f"victoria-metrics exited:\n{process.log_tail()}")
        return requests.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200

    wait_until(ready, timeout=30, what="victoria-metrics to become ready")
    return server
