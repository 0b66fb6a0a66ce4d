"""`DIR/dashboard.html`: template.yaml's CloudWatch dashboard drawn over the local run history.

Each `license-sync run --out DIR` appends its run and the metrics its handlers emitted (read
from their EMF output) to `DIR/history.jsonl`; the page then draws every widget of the
template's dashboard body, in its grid position, over that history: metric widgets as
inline SVG charts (one x position per run), the alarm widget as each alarm's state on the
newest run (evaluated from the alarm's own definition), the log widget as the handlers'
warnings and errors. One self-contained file: no script, no stylesheet or font to fetch.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from license_sync.domain.records import Run
from license_sync_local.cloudwatch import (
    OUR_NAMESPACE,
    AlarmEvaluation,
    MetricPoint,
    aggregate,
    alarms,
    dashboard_body,
    emf_points,
    evaluate_alarm,
    expression_references,
    local_values,
    read_sub,
    search,
    select,
    widget_metrics,
)
from license_sync_local.embedded import ACCOUNT_ID, REGION, EmbeddedStack
from license_sync_local.notes import stale_usage_note

HISTORY_FILE = "history.jsonl"
DASHBOARD_FILE = "dashboard.html"
MAX_HISTORY_RUNS = 50
LOG_LEVELS_SHOWN = frozenset({"WARNING", "ERROR", "CRITICAL"})
GROUPED_BARS_UP_TO_RUNS = 8

PAGE_WIDTH = 1320
COLUMN_WIDTH = PAGE_WIDTH / 24
ROW_HEIGHT = 46
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
SUCCESS_COLOUR, FAILURE_COLOUR = "#2ca02c", "#d62728"
AUTO_PALETTE = tuple(colour for colour in PALETTE if colour not in {SUCCESS_COLOUR, FAILURE_COLOUR})
"""Colours for series the template gives none (per instance): never success's or failure's."""
STATE_COLOURS = {
    "ALARM": "#d62728",
    "OK": "#2ca02c",
    "INSUFFICIENT_DATA": "#7f7f7f",
    "NOT_LOCAL": "#b0b7c3",
}


@dataclass(frozen=True)
class RunRecord:
    """One local run as the dashboard sees it."""

    run: Run
    points: list[MetricPoint]
    logs: list[dict[str, Any]]

    def to_json(self) -> str:
        return json.dumps(
            {
                "run": json.loads(self.run.model_dump_json()),
                "points": [point.to_json() for point in self.points],
                "logs": self.logs,
            }
        )

    @classmethod
    def from_json(cls, line: str) -> RunRecord:
        data = json.loads(line)
        return cls(
            Run.model_validate(data["run"]),
            [MetricPoint.from_json(point) for point in data["points"]],
            list(data["logs"]),
        )


def log_lines(output: str) -> list[dict[str, Any]]:
    """What the log widget's query keeps: warnings and errors, and any line with an error.

    (JSON log lines; EMF documents are not logs.) The query's filter is
    `level in ["ERROR", "CRITICAL", "WARNING"] or (ispresent(error) and error != "")`.
    """
    found = []
    for line in output.splitlines():
        if not line.startswith("{") or '"_aws"' in line:
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and (
            entry.get("level") in LOG_LEVELS_SHOWN or entry.get("error")
        ):
            found.append(entry)
    return found


def append_history(out_dir: Path, record: RunRecord) -> list[RunRecord]:
    """Add a run to `out_dir/history.jsonl` (keeping the newest runs); return the history."""
    path = out_dir / HISTORY_FILE
    history = read_history(path)
    history.append(record)
    history = history[-MAX_HISTORY_RUNS:]
    path.write_text("".join(item.to_json() + "\n" for item in history))
    return history


def read_history(path: Path) -> list[RunRecord]:
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                records.append(RunRecord.from_json(line))
            except (ValueError, KeyError):
                continue  # written by an older version: skipped, not fatal
    return records


def write_dashboard(
    out_dir: Path,
    run: Run,
    lambda_output: str,
    *,
    template: Mapping[str, Any],
    values: Mapping[str, str],
) -> Path:
    """Record `run` in the history and write `out_dir/dashboard.html` over all of it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    record = RunRecord(run, emf_points(lambda_output), log_lines(lambda_output))
    history = append_history(out_dir, record)
    path = out_dir / DASHBOARD_FILE
    path.write_text(render_dashboard(template, history, values=values))
    return path


