"""Inline SVG drawn on the server: the stage DAG, the run timeline, the metrics charts.

Pure functions of their data, returning markup (names escaped). Colours come from CSS
classes (``st-<status>``), so the page's script recolours a node by changing its class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape

from markupsafe import Markup

NODE_W, NODE_H, COL_GAP, ROW_GAP, PAD = 170, 40, 60, 18, 16


def dag(
    levels: Sequence[Sequence[str]],
    needs: Mapping[str, Sequence[str]],
    statuses: Mapping[str, str],
    extra: Sequence[str] = (),
) -> Markup:
    """Stages as boxes in columns by level, edges from each dependency; ``extra`` stages in a last column."""
    columns = [list(level) for level in levels] + ([list(extra)] if extra else [])
    where: dict[str, tuple[float, float]] = {}
    for c, column in enumerate(columns):
        for r, name in enumerate(column):
            where[name] = (PAD + c * (NODE_W + COL_GAP), PAD + r * (NODE_H + ROW_GAP))
    width = PAD * 2 + max(1, len(columns)) * (NODE_W + COL_GAP) - COL_GAP
    height = PAD * 2 + max((len(c) for c in columns), default=1) * (NODE_H + ROW_GAP) - ROW_GAP
    parts = [
        f'<svg class="dag" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="stage graph">'
    ]
    for name, deps in needs.items():
        if name not in where:
            continue
        x2, y2 = where[name]
        for dep in deps:
            if dep not in where:
                continue
            x1, y1 = where[dep]
            sx, sy, ex, ey = x1 + NODE_W, y1 + NODE_H / 2, x2, y2 + NODE_H / 2
            mid = (sx + ex) / 2
            parts.append(f'<path class="edge" d="M{sx},{sy} C{mid},{sy} {mid},{ey} {ex},{ey}"/>')
    for name, (x, y) in where.items():
        status = statuses.get(name, "pending")
        label = name if len(name) <= 22 else name[:21] + "…"
        parts.append(
            f'<g class="node st-{escape(status)}" data-stage="{escape(name)}" transform="translate({x},{y})">'
            f"<title>{escape(name)}: {escape(status)}</title>"
            f'<rect width="{NODE_W}" height="{NODE_H}" rx="7"/>'
            f'<text class="name" x="10" y="17">{escape(label)}</text>'
            f'<text class="status" x="10" y="32">{escape(status)}</text></g>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def timeline(runs: Sequence[Mapping[str, object]], now: float, width: int = 900) -> Markup:
    """One bar per run (newest on top) from its start to its end on a shared time axis."""
    spans = []
    for run in runs:
        start = run.get("started_at") or run.get("created_at")
        if not isinstance(start, int | float):
            continue
        end = run.get("finished_at")
        spans.append((run, float(start), float(end) if isinstance(end, int | float) else now))
    if not spans:
        return Markup('<p class="muted">no runs yet</p>')
    lo = min(s for _, s, _ in spans)
    hi = max(max(e for _, _, e in spans), lo + 1)
    row, left = 22, 150
    height = PAD + len(spans) * row + 24
    scale = (width - left - PAD) / (hi - lo)
    parts = [
        f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="run history">'
    ]
    for i, (run, start, end) in enumerate(spans):
        y = PAD / 2 + i * row
        x = left + (start - lo) * scale
        w = max(3.0, (end - start) * scale)
        rid, status = escape(str(run["id"])), escape(str(run["status"]))
        when = datetime.fromtimestamp(start).strftime("%m-%d %H:%M:%S")
        parts.append(
            f'<a href="/runs/{rid}"><text class="axis" x="4" y="{y + 14}">{when}</text>'
            f'<rect class="bar st-{status}" x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" rx="3">'
            f"<title>{rid}: {status} ({end - start:.1f} s)</title></rect></a>"
        )
    parts.append(
        f'<text class="axis" x="{left}" y="{height - 6}">{datetime.fromtimestamp(lo).strftime("%Y-%m-%d %H:%M")}</text>'
        f'<text class="axis" x="{width - PAD}" y="{height - 6}" text-anchor="end">'
        f"{datetime.fromtimestamp(hi).strftime('%Y-%m-%d %H:%M')}</text></svg>"
    )
    return Markup("".join(parts))


def line_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    unit: str,
    y_max: float | None = None,
    width: int = 640,
    height: int = 220,
) -> Markup:
    """Lines (one per series, gaps where a value is None) over labelled x positions, with a y axis."""
    values = [v for _, vs in series for v in vs if v is not None]
    top = y_max if y_max is not None else (max(values) if values else 1.0) or 1.0
    left, bottom, right, upper = 56, 28, 12, 12
    plot_w, plot_h = width - left - right, height - bottom - upper
    step = plot_w / max(1, len(labels) - 1)

    def y_of(v: float) -> float:
        return upper + plot_h - (v / top) * plot_h

    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img">'
    ]
    for frac in (0, 0.5, 1):
        y = y_of(top * frac)
        parts.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(top * frac, unit)}</text>'
        )
    for i, label in enumerate(labels):
        if i % max(1, len(labels) // 7) == 0 or i == len(labels) - 1:
            parts.append(
                f'<text class="axis" x="{left + i * step:.1f}" y="{height - 8}" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
    if not values:
        parts.append(
            f'<text class="axis" x="{width / 2}" y="{height / 2}" text-anchor="middle">no data</text>'
        )
    for n, (name, vs) in enumerate(series):
        segments: list[list[str]] = [[]]
        for i, v in enumerate(vs):
            if v is None:
                segments.append([])
                continue
            point = f"{left + i * step:.1f},{y_of(v):.1f}"
            segments[-1].append(point)
            parts.append(
                f'<circle class="s{n}" cx="{left + i * step:.1f}" cy="{y_of(v):.1f}" r="3">'
                f"<title>{escape(name)} {escape(labels[i])}: {_fmt(v, unit)}</title></circle>"
            )
        for seg in segments:
            if len(seg) > 1:
                parts.append(f'<polyline class="s{n}" points="{" ".join(seg)}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _fmt(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value * 100:.0f}%"
    if value >= 120:
        return f"{value / 60:.1f}m"
    return f"{value:.1f}s"
