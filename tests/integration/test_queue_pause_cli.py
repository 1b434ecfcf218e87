"""`corral queue pause|resume` as an operator runs it, over TCP against a real coordinator
process on a SQLite file: the pause survives a SIGKILL and restart of the coordinator, `corral
status` says so, and resuming runs the jobs. That nothing starts while paused, however long,
is proven without waiting on a clock by tests/sim/test_paused_queues_sim.py."""

from __future__ import annotations

import signal
from pathlib import Path

from nodes.client import Client
from tests.conftest import wait_for
from tests.integration.conftest import Spawn, corral
from tests.integration.real_cluster import start_coordinator, start_worker


def test_a_paused_queue_keeps_its_jobs_across_a_restart_until_resumed(
    spawn: Spawn, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'corral.db'}"
    coordinator, address = start_coordinator(spawn, tmp_path, "c1", store=store)
    worker = start_worker(spawn, address, "w1")
    with Client(address, timeout=10) as client:
        wait_for(lambda: client.stats()["workers"], timeout=10, what="the worker registered")
        paused = corral("queue", "pause", "default", "--connect", address)
        assert paused.returncode == 0, paused.stderr
        assert "queue default paused" in paused.stdout
        jobs = [client.enqueue("sleep", [0]) for _ in range(3)]
        assert {client.get(job).state for job in jobs} == {"available"}

    # The coordinator dies and comes back on its file: the queue is still paused
    coordinator.signal(signal.SIGKILL)
    coordinator.wait()
    coordinator, address = start_coordinator(
        spawn, tmp_path, "c2", bind=address, store=store
    )
    with Client(address, timeout=10) as client:
        wait_for(lambda: client.stats()["workers"], timeout=15, what="the worker back")
        assert client.stats()["paused"] == ["default"]
        shown = corral("status", "--connect", address)
        assert shown.returncode == 0, shown.stderr
        assert "default (paused)" in shown.stdout
        assert {client.get(job).state for job in jobs} == {"available"}

        resumed = corral("queue", "resume", "default", "--connect", address)
        assert resumed.returncode == 0, resumed.stderr
        assert [client.get(job, wait=20).result for job in jobs] == [worker.pid] * 3
        assert client.stats()["paused"] == []
    wait_for(
        lambda: "queue default resumed" in coordinator.output, timeout=5, what="the log line"
    )
