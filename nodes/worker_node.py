"""WorkerNode: a WorkerActor plus its LinkActor, embeddable in any process."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from actors import base, states
from actors.base import Activity, Untracked
from actors.clock import Clock, SystemClock
from actors.link.actor import LinkActor
from actors.pool import Executor
from actors.progress import ProgressBoard
from actors.worker import Handler, WorkerActor
from actors.worker_mail import BeatNow, Connect, Deregister
from actors.worker_settings import WorkerSettings
from nodes.job_types import JOB_OPTIONS, JobType
from transport.base import Connector
from transport.endpoints import Endpoints, addresses_of

if TYPE_CHECKING:
    from transport.zmq import CurveClientConfig

log = logging.getLogger(__name__)
SHUTDOWN_GRACE_S = 25.0
REPORT_GRACE_S = 5.0


class WorkerNode:
    """Runs handlers for jobs fetched from a coordinator.

    >>> worker = WorkerNode(connect="tcp://127.0.0.1:5555", queues=["default"], concurrency=4)
    >>> @worker.handler("resize")
    ... def resize(path, width): ...

    `connect` may list several coordinators sharing one database (one leads, the others
    answer `not_leader`): the worker finds the leader and follows it when it changes.
    `connector` reaches the coordinator another way (a simulation's network): one Connector,
    or `Endpoints` of them, one per coordinator.
    """

    def __init__(
        self,
        connect: str | Sequence[str] = "tcp://127.0.0.1:5555",
        *,
        queues: list[str] | tuple[str, ...] = ("default",),
        concurrency: int = 10,
        labels: dict[str, list[str]] | None = None,
        handlers: dict[str, Handler] | None = None,
        shutdown_grace: float = SHUTDOWN_GRACE_S,
        connector: Connector | Endpoints[Connector] | None = None,
        curve: CurveClientConfig | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        activity: Activity | None = None,
        pump: Callable[[], float] | None = None,
        executor: Executor | None = None,
        on_terminate: Callable[[], None] | None = None,
        **settings: Any,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if not queues:
            raise ValueError("a worker needs at least one queue")
        self.connect = addresses_of(connect)
        self.handlers: dict[str, Handler] = dict(handlers or {})
        self.shutdown_grace = shutdown_grace
        self.settings = replace(
            WorkerSettings(),
            queues=tuple(queues),
            concurrency=concurrency,
            labels=dict(labels or {}),
            **settings,
        )
        self._connector = connector
        self.curve = curve  # CURVE keys for the default ZeroMQ connector (PROTOCOL.md section 7)
        self.clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.activity = activity or Untracked()
        self._pump = pump  # simulation: moves messages and virtual time while we wait
        self._executor = executor  # simulation: handlers take turns (actors/turns.py)
        # Called (on an actor's thread: it must not block or stop the node itself) when the
        # coordinator tells this worker to terminate. It then fetches no more; whoever runs the
        # node decides when to stop() it: `corral run` does at once (nodes/process/node.py).
        self.on_terminate = on_terminate
        self._worker: base.Mailbox | None = None
        self._connection: base.Mailbox | None = None
        self._worker_ref: Any = None
        self._connection_ref: Any = None
        self._stop_lock = threading.Lock()

    def handler(self, job_type: str, **defaults: Any) -> Callable[[Handler], Handler]:
        """Decorator: run `fn(*args)` for jobs of `job_type`.

        `defaults` are JobSpec options (queue, max_attempts, timeout, priority, retry, ...) used
        when the function itself is passed to `Client.enqueue`; a queue named there is consumed
        by this worker too (after its configured queues).
        """
        unknown = set(defaults) - JOB_OPTIONS
        if unknown:
            raise TypeError(f"unknown job options: {', '.join(sorted(unknown))}")

        def register(fn: Handler) -> Handler:
            self.handlers[job_type] = fn
            fn.corral_job = JobType(job_type, defaults)  # type: ignore[attr-defined]
            queue = defaults.get("queue")
            if queue and queue not in self.settings.queues:
                self.settings = replace(self.settings, queues=(*self.settings.queues, queue))
            return fn

        return register

    def start(self) -> WorkerNode:
        settings = replace(self.settings, functions=tuple(sorted(self.handlers)))
        board = ProgressBoard()  # handlers report on it, the link reads it at each beat
        self._worker_ref = WorkerActor.start(
            self.activity,
            self.handlers,
            settings.concurrency,
            self.clock,
            executor=self._executor,
            on_terminate=self.on_terminate,
            board=board,
        )
        self._worker = base.Mailbox(self._worker_ref, self.activity)
        self._connection_ref = LinkActor.start(
            self.activity,
            self._endpoints(),
            settings,
            self._worker,
            self.clock,
            self.rng,
            board=board,
        )
        self._connection = base.Mailbox(self._connection_ref, self.activity)
        self._worker_ref.proxy().attach(self._connection).get()
        self._connection.tell(Connect())  # only now: jobs it fetches reach a worker that can report
        return self

    def _endpoints(self) -> Endpoints[Connector]:
        connector = self._connector
        if isinstance(connector, Endpoints):
            return connector
        if connector is not None:
            return Endpoints([(self.connect[0], connector)])
        from transport.zmq import zmq_endpoints

        return zmq_endpoints(self.connect, curve=self.curve)

    # -- lifecycle ----------------------------------------------------------------------------

    def quiet(self) -> None:
        """Stop fetching new jobs; running ones finish (SIGTSTP)."""
        self._worker_ref.proxy().set_state(states.QUIET).get()

    def resume(self) -> None:
        """Fetch again after quiet (SIGCONT)."""
        self._worker_ref.proxy().set_state(states.RUNNING).get()

    def status(self) -> dict[str, Any]:
        """worker_id, registration and job counts, for tests and `corral status`."""
        status = self._connection_ref.proxy().status().get()
        running = self._worker_ref.proxy().running().get()
        state = self._worker_ref.proxy().state.get()
        return {**status, "running": running, "state": state}

    @property
    def worker_id(self) -> str | None:
        return self.status()["worker_id"] if self._connection_ref else None

    def stop(self, timeout: float | None = None) -> None:
        """Graceful stop: stop fetching, let running jobs finish for up to `shutdown_grace`
        (or `timeout`), fail the rest as retryable, deregister, stop. Idempotent."""
        with self._stop_lock:
            if self._worker_ref is None:
                return
            grace = self.shutdown_grace if timeout is None else timeout
            worker = self._worker_ref.proxy()
            try:
                worker.set_state(states.TERMINATE).get()
                answered = self._settle_in_flight()
                if not self._wait(lambda: worker.running().get() == 0, grace):
                    log.warning(
                        "grace period over: failing %d running jobs", worker.running().get()
                    )
                    worker.fail_unfinished("worker shut down before the job finished").get()
                # A coordinator that did not answer the settling beat (gone, or none reached)
                # will not answer these either: they are sent, not waited for.
                report_grace = REPORT_GRACE_S if answered else 0.0
                connection = self._connection_ref.proxy()
                self._wait(lambda: connection.status().get()["unreported"] == 0, report_grace)
                assert self._connection is not None
                self._connection.tell(Deregister())
                self._wait(
                    lambda: self._connection_ref.proxy().status().get()["pending"] == 0,
                    report_grace,
                )
            finally:
                self.kill()

    def _settle_in_flight(self) -> bool:
        """Let jobs already on the wire arrive before counting what still runs; False when
        no coordinator answered (no session, or none within REPORT_GRACE_S).

        The coordinator may have handed out a job just before it learns that we stop; a beat
        that reports `terminate` is answered after that job (one connection, in order), and
        nothing more is handed out once it is. Without this wait such a job would be
        deregistered away and come back as a failed attempt (worker_lost).
        """
        assert self._connection is not None and self._connection_ref is not None
        connection = self._connection_ref.proxy()
        status = connection.status().get()
        if not status["registered"]:
            return False
        answered = status["beat_replies"]
        self._connection.tell(BeatNow())
        return self._wait(
            lambda: connection.status().get()["beat_replies"] > answered, REPORT_GRACE_S
        )

    def _wait(self, done: Callable[[], bool], seconds: float) -> bool:
        """Poll `done` on the actors (asks at the edge) until true or the deadline passes."""
        deadline = self.clock.now() + seconds
        event = threading.Event()
        while not done():
            if self.clock.now() >= deadline:
                return False
            if self._pump is not None:
                self._pump()
            else:
                event.wait(0.01)
        return True

    def kill(self) -> None:
        """Stop at once: no deregister, jobs left to the coordinator's recovery."""
        for mailbox in (self._connection, self._worker):
            if mailbox is not None:
                mailbox.stop()
        self._worker_ref = self._connection_ref = None
        self._worker = self._connection = None

    def __enter__(self) -> WorkerNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
