"""Shared benchmark plumbing: start nodes as real processes, wait with deadlines, clean up.

Every wait here has a deadline and every process started is killed in `finally` (SIGTERM, then
SIGKILL after `KILL_GRACE_S`). Only 127.0.0.1 is used.
"""

from __future__ import annotations

import contextlib
import os
import platform
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
NODE_SCRIPT = BENCH_DIR / "_node.py"
LOOPBACK_ANY_PORT = "tcp://127.0.0.1:*"
START_TIMEOUT_S = 20.0
REGISTER_TIMEOUT_S = 20.0
KILL_GRACE_S = 5.0
POLL_INTERVAL_S = 0.05


class BenchError(RuntimeError):
    """A benchmark could not run to the end (a node did not start, a deadline passed)."""


@dataclass
class NodeProcess:
    """One `bench/_node.py` child; `address` is what it printed in its READY line."""

    kind: str
    process: subprocess.Popen[bytes]
    address: str = ""
    argv: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the process so far (Linux /proc; None elsewhere)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        # fields[11], fields[12] are utime and stime (stat fields 14 and 15), in clock ticks
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self) -> int | None:
        """Resident set size (VmRSS from Linux /proc; None elsewhere)."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            return None
        return None

    def stop(self, grace: float = KILL_GRACE_S) -> None:
        """SIGTERM, wait up to `grace`, then SIGKILL. Idempotent."""
        proc = self.process
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(grace)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_DIR), env.get("PYTHONPATH")]))
    return env


def spawn_node(kind: str, *args: str, timeout: float = START_TIMEOUT_S) -> NodeProcess:
    """Start `bench/_node.py KIND ARGS...` and wait (bounded) for its `READY <address>` line."""
    argv = [sys.executable, str(NODE_SCRIPT), kind, *args]
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,  # the child exits when this closes, so no orphans survive us
        stdout=subprocess.PIPE,
        stderr=None,
        cwd=str(REPO_DIR),
        env=_child_env(),
    )
    node = NodeProcess(kind, proc, argv=argv)
    try:
        node.address = _read_ready(proc, timeout)
    except BaseException:
        node.stop()
        raise
    return node


def _read_ready(proc: subprocess.Popen[bytes], timeout: float) -> str:
    assert proc.stdout is not None
    deadline = time.perf_counter() + timeout
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise BenchError(f"node {proc.args!r} not ready within {timeout} s")
            if not selector.select(left):
                continue
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                raise BenchError(f"node {proc.args!r} exited early (code {proc.poll()})")
            buffer += chunk
            for line in buffer.split(b"\n")[:-1]:
                if line.startswith(b"READY "):
                    return line[len(b"READY ") :].decode().strip()


def start_coordinator_process(
    store: str = "memory",
    profile: str | None = None,
    bind: str = LOOPBACK_ANY_PORT,
    **options: float | str,
) -> NodeProcess:
    """A coordinator in its own process (on a free loopback port unless `bind` names one);
    `options` are settings such as `heartbeat_timeout=2` or `name="a"` (the `_node.py
    coordinator` flags)."""
    args = ["--bind", bind, "--store", store]
    if profile:
        args += ["--profile", profile]
    for name, value in options.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    return spawn_node("coordinator", *args)


def free_endpoint() -> str:
    """A loopback endpoint on a port free right now: a coordinator restarted after SIGKILL
    binds the same one again, so workers and clients can list it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{probe.getsockname()[1]}"


@contextlib.contextmanager
def coordinator_in_process(store: str = "memory") -> Iterator[str]:
    """A coordinator inside this process (shares our GIL); yields its address."""
    from nodes import Coordinator

    coordinator = Coordinator(bind=LOOPBACK_ANY_PORT, store=store).start()
    try:
        yield coordinator.address
    finally:
        coordinator.stop(timeout=KILL_GRACE_S)


def start_workers(
    address: str | list[str], count: int, concurrency: int, profile: str | None = None
) -> list[NodeProcess]:
    """`count` worker processes, each a WorkerNode with `noop` and `square` handlers (following
    the leader when given several coordinators); with `profile`, the first one writes its
    cProfile stats there."""
    addresses = [address] if isinstance(address, str) else address
    workers: list[NodeProcess] = []
    try:
        for i in range(count):
            args = ["--connect", *addresses, "--concurrency", str(concurrency)]
            if profile and i == 0:
                args += ["--profile", profile]
            workers.append(spawn_node("worker", *args))
    except BaseException:
        stop_all(workers)
        raise
    return workers


def stop_all(nodes: list[NodeProcess]) -> None:
    """Stop every node: signal them all first, then wait on each with a deadline."""
    for node in nodes:
        if node.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                node.process.terminate()
    for node in nodes:
        node.stop()


@dataclass
class RunningCluster:
    """What `cluster()` yields: the address, and the processes (no coordinator when in-process)."""

    address: str
    coordinator: NodeProcess | None
    workers: list[NodeProcess]

    def cpu_seconds(self) -> dict[str, float | None]:
        """CPU time used so far by the coordinator and by all workers together."""
        workers = [w.cpu_seconds() for w in self.workers]
        return {
            "coordinator": self.coordinator.cpu_seconds() if self.coordinator else None,
            "workers": None if None in workers else sum(w for w in workers if w is not None),
        }