def stack_values(stack: EmbeddedStack) -> dict[str, str]:
    """What the template's `${...}` stand for in this embedded stack."""
    values = local_values(
        stack.template, stack_name=stack.stack_name, region=REGION, account_id=ACCOUNT_ID
    )
    values.update(stack.parameters)
    values["MetricsNamespace"] = stack.environment["POWERTOOLS_METRICS_NAMESPACE"]
    return values


def write_stack_dashboard(
    stack: EmbeddedStack, run: Run, out_dir: Path, *, lambda_output: str | None = None
) -> Path:
    """`write_dashboard` for a run of the embedded stack (what `license-sync run` calls).

    `lambda_output` is what the handlers printed during this run (default: all of it).
    """
    return write_dashboard(
        out_dir,
        run,
        stack.lambda_output.getvalue() if lambda_output is None else lambda_output,
        template=stack.template,
        values=stack_values(stack),
    )


# --- rendering ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    label: str
    colour: str
    values: list[float | None]
    """One value per run (None: no data in that run)."""


def render_dashboard(
    template: Mapping[str, Any], history: Sequence[RunRecord], *, values: Mapping[str, str]
) -> str:
    body = dashboard_body(template, values)
    runs = [record.run for record in history]
    widgets = "\n".join(_widget(widget, template, history, values) for widget in body["widgets"])
    name = html.escape(_dashboard_name(template, values))
    newest = runs[-1] if runs else None
    subtitle = (
        f"{len(runs)} local run(s); newest {html.escape(newest.run_id)}: "
        f"<b class='status-{html.escape(newest.status.value)}'>{html.escape(newest.status.value)}"
        "</b>"
        if newest
        else "no local run yet"
    )
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return _PAGE.format(
        title=name,
        subtitle=subtitle,
        generated=generated,
        widgets=widgets,
        runs=_runs_table(runs),
        width=PAGE_WIDTH,
        row=ROW_HEIGHT,
    )


def _dashboard_name(template: Mapping[str, Any], values: Mapping[str, str]) -> str:
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::CloudWatch::Dashboard":
            return str(read_sub(resource["Properties"].get("DashboardName", ""), values))
    return "license-sync"


def _widget(
    widget: Mapping[str, Any],
    template: Mapping[str, Any],
    history: Sequence[RunRecord],
    values: Mapping[str, str],
) -> str:
    properties = widget.get("properties", {})
    kind = widget["type"]
    width, height = int(widget["width"]), int(widget["height"])
    style = (
        f"grid-column: {int(widget['x']) + 1} / span {width}; "
        f"grid-row: {int(widget['y']) + 1} / span {height};"
    )
    title = html.escape(str(properties.get("title", "")))
    if kind == "text":
        content = _markdown(str(properties.get("markdown", "")))
        return f'<section class="widget text" style="{style}">{content}</section>'
    if kind == "metric":
        content = _metric_widget(properties, history, width, height)
    elif kind == "alarm":
        content = _alarm_widget(properties, template, history, values)
    elif kind == "log":
        content = _log_widget(history)
    else:
        content = f'<p class="note">widget type {html.escape(kind)} is not drawn locally</p>'
    return (
        f'<section class="widget {kind}" style="{style}" data-type="{kind}">'
        f"<h3>{title}</h3>{content}</section>"
    )


