"""Limits per key at scale: a fetch over a million queued jobs and 10,000 full keys.

    .venv/bin/python bench/limits.py [--jobs 1000000] [--keys 10000] [--cycles 2000]

A coordinator process (memory store). The bench enqueues `--jobs` no-op jobs, each under its
own limit of two active jobs per `concurrency_key`, the keys taken in turn (`--keys` of them),
in batches of 10,000. One raw worker (a DEALER, concurrency above every slot) then takes every
job the limits let out (two per key) with fetches of 1,000, so that every key is full and the
rest (`limited`) wait. Then, `--cycles` times, it acks one of its jobs (its key frees a slot,
the queue lines up that key's next job) and times a `fetch` of one: the round trip of taking a
job from a million with every key full (`fetch_limited_ms_p50` / `_p99`; the issue's target is
under 1 ms). `fetch_unlimited_ms_p50` times the same fetch after the same ack from a queue of as
many jobs under no limit, in the same run, so the two compare on one machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from typing import Any

import common

DEFAULT_JOBS = 1_000_000
DEFAULT_KEYS = 10_000
DEFAULT_CYCLES = 2_000
BATCH_JOBS = 10_000
TAKE_PER_FETCH = 1_000
SLOTS_PER_KEY = 2
TIMEOUT_S = 120.0


def _fill(client: Any, jobs: int, keys: int | None) -> float:
    """Enqueue `jobs` no-ops (under a limit per key when `keys`); returns the seconds taken."""
    started = time.perf_counter()
    for first in range(0, jobs, BATCH_JOBS):
        batch = []
        for n in range(first, min(first + BATCH_JOBS, jobs)):
            spec: dict[str, Any] = {"type": "noop"}
            if keys:
                spec |= {"concurrency_key": f"k{n % keys}", "concurrency_limit": SLOTS_PER_KEY}
            batch.append(spec)
        client.enqueue_many(batch)
    return time.perf_counter() - started


def _cycles(address: str, cycles: int, take_first: int) -> tuple[list[float], int]:
    """A raw worker takes `take_first` jobs, then acks one and times a fetch of one, `cycles`
    times. Returns the fetch times and how many jobs the first takes got."""
    import zmq

    context: zmq.Context[Any] = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(address)
    rid = iter(range(1, 10**9))
    try:
        worker_id = common.raw_call(sock, common.hello_body(), next(rid))["worker_id"]
        register = common.register_body(worker_id) | {"concurrency": take_first + cycles + 1}
        common.raw_call(sock, register, next(rid))
        fetch = {"type": "fetch", "worker_id": worker_id, "count": TAKE_PER_FETCH, "wait": 0}
        held: list[dict[str, Any]] = []
        while len(held) < take_first:
            got = common.raw_call(sock, fetch, next(rid), TIMEOUT_S)["jobs"]
            if not got:
                break
            held += got
        taken = len(held)
        one = fetch | {"count": 1}
        times = []
        for _ in range(cycles):
            job = held.pop(0)
            ack = {"type": "ack", "worker_id": worker_id, "job_id": job["id"], "attempt": 1}
            common.raw_call(sock, ack, next(rid))
            started = time.perf_counter()
            got = common.raw_call(sock, one, next(rid))["jobs"]
            times.append(time.perf_counter() - started)
            if len(got) != 1:
                raise common.BenchError(f"a fetch after an ack got {len(got)} jobs")
            held += got
        return times, taken
    finally:
        sock.close(0)
        context.term()


def run(
    jobs: int = DEFAULT_JOBS, keys: int = DEFAULT_KEYS, cycles: int = DEFAULT_CYCLES
) -> dict[str, Any]:
    """Fill, saturate every key, then time fetches; the same without limits."""
    result: dict[str, Any] = {"jobs": jobs, "keys": keys, "cycles": cycles}
    for label, limited_keys in (("limited", keys), ("unlimited", None)):
        with (
            common.cluster(0, 1) as nodes,
            contextlib.closing(common.client(nodes.address)) as client,
        ):
            client.timeout = TIMEOUT_S
            fill_s = _fill(client, jobs, limited_keys)
            take_first = SLOTS_PER_KEY * keys  # every key full, when limited
            times, taken = _cycles(nodes.address, cycles, take_first)
            held_back = sum(client.stats().get("limited", {}).values())
        if limited_keys and taken != take_first:
            raise common.BenchError(f"the limits let out {taken} jobs, not {take_first}")
        summary = common.summary_ms(times)
        result |= {
            f"enqueue_jobs_per_s_{label}": jobs / fill_s,
            f"fetch_{label}_ms_p50": summary["p50_ms"],
            f"fetch_{label}_ms_p99": summary["p99_ms"],
            f"jobs_held_back_{label}": held_back,
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS)
    parser.add_argument("--keys", type=int, default=DEFAULT_KEYS)
    parser.add_argument("--cycles", type=int, default=DEFAULT_CYCLES)
    args = parser.parse_args()
    result = run(args.jobs, args.keys, args.cycles)
    print(
        f"{args.jobs:,} jobs over {args.keys:,} full keys ({result['jobs_held_back_limited']:,}"
        f" held back): fetch after an ack p50 {result['fetch_limited_ms_p50']:.3f} ms,"
        f" p99 {result['fetch_limited_ms_p99']:.3f} ms (no limits:"
        f" {result['fetch_unlimited_ms_p50']:.3f} ms); enqueue"
        f" {result['enqueue_jobs_per_s_limited']:,.0f} jobs/s"
        f" (no limits: {result['enqueue_jobs_per_s_unlimited']:,.0f})"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
