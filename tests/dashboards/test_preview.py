"""Every dashboard renders to a PNG preview with the test Prometheus's data, for reviewers.

The previews land in build/dashboard-previews/<system>/<uid>.png (ignored by git): open them to
see what a change does to a dashboard without running Grafana.
"""

from __future__ import annotations

import os
import struct
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from obsbundle.dashboards.variables import opening_values
from obsbundle.preview.draw import Data, http_fetch, render_png
from obsbundle.preview.synthetic import Window
from obsbundle.tools.prometheus import PrometheusServer
from tests.dashboards.conftest import report

pytestmark = pytest.mark.servers

PREVIEWS = Path(__file__).resolve().parents[2] / "build" / "dashboard-previews"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's header chunk."""
    assert data.startswith(PNG_SIGNATURE), "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def draw(job: tuple[dict[str, Any], str, Window]) -> bytes:
    """One dashboard's preview (run in a worker process: drawing is CPU-bound)."""
    board, url, window = job
    values = opening_values(board, scrape_interval=window.step, range_seconds=window.duration)
    fetch = http_fetch(url, window.start, window.end, "2m")
    return render_png(board, Data(fetch, values, (window.start, window.end)), strict=True)


def test_every_dashboard_renders_to_a_png_preview_with_data(
    fleet_dashboards: dict[str, list[dict[str, Any]]],
    fleet_prometheus: PrometheusServer,
    fleet_window: Window,
    pytestconfig: pytest.Config,
) -> None:
    boards = [(system, board) for system, found in fleet_dashboards.items() for board in found]
    jobs = [(board, fleet_prometheus.url, fleet_window) for _, board in boards]
    with ProcessPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        drawn = list(pool.map(draw, jobs))
    for (system, board), data in zip(boards, drawn, strict=True):
        width, height = png_size(data)
        grid_rows = max(panel["gridPos"]["y"] + panel["gridPos"]["h"] for panel in board["panels"])
        assert width >= 1200 and height >= 20 * grid_rows, f"{board['title']}: {width}×{height}"
        folder = PREVIEWS / system
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{board['uid']}.png").write_bytes(data)
    report(pytestconfig, f"{len(drawn)} dashboard previews drawn in {PREVIEWS}")
