"""Real failures over real ZeroMQ: worker processes SIGKILLed, SIGSTOPped, SIGTERMed and
starved of the GIL; links cut, slowed and reset; a coordinator killed and started again on
the same port, on the memory store and on SQLite.

The same scenarios run on virtual time in tests/sim/test_recovery.py; here they run on TCP
loopback with every worker (and, where it must die, the coordinator) in its own process started
from tests/integration/node_script.py, and with a `Relay` (a TCP relay in this process) standing
in for the network where it must fail. Timings are short (beat 0.2 s, heartbeat timeout
1-1.5 s, reaper tick 50 ms) and are told to the workers by the coordinator in
`workerregistered`; the workers are never configured with them. Every wait is a condition with
a deadline; every process is killed by the `spawn` fixture's finalizer. docs/FAILURES.md cites
these tests.
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nodes.client import Client
from tests.conftest import wait_for
from transport.errors import ConnectionLost, UnknownJob

REPO = Path(__file__).resolve().parents[2]
NODE_SCRIPT = Path(__file__).resolve().with_name("node_script.py")

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
PROCESS_EXIT_TIMEOUT_S = 10.0


# -- processes ----------------------------------------------------------------------------------


class Spawned:
    """A node_script process whose output goes to a log file (shown when a test fails)."""

    def __init__(self, name: str, args: list[str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in finish()
        self.process = subprocess.Popen(
            [sys.executable, str(NODE_SCRIPT), *args],
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def signal(self, signum: int) -> float:
        """Send `signum`; returns the wall-clock time it was sent (the coordinator's clock)."""
        sent_at = time.time()
        self.process.send_signal(signum)
        return sent_at

    def wait(self, timeout: float = PROCESS_EXIT_TIMEOUT_S) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.name} (pid {self.pid}) still running after {timeout} s")

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def finish(self) -> None:
        """SIGKILL (a SIGSTOPped process too) and reap."""
        try:
            if self.alive:
                self.process.kill()
            self.process.wait(PROCESS_EXIT_TIMEOUT_S)
        finally:
            self._log.close()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Spawned]]:
    """Factory: `spawn(name, *args)` starts node_script.py; every process is SIGKILLed (if
    still alive) and reaped at teardown, and its log printed (pytest shows it on failure)."""
    started: list[Spawned] = []

    def start(name: str, *args: str) -> Spawned:
        spawned = Spawned(name, list(args), tmp_path / f"{name}.log")
        started.append(spawned)
        return spawned

    yield start
    for spawned in started:  # every process first, so nothing below can leave one running
        with contextlib.suppress(Exception):
            spawned.finish()
    for spawned in started:
        print(f"----- {spawned.name} (pid {spawned.pid}, exit {spawned.process.returncode})")
        print(spawned.log()[-6000:])


@pytest.fixture
def clients() -> Iterator[Callable[..., Client]]:
    """Factory: `clients(address, timeout=5)` connects a Client; all are closed at teardown."""
    opened: list[Client] = []

    def connect(address: str, timeout: float = 5.0) -> Client:
        client = Client(address, timeout=timeout)
        opened.append(client)
        return client

    yield connect
    for client in opened:
        client.close()


class Relay:
    """A TCP relay in front of the coordinator, standing in for the network between it and
    the workers that connect through `address`.

    `cut()` is a partition: nothing is forwarded either way and the bytes wait in the kernel's
    buffers, as TCP keeps retransmitting across a real partition; `heal()` lets them through.
    `reset()` tears every relayed connection down with an RST (a NAT or firewall that forgot
    the flow): ZeroMQ reconnects on its own, and the coordinator sees a new peer. `latency`
    delays every byte by that many seconds each way (a slow or distant link).
    """

    POLL_S = 0.02

    def __init__(self, target: str, latency: float = 0.0) -> None:
        host, port = target.removeprefix("tcp://").rsplit(":", 1)
        self.latency = latency
        self._target = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(self.POLL_S)
        self.address = f"tcp://127.0.0.1:{self._listener.getsockname()[1]}"
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._links: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, name="relay", daemon=True)]
        self._threads[0].start()

    def cut(self) -> float:
        self._flowing.clear()
        return time.time()

    def heal(self) -> float:
        self._flowing.set()
        return time.time()

    def reset(self) -> float:
        with self._lock:
            links, self._links = self._links, []
        for link in links:
            with_rst(link)
        return time.time()

    def close(self) -> None:
        self._closed.set()
        self._flowing.set()
        self._listener.close()
        self.reset()
        for thread in self._threads:
            thread.join(PROCESS_EXIT_TIMEOUT_S)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                inside, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                outside = socket.create_connection(self._target, timeout=5)
            except OSError:
                inside.close()
                continue
            with self._lock:
                self._links += [inside, outside]
            for source, sink in ((inside, outside), (outside, inside)):
                pump = threading.Thread(target=self._pump, args=(source, sink), daemon=True)
                pump.start()
                self._threads.append(pump)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        """Read from `source` while the network flows; each chunk reaches `sink` `latency`
        seconds later, in order (a delay line, so a slow link still carries every beat)."""
        line: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()
        writer = threading.Thread(target=self._deliver, args=(line, source, sink), daemon=True)
        writer.start()
        self._threads.append(writer)
        try:
            while not self._closed.is_set():
                if not self._flowing.wait(self.POLL_S):
                    continue  # partitioned: leave the bytes where they are
                readable, _, _ = select.select([source], [], [], self.POLL_S)
                if not readable or not self._flowing.is_set():
                    continue
                data = source.recv(65536)
                if not data:
                    break
                line.put((time.monotonic() + self.latency, data))
        except (OSError, ValueError):
            pass  # reset or closed under us
        line.put((0.0, b""))

    def _deliver(
        self,
        line: queue.SimpleQueue[tuple[float, bytes]],
        source: socket.socket,
        sink: socket.socket,
    ) -> None:
        try:
            while True:
                due, data = line.get()
                if not data:
                    break
                self._closed.wait(max(0.0, due - time.monotonic()))
                sink.sendall(data)
        except (OSError, ValueError):
            pass
        with_rst(source)
        with_rst(sink)


