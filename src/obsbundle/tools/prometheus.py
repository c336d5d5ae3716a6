"""A real Prometheus server for previews, tests and benchmarks: own temp dir, free port, stopped by pid."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from obsbundle.tools.processes import ManagedProcess, free_port, require_binary, wait_until


class PrometheusError(RuntimeError):
    """Prometheus exited, or its API answered with an error."""


@dataclass
class PrometheusServer:
    """A started Prometheus; `query()` and `query_range()` return the API's `data` section."""

    process: ManagedProcess
    port: int
    workdir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str, **params: Any) -> Any:
        response = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=30)
        body = response.json()
        if body.get("status") != "success":
            raise PrometheusError(f"Prometheus {path} {params} failed: {body.get('error', response.text)}")
        return body["data"]

    def query(self, expr: str, time: float | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"query": expr}
        if time is not None:
            params["time"] = time
        result: list[dict[str, Any]] = self.api("query", **params)["result"]
        return result

    def query_range(self, expr: str, start: float, end: float, step: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("query_range", query=expr, start=start, end=end, step=step)["result"]
        return result

    def reload(self) -> None:
        requests.post(f"{self.url}/-/reload", timeout=30).raise_for_status()

    def stop(self) -> None:
        self.process.stop()


def start_prometheus(
    workdir: Path,
    config: dict[str, Any],
    *,
    tsdb: Path | None = None,
    extra_args: tuple[str, ...] = (),
) -> PrometheusServer:
    """Write `config` to `workdir/prometheus.yml` and start Prometheus on a free loopback port.

    `tsdb` may point at a folder of backfilled blocks (promtool tsdb create-blocks-from …).
    """
    binary = require_binary("prometheus", "prometheus")
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    data = tsdb or workdir / "data"
    process = ManagedProcess(
        "prometheus",
        [
            binary,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=3650d",
            *extra_args,
        ],
        workdir,
    ).start()
    server = PrometheusServer(process, port, workdir)

    def ready() -> bool:
        if not process.alive():
            raise PrometheusError(f"prometheus exited:\n{process.log_tail()}")
        return requests.get(f"{server.url}/-/ready", timeout=2).status_code == 200

    wait_until(ready, timeout=60, what="prometheus to become ready")
    return server