def store_url(store: str, stack: contextlib.ExitStack) -> str:
    """`sqlite` means a fresh file in a temporary directory (removed by `stack`); `postgresql`
    a fresh database on a private cluster (tests/pg.py, stopped by `stack`); `memory` and
    store URLs pass through. The temporary directory must be on a real disk: on tmpfs an
    fsync costs nothing and the SQLite number would flatter the store."""
    if store == "postgresql":
        if str(REPO_DIR) not in sys.path:
            sys.path.insert(0, str(REPO_DIR))
        from tests.pg import private_cluster

        return stack.enter_context(private_cluster()).database()
    if store != "sqlite":
        return store
    directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="corral-bench-"))
    return f"sqlite:///{directory}/bench.db"


@contextlib.contextmanager
def cluster(
    workers: int,
    concurrency: int,
    *,
    store: str = "memory",
    profile: str | None = None,
    worker_profile: str | None = None,
    in_process: bool = False,
) -> Iterator[RunningCluster]:
    """A coordinator (own process unless `in_process`) and `workers` worker processes, all
    registered; yields them and kills everything on the way out."""
    nodes: list[NodeProcess] = []
    with contextlib.ExitStack() as stack:
        store = store_url(store, stack)
        coordinator: NodeProcess | None = None
        if in_process:
            address = stack.enter_context(coordinator_in_process(store))
        else:
            coordinator = start_coordinator_process(store, profile)
            nodes.append(coordinator)
            address = coordinator.address
        try:
            worker_nodes = start_workers(address, workers, concurrency, worker_profile)
            nodes.extend(worker_nodes)
            if workers:
                wait_for_workers(address, workers)
            yield RunningCluster(address, coordinator, worker_nodes)
        finally:
            # nodes write their profiles (if any) on this clean SIGTERM stop
            stop_all(nodes[::-1])


def client(address: str | list[str]) -> Any:
    from nodes import Client

    return Client(address)


def raw_call(sock: Any, body: dict[str, Any], rid: int, timeout: float = START_TIMEOUT_S) -> Any:
    """Send one protocol request on a DEALER and wait (bounded) for its answer; errors raise."""
    import msgpack

    sock.send(msgpack.packb({**body, "rid": rid}))
    if not sock.poll(int(timeout * 1000)):
        raise BenchError(f"no answer to {body['type']} within {timeout} s")
    answer = msgpack.unpackb(sock.recv(), raw=False)
    if answer.get("type") == "error":
        raise BenchError(f"{body['type']} refused: {answer}")
    return answer


def hello_body() -> dict[str, Any]:
    return {"type": "hello", "v": 1, "role": "worker", "hostname": "bench", "pid": os.getpid()}


def register_body(worker_id: str, queues: tuple[str, ...] = ("default",)) -> dict[str, Any]:
    return {
        "type": "register",
        "worker_id": worker_id,
        "queues": list(queues),
        "hostname": "bench",
        "pid": os.getpid(),
    }


def raw_worker(context: Any, address: str) -> tuple[Any, str]:
    """A DEALER that said hello and registered on `default`; returns it and its worker id."""
    import zmq

    sock = context.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(address)
    try:
        worker_id = raw_call(sock, hello_body(), 1)["worker_id"]
        raw_call(sock, register_body(worker_id), 2)
    except BaseException:
        sock.close(0)
        raise
    return sock, worker_id


def live_workers(stats: dict[str, Any]) -> int:
    return sum(1 for w in stats["workers"] if w.get("state") != "terminated")


def wait_for_workers(
    address: str | list[str], count: int, timeout: float = REGISTER_TIMEOUT_S
) -> None:
    """Poll `stats()["workers"]` until `count` live workers are registered."""
    with contextlib.closing(client(address)) as c:
        c.timeout = timeout  # one stats() that never gets a reply must not outlast the deadline
        wait_until(
            lambda: live_workers(c.stats()) >= count,
            timeout,
            f"{count} workers to register",
        )


def wait_until(done: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.perf_counter() + timeout
    while not done():
        if time.perf_counter() >= deadline:
            raise BenchError(f"gave up waiting for {what} after {timeout} s")
        time.sleep(POLL_INTERVAL_S)


def state_totals(stats: dict[str, Any]) -> dict[str, int]:
    """Sum the per-queue state counts of a `stats()` reply."""
    totals: dict[str, int] = {}
    for by_state in stats["queues"].values():
        for state, n in by_state.items():
            totals[state] = totals.get(state, 0) + n
    return totals


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank on sorted samples."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


def summary_ms(samples_s: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_s]
    return {
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms) if ms else float("nan"),
        "mean_ms": statistics.fmean(ms) if ms else float("nan"),
    }


def machine() -> str:
    """Python version, CPUs, platform and the 1-minute load (other work skews every number)."""
    load = f", load {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else ""
    return f"Python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.platform()}{load}"
