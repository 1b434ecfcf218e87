"""Failover time: SIGKILL the leading coordinator, time until the standby completes a job.

    .venv/bin/python bench/failover.py [--kills 5] [--failover-timeout 3] [--workers 2]

A private PostgreSQL cluster (tests/pg.py), two coordinator processes sharing a fresh database
(bench/ha_pair.py), `--workers` worker processes listing both endpoints, and a client thread in
this process that follows the leader (Client with both endpoints) and enqueues one no-op job
every 20 ms. The bench SIGKILLs the leader `--kills` times; each time it starts the killed one
again (it stands by) before the next kill. One failover is the time from the SIGKILL to the
first job completed after it: the lowest `completed_at` (the coordinator's wall clock, the same
clock as the bench's on one machine) above the kill's time among the client's jobs. Only the
new leader can complete a job after the old one died, and a job enqueued before the kill still
waiting counts as much as one enqueued after it. Expected: the lease lapses failover_timeout
after the leader's last renewal, the standby's next poll promotes it, the workers find it.
Each failover also notes when the standby first answered `stats` as leader (`serving_s`): the
rest is the workers' way back (their reconnect back-off while the standby said not_leader).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import threading
import time
from typing import Any

import common
from ha_pair import Pair

DEFAULT_KILLS = 5
FAILOVER_TIMEOUT_S = 3.0  # the coordinator's default (actors/leadership.FAILOVER_TIMEOUT_S)
DEFAULT_WORKERS = 2
CONCURRENCY = 4
TRICKLE_INTERVAL_S = 0.02
CLIENT_TIMEOUT_S = 30.0  # longer than any failover: an enqueue waits for the new leader
FAILOVER_DEADLINE_S = 60.0
SETTLE_TIMEOUT_S = 30.0


class Trickle:
    """A client thread following the leader: one no-op job every 20 ms; keeps every job's id
    with the wall-clock time its enqueue was answered."""

    def __init__(self, addresses: list[str]) -> None:
        from nodes import Client

        self.client = Client(addresses, timeout=CLIENT_TIMEOUT_S)
        self.enqueued: list[tuple[float, str]] = []
        self.failed = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-trickle", daemon=True)

    def __enter__(self) -> Trickle:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(CLIENT_TIMEOUT_S + common.KILL_GRACE_S)
        self.client.close()

    def _run(self) -> None:
        spec = {"type": "noop", "args": []}
        while not self._stop.wait(TRICKLE_INTERVAL_S):
            try:
                [handle] = self.client.enqueue_many([spec])
            except Exception:  # no leader within the client's timeout: count it, go on
                self.failed += 1
                continue
            with self._lock:
                self.enqueued.append((time.time(), str(handle)))

    def since(self, t: float) -> list[str]:
        """Ids of the jobs whose enqueue was answered after wall-clock time `t`."""
        with self._lock:
            return [job_id for at, job_id in self.enqueued if at > t]


def _first_completion_after(client: Any, trickle: Trickle, killed: float) -> float:
    """Wait until a job enqueued after the kill completes; then the lowest `completed_at`
    above `killed` among the jobs enqueued from a few seconds before it."""
    deadline = time.perf_counter() + FAILOVER_DEADLINE_S
    while True:
        after = trickle.since(killed)
        if after and client.get(after[0], wait=1.0).state == "completed":
            break
        if time.perf_counter() >= deadline:
            raise common.BenchError(f"no job completed {FAILOVER_DEADLINE_S} s after the kill")
        time.sleep(common.POLL_INTERVAL_S)
    times = [
        job.raw["completed_at"]
        for job in (client.get(job_id) for job_id in trickle.since(killed - 2.0))
        if job.state == "completed" and job.raw.get("completed_at", 0.0) > killed
    ]
    return min(times) - killed


def run(
    kills: int = DEFAULT_KILLS,
    failover_timeout: float = FAILOVER_TIMEOUT_S,
    workers: int = DEFAULT_WORKERS,
) -> dict[str, Any]:
    """SIGKILL the leader `kills` times; the failover times and their p50 and max."""
    from nodes import Client

    took: list[float] = []
    serving: list[float] = []  # SIGKILL -> the standby answers `stats` as leader
    with contextlib.ExitStack() as stack:
        pair = Pair(common.store_url("postgresql", stack), failover_timeout)
        stack.callback(pair.stop)
        for name in pair.endpoints:
            pair.start(name)
        leader = pair.leader()
        nodes = common.start_workers(pair.addresses, workers, CONCURRENCY)
        stack.callback(common.stop_all, nodes)
        common.wait_for_workers(pair.addresses, workers)
        client = stack.enter_context(contextlib.closing(Client(pair.addresses, timeout=10.0)))
        trickle = stack.enter_context(Trickle(pair.addresses))
        for _ in range(kills):
            # steady state: the other one stands by, and jobs complete on the leader
            pair.wait_standby(leader, SETTLE_TIMEOUT_S)
            _first_completion_after(client, trickle, time.time())
            killed = pair.kill(leader)
            successor = pair.leader(other_than=leader)
            serving.append(time.time() - killed)
            took.append(_first_completion_after(client, trickle, killed))
            print(
                f"   failover {len(took)}: {successor} serving after {serving[-1]:.2f} s,"
                f" first job completed after {took[-1]:.2f} s",
                file=sys.stderr,
                flush=True,
            )
            pair.start(leader)  # it stands by now
            leader = successor
    return {
        "kills": kills,
        "workers": workers,
        "failover_s": [round(t, 3) for t in took],
        "serving_s": [round(t, 3) for t in serving],
        "failover_s_p50": statistics.median(took),
        "failover_s_max": max(took),
        "failover_timeout_s": failover_timeout,
        "p50_over_timeout": statistics.median(took) / failover_timeout,
        "trickle_jobs": len(trickle.enqueued),
        "trickle_enqueue_failures": trickle.failed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=DEFAULT_KILLS)
    parser.add_argument("--failover-timeout", type=float, default=FAILOVER_TIMEOUT_S)
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    args = parser.parse_args()
    result = run(args.kills, args.failover_timeout, args.workers)
    print(
        f"failover after SIGKILL of the leader ({args.kills} kills, failover_timeout"
        f" {args.failover_timeout} s): p50 {result['failover_s_p50']:.2f} s, max"
        f" {result['failover_s_max']:.2f} s (p50 = {result['p50_over_timeout']:.2f}x the timeout)"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
