"""A PNG preview of a dashboard, drawn with matplotlib from any Prometheus-like query function.

Reviewers see what a change does to a dashboard without a Grafana: the preview lays panels out
on Grafana's grid and draws each kind the way Grafana would (lines, stats, bar gauges, tables,
heatmaps, state timelines, text), with units, thresholds and legends taken from the JSON.
It is an approximation for review, not a renderer of every Grafana option. It draws for the tests
and for `obsbundle-preview`, with data from a Prometheus over synthetic series; matplotlib comes
with the `preview` extra.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter

from obsbundle.dashboards.panels import FULL_WIDTH
from obsbundle.dashboards.variables import expand
from obsbundle.dashboards.walk import panels


@dataclass(frozen=True)
class Series:
    """One series of a query result: its labels and its (unix time, value) points."""

    labels: Mapping[str, str]
    points: Sequence[tuple[float, float]]


Fetch = Callable[[str, bool], list[Series]]
"""Runs an expression (variables already replaced): instant (True) or over the preview's range."""


@dataclass(frozen=True)
class Data:
    """Where panels get their data: the query function, the variables' values and the time range."""

    fetch: Fetch
    values: Mapping[str, str]
    time_range: tuple[float, float]

BACKGROUND, PANEL, TEXT, GRID, MUTED = "#111217", "#181b1f", "#ccccdc", "#2c3235", "#8e8e8e"
PALETTE = ("#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9", "#705da0",
           "#37872d", "#fade2a", "#447ebc", "#c15c17", "#890f02", "#0a437c", "#6d1f62", "#584477")
COLOURS = {"green": "#73bf69", "orange": "#ff9830", "red": "#f2495c", "blue": "#5794f2", "yellow": "#fade2a",
           "text": TEXT, "transparent": PANEL}
COLUMN_INCHES = 0.75
ROW_INCHES = 0.42
AXIS_LABELS = 0.7 / (FULL_WIDTH * COLUMN_INCHES)
"""Room for y-axis labels: 0.7 inch, as a share of the figure's width."""
MAX_LEGEND = 8
MAX_TABLE_ROWS = 12
MAX_TEXT_LINES = 24


def render_png(dashboard: Mapping[str, Any], data: Data, *, dpi: int = 72, strict: bool = False) -> bytes:
    """The dashboard drawn as a PNG, each query run through `data.fetch` with `data.values` for its variables.

    A panel that cannot be drawn says so in its place, unless `strict`, where the error propagates.
    """
    placed = [panel for panel in panels(dashboard) if panel.get("gridPos")]
    rows = max((p["gridPos"]["y"] + p["gridPos"]["h"] for p in placed), default=1) + 2
    figure = Figure(figsize=(FULL_WIDTH * COLUMN_INCHES, rows * ROW_INCHES), dpi=dpi, facecolor=BACKGROUND)
    FigureCanvasAgg(figure)
    figure.text(0.01, 1 - 0.9 / rows, dashboard["title"], color=TEXT, fontsize=15, weight="bold", va="center")
    for panel in placed:
        _draw(figure, panel, rows, data, strict=strict)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor=BACKGROUND)
    return buffer.getvalue()


def _draw(figure: Figure, panel: Mapping[str, Any], rows: int, data: Data, *, strict: bool) -> None:
    grid = panel["gridPos"]
    left, width = grid["x"] / FULL_WIDTH, grid["w"] / FULL_WIDTH
    top = 1 - (grid["y"] + 2) / rows
    height = grid["h"] / rows
    if panel["type"] == "row":
        figure.text(left + 0.005, top - height / 2, panel["title"], color=TEXT, fontsize=12, weight="bold",
                    va="center")
        return
    pad_x, pad_y = 0.003, 0.1 / rows
    frame = figure.add_axes((left + pad_x, top - height + pad_y, width - 2 * pad_x, height - 2 * pad_y))
    frame.set_axis_off()
    frame.add_patch(Rectangle((0, 0), 1, 1, transform=frame.transAxes, color=PANEL, zorder=0))
    title_height = min(0.6 / grid["h"], 0.3)
    frame.text(0.01, 1 - title_height / 2, panel["title"], color=TEXT, fontsize=9, weight="bold", va="center",
               transform=frame.transAxes)
    body = (left + pad_x + 0.01 * width, top - height + 2 * pad_y,
            width - 2 * pad_x - 0.02 * width, (height - 2 * pad_y) * (1 - title_height) - pad_y)
    drawer = _DRAWERS.get(panel["type"], _draw_text)
    try:
        drawer(figure, body, panel, data)
    except Exception as error:  # one broken panel must not hide the others from the reviewer
        if strict:
            raise
        figure.text(body[0] + 0.01, body[1] + body[3] / 2, f"preview failed: {error}"[:120], color="#f2495c",
                    fontsize=8)


