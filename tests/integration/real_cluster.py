"""Driving and reading a cluster of node_script.py processes (tests/integration/node_script.py)
for the real-failure tests (test_worker_killed.py, test_coordinator_killed.py, ...).

Timings are short (beat 0.2 s, heartbeat timeout 1-1.5 s, reaper tick 50 ms) and are told to
the workers by the coordinator in `workerregistered`; the workers are never configured with
them. Every wait is a condition with a deadline; every process is killed by the `spawn`
fixture's finalizer (tests/integration/conftest.py).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nodes.client import Client
from tests.conftest import wait_for
from tests.integration.conftest import NodeProcess, Spawn, node_script

HEARTBEAT_INTERVAL_S = 0.2
HEARTBEAT_TIMEOUT_S = 1.5
REAPER_INTERVAL_S = 0.05
FAST = {
    "heartbeat_interval": HEARTBEAT_INTERVAL_S,
    "heartbeat_timeout": HEARTBEAT_TIMEOUT_S,
    "reaper_interval": REAPER_INTERVAL_S,
}
# How late past its deadline a recovery may come: one reaper tick plus scheduling on 2 busy cores.
RECOVERY_MARGIN_S = 0.5
# One way. A reconnect (TCP and ZMTP handshakes, hello) then takes 3-4 round trips, ~0.35 s,
# more than one 0.2 s beat interval, so a beat always falls due while it is under way. Scaled
# like every timing here (the default interval is 25 times longer), that is a 1.25 s link.
SLOW_LINK_LATENCY_S = 0.05
START_TIMEOUT_S = 15.0

def start_worker(
    spawn: Spawn,
    address: str,
    name: str,
    concurrency: int = 2,
    shutdown_grace: float = 25.0,
    *extra: str,
) -> NodeProcess:
    """A worker process serving `default` and a queue of its own, named like it (`address`:
    one endpoint or several, comma-separated; `extra`: more node_script options)."""
    options = ["--queues", f"default,{name}", "--concurrency", str(concurrency),
               "--shutdown-grace", str(shutdown_grace), "--hostname", name, *extra]  # fmt: skip
    return spawn(name, *node_script("worker", address, *options))


def runs_jobs_again(client: Client, worker: NodeProcess, timeout: float = 15) -> str:
    """The worker process is back for real: a job on its own queue runs there. Returns the
    worker_id of the session that ran it."""
    job = client.enqueue("sleep", [0], queue=worker.name)
    assert job.result(timeout=timeout) == worker.pid
    return client.get(job).raw["worker_id"]


def start_coordinator(
    spawn: Spawn,
    tmp_path: Path,
    name: str,
    bind: str = "tcp://127.0.0.1:*",
    store: str = "memory",
    **more: Any,
) -> tuple[NodeProcess, str]:
    """A coordinator process with the FAST timings; returns it and the address it bound.
    `more`: other node_script options (failover_timeout=1.0 -> --failover-timeout 1.0)."""
    process, listening = spawn_coordinator(spawn, tmp_path, name, bind, store, **more)
    return process, listening()


def spawn_coordinator(
    spawn: Spawn,
    tmp_path: Path,
    name: str,
    bind: str = "tcp://127.0.0.1:*",
    store: str = "memory",
    **more: Any,
) -> tuple[NodeProcess, Callable[[], str]]:
    """`start_coordinator` without the wait: the process, and a call that waits until it
    listens and returns the address it bound (so several can start at once)."""
    address_file = tmp_path / f"{name}.address"
    timings = {**FAST, **more}
    options = ["--bind", bind, "--store", store]
    for key, value in timings.items():
        options += [f"--{key.replace('_', '-')}", str(value)]
    process = spawn(name, *node_script("coordinator", str(address_file), *options))

    def bound() -> str | None:
        assert process.alive, f"{name} exited early:\n{process.output}"
        return address_file.read_text() if address_file.exists() else None

    return process, lambda: wait_for(bound, timeout=START_TIMEOUT_S, what=f"{name} listening")


# -- reading the coordinator --------------------------------------------------------------------


def workers_of(client: Client, pid: int) -> list[dict[str, Any]]:
    """Every session (live or terminated) the process `pid` has had, oldest first."""
    return [w for w in client.stats()["workers"] if w["pid"] == pid]


def live_worker(client: Client, pid: int) -> dict[str, Any] | None:
    live = [w for w in workers_of(client, pid) if w["state"] != "terminated" and w["queues"]]
    assert len(live) <= 1, f"process {pid} has {len(live)} live sessions: {live}"
    return live[0] if live else None


def registered(client: Client, worker: NodeProcess) -> str:
    """Wait until the worker process has registered; returns its worker_id."""

    def session() -> str | None:
        assert worker.alive, f"{worker.name} exited early:\n{worker.output}"
        found = live_worker(client, worker.pid)
        return found["worker_id"] if found else None

    return wait_for(session, timeout=START_TIMEOUT_S, what=f"{worker.name} registered")


def resumed_under_a_new_id(
    client: Client, worker: NodeProcess, job: str, old_id: str, timeout: float = 10
) -> str:
    """Wait until `job` is held by a new session of `worker` that keeps beating (one the
    worker really uses), the job still on its first attempt without an error all along
    (resumed, not recovered); returns that session's worker_id."""
    first_seen: dict[str, float] = {}

    def resumed() -> str | None:
        found = client.get(job)
        assert (found.attempt, found.errors) == (1, []), f"recovered, not resumed: {found}"
        holder = found.raw.get("worker_id")
        if holder is None or holder == old_id:
            return None
        session = session_of(client, holder)
        assert session["pid"] == worker.pid, f"{job} moved to another process: {session}"
        if session["state"] == "terminated":
            return None  # a session the worker dropped; the job may move on from it
        since = first_seen.setdefault(holder, time.time())
        return holder if session["last_seen"] > since + 2 * HEARTBEAT_INTERVAL_S else None

    return wait_for(resumed, timeout=timeout, what=f"{job} resumed under a beating new session")


def session_of(client: Client, worker_id: str) -> dict[str, Any]:
    return next(w for w in client.stats()["workers"] if w["worker_id"] == worker_id)


def hold_jobs(
    client: Client,
    tmp_path: Path,
    release: Path,
    count: int = 1,
    queue: str = "default",
    kind: str = "hold",
) -> list[str]:
    """Enqueue `count` hold (or stubborn) jobs and wait until each handler runs (not only
    until the coordinator marks them active: the fetch reply may still be on its way)."""
    marks = [tmp_path / f"started-{uuid.uuid4().hex}" for _ in range(count)]
    specs = [{"type": kind, "args": [str(release), str(m)], "queue": queue} for m in marks]
    jobs = client.enqueue_many(specs)
    wait_for(lambda: all(m.exists() for m in marks), timeout=10, what=f"{count} handlers running")
    assert all_in(client, jobs, "active")
    return [str(job) for job in jobs]


def states_of(client: Client, jobs: list[str]) -> list[str]:
    return [client.get(job).state for job in jobs]


def all_in(client: Client, jobs: list[str], state: str) -> bool:
    return all(s == state for s in states_of(client, jobs))


