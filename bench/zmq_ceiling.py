"""The ceiling: raw pyzmq DEALER <-> ROUTER request/reply with msgpack envelopes.

    .venv/bin/python bench/zmq_ceiling.py [--requests 20000]

A ROUTER in its own process (`bench/_node.py zmq-echo`) decodes each request and answers with an
encoded reply; this process is a DEALER over tcp 127.0.0.1 that packs a job-sized envelope per
request and unpacks every reply. Window 1: one request outstanding (also reports round-trip
percentiles). Window 100: up to 100 outstanding. No corral code runs, so this is what any Python
server on this machine can do per message, and the reference the
~100 us-per-job budget (bench/README.md) is set against.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import common
import msgpack
import zmq

DEFAULT_REQUESTS = 20_000
WARMUP_REQUESTS = 500
WINDOWS = (1, 100)
DEFAULT_TIMEOUT_S = 60.0


def _request(rid: int) -> bytes:
    return msgpack.packb(
        {
            "type": "enqueue",
            "rid": rid,
            "job": {"type": "noop", "args": [rid], "queue": "default", "max_attempts": 3},
        }
    )


def _run_window(
    socket: zmq.Socket[bytes], requests: int, window: int, deadline: float
) -> dict[str, Any]:
    """`requests` round trips with up to `window` outstanding, all before `deadline`."""
    sent_at: dict[int, float] = {}
    samples: list[float] = []
    next_rid = 0
    done = 0
    started = time.perf_counter()
    while done < requests:
        while next_rid < requests and len(sent_at) < window:
            sent_at[next_rid] = time.perf_counter()
            socket.send(_request(next_rid))
            next_rid += 1
        # a blocking recv (bounded by RCVTIMEO) for the first reply: a poll() first costs
        # ~30 us more per round trip at window 1; then drain whatever else has arrived
        flags = 0
        while True:
            try:
                frame = socket.recv(flags)
            except zmq.Again:
                if flags == 0:
                    raise common.BenchError(
                        f"zmq window {window}: no reply before the deadline"
                    ) from None
                break
            flags = zmq.NOBLOCK
            reply = msgpack.unpackb(frame)
            samples.append(time.perf_counter() - sent_at.pop(reply["rid"]))
            done += 1
        if time.perf_counter() >= deadline:
            raise common.BenchError(f"zmq window {window}: over the deadline at {done} replies")
    elapsed = time.perf_counter() - started
    return {
        "window": window,
        "requests": requests,
        "elapsed_s": elapsed,
        "per_s": requests / elapsed,
        **common.summary_ms(samples),
    }


def run(requests: int = DEFAULT_REQUESTS, timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
    server = common.spawn_node("zmq-echo", "--bind", common.LOOPBACK_ANY_PORT)
    context = zmq.Context()
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    try:
        socket.connect(server.address)
        socket.setsockopt(zmq.RCVTIMEO, int(timeout * 1000))
        deadline = time.perf_counter() + timeout
        _run_window(socket, WARMUP_REQUESTS, 1, deadline)
        results = {f"window{w}": _run_window(socket, requests, w, deadline) for w in WINDOWS}
    finally:
        socket.close(0)
        context.term()
        server.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=DEFAULT_REQUESTS)
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S)
    args = parser.parse_args()
    results = run(args.requests, args.timeout)
    for result in results.values():
        print(
            f"window {result['window']:>3}: {result['per_s']:,.0f} req/s,"
            f" p50 {result['p50_ms'] * 1000:.0f} us, p99 {result['p99_ms'] * 1000:.0f} us"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