def http_fetch(url: str, start: float, end: float, step: str) -> Fetch:
    """A Fetch over Prometheus's HTTP API at `url`: instant queries at `end`, range ones over start–end."""

    def fetch(expr: str, instant: bool) -> list[Series]:
        if instant:
            params: dict[str, Any] = {"query": expr, "time": end}
            path = "query"
        else:
            params = {"query": expr, "start": start, "end": end, "step": step}
            path = "query_range"
        response = requests.get(f"{url}/api/v1/{path}", params=params, timeout=60)
        response.raise_for_status()
        found = []
        for series in response.json()["data"]["result"]:
            samples = series["values"] if "values" in series else [series["value"]]
            found.append(Series(series["metric"], [(float(t), float(v)) for t, v in samples]))
        return found

    return fetch


# --- data ------------------------------------------------------------------------------------------


def _results(panel: Mapping[str, Any], data: Data,
             instant: bool | None = None) -> list[tuple[dict[str, Any], list[Series]]]:
    found = []
    for target in panel.get("targets", []):
        wanted = target.get("instant", False) if instant is None else instant
        found.append((target, data.fetch(expand(target["expr"], data.values), wanted)))
    return found


_LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def legend(target: Mapping[str, Any], series: Series) -> str:
    """The series' name as Grafana's legend format would show it."""
    form = target.get("legendFormat") or "__auto"
    labels = {key: value for key, value in series.labels.items() if key != "__name__"}
    if form == "__auto":
        return ", ".join(f"{key}={value}" for key, value in sorted(labels.items())) or target.get("refId", "")
    return _LEGEND.sub(lambda match: labels.get(match.group(1), ""), form).strip()


def _last(series: Series) -> float:
    finite = [value for _, value in series.points if math.isfinite(value)]
    return finite[-1] if finite else math.nan


# --- units and thresholds ---------------------------------------------------------------------------


def format_value(value: float, unit: str) -> str:
    """A value in a Grafana unit, as short as Grafana writes it."""
    if not math.isfinite(value):
        return "–"
    match unit:
        case "percentunit":
            return f"{value * 100:.3g} %"
        case "percent":
            return f"{value:.3g} %"
        case "s":
            return _seconds(value)
        case "bytes":
            return _scaled(value, 1024, ("B", "KiB", "MiB", "GiB", "TiB"))
        case "Bps":
            return _scaled(value, 1024, ("B/s", "KiB/s", "MiB/s", "GiB/s"))
        case "reqps":
            return f"{_scaled(value, 1000, ('', 'K', 'M'))} req/s".replace("  ", " ")
        case "ops":
            return f"{_scaled(value, 1000, ('', 'K', 'M'))} ops/s".replace("  ", " ")
        case "dateTimeFromNow":
            return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M")
    return _scaled(value, 1000, ("", "K", "Mil", "Bil")).strip()


def _seconds(value: float) -> str:
    magnitude = abs(value)
    if magnitude == 0:
        return "0 s"
    if magnitude < 1:
        return f"{value * 1000:.3g} ms"
    if magnitude < 120:
        return f"{value:.3g} s"
    if magnitude < 7200:
        return f"{value / 60:.3g} min"
    if magnitude < 172800:
        return f"{value / 3600:.3g} h"
    return f"{value / 86400:.3g} day"


def _scaled(value: float, base: int, units: Sequence[str]) -> str:
    index = 0
    while abs(value) >= base and index < len(units) - 1:
        value /= base
        index += 1
    return f"{value:.3g} {units[index]}"


def _steps(config: Mapping[str, Any]) -> list[tuple[float, str]]:
    steps = config.get("thresholds", {}).get("steps", [])
    return [(-math.inf if step["value"] is None else float(step["value"]), step["color"]) for step in steps]


