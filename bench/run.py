"""Run every corral benchmark, print a table, then one JSON object as the last line.

    .venv/bin/python bench/run.py            # full sizes (about seven minutes on 2 cores)
    .venv/bin/python bench/run.py --quick    # smaller sizes, under a minute

The last line is machine-readable (keys: jobs_per_s_memory, jobs_per_s_memory_2x16,
jobs_per_s_async (the memory run's no-op jobs on an `async def` handler),
jobs_per_s_sqlite, jobs_per_s_postgresql, enqueue_batch_per_s, latency_p50_ms,
latency_p99_ms, latency_floor_p50_ms, latency_floor_p99_ms, zmq_reqrep_window1_per_s,
zmq_reqrep_window100_per_s, and the OJS HTTP gateway's figures beside ZeroMQ's from
bench/http_gateway.py: http_enqueue_per_s, http_enqueue_p50_ms, http_enqueue_per_s_16,
http_batch_enqueue_per_s_100, http_batch_enqueue_per_s_1000, http_fetch_ack_per_s,
http_fetch_ack_p50_ms, http_fetch_ack_p99_ms, http_fetch10_ack_per_s and the same zmq_*
keys but the one with 16 in flight; the full run adds coordinator_cpu_pct_1k_workers,
workers_connected, rss_mib_1m_queued, enqueue_jobs_per_s_1m, fetch_head_ms_1m,
recovery_s_after_sigkill, failover_s_p50, failover_s_max, failover_timeout_s,
takeover_s_1m_queued, fetch_limited_ms_p50, fetch_limited_ms_p99, fetch_unlimited_ms_p50,
schedules_firing_cpu_pct, schedule_lateness_ms_p50, schedule_jobs_missing, chain_ms_per_step,
plain_chain_ms_per_job, workflow_request_ms_10k, group_s_10k, plain_group_s_10k, fanin_ms_10k,
group_us_per_member_1k and group_us_per_member_10k, each from one run: bench/scale.py); a
scenario that fails reports null and the exit status is 1. The PostgreSQL runs use a private
cluster (tests/pg.py: PostgreSQL's binaries must be installed) on the same cores as the nodes.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import common
import http_gateway
import latency
import latency_floor
import report
import scale
import throughput
import zmq_ceiling

FULL = {"jobs": 20_000, "rounds": 500, "warmup": 50, "requests": 20_000, "repeat": 3}
QUICK = {"jobs": 10_000, "rounds": 300, "warmup": 30, "requests": 10_000, "repeat": 1}
# bench/http_gateway.py: single requests, jobs per batch size, fetch -> ack round trips
HTTP_FULL = {"requests": 2_000, "batch_jobs": 20_000, "rounds": 1_000, "warmup": 100}
HTTP_QUICK = {"requests": 500, "batch_jobs": 5_000, "rounds": 300, "warmup": 30}


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
    zmq = report.attempt("zmq ceiling", lambda: zmq_ceiling.run(size["requests"]), repeat, failures)
    enqueue = report.attempt(
        "batch enqueue", lambda: throughput.enqueue_only(size["jobs"]), repeat, failures
    )
    # Memory, SQLite and PostgreSQL runs alternate, so a change in machine load hits them
    # alike and the ratios between them stay meaningful.
    e2e: list[dict[str, Any]] = []
    e2e_sqlite: list[dict[str, Any]] = []
    e2e_pg: list[dict[str, Any]] = []
    e2e_2x16: list[dict[str, Any]] = []  # the peers' layout (peers.py), for reference
    e2e_async: list[dict[str, Any]] = []  # the same no-op jobs on an `async def` handler
    for _ in range(repeat):
        e2e += report.attempt(
            "end-to-end throughput",
            lambda: throughput.end_to_end(
                size["jobs"], args.workers, args.concurrency, profile=args.profile
            ),
            1,
            failures,
        )
        e2e_async += report.attempt(
            "end-to-end throughput, async handlers",
            lambda: throughput.end_to_end(
                size["jobs"], args.workers, args.concurrency, job_type="anoop"
            ),
            1,
            failures,
        )
        e2e_sqlite += report.attempt(
            "end-to-end throughput, sqlite store",
            lambda: throughput.end_to_end(
                size["jobs"], args.workers, args.concurrency, store="sqlite"
            ),
            1,
            failures,
        )
        e2e_pg += report.attempt(
            "end-to-end throughput, postgresql store",
            lambda: throughput.end_to_end(
                size["jobs"], args.workers, args.concurrency, store="postgresql"
            ),
            1,
            failures,
        )
        e2e_2x16 += report.attempt(
            "end-to-end throughput, 2 x 16",
            lambda: throughput.end_to_end(size["jobs"], 2, 16),
            1,
            failures,
        )
    if any(r.get("timed_out") for r in e2e + e2e_2x16 + e2e_async):
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
        lat += report.attempt(
            "latency", lambda: latency.run(size["rounds"], size["warmup"]), 1, failures
        )
        floor += report.attempt(
            "latency floor",
            lambda: latency_floor.run(size["rounds"], size["warmup"]),
            1,
            failures,
        )
    http_size = HTTP_QUICK if args.quick else HTTP_FULL
    http = report.attempt(
        "http gateway against zeromq", lambda: http_gateway.run(**http_size), repeat, failures
    )

    summary = {
        "jobs_per_s_memory": report.median(e2e, "jobs_per_s"),
        "jobs_per_s_memory_2x16": report.median(e2e_2x16, "jobs_per_s"),
        "jobs_per_s_async": report.median(e2e_async, "jobs_per_s"),
        "jobs_per_s_sqlite": report.median(e2e_sqlite, "jobs_per_s"),
        "jobs_per_s_postgresql": report.median(e2e_pg, "jobs_per_s"),
        "enqueue_batch_per_s": report.median(enqueue, "jobs_per_s"),
        "latency_p50_ms": report.median(lat, "p50_ms"),
        "latency_p99_ms": report.median(lat, "p99_ms"),
        "latency_floor_p50_ms": report.median(floor, "p50_ms"),
        "latency_floor_p99_ms": report.median(floor, "p99_ms"),
        "zmq_reqrep_window1_per_s": report.median(zmq, "window1", "per_s"),
        "zmq_reqrep_window100_per_s": report.median(zmq, "window100", "per_s"),
    }
    summary |= {key: report.median(http, key) for key in http_gateway.SUMMARY_KEYS}
    scaled: list[tuple[str, str]] = []
    if not args.quick:
        scale_summary, scaled = scale.run_all(failures)
        summary |= scale_summary
        scale.failover_row(scaled, summary)
    jobs = f"{size['jobs']:,} jobs"
    rows = [
        (
            f"end-to-end no-op, memory ({jobs}, {args.workers}x{args.concurrency})",
            report.cell(e2e, ("jobs_per_s",), "jobs/s"),
        ),
        (
            "  coordinator CPU per job (end to end)",
            report.cell(e2e, ("coordinator_cpu_us_per_job",), "us"),
        ),
        ("  worker CPU per job, all workers", report.cell(e2e, ("workers_cpu_us_per_job",), "us")),
        (
            f"end-to-end no-op, async def handler ({jobs}, {args.workers}x{args.concurrency})",
            report.cell(e2e_async, ("jobs_per_s",), "jobs/s") + report.versus_sync(summary),
        ),
        (
            f"end-to-end no-op, memory ({jobs}, 2x16)",
            report.cell(e2e_2x16, ("jobs_per_s",), "jobs/s"),
        ),
        (
            f"end-to-end no-op, sqlite ({jobs}, {args.workers}x{args.concurrency})",
            report.cell(e2e_sqlite, ("jobs_per_s",), "jobs/s") + report.ratio(summary, "sqlite"),
        ),
        (
            "  coordinator CPU per job (sqlite)",
            report.cell(e2e_sqlite, ("coordinator_cpu_us_per_job",), "us"),
        ),
        (
            f"end-to-end no-op, postgresql ({jobs}, {args.workers}x{args.concurrency})",
            report.cell(e2e_pg, ("jobs_per_s",), "jobs/s") + report.ratio(summary, "postgresql"),
        ),
        (
            "  coordinator CPU per job (postgresql)",
            report.cell(e2e_pg, ("coordinator_cpu_us_per_job",), "us"),
        ),
        (
            f"batch enqueue only ({jobs}, batches of 1,000)",
            report.cell(enqueue, ("jobs_per_s",), "jobs/s"),
        ),
        (
            f"enqueue->result latency p50 ({size['rounds']} rounds)",
            report.cell(lat, ("p50_ms",), "ms"),
        ),
        ("enqueue->result latency p99", report.cell(lat, ("p99_ms",), "ms")),
        ("enqueue->result latency max", report.cell(lat, ("max_ms",), "ms")),
        (
            "  the same trips in bare pyzmq (the floor), p50",
            report.cell(floor, ("p50_ms",), "ms") + report.floor_share(summary),
        ),
        ("  the floor, p99", report.cell(floor, ("p99_ms",), "ms")),
        ("raw zmq req/rep, window 1", report.cell(zmq, ("window1", "per_s"), "req/s")),
        ("raw zmq req/rep, window 1, p50", report.cell(zmq, ("window1", "p50_ms"), "ms")),
        (
            "raw zmq req/rep, window 100",
            report.cell(zmq, ("window100", "per_s"), "req/s") + report.ceiling_share(summary),
        ),
        *report.http_rows(http, summary, http_size),
    ]
    rows += scaled
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