def with_rst(link: socket.socket) -> None:
    """Close with SO_LINGER 0, so the peer gets an RST rather than a FIN."""
    with contextlib.suppress(OSError):
        link.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    link.close()


@pytest.fixture
def relays() -> Iterator[Callable[..., Relay]]:
    """Factory: `relays(coordinator_address, latency=0)` starts a Relay; all are closed at
    teardown."""
    started: list[Relay] = []

    def start(target: str, latency: float = 0.0) -> Relay:
        relay = Relay(target, latency)
        started.append(relay)
        return relay

    yield start
    for relay in started:
        relay.close()


def start_worker(
    spawn, address: str, name: str, concurrency: int = 2, shutdown_grace: float = 25.0
) -> Spawned:
    """A worker process serving `default` and a queue of its own, named like it."""
    return spawn(
        name,
        "worker",
        address,
        "--queues",
        f"default,{name}",
        "--concurrency",
        str(concurrency),
        "--shutdown-grace",
        str(shutdown_grace),
        "--hostname",
        name,
    )


def runs_jobs_again(client: Client, worker: Spawned, timeout: float = 15) -> str:
    """The worker process is back for real: a job on its own queue runs there. Returns the
    worker_id of the session that ran it."""
    job = client.enqueue("sleep", [0], queue=worker.name)
    assert job.result(timeout=timeout) == worker.pid
    return client.get(job).raw["worker_id"]


def start_coordinator(
    spawn, tmp_path: Path, name: str, bind: str = "tcp://127.0.0.1:*", store: str = "memory"
) -> tuple[Spawned, str]:
    """A coordinator process with the FAST timings; returns it and the address it bound."""
    address_file = tmp_path / f"{name}.address"
    process = spawn(
        name,
        "coordinator",
        str(address_file),
        "--bind",
        bind,
        "--store",
        store,
        "--heartbeat-interval",
        str(HEARTBEAT_INTERVAL_S),
        "--heartbeat-timeout",
        str(HEARTBEAT_TIMEOUT_S),
        "--reaper-interval",
        str(REAPER_INTERVAL_S),
    )

    def bound() -> str | None:
        assert process.alive, f"{name} exited early:\n{process.log()}"
        return address_file.read_text() if address_file.exists() else None

    return process, wait_for(bound, timeout=START_TIMEOUT_S, what=f"{name} listening")


# -- reading the coordinator --------------------------------------------------------------------


def workers_of(client: Client, pid: int) -> list[dict[str, Any]]:
    """Every session (live or terminated) the process `pid` has had, oldest first."""
    return [w for w in client.stats()["workers"] if w["pid"] == pid]


def live_worker(client: Client, pid: int) -> dict[str, Any] | None:
    live = [w for w in workers_of(client, pid) if w["state"] != "terminated" and w["queues"]]
    assert len(live) <= 1, f"process {pid} has {len(live)} live sessions: {live}"
    return live[0] if live else None


def registered(client: Client, worker: Spawned) -> str:
    """Wait until the worker process has registered; returns its worker_id."""

    def session() -> str | None:
        assert worker.alive, f"{worker.name} exited early:\n{worker.log()}"
        found = live_worker(client, worker.pid)
        return found["worker_id"] if found else None

    return wait_for(session, timeout=START_TIMEOUT_S, what=f"{worker.name} registered")