def _metric_widget(
    properties: Mapping[str, Any], history: Sequence[RunRecord], width: int, height: int
) -> str:
    default_stat = str(properties.get("stat", "Average"))
    series: list[Series] = []
    not_local: list[str] = []
    colour_index = 0

    def colour(options: Mapping[str, Any]) -> str:
        nonlocal colour_index
        if "color" in options:
            return str(options["color"])
        chosen = AUTO_PALETTE[colour_index % len(AUTO_PALETTE)]
        colour_index += 1
        return chosen

    for row in widget_metrics(properties):
        stat = str(row.options.get("stat", default_stat))
        if row.expression:
            for namespace, name, schema in expression_references(row.expression):
                by_label: dict[str, list[float | None]] = {}
                for index, record in enumerate(history):
                    found = search(record.points, namespace, name, schema)
                    for label, found_values in found.items():
                        by_label.setdefault(label, [None] * len(history))[index] = aggregate(
                            found_values, stat
                        )
                for label, run_values in sorted(by_label.items()):
                    series.append(Series(label or name, colour({}), run_values))
            continue
        if row.namespace.startswith("AWS/"):
            not_local.append(f"{row.namespace} {row.name}")
            continue
        run_values = [
            aggregate(select(record.points, row.namespace, row.name, row.dimensions), stat)
            for record in history
        ]
        series.append(
            Series(str(row.options.get("label", row.name)), colour(row.options), run_values)
        )

    annotations = [
        (float(item["value"]), str(item.get("label", "")), str(item.get("color", "#d62728")))
        for item in properties.get("annotations", {}).get("horizontal", [])
    ]
    chart_width = width * COLUMN_WIDTH - 18
    chart_height = height * ROW_HEIGHT - 78
    labels = [_run_label(index, record.run) for index, record in enumerate(history)]
    if not any(value is not None for item in series for value in item.values):
        message = (
            "AWS service metrics: shown in CloudWatch, not produced by a local run"
            if not_local and not series
            else "no data in the local runs"
        )
        svg = _empty_chart(chart_width, chart_height, message)
    else:
        svg = _chart(
            series,
            labels,
            chart_width,
            chart_height,
            stacked=bool(properties.get("stacked")),
            annotations=annotations,
            y_min=properties.get("yAxis", {}).get("left", {}).get("min"),
        )
    legend = "".join(
        f'<span class="key"><i style="background:{item.colour}"></i>{html.escape(item.label)}'
        f" <b>{_latest(item.values)}</b></span>"
        for item in series
    )
    if not_local and series:
        legend += f'<span class="key muted">+ {len(not_local)} AWS service metric(s)</span>'
    return f'{svg}<div class="legend">{legend}</div>'


def _latest(values: Sequence[float | None]) -> str:
    for value in reversed(values):
        if value is not None:
            return _number(value)
    return "-"


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 1e9:
        return str(int(value))
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}".rstrip("0").rstrip(".")
    if abs(value) < 0.01:
        return "0.00"
    return f"{value:.3g}"


def _run_label(index: int, run: Run) -> str:
    return f"#{index + 1} {run.started_at.strftime('%H:%M:%S')}"


def _nice_step(span: float, ticks: int = 4) -> float:
    raw = span / ticks
    magnitude = math.pow(10.0, math.floor(math.log10(raw)))
    for multiple in (1, 2, 2.5, 5, 10):
        if raw <= multiple * magnitude:
            return multiple * magnitude
    return 10 * magnitude


def _empty_chart(width: float, height: float, message: str) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {width:.0f} {height:.0f}" role="img">'
        f'<rect x="0" y="0" width="{width:.0f}" height="{height:.0f}" class="empty"/>'
        f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" '
        f'class="muted">{html.escape(message)}</text></svg>'
    )


def _chart(
    series: Sequence[Series],
    labels: Sequence[str],
    width: float,
    height: float,
    *,
    stacked: bool,
    annotations: Sequence[tuple[float, str, str]],
    y_min: Any,
) -> str:
    left, right, top, bottom = 46.0, 12.0, 10.0, 22.0
    plot_width, plot_height = width - left - right, height - top - bottom
    runs = len(labels)
    if stacked:
        totals = [math.fsum(item.values[index] or 0.0 for item in series) for index in range(runs)]
        data_values = totals
    else:
        data_values = [value for item in series for value in item.values if value is not None]
    candidates = [*data_values, *(value for value, _, _ in annotations)]
    low = min([0.0, *candidates]) if y_min is None else min(float(y_min), *candidates)
    high = max([1.0, *candidates])
    if high <= low:
        high = low + 1.0
    step = _nice_step(high - low)
    low = math.floor(low / step) * step
    high = math.ceil(high / step) * step

    def y(value: float) -> float:
        return top + plot_height - (value - low) / (high - low) * plot_height

    band = plot_width / max(runs, 1)

    def x(index: int) -> float:
        return left + (index + 0.5) * band

    parts = [f'<svg class="chart" viewBox="0 0 {width:.0f} {height:.0f}" role="img">']
    tick = low
    while tick <= high + step / 2:
        parts.append(
            f'<line x1="{left:.1f}" x2="{width - right:.1f}" y1="{y(tick):.1f}" '
            f'y2="{y(tick):.1f}" class="grid"/>'
            f'<text x="{left - 5:.1f}" y="{y(tick) + 3.5:.1f}" text-anchor="end">'
            f"{_number(tick)}</text>"
        )
        tick += step
    every = max(1, math.ceil(runs / 8))
    for index, label in enumerate(labels):
        if index % every == 0 or index == runs - 1:
            parts.append(
                f'<text x="{x(index):.1f}" y="{height - 6:.1f}" text-anchor="middle">'
                f"{html.escape(label)}</text>"
            )
    geometry = _Geometry(x, y, band, max(low, 0.0))
    if stacked:
        parts += _stacked_bars(series, runs, geometry)
    elif runs <= GROUPED_BARS_UP_TO_RUNS:
        # Few runs: bars side by side, so equal values (0 and 0) do not hide each other.
        parts += _grouped_bars(series, runs, geometry)
    else:
        parts += _lines(series, geometry)
    for value, label, colour in annotations:
        parts.append(
            f'<line x1="{left:.1f}" x2="{width - right:.1f}" y1="{y(value):.1f}" '
            f'y2="{y(value):.1f}" stroke="{colour}" class="annotation"/>'
            f'<text x="{width - right - 2:.1f}" y="{y(value) - 3:.1f}" text-anchor="end" '
            f'fill="{colour}">{html.escape(label)} {_number(value)}</text>'
        )
    parts.append(
        f'<line x1="{left:.1f}" x2="{left:.1f}" y1="{top:.1f}" y2="{top + plot_height:.1f}" '
        'class="axis"/></svg>'
    )
    return "".join(parts)


