"""Workflows at scale: a chain of 10,000 steps and a group of 10,000 with a callback, each
against plain jobs doing the same.

    .venv/bin/python bench/workflows.py [--steps 10000] [--members 1000 10000] [--plain 1000]

One coordinator process (memory store) and 2 worker processes x 50 (a step after others gets
their results as its last argument: `noop(*args)` takes them). After 500 plain jobs to warm up:

- Chain: one `workflow` request, `chain(step("noop") x --steps)`. `workflow_request_ms_10k` is
  that request (every step made at once); `chain_s` runs from it to the last step completed (a
  `get` with `wait` on it), so `chain_ms_per_step` is one step's hop: its parent acked, it
  released, fetched and run. The baseline, `plain_chain_ms_per_job`, is `--plain` plain jobs
  run strictly one after another by this client (`enqueue`, then `get` with `wait`).
- Group: `group(step("square", [i]) x n, callback=step("noop"))` for each n of `--members`;
  `group_s_<n>` runs from the request to the callback completed (checked: it got every
  member's result, in order; `members_ended_after_callback_<n>` must be 0). `plain_group_s_<n>`
  is n plain `square` jobs in one `enqueue_many` until `stats()` (polled every 5 ms) counts
  them completed. The fan-in, `fanin_ms_<n>`, is the coordinator's own stamps: the callback's
  `started_at` less the latest `completed_at` of its members (read by `get`, after the run).
  `group_us_per_member_<n>` must stay flat as n grows tenfold: a fan-in of n costs O(n).

Coordinator CPU per step or job (`/proc`) is given for each, as it depends less on load.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import common

DEFAULT_STEPS = 10_000
DEFAULT_MEMBERS = (1_000, 10_000)
DEFAULT_PLAIN = 1_000
WARMUP_JOBS = 500
WORKERS, CONCURRENCY = 2, 50
TIMEOUT_S = 300.0
WAIT_SLICE_S = 10.0  # one `get` waits at most this long; the loop keeps the overall deadline
STATS_POLL_S = 0.005
READERS = 8  # threads reading the members' stamps after a group (one socket each)


def _done(client: Any, job_id: str, deadline: float) -> Any:
    """`get` with `wait` until the job ends; it must have completed."""
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            raise common.BenchError(f"job {job_id} not ended after {TIMEOUT_S} s")
        job = client.get(job_id, wait=min(left, WAIT_SLICE_S))
        if job.terminal:
            if job.state != "completed":
                raise common.BenchError(f"job {job_id} ended {job.state}: {job.errors}")
            return job


def _k(n: int) -> str:
    """10000 -> "10k", the keys' suffix."""
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def _completed(client: Any) -> int:
    return common.state_totals(client.stats()).get("completed", 0)


def _cpu(nodes: Any) -> float:
    return nodes.coordinator.cpu_seconds() or 0.0


def _workflow(client: Any, nodes: Any, tree: dict[str, Any], steps: int) -> dict[str, Any]:
    """Make the workflow, wait for its last step; check every step completed."""
    cpu = _cpu(nodes)
    started = time.perf_counter()
    made = client.enqueue_workflow(tree)
    request_s = time.perf_counter() - started
    last = _done(client, made["job_ids"][-1], started + TIMEOUT_S)
    total_s = time.perf_counter() - started
    cpu = _cpu(nodes) - cpu
    if len(made["job_ids"]) != steps:
        raise common.BenchError(f"the workflow made {len(made['job_ids'])} steps, not {steps}")
    view = client.workflow(made["workflow_id"], limit=0)
    if view["state"] != "completed" or view["counts"] != {"completed": steps}:
        raise common.BenchError(f"workflow {view['workflow_id']}: {view['state']} {view['counts']}")
    return {"made": made, "request_s": request_s, "total_s": total_s, "last": last, "cpu": cpu}


def chain(client: Any, nodes: Any, steps: int, plain: int) -> dict[str, Any]:
    """A chain of `steps` against `plain` plain jobs one after another."""
    from nodes import chain as chain_of
    from nodes import step

    tree = chain_of(*(step("noop") for _ in range(steps)))
    run = _workflow(client, nodes, tree, steps)
    cpu = _cpu(nodes)
    started = time.perf_counter()
    for _ in range(plain):
        _done(client, client.enqueue("noop"), started + TIMEOUT_S)
    plain_s = time.perf_counter() - started
    plain_cpu = _cpu(nodes) - cpu
    return {
        "chain_steps": steps,
        "chain_s": run["total_s"],
        "chain_ms_per_step": run["total_s"] / steps * 1e3,
        f"workflow_request_ms_{_k(steps)}": run["request_s"] * 1e3,
        "coordinator_cpu_us_per_chain_step": run["cpu"] / steps * 1e6,
        "plain_chain_jobs": plain,
        "plain_chain_ms_per_job": plain_s / plain * 1e3,
        "coordinator_cpu_us_per_plain_chain_job": plain_cpu / plain * 1e6,
    }


