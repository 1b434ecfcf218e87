"""Schedules at scale: what a thousand schedules cost a coordinator, and how late their jobs are.

    .venv/bin/python bench/schedules.py [--schedules 1000] [--seconds 10]

A coordinator process (memory store, reaper tick 0.1 s) gets `--schedules` schedules over the
wire. First they are all yearly (`0 0 1 1 *`: none comes due), and the bench reads the
coordinator's CPU over `--seconds` (`schedules_idle_cpu_pct`: what scanning them costs each
tick). Then each is replaced by one firing every second (`every: 1`, overlap allow) whose jobs
go to a queue no worker takes, and after `--seconds` more the bench pauses them one by one and
counts the jobs made against the slots due at least a second before each pause
(`schedule_jobs_missing`, expected 0; `schedule_jobs_held`, the jobs in the queue, equals
`schedule_jobs_made`: no slot made twice), the CPU of the firing seconds
(`schedules_firing_cpu_pct`) and, from the newest 1,000 jobs, how long after its slot each was
made (`schedule_lateness_ms_p50` / `_max`: about half a reaper tick is the floor).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from typing import Any

import common

DEFAULT_SCHEDULES = 1_000
DEFAULT_SECONDS = 10.0
REAPER_INTERVAL_S = 0.1
QUEUE = "scheduled-bench"  # no worker takes it: the jobs stay where they were made
SAMPLE = 1_000  # jobs read back for the lateness


def _put_all(client: Any, count: int, **when: Any) -> list[dict[str, Any]]:
    return [
        client.put_schedule(f"s{n:05d}", "noop", [n], queue=QUEUE, overlap="allow", **when)
        for n in range(count)
    ]


def _cpu_pct(node: common.NodeProcess, seconds: float) -> float:
    before = node.cpu_seconds() or 0.0
    time.sleep(seconds)
    return ((node.cpu_seconds() or 0.0) - before) / seconds * 100


def run(schedules: int = DEFAULT_SCHEDULES, seconds: float = DEFAULT_SECONDS) -> dict[str, Any]:
    coordinator = common.start_coordinator_process(reaper_interval=REAPER_INTERVAL_S)
    try:
        with contextlib.closing(common.client(coordinator.address)) as client:
            _put_all(client, schedules, cron="0 0 1 1 *")
            idle_cpu = _cpu_pct(coordinator, seconds)
            firing = _put_all(client, schedules, every=1.0)
            cpu = _cpu_pct(coordinator, seconds)
            due = 0
            for put in firing:  # each stopped in turn: the slots due before its pause count
                client.pause_schedule(put["name"])
                due += max(int((time.time() - put["next_runs"][0]) // 1.0), 0)
            made = sum(s["fired"] for s in client.schedules())
            held = client.stats()["queues"][QUEUE]["available"]
            jobs = client.jobs(queue=QUEUE, limit=SAMPLE)
    finally:
        common.stop_all([coordinator])
    lateness = sorted(
        (job.raw["created_at"] - job.raw["meta"]["slot"]) * 1000 for job in jobs
    )
    return {
        "schedules": schedules,
        "schedules_idle_cpu_pct": idle_cpu,
        "schedules_firing_cpu_pct": cpu,
        "schedule_jobs_made": made,
        "schedule_jobs_held": held,
        "schedule_jobs_missing": max(due - made, 0),  # a slot due within a tick may be unmade
        "schedule_lateness_ms_p50": statistics.median(lateness),
        "schedule_lateness_ms_max": lateness[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=DEFAULT_SCHEDULES)
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS)
    args = parser.parse_args()
    result = run(args.schedules, args.seconds)
    print(
        f"{args.schedules:,} schedules: idle {result['schedules_idle_cpu_pct']:.1f} % of a core;"
        f" firing every second {result['schedules_firing_cpu_pct']:.1f} %,"
        f" {result['schedule_jobs_made']:,} jobs made ({result['schedule_jobs_missing']} slots"
        f" missing), lateness p50 {result['schedule_lateness_ms_p50']:.0f} ms,"
        f" max {result['schedule_lateness_ms_max']:.0f} ms",
        file=sys.stderr,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