@dataclass(frozen=True)
class _Geometry:
    x: Callable[[int], float]
    """The centre of a run's band."""
    y: Callable[[float], float]
    band: float
    baseline: float
    """Where bars start (0, or the axis minimum when that is above 0)."""


def _bar(item: Series, value: float, *, x: float, top: float, width: float, height: float) -> str:
    return (
        f'<rect x="{x:.1f}" y="{top:.1f}" width="{width:.1f}" height="{height:.1f}" '
        f'fill="{item.colour}"><title>{html.escape(item.label)}: {_number(value)}</title></rect>'
    )


def _stacked_bars(series: Sequence[Series], runs: int, geometry: _Geometry) -> list[str]:
    parts = []
    bar = geometry.band * 0.55
    for index in range(runs):
        base = 0.0
        for item in series:
            value = item.values[index]
            if not value:
                continue
            top = geometry.y(base + value)
            height = geometry.y(base) - top
            parts.append(
                _bar(item, value, x=geometry.x(index) - bar / 2, top=top, width=bar, height=height)
            )
            base += value
    return parts


def _grouped_bars(series: Sequence[Series], runs: int, geometry: _Geometry) -> list[str]:
    parts = []
    group = geometry.band * 0.7
    bar = group / max(len(series), 1)
    labelled = len(series) * runs <= 12
    for index in range(runs):
        for position, item in enumerate(series):
            value = item.values[index]
            if value is None:
                continue
            left = geometry.x(index) - group / 2 + position * bar
            top, bottom = sorted((geometry.y(value), geometry.y(geometry.baseline)))
            parts.append(
                _bar(
                    item,
                    value,
                    x=left + 1,
                    top=top,
                    width=max(bar - 2, 1),
                    height=max(bottom - top, 1),
                )
            )
            if labelled:
                parts.append(
                    f'<text x="{left + bar / 2:.1f}" y="{top - 3:.1f}" text-anchor="middle" '
                    f'class="value">{_number(value)}</text>'
                )
    return parts


def _lines(series: Sequence[Series], geometry: _Geometry) -> list[str]:
    parts = []
    for item in series:
        segment: list[str] = []
        for index, value in enumerate(item.values):
            if value is None:
                if len(segment) > 1:
                    parts.append(_polyline(segment, item.colour))
                segment = []
                continue
            x, y = geometry.x(index), geometry.y(value)
            segment.append(f"{x:.1f},{y:.1f}")
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{item.colour}">'
                f"<title>{html.escape(item.label)}: {_number(value)}</title></circle>"
            )
        if len(segment) > 1:
            parts.append(_polyline(segment, item.colour))
    return parts


def _polyline(points: Sequence[str], colour: str) -> str:
    return f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" stroke-width="2"/>'


def alarm_evaluations(
    template: Mapping[str, Any], points: Sequence[MetricPoint], values: Mapping[str, str]
) -> list[AlarmEvaluation]:
    """Every alarm of the template, evaluated on `points` (the newest run's metrics)."""
    return [
        evaluate_alarm(logical_id, properties, points, values)
        for logical_id, properties in alarms(template).items()
    ]