def resumed_under_a_new_id(
    client: Client, worker: Spawned, job: str, old_id: str, timeout: float = 10
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


# -- 1. a worker process dies -------------------------------------------------------------------


def test_a_sigkilled_worker_s_jobs_complete_on_another_process_as_worker_lost_attempts(
    coordinator, spawn, clients, tmp_path
):
    # Given two worker processes, each running two jobs that wait for a release file
    node = coordinator(**FAST)
    client = clients(node.address)
    release = tmp_path / "release"
    first = start_worker(spawn, node.address, "worker-a")
    second = start_worker(spawn, node.address, "worker-b")
    ids = {registered(client, first): first, registered(client, second): second}
    jobs = hold_jobs(client, tmp_path, release, count=4)
    holder = {job: client.get(job).raw["worker_id"] for job in jobs}
    assert sorted(holder.values()) == sorted([*ids, *ids]), holder  # two on each process
    victim_id = holder[jobs[0]]
    victim = ids[victim_id]
    survivor_id, survivor = next((i, p) for i, p in ids.items() if p is not victim)
    lost = [job for job in jobs if holder[job] == victim_id]
    kept = [job for job in jobs if holder[job] != victim_id]

    # When the victim is SIGKILLed (no deregister, no FIN-driven cleanup in the protocol)
    assert all(client.get(job).attempt == 1 for job in jobs), "a job was retried before the kill"
    killed_at = victim.signal(signal.SIGKILL)
    victim.wait()

    # Then its two jobs come back as worker_lost attempts within heartbeat_timeout of the kill
    wait_for(
        lambda: all_in(client, lost, "available"),
        timeout=HEARTBEAT_TIMEOUT_S + 5,
        what="the victim's jobs recovered",
    )
    for job in lost:
        errors = client.get(job).errors
        assert [(e["type"], e["attempt"]) for e in errors] == [("worker_lost", 1)], errors
        delay = errors[0]["at"] - killed_at
        assert (
            HEARTBEAT_TIMEOUT_S - 2 * HEARTBEAT_INTERVAL_S - 0.1
            <= delay
            <= HEARTBEAT_TIMEOUT_S + RECOVERY_MARGIN_S
        ), f"recovered {delay:.3f} s after the kill"
        print(f"recovered {delay:.3f} s after the SIGKILL")
    assert states_of(client, kept) == ["active", "active"]  # the survivor's jobs are untouched
    victim_session = next(w for w in client.stats()["workers"] if w["worker_id"] == victim_id)
    assert victim_session["state"] == "terminated"

    # And once released, every job completes exactly once; the lost ones on the survivor
    release.touch()
    wait_for(lambda: all_in(client, jobs, "completed"), timeout=10, what="all jobs completed")
    for job in lost:
        done = client.get(job)
        assert (done.attempt, done.raw["worker_id"], done.result) == (2, survivor_id, survivor.pid)
    for job in kept:
        done = client.get(job)
        assert (done.attempt, done.errors, done.result) == (1, [], survivor.pid)
    counts = client.stats()["queues"]["default"]
    assert counts["completed"] == 4 and counts["active"] == counts["available"] == 0


# -- 2. the coordinator process dies (memory store) ---------------------------------------------


def test_after_a_coordinator_is_killed_and_restarted_workers_re_register_with_new_ids(
    spawn, clients, tmp_path
):
    # Given a coordinator process on the memory store and two worker processes (one slot
    # each): one idle, one running a job; and a job waiting in a queue nobody serves
    first, address = start_coordinator(spawn, tmp_path, "coordinator-1")
    before = clients(address)
    release = tmp_path / "release"
    busy, idle = (start_worker(spawn, address, name, concurrency=1) for name in ("busy", "idle"))
    old_ids = {registered(before, busy), registered(before, idle)}
    [running] = hold_jobs(before, tmp_path, release, queue="busy")
    waiting = before.enqueue("sleep", [0], queue="nobody-serves-this")

    # When the coordinator is SIGKILLed and a new one binds the same address
    first.signal(signal.SIGKILL)
    first.wait()
    _, again = start_coordinator(spawn, tmp_path, "coordinator-2", bind=address)
    restarted_at = time.time()
    assert again == address
    after = clients(address)

    # Then each worker process re-registers by itself, under a new worker_id, and runs jobs
    # again; the busy one has abandoned its running job (its only slot is free, the job's
    # hold was never released)
    fresh = {runs_jobs_again(after, worker) for worker in (busy, idle)}
    took = time.time() - restarted_at
    assert len(fresh) == 2 and not fresh & old_ids, (fresh, old_ids)
    assert busy.alive and idle.alive

    # And the memory store lost everything the old coordinator held: both jobs are unknown
    for job in (running, waiting):
        with pytest.raises(UnknownJob):
            after.get(job)

    # And newly enqueued jobs run on the re-registered processes on their first attempt
    jobs = after.enqueue_many([{"type": "sleep", "args": [0.05]} for _ in range(6)])
    wait_for(lambda: all_in(after, jobs, "completed"), timeout=10, what="new jobs completed")
    for job in jobs:
        done = after.get(job)
        assert (done.attempt, done.errors) == (1, [])
        assert done.raw["worker_id"] in fresh and done.result in {busy.pid, idle.pid}
    print(f"both workers ran jobs again {took:.2f} s after the new coordinator started")


def test_an_enqueue_that_timed_out_in_a_coordinator_outage_is_safe_to_retry_with_a_unique_key(
    spawn, clients, tmp_path
):
    # Given a client whose coordinator process has just been SIGKILLed
    first, address = start_coordinator(spawn, tmp_path, "coordinator-1")
    client = clients(address, timeout=1.0)
    client.ping()
    first.signal(signal.SIGKILL)
    first.wait()

    # When an enqueue gets no reply (the request may still be queued in the client's socket)
    with pytest.raises(ConnectionLost):
        client.enqueue("sleep", [0], queue="orders", unique_key="order-17")

    # And the client retries it with the same unique_key once a new coordinator is up
    start_coordinator(spawn, tmp_path, "coordinator-2", bind=address)
    job = wait_for(
        lambda: _enqueue_or_none(client, "sleep", [0], queue="orders", unique_key="order-17"),
        timeout=10,
        what="an enqueue answered by the new coordinator",
    )

    # Then there is exactly one such job, whether or not the first request arrived late
    counts = client.stats()["queues"]["orders"]
    assert sum(counts.values()) == 1, counts
    assert client.get(job).raw["unique_key"] == "order-17"


def _enqueue_or_none(client: Client, kind: str, args: list[Any], **options: Any) -> str | None:
    try:
        return str(client.enqueue(kind, args, **options))
    except ConnectionLost:
        return None


# -- 3. SIGTERM: graceful stop ------------------------------------------------------------------


def test_a_sigtermed_worker_finishes_its_running_job_deregisters_and_exits_0(
    coordinator, spawn, clients
):
    # Given a worker process (concurrency 1) running a job that takes about 1 s
    node = coordinator(**FAST)
    client = clients(node.address)
    worker = start_worker(spawn, node.address, "worker", concurrency=1)
    worker_id = registered(client, worker)
    job = client.enqueue("sleep", [1.0])
    wait_for(lambda: client.get(job).state == "active", timeout=10, what="the job active")

    # When it gets SIGTERM (its handler runs WorkerNode.stop()), with another job waiting
    signalled_at = worker.signal(signal.SIGTERM)
    waiting = client.enqueue("sleep", [0])

    # Then the process exits 0 after the running job completed on its first attempt
    assert worker.wait() == 0, worker.log()
    done = client.get(job)
    assert (done.state, done.attempt, done.errors, done.result) == (
        "completed",
        1,
        [],
        worker.pid,
    )
    assert done.raw["started_at"] < signalled_at < done.raw["completed_at"]
    # And it took nothing new once told to stop, and its session ended as terminated
    assert (client.get(waiting).state, client.get(waiting).attempt) == ("available", 0)
    sessions = workers_of(client, worker.pid)
    assert [(w["worker_id"], w["state"]) for w in sessions] == [(worker_id, "terminated")]


def test_a_sigtermed_worker_whose_handler_is_stuck_fails_the_job_as_shutdown_and_exits(
    coordinator, spawn, clients, tmp_path
):
    # Given a worker with a 1 s shutdown grace whose only job is stuck in a blocking call
    node = coordinator(**FAST)
    client = clients(node.address)
    grace = 1.0
    worker = start_worker(spawn, node.address, "worker", concurrency=1, shutdown_grace=grace)
    worker_id = registered(client, worker)
    [job] = hold_jobs(client, tmp_path, tmp_path / "never-released", kind="stubborn")

    # When it gets SIGTERM
    signalled_at = worker.signal(signal.SIGTERM)

    # Then after the grace the job is failed as a retryable Shutdown attempt, the session ends
    # by deregistering, and the process exits 0 (it does not wait on the stuck thread)
    wait_for(lambda: client.get(job).errors, timeout=grace + 5, what="the job failed")
    failed = client.get(job)
    assert failed.state in ("retryable", "available"), failed
    assert [(e["type"], e["attempt"]) for e in failed.errors] == [("Shutdown", 1)]
    assert failed.errors[0]["at"] - signalled_at >= grace
    wait_for(
        lambda: session_of(client, worker_id)["state"] == "terminated",
        timeout=5,
        what="the session ended",
    )
    assert worker.wait(timeout=grace + 5) == 0, worker.log()


# -- 4. a handler that hogs the GIL -------------------------------------------------------------


def test_a_cpu_bound_handler_does_not_starve_the_beats_and_completes_on_its_first_attempt(
    coordinator, spawn, clients
):
    # Given a 1 s heartbeat timeout and a worker process running two pure-Python busy loops
    node = coordinator(heartbeat_interval=0.2, heartbeat_timeout=1.0, reaper_interval=0.05)
    client = clients(node.address)
    worker = start_worker(spawn, node.address, "spinner", concurrency=2)
    worker_id = registered(client, worker)
    jobs = client.enqueue_many([{"type": "spin", "args": [3.0]} for _ in range(2)])

    # When they spin for 3 s (three heartbeat timeouts) without sleeping or doing I/O
    wait_for(lambda: all_in(client, jobs, "completed"), timeout=20, what="both spins done")

    # Then neither was recovered: the session that fetched them is the one that acked them
    for job in jobs:
        done = client.get(job)
        assert (done.attempt, done.errors, done.raw["worker_id"]) == (1, [], worker_id)
        assert done.result["pid"] == worker.pid and done.result["rounds"] > 0
        assert done.raw["completed_at"] - done.raw["started_at"] >= 3.0
    sessions = workers_of(client, worker.pid)
    assert [(w["worker_id"], w["state"]) for w in sessions] == [(worker_id, "running")]


# -- 5. visibility timeout ----------------------------------------------------------------------


def test_a_job_outliving_its_visibility_timeout_is_not_recovered_while_its_worker_beats(
    coordinator, spawn, clients
):
    node = coordinator(**FAST)
    client = clients(node.address)
    worker = start_worker(spawn, node.address, "worker", concurrency=1)
    worker_id = registered(client, worker)

    # A 3 s handler under a 1 s visibility timeout: each beat listing it pushes the deadline on
    job = client.enqueue("sleep", [3.0], timeout=1)
    done = client.get(job, wait=15)

    assert (done.state, done.attempt, done.errors) == ("completed", 1, [])
    assert done.raw["worker_id"] == worker_id
    assert done.raw["completed_at"] - done.raw["started_at"] >= 3.0


def test_a_raw_peer_that_beats_without_listing_its_job_loses_it_as_a_timeout_attempt(
    coordinator, raw_peer, clients
):
    # Given a worker written with nothing but zmq + msgpack that fetched a job with timeout=1
    node = coordinator(**FAST)
    client = clients(node.address)
    peer = raw_peer(node.address)
    hello = peer.request("hello", v=1, role="worker", hostname="raw", pid=os.getpid())
    worker_id = hello["worker_id"]
    assert (hello["heartbeat_interval"], hello["heartbeat_timeout"]) == (
        HEARTBEAT_INTERVAL_S,
        HEARTBEAT_TIMEOUT_S,
    )
    register = peer.request(
        "register", worker_id=worker_id, queues=["raw"], hostname="raw", pid=os.getpid()
    )
    assert register["type"] == "reply", register
    job = client.enqueue("square", [3], queue="raw", timeout=1)
    fetched_at = time.time()
    fetched = peer.request("fetch", worker_id=worker_id, count=1)["jobs"]
    assert [(j["id"], j["attempt"]) for j in fetched] == [(job, 1)]

    # When it keeps beating (so its session lives) but never lists the job
    def beat_and_check() -> bool:
        beat = peer.request("beat", worker_id=worker_id, state="running", active_job_ids=[])
        assert beat["type"] == "reply", beat
        return client.get(job).state != "active"

    wait_for(beat_and_check, timeout=5, interval=HEARTBEAT_INTERVAL_S, what="job recovered")

    # Then the reservation expired about 1 s after the fetch: a failed attempt of type timeout
    recovered = client.get(job)
    assert recovered.state == "available"
    assert [(e["type"], e["attempt"]) for e in recovered.errors] == [("timeout", 1)]
    delay = recovered.errors[0]["at"] - fetched_at
    assert 1.0 - 0.05 <= delay <= 1.0 + RECOVERY_MARGIN_S, f"expired {delay:.3f} s after fetch"
    print(f"reservation expired {delay:.3f} s after the fetch")
    session = next(w for w in client.stats()["workers"] if w["worker_id"] == worker_id)
    assert session["state"] == "running"  # the worker itself is fine; only the lease ended

    # And its late ack changes nothing; a beat listing the job is told to abandon it
    late = peer.request("ack", worker_id=worker_id, job_id=job, attempt=1, result=9)
    assert (late["type"], late.get("code")) == ("error", "not_owner"), late
    beat = peer.request("beat", worker_id=worker_id, state="running", active_job_ids=[job])
    assert beat["cancel_job_ids"] == [job]

    # And the next attempt is a fresh reservation that can complete it
    again = peer.request("fetch", worker_id=worker_id, count=1)["jobs"]
    assert [(j["id"], j["attempt"]) for j in again] == [(job, 2)]
    assert peer.request("ack", worker_id=worker_id, job_id=job, attempt=2, result=9)["type"] == (
        "reply"
    )
    done = client.get(job)
    assert (done.state, done.attempt, done.result) == ("completed", 2, 9)


# -- a worker adopts the coordinator's timing at once -------------------------------------------


def test_a_just_started_busy_worker_beats_at_the_interval_the_coordinator_announced(
    coordinator, spawn, clients
):
    # Given a worker process that registered and at once filled its only slot
    node = coordinator(**FAST)
    client = clients(node.address)
    worker = start_worker(spawn, node.address, "worker", concurrency=1)
    worker_id = registered(client, worker)
    job = client.enqueue("sleep", [30])
    wait_for(lambda: client.get(job).state == "active", timeout=10, what="the job active")
    watch_until = time.time() + 2 * HEARTBEAT_TIMEOUT_S

    # Then for two heartbeat timeouts it is heard from every beat (it sends no fetch: no free
    # slot), so its session and its job's first attempt survive
    def still_alive_and_watched_long_enough() -> bool:
        session = next(w for w in client.stats()["workers"] if w["worker_id"] == worker_id)
        assert session["state"] == "running", f"declared {session['state']}: {session}"
        silent = time.time() - session["last_seen"]
        assert silent < HEARTBEAT_TIMEOUT_S / 2, f"nothing heard for {silent:.2f} s"
        assert client.get(job).attempt == 1
        return time.time() >= watch_until

    wait_for(still_alive_and_watched_long_enough, timeout=2 * HEARTBEAT_TIMEOUT_S + 5)


# -- the network between a worker and the coordinator -------------------------------------------


def test_a_worker_partitioned_past_the_heartbeat_timeout_loses_its_job_which_completes_once(
    coordinator, spawn, clients, relays, tmp_path
):
    # Given a worker reaching the coordinator through a relay, running a job, and a second
    # worker connected directly
    node = coordinator(**FAST)
    client = clients(node.address)
    relay = relays(node.address)
    release = tmp_path / "release"
    far = start_worker(spawn, relay.address, "far", concurrency=1)
    far_id = registered(client, far)
    [job] = hold_jobs(client, tmp_path, release)
    near = start_worker(spawn, node.address, "near", concurrency=1)
    near_id = registered(client, near)

    # When the network between them is cut for longer than the heartbeat timeout
    cut_at = relay.cut()

    # Then the coordinator declares the far worker dead and hands the job to the near one
    wait_for(lambda: client.get(job).attempt == 2, timeout=HEARTBEAT_TIMEOUT_S + 5)
    moved = client.get(job)
    assert [(e["type"], e["attempt"]) for e in moved.errors] == [("worker_lost", 1)]
    assert moved.errors[0]["at"] - cut_at <= HEARTBEAT_TIMEOUT_S + RECOVERY_MARGIN_S
    print(f"recovered {moved.errors[0]['at'] - cut_at:.3f} s after the cut")
    assert (moved.state, moved.raw["worker_id"]) == ("active", near_id)

    # And while still cut off, both copies finish: the far worker's result cannot arrive
    release.touch()
    wait_for(lambda: client.get(job).state == "completed", timeout=10, what="completed")

    # And after the partition heals, the far worker comes back under a new id and runs jobs
    # again, and its late outcome changed nothing: the job completed once, with near's result
    relay.heal()
    assert runs_jobs_again(client, far) != far_id
    done = client.get(job)
    assert (done.state, done.attempt, done.raw["worker_id"], done.result) == (
        "completed",
        2,
        near_id,
        near.pid,
    )
    assert client.stats()["queues"]["default"]["completed"] == 1


def test_a_partition_shorter_than_the_heartbeat_timeout_changes_nothing(
    coordinator, spawn, clients, relays, tmp_path
):
    # Given a worker reaching the coordinator through a relay, running a job
    node = coordinator(**FAST)
    client = clients(node.address)
    relay = relays(node.address)
    release = tmp_path / "release"
    worker = start_worker(spawn, relay.address, "worker", concurrency=1)
    worker_id = registered(client, worker)
    [job] = hold_jobs(client, tmp_path, release)

    # When the link is cut until the coordinator has heard nothing for half the timeout
    cut_at = relay.cut()
    wait_for(
        lambda: time.time() - session_of(client, worker_id)["last_seen"] >= HEARTBEAT_TIMEOUT_S / 2,
        timeout=5,
        what="the coordinator has heard nothing for half the timeout",
    )
    healed_at = relay.heal()
    wait_for(
        lambda: session_of(client, worker_id)["last_seen"] > healed_at,
        timeout=5,
        what="beats arriving again",
    )

    # Then nothing happened: same session, same attempt, no error; the job completes there
    assert healed_at - cut_at < HEARTBEAT_TIMEOUT_S
    assert live_worker(client, worker.pid) == session_of(client, worker_id)
    release.touch()
    done = client.get(job, wait=10)
    assert (done.state, done.attempt, done.errors) == ("completed", 1, [])
    assert (done.raw["worker_id"], done.result) == (worker_id, worker.pid)


def test_a_worker_whose_tcp_connection_is_reset_resumes_its_job_under_a_new_id(
    coordinator, spawn, clients, relays, tmp_path
):
    # Given a worker reaching the coordinator through a relay, running a job
    node = coordinator(**FAST)
    client = clients(node.address)
    relay = relays(node.address)
    release = tmp_path / "release"
    worker = start_worker(spawn, relay.address, "worker", concurrency=1)
    first_id = registered(client, worker)
    [job] = hold_jobs(client, tmp_path, release)

    # When the TCP connection is reset (ZeroMQ reconnects by itself; the coordinator sees a
    # new peer that never said hello, and answers its next beat with not_registered)
    relay.reset()

    # Then the worker says hello again and resumes its running job under one new worker_id;
    # the previous session is ended (replaced), not left to time out
    second_id = resumed_under_a_new_id(client, worker, job, first_id)
    assert session_of(client, first_id)["state"] == "terminated"

    # And the job finishes on its first attempt, under that id, without a recorded error
    release.touch()
    done = client.get(job, wait=10)
    assert (done.state, done.attempt, done.errors) == ("completed", 1, [])
    assert (done.raw["worker_id"], done.result) == (second_id, worker.pid)


def test_a_worker_on_a_slow_link_whose_connection_is_reset_still_resumes_its_job(
    coordinator, spawn, clients, relays, tmp_path
):
    # Given a worker whose link to the coordinator takes SLOW_LINK_LATENCY_S each way, so that
    # reconnecting (TCP and ZMTP handshakes, then hello) takes longer than a beat interval;
    # it registered over that link once already, so slowness alone is not what breaks it
    node = coordinator(**FAST)
    client = clients(node.address)
    relay = relays(node.address, latency=SLOW_LINK_LATENCY_S)
    release = tmp_path / "release"
    worker = start_worker(spawn, relay.address, "worker", concurrency=1)
    first_id = registered(client, worker)
    [job] = hold_jobs(client, tmp_path, release)

    # When its TCP connection is reset
    relay.reset()

    # Then it resumes its running job under a new worker_id, as on a fast link, and the job
    # completes on its first attempt
    second_id = resumed_under_a_new_id(client, worker, job, first_id)
    release.touch()
    done = client.get(job, wait=10)
    assert (done.state, done.attempt, done.errors) == ("completed", 1, [])
    assert (done.raw["worker_id"], done.result) == (second_id, worker.pid)


# -- a worker process that stalls (SIGSTOP) -----------------------------------------------------


def test_a_stalled_worker_is_declared_dead_and_abandons_its_job_when_it_wakes(
    coordinator, spawn, clients, tmp_path
):
    # Given a worker running a job and an idle second worker
    node = coordinator(**FAST)
    client = clients(node.address)
    release = tmp_path / "release"
    stalled = start_worker(spawn, node.address, "stalled", concurrency=1)
    stalled_id = registered(client, stalled)
    [job] = hold_jobs(client, tmp_path, release)
    other = start_worker(spawn, node.address, "other", concurrency=1)
    other_id = registered(client, other)

    # When the first process is frozen (SIGSTOP: no thread runs, no beat leaves)
    stopped_at = stalled.signal(signal.SIGSTOP)

    # Then it is declared dead after the heartbeat timeout and its job runs on the other one
    wait_for(lambda: client.get(job).attempt == 2, timeout=HEARTBEAT_TIMEOUT_S + 5)
    moved = client.get(job)
    assert [(e["type"], e["attempt"]) for e in moved.errors] == [("worker_lost", 1)]
    assert moved.errors[0]["at"] - stopped_at <= HEARTBEAT_TIMEOUT_S + RECOVERY_MARGIN_S
    print(f"recovered {moved.errors[0]['at'] - stopped_at:.3f} s after SIGSTOP")
    assert moved.raw["worker_id"] == other_id

    # When it is thawed (SIGCONT), it notices the silence, re-registers under a new id and
    # abandons the job it was running (its previous session is gone, nothing is resumed): its
    # only slot is free again although the job it held was never released
    stalled.signal(signal.SIGCONT)
    assert runs_jobs_again(client, stalled) != stalled_id
    release.touch()
    done = client.get(job, wait=10)
    assert (done.state, done.attempt, done.raw["worker_id"], done.result) == (
        "completed",
        2,
        other_id,
        other.pid,
    )
    assert client.stats()["queues"]["default"]["completed"] == 1


# -- the coordinator process dies (SQLite store) ------------------------------------------------


def test_after_a_coordinator_on_sqlite_is_killed_acked_jobs_survive_and_running_ones_resume(
    spawn, clients, tmp_path
):
    # Given a coordinator on SQLite, a completed job, a waiting job, and two workers each
    # running a job
    store = f"sqlite:///{tmp_path / 'corral.db'}"
    first, address = start_coordinator(spawn, tmp_path, "coordinator-1", store=store)
    before = clients(address)
    release = tmp_path / "release"
    keeper = start_worker(spawn, address, "keeper", concurrency=1)
    keeper_id = registered(before, keeper)
    acked = before.enqueue("sleep", [0])
    assert acked.result(timeout=10) == keeper.pid
    waiting = before.enqueue("sleep", [0], queue="nobody-serves-this")
    [resumed] = hold_jobs(before, tmp_path, release)
    goner = start_worker(spawn, address, "goner", concurrency=1)
    goner_id = registered(before, goner)
    [orphan] = hold_jobs(before, tmp_path, release)
    assert (before.get(resumed).raw["worker_id"], before.get(orphan).raw["worker_id"]) == (
        keeper_id,
        goner_id,
    )

    # When one worker and then the coordinator are SIGKILLed, and a new coordinator opens the
    # same file on the same address
    goner.signal(signal.SIGKILL)
    first.signal(signal.SIGKILL)
    first.wait()
    goner.wait()
    _, again = start_coordinator(spawn, tmp_path, "coordinator-2", bind=address, store=store)
    restarted_at = time.time()
    after = clients(again)

    # Then acknowledged and waiting jobs survived as they were
    kept = after.get(acked)
    assert (kept.state, kept.attempt, kept.result) == ("completed", 1, keeper.pid)
    assert (after.get(waiting).state, after.get(waiting).attempt) == ("available", 0)

    # And the surviving worker re-registers and resumes its running job under its new id
    resumed_under_a_new_id(after, keeper, resumed, keeper_id)
    assert after.get(resumed).state == "active"

    # And the dead worker's job is recovered as worker_lost once heartbeat_timeout has passed
    wait_for(
        lambda: after.get(orphan).state == "available",
        timeout=HEARTBEAT_TIMEOUT_S + 5,
        what="the orphaned job recovered",
    )
    errors = after.get(orphan).errors
    assert [(e["type"], e["attempt"]) for e in errors] == [("worker_lost", 1)]
    delay = errors[0]["at"] - restarted_at
    assert HEARTBEAT_TIMEOUT_S - 0.3 <= delay <= HEARTBEAT_TIMEOUT_S + RECOVERY_MARGIN_S, delay
    print(f"orphan recovered {delay:.3f} s after the restart")

    # And both complete exactly once: the resumed one on its first attempt
    release.touch()
    wait_for(
        lambda: all_in(after, [resumed, orphan], "completed"), timeout=10, what="both completed"
    )
    assert (after.get(resumed).attempt, after.get(resumed).errors) == (1, [])
    assert (after.get(orphan).attempt, after.get(orphan).result) == (2, keeper.pid)


def test_after_a_coordinator_on_sqlite_stays_down_past_the_heartbeat_timeout_jobs_still_resume(
    spawn, clients, tmp_path
):
    # Given a coordinator on SQLite and a worker running a job
    store = f"sqlite:///{tmp_path / 'corral.db'}"
    first, address = start_coordinator(spawn, tmp_path, "coordinator-1", store=store)
    before = clients(address)
    worker = start_worker(spawn, address, "worker", concurrency=1)
    worker_id = registered(before, worker)
    release = tmp_path / "release"
    [job] = hold_jobs(before, tmp_path, release)

    # When the coordinator is SIGKILLed and stays down until the worker has given up on it
    # (no reply for heartbeat_timeout) and started reconnecting, then comes back
    first.signal(signal.SIGKILL)
    first.wait()
    wait_for(
        lambda: "coordinator lost (no reply" in worker.log(),
        timeout=HEARTBEAT_TIMEOUT_S + 5,
        what="the worker noticing the coordinator is gone",
    )
    _, again = start_coordinator(spawn, tmp_path, "coordinator-2", bind=address, store=store)
    after = clients(again)

    # Then the worker resumes its running job within the restart's resume window
    resumed_under_a_new_id(after, worker, job, worker_id, timeout=HEARTBEAT_TIMEOUT_S + 5)
    release.touch()
    done = after.get(job, wait=10)
    assert (done.state, done.attempt, done.errors) == ("completed", 1, [])


# -- the coordinator process stalls (SIGSTOP) ---------------------------------------------------


def test_a_coordinator_frozen_past_the_heartbeat_timeout_lets_running_jobs_resume(
    spawn, clients, tmp_path
):
    # Given a coordinator process and a worker running a job
    coordinator, address = start_coordinator(spawn, tmp_path, "coordinator")
    client = clients(address)
    worker = start_worker(spawn, address, "worker", concurrency=1)
    worker_id = registered(client, worker)
    release = tmp_path / "release"
    [job] = hold_jobs(client, tmp_path, release)

    # When the coordinator is frozen (SIGSTOP: a VM pause, swapping, a stuck disk) until the
    # worker has given up on it and started reconnecting, then thawed
    coordinator.signal(signal.SIGSTOP)
    wait_for(
        lambda: "coordinator lost (no reply" in worker.log(),
        timeout=HEARTBEAT_TIMEOUT_S + 5,
        what="the worker noticing the coordinator is silent",
    )
    coordinator.signal(signal.SIGCONT)

    # Then the worker's job is resumed under its new session, not recovered and run again:
    # the worker was never dead, only unheard while the coordinator itself was frozen
    resumed_under_a_new_id(client, worker, job, worker_id)
    release.touch()
    done = client.get(job, wait=10)
    assert (done.state, done.attempt, done.errors) == ("completed", 1, [])


# -- a handler that ignores cancellation --------------------------------------------------------


def test_a_worker_whose_cancelled_handler_will_not_stop_takes_no_job_it_cannot_start(
    coordinator, spawn, clients, tmp_path
):
    # Given two one-slot workers; the first runs a handler deaf to cancellation
    node = coordinator(**FAST)
    client = clients(node.address)
    release = tmp_path / "release"
    stuck = start_worker(spawn, node.address, "stuck", concurrency=1)
    stuck_id = registered(client, stuck)
    [job] = hold_jobs(client, tmp_path, release, queue="stuck", kind="stubborn")
    free = start_worker(spawn, node.address, "free", concurrency=1)
    registered(client, free)

    # When the job is cancelled (the worker is told on its next beat and abandons it, but the
    # handler keeps its thread)
    cancelled_at = time.time()
    assert client.cancel(job) == "cancelled"
    wait_for(
        lambda: session_of(client, stuck_id)["last_seen"] > cancelled_at + 2 * HEARTBEAT_INTERVAL_S,
        timeout=5,
        what="beats (carrying the cancel) from the first worker",
    )

    # Then new jobs still run promptly: the first worker has no thread to run them with, so
    # they must not wait on it while the second worker is free
    more = client.enqueue_many([{"type": "sleep", "args": [0.2]} for _ in range(4)])
    seen: list[Any] = []

    def all_completed() -> bool:
        seen[:] = [(client.get(j).state, client.get(j).raw.get("worker_id")) for j in more]
        return all(state == "completed" for state, _ in seen)

    try:
        wait_for(all_completed, timeout=5)
    except pytest.fail.Exception:
        pytest.fail(f"jobs (state, worker) 5 s later: {seen}; the stuck worker is {stuck_id}")
    assert {client.get(j).result for j in more} == {free.pid}
    release.touch()
