"""SupervisorCore against a model (PROTOCOL.md sections 3 and 6), as QueueCore has in
test_queue.py: workers fetch, ack and fail (with stale attempts and stale worker ids too), beat,
fall silent, reconnect and resume, deregister; leases expire; clients cancel. The model is a
plain dict per job (state, holder, attempt, lease deadline); one queue stands in for the queue
actor and serves claims in enqueue order at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from actors import lifecycle
from actors.coordinator_settings import CoordinatorSettings
from actors.jobs import Job
from actors.mail import Claim, Claimed, Hold
from tests.unit.test_supervisor_core import NOW, make_core
from transport import jobspec
from transport import messages as m

SETTINGS = CoordinatorSettings(
    heartbeat_interval=5.0, heartbeat_timeout=30.0, visibility_timeout=20.0, reaper_interval=1.0
)
WORKERS = 3
CONCURRENCY = 2
MAX_ATTEMPTS = 3


@dataclass
class Worker:
    """One worker process as it sees itself: its connection, session and the jobs it runs."""

    index: int
    peer: bytes = b""
    worker_id: str | None = None
    previous_id: str | None = None
    connections: int = 0
    running: dict[str, int] = field(default_factory=dict)  # job_id -> attempt it was handed


@dataclass
class Expected:
    state: str = "available"
    holder: str | None = None
    attempt: int = 0
    deadline: float | None = None


class SupervisorModel(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.core, self.port, self.sent = make_core(SETTINGS)
        self.port.store = self.core.store  # a settled cancel is saved, as Cancellations does
        self.now = NOW
        self.core.tick(self.now)
        self.rid = 0
        self.jobs: dict[str, Job] = {}
        self.pool: list[Job] = []  # the queue: jobs waiting to be claimed, oldest first
        self.model: dict[str, Expected] = {}
        self.workers = [Worker(i) for i in range(WORKERS)]
        self.last_seen: dict[str, float] = {}  # live worker_id -> last request time
        self.peer_of: dict[str, bytes] = {}
        for w in range(2):
            self.connect(w)
        for _ in range(4):
            self.enqueue()

    # -- the harness: a queue that serves claims at once --------------------------------------

    def request(self, worker: Worker, make: Any) -> dict[str, Any]:
        self.rid += 1
        self.core.handle(self.now, worker.peer, make(self.rid))
        live = worker.worker_id in self.last_seen
        if live and self.peer_of[worker.worker_id] == worker.peer:  # a request is a sign of life
            self.last_seen[worker.worker_id] = self.now
        self.pump()
        [reply] = [body for body in self.sent if body.get("rid") == self.rid]
        assert reply.get("code") != "internal"
        return reply

    def pump(self) -> None:
        while any(self.port.queues[name].told for name in list(self.port.queues)):
            for mailbox in list(self.port.queues.values()):
                told, mailbox.told = mailbox.told, []
                for message in told:
                    if isinstance(message, Claim):
                        ready = [job for job in self.pool if job.state == "available"]
                        jobs = ready[: message.count]
                        self.pool = [job for job in self.pool if job not in jobs]
                        who = message.worker.worker_id
                        self.core.claimed(self.now, Claimed(message.token, who, "a", jobs))
                    elif isinstance(message, Hold):
                        self.pool.extend(message.jobs)
                        self.pool.sort(key=lambda job: job.seq)

    def live(self) -> list[int]:
        return [w.index for w in self.workers if w.worker_id in self.last_seen]

    def pick_live(self, data: st.DataObject) -> Worker:
        return self.workers[data.draw(st.sampled_from(self.live()))]

    def recovered(self, job_id: str) -> None:
        expected = self.model[job_id]
        expected.state = "discarded" if expected.attempt >= MAX_ATTEMPTS else "available"
        expected.holder = expected.deadline = None

    def end(self, worker_id: str) -> None:
        del self.last_seen[worker_id]
        for job_id, expected in self.model.items():
            if expected.state == "active" and expected.holder == worker_id:
                self.recovered(job_id)

    # -- rules --------------------------------------------------------------------------------

    @rule()
    def enqueue(self) -> None:
        seq = len(self.jobs) + 1
        spec = jobspec.JobSpec(type="t", queue="a", max_attempts=MAX_ATTEMPTS)
        job = Job.from_spec(spec, f"job-{seq}", self.now, seq)
        self.core.store.add([job])
        self.jobs[job.id] = job
        self.pool.append(job)
        self.model[job.id] = Expected()

    @rule(w=st.integers(0, WORKERS - 1))
    def connect(self, w: int) -> None:
        """A new connection: hello, then register resuming what the worker still runs."""
        worker = self.workers[w]
        worker.connections += 1
        worker.peer = f"peer-{w}-{worker.connections}".encode()
        hello = self.request(worker, lambda rid: m.Hello(rid, "worker", "host", w))
        worker.previous_id, worker.worker_id = worker.worker_id, hello["worker_id"]
        self.last_seen[worker.worker_id] = self.now
        self.peer_of[worker.worker_id] = worker.peer
        previous, listed = worker.previous_id, tuple(worker.running)
        reply = self.request(
            worker,
            lambda rid: m.Register(
                rid, hello["worker_id"], ("a",), CONCURRENCY, frozenset(), {}, "h", w, previous,
                listed,
            ),
        )
        resumable = previous in self.last_seen
        expected = [
            job_id
            for job_id in listed
            if resumable
            and self.model[job_id].state == "active"
            and self.model[job_id].holder == previous
        ]
        assert reply["resumed_job_ids"] == expected
        for job_id in expected:
            self.model[job_id].holder = worker.worker_id
            self.model[job_id].deadline = self.now + SETTINGS.visibility_timeout
        if resumable:
            self.end(previous)  # replaced: the jobs it did not resume are recovered
        worker.running = {job_id: worker.running[job_id] for job_id in expected}

    @precondition(lambda self: self.live())
    @rule(data=st.data(), count=st.integers(1, 3))
    def fetch(self, data: st.DataObject, count: int) -> None:
        worker = self.pick_live(data)
        waiting = [j.id for j in self.pool if self.model[j.id].state == "available"]
        mine = [e for e in self.model.values() if e.holder == worker.worker_id]
        room = min(count, CONCURRENCY - len(mine))  # the core's view, not the worker's
        reply = self.request(
            worker, lambda rid: m.Fetch(rid, worker.worker_id, count, None, 0.0)
        )
        got = [job["id"] for job in reply["jobs"]]
        assert got == waiting[: max(room, 0)]
        for job in reply["jobs"]:
            expected = self.model[job["id"]]
            expected.state, expected.holder = "active", worker.worker_id
            expected.attempt += 1
            expected.deadline = self.now + SETTINGS.visibility_timeout
            assert job["attempt"] == expected.attempt
            worker.running[job["id"]] = job["attempt"]

    @precondition(lambda self: self.model and any(w.worker_id for w in self.workers))
    @rule(data=st.data(), stale=st.booleans(), ok=st.booleans())
    def settle(self, data: st.DataObject, stale: bool, ok: bool) -> None:
        """An ack or a fail, for the attempt it was handed (or an older one), or for a job it
        does not hold, perhaps from a session that has ended."""
        worker = data.draw(st.sampled_from([w for w in self.workers if w.worker_id]))
        running = sorted(worker.running)
        job_id = data.draw(st.sampled_from(running or sorted(self.model)))
        if running and data.draw(st.booleans()):
            job_id = data.draw(st.sampled_from(sorted(self.model)))
        attempt = worker.running.get(job_id, self.model[job_id].attempt) - stale
        if ok:
            make = lambda rid: m.Ack(rid, worker.worker_id, job_id, attempt, None)  # noqa: E731
        else:
            error = m.ErrorInfo("Boom", "no")
            make = lambda rid: m.Fail(rid, worker.worker_id, job_id, attempt, error)  # noqa: E731
        reply = self.request(worker, make)
        expected = self.model[job_id]
        if worker.worker_id not in self.last_seen:
            assert reply["code"] == "unknown_worker"
            return
        owned = expected.state == "active" and expected.holder == worker.worker_id
        if not owned or expected.attempt != attempt:
            assert reply["code"] == "not_owner"
            return
        worker.running.pop(job_id)
        expected.holder = expected.deadline = None
        if ok:
            expected.state = "completed"
            assert set(reply) == {"type", "rid"}  # the contract's ack reply is empty
        else:
            expected.state = "retryable" if expected.attempt < MAX_ATTEMPTS else "discarded"
            assert reply["state"] == expected.state

    @precondition(lambda self: any(w.previous_id for w in self.workers))
    @rule(data=st.data())
    def stale_worker_id(self, data: st.DataObject) -> None:
        """A request naming the worker's previous session from its new connection."""
        worker = data.draw(st.sampled_from([w for w in self.workers if w.previous_id]))
        reply = self.request(worker, lambda rid: m.Beat(rid, worker.previous_id, "running", ()))
        assert reply["code"] == "unknown_worker"

    @precondition(lambda self: self.live())
    @rule(data=st.data())
    def beat(self, data: st.DataObject) -> None:
        worker = self.pick_live(data)
        listed = tuple(worker.running)
        reply = self.request(
            worker, lambda rid: m.Beat(rid, worker.worker_id, "running", listed)
        )
        abandon = []
        for job_id in listed:
            expected = self.model[job_id]
            if expected.state == "active" and expected.holder == worker.worker_id:
                expected.deadline = self.now + SETTINGS.visibility_timeout
            else:
                abandon.append(job_id)
        assert reply["cancel_job_ids"] == abandon
        for job_id in abandon:
            worker.running.pop(job_id)

    @precondition(lambda self: self.live())
    @rule(data=st.data())
    def deregister(self, data: st.DataObject) -> None:
        worker = self.pick_live(data)
        self.request(worker, lambda rid: m.Deregister(rid, worker.worker_id))
        self.end(worker.worker_id)
        worker.running.clear()

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        """A client's cancel that found the job active in the store."""
        job_id = data.draw(st.sampled_from(sorted(self.model)))
        self.core.cancel(self.now, job_id)
        self.pump()
        expected = self.model[job_id]
        if expected.state == "active":
            expected.state, expected.holder, expected.deadline = "cancelled", None, None
        else:
            assert self.port.missed[-1] == job_id  # not the core's: settled by its queue

    @rule(seconds=st.sampled_from([1, 5, 12, 21, 31]))
    def advance(self, seconds: int) -> None:
        """Time passes a second a reaper tick at a time: the silent die, leases expire."""
        for _ in range(seconds):
            self.now += 1.0
            self.core.tick(self.now)
            for worker_id, seen in list(self.last_seen.items()):
                if self.now - seen > SETTINGS.heartbeat_timeout:
                    self.end(worker_id)
            for job_id, expected in self.model.items():
                if expected.deadline is not None and expected.deadline <= self.now:
                    self.recovered(job_id)
            for job in self.jobs.values():  # the queue promotes retries when due
                if job.state == "retryable" and (job.next_attempt_at or 0) <= self.now:
                    lifecycle.promote(job)
                    self.core.store.save(job)
                    self.model[job.id].state = "available"
            self.pump()

    # -- invariants ---------------------------------------------------------------------------

    @invariant()
    def every_job_is_as_the_model_says(self) -> None:
        for job_id, job in self.jobs.items():
            expected = self.model[job_id]
            assert (job.state, job.attempt) == (expected.state, expected.attempt), job_id
            holder = self.core.leases.owner(job_id)
            assert (holder.worker_id if holder else None) == expected.holder, job_id
            assert job.deadline == expected.deadline, job_id
            assert self.core.store.get(job_id)["state"] == job.state  # type: ignore[index]

    @invariant()
    def the_live_sessions_are_the_models(self) -> None:
        assert set(self.core.sessions.live) == set(self.last_seen)
        held = sum(len(session.active) for session in self.core.sessions)
        assert held == len(self.core.leases)

    @invariant()
    def a_waiting_job_is_in_the_queue_once_and_an_active_one_never(self) -> None:
        ids = [job.id for job in self.pool]
        assert len(ids) == len(set(ids))
        assert all(self.model[job_id].state in ("available", "retryable") for job_id in ids)


SupervisorModel.TestCase.settings = settings(
    derandomize=True, deadline=None, database=None, max_examples=100, stateful_step_count=40
)
test_the_supervisor_core_behaves_like_its_model = SupervisorModel.TestCase