def _colour(value: float, steps: Sequence[tuple[float, str]]) -> str:
    chosen = "green"
    for start, colour in steps:
        if math.isfinite(value) and value >= start:
            chosen = colour
    return COLOURS.get(chosen, chosen)


def _defaults(panel: Mapping[str, Any]) -> dict[str, Any]:
    defaults: dict[str, Any] = panel.get("fieldConfig", {}).get("defaults", {})
    return defaults


def _overrides(panel: Mapping[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for override in panel.get("fieldConfig", {}).get("overrides", []):
        if override["matcher"].get("options") == name:
            found.update({item["id"]: item["value"] for item in override["properties"]})
    return found


# --- panel kinds ------------------------------------------------------------------------------------


Body = tuple[float, float, float, float]


def _axes(figure: Figure, body: Body) -> Axes:
    axes = figure.add_axes(body)
    axes.set_facecolor(PANEL)
    for spine in axes.spines.values():
        spine.set_color(GRID)
    axes.tick_params(colors=MUTED, labelsize=7)
    axes.grid(color=GRID, linewidth=0.5)
    axes.margins(y=0.08)
    return axes


def _time_axis(axes: Axes, data: Data) -> None:
    axes.set_xlim(*data.time_range)
    axes.xaxis.set_major_formatter(
        FuncFormatter(lambda value, _: datetime.fromtimestamp(value, UTC).strftime("%H:%M")))


def _draw_timeseries(figure: Figure, body: Body, panel: Mapping[str, Any], data: Data) -> None:
    defaults = _defaults(panel)
    unit = defaults.get("unit", "none")
    custom = defaults.get("custom", {})
    legend_height = 0.22 * body[3]
    ticks = 0.2 / figure.get_figheight()  # the time labels under the axes
    axes = _axes(figure, (body[0] + AXIS_LABELS, body[1] + legend_height + ticks, body[2] - AXIS_LABELS,
                          body[3] - legend_height - ticks))
    _time_axis(axes, data)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: format_value(value, unit)))
    bars = custom.get("drawStyle") == "bars"
    stacked = custom.get("stacking", {}).get("mode") == "normal"
    handles: list[tuple[str, str]] = []
    colour_index = 0
    baseline: dict[float, float] = {}
    for target, result in _results(panel, data, instant=False):
        for series in result:
            name = legend(target, series)
            override = _overrides(panel, name)
            times = [t for t, _ in series.points]
            points = [v for _, v in series.points]
            colour = override.get("color", {}).get("fixedColor")
            colour = COLOURS.get(colour, colour) if colour else PALETTE[colour_index % len(PALETTE)]
            colour_index += 1
            dashed = "custom.lineStyle" in override
            if stacked and not dashed:
                below = [baseline.get(t, 0.0) for t in times]
                above = [b + (v if math.isfinite(v) else 0.0) for b, v in zip(below, points, strict=True)]
                axes.fill_between(times, below, above, color=colour, alpha=0.5 if bars else 0.25, linewidth=0)
                axes.plot(times, above, color=colour, linewidth=1)
                baseline.update(zip(times, above, strict=True))
            else:
                axes.plot(times, points, color=colour, linewidth=1.2, linestyle="--" if dashed else "-")
            handles.append((name, colour))
    if custom.get("thresholdsStyle", {}).get("mode", "off") != "off":
        for start, colour in _steps(defaults):
            if math.isfinite(start):
                axes.axhline(start, color=COLOURS.get(colour, colour), linestyle="--", linewidth=1)
    if defaults.get("min") is not None:
        axes.set_ylim(bottom=min(defaults["min"], axes.get_ylim()[0]) if defaults["min"] < 0 else defaults["min"])
    _legend(figure, (body[0], body[1], body[2], legend_height), handles)


def _legend(figure: Figure, box: Body, handles: Sequence[tuple[str, str]]) -> None:
    shown = list(handles[:MAX_LEGEND])
    columns = 2 if box[2] > 0.3 else 1
    per_column = math.ceil(len(shown) / columns) or 1
    for index, (name, colour) in enumerate(shown):
        column, row = divmod(index, per_column)
        x = box[0] + 0.01 * box[2] + column * box[2] / columns
        y = box[1] + box[3] * (1 - (row + 0.8) / max(per_column, 3))
        figure.text(x, y, "━ ", color=colour, fontsize=7, va="center")
        figure.text(x + 0.012, y, name[:60], color=TEXT, fontsize=7, va="center")
    if len(handles) > MAX_LEGEND:
        figure.text(box[0] + box[2] * 0.8, box[1] + 0.1 * box[3], f"+{len(handles) - MAX_LEGEND} more",
                    color=MUTED, fontsize=7)


