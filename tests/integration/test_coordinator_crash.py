"""A real coordinator on a SQLite file is SIGKILLed under load and restarted on the same file
and port: every job whose enqueue was acknowledged ends completed, and ran once per attempt.

Processes: one coordinator, two workers (`square` handler that logs `job_id attempt` to a file
of its own before returning) and this process as the client, all on 127.0.0.1. Every wait has
a deadline and every process is killed at teardown.
"""

from __future__ import annotations

import signal
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.store import record
from nodes import Client
from tests.conftest import wait_for
from tests.integration.conftest import NodeProcess, Spawn
from transport.errors import ConnectionLost

JOBS = 5_000
BATCH = 50
START_DEADLINE_S = 15.0
FINISH_DEADLINE_S = 40.0
ENQUEUE_TIMEOUT_S = 2.0  # a batch unanswered by then counts as not acknowledged
HEARTBEAT_TIMEOUT_S = 3.0  # orphaned reservations are recovered this long after a restart
POLL_S = 0.02

COORDINATOR = """
import signal, sys, threading
from nodes import Coordinator
node = Coordinator(
    bind=sys.argv[1], store="sqlite:///" + sys.argv[2],
    heartbeat_interval=0.5, heartbeat_timeout=float(sys.argv[3]), reaper_interval=0.1,
).start()
print("READY", node.address, flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
while not stop.wait(0.2):
    pass
node.stop()
"""

WORKER = """
import signal, sys, threading
from actors.worker import current_job
from nodes import WorkerNode
runs = open(sys.argv[2], "a", buffering=1)
lock = threading.Lock()
def square(x):
    job = current_job()
    with lock:
        runs.write(f"{job.id} {job.attempt}\\n")
    return x * x
node = WorkerNode(sys.argv[1], concurrency=8, handlers={"square": square}, hostname=sys.argv[3])
node.start()
print("READY", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
while not stop.wait(0.2):
    pass
node.stop(timeout=5)
"""


class Crashable:
    """The cluster under test: start, SIGKILL and restart the coordinator; read the results."""

    def __init__(self, tmp: Path, spawn: Spawn) -> None:
        self.tmp = tmp
        self.db = tmp / "corral.db"
        self.nodes: list[NodeProcess] = []
        self.coordinator: NodeProcess | None = None
        self.address = "tcp://127.0.0.1:*"
        self._spawn = spawn

    def _start(self, name: str, script: str, *args: str) -> tuple[NodeProcess, str]:
        """A child process that prints `READY [address]` once it serves."""
        node = self._spawn_node(name, script, *args)
        return node, ready(node)

    def _spawn_node(self, name: str, script: str, *args: str) -> NodeProcess:
        node = self._spawn(name, "-c", script, *args)
        self.nodes.append(node)
        return node

    def start_coordinator(self) -> None:
        args = [self.address, str(self.db), str(HEARTBEAT_TIMEOUT_S)]
        # restarts reuse the port
        self.coordinator, self.address = self._start("coordinator", COORDINATOR, *args)

    def kill_coordinator(self) -> None:
        assert self.coordinator is not None
        self.coordinator.kill()
        assert self.coordinator.process.returncode == -signal.SIGKILL

    def start_workers(self, count: int) -> None:
        """`count` worker processes, started at once; returns once each serves."""
        workers = [
            self._spawn_node(
                f"worker-{n}", WORKER, self.address, str(self.tmp / f"runs-{n}.txt"), f"worker-{n}"
            )
            for n in range(count)
        ]
        for worker in workers:
            ready(worker)

    def kill_all(self) -> None:
        for node in self.nodes:
            node.kill()

    def stored_jobs(self) -> dict[str, dict[str, Any]]:
        """Every job in the file, read after the coordinator died. Read-only: closing this
        connection must not checkpoint the WAL the next coordinator is to recover."""
        connection = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            rows = connection.execute("SELECT id, wire FROM jobs").fetchall()
        finally:
            connection.close()
        return {job_id: record.unpack(wire) for job_id, wire in rows}

    def runs(self) -> Counter[tuple[str, int]]:
        counted: Counter[tuple[str, int]] = Counter()
        for log in self.tmp.glob("runs-*.txt"):
            for line in log.read_text().splitlines():
                job_id, attempt = line.split()
                counted[job_id, int(attempt)] += 1
        return counted


def ready(node: NodeProcess) -> str:
    """Wait for the `READY [address]` line of a node started by Crashable; the address."""
    return node.wait_for_line(r"^READY ?(\S*)", START_DEADLINE_S).group(1)


@pytest.fixture
def cluster(tmp_path: Path, spawn: Spawn) -> Iterator[Crashable]:
    crashable = Crashable(tmp_path, spawn)
    try:
        yield crashable
    finally:
        crashable.kill_all()


