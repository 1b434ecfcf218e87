"""Cluster: a coordinator, workers and clients in one process over the in-process network.

With a `ManualClock` the run is a deterministic simulation: the network delivers one frame at
a time and waits until every actor is idle before the next, handlers take turns on their
threads (actors/turns.py) in between, and virtual time moves only when nothing else can happen,
so a seed replays exactly and simulated hours take seconds.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from typing import Any

from actors.base import Activity
from actors.clock import Clock, ManualClock, SystemClock
from actors.coordinator_settings import CoordinatorSettings
from actors.events import EventHub
from actors.leadership import FAILOVER_TIMEOUT_S
from actors.limits import LimitRule
from actors.store.base import Store
from actors.store.memory import MemoryStore
from actors.store.shared import MemoryDatabase
from actors.turns import Turns
from actors.worker import Handler
from nodes.client import Client
from nodes.coordinator import Coordinator
from nodes.leadership.database import InMemory
from nodes.worker_node import WorkerNode
from transport.base import Connector
from transport.endpoints import Endpoints
from transport.inproc import InprocNetwork

COORDINATOR_ADDRESS = "inproc://coordinator"
SETTLE_TIMEOUT_S = 30.0


class Stuck(RuntimeError):
    """The simulation cannot make progress (no frame, no timer) or an actor never went idle."""


class LeaderStore:
    """Reads of a shared database's jobs, through whichever coordinator serves now."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def __getattr__(self, name: str) -> Any:
        leader = self.cluster.leader()
        if leader is None or leader.ctx is None:
            raise LookupError(f"no coordinator leads (seed={self.cluster.seed})")
        return getattr(leader.ctx.store, name)


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
        store: Store | MemoryDatabase | None = None,
        coordinators: int = 1,
        failover_timeout: float = FAILOVER_TIMEOUT_S,
        job_limits: Sequence[LimitRule] = (),
        **worker_options: Any,
    ) -> None:
        self.clock = clock or SystemClock()
        self.manual = isinstance(self.clock, ManualClock)
        self.seed = seed
        self.job_limits = tuple(job_limits)  # the coordinators' limits per job type or queue
        self.rng = random.Random(seed)
        self.activity = Activity()
        self.turns = Turns(self.activity) if self.manual else None
        self.events = EventHub()  # outlives coordinator restarts, so observers see everything
        self.network = InprocNetwork(self._child_rng(), auto=not self.manual)
        # Several coordinators share a database (a MemoryDatabase standing in for PostgreSQL):
        # one leads, the others stand by; peers hold every address (docs/HA.md).
        self.addresses = (
            (COORDINATOR_ADDRESS,)
            if coordinators == 1
            else tuple(f"{COORDINATOR_ADDRESS}-{n}" for n in range(1, coordinators + 1))
        )
        self.database = store if isinstance(store, MemoryDatabase) else None
        if self.database is None and coordinators > 1:
            self.database = MemoryDatabase(self.clock)
        self.failover_timeout = failover_timeout
        self.coordinators: dict[str, Coordinator] = {}
        self.cut_off: set[str] = set()  # coordinators the database cannot be reached from
        self.store: Any = LeaderStore(self) if self.database else store or MemoryStore()
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
        for address in self.addresses:
            self.start_coordinator(address)
        if self.database is not None:  # the first one takes the lease: wait until it serves
            self.run_until(lambda: self.leader() is not None, within=60.0)
        for _ in range(self.initial_workers):
            self.add_worker()
        self.settle()
        return self

    def start_coordinator(self, address: str = COORDINATOR_ADDRESS) -> Coordinator:
        if self.database is None:  # a durable store's commits count as work
            track = getattr(self.store, "track", None)
            if track is not None:
                track(self.activity)
        database = self.database and InMemory(self.database, lambda: address in self.cut_off)
        coordinator = Coordinator(
            address,
            store=database or self.store,
            settings=self.settings,
            transport=self.network.bind(address),
            clock=self.clock,
            rng=self._child_rng(),
            activity=self.activity,
            events=self.events,
            name=address.removeprefix("inproc://"),
            failover_timeout=self.failover_timeout,
            job_limits=self.job_limits,
        ).start()
        self.coordinators[address] = coordinator
        if self.database is None:
            self.coordinator = coordinator
        return coordinator

    def leader(self) -> Coordinator | None:
        """The coordinator serving now (with a shared database), if any."""
        now = self.clock.now()
        serving = [
            c for c in self.coordinators.values() if c.leadership and c.leadership.serving(now)
        ]
        assert len(serving) <= 1, f"two leaders at once (seed={self.seed})"
        return serving[0] if serving else None

    def _connector(self, node: str) -> Connector | Endpoints[Connector]:
        """What a peer named `node` reaches the coordinators with: every address, when several."""
        if len(self.addresses) == 1:
            return self.network.connector(COORDINATOR_ADDRESS, node=node)
        network = self.network
        return Endpoints.of(self.addresses, lambda address: network.connector(address, node=node))

    def add_worker(
        self, name: str | None = None, handlers: dict[str, Handler] | None = None, **options: Any
    ) -> WorkerNode:
        """Start one more worker node (named `worker-N` unless named)."""
        name = name or f"worker-{next(self._names)}"
        worker = WorkerNode(
            self.addresses,
            handlers=handlers if handlers is not None else self.handlers,
            connector=self._connector(name),
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
            connector=self._connector(name),
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

    def kill_coordinator(self, address: str = COORDINATOR_ADDRESS) -> None:
        """The coordinator's process dies: its socket closes; a lease it held lapses by itself."""
        self.coordinators.pop(address).stop(release=False)
        if address == COORDINATOR_ADDRESS:
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
        for coordinator in self.coordinators.values():
            coordinator.stop()
        self.network.close()
        if self.turns is not None:
            self.turns.close()

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