def _draw_stat(figure: Figure, body: Body, panel: Mapping[str, Any], data: Data) -> None:
    defaults = _defaults(panel)
    unit = defaults.get("unit", "none")
    shown = [(legend(target, series), _last(series))
             for target, result in _results(panel, data) for series in result]
    if not shown:
        figure.text(body[0] + body[2] / 2, body[1] + body[3] / 2, "No data", color=MUTED, fontsize=14,
                    ha="center", va="center")
        return
    width = body[2] / len(shown)
    for index, (name, value) in enumerate(shown):
        x = body[0] + width * (index + 0.5)
        figure.text(x, body[1] + body[3] * 0.5, format_value(value, unit), color=_colour(value, _steps(defaults)),
                    fontsize=20 if len(shown) < 4 else 13, weight="bold", ha="center", va="center")
        if len(shown) > 1:
            figure.text(x, body[1] + body[3] * 0.12, name[:24], color=MUTED, fontsize=7, ha="center")


def _draw_bargauge(figure: Figure, body: Body, panel: Mapping[str, Any], data: Data) -> None:
    defaults = _defaults(panel)
    unit = defaults.get("unit", "none")
    bars = sorted((legend(target, series), _last(series))
                  for target, result in _results(panel, data) for series in result)
    if not bars:
        return
    height = body[3] / len(bars)
    for index, (name, value) in enumerate(bars):
        override = _overrides(panel, name)
        top = override.get("max", defaults.get("max")) or max(value for _, value in bars) or 1
        steps = _steps(override) or _steps(defaults)
        y = body[1] + body[3] - height * (index + 0.85)
        share = max(0.0, min(1.0, value / top)) if math.isfinite(value) else 0.0
        label_width = 0.28 * body[2]
        track = body[2] - label_width - 0.12 * body[2]
        figure.text(body[0], y + height * 0.35, name[:28], color=TEXT, fontsize=7, va="center")
        figure.add_artist(Rectangle((body[0] + label_width, y), track, height * 0.7, color=GRID,
                                    transform=figure.transFigure))
        figure.add_artist(Rectangle((body[0] + label_width, y), track * share, height * 0.7,
                                    color=_colour(value, steps), transform=figure.transFigure))
        figure.text(body[0] + body[2] - 0.11 * body[2], y + height * 0.35, format_value(value, unit),
                    color=_colour(value, steps), fontsize=7, va="center")