def _alarm_widget(
    properties: Mapping[str, Any],
    template: Mapping[str, Any],
    history: Sequence[RunRecord],
    values: Mapping[str, str],
) -> str:
    points = history[-1].points if history else []
    evaluations = {
        values.get(f"{item.logical_id}.Arn", item.logical_id): item
        for item in alarm_evaluations(template, points, values)
    }
    cells = []
    for arn in properties.get("alarms", []):
        item = evaluations.get(arn)
        if item is None:
            cells.append(f'<div class="alarm"><b>{html.escape(arn)}</b> not in the template</div>')
            continue
        shown = item.state.replace("_", " ") if item.state != "NOT_LOCAL" else "AWS metric"
        cells.append(
            f'<div class="alarm" title="{html.escape(item.reason)}">'
            f'<span class="state" style="background:{STATE_COLOURS[item.state]}">{shown}</span>'
            f"<b>{html.escape(item.name)}</b><small>{html.escape(item.reason)}</small></div>"
        )
    note = '<p class="note">State each alarm would take on the newest run\'s metrics.</p>'
    return f'{note}<div class="alarms">{"".join(cells)}</div>'


LOG_ROWS_SHOWN = 12


def _log_widget(history: Sequence[RunRecord]) -> str:
    entries = [entry for record in history for entry in record.logs][-LOG_ROWS_SHOWN:]
    if not entries:
        return '<p class="note">No warnings or errors were logged in the local runs.</p>'
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(value)}</td>" for value in _log_row(entry)) + "</tr>"
        for entry in reversed(entries)
    )
    return (
        '<table class="logs"><tr><th>time</th><th>run</th><th>level</th><th>function</th>'
        f"<th>message</th><th>hostname</th><th>error</th></tr>{rows}</table>"
    )


def _log_row(entry: Mapping[str, Any]) -> list[str]:
    # The query's fields; Lambda's own line for an uncaught error has errorType/errorMessage.
    message = entry.get("message") or _uncaught_error(entry)
    return [
        str(entry.get(key) or "")
        for key in ("timestamp", "correlation_id", "level", "function_name")
    ] + [_first_line(message), str(entry.get("hostname") or ""), _first_line(entry.get("error"))]


def _uncaught_error(entry: Mapping[str, Any]) -> str:
    lines = [line for line in str(entry.get("errorMessage") or "").splitlines() if line.strip()]
    text = f"{entry.get('errorType') or 'error'}: {lines[0] if lines else ''}"
    if len(lines) > 1:
        # A batch's message ends with the traceback of what failed: its last line says what.
        text += f" (last: {lines[-1].strip()})"
    return text


def _first_line(value: Any, limit: int = 240) -> str:
    """A table cell's worth: the first line (an error's text can carry a whole traceback)."""
    text = str(value or "").strip().split("\n", 1)[0]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _markdown(text: str) -> str:
    """Headings, paragraphs, `code` and *emphasis*: what the template's text widget uses."""
    out = []
    for line in text.split("\n"):
        pieces = re.split(r"(`[^`]+`)", line)
        escaped = "".join(
            f"<code>{html.escape(piece[1:-1])}</code>"
            if piece.startswith("`") and piece.endswith("`") and len(piece) > 1
            else re.sub(r"\*([^*]+)\*", r"<em>\1</em>", html.escape(piece))
            for piece in pieces
        )
        if escaped.startswith("## "):
            out.append(f"<h2>{escaped[3:]}</h2>")
        elif escaped.strip():
            out.append(f"<p>{escaped}</p>")
    return "".join(out)


def _stale_usage(run: Run) -> str:
    as_of = run.finished_at or run.started_at
    return "; ".join(
        f"{item.hostname}: {stale_usage_note(item.stale_from, as_of)}"
        for item in run.instances.values()
        if item.stale_from is not None
    )


