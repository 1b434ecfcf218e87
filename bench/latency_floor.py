"""The latency floor: an enqueue -> result round with bare pyzmq and no job logic.

    .venv/bin/python bench/latency_floor.py [--rounds 500] [--warmup 50]

The same three processes and four trips as `latency.py`, with nothing else: this process
sends `enqueue`, reads the reply, sends `get` and reads the result on its own DEALER; a ROUTER
(`bench/_node.py floor-coordinator`, one thread, no store, no actors) answers the enqueue and
hands the job to the parked fetch of a worker (`bench/_node.py floor-worker`), whose socket
thread passes it to a handler thread (a worker must not run handlers on its socket thread) and
sends the result it gets back through a queue and a wake-up pipe; the coordinator then answers
the `get`. What corral adds on top of this is its own cost; this is what the machine costs.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import common
import msgpack
import zmq

DEFAULT_ROUNDS = 500
DEFAULT_WARMUP = 50
DEFAULT_TIMEOUT_S = 60.0


def run(
    rounds: int = DEFAULT_ROUNDS, warmup: int = DEFAULT_WARMUP, timeout: float = DEFAULT_TIMEOUT_S
) -> dict[str, Any]:
    coordinator = common.spawn_node("floor-coordinator", "--bind", common.LOOPBACK_ANY_PORT)
    worker = None
    context = zmq.Context()
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.RCVTIMEO, int(timeout * 1000))
    samples: list[float] = []
    try:
        worker = common.spawn_node("floor-worker", "--connect", coordinator.address)
        socket.connect(coordinator.address)
        deadline = time.perf_counter() + timeout
        for i in range(warmup + rounds):
            if time.perf_counter() >= deadline:
                raise common.BenchError(f"latency floor over its {timeout} s deadline at {i}")
            started = time.perf_counter()
            socket.send(msgpack.packb({"type": "enqueue", "rid": i, "args": [i]}))
            job_id = msgpack.unpackb(socket.recv())["job_id"]
            socket.send(msgpack.packb({"type": "get", "rid": i, "job_id": job_id}))
            result = msgpack.unpackb(socket.recv())["result"]
            took = time.perf_counter() - started
            if result != i * i:
                raise common.BenchError(f"latency floor round {i}: result {result}")
            if i >= warmup:
                samples.append(took)
    except zmq.Again:
        raise common.BenchError("latency floor: no reply before the deadline") from None
    finally:
        socket.close(0)
        context.term()
        common.stop_all([node for node in (worker, coordinator) if node is not None])
    return {"rounds": rounds, "warmup": warmup, **common.summary_ms(samples)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP)
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S)
    args = parser.parse_args()
    result = run(args.rounds, args.warmup, args.timeout)
    print(
        f"latency floor over {result['rounds']} rounds: p50 {result['p50_ms']:.2f} ms,"
        f" p99 {result['p99_ms']:.2f} ms"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
