"""Launch one corral node (or a raw ZeroMQ echo server) in its own process, for the benchmarks.

    python bench/_node.py coordinator --bind tcp://127.0.0.1:* --store memory [--profile FILE]
        [--heartbeat-interval S] [--heartbeat-timeout S] [--reaper-interval S]
        [--failover-timeout S] [--name NAME]
    python bench/_node.py worker --connect tcp://127.0.0.1:PORT [tcp://...] --concurrency 16
    python bench/_node.py raw-workers --connect tcp://127.0.0.1:PORT --count 250
    python bench/_node.py gateway --connect tcp://127.0.0.1:PORT --bind 127.0.0.1:0
    python bench/_node.py zmq-echo --bind tcp://127.0.0.1:*
    python bench/_node.py floor-coordinator --bind tcp://127.0.0.1:*
    python bench/_node.py floor-worker --connect tcp://127.0.0.1:PORT

Each node prints one line `READY <address>` on stdout once it is up, then runs until SIGTERM or
SIGINT (or until its stdin closes, so an orphan never outlives the bench), stops and exits 0.
A coordinator given a PostgreSQL URL as store, with `--failover-timeout` and `--name`, shares
that database with others (it prints READY once bound, leading or standing by); a worker given
several endpoints follows whichever of them leads.
A gateway (the OJS HTTP binding, nodes/gateway) prints its base URL (`http://127.0.0.1:PORT`)
as its address.
With `--profile FILE` a coordinator, worker or gateway runs every one of its threads (actors,
the ZeroMQ loop, handler pool, the gateway's uvicorn loop) under cProfile and writes the
merged stats to FILE on exit.
`raw-workers` simulates idle workers with raw DEALER sockets (see many_workers.py); it prints
READY once every one of them is registered.
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import logging
import os
import pstats
import signal
import sys
import threading
import time
from typing import Any

STOP_POLL_S = 0.2


def _stop_event() -> threading.Event:
    """An event set by SIGTERM, SIGINT, or the parent closing our stdin."""
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    fd = sys.stdin.fileno()

    def watch_stdin() -> None:
        try:
            # raw os.read, not sys.stdin: a daemon thread blocked in a buffered read aborts
            # the interpreter at shutdown ("could not acquire lock for <stdin>")
            while os.read(fd, 4096):
                pass
        except (OSError, ValueError):
            pass
        stop.set()

    threading.Thread(target=watch_stdin, name="bench-stdin-watch", daemon=True).start()
    return stop


def _ready(address: str) -> None:
    print(f"READY {address}", flush=True)


def _wait(stop: threading.Event) -> None:
    # Event.wait with a timeout in a loop so signal handlers run promptly on the main thread.
    while not stop.wait(STOP_POLL_S):
        pass


class ThreadProfiles:
    """cProfile every thread started after `install()`, plus the caller's; merge at the end.

    cProfile only sees the thread that enabled it, and the coordinator does its work on pykka
    actor threads and the socket loop thread, so each new thread enables its own profiler.
    """

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()

    def install(self) -> None:
        threading.setprofile(self._start_in_thread)
        main = cProfile.Profile()
        self.profiles.append(main)
        main.enable()

    def _start_in_thread(self, frame: Any, event: str, arg: Any) -> None:
        sys.setprofile(None)
        profile = cProfile.Profile()
        with self._lock:
            self.profiles.append(profile)
        profile.enable()

    def dump(self, path: str) -> None:
        threading.setprofile(None)
        with self._lock:
            profiles = list(self.profiles)
        profiles[0].disable()
        stats: pstats.Stats | None = None
        for profile in profiles:
            try:
                if stats is None:
                    stats = pstats.Stats(profile)
                else:
                    stats.add(profile)
            except TypeError:  # a thread that never returned from a profiled call
                continue
        if stats is not None:
            stats.dump_stats(path)


def run_coordinator(args: argparse.Namespace) -> None:
    profiles = ThreadProfiles() if args.profile else None
    if profiles is not None:
        profiles.install()
    from nodes import Coordinator

    stop = _stop_event()
    options = {
        name: getattr(args, name)
        for name in (
            "heartbeat_interval", "heartbeat_timeout", "reaper_interval", "failover_timeout", "name"
        )
        if getattr(args, name) is not None
    }  # fmt: skip
    coordinator = Coordinator(bind=args.bind, store=args.store, **options).start()
    try:
        _ready(coordinator.address)
        _wait(stop)
    finally:
        coordinator.stop(timeout=5.0)
        if profiles is not None:
            profiles.dump(args.profile)


def run_worker(args: argparse.Namespace) -> None:
    profiles = ThreadProfiles() if args.profile else None
    if profiles is not None:
        profiles.install()
    from nodes import WorkerNode

    stop = _stop_event()
    connect = args.connect[0] if len(args.connect) == 1 else args.connect
    worker = WorkerNode(connect=connect, queues=args.queues, concurrency=args.concurrency)

    @worker.handler("noop")
    def noop(*args: Any) -> None:
        return None

    @worker.handler("anoop")
    async def anoop(*args: Any) -> None:  # an async handler: a task on the node's loop
        return None

    @worker.handler("square")
    def square(x: int) -> int:
        return x * x

    @worker.handler("sleep")
    def sleep(seconds: float) -> None:
        time.sleep(seconds)

    worker.start()
    try:
        _ready(",".join(args.connect))
        _wait(stop)
    finally:
        # kill, not stop: the bench is over and a graceful drain would only add seconds.
        worker.kill()
        if profiles is not None:
            profiles.dump(args.profile)


def _bound_router(bind: str) -> tuple[Any, Any]:
    """A context and a ROUTER bound to `bind`, announced with READY (the raw-zmq scenarios)."""
    import zmq

    context = zmq.Context()
    socket = context.socket(zmq.ROUTER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.bind(bind)
    _ready(socket.getsockopt_string(zmq.LAST_ENDPOINT))
    return context, socket


def run_zmq_echo(args: argparse.Namespace) -> None:
    """A ROUTER that decodes each msgpack request and answers with a msgpack reply."""
    import msgpack
    import zmq

    stop = _stop_event()
    context, socket = _bound_router(args.bind)
    poller = zmq.Poller()
    poller.register(socket, zmq.POLLIN)
    try:
        while not stop.is_set():
            if not poller.poll(int(STOP_POLL_S * 1000)):
                continue
            while True:
                try:
                    peer, frame = socket.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                body = msgpack.unpackb(frame)
                reply = {"type": "reply", "rid": body["rid"], "job_id": body["job"]["type"]}
                socket.send_multipart([peer, msgpack.packb(reply)])
    finally:
        socket.close(0)
        context.term()


def run_floor_coordinator(args: argparse.Namespace) -> None:
    """The latency floor's coordinator (latency_floor.py): one thread, no store, no actors.

    `enqueue` is answered at once and its job pushed to the worker that said `hello`; a
    worker's `done` answers the `get` waiting for that job, or waits for it.
    """
    import msgpack

    stop = _stop_event()
    context, socket = _bound_router(args.bind)
    worker: bytes | None = None
    unsent: list[bytes] = []  # jobs enqueued before the worker said hello
    gets: dict[int, tuple[bytes, Any]] = {}
    results: dict[int, Any] = {}
    job_ids = itertools.count()
    try:
        while not stop.is_set():
            if not socket.poll(int(STOP_POLL_S * 1000)):
                continue
            peer, frame = socket.recv_multipart()
            body = msgpack.unpackb(frame)
            if body["type"] == "hello":
                worker = peer
                for job in unsent:
                    socket.send_multipart([worker, job])
            elif body["type"] == "enqueue":
                job_id = next(job_ids)
                socket.send_multipart([peer, msgpack.packb({"rid": body["rid"], "job_id": job_id})])
                job = msgpack.packb({"id": job_id, "args": body["args"]})
                if worker is None:
                    unsent.append(job)
                else:
                    socket.send_multipart([worker, job])
            elif body["type"] == "get" and body["job_id"] in results:
                reply = {"rid": body["rid"], "result": results.pop(body["job_id"])}
                socket.send_multipart([peer, msgpack.packb(reply)])
            elif body["type"] == "get":
                gets[body["job_id"]] = (peer, body["rid"])
            elif body["type"] == "done" and body["job_id"] in gets:
                client, rid = gets.pop(body["job_id"])
                reply = {"rid": rid, "result": body["result"]}
                socket.send_multipart([client, msgpack.packb(reply)])
            elif body["type"] == "done":
                results[body["job_id"]] = body["result"]
    finally:
        socket.close(0)
        context.term()


def run_floor_worker(args: argparse.Namespace) -> None:
    """The latency floor's worker: a socket thread, and a handler thread that squares the job's
    argument and hands the result back through a queue and a wake-up pipe."""
    import queue

    import msgpack
    import zmq

    stop = _stop_event()
    context = zmq.Context()
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(args.connect)
    socket.send(msgpack.packb({"type": "hello"}))
    jobs: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
    done: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    wake_r, wake_w = os.pipe()

    def handle() -> None:
        while True:
            job = jobs.get()
            result = {"type": "done", "job_id": job["id"], "result": job["args"][0] ** 2}
            done.put(msgpack.packb(result))
            os.write(wake_w, b"\0")

    threading.Thread(target=handle, name="floor-handler", daemon=True).start()
    poller = zmq.Poller()
    poller.register(socket, zmq.POLLIN)
    poller.register(wake_r, zmq.POLLIN)
    _ready(args.connect)
    try:
        while not stop.is_set():
            ready = dict(poller.poll(int(STOP_POLL_S * 1000)))
            if wake_r in ready:
                os.read(wake_r, 4096)
                while not done.empty():
                    socket.send(done.get())
            if socket in ready:
                while True:
                    try:
                        jobs.put(msgpack.unpackb(socket.recv(zmq.NOBLOCK)))
                    except zmq.Again:
                        break
    finally:
        socket.close(0)
        context.term()


def run_gateway(args: argparse.Namespace) -> None:
    profiles = ThreadProfiles() if args.profile else None
    if profiles is not None:
        profiles.install()
    from nodes.gateway.node import Gateway

    stop = _stop_event()
    gateway = Gateway(connect=args.connect, bind=args.bind)
    gateway.start()
    try:
        _ready(gateway.url)
        _wait(stop)
    finally:
        gateway.stop()
        if profiles is not None:
            profiles.dump(args.profile)


def run_raw_workers(args: argparse.Namespace) -> None:
    import many_workers  # bench/ is on sys.path: it is this script's directory

    stop = _stop_event()
    many_workers.drive(args.connect, args.count, args.beat_interval, _ready, stop)


def main(argv: list[str] | None = None) -> None:
    from nodes.process.node import tune_gc

    tune_gc()  # as `corral run` does for every node process
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    coordinator = sub.add_parser("coordinator")
    coordinator.add_argument("--bind", default="tcp://127.0.0.1:*")
    coordinator.add_argument("--store", default="memory")
    coordinator.add_argument("--profile", metavar="FILE", help="write cProfile stats to FILE")
    for timing in (
        "--heartbeat-interval", "--heartbeat-timeout", "--reaper-interval", "--failover-timeout"
    ):  # fmt: skip
        coordinator.add_argument(timing, type=float, help="seconds (default: the coordinator's)")
    coordinator.add_argument("--name", help="its name in the lease (a shared database)")
    worker = sub.add_parser("worker")
    worker.add_argument("--connect", nargs="+", required=True, help="one or more endpoints")
    worker.add_argument("--concurrency", type=int, default=16)
    worker.add_argument("--queues", nargs="+", default=["default"])
    worker.add_argument("--profile", metavar="FILE", help="write cProfile stats to FILE")
    raw = sub.add_parser("raw-workers")
    raw.add_argument("--connect", required=True)
    raw.add_argument("--count", type=int, default=250)
    raw.add_argument("--beat-interval", type=float, default=5.0)
    gateway = sub.add_parser("gateway")
    gateway.add_argument("--connect", nargs="+", required=True, help="one or more endpoints")
    gateway.add_argument("--bind", default="127.0.0.1:0", help="host:port (port 0: any)")
    gateway.add_argument("--profile", metavar="FILE", help="write cProfile stats to FILE")
    echo = sub.add_parser("zmq-echo")
    echo.add_argument("--bind", default="tcp://127.0.0.1:*")
    floor = sub.add_parser("floor-coordinator")
    floor.add_argument("--bind", default="tcp://127.0.0.1:*")
    floor_worker = sub.add_parser("floor-worker")
    floor_worker.add_argument("--connect", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("CORRAL_BENCH_LOG", "WARNING"))
    runners = {
        "coordinator": run_coordinator,
        "worker": run_worker,
        "raw-workers": run_raw_workers,
        "gateway": run_gateway,
        "zmq-echo": run_zmq_echo,
        "floor-coordinator": run_floor_coordinator,
        "floor-worker": run_floor_worker,
    }
    runners[args.kind](args)


if __name__ == "__main__":
    main()
