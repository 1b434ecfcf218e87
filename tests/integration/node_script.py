"""One corral node in its own process, for the real-failure tests (see real_cluster.py).

    python node_script.py coordinator ADDRESS_FILE [--bind B] [--store URL] [--heartbeat-interval S]
                                                  [--failover-timeout S] [--lease-name NAME]
    python node_script.py worker CONNECT[,CONNECT...] [--queues Q1,Q2] [--concurrency N]
                                         [--hostname H] [--shutdown-grace S]

A coordinator writes the address it bound to ADDRESS_FILE (atomically) once it listens, then
serves until killed. A worker serves until SIGTERM/SIGINT, which runs the graceful
`WorkerNode.stop()` and exits 0. Handlers the tests enqueue:

- `sleep(seconds)`: `current_job().sleep(seconds)`; returns the worker's pid.
- `hold(path, started="")`: touches `started` (when given) as it begins, then waits (in
  cancellable 20 ms sleeps) until `path` exists; returns the pid.
- `stubborn(path, started="")`: like `hold` but never looks at `cancelled` (a handler stuck
  in a blocking call).
- `spin(seconds)`: a pure-Python busy loop (no sleeps, no I/O) that holds the GIL for
  `seconds`; returns the pid and how many hash rounds it did.
- `gather(*results)`: a workflow step; returns its pid and the results its parents passed it.
- `exit(code)`: calls `sys.exit(code)`; `interrupt()`: raises KeyboardInterrupt (handlers
  raising a BaseException that is not an Exception).

Nothing here sets the worker's heartbeat timing: the coordinator announces it in
`workerregistered`, as it would in production.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from actors.worker import current_job
from nodes import Coordinator
from nodes.worker_node import WorkerNode

HOLD_POLL_S = 0.02


def sleep(seconds: float) -> int:
    job = current_job()
    assert job is not None
    job.sleep(seconds)
    return os.getpid()


def hold(path: str, started: str = "") -> int:
    job = current_job()
    assert job is not None
    if started:
        Path(started).touch()  # the test waits for this: the handler really runs
    while not os.path.exists(path) and not job.cancelled:
        job.sleep(HOLD_POLL_S)
    return os.getpid()


def stubborn(path: str, started: str = "") -> int:
    """Like `hold`, but deaf to cancellation: a handler stuck in a blocking call."""
    if started:
        Path(started).touch()
    pause = threading.Event()
    while not os.path.exists(path):
        pause.wait(HOLD_POLL_S)
    return os.getpid()


def spin(seconds: float) -> dict[str, Any]:
    """Burn CPU in the interpreter: every iteration is bytecode, so the GIL is contended."""
    job = current_job()
    assert job is not None
    deadline = job.clock.now() + seconds
    state, rounds = 0x811C9DC5, 0
    while job.clock.now() < deadline:
        for byte in b"corral-spins-the-interpreter":  # FNV-1a, one byte at a time
            state = ((state ^ byte) * 0x01000193) & 0xFFFFFFFF
        rounds += 1
    return {"pid": os.getpid(), "rounds": rounds, "hash": state}


def note(path: str) -> int:
    """Append `job_id attempt pid` to `path` (one write: lines of workers never interleave)
    and return the attempt: the chaos test counts how often each job really ran."""
    job = current_job()
    assert job is not None
    line = f"{job.id} {job.attempt} {os.getpid()}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return job.attempt


def gather(*results: Any) -> dict[str, Any]:
    """A workflow step: what its parents passed it, and which process ran it."""
    return {"pid": os.getpid(), "got": list(results)}


def exit_process(code: int) -> None:
    sys.exit(code)


def interrupt() -> None:
    raise KeyboardInterrupt


def run_coordinator(args: argparse.Namespace) -> int:
    node = Coordinator(
        bind=args.bind,
        store=args.store,
        heartbeat_interval=args.heartbeat_interval,
        heartbeat_timeout=args.heartbeat_timeout,
        reaper_interval=args.reaper_interval,
        failover_timeout=args.failover_timeout,
        name=args.lease_name,
    ).start()
    partial = f"{args.address_file}.partial"
    with open(partial, "w", encoding="utf-8") as file:
        file.write(node.address)
    os.replace(partial, args.address_file)
    threading.Event().wait()  # until SIGKILL: this node exists to be killed
    return 0


def run_worker(args: argparse.Namespace) -> int:
    node = WorkerNode(
        args.connect.split(","),
        queues=args.queues.split(","),
        concurrency=args.concurrency,
        shutdown_grace=args.shutdown_grace,
        hostname=args.hostname,
        handlers={
            "sleep": sleep,
            "hold": hold,
            "stubborn": stubborn,
            "spin": spin,
            "note": note,
            "gather": gather,
            "exit": exit_process,
            "interrupt": interrupt,
        },
    )
    stop = threading.Event()
    # The handler only wakes the main thread: stop() asks actors and waits, which must not run
    # re-entrantly inside whatever the main thread was doing when the signal landed.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    node.start()
    while not stop.wait(0.5):
        pass
    logging.getLogger("node_script").info("signal received: stopping gracefully")
    node.stop()
    logging.getLogger("node_script").info("stopped")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    kinds = parser.add_subparsers(dest="kind", required=True)
    coordinator = kinds.add_parser("coordinator")
    coordinator.add_argument("address_file")
    coordinator.add_argument("--bind", default="tcp://127.0.0.1:*")
    coordinator.add_argument("--store", default="memory")
    coordinator.add_argument("--heartbeat-interval", type=float, default=0.2)
    coordinator.add_argument("--heartbeat-timeout", type=float, default=1.5)
    coordinator.add_argument("--reaper-interval", type=float, default=0.05)
    coordinator.add_argument("--failover-timeout", type=float, default=3.0)
    coordinator.add_argument("--lease-name", help="its name in the lease (PostgreSQL)")
    worker = kinds.add_parser("worker")
    worker.add_argument("connect", help="comma-separated: several coordinators")
    worker.add_argument("--queues", default="default", help="comma-separated")
    worker.add_argument("--concurrency", type=int, default=2)
    worker.add_argument("--hostname", default="node-script")
    worker.add_argument("--shutdown-grace", type=float, default=25.0)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s {args.kind}[{os.getpid()}] %(levelname)s %(name)s: %(message)s",
    )
    return run_coordinator(args) if args.kind == "coordinator" else run_worker(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
