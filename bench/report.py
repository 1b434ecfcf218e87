"""How bench/run.py reads its runs: medians, table cells and the ratios beside them."""

from __future__ import annotations

import statistics
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

Results = list[dict[str, Any]]


def attempt(
    name: str, fn: Callable[[], dict[str, Any]], repeat: int, failures: list[str]
) -> Results:
    """Run `fn` `repeat` times; a run that raises is reported and left out."""
    results: Results = []
    for i in range(repeat):
        started = time.perf_counter()
        print(f"-- {name} ({i + 1}/{repeat}) ...", file=sys.stderr, flush=True)
        try:
            results.append(fn())
        except Exception:
            traceback.print_exc()
            failures.append(name)
            continue
        took = time.perf_counter() - started
        print(f"   {name} took {took:.1f} s", file=sys.stderr, flush=True)
    return results


def median(results: Results, *path: str) -> float | None:
    """The median over runs of the value at `path` (None when no run produced one)."""
    values: list[float] = []
    for result in results:
        value: Any = result
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None:
            values.append(float(value))
    return round(statistics.median(values), 3) if values else None


def cell(results: Results, path: tuple[str, ...], unit: str) -> str:
    """The median, and every run's value when there was more than one."""
    middle = median(results, *path)
    if middle is None:
        return "FAILED"
    text = fmt(middle, unit)
    values = [v for v in (median([r], *path) for r in results) if v is not None]
    if len(values) > 1:
        digits = 2 if unit == "ms" else 0
        text += f"  (runs: {', '.join(f'{v:,.{digits}f}' for v in values)})"
    return text


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "FAILED"
    if unit in ("ms", "s", "%"):
        return f"{value:,.2f} {unit}"
    return f"{value:,.0f} {unit}".strip()


def ceiling_share(summary: dict[str, float | None]) -> str:
    """The end-to-end memory rate as a share of the raw window-100 rate (goal: at least 25%)."""
    memory, ceiling = summary["jobs_per_s_memory"], summary["zmq_reqrep_window100_per_s"]
    return f"  (end to end = {memory / ceiling:.0%} of it)" if memory and ceiling else ""


def floor_share(summary: dict[str, float | None]) -> str:
    """corral's idle p50 against the floor's, measured in the same run."""
    corral, floor = summary["latency_p50_ms"], summary["latency_floor_p50_ms"]
    return f"  (corral = {corral / floor:.1f}x the floor)" if corral and floor else ""


def ratio(summary: dict[str, float | None], store: str) -> str:
    """A durable store's rate as a share of the memory store's (the goals: at least 50% for
    SQLite, 40% for PostgreSQL)."""
    memory, durable = summary["jobs_per_s_memory"], summary[f"jobs_per_s_{store}"]
    return f"  = {durable / memory:.0%} of memory" if memory and durable else ""


def over_timeout(summary: dict[str, float | None]) -> str:
    """The failover's p50 as a multiple of failover_timeout (the goal is at most 2)."""
    p50, timeout = summary.get("failover_s_p50"), summary.get("failover_timeout_s")
    return f"  (= {p50 / timeout:.1f}x failover_timeout)" if p50 and timeout else ""
