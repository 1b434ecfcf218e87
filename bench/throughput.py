"""End-to-end no-op throughput, and batch-enqueue-only rate.

    .venv/bin/python bench/throughput.py [--jobs 20000] [--workers 2] [--concurrency 50]
    .venv/bin/python bench/throughput.py --store sqlite   # the same over a fresh SQLite file
    .venv/bin/python bench/throughput.py --store postgresql  # a fresh database, private cluster

End to end: a coordinator process, `--workers` worker processes (concurrency 50 each: 100 jobs
in flight, as the raw ZeroMQ ceiling keeps 100 requests in flight) and this process as the
client. The clock starts at the first `enqueue_many` (batches of 1,000 `noop`
jobs) and stops when `stats()` (polled every 50 ms, never `get` per job) counts every job
completed (over PostgreSQL, the last `stats` also says the coordinator took the lease and
serves: `cluster_role` leading). Enqueue only: a fresh coordinator with no workers; the clock
runs from the first batch sent to the last batch acknowledged.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from typing import Any

import common

DEFAULT_JOBS = 20_000
DEFAULT_WORKERS = 2
# 2 x 50 = 100 jobs in flight: the same depth as zmq_ceiling's window of 100 outstanding
# requests, so the end-to-end rate and that ceiling are compared like with like.
DEFAULT_CONCURRENCY = 50
BATCH_JOBS = 1_000
DEFAULT_TIMEOUT_S = 120.0


def _batches(n: int, batch: int, job_type: str = "noop") -> list[list[dict[str, Any]]]:
    """Built before the clock starts: spec building is the caller's cost, not corral's."""
    return [
        [{"type": job_type, "args": []} for _ in range(min(batch, n - start))]
        for start in range(0, n, batch)
    ]


def end_to_end(
    jobs: int = DEFAULT_JOBS,
    workers: int = DEFAULT_WORKERS,
    concurrency: int = DEFAULT_CONCURRENCY,
    *,
    batch: int = BATCH_JOBS,
    store: str = "memory",
    timeout: float = DEFAULT_TIMEOUT_S,
    profile: str | None = None,
    worker_profile: str | None = None,
    in_process: bool = False,
    job_type: str = "noop",
) -> dict[str, Any]:
    """Run `jobs` no-op jobs through `workers` processes; jobs/s from first enqueue to done.
    `job_type` "anoop" runs them on an `async def` handler instead."""
    batches = _batches(jobs, batch, job_type)
    with (
        common.cluster(
            workers,
            concurrency,
            store=store,
            profile=profile,
            worker_profile=worker_profile,
            in_process=in_process,
        ) as nodes,
        contextlib.closing(common.client(nodes.address)) as client,
    ):
        cpu_before = nodes.cpu_seconds()
        started = time.perf_counter()
        for specs in batches:
            client.enqueue_many(specs)
        enqueued = time.perf_counter()
        deadline = started + timeout
        totals: dict[str, int] = {}
        while True:
            stats = client.stats()
            totals = common.state_totals(stats)
            finished = totals.get("completed", 0) + totals.get("discarded", 0)
            if finished >= jobs:
                break
            if time.perf_counter() >= deadline:
                break
            time.sleep(common.POLL_INTERVAL_S)
        elapsed = time.perf_counter() - started
        cpu_after = nodes.cpu_seconds()
    completed = totals.get("completed", 0)
    cpu_us = {
        f"{who}_cpu_us_per_job": (cpu_after[who] - before) / max(completed, 1) * 1e6
        for who, before in cpu_before.items()
        if before is not None and cpu_after[who] is not None
    }
    return {
        "jobs": jobs,
        "workers": workers,
        "concurrency": concurrency,
        "store": store,
        "job_type": job_type,
        "completed": completed,
        "discarded": totals.get("discarded", 0),
        "timed_out": completed + totals.get("discarded", 0) < jobs,
        "enqueue_s": enqueued - started,
        "elapsed_s": elapsed,
        "jobs_per_s": completed / elapsed if elapsed > 0 else float("nan"),
        # over PostgreSQL the coordinator took the lease and serves: `leading` (else None)
        "cluster_role": stats.get("cluster", {}).get("role"),
        **cpu_us,
    }


def enqueue_only(
    jobs: int = DEFAULT_JOBS,
    *,
    batch: int = BATCH_JOBS,
    store: str = "memory",
    timeout: float = DEFAULT_TIMEOUT_S,
    in_process: bool = False,
) -> dict[str, Any]:
    """Batch-enqueue `jobs` into a coordinator with no workers; jobs/s acknowledged."""
    batches = _batches(jobs, batch)
    with (
        common.cluster(0, 1, store=store, in_process=in_process) as nodes,
        contextlib.closing(common.client(nodes.address)) as client,
    ):
        client.timeout = timeout  # each batch is one request with the client's own deadline
        started = time.perf_counter()
        for specs in batches:
            client.enqueue_many(specs)
        elapsed = time.perf_counter() - started
        available = common.state_totals(client.stats()).get("available", 0)
    if available != jobs:
        raise common.BenchError(f"enqueued {jobs} jobs but {available} are available")
    return {
        "jobs": jobs,
        "batch": batch,
        "store": store,
        "elapsed_s": elapsed,
        "jobs_per_s": jobs / elapsed if elapsed > 0 else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS)
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--batch", type=int, default=BATCH_JOBS)
    parser.add_argument(
        "--store",
        default="memory",
        help="memory, sqlite (a fresh temporary file), postgresql (a fresh database on a "
        "private cluster) or a store URL",
    )
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S)
    parser.add_argument("--profile", metavar="FILE", help="cProfile the coordinator into FILE")
    parser.add_argument(
        "--profile-worker", metavar="FILE", help="cProfile the first worker into FILE"
    )
    parser.add_argument(
        "--in-process", action="store_true", help="run the coordinator inside this process"
    )
    args = parser.parse_args()
    batch = enqueue_only(
        args.jobs,
        batch=args.batch,
        store=args.store,
        timeout=args.timeout,
        in_process=args.in_process,
    )
    print(f"batch enqueue only: {batch['jobs_per_s']:,.0f} jobs/s ({batch['elapsed_s']:.2f} s)")
    e2e = end_to_end(
        args.jobs,
        args.workers,
        args.concurrency,
        batch=args.batch,
        store=args.store,
        timeout=args.timeout,
        profile=args.profile,
        worker_profile=args.profile_worker,
        in_process=args.in_process,
    )
    note = " (TIMED OUT)" if e2e["timed_out"] else ""
    print(
        f"end to end: {e2e['jobs_per_s']:,.0f} jobs/s, {e2e['completed']}/{e2e['jobs']} completed"
        f" in {e2e['elapsed_s']:.2f} s (enqueue took {e2e['enqueue_s']:.2f} s){note}"
    )
    if "coordinator_cpu_us_per_job" in e2e:
        print(
            f"CPU per job: coordinator {e2e['coordinator_cpu_us_per_job']:.0f} us,"
            f" workers {e2e['workers_cpu_us_per_job']:.0f} us"
        )
    print(json.dumps({"enqueue_only": batch, "end_to_end": e2e}))


if __name__ == "__main__":
    main()
