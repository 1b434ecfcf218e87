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


def versus_sync(summary: dict[str, float | None]) -> str:
    """Async handlers' rate as a share of sync handlers' on the same jobs and layout."""
    sync, async_ = summary["jobs_per_s_memory"], summary["jobs_per_s_async"]
    return f"  = {async_ / sync:.0%} of sync handlers'" if sync and async_ else ""


def over_timeout(summary: dict[str, float | None]) -> str:
    """The failover's p50 as a multiple of failover_timeout (the goal is at most 2)."""
    p50, timeout = summary.get("failover_s_p50"), summary.get("failover_timeout_s")
    return f"  (= {p50 / timeout:.1f}x failover_timeout)" if p50 and timeout else ""


def versus_zmq(summary: dict[str, float | None], http_key: str, zmq_key: str) -> str:
    """An HTTP gateway rate as a share of the same operation's rate over ZeroMQ; a latency
    as a multiple of ZeroMQ's."""
    http, zmq = summary.get(http_key), summary.get(zmq_key)
    if not http or not zmq:
        return ""
    if http_key.endswith("_ms"):
        return f"  (= {http / zmq:.1f}x ZeroMQ's)"
    return f"  (= {http / zmq:.0%} of ZeroMQ)"


# bench/http_gateway.py's rows: (label, summary key without its http_/zmq_ prefix, unit, label
# of the ZeroMQ row beside it or None); a key with "/" is a gateway CPU cell of that phase.
HTTP_ROWS = (
    ("HTTP gateway: enqueue one job, sequential ({requests:,})", "enqueue_per_s", "jobs/s",
     "the same over ZeroMQ (Client.enqueue)"),
    ("  gateway CPU per HTTP enqueue", "http_enqueue/", "us", None),
    ("HTTP gateway: enqueue one job, 16 in flight ({requests:,})", "enqueue_per_s_16", "jobs/s",
     None),
    ("HTTP gateway: batch enqueue, batches of 100 ({batch_jobs:,} jobs)",
     "batch_enqueue_per_s_100", "jobs/s", "ZeroMQ enqueue_many, batches of 100"),
    ("HTTP gateway: batch enqueue, batches of 1,000 ({batch_jobs:,} jobs)",
     "batch_enqueue_per_s_1000", "jobs/s", "ZeroMQ enqueue_many, batches of 1,000"),
    ("  gateway CPU per job, batches of 1,000", "http_batch_1000/", "us", None),
    ("HTTP gateway: fetch 1 -> ack, sequential ({rounds:,})", "fetch_ack_per_s",
     "round trips/s", "raw ZeroMQ worker session"),
    ("  p50", "fetch_ack_p50_ms", "ms", "ZeroMQ p50"),
    ("  p99", "fetch_ack_p99_ms", "ms", "ZeroMQ p99"),
    ("  gateway CPU per fetch -> ack", "http_fetch1_ack/", "us", None),
    ("HTTP gateway: fetch 10 -> 10 acks, sequential ({rounds:,} jobs)", "fetch10_ack_per_s",
     "jobs/s", "raw ZeroMQ worker session"),
)  # fmt: skip


def http_rows(
    http: Results, summary: dict[str, float | None], size: dict[str, int]
) -> list[tuple[str, str]]:
    """bench/http_gateway.py's rows: each HTTP figure, the ZeroMQ one under it."""
    rows: list[tuple[str, str]] = []
    for label, key, unit, zmq_label in HTTP_ROWS:
        if key.endswith("/"):
            path: tuple[str, ...] = ("phases", key[:-1], "cpu_us_per_job", "gateway")
            rows.append((label, cell(http, path, unit)))
            continue
        text = cell(http, (f"http_{key}",), unit)
        if zmq_label is not None:
            text += versus_zmq(summary, f"http_{key}", f"zmq_{key}")
        rows.append((label.format(**size), text))
        if zmq_label is not None:
            rows.append((f"  {zmq_label}", cell(http, (f"zmq_{key}",), unit)))
    return rows
