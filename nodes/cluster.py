"""Cluster: a coordinator, workers and clients in one process over the in-process network.

With a `ManualClock` the run is a deterministic simulation: the network delivers one frame at
a time and waits until every actor is idle before the next, handlers take turns on their
threads (actors/turns.py) in between, and virtual time moves only when nothing else can happen,
so a seed replays exactly and simulated hours take seconds.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

from actors.base import Activity
from actors.clock import Clock, ManualClock, SystemClock
from actors.coordinator_settings import CoordinatorSettings
from actors.events import EventHub
from actors.store.base import Store
from actors.store.memory import MemoryStore
from actors.turns import Turns
from actors.worker import Handler
from nodes.client import Client
from nodes.coordinator import Coordinator
from nodes.worker_node import WorkerNode
from transport.inproc import InprocNetwork

COORDINATOR_ADDRESS = "inproc://coordinator"
SETTLE_TIMEOUT_S = 30.0


class Stuck(RuntimeError):
    """The simulation cannot make progress (no frame, no timer) or an actor never went idle."""


class Cluster:
    """A whole corral cluster inside one process."""

    def __init__(
        self,
        workers: int = 3,
        *,
        clock: Clock | None = None,
        seed: int = 0,
        handlers: dict[str, Handler] | None = None,
        queues: tuple[str, ...] = ("default",),
        concurrency: int = 4,
        settings: CoordinatorSettings | None = None,
        store: Store | None = None,
        **worker_options: Any,
    ) -> None:
        self.clock = clock or SystemClock()
        self.manual = isinstance(self.clock, ManualClock)
        self.seed = seed
        self.rng = random.Random(seed)
        self.activity = Activity()
        self.turns = Turns(self.activity) if self.manual else None
        self.events = EventHub()  # outlives coordinator restarts, so observers see everything
        self.network = InprocNetwork(self._child_rng(), auto=not self.manual)
        self.store = store or MemoryStore()
        self.settings = settings or CoordinatorSettings()
        self.handlers = dict(handlers or {})
        self.worker_defaults: dict[str, Any] = {
            "queues": queues,
            "concurrency": concurrency,
            **worker_options,
        }
        self.initial_workers = workers
        self.coordinator: Coordinator | None = None
        self.workers: dict[str, WorkerNode] = {}
        self._clients: list[Client] = []
        self._names = itertools.count(1)

    def _child_rng(self) -> random.Random:
        return random.Random(self.rng.getrandbits(64))

    # -- building -----------------------------------------------------------------------------

    def start(self) -> Cluster:
        self.start_coordinator()
        for _ in range(self.initial_workers):
            self.add_worker()
        self.settle()
        return self

    def start_coordinator(self) -> Coordinator:
        track = getattr(self.store, "track", None)  # a durable store's commits count as work
        if track is not None:
            track(self.activity)
        self.coordinator = Coordinator(
            COORDINATOR_ADDRESS,
            store=self.store,
            settings=self.settings,
            transport=self.network.bind(COORDINATOR_ADDRESS),
            clock=self.clock,
            rng=self._child_rng(),
            activity=self.activity,
            events=self.events,
        ).start()
        return self.coordinator

    def add_worker(
        self, name: str | None = None, handlers: dict[str, Handler] | None = None, **options: Any
    ) -> WorkerNode:
        """Start one more worker node (named `worker-N` unless named)."""
        name = name or f"worker-{next(self._names)}"
        worker = WorkerNode(
            COORDINATOR_ADDRESS,
            handlers=handlers if handlers is not None else self.handlers,
            connector=self.network.connector(COORDINATOR_ADDRESS, node=name),
            clock=self.clock,
            rng=self._child_rng(),
            activity=self.activity,
            pump=self.step if self.manual else None,
            executor=self.turns.executor() if self.turns is not None else None,
            hostname=name,
            name=name,
            **{**self.worker_defaults, **options},
        )
        self.workers[name] = worker.start()
        return worker

    def client(self, name: str | None = None) -> Client:
        """A client connected over the in-process network."""
        name = name or f"client-{len(self._clients) + 1}"
        client = Client(
            connector=self.network.connector(COORDINATOR_ADDRESS, node=name),
            pump=self.step if self.manual else None,
        )
        self._clients.append(client)
        return client

    # -- faults -------------------------------------------------------------------------------

    def kill_worker(self, name: str) -> None:
        """The worker process dies: its connections close, nothing is said to anyone."""
        self.network.kill(name)
        self.workers.pop(name).kill()

    def stop_worker(self, name: str, timeout: float | None = None) -> None:
        """Graceful stop (SIGTERM): finish or fail running jobs, deregister."""
        self.workers.pop(name).stop(timeout)

    def kill_coordinator(self) -> None:
        assert self.coordinator is not None
        self.coordinator.stop()
        self.coordinator = None

    def restart_coordinator(self, store: Store | None = None) -> Coordinator:
        """Kill the coordinator and start a new one (same store unless another is given)."""
        if self.coordinator is not None:
            self.kill_coordinator()
        if store is not None:
            self.store = store
        return self.start_coordinator()

    # -- driving the simulation ---------------------------------------------------------------

    def settle(self) -> None:
        """Run handlers' turns, then frames, one at a time, each after every actor went idle
        and no handler held the turn, until neither is left."""
        if self.turns is None:
            return
        while True:
            if not (
                self.turns.wait_free(SETTLE_TIMEOUT_S)
                and self.activity.wait_idle(SETTLE_TIMEOUT_S)
            ):
                raise Stuck(f"actors still busy after {SETTLE_TIMEOUT_S} s (seed={self.seed})")
            if not (self.turns.grant_next() or self.network.deliver_one()):
                return

    def step(self) -> float:
        """Settle, then fire the next timer (moving virtual time); returns virtual now."""
        self.settle()
        assert isinstance(self.clock, ManualClock)
        if not self.clock.fire_next(float("inf")):
            raise Stuck(f"nothing left to happen (seed={self.seed})")
        self.settle()
        return self.clock.now()

    def advance(self, seconds: float) -> None:
        """Move virtual time forward, firing every timer due on the way in order."""
        assert isinstance(self.clock, ManualClock)
        self.settle()
        self.clock.advance(seconds, between=self.settle)
        self.settle()

    def run_until(self, condition: Any, within: float = 3600.0) -> None:
        """Step virtual time until `condition()` holds; Stuck after `within` virtual seconds."""
        self.settle()
        deadline = self.clock.now() + within
        while not condition():
            if self.clock.now() > deadline:
                raise Stuck(f"condition not met within {within} virtual s (seed={self.seed})")
            self.step()

    # -- lifecycle ----------------------------------------------------------------------------

    def stop(self) -> None:
        for client in self._clients:
            client.close()
        for worker in list(self.workers.values()):
            worker.kill()
        self.workers.clear()
        if self.coordinator is not None:
            self.coordinator.stop()
        self.network.close()
        if self.turns is not None:
            self.turns.close()

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
