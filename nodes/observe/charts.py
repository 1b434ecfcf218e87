"""Small pictures of a `stats {series: true}` series (actors/series.py): inline SVG for the
dashboard and sparklines for `corral status --watch`. Pure functions of the numbers; no
JavaScript library, no network (the dashboard's CSP allows nothing but itself).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

SPARKS = "▁▂▃▄▅▆▇█"
Values = Sequence[float | None]
Scale = Callable[[float], float]  # a value -> its height in the chart, 0 to 1
CHART_SECONDS = 300  # the dashboard draws the last five minutes
RATE_SECONDS = 10  # "now" is the mean of the last ten seconds


def tail(series: dict[str, Any], key: str, seconds: int) -> list[float | None]:
    """The last `seconds` values of one line of a series (fewer when it is shorter)."""
    values = series.get(key) or []
    return list(values[-seconds:])


def rate(values: Values, seconds: int = RATE_SECONDS) -> float:
    """The mean per second over the last `seconds` values (None counts as 0)."""
    recent = values[-seconds:]
    return sum(v or 0 for v in recent) / len(recent) if recent else 0.0


def latest(values: Values, seconds: int = RATE_SECONDS) -> float | None:
    """The most recent value that is not None, within the last `seconds`."""
    return next((v for v in reversed(values[-seconds:]) if v is not None), None)


def sparkline(values: Values, top: float | None = None) -> str:
    """One character per value, ▁ (zero) to █ (`top`, default the largest); None is a space."""
    known = [v for v in values if v is not None]
    top = max(known, default=0.0) if top is None else top
    marks = []
    for value in values:
        if value is None:
            marks.append(" ")
        elif top <= 0 or value <= 0:
            marks.append(SPARKS[0])
        else:
            marks.append(SPARKS[min(len(SPARKS) - 1, round(value / top * (len(SPARKS) - 1)))])
    return "".join(marks)


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is >= value (>= 1)."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(power * step for step in (1, 2, 2.5, 5, 10) if power * step >= value)


def linear(top: float) -> Scale:
    """Values from 0 to `top` onto 0..1."""
    return lambda value: max(0.0, min(value, top)) / top


def logarithmic(floor: float, top: float) -> Scale:
    """Values from `floor` to `top` onto 0..1 by their logarithm (latencies span decades)."""
    span = math.log(top / floor)
    return lambda value: min(1.0, max(0.0, math.log(max(value, floor) / floor) / span))


def path(values: Values, scale: Scale, width: float, height: float) -> str:
    """An SVG path through the values, each at `scale(value)` of the height; a None breaks
    the line."""
    if not values:
        return ""
    step = width / max(1, len(values) - 1)
    parts = []
    pen_down = False
    for index, value in enumerate(values):
        if value is None:
            pen_down = False
            continue
        x = index * step
        y = height - scale(value) * height
        parts.append(f"{'L' if pen_down else 'M'}{x:.1f},{y:.1f}")
        pen_down = True
    return " ".join(parts)


def svg(
    lines: Sequence[tuple[str, Values]], scale: Scale, width: int = 600, height: int = 120
) -> str:
    """An inline SVG chart: quarter grid lines and one `<path class="line NAME">` per line."""
    grid = "".join(
        f'<line class="grid" x1="0" x2="{width}" y1="{height * k / 4:.1f}" '
        f'y2="{height * k / 4:.1f}"/>'
        for k in range(4)
    )
    drawn = "".join(
        f'<path class="line {name}" d="{path(values, scale, width, height)}"/>'
        for name, values in lines
    )
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" preserveAspectRatio="none" '
        f'role="img">{grid}{drawn}</svg>'
    )


def format_rate(value: float) -> str:
    return f"{value:.0f}/s" if value >= 100 else f"{value:.1f}/s"


def format_ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 10:
        return f"{value:.1f} ms"
    return f"{value:.0f} ms" if value < 1000 else f"{value / 1000:.1f} s"


def dashboard_section(series: dict[str, Any] | None) -> str:
    """The dashboard's two charts (throughput, latency) over the last five minutes."""
    if not series:
        return ""
    done = tail(series, "completed", CHART_SECONDS)
    failed = tail(series, "failed", CHART_SECONDS)
    p50 = tail(series, "latency_p50_ms", CHART_SECONDS)
    p95 = tail(series, "latency_p95_ms", CHART_SECONDS)
    jobs_top = nice_ceiling(max((v or 0 for v in done + failed), default=0))
    known_ms = [v for v in p50 + p95 if v is not None and v > 0]
    ms_floor = 10 ** math.floor(math.log10(min(known_ms, default=1.0)))
    ms_top = max(nice_ceiling(max(known_ms, default=0.0)), ms_floor * 10)
    minutes = f"-{len(done) * float(series.get('interval', 1.0)) / 60:g} min"
    throughput = _card(
        "throughput",
        "Throughput",
        [
            ("completed", f"{format_rate(rate(done))} completed"),
            ("failed", f"{format_rate(rate(failed))} failed"),
        ],
        svg([("completed", done), ("failed", failed)], linear(jobs_top)),
        (format_rate(jobs_top), "0"),
        minutes,
    )
    latency = _card(
        "latency",
        "Latency, enqueue to completion",
        [("p50", f"p50 {format_ms(latest(p50))}"), ("p95", f"p95 {format_ms(latest(p95))}")],
        svg([("p50", p50), ("p95", p95)], logarithmic(ms_floor, ms_top)),
        (format_ms(ms_top), f"{format_ms(ms_floor)}, log scale"),
        minutes,
    )
    return f'<section id="charts"><div class="charts">{throughput}{latency}</div></section>'


