"""Simulation fixtures: whole clusters on the in-process network with a ManualClock, and a
history checker that judges every run by the invariants of the recovery issue."""

from __future__ import annotations

import inspect
import itertools
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from actors import events
from actors.clock import ManualClock
from actors.coordinator_settings import CoordinatorSettings
from actors.jobs import Job
from actors.worker import current_job
from nodes.cluster import COORDINATOR_ADDRESS, Cluster
from transport import codec

FAST = CoordinatorSettings(visibility_timeout=120.0)


def _exit() -> None:
    """A handler that calls sys.exit(): its attempt fails, its worker serves on."""
    raise SystemExit(3)


def _interrupt() -> None:
    raise KeyboardInterrupt


class History:
    """Everything that happened to jobs, in one global order, checked at the end.

    Invariants: every enqueued job ends terminal exactly once; no handler starts a job after
    that job was completed (acked); results are the handler's. A job deleted by hand (extension
    "Delete") is not lost: it had ended exactly once, and it stays gone. `trace` keeps every
    event and handler start in that order, so two runs of one seed can be compared
    (tests/sim/test_replay.py).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._order = itertools.count()
        self.terminal: Counter[str] = Counter()
        self.completed_at: dict[str, int] = {}
        self.starts: list[tuple[int, str, int]] = []
        self.recoveries: list[tuple[str, str]] = []
        self.trace: list[tuple[Any, ...]] = []

    def observe(self, name: str, payload: dict[str, Any]) -> None:
        with self._lock:
            self.trace.append((name, *sorted((key, traced(v)) for key, v in payload.items())))
            if name == events.JOB_TERMINAL:
                job = payload["job"]
                self.terminal[job.id] += 1
                if job.state == "completed":
                    self.completed_at[job.id] = next(self._order)
            elif name == events.JOB_RECOVERED:
                self.recoveries.append((payload["job"].id, payload["reason"]))

    def started(self, job_id: str, attempt: int) -> None:
        with self._lock:
            self.starts.append((next(self._order), job_id, attempt))
            self.trace.append(("handler_started", job_id, attempt))

    def wrap(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        """`handler` recording each start; an `async def` one stays one."""

        def start() -> None:
            job = current_job()
            assert job is not None
            self.started(job.id, job.attempt)

        def recorded(*args: Any) -> Any:
            start()
            return handler(*args)

        async def recorded_async(*args: Any) -> Any:
            start()
            return await handler(*args)

        return recorded_async if inspect.iscoroutinefunction(handler) else recorded

    def check(
        self,
        cluster: Cluster,
        job_ids: list[str],
        deleted: Mapping[str, dict[str, Any]] | None = None,
    ) -> None:
        """`deleted`: job id -> its Job map when it was deleted by hand."""
        store = cluster.store
        deleted = deleted or {}
        for job_id in job_ids:
            stored = store.get(job_id)
            if job_id in deleted:
                assert stored is None, f"deleted job {job_id} came back (seed={cluster.seed})"
                stored = deleted[job_id]
            assert stored is not None, f"job {job_id} lost (seed={cluster.seed})"
            assert stored["state"] in ("completed", "discarded", "cancelled"), (
                f"job {job_id} ended {stored['state']} (seed={cluster.seed})"
            )
            assert self.terminal[job_id] == 1, (
                f"job {job_id} ended {self.terminal[job_id]} times (seed={cluster.seed})"
            )
        for order, job_id, attempt in self.starts:
            done = self.completed_at.get(job_id)
            assert done is None or order < done, (
                f"job {job_id} attempt {attempt} ran after its ack (seed={cluster.seed})"
            )


async def _nap(seconds: float) -> float:
    """Waits in halves on the virtual clock, reporting each half as progress."""
    job = current_job()
    assert job is not None
    for half in (1, 2):
        await job.asleep(seconds / 2)
        job.progress(half / 2, f"half {half} of 2")
    return seconds


def _numbers(values: Any) -> list[int]:
    """The numbers in a step's arguments, its parents' results nested in lists."""
    if isinstance(values, list | tuple):
        return [n for value in values for n in _numbers(value)]
    return [values] if isinstance(values, int) and not isinstance(values, bool) else []


def traced(value: Any) -> Any:
    """An event field as the trace keeps it: a job by its id, state, attempt and worker."""
    if isinstance(value, Job):
        return (value.id, value.state, value.attempt, value.worker_id)
    return value


@pytest.fixture
def history() -> History:
    return History()


@pytest.fixture
def make_cluster(history: History) -> Iterator[Callable[..., Cluster]]:
    """Start simulated clusters (ManualClock, seeded); all are stopped at teardown."""
    started: list[Cluster] = []

    def make(
        workers: int = 3,
        *,
        seed: int = 0,
        settings: CoordinatorSettings = FAST,
        observed: History | None = None,
        **options: Any,
    ) -> Cluster:
        """`observed`: record into that History instead of the test's (for runs compared)."""
        recorder = observed or history
        handlers = options.pop("handlers", None) or {
            "square": lambda x: x * x,
            "sleep": lambda seconds: current_job().sleep(seconds),  # type: ignore[union-attr]
            "nap": _nap,  # an async handler reporting its progress
            "boom": lambda: 1 / 0,
            "exit": _exit,
            "interrupt": _interrupt,
            "total": lambda *values: sum(_numbers(values)),  # a workflow's fan-in
        }
        handlers = {name: recorder.wrap(fn) for name, fn in handlers.items()}
        cluster = Cluster(
            workers, clock=ManualClock(), seed=seed, handlers=handlers, settings=settings, **options
        )
        cluster.events.subscribe(recorder.observe)
        started.append(cluster)
        return cluster.start()

    yield make
    for cluster in started:
        cluster.stop()


class RawWorker:
    """A worker that speaks the protocol by hand over the in-process network."""

    """A worker that speaks the protocol by hand over the in-process network."""

    def __init__(self, cluster: Cluster, name: str = "raw") -> None:
        self.cluster = cluster
        self.replies: dict[Any, dict[str, Any]] = {}
        self.link = cluster.network.connector(COORDINATOR_ADDRESS, node=name)(self._on_frame)
        self.rid = 0
        self.worker_id = ""

    def _on_frame(self, frame: bytes) -> None:
        body = codec.decode(frame)
        self.replies[body.get("rid")] = body

    def request(self, kind: str, **fields: Any) -> dict[str, Any]:
        self.rid += 1
        rid = self.rid
        self.link.send(codec.encode({"type": kind, "rid": rid, **fields}))
        self.cluster.run_until(lambda: rid in self.replies, within=60)
        return self.replies.pop(rid)

    def join(self, queues: list[str]) -> None:
        hello = self.request("hello", v=1, role="worker", hostname="raw", pid=1)
        self.worker_id = hello["worker_id"]
        self.request("register", worker_id=self.worker_id, queues=queues, hostname="raw", pid=1)


@pytest.fixture
def raw_worker() -> Callable[..., RawWorker]:
    """Make protocol-speaking peers on a simulated cluster's network."""
    return RawWorker
