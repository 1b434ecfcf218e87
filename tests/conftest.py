"""Shared fixtures: a coordinator factory on a random loopback port, a raw protocol peer, and
`wait_for`, the one helper every test polls a condition with.

Everything here waits on a condition with a deadline; nothing sleeps (a sleep is either too
short on a loaded machine or time wasted on an idle one).
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


def _cache_bytecode_outside_the_tree() -> None:
    """Under PYTHONDONTWRITEBYTECODE (or -B) nothing is ever cached, so every node and `corral`
    process a test starts compiles the whole package again (~0.3 s of CPU each, hundreds of
    processes a run). Cache it outside the source tree instead, for this process and its
    children; the tree stays free of __pycache__. A set PYTHONPYCACHEPREFIX is left alone."""
    if not sys.dont_write_bytecode or sys.pycache_prefix or os.environ.get("PYTHONPYCACHEPREFIX"):
        return
    prefix = str(Path(tempfile.gettempdir()) / f"corral-tests-pycache-{os.getuid()}")
    sys.pycache_prefix, sys.dont_write_bytecode = prefix, False
    os.environ["PYTHONPYCACHEPREFIX"] = prefix
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


_cache_bytecode_outside_the_tree()  # before the package is imported below

from nodes import Coordinator  # noqa: E402
from tests.pg import postgres  # noqa: E402, F401 - the session's private PostgreSQL cluster

STOP_DEADLINE_S = 10.0

# Fast defaults for tests: promotions every 50 ms; no worker is declared dead inside a test.
COORDINATOR_TEST_DEFAULTS: dict[str, Any] = {
    "heartbeat_timeout": 10.0,
    "reaper_interval": 0.05,
}


def wait_for(
    predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.01, what: str = ""
) -> Any:
    """Poll `predicate` until it returns something truthy (returned) or fail at the deadline."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            label = what or getattr(predicate, "__name__", repr(predicate))
            pytest.fail(f"condition not met within {timeout} s: {label} (last value {value!r})")
        pause.wait(interval)


CoordinatorFactory = Callable[..., Coordinator]


@pytest.fixture
def coordinator() -> Iterator[CoordinatorFactory]:
    """Factory: `coordinator(**overrides)` starts a Coordinator on `tcp://127.0.0.1:*`.

    Keyword arguments go to `nodes.Coordinator` (settings such as `heartbeat_timeout` as well as
    `max_message_size`, `limits`, ...). Every coordinator is stopped at teardown within
    STOP_DEADLINE_S, or the test fails.
    """
    started: list[Coordinator] = []

    def start(**overrides: Any) -> Coordinator:
        options = {**COORDINATOR_TEST_DEFAULTS, **overrides}
        node = Coordinator(bind="tcp://127.0.0.1:*", **options)
        node.start()
        started.append(node)
        assert "*" not in node.address, f"coordinator did not report its port: {node.address}"
        return node

    yield start

    stuck = []
    for node in reversed(started):
        stopper = threading.Thread(target=node.stop, name="coordinator-stop", daemon=True)
        stopper.start()
        stopper.join(STOP_DEADLINE_S)
        if stopper.is_alive():
            stuck.append(node.address)
    assert not stuck, f"coordinators did not stop within {STOP_DEADLINE_S} s: {stuck}"


class RawPeer:
    """A DEALER speaking PROTOCOL.md with nothing but `zmq` and `msgpack` (no corral imports).

    `request` sends one single-frame msgpack map with a fresh rid and returns the map that
    answers that rid; frames for other rids are kept for `receive`/`reply_to`.
    """

    def __init__(self, context: Any, address: str) -> None:
        import zmq

        self.socket = context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(address)
        self._next_rid = 0
        self._unclaimed: list[dict[str, Any]] = []

    def rid(self) -> int:
        self._next_rid += 1
        return self._next_rid

    def send(self, body: dict[str, Any]) -> None:
        import msgpack

        self.socket.send(msgpack.packb(body, use_bin_type=True))

    def send_frames(self, *frames: bytes) -> None:
        self.socket.send_multipart(list(frames))

    def receive(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next frame as a map, or fail after `timeout` s."""
        if self._unclaimed:
            return self._unclaimed.pop(0)
        return self._receive_frame(timeout)

    def _receive_frame(self, timeout: float) -> dict[str, Any]:
        import msgpack

        if not self.socket.poll(int(timeout * 1000)):
            pytest.fail(f"no frame from the coordinator within {timeout} s")
        frames = self.socket.recv_multipart()
        assert len(frames) == 1, f"a reply must be exactly one frame, got {len(frames)}"
        body = msgpack.unpackb(frames[0], raw=False)
        assert isinstance(body, dict), f"a reply must be a map, got {body!r}"
        return body

    def nothing_within(self, timeout: float) -> bool:
        """True when no frame arrives within `timeout` s (a bounded poll, not a sleep)."""
        return not self._unclaimed and not self.socket.poll(int(timeout * 1000))

    def reply_to(self, rid: Any, timeout: float = 5.0) -> dict[str, Any]:
        """The frame answering `rid`; other frames are kept for later."""
        for index, body in enumerate(self._unclaimed):
            if body.get("rid") == rid:
                return self._unclaimed.pop(index)
        deadline = time.monotonic() + timeout
        while True:
            body = self._receive_frame(max(0.0, deadline - time.monotonic()))
            if body.get("rid") == rid:
                return body
            self._unclaimed.append(body)

    def request(self, kind: str, timeout: float = 5.0, **fields: Any) -> dict[str, Any]:
        """Send `{type: kind, rid, **fields}` and return its answer (reply or error)."""
        rid = self.rid()
        self.send({"type": kind, "rid": rid, **fields})
        return self.reply_to(rid, timeout)

    def close(self) -> None:
        self.socket.close(linger=0)


@pytest.fixture
def raw_peer() -> Iterator[Callable[[str], RawPeer]]:
    """Factory: `raw_peer(address)` connects a RawPeer; all are closed at teardown."""
    import zmq

    context = zmq.Context()
    peers: list[RawPeer] = []

    def connect(address: str) -> RawPeer:
        peer = RawPeer(context, address)
        peers.append(peer)
        return peer

    yield connect
    for peer in peers:
        peer.close()
    context.term()
