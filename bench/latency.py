"""Enqueue-to-result latency on an idle cluster.

    .venv/bin/python bench/latency.py [--rounds 500] [--warmup 50]

One coordinator process, one worker process, one client (this process). Each round is a
sequential `enqueue("square", [i])` then `get(job, wait=5)`; the sample is the time from just
before the enqueue to the completed job in hand (two client round trips plus the worker's fetch,
run and report). The first `--warmup` rounds are not counted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from typing import Any

import common

DEFAULT_ROUNDS = 500
DEFAULT_WARMUP = 50
DEFAULT_CONCURRENCY = 4
GET_WAIT_S = 5.0
DEFAULT_TIMEOUT_S = 120.0


def run(
    rounds: int = DEFAULT_ROUNDS,
    warmup: int = DEFAULT_WARMUP,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    store: str = "memory",
    timeout: float = DEFAULT_TIMEOUT_S,
    profile: str | None = None,
) -> dict[str, Any]:
    samples: list[float] = []
    with (
        common.cluster(1, concurrency, store=store, profile=profile) as nodes,
        contextlib.closing(common.client(nodes.address)) as client,
    ):
        deadline = time.perf_counter() + timeout
        for i in range(warmup + rounds):
            if time.perf_counter() >= deadline:
                raise common.BenchError(f"latency run over its {timeout} s deadline at round {i}")
            started = time.perf_counter()
            job_id = client.enqueue("square", [i])
            job = client.get(job_id, wait=GET_WAIT_S)
            took = time.perf_counter() - started
            if job.state != "completed" or job.result != i * i:
                raise common.BenchError(f"round {i}: job {job_id} is {job.state} ({job.result})")
            if i >= warmup:
                samples.append(took)
    return {"rounds": rounds, "warmup": warmup, "store": store, **common.summary_ms(samples)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP)
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--store", default="memory")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S)
    parser.add_argument("--profile", metavar="FILE", help="cProfile the coordinator into FILE")
    args = parser.parse_args()
    result = run(
        args.rounds,
        args.warmup,
        concurrency=args.concurrency,
        store=args.store,
        timeout=args.timeout,
        profile=args.profile,
    )
    print(
        f"enqueue->result latency over {result['rounds']} rounds: p50 {result['p50_ms']:.2f} ms,"
        f" p99 {result['p99_ms']:.2f} ms, max {result['max_ms']:.2f} ms"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