def _members_ended(client: Any, job_ids: list[str]) -> list[float]:
    """Each job's `completed_at` (read by `get`, a few threads at once)."""

    def ended(job_id: str) -> float:
        return float(client.get(job_id).raw["completed_at"])

    with ThreadPoolExecutor(READERS) as pool:
        return list(pool.map(ended, job_ids, chunksize=100))


def group(client: Any, nodes: Any, members: int) -> dict[str, Any]:
    """A group of `members` with a callback against as many plain jobs in one batch."""
    from nodes import group as group_of
    from nodes import step

    tree = group_of(*(step("square", [i]) for i in range(members)), callback=step("noop"))
    run = _workflow(client, nodes, tree, members + 1)
    callback = run["last"].raw
    if callback["args"] != [[i * i for i in range(members)]]:
        raise common.BenchError("the callback was not given every member's result, in order")
    ended = _members_ended(client, run["made"]["job_ids"][:-1])
    late = sum(at > callback["started_at"] for at in ended)  # must be 0
    fanin_s = callback["started_at"] - max(ended)
    specs = [{"type": "square", "args": [i]} for i in range(members)]
    before = _completed(client)
    cpu = _cpu(nodes)
    started = time.perf_counter()
    client.enqueue_many(specs)
    common.wait_until(
        lambda: _completed(client) >= before + members, TIMEOUT_S, f"{members} plain jobs"
    )
    plain_s = time.perf_counter() - started
    plain_cpu = _cpu(nodes) - cpu
    k = _k(members)
    return {
        f"group_request_ms_{k}": run["request_s"] * 1e3,
        f"group_s_{k}": run["total_s"],
        f"group_jobs_per_s_{k}": (members + 1) / run["total_s"],
        f"group_us_per_member_{k}": run["total_s"] / members * 1e6,
        f"fanin_ms_{k}": fanin_s * 1e3,
        f"members_ended_after_callback_{k}": late,
        f"coordinator_cpu_us_per_group_step_{k}": run["cpu"] / (members + 1) * 1e6,
        f"plain_group_s_{k}": plain_s,
        f"plain_group_jobs_per_s_{k}": members / plain_s,
        f"coordinator_cpu_us_per_plain_job_{k}": plain_cpu / members * 1e6,
        f"group_over_plain_{k}": run["total_s"] / plain_s,
    }


def run(
    steps: int = DEFAULT_STEPS,
    members: tuple[int, ...] = DEFAULT_MEMBERS,
    plain: int = DEFAULT_PLAIN,
) -> dict[str, Any]:
    """The chain, then each group, on one cluster of 2 workers x 50."""
    with (
        common.cluster(WORKERS, CONCURRENCY) as nodes,
        contextlib.closing(common.client(nodes.address)) as client,
    ):
        client.timeout = TIMEOUT_S
        warm = client.enqueue_many([{"type": "noop", "args": []} for _ in range(WARMUP_JOBS)])
        for job_id in warm:
            _done(client, job_id, time.perf_counter() + TIMEOUT_S)
        result = chain(client, nodes, steps, plain)
        for n in members:
            result |= group(client, nodes, n)
    result["chain_overhead_per_step"] = (
        result["chain_ms_per_step"] / result["plain_chain_ms_per_job"]
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--members", type=int, nargs="+", default=list(DEFAULT_MEMBERS))
    parser.add_argument("--plain", type=int, default=DEFAULT_PLAIN)
    args = parser.parse_args()
    r = run(args.steps, tuple(args.members), args.plain)
    groups = "; ".join(
        f"group of {n:,} + callback {r[f'group_s_{k}']:.2f} s"
        f" ({r[f'group_us_per_member_{k}']:.0f} us/member, plain {r[f'plain_group_s_{k}']:.2f} s,"
        f" fan-in {r[f'fanin_ms_{k}']:.1f} ms)"
        for n in args.members
        for k in [_k(n)]
    )
    print(
        f"chain of {args.steps:,}: {r['chain_s']:.2f} s, {r['chain_ms_per_step']:.3f} ms/step"
        f" (plain jobs one after another: {r['plain_chain_ms_per_job']:.3f} ms/job; the request"
        f" {r[f'workflow_request_ms_{_k(args.steps)}']:.0f} ms); {groups}"
    )
    print(json.dumps(r))


if __name__ == "__main__":
    main()
