"""Coordinator CPU with 1,000 idle workers connected, beating every 5 s.

    .venv/bin/python bench/many_workers.py [--workers 1000] [--drivers 4] [--seconds 30]

A coordinator process (memory store, default timings) and `--drivers` driver processes
(`_node.py raw-workers`). A `WorkerNode` per simulated worker would be too heavy, so each driver
holds its share of the workers as raw DEALER sockets on one thread with a `zmq.Poller`: each says
hello, registers on `default`, then keeps one `fetch` (count 1, wait 5 s) outstanding, sending
the next as soon as the previous one comes back empty, and beats every 5 s (first beat at a
random offset, each interval jittered by ±10%). Once `stats()` counts every worker live, the
bench waits 2 s, then reads the coordinator's CPU time (utime+stime from /proc/PID/stat) over
`--seconds` of this idle load. The issue's target is under 10% of one core.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import common

DEFAULT_WORKERS = 1_000
DEFAULT_DRIVERS = 4
DEFAULT_SECONDS = 30.0
BEAT_INTERVAL_S = 5.0  # the coordinator's default heartbeat_interval
FETCH_WAIT_S = 5.0
JITTER = 0.1
SETTLE_S = 2.0
REGISTER_TIMEOUT_S = 60.0


class _Simulated:
    """One raw worker: its socket, where it is in hello → register → fetch, when it beats."""

    def __init__(self, sock: Any, beat_interval: float, rng: random.Random) -> None:
        self.sock = sock
        self.worker_id = ""
        self.rid = 0
        self.step = "hello"
        self.fetch_rid = -1
        self.next_beat = time.monotonic() + rng.uniform(0, beat_interval)

    def send(self, body: dict[str, Any]) -> int:
        import msgpack

        self.rid += 1
        self.sock.send(msgpack.packb({**body, "rid": self.rid}))
        return self.rid

    def fetch(self) -> None:
        body = {"type": "fetch", "worker_id": self.worker_id, "count": 1, "wait": FETCH_WAIT_S}
        self.fetch_rid = self.send(body)

    def beat(self) -> None:
        body = {"type": "beat", "worker_id": self.worker_id, "state": "running"}
        self.send({**body, "active_job_ids": []})


def drive(
    address: str,
    count: int,
    beat_interval: float,
    ready: Callable[[str], None],
    stop: threading.Event,
) -> None:
    """Run `count` simulated workers until `stop`; call `ready(address)` once all registered.
    An error answer or a job handed out means the bench is broken: raise."""
    import msgpack
    import zmq

    rng = random.Random()
    context: zmq.Context[Any] = zmq.Context()
    workers: dict[Any, _Simulated] = {}
    poller = zmq.Poller()
    try:
        for _ in range(count):
            sock = context.socket(zmq.DEALER)
            sock.linger = 0
            sock.connect(address)
            worker = _Simulated(sock, beat_interval, rng)
            workers[sock] = worker
            poller.register(sock, zmq.POLLIN)
            worker.send(common.hello_body())
        registered = 0
        deadline = time.monotonic() + REGISTER_TIMEOUT_S
        while not stop.is_set():
            now = time.monotonic()
            if registered < count and now > deadline:
                raise common.BenchError(f"{registered}/{count} registered in {REGISTER_TIMEOUT_S}s")
            for worker in workers.values():
                if worker.step == "fetching" and now >= worker.next_beat:
                    worker.beat()
                    worker.next_beat = now + beat_interval * rng.uniform(1 - JITTER, 1 + JITTER)
            for sock, _ in poller.poll(200):
                worker = workers[sock]
                while True:
                    try:
                        answer = msgpack.unpackb(sock.recv(zmq.NOBLOCK), raw=False)
                    except zmq.Again:
                        break
                    if answer.get("type") == "error":
                        raise common.BenchError(f"worker {worker.worker_id}: {answer}")
                    if worker.step == "hello":
                        worker.worker_id = answer["worker_id"]
                        worker.step = "register"
                        worker.send(common.register_body(worker.worker_id))
                    elif worker.step == "register":
                        worker.step = "fetching"
                        worker.fetch()
                        registered += 1
                        if registered == count:
                            ready(address)
                    elif answer.get("rid") == worker.fetch_rid:
                        if answer.get("jobs"):
                            raise common.BenchError(f"idle worker was handed jobs: {answer}")
                        worker.fetch()
    finally:
        for sock in workers:
            sock.close(0)
        context.term()


def run(
    workers: int = DEFAULT_WORKERS,
    drivers: int = DEFAULT_DRIVERS,
    seconds: float = DEFAULT_SECONDS,
) -> dict[str, Any]:
    """Connect `workers` simulated workers; the coordinator's CPU share over `seconds` idle."""
    nodes: list[common.NodeProcess] = []
    try:
        coordinator = common.start_coordinator_process()
        nodes.append(coordinator)
        shares = [workers // drivers + (i < workers % drivers) for i in range(drivers)]
        for share in shares:
            nodes.append(
                common.spawn_node(
                    "raw-workers",
                    *("--connect", coordinator.address, "--count", str(share)),
                    timeout=REGISTER_TIMEOUT_S,
                )
            )
        common.wait_for_workers(coordinator.address, workers, timeout=REGISTER_TIMEOUT_S)
        time.sleep(SETTLE_S)
        cpu_before = coordinator.cpu_seconds()
        drivers_before = [d.cpu_seconds() for d in nodes[1:]]
        started = time.perf_counter()
        time.sleep(seconds)
        elapsed = time.perf_counter() - started
        cpu_after = coordinator.cpu_seconds()
        drivers_after = [d.cpu_seconds() for d in nodes[1:]]
        with contextlib.closing(common.client(coordinator.address)) as client:
            connected = common.live_workers(client.stats())
        rss_kib = coordinator.rss_kib()
    finally:
        common.stop_all(nodes[::-1])
    if cpu_before is None or cpu_after is None:
        raise common.BenchError("no /proc CPU times for the coordinator")
    pairs = zip(drivers_after, drivers_before, strict=True)
    driver_cpu = sum(a - b for a, b in pairs if a is not None and b is not None)
    return {
        "workers": workers,
        "drivers": drivers,
        "seconds": elapsed,
        "workers_connected": connected,
        "coordinator_cpu_pct_1k_workers": (cpu_after - cpu_before) / elapsed * 100,
        "drivers_cpu_pct": driver_cpu / elapsed * 100,
        "coordinator_rss_mib": rss_kib / 1024 if rss_kib else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    parser.add_argument("--drivers", type=int, default=DEFAULT_DRIVERS)
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS)
    args = parser.parse_args()
    result = run(args.workers, args.drivers, args.seconds)
    print(
        f"{result['workers_connected']}/{args.workers} workers connected: coordinator"
        f" {result['coordinator_cpu_pct_1k_workers']:.1f}% of a core over"
        f" {result['seconds']:.0f} s idle (drivers {result['drivers_cpu_pct']:.1f}%)"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
