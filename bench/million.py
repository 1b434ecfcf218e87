"""A million queued jobs: coordinator memory, enqueue rate, and the cost of fetching the head.

    .venv/bin/python bench/million.py [--jobs 1000000] [--batch 10000]
    .venv/bin/python bench/million.py --per-job [--jobs 100000]   # bytes per job, by holder

A coordinator process (memory store, no workers). The bench enqueues `--jobs` no-op jobs in
batches of `--batch` (10,000, the default `max_batch_jobs`), one batch in flight at a time,
checks that `stats()` counts them all `available`, and reads the coordinator's RSS (VmRSS from
/proc/PID/status; the issue's target is under 1 GiB). Then one raw worker (a DEALER: hello,
register on `default`) sends `fetch` with count 1, and the bench times that round trip: the
latency of taking the head job off a queue of a million.

`--per-job` runs the same enqueue path inside this process instead (frames decoded and
validated, then Job.from_spec, MemoryStore.add and QueueCore.add as the coordinator calls them)
and reports, with tracemalloc, the bytes each holder keeps per queued job: where RSS goes.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import time
import tracemalloc
from typing import Any

import common

DEFAULT_JOBS = 1_000_000
BATCH_JOBS = 10_000  # transport.validation.MAX_BATCH_JOBS, the coordinator's max_batch_jobs
DEFAULT_TIMEOUT_S = 90.0
PER_JOB_JOBS = 100_000


def run(
    jobs: int = DEFAULT_JOBS, batch: int = BATCH_JOBS, timeout: float = DEFAULT_TIMEOUT_S
) -> dict[str, Any]:
    """Enqueue `jobs`, then fetch the head with one raw worker; RSS, jobs/s, fetch ms."""
    import zmq

    specs = [{"type": "noop", "args": []} for _ in range(batch)]  # one batch, sent again
    with (
        common.cluster(0, 1) as nodes,
        contextlib.closing(common.client(nodes.address)) as client,
    ):
        assert nodes.coordinator is not None
        rss_before = nodes.coordinator.rss_kib()
        client.timeout = timeout  # each batch is one request with the client's own deadline
        started = time.perf_counter()
        deadline = started + timeout
        for start in range(0, jobs, batch):
            if time.perf_counter() > deadline:
                raise common.BenchError(f"enqueued only {start} of {jobs} jobs in {timeout} s")
            client.enqueue_many(specs[: min(batch, jobs - start)])
        elapsed = time.perf_counter() - started
        available = common.state_totals(client.stats()).get("available", 0)
        rss_after = nodes.coordinator.rss_kib()
        if available != jobs:
            raise common.BenchError(f"enqueued {jobs} jobs but {available} are available")
        context: zmq.Context[Any] = zmq.Context()
        try:
            sock, worker_id = common.raw_worker(context, nodes.address)
            try:
                fetch = {"type": "fetch", "worker_id": worker_id, "count": 1, "wait": 0}
                fetch_started = time.perf_counter()
                answer = common.raw_call(sock, fetch, 3)
                fetch_s = time.perf_counter() - fetch_started
            finally:
                sock.close(0)
        finally:
            context.term()
    if len(answer.get("jobs", [])) != 1:
        raise common.BenchError(f"fetch of the head returned {answer}")
    return {
        "jobs": jobs,
        "batch": batch,
        "enqueue_s": elapsed,
        "enqueue_jobs_per_s_1m": jobs / elapsed if elapsed > 0 else float("nan"),
        "rss_mib_empty": rss_before / 1024 if rss_before else None,
        "rss_mib_1m_queued": rss_after / 1024 if rss_after else None,
        "fetch_head_ms_1m": fetch_s * 1000,
    }


def per_job_bytes(jobs: int = PER_JOB_JOBS, batch: int = BATCH_JOBS) -> dict[str, float]:
    """Bytes kept per queued no-op job by the Job objects, the store and the queue."""
    from actors.clock import SystemClock
    from actors.ids import IdFactory
    from actors.jobs import Job
    from actors.queue import QueueCore
    from actors.store.memory import MemoryStore
    from transport import codec
    from transport.messages import Enqueue
    from transport.validation import parse_request

    clock = SystemClock()
    ids, seq = IdFactory(clock), itertools.count(1)
    specs = [{"type": "noop", "args": []}] * batch
    frame = codec.encode({"type": "enqueue", "rid": 1, "jobs": specs})
    store, core = MemoryStore(), QueueCore("default")
    held: dict[str, int] = {}
    queued: list[Job] = []
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]

        def mark(holder: str) -> None:
            gc.collect()
            held[holder] = tracemalloc.get_traced_memory()[0] - start - sum(held.values())

        for _ in range(0, jobs, batch):
            request = parse_request("enqueue", 1, codec.decode(frame), len(frame))
            assert isinstance(request, Enqueue)
            now = clock.now()
            queued += [Job.from_spec(s, ids.new(), now, next(seq)) for s in request.specs]
        mark("jobs")
        for first in range(0, jobs, batch):
            store.add(queued[first : first + batch])
        mark("store")
        for job in queued:
            core.add(job)
        queued.clear()  # the queue holds them now, as in the coordinator
        mark("queue")
    finally:
        tracemalloc.stop()
    sizes = {f"{holder}_bytes_per_job": size / jobs for holder, size in held.items()}
    return {**sizes, "total_bytes_per_job": sum(held.values()) / jobs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--jobs", type=int, help=f"{DEFAULT_JOBS:,}; {PER_JOB_JOBS:,} with --per-job"
    )
    parser.add_argument("--batch", type=int, default=BATCH_JOBS)
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S)
    parser.add_argument("--per-job", action="store_true", help="bytes per job, in this process")
    args = parser.parse_args()
    if args.per_job:
        jobs = args.jobs or PER_JOB_JOBS
        sizes = per_job_bytes(jobs, args.batch)
        print(
            f"{jobs:,} jobs queued in process: "
            + ", ".join(f"{k.removesuffix('_bytes_per_job')} {v:,.0f} B" for k, v in sizes.items())
            + " per job"
        )
        print(json.dumps(sizes))
        return
    jobs = args.jobs or DEFAULT_JOBS
    result = run(jobs, args.batch, args.timeout)
    print(
        f"{jobs:,} jobs queued: coordinator RSS {result['rss_mib_1m_queued']:,.0f} MiB"
        f" (empty {result['rss_mib_empty']:,.0f} MiB), enqueue"
        f" {result['enqueue_jobs_per_s_1m']:,.0f} jobs/s ({result['enqueue_s']:.1f} s),"
        f" fetch of the head {result['fetch_head_ms_1m']:.2f} ms"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
