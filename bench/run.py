"""Run every corral benchmark, print a table, then one JSON object as the last line.

    .venv/bin/python bench/run.py            # full sizes (about seven minutes on 2 cores)
    .venv/bin/python bench/run.py --quick    # smaller sizes, under a minute

The last line is machine-readable (keys: jobs_per_s_memory, jobs_per_s_memory_2x16,
jobs_per_s_sqlite, jobs_per_s_postgresql, enqueue_batch_per_s, latency_p50_ms,
latency_p99_ms, latency_floor_p50_ms, latency_floor_p99_ms, zmq_reqrep_window1_per_s,
zmq_reqrep_window100_per_s; the full run adds coordinator_cpu_pct_1k_workers,
workers_connected, rss_mib_1m_queued, enqueue_jobs_per_s_1m, fetch_head_ms_1m,
recovery_s_after_sigkill, failover_s_p50, failover_s_max, failover_timeout_s,
takeover_s_1m_queued, schedules_firing_cpu_pct, schedule_lateness_ms_p50 and
schedule_jobs_missing, each from one run); a scenario that fails reports null and the exit
status is 1. The PostgreSQL runs use a private cluster (tests/pg.py: PostgreSQL's binaries
must be installed) on the same cores as the nodes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import common
import failover
import latency
import latency_floor
import many_workers
import million
import recovery
import schedules
import takeover
import throughput
import zmq_ceiling

FULL = {"jobs": 20_000, "rounds": 500, "warmup": 50, "requests": 20_000, "repeat": 3}
QUICK = {"jobs": 10_000, "rounds": 300, "warmup": 30, "requests": 10_000, "repeat": 1}


def _attempt(
    name: str, fn: Callable[[], dict[str, Any]], repeat: int, failures: list[str]
) -> list[dict[str, Any]]:
    """Run `fn` `repeat` times; a run that raises is reported and left out."""
    results: list[dict[str, Any]] = []
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


def _median(results: list[dict[str, Any]], *path: str) -> float | None:
    """The median over runs of the value at `path` (None when no run produced one)."""
    values: list[float] = []
    for result in results:
        value: Any = result
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None:
            values.append(float(value))
    return round(statistics.median(values), 3) if values else None


def _cell(results: list[dict[str, Any]], path: tuple[str, ...], unit: str) -> str:
    """The median, and every run's value when there was more than one."""
    median = _median(results, *path)
    if median is None:
        return "FAILED"
    cell = _fmt(median, unit)
    values = [v for v in (_median([r], *path) for r in results) if v is not None]
    if len(values) > 1:
        digits = 2 if unit == "ms" else 0
        cell += f"  (runs: {', '.join(f'{v:,.{digits}f}' for v in values)})"
    return cell


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "FAILED"
    if unit in ("ms", "s", "%"):
        return f"{value:,.2f} {unit}"
    return f"{value:,.0f} {unit}".strip()


def _ceiling_share(summary: dict[str, float | None]) -> str:
    """The end-to-end memory rate as a share of the raw window-100 rate (goal: at least 25%)."""
    memory, ceiling = summary["jobs_per_s_memory"], summary["zmq_reqrep_window100_per_s"]
    return f"  (end to end = {memory / ceiling:.0%} of it)" if memory and ceiling else ""


def _floor_share(summary: dict[str, float | None]) -> str:
    """corral's idle p50 against the floor's, measured in the same run."""
    corral, floor = summary["latency_p50_ms"], summary["latency_floor_p50_ms"]
    return f"  (corral = {corral / floor:.1f}x the floor)" if corral and floor else ""


def _ratio(summary: dict[str, float | None], store: str) -> str:
    """A durable store's rate as a share of the memory store's (the goals: at least 50% for
    SQLite, 40% for PostgreSQL)."""
    memory, durable = summary["jobs_per_s_memory"], summary[f"jobs_per_s_{store}"]
    return f"  = {durable / memory:.0%} of memory" if memory and durable else ""


