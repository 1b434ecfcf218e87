"""Recovery time of a running job after its worker is SIGKILLed.

    .venv/bin/python bench/recovery.py [--heartbeat-timeout 2] [--reaper-interval 0.1]

A coordinator process with heartbeat_timeout 2 s, reaper_interval 0.1 s and heartbeat_interval
0.5 s (it must stay below the timeout, and the workers learn it at register). Worker A (a
`_node.py worker` process) starts a job that sleeps 10 s; then worker B starts and registers.
The bench SIGKILLs A and polls `get` every 20 ms until the job is active again on a later
attempt (on B, the only worker left). Expected: about heartbeat_timeout plus one reaper tick,
since A's last beat was up to one heartbeat_interval before the kill.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from typing import Any

import common

HEARTBEAT_INTERVAL_S = 0.5
HEARTBEAT_TIMEOUT_S = 2.0
REAPER_INTERVAL_S = 0.1
JOB_SLEEP_S = 10.0
GET_POLL_S = 0.02
DEADLINE_S = 30.0


def _wait_active(client: Any, job_id: str, after_attempt: int, timeout: float) -> Any:
    """Poll `get` every 20 ms until the job is active on an attempt above `after_attempt`."""
    deadline = time.perf_counter() + timeout
    while True:
        job = client.get(job_id)
        if job.state == "active" and job.attempt > after_attempt:
            return job
        if time.perf_counter() >= deadline:
            raise common.BenchError(
                f"job {job_id} still {job.state}/{job.attempt} after {timeout}s"
            )
        time.sleep(GET_POLL_S)


def run(
    heartbeat_timeout: float = HEARTBEAT_TIMEOUT_S, reaper_interval: float = REAPER_INTERVAL_S
) -> dict[str, Any]:
    nodes: list[common.NodeProcess] = []
    try:
        coordinator = common.start_coordinator_process(
            heartbeat_interval=min(HEARTBEAT_INTERVAL_S, heartbeat_timeout / 4),
            heartbeat_timeout=heartbeat_timeout,
            reaper_interval=reaper_interval,
        )
        nodes.append(coordinator)
        with contextlib.closing(common.client(coordinator.address)) as client:
            [worker_a] = common.start_workers(coordinator.address, 1, 1)
            nodes.append(worker_a)
            common.wait_for_workers(coordinator.address, 1)
            job_id = str(client.enqueue_many([{"type": "sleep", "args": [JOB_SLEEP_S]}])[0])
            first = _wait_active(client, job_id, 0, DEADLINE_S)
            [worker_b] = common.start_workers(coordinator.address, 1, 1)
            nodes.append(worker_b)
            common.wait_for_workers(coordinator.address, 2)
            worker_a.process.kill()
            killed = time.perf_counter()
            again = _wait_active(client, job_id, first.attempt, DEADLINE_S)
            recovery_s = time.perf_counter() - killed
    finally:
        common.stop_all(nodes[::-1])
    return {
        "heartbeat_timeout_s": heartbeat_timeout,
        "reaper_interval_s": reaper_interval,
        "attempts": [first.attempt, again.attempt],
        "recovery_s_after_sigkill": recovery_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heartbeat-timeout", type=float, default=HEARTBEAT_TIMEOUT_S)
    parser.add_argument("--reaper-interval", type=float, default=REAPER_INTERVAL_S)
    args = parser.parse_args()
    result = run(args.heartbeat_timeout, args.reaper_interval)
    print(
        f"job active again {result['recovery_s_after_sigkill']:.2f} s after SIGKILL of its worker"
        f" (heartbeat_timeout {args.heartbeat_timeout} s, reaper tick {args.reaper_interval} s)"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