def _draw_table(figure: Figure, body: Body, panel: Mapping[str, Any], data: Data) -> None:
    rows: dict[tuple[tuple[str, str], ...], dict[str, float]] = {}
    for target, result in _results(panel, data, instant=True):
        column = f"Value #{target['refId']}" if len(panel.get("targets", [])) > 1 else "Value"
        for series in result:
            key = tuple(sorted((k, v) for k, v in series.labels.items() if k != "__name__"))
            rows.setdefault(key, {})[column] = _last(series)
    organize: dict[str, Any] = next(
        (t["options"] for t in panel.get("transformations", []) if t["id"] == "organize"), {}
    )
    hidden = set(organize.get("excludeByName", {}))
    names = organize.get("renameByName", {})
    labels = sorted({k for key in rows for k, _ in key} - hidden)
    value_columns = sorted({c for row in rows.values() for c in row} - hidden)
    header = [names.get(c, c) for c in (*labels, *value_columns)]
    unit = _defaults(panel).get("unit", "none")
    cells = []
    for key, row_values in sorted(rows.items())[:MAX_TABLE_ROWS]:
        label_map = dict(key)
        cells.append([label_map.get(name, "") for name in labels]
                     + [format_value(row_values.get(c, math.nan), _column_unit(panel, names.get(c, c), unit))
                        for c in value_columns])
    axes = figure.add_axes(body)
    axes.set_axis_off()
    if not cells:
        return
    table = axes.table(cellText=cells, colLabels=header, loc="upper left", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(7)
    for (row, _), cell in table.get_celld().items():
        cell.set_facecolor(PANEL if row else GRID)
        cell.set_edgecolor(GRID)
        cell.get_text().set_color(TEXT)
    if len(rows) > MAX_TABLE_ROWS:
        figure.text(body[0], body[1], f"+{len(rows) - MAX_TABLE_ROWS} more rows", color=MUTED, fontsize=7)


def _column_unit(panel: Mapping[str, Any], column: str, default: str) -> str:
    return str(_overrides(panel, column).get("unit", default))


def _draw_heatmap(figure: Figure, body: Body, panel: Mapping[str, Any], data: Data) -> None:
    (target, result), *_ = _results(panel, data, instant=False)
    buckets = sorted(result, key=lambda series: float(series.labels.get("le", "inf").replace("+Inf", "inf")))
    if not buckets:
        return
    times = [t for t, _ in buckets[0].points]
    previous = [0.0] * len(times)
    grid = []
    for series in buckets:
        cumulative = [v if math.isfinite(v) else 0.0 for _, v in series.points][: len(times)]
        cumulative += [0.0] * (len(times) - len(cumulative))
        grid.append([max(c - p, 0.0) for c, p in zip(cumulative, previous, strict=True)])
        previous = cumulative
    axes = _axes(figure, (body[0] + AXIS_LABELS, body[1] + 0.1 * body[3], body[2] - AXIS_LABELS, body[3] * 0.9))
    axes.imshow(grid, aspect="auto", origin="lower", cmap="Oranges", interpolation="nearest",
                extent=(times[0], times[-1], 0, len(buckets)))
    axes.set_yticks([index + 0.5 for index in range(len(buckets))])
    axes.set_yticklabels([series.labels.get("le", "") for series in buckets], fontsize=6)
    _time_axis(axes, data)
    del target


def _draw_state_timeline(figure: Figure, body: Body, panel: Mapping[str, Any], data: Data) -> None:
    defaults = _defaults(panel)
    bands = sorted((legend(target, series), series)
                   for target, result in _results(panel, data, instant=False) for series in result)
    if not bands:
        return
    axes = _axes(figure, (body[0] + 0.2 * body[2], body[1] + 0.08 * body[3], body[2] * 0.79, body[3] * 0.92))
    steps = _steps(defaults)
    for index, (_, series) in enumerate(bands):
        times = [t for t, _ in series.points]
        width = (times[1] - times[0]) if len(times) > 1 else 60.0
        for t, value in series.points:
            axes.add_patch(Rectangle((t, index + 0.1), width, 0.8, color=_colour(value, steps), linewidth=0))
        axes.set_xlim(times[0], times[-1] + width)
    axes.set_ylim(0, len(bands))
    axes.set_yticks([index + 0.5 for index in range(len(bands))])
    axes.set_yticklabels([name[:30] for name, _ in bands], fontsize=6)
    axes.grid(False)
    _time_axis(axes, data)


def _draw_text(figure: Figure, body: Body, panel: Mapping[str, Any], data: Data) -> None:
    content = panel.get("options", {}).get("content", "")
    plain = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", content).replace("**", "").replace("`", "")
    lines = _aligned_tables([line for line in plain.splitlines() if not re.fullmatch(r"\|?[-| ]+\|?", line)])
    shown = lines[:MAX_TEXT_LINES]
    for index, line in enumerate(shown):
        figure.text(body[0] + 0.005, body[1] + body[3] * (1 - (index + 1) / max(len(shown) + 1, 8)),
                    line[:160], color=TEXT, fontsize=7, family="monospace")
    del data


def _aligned_tables(lines: Sequence[str]) -> list[str]:
    """Markdown table rows padded into columns, as Grafana's text panel lays the table out."""
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] if line.startswith("|") else None
            for line in lines]
    widths: dict[int, int] = {}
    for row in rows:
        for column, cell in enumerate(row or []):
            widths[column] = min(max(widths.get(column, 0), len(cell)), 48)
    return [
        "  ".join(cell[: widths[column]].ljust(widths[column]) for column, cell in enumerate(row)) if row else line
        for row, line in zip(rows, lines, strict=True)
    ]


_DRAWERS: dict[str, Callable[[Figure, Body, Mapping[str, Any], Data], None]] = {
    "timeseries": _draw_timeseries,
    "stat": _draw_stat,
    "bargauge": _draw_bargauge,
    "table": _draw_table,
    "heatmap": _draw_heatmap,
    "state-timeline": _draw_state_timeline,
    "text": _draw_text,
}