def _over_timeout(summary: dict[str, float | None]) -> str:
    """The failover's p50 as a multiple of failover_timeout (the goal is at most 2)."""
    p50, timeout = summary.get("failover_s_p50"), summary.get("failover_timeout_s")
    return f"  (= {p50 / timeout:.1f}x failover_timeout)" if p50 and timeout else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, under a minute")
    parser.add_argument("--workers", type=int, default=throughput.DEFAULT_WORKERS)
    parser.add_argument("--concurrency", type=int, default=throughput.DEFAULT_CONCURRENCY)
    parser.add_argument(
        "--profile", metavar="FILE", help="cProfile the end-to-end coordinator into FILE"
    )
    parser.add_argument(
        "--repeat", type=int, default=0, help="runs per scenario (default 1 quick, 3 full)"
    )
    args = parser.parse_args()
    size = QUICK if args.quick else FULL
    failures: list[str] = []

    repeat = args.repeat or size["repeat"]
    zmq = _attempt("zmq ceiling", lambda: zmq_ceiling.run(size["requests"]), repeat, failures)
    enqueue = _attempt(
        "batch enqueue", lambda: throughput.enqueue_only(size["jobs"]), repeat, failures
    )
    # Memory, SQLite and PostgreSQL runs alternate, so a change in machine load hits them
    # alike and the ratios between them stay meaningful.
    e2e: list[dict[str, Any]] = []
    e2e_sqlite: list[dict[str, Any]] = []
    e2e_pg: list[dict[str, Any]] = []
    e2e_2x16: list[dict[str, Any]] = []  # the peers' layout (peers.py), for reference
    for _ in range(repeat):
        e2e += _attempt(
            "end-to-end throughput",
            lambda: throughput.end_to_end(
                size["jobs"], args.workers, args.concurrency, profile=args.profile
            ),
            1,
            failures,
        )
        e2e_sqlite += _attempt(
            "end-to-end throughput, sqlite store",
            lambda: throughput.end_to_end(
                size["jobs"], args.workers, args.concurrency, store="sqlite"
            ),
            1,
            failures,
        )
        e2e_pg += _attempt(
            "end-to-end throughput, postgresql store",
            lambda: throughput.end_to_end(
                size["jobs"], args.workers, args.concurrency, store="postgresql"
            ),
            1,
            failures,
        )
        e2e_2x16 += _attempt(
            "end-to-end throughput, 2 x 16",
            lambda: throughput.end_to_end(size["jobs"], 2, 16),
            1,
            failures,
        )
    if any(r.get("timed_out") for r in e2e + e2e_2x16):
        failures.append("end-to-end throughput (timed out)")
    if any(r.get("timed_out") for r in e2e_sqlite):
        failures.append("end-to-end throughput, sqlite store (timed out)")
    if any(r.get("timed_out") for r in e2e_pg):
        failures.append("end-to-end throughput, postgresql store (timed out)")
    if any(r.get("cluster_role") != "leading" for r in e2e_pg):
        failures.append("end-to-end throughput, postgresql store (not served as leader)")
    # Each latency run is followed by the floor's (the same trips in bare pyzmq), so a change
    # in machine load hits both alike.
    lat: list[dict[str, Any]] = []
    floor: list[dict[str, Any]] = []
    for _ in range(repeat):
        lat += _attempt("latency", lambda: latency.run(size["rounds"], size["warmup"]), 1, failures)
        floor += _attempt(
            "latency floor",
            lambda: latency_floor.run(size["rounds"], size["warmup"]),
            1,
            failures,
        )

    # The scale scenarios run once, and only in the full run: they take ~40 s each and measure
    # sizes and times, not rates that need a median.
    scale = not args.quick
    crowd = _attempt("1,000 idle workers", many_workers.run, 1, failures) if scale else []
    queued = _attempt("1,000,000 queued jobs", million.run, 1, failures) if scale else []
    recovered = _attempt("recovery after SIGKILL", recovery.run, 1, failures) if scale else []
    failovers = _attempt("failover after SIGKILL", failover.run, 1, failures) if scale else []
    takeovers = (
        _attempt("takeover, 1,000,000 queued", takeover.run, 1, failures) if scale else []
    )
    scheduled = _attempt("1,000 schedules", schedules.run, 1, failures) if scale else []

    summary = {
        "jobs_per_s_memory": _median(e2e, "jobs_per_s"),
        "jobs_per_s_memory_2x16": _median(e2e_2x16, "jobs_per_s"),
        "jobs_per_s_sqlite": _median(e2e_sqlite, "jobs_per_s"),
        "jobs_per_s_postgresql": _median(e2e_pg, "jobs_per_s"),
        "enqueue_batch_per_s": _median(enqueue, "jobs_per_s"),
        "latency_p50_ms": _median(lat, "p50_ms"),
        "latency_p99_ms": _median(lat, "p99_ms"),
        "latency_floor_p50_ms": _median(floor, "p50_ms"),
        "latency_floor_p99_ms": _median(floor, "p99_ms"),
        "zmq_reqrep_window1_per_s": _median(zmq, "window1", "per_s"),
        "zmq_reqrep_window100_per_s": _median(zmq, "window100", "per_s"),
    }
    if scale:
        summary |= {
            "coordinator_cpu_pct_1k_workers": _median(crowd, "coordinator_cpu_pct_1k_workers"),
            "workers_connected": _median(crowd, "workers_connected"),
            "rss_mib_1m_queued": _median(queued, "rss_mib_1m_queued"),
            "enqueue_jobs_per_s_1m": _median(queued, "enqueue_jobs_per_s_1m"),
            "fetch_head_ms_1m": _median(queued, "fetch_head_ms_1m"),
            "recovery_s_after_sigkill": _median(recovered, "recovery_s_after_sigkill"),
            "failover_s_p50": _median(failovers, "failover_s_p50"),
            "failover_s_max": _median(failovers, "failover_s_max"),
            "failover_timeout_s": _median(failovers, "failover_timeout_s"),
            "takeover_s_1m_queued": _median(takeovers, "takeover_s_1m_queued"),
            "schedules_firing_cpu_pct": _median(scheduled, "schedules_firing_cpu_pct"),
            "schedule_lateness_ms_p50": _median(scheduled, "schedule_lateness_ms_p50"),
            "schedule_jobs_missing": _median(scheduled, "schedule_jobs_missing"),
        }
    jobs = f"{size['jobs']:,} jobs"
    rows = [
        (
            f"end-to-end no-op, memory ({jobs}, {args.workers}x{args.concurrency})",
            _cell(e2e, ("jobs_per_s",), "jobs/s"),
        ),
        (
            "  coordinator CPU per job (end to end)",
            _cell(e2e, ("coordinator_cpu_us_per_job",), "us"),
        ),
        ("  worker CPU per job, all workers", _cell(e2e, ("workers_cpu_us_per_job",), "us")),
        (f"end-to-end no-op, memory ({jobs}, 2x16)", _cell(e2e_2x16, ("jobs_per_s",), "jobs/s")),
        (
            f"end-to-end no-op, sqlite ({jobs}, {args.workers}x{args.concurrency})",
            _cell(e2e_sqlite, ("jobs_per_s",), "jobs/s") + _ratio(summary, "sqlite"),
        ),
        (
            "  coordinator CPU per job (sqlite)",
            _cell(e2e_sqlite, ("coordinator_cpu_us_per_job",), "us"),
        ),
        (
            f"end-to-end no-op, postgresql ({jobs}, {args.workers}x{args.concurrency})",
            _cell(e2e_pg, ("jobs_per_s",), "jobs/s") + _ratio(summary, "postgresql"),
        ),
        (
            "  coordinator CPU per job (postgresql)",
            _cell(e2e_pg, ("coordinator_cpu_us_per_job",), "us"),
        ),
        (
            f"batch enqueue only ({jobs}, batches of 1,000)",
            _cell(enqueue, ("jobs_per_s",), "jobs/s"),
        ),
        (f"enqueue->result latency p50 ({size['rounds']} rounds)", _cell(lat, ("p50_ms",), "ms")),
        ("enqueue->result latency p99", _cell(lat, ("p99_ms",), "ms")),
        ("enqueue->result latency max", _cell(lat, ("max_ms",), "ms")),
        (
            "  the same trips in bare pyzmq (the floor), p50",
            _cell(floor, ("p50_ms",), "ms") + _floor_share(summary),
        ),
        ("  the floor, p99", _cell(floor, ("p99_ms",), "ms")),
        ("raw zmq req/rep, window 1", _cell(zmq, ("window1", "per_s"), "req/s")),
        ("raw zmq req/rep, window 1, p50", _cell(zmq, ("window1", "p50_ms"), "ms")),
        (
            "raw zmq req/rep, window 100",
            _cell(zmq, ("window100", "per_s"), "req/s") + _ceiling_share(summary),
        ),
    ]
    if scale:
        rows += [
            (
                "coordinator CPU, 1,000 idle workers beating (% of a core)",
                _cell(crowd, ("coordinator_cpu_pct_1k_workers",), "%"),
            ),
            ("  workers connected", _cell(crowd, ("workers_connected",), "")),
            (
                "coordinator RSS, 1,000,000 jobs queued",
                _cell(queued, ("rss_mib_1m_queued",), "MiB"),
            ),
            (
                "  enqueue rate (batches of 10,000)",
                _cell(queued, ("enqueue_jobs_per_s_1m",), "jobs/s"),
            ),
            ("  fetch of the head job", _cell(queued, ("fetch_head_ms_1m",), "ms")),
            (
                "job active again after SIGKILL (timeout 2 s, tick 0.1 s)",
                _cell(recovered, ("recovery_s_after_sigkill",), "s"),
            ),
            (
                "failover after SIGKILL of the leader, p50 (5 kills, timeout 3 s)",
                _cell(failovers, ("failover_s_p50",), "s") + _over_timeout(summary),
            ),
            ("  failover, max", _cell(failovers, ("failover_s_max",), "s")),
            (
                "takeover after SIGKILL, 1,000,000 queued: standby serving",
                _cell(takeovers, ("takeover_s_1m_queued",), "s"),
            ),
            ("  first job completed", _cell(takeovers, ("first_job_s_1m_queued",), "s")),
            (
                "1,000 schedules idle (% of a core)",
                _cell(scheduled, ("schedules_idle_cpu_pct",), "%"),
            ),
            (
                "  each firing every second (% of a core)",
                _cell(scheduled, ("schedules_firing_cpu_pct",), "%"),
            ),
            (
                "  a job made after its slot, p50",
                _cell(scheduled, ("schedule_lateness_ms_p50",), "ms"),
            ),
            ("  slots due but not made", _cell(scheduled, ("schedule_jobs_missing",), "")),
        ]
    print(
        f"corral benchmarks ({'quick' if args.quick else 'full'}, median of {repeat})"
        f" - {common.machine()}"
    )
    width = max(len(name) for name, _ in rows)
    print(f"{'scenario':<{width}}  result")
    print(f"{'-' * width}  {'-' * 16}")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    if failures:
        print(f"failed: {', '.join(failures)}")
    print(json.dumps(summary))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