def _card(
    name: str,
    title: str,
    keys: list[tuple[str, str]],
    chart: str,
    axis: tuple[str, str],
    since: str,
) -> str:
    legend = "".join(f'<span class="key {cls}">{text}</span>' for cls, text in keys)
    return (
        f'<div class="chart-card" id="{name}-chart"><div class="chart-head">'
        f'<span class="label">{title}</span>{legend}</div>'
        f'<div class="chart-body"><span class="axis top">{axis[0]}</span>{chart}'
        f'<span class="axis bottom">{axis[1]}</span></div>'
        f'<div class="axis x"><span>{since}</span><span>now</span></div></div>'
    )


CSS = """
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 12px;
  margin-top: 12px; }
.chart-card { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 10px 14px 8px; }
.chart-head { display: flex; gap: 14px; align-items: baseline; flex-wrap: wrap; }
.chart-head .label { color: var(--muted); font-size: 12px; text-transform: uppercase;
  margin-right: auto; }
.key { font-size: 13px; font-weight: 600; font-variant-numeric: tabular-nums; }
.key::before { content: ""; display: inline-block; width: 10px; height: 3px; margin-right: 6px;
  vertical-align: middle; border-radius: 2px; background: currentColor; }
.key.completed { color: var(--ok); } .key.failed { color: var(--bad); }
.key.p50 { color: var(--info); } .key.p95 { color: #805ad5; }
.chart-body { position: relative; margin-top: 6px; }
svg.chart { display: block; width: 100%; height: 110px; }
svg.chart .grid { stroke: var(--line); stroke-width: 1; vector-effect: non-scaling-stroke; }
svg.chart .line { fill: none; stroke-width: 2; vector-effect: non-scaling-stroke;
  stroke-linejoin: round; }
svg.chart .completed { stroke: var(--ok); } svg.chart .failed { stroke: var(--bad); }
svg.chart .p50 { stroke: var(--info); } svg.chart .p95 { stroke: #805ad5; }
.axis { color: var(--muted); font-size: 11px; font-variant-numeric: tabular-nums; }
.axis.top, .axis.bottom { position: absolute; left: 4px; background: rgba(255,255,255,.8); }
.axis.top { top: 0; } .axis.bottom { bottom: 2px; }
.axis.x { display: flex; justify-content: space-between; margin-top: 2px; }
"""