def _runs_table(runs: Sequence[Run]) -> str:
    rows = []
    for index, run in enumerate(runs):
        summary = run.summary
        failed = [
            f"{item.hostname}: {item.error}" if item.error else item.hostname
            for item in run.instances.values()
            if item.status == "failed"
        ]
        rows.append(
            "<tr>"
            f"<td>#{index + 1}</td><td>{html.escape(run.run_id)}</td>"
            f'<td class="status-{run.status.value}">{run.status.value}</td>'
            f"<td>{_number(run.duration_seconds) if run.duration_seconds is not None else '-'}</td>"
            f"<td>{len(run.instances) - len(failed)}/{len(run.instances)}</td>"
            f"<td>{html.escape(_stale_usage(run))}</td>"
            f"<td>{summary.consumed_licenses if summary else '-'}</td>"
            f"<td>{summary.seats_purchased if summary else '-'}</td>"
            f"<td>{html.escape('; '.join(failed) or run.error or '')}</td></tr>"
        )
    return "".join(rows)


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} (local)</title>
<style>
  body {{ font: 13px/1.35 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 16px;
         background: #f2f3f3; color: #16191f; }}
  header, main, footer {{ width: {width}px; }}
  header h1 {{ font-size: 20px; margin: 0 0 4px; }}
  header p {{ margin: 0 0 10px; color: #545b64; }}
  main {{ display: grid; grid-template-columns: repeat(24, 1fr);
          grid-auto-rows: minmax({row}px, auto); gap: 8px; }}
  .widget {{ background: #fff; border: 1px solid #d5dbdb; border-radius: 4px; padding: 6px 8px;
             overflow: hidden; box-sizing: border-box; }}
  .widget h3 {{ font-size: 13px; margin: 0 0 4px; }}
  .widget.text h2 {{ font-size: 16px; margin: 2px 0 4px; }}
  .widget.text p {{ margin: 2px 0; color: #545b64; }}
  svg.chart {{ width: 100%; height: auto; display: block; }}
  svg.chart text {{ font-size: 10px; fill: #545b64; }}
  svg.chart text.value {{ fill: #16191f; font-weight: 600; }}
  svg.chart .grid {{ stroke: #eaeded; }}
  svg.chart .axis {{ stroke: #aab7b8; }}
  svg.chart .annotation {{ stroke-dasharray: 5 4; stroke-width: 1.5; }}
  svg.chart rect.empty {{ fill: #fafafa; stroke: #eaeded; }}
  .legend {{ font-size: 11px; margin-top: 2px; }}
  .key {{ margin-right: 10px; white-space: nowrap; }}
  .key i {{ display: inline-block; width: 10px; height: 10px; margin-right: 4px;
            vertical-align: -1px; }}
  .muted, .note {{ color: #879596; fill: #879596; }}
  .note {{ margin: 0 0 4px; font-size: 11px; }}
  .alarms {{ display: grid; grid-template-columns: repeat(3, 1fr); gap: 6px 12px; }}
  .alarm {{ font-size: 11px; overflow-wrap: anywhere; }}
  .alarm .state {{ color: #fff; border-radius: 3px; padding: 0 5px; margin-right: 6px;
                   font-weight: 600; font-size: 10px; }}
  .alarm small {{ display: block; color: #687078; margin-top: 1px; }}
  table {{ border-collapse: collapse; width: 100%; font-size: 11px; }}
  th, td {{ text-align: left; padding: 2px 6px; border-bottom: 1px solid #eaeded;
            vertical-align: top; }}
  .status-succeeded {{ color: #1d8102; }} .status-partial {{ color: #c46b00; }}
  .status-failed {{ color: #d13212; }}
  footer {{ margin-top: 12px; background: #fff; border: 1px solid #d5dbdb; padding: 8px;
            box-sizing: border-box; }}
  footer h2 {{ font-size: 14px; margin: 0 0 6px; }}
</style>
</head>
<body>
<header>
  <p>Local drawing of CloudWatch dashboard <b>{title}</b> (template.yaml's widgets, in their
  places) over the local run history: {subtitle}. Each x position is one run (CloudWatch
  aggregates by the widget's period). Generated {generated}.</p>
</header>
<main>
{widgets}
</main>
<footer>
  <h2>Local runs</h2>
  <table><tr><th></th><th>run</th><th>status</th><th>seconds</th><th>instances synced</th>
  <th>stale usage counted</th>
  <th>consumed</th><th>purchased</th><th>failed instances / error</th></tr>{runs}</table>
</footer>
</body>
</html>
"""

__all__ = [
    "DASHBOARD_FILE",
    "HISTORY_FILE",
    "OUR_NAMESPACE",
    "RunRecord",
    "alarm_evaluations",
    "append_history",
    "log_lines",
    "read_history",
    "render_dashboard",
    "stack_values",
    "write_dashboard",
    "write_stack_dashboard",
]
