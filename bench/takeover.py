"""Takeover with a million jobs queued: SIGKILL the leader, time the standby's promotion.

    .venv/bin/python bench/takeover.py [--jobs 1000000] [--failover-timeout 3]

A fresh database of a private PostgreSQL cluster (tests/pg.py) is filled with `--jobs` queued
no-op jobs written directly through the store's fenced batch (bench/pg_store.py), under a
lease the bench takes and then releases. Coordinator `a` starts over it and leads (it loads
every job: `leader_start_s`), `b` stands by and loads its copy of the jobs (`a` lists it as
ready: `standby_ready_s` after it started), one worker process lists both and runs jobs on
`a`. The bench SIGKILLs `a` and measures, from the signal: `takeover_s_1m_queued`, until `b`
answers `stats` as leader (it caught its copy up and handed every waiting job to its queue,
which puts them back a batch at a time while it serves);
`lease_taken_s`, until `b` holds the lease (the lapse and its next poll: the rest is its
promotion); and `first_job_s_1m_queued`, until the first job `b` completes (the lowest
`ended_at` in the table above the kill's wall-clock time, read once `b`'s completed count
passed the count `a` had committed). The issue's target for the takeover is under 10 s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from typing import Any

import common
import pg_store
from ha_pair import Pair

DEFAULT_JOBS = 1_000_000
FAILOVER_TIMEOUT_S = 3.0
FILL_BATCH = 5_000
FIRST_JOB_TIMEOUT_S = 60.0
WORKER_CONCURRENCY = 4


def fill(url: str, jobs: int, batch: int = FILL_BATCH) -> float:
    """`jobs` available no-op jobs written through the fenced batch; seconds it took."""
    from actors.clock import SystemClock
    from actors.ids import IdFactory
    from actors.store.postgres import connect
    from actors.store.postgres_lease import PostgresLease

    began = time.perf_counter()
    lease = PostgresLease(url)
    term = lease.try_acquire("bench-fill", "tcp://bench", 3600.0)
    assert term is not None, "a fresh database has a free lease"
    try:
        with connect(url) as connection:
            factory = IdFactory(SystemClock())
            for first in range(0, jobs, pg_store.SLICE):  # a slice at a time: bounded memory
                ids = [factory.new() for _ in range(min(pg_store.SLICE, jobs - first))]
                pg_store.commit_all(connection, term, pg_store.rows_of(ids, "available"), batch)
            connection.execute("VACUUM ANALYZE jobs")
    finally:
        lease.release("bench-fill", term)  # the coordinator takes it at once, no lapse
        lease.close()
    return time.perf_counter() - began


def _holder(connection: Any) -> str | None:
    [(holder,)] = connection.execute("SELECT holder FROM corral_lease").fetchall()
    return holder


def _completed(stats: dict[str, Any] | None) -> int:
    return common.state_totals(stats).get("completed", 0) if stats else 0


def run(jobs: int = DEFAULT_JOBS, failover_timeout: float = FAILOVER_TIMEOUT_S) -> dict[str, Any]:
    """Fill, lead, stand by, SIGKILL the leader; the takeover's times."""
    from actors.store.postgres import connect

    with contextlib.ExitStack() as stack:
        url = common.store_url("postgresql", stack)
        fill_s = fill(url, jobs)
        pair = Pair(url, failover_timeout)
        stack.callback(pair.stop)
        started = time.perf_counter()
        pair.start("a")
        pair.leader()
        leader_start_s = time.perf_counter() - started
        began = time.perf_counter()
        pair.start("b")
        pair.wait_standby("a", FIRST_JOB_TIMEOUT_S)
        standby_ready_s = time.perf_counter() - began
        workers = common.start_workers(pair.addresses, 1, WORKER_CONCURRENCY)
        stack.callback(common.stop_all, workers)
        common.wait_until(
            lambda: _completed(pair.cluster_of("a")) > 0, common.START_TIMEOUT_S, "a job done"
        )
        with connect(url) as connection:
            killed = pair.kill("a")
            common.wait_until(
                lambda: _holder(connection) == "b", FIRST_JOB_TIMEOUT_S, "b to take the lease"
            )
            lease_s = time.time() - killed
            pair.leader(other_than="a")
            takeover_s = time.time() - killed
            [(committed,)] = connection.execute(
                "SELECT count(*) FROM jobs WHERE state = 'completed' AND ended_at <= %s",
                [killed],
            ).fetchall()
            common.wait_until(
                lambda: _completed(pair.cluster_of("b")) > committed,
                FIRST_JOB_TIMEOUT_S,
                "a job completed by the new leader",
            )
            [(first,)] = connection.execute(
                "SELECT min(ended_at) FROM jobs WHERE state = 'completed' AND ended_at > %s",
                [killed],
            ).fetchall()
    return {
        "jobs": jobs,
        "fill_s": fill_s,
        "leader_start_s": leader_start_s,
        "standby_ready_s": standby_ready_s,
        "failover_timeout_s": failover_timeout,
        "lease_taken_s": lease_s,  # the lapse and the standby's poll; the rest is promotion
        "takeover_s_1m_queued": takeover_s,
        "first_job_s_1m_queued": first - killed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS)
    parser.add_argument("--failover-timeout", type=float, default=FAILOVER_TIMEOUT_S)
    args = parser.parse_args()
    result = run(args.jobs, args.failover_timeout)
    print(
        f"{args.jobs:,} jobs queued (filled in {result['fill_s']:.1f} s; the first leader served"
        f" after {result['leader_start_s']:.1f} s): after SIGKILL of the leader, the standby"
        f" takes the lease after {result['lease_taken_s']:.2f} s, serves after"
        f" {result['takeover_s_1m_queued']:.2f} s and completes a job after"
        f" {result['first_job_s_1m_queued']:.2f} s (failover_timeout {args.failover_timeout} s)",
        file=sys.stderr,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