class Producer:
    """Enqueues JOBS square jobs in batches from a thread; keeps the acknowledged ids."""

    def __init__(self, address: str) -> None:
        self.client = Client(address, timeout=ENQUEUE_TIMEOUT_S)
        self.acknowledged: dict[str, int] = {}  # job id -> its argument
        self.unanswered = 0
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Producer:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            for first in range(0, JOBS, BATCH):
                numbers = range(first, first + BATCH)
                try:
                    reply = self.client.request(
                        "enqueue", jobs=[{"type": "square", "args": [n]} for n in numbers]
                    )
                except ConnectionLost:
                    self.unanswered += 1
                    continue
                self.acknowledged.update(zip(reply["job_ids"], numbers, strict=True))
        finally:
            self.done.set()

    def join(self) -> None:
        assert self.done.wait(FINISH_DEADLINE_S), "the producer never finished"
        self._thread.join(1)


def totals(client: Client) -> Counter[str]:
    counted: Counter[str] = Counter()
    for by_state in client.stats()["queues"].values():
        counted.update(by_state)
    return counted


def safe_totals(client: Client) -> Counter[str]:
    try:
        return totals(client)
    except ConnectionLost:
        return Counter()


def check_every_acknowledged_job_completed_once(
    cluster: Crashable, acknowledged: dict[str, int]
) -> None:
    stored = cluster.stored_jobs()
    runs = cluster.runs()
    missing = [job_id for job_id in acknowledged if job_id not in stored]
    assert not missing, f"{len(missing)} acknowledged jobs lost, e.g. {missing[:3]}"
    for job_id, n in acknowledged.items():
        job = stored[job_id]
        assert job["state"] == "completed", f"{job_id} ended {job['state']}: {job}"
        assert job["result"] == n * n
        attempt = job["attempt"]
        # Extra attempts only come from recovered reservations, each recorded as an error.
        assert len(job["errors"]) == attempt - 1, job
        assert all(e["type"] in ("worker_lost", "timeout") for e in job["errors"]), job
        ran = {a: runs[job_id, a] for a in range(1, attempt + 1) if runs[job_id, a]}
        assert ran.get(attempt) == 1, f"{job_id}: completing attempt {attempt} ran {ran}"
        assert all(count == 1 for count in ran.values()), f"{job_id} attempts ran {ran}"
    unknown = {job_id for job_id, _ in runs} - stored.keys()
    assert not unknown, f"handlers ran jobs the store never had: {sorted(unknown)[:3]}"


def finish(cluster: Crashable, client: Client, acknowledged: dict[str, int]) -> None:
    """Wait until nothing is left to run, kill every process, check the file."""
    wait_for(
        lambda: (
            (t := safe_totals(client))["completed"] >= len(acknowledged)
            and t["available"] + t["active"] + t["retryable"] + t["scheduled"] == 0
        ),
        FINISH_DEADLINE_S,
        POLL_S,
        f"{len(acknowledged)} acknowledged jobs to complete",
    )
    client.close()
    # SIGKILL again, not a graceful stop: what the last stats reply counted must be on disk.
    cluster.kill_all()
    check_every_acknowledged_job_completed_once(cluster, acknowledged)


def test_a_coordinator_killed_during_enqueue_loses_no_acknowledged_job(cluster):
    cluster.start_coordinator()
    cluster.start_workers(2)
    producer = Producer(cluster.address).start()
    wait_for(lambda: len(producer.acknowledged) >= JOBS // 3, 20, POLL_S, "a third of the enqueues")

    cluster.kill_coordinator()
    assert not producer.done.is_set()  # killed mid-enqueue
    cluster.start_coordinator()
    producer.join()

    assert len(producer.acknowledged) >= JOBS // 3
    finish(cluster, producer.client, producer.acknowledged)


def test_a_coordinator_killed_while_workers_ack_completes_every_job_once(cluster):
    cluster.start_coordinator()
    producer = Producer(cluster.address).start()
    producer.join()
    assert len(producer.acknowledged) == JOBS and producer.unanswered == 0
    cluster.start_workers(2)
    wait_for(
        lambda: safe_totals(producer.client)["completed"] >= JOBS // 3,
        20,
        POLL_S,
        "a third done",
    )

    cluster.kill_coordinator()
    assert totals_in_file(cluster)["completed"] < JOBS  # killed mid-run, not after it
    cluster.start_coordinator()

    finish(cluster, producer.client, producer.acknowledged)


@pytest.mark.slow  # the suite's five minutes: run in the slow tier (README)
def test_a_coordinator_killed_twice_in_a_row_still_completes_every_job_once(cluster):
    cluster.start_coordinator()
    cluster.start_workers(2)
    producer = Producer(cluster.address).start()
    wait_for(
        lambda: len(producer.acknowledged) >= JOBS // 4,
        20,
        POLL_S,
        "a quarter of the enqueues",
    )
    cluster.kill_coordinator()
    cluster.start_coordinator()
    wait_for(
        lambda: safe_totals(producer.client)["completed"] >= JOBS // 2,
        30,
        POLL_S,
        "half done",
    )
    cluster.kill_coordinator()
    cluster.start_coordinator()
    producer.join()

    finish(cluster, producer.client, producer.acknowledged)


def totals_in_file(cluster: Crashable) -> Counter[str]:
    return Counter(job["state"] for job in cluster.stored_jobs().values())
