"""Coordinator: the node that owns the queues and hands jobs to workers."""

from __future__ import annotations

import logging
import random
from dataclasses import replace
from typing import Any

from actors import base, states
from actors.base import Activity, Untracked
from actors.clock import Clock, SystemClock
from actors.context import CoordinatorContext, CoordinatorSettings, QueueDirectory
from actors.events import EventHub
from actors.mail import Hold, Orphans
from actors.queue_actor import QueueActor
from actors.reaper import ReaperActor
from actors.store.base import Store
from actors.store.memory import MemoryStore
from actors.waiters import JobWaiters
from actors.worker_supervisor import WorkerSupervisor
from nodes.dispatcher import Dispatcher
from nodes.stores import open_store
from transport.base import ServerTransport
from transport.codec import MAX_MESSAGE_SIZE_BYTES
from transport.validation import Limits

log = logging.getLogger(__name__)
DEFAULT_BIND = "tcp://127.0.0.1:5555"


class Coordinator:
    """Binds the ROUTER socket, runs the supervisor, reaper and one actor per queue.

    Everything can be injected (transport, clock, store, rng) so the same class runs over
    ZeroMQ in production and over the in-process network in simulation.
    """

    def __init__(
        self,
        bind: str = DEFAULT_BIND,
        *,
        store: Store | str = "memory",
        settings: CoordinatorSettings | None = None,
        max_message_size: int = MAX_MESSAGE_SIZE_BYTES,
        limits: Limits | None = None,
        transport: ServerTransport | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        activity: Activity | None = None,
        events: EventHub | None = None,
        **setting_overrides: Any,
    ) -> None:
        self.bind = bind
        self.settings = replace(settings or CoordinatorSettings(), **setting_overrides)
        self.max_message_size = max_message_size
        self.limits = limits or Limits(
            max_job_size=min(Limits().max_job_size, max_message_size),
            max_result_size=min(Limits().max_result_size, max_message_size),
        )
        self._store_spec = store
        self._transport = transport
        self.clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.activity = activity or Untracked()
        self.events = events or EventHub()
        self.ctx: CoordinatorContext | None = None
        self.dispatcher: Dispatcher | None = None
        self._actors: list[base.Mailbox] = []

    @classmethod
    def from_config(cls, path: str, node: str = "coordinator", **overrides: Any) -> Coordinator:
        """Build the coordinator described by node `node` of a YAML file."""
        from nodes.config import load_config

        return load_config(path).node(node).build(**overrides)

    @property
    def address(self) -> str:
        """The bound endpoint (with the real port when bound to port 0 / `*`)."""
        return getattr(self._transport, "bound_address", None) or self.bind

    def start(self) -> Coordinator:
        store = (
            open_store(self._store_spec) if isinstance(self._store_spec, str) else self._store_spec
        )
        if self._transport is None:
            from transport.zmq import ZmqServer

            self._transport = ZmqServer(self.bind, max_message_size=self.max_message_size)
        transport = self._transport
        def send_after_commit(peer: bytes, frame: bytes) -> None:
            store.after_commit(lambda: transport.send(peer, frame))

        outbox = transport.send if isinstance(store, MemoryStore) else send_after_commit
        ctx = CoordinatorContext(
            self.settings, self.clock, store, outbox, self.activity, self.rng, self.events
        )
        self.ctx = ctx

        def start_queue(name: str) -> base.Mailbox:
            mailbox = base.start(QueueActor, self.activity, ctx, name)
            self._actors.append(mailbox)
            return mailbox

        ctx.queues = QueueDirectory(start_queue, self.settings.max_queues)
        ctx.supervisor = base.start(WorkerSupervisor, self.activity, ctx)
        self._actors.append(ctx.supervisor)
        self._actors.append(base.start(ReaperActor, self.activity, ctx))
        self._restore(store)
        waiters = JobWaiters(self.clock, store, outbox, self.events)
        self.dispatcher = Dispatcher(ctx, waiters, self.limits, self.max_message_size)
        transport.start(self.dispatcher)
        log.info("coordinator listening on %s", self.address)
        return self

    def _restore(self, store: Store) -> None:
        """Restart over a durable store: waiting jobs go back to their queues, active ones
        wait (as orphans) for their workers to reconnect and resume them."""
        assert self.ctx is not None
        active = []
        for job in sorted(store.unfinished(), key=lambda job: (job.created_at, job.seq)):
            job.seq = next(self.ctx.seq)
            if job.state == states.ACTIVE:
                active.append(job)
            else:
                self.ctx.queues.get(job.queue).tell(Hold([job]))
        if active:
            self.ctx.supervisor.tell(Orphans(active))

    def stop(self, timeout: float = 5.0) -> None:
        """Close the socket, stop every actor, close the store. Idempotent."""
        if self._transport is not None:
            self._transport.close()
        for mailbox in reversed(self._actors):
            mailbox.stop(timeout)
        self._actors.clear()
        if self.ctx is not None:
            self.ctx.store.close()
            self.ctx = None

    def __enter__(self) -> Coordinator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
