"""What every coordinator actor shares: settings, clock, store, ids, events, the outbox, and
the addresses of the other actors."""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from actors.base import Activity, Mailbox
from actors.cancellation import Cancellations
from actors.clock import Clock
from actors.coordinator_settings import CoordinatorSettings
from actors.events import EventHub
from actors.ids import IdFactory
from actors.limits import Limiter, LimitRules
from actors.mail import RoutingUpdate
from actors.routing import WorkerProfile
from actors.states import ACTIVE
from actors.store.base import Store
from transport.codec import MAX_MESSAGE_SIZE_BYTES
from transport.validation.limits import MAX_JOB_SIZE_BYTES

Outbox = Callable[[bytes, bytes], None]


@dataclass
class CoordinatorContext:
    settings: CoordinatorSettings
    clock: Clock
    store: Store
    outbox: Outbox
    activity: Activity
    rng: random.Random
    events: EventHub = field(default_factory=EventHub)
    ids: IdFactory = field(init=False)
    seq: itertools.count = field(default_factory=lambda: itertools.count(1))
    unroutable: dict[str, int] = field(default_factory=dict)  # queue -> jobs no worker may take
    limited: dict[str, int] = field(default_factory=dict)  # queue -> jobs held back by a limit
    limit_rules: LimitRules = field(default_factory=LimitRules)  # the configured limits
    max_message_size: int = MAX_MESSAGE_SIZE_BYTES  # announced to workers in workerregistered
    max_job_size: int = MAX_JOB_SIZE_BYTES  # a deferred job's args with its parents' results
    # Connections that said hello: added by the dispatcher (I/O thread), forgotten by the
    # supervisor once their last session has been over for terminated_retention, so the set
    # stays bounded (single set operations are atomic, so no lock).
    greeted: set[bytes] = field(default_factory=set)
    # With a shared database: the `cluster` field of `stats` (term, leader, standbys)
    cluster: Callable[[], dict[str, Any]] | None = None
    # (job_id, worker_id, attempt) -> the job's last reported progress: the supervisor's, read
    # by `get` on the I/O thread (a dict lookup, atomic)
    progress_of: Callable[[str, str, int], dict[str, Any] | None] = lambda *_: None
    queues: QueueDirectory = field(init=False)
    supervisor: Mailbox = field(init=False)
    listing: Mailbox = field(init=False)
    scheduler: Mailbox = field(init=False)
    flows: Mailbox = field(init=False)  # the FlowActor: deferred jobs (actors/flows.py)
    cancels: Cancellations = field(init=False)
    limiter: Limiter = field(init=False)  # the count of every limit's bucket (actors.limits)

    def __post_init__(self) -> None:
        self.ids = IdFactory(self.clock, random.Random(self.rng.getrandbits(64)))
        self.cancels = Cancellations(self)
        self.limiter = Limiter(self.limit_rules, self.clock.now)

    def with_progress(self, stored: dict[str, Any]) -> dict[str, Any]:
        """A stored job as `get` shows it: an active one with its attempt's last reported
        progress (extension "Progress"), kept by the supervisor, not the store."""
        if stored["state"] != ACTIVE or "worker_id" not in stored:
            return stored
        progress = self.progress_of(stored["id"], stored["worker_id"], stored["attempt"])
        return stored if progress is None else {**stored, "progress": progress}


QueueStarter = Callable[[str, tuple[WorkerProfile, ...]], Mailbox]


class QueueDirectory:
    """Queue name -> QueueActor mailbox, starting queue actors on first use (thread-safe).

    Nothing is told under the lock: a tell may run the queue's handler on this thread
    (actors/inbox.py), and that handler may come back here for another queue.
    """

    def __init__(self, start_queue: QueueStarter, limit: int) -> None:
        self._start_queue = start_queue
        self._limit = limit
        self._queues: dict[str, Mailbox] = {}
        self._lock = threading.Lock()
        self._routing = RoutingUpdate(())

    def get(self, name: str) -> Mailbox:
        """The queue's mailbox; raises LookupError past the queue limit."""
        mailbox = self._queues.get(name)
        if mailbox is not None:
            return mailbox
        with self._lock:
            if name not in self._queues:
                if len(self._queues) >= self._limit:
                    raise LookupError(f"at most {self._limit} queues are allowed")
                # A new queue starts with today's profiles; a publish after this tells it.
                self._queues[name] = self._start_queue(name, self._routing.workers)
            return self._queues[name]

    def publish(self, workers: tuple[WorkerProfile, ...]) -> None:
        """Send every queue, and every queue started later, the live worker profiles.

        Called by the WorkerSupervisor only, so two publishes never interleave their tells.
        """
        routing = RoutingUpdate(workers)
        with self._lock:
            self._routing = routing
            mailboxes = list(self._queues.values())
        for mailbox in mailboxes:
            mailbox.tell(routing)

    def names(self) -> list[str]:
        return sorted(self._queues)

    def all(self) -> list[Mailbox]:
        with self._lock:
            return list(self._queues.values())
