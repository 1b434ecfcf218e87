"""Coordinator: the node that owns the queues and hands jobs to workers."""

from __future__ import annotations

import logging
import os
import random
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from actors import base
from actors.base import Activity, Untracked
from actors.clock import Clock, SystemClock
from actors.context import CoordinatorContext
from actors.coordinator_settings import CoordinatorSettings
from actors.events import EventHub
from actors.leadership import FAILOVER_TIMEOUT_S
from actors.limits import LimitRule, LimitRules
from actors.schedules import check
from actors.series import Series
from actors.store.base import Store
from actors.waiters import JobWaiters
from nodes.addons import Addon, start_failed
from nodes.config import load_config
from nodes.config.kinds import CoordinatorConfig
from nodes.coordinator_actors import restore, start_actors
from nodes.coordinator_arguments import coordinator_arguments
from nodes.dispatcher import Dispatcher
from nodes.leadership.ha import HighAvailability
from nodes.observe.logs import EventLog
from nodes.observe.traffic import Traffic
from nodes.stores import open_store, shared_database
from transport.base import ServerTransport
from transport.codec import MAX_MESSAGE_SIZE_BYTES
from transport.messages import Schedule
from transport.validation.limits import Limits
from transport.validation.schedules import schedule as read_schedule

if TYPE_CHECKING:
    from transport.auth import SecuritySettings

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
        security: SecuritySettings | None = None,
        addons: Sequence[Addon] = (),
        instance: str | None = None,
        failover_timeout: float = FAILOVER_TIMEOUT_S,
        name: str | None = None,
        advertise: str | None = None,
        schedules: Sequence[Schedule] = (),
        job_limits: Sequence[LimitRule] = (),
        **setting_overrides: Any,
    ) -> None:
        self.bind = bind
        # Who answers on `bind`: a `ping {identify: true}` gets it back, so whoever started this
        # coordinator (the `corral run` runner) can tell it from another one on the same port.
        self.instance = instance or uuid.uuid4().hex
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
        self.traffic = Traffic()  # frame counts and in-process peers (nodes/observe/traffic.py)
        # Throughput and latency per second, for `stats {series: true}` (actors/series.py);
        # it observes the events while the coordinator runs (a hub may outlive it).
        self.series = Series(self.clock)
        self._unobserve: Callable[[], None] | None = None
        # Started after us, stopped before: the event log (deaths, recoveries, directives,
        # with ids), then metrics, dashboard.
        self.addons = (EventLog(), *addons)
        self.security = security
        self._authenticator: Any = None
        self.ctx: CoordinatorContext | None = None
        self.dispatcher: Dispatcher | None = None
        self._actors: list[base.Mailbox] = []
        self.wire: ServerTransport | None = None  # the socket, its traffic counted
        # With a shared database (PostgreSQL): the lease keeper and the switch between serving
        # and answering `not_leader` (nodes/leadership/); None with a store of its own.
        self.leadership: HighAvailability | None = None
        self.failover_timeout = failover_timeout
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.advertise = advertise  # None: derived from the bound address
        # Periodic jobs defined by the caller (the YAML's `schedules:`), checked now as a
        # `schedule_put` would be: each start keeps the store's schedules of the same name in
        # step with them.
        self.schedules = tuple(
            check(read_schedule(asdict(schedule), self.limits)) for schedule in schedules
        )
        self.job_limits = LimitRules(job_limits)  # per job type or queue (YAML `job_limits:`)

    @classmethod
    def from_config(cls, path: str, node: str = "coordinator", **overrides: Any) -> Coordinator:
        """The coordinator described by node `node` of a YAML file (not started);
        `overrides` replace constructor arguments."""
        config = load_config(path).node(node)
        if not isinstance(config, CoordinatorConfig):
            raise config.where.error(f"is a {config.kind} node, not a coordinator")
        return cls(**{**coordinator_arguments(config, overrides), **overrides})

    @property
    def address(self) -> str:
        """The bound endpoint (with the real port when bound to port 0 / `*`)."""
        return getattr(self._transport, "bound_address", None) or self.bind

    def cluster(self) -> dict[str, Any] | None:
        """With a shared database: this coordinator's role and term, the leader, the standbys."""
        return self.leadership.cluster() if self.leadership is not None else None

    def start(self) -> Coordinator:
        database = shared_database(self._store_spec)
        opened = isinstance(self._store_spec, str) and database is None
        store = None
        try:
            self._bind()
            if database is not None:  # several coordinators share it: serve only when leading
                self.leadership = HighAvailability(self, database)
                self.leadership.start()  # only once set: a promotion reads it
            else:
                store = open_store(self._store_spec) if opened else self._store_spec
                self.serve(store)
                assert self.dispatcher is not None and self.wire is not None
                self.wire.start(self.dispatcher)
            self._start_addons()
        except BaseException:
            self.stop()  # a port in use must not leave the store locked or threads running
            if opened and store is not None:
                store.close()  # idempotent: stop() closed it if it was served
            raise
        log.info("coordinator listening on %s", self.address)
        return self

    def _bind(self) -> None:
        """Make the server socket (bound, not yet delivering) and count its traffic."""
        if self._transport is None:
            from transport.zmq import ZmqServer

            self._transport = ZmqServer(
                self.bind, max_message_size=self.max_message_size, **self._curve_options()
            )
        self.wire = self.traffic.wrap(self._transport)

    def serve(self, store: Store) -> None:
        """Start the actors over `store`, put its jobs back, and build the dispatcher."""
        transport = self.wire
        assert transport is not None

        def send_after_commit(peer: bytes, frame: bytes) -> None:
            store.after_commit(lambda: transport.send(peer, frame))

        outbox = send_after_commit  # a memory store runs the callback at once
        ctx = CoordinatorContext(
            self.settings,
            self.clock,
            store,
            outbox,
            self.activity,
            self.rng,
            self.events,
            limit_rules=self.job_limits,
        )
        ctx.max_message_size = self.max_message_size
        ctx.max_job_size = self.limits.max_job_size
        if self.leadership is not None:
            ctx.cluster = self.leadership.cluster
        self.ctx = ctx
        self._unobserve = start_actors(ctx, self._actors, self.series, self.schedules)
        restore(ctx, store)
        waiters = JobWaiters(self.clock, store, outbox, self.events)
        self.dispatcher = Dispatcher(
            ctx,
            waiters,
            self.limits,
            self.max_message_size,
            self._roles_of(transport),
            self.instance,
        )

    def unserve(self, timeout: float = 5.0) -> None:
        """Stop the actors and close the store (idempotent): the end of a term, or of the run."""
        self.dispatcher = None
        if self._unobserve is not None:
            self._unobserve()
            self._unobserve = None
        for mailbox in reversed(self._actors):
            mailbox.stop(timeout)
        self._actors.clear()
        if self.ctx is not None:
            self.ctx.store.close()
            self.ctx = None

    def _start_addons(self) -> None:
        for addon in self.addons:
            try:
                addon.start(self)
            except OSError as exc:  # a port in use: say which key and address
                raise start_failed(addon, exc) from exc

    def _curve_options(self) -> dict[str, Any]:
        """ZmqServer options for CURVE: the ZAP handler must live on the server's context."""
        if self.security is None:
            return {}
        from transport.auth import CurveAuthenticator

        self._authenticator = CurveAuthenticator(self.security).start()
        return {"context": self._authenticator.context, "curve": self.security.server}

    def _roles_of(self, transport: ServerTransport) -> Callable[[bytes], frozenset[str]] | None:
        """The dispatcher's role lookup: None (all allowed) without security."""
        security = self.security
        if security is None:
            return None
        user_id = getattr(transport, "peer_user_id", None)
        if user_id is None:
            raise TypeError("security needs a transport that reports peer_user_id")
        return lambda peer: security.roles(user_id(peer))

    def stop(self, timeout: float = 5.0, *, release: bool = True) -> None:
        """Stop the add-ons, hand leadership over, close the socket, stop every actor, close
        the store. Idempotent. `release=False` keeps the lease as a killed process would (it
        lapses after failover_timeout): simulations stop a coordinator that way."""
        for addon in reversed(self.addons):
            addon.stop()
        if self.leadership is not None:
            self.leadership.stop(release)  # a standby takes over at its next poll
            self.leadership = None
        if self._transport is not None:
            self._transport.close()
        if self._authenticator is not None:
            self._authenticator.stop()
            self._authenticator = None
        self.unserve(timeout)

    def __enter__(self) -> Coordinator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
