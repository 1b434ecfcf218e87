"""Faults: the `corral_faults` fixture, breaking a simulated cluster on purpose.

Thin wrappers over `Cluster` (nodes/cluster.py) under the names an operator would use. A
worker picked without a name comes from a `random.Random` of the test's seed, kept apart from
the cluster's own, so choosing a victim does not shift what the cluster draws next.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the plugin imports this module lazily, from a fixture
    from collections.abc import Callable

    from nodes.client import Client
    from nodes.cluster import Cluster

COORDINATOR = "coordinator"  # what `partition` calls the coordinator's end of every connection


class Faults:
    """Kill, stop and add workers, restart the coordinator, cut nodes off the network."""

    def __init__(self, cluster: Cluster, seed: int) -> None:
        self._cluster = cluster
        self._rng = random.Random(seed)
        self._client: Client | None = None
        self._gone: dict[str, str] = {}  # worker id -> name of the nodes killed or stopped here

    # -- workers ------------------------------------------------------------------------------

    def workers(self) -> list[str]:
        """The names of the live worker nodes (`worker-1`, ...), in the order they started."""
        return list(self._cluster.workers)

    def worker_of(self, job_id: str) -> str | None:
        """The name of the worker running the job (or that ran its last attempt), if any.

        Read from the store and the nodes themselves, so asking does not move virtual time
        (a client's request would: it drives the simulation while it waits)."""
        stored = self._cluster.store.get(str(job_id))
        worker_id = stored.get("worker_id") if stored else None
        if not worker_id:
            return None
        names = {node.worker_id: name for name, node in self._cluster.workers.items()}
        names.update(self._gone)
        if worker_id not in names:  # a node ended some other way: ask the coordinator
            workers = self._requests().stats()["workers"]
            names.update({w["worker_id"]: w["hostname"] for w in workers})
        return names.get(worker_id)

    def kill_worker(self, name: str | None = None) -> str:
        """The worker's process dies (SIGKILL): its connection closes and it says nothing, so
        its running jobs come back only when the coordinator's heartbeat timeout (30 s by
        default, virtual) declares it lost. Without a name, a worker chosen by the seed.
        Returns the name killed."""
        victim = self._pick(name)
        self._remember(victim)
        self._cluster.kill_worker(victim)
        return victim

    def stop_worker(self, name: str | None = None, timeout: float | None = None) -> str:
        """Graceful stop (SIGTERM): running jobs get `timeout` (the worker's shutdown grace
        unless given) to finish, the rest fail as retryable, then it deregisters. Returns the
        name stopped."""
        victim = self._pick(name)
        self._remember(victim)
        self._cluster.stop_worker(victim, timeout)
        return victim

    def add_worker(
        self,
        name: str | None = None,
        handlers: dict[str, Callable[..., Any]] | None = None,
        **options: Any,
    ) -> str:
        """Start one more worker (the cluster's handlers unless given; `options` are
        WorkerNode's, e.g. `queues=("emails",)`, `concurrency=1`). Returns its name."""
        node = self._cluster.add_worker(name, handlers, **options)
        return next(each for each, worker in self._cluster.workers.items() if worker is node)

    def _remember(self, name: str) -> None:
        worker_id = self._cluster.workers[name].worker_id
        if worker_id:
            self._gone[worker_id] = name

    def _pick(self, name: str | None) -> str:
        if name is not None:
            if name not in self._cluster.workers:
                raise LookupError(f"no live worker {name!r}; live: {self.workers()}")
            return name
        if not self._cluster.workers:
            raise LookupError("no live worker to pick")
        return self._rng.choice(self.workers())

    # -- the coordinator ----------------------------------------------------------------------

    def restart_coordinator(self) -> None:
        """The coordinator dies and a new one starts on the same store (as with a durable
        store); workers reconnect and report the jobs they still run."""
        self._cluster.restart_coordinator()

    # -- the network --------------------------------------------------------------------------

    def partition(self, node: str) -> None:
        """Cut `node` off: a worker's or client's name, or "coordinator" for every connection
        to it. Frames to and from it are dropped (not delayed) until `heal(node)`."""
        self._cluster.network.partition(self._address(node))

    def heal(self, node: str) -> None:
        """Undo `partition(node)`; what was dropped meanwhile stays lost."""
        self._cluster.network.heal(self._address(node))

    @contextmanager
    def partitioned(self, node: str) -> Iterator[None]:
        """`partition(node)` for the length of a `with` block."""
        self.partition(node)
        try:
            yield
        finally:
            self.heal(node)

    def _address(self, node: str) -> str:
        if node == COORDINATOR:
            return self._cluster.addresses[0]
        return node

    def _requests(self) -> Client:
        if self._client is None:
            self._client = self._cluster.client("corral-faults")
        return self._client
