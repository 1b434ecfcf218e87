"""SupervisorCore driven message by message, to pin down interleavings that a simulation (which
runs every actor to quiescence between frames) cannot produce."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from typing import Any

from actors import lifecycle
from actors.clock import Timer
from actors.coordinator_settings import CoordinatorSettings
from actors.jobs import Job
from actors.mail import Claim, Claimed, Hold, Stand, Withdraw
from actors.store.memory import MemoryStore
from actors.supervisor_core import SupervisorCore
from transport import codec, jobspec
from transport import messages as m

PEER = b"worker-connection"
NOW = 1_700_000_000.0


class Recorder:
    """Stands in for an actor's mailbox: keeps what it was told."""

    def __init__(self) -> None:
        self.told: list[Any] = []

    def tell(self, message: Any) -> None:
        self.told.append(message)


class Port:
    """A SupervisorPort that keeps what the core did: replies, queue mail, events, timers."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.queues: dict[str, Recorder] = defaultdict(Recorder)
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.timers: list[tuple[float, Any, Timer]] = []
        self.published: tuple[Any, ...] = ()
        self.forgotten: list[bytes] = []
        self.asked: set[str] = set()  # cancels a client asked for
        self.settled: list[Job] = []
        self.missed: list[str] = []
        self.freed: list[str] = []  # jobs whose limit slot was given back
        self.taken: list[str] = []  # adopted jobs whose limit slot was taken
        self.store: MemoryStore | None = None  # where a settled cancel is saved, if set
        self._ids = itertools.count(1)

    def send(self, peer: bytes, frame: bytes) -> None:
        self.sent.append(codec.decode(frame))

    def tell_queue(self, queue: str, message: object) -> None:
        self.queues[queue].tell(message)

    def open_queue(self, queue: str) -> None:
        pass

    def publish(self, workers: tuple[Any, ...]) -> None:
        self.published = workers

    def emit(self, event: str, **payload: Any) -> None:
        self.events.append((event, payload))

    def later(self, delay: float, message: object) -> Timer:
        timer = Timer(delay, lambda: None)
        self.timers.append((delay, message, timer))
        return timer

    def new_worker_id(self) -> str:
        return f"w-{next(self._ids)}"

    def forget_peer(self, peer: bytes) -> None:
        self.forgotten.append(peer)

    def cancel_asked(self, job_id: str) -> bool:
        return job_id in self.asked

    def settle_cancel(self, job: Job, now: float) -> None:
        lifecycle.cancel(job, now)
        if self.store is not None:
            self.store.save(job)
        self.asked.discard(job.id)
        self.settled.append(job)

    def cancel_missed(self, job_id: str) -> None:
        self.missed.append(job_id)

    def free_limit(self, job: Job) -> None:
        self.freed.append(job.id)

    def take_limit(self, job: Job) -> None:
        self.taken.append(job.id)


def make_core(settings: CoordinatorSettings | None = None) -> tuple[SupervisorCore, Port, list]:
    port = Port()
    core = SupervisorCore(
        settings or CoordinatorSettings(), MemoryStore(), port, random.Random(1), 1024 * 1024
    )
    return core, port, port.sent


def register(worker_id: str, queues: tuple[str, ...], concurrency: int) -> m.Register:
    return m.Register(2, worker_id, queues, concurrency, frozenset(), {}, "host", 1, None, ())


def claims(queues: Port, name: str) -> list[Claim]:
    return [message for message in queues.queues[name].told if isinstance(message, Claim)]


def told(queues: Port, name: str, kind: type) -> list[Any]:
    return [message for message in queues.queues[name].told if isinstance(message, kind)]


def _parked_worker(core: SupervisorCore, queues: Port, sent: list[dict[str, Any]], n: int = 1):
    """A registered worker (queues a then b, concurrency n) whose fetch found both empty."""
    core.handle(NOW, PEER, m.Hello(1, "worker", "host", 1))
    worker_id = sent[-1]["worker_id"]
    register = m.Register(2, worker_id, ("a", "b"), n, frozenset(), {}, "host", 1, None, ())
    core.handle(NOW, PEER, register)
    core.handle(NOW, PEER, m.Fetch(3, worker_id, n, None, 5.0))
    token = claims(queues, "a")[-1].token
    core.claimed(NOW, Claimed(token, worker_id, "a", []))
    core.claimed(NOW, Claimed(token, worker_id, "b", []))
    return worker_id


def _job(job_id: str, queue: str = "a") -> Job:
    return Job.from_spec(jobspec.JobSpec(type="t", queue=queue), job_id, 0.0, 1)


def test_a_fetch_that_found_nothing_stands_at_every_queue_and_waits():
    core, queues, sent = make_core()
    worker_id = _parked_worker(core, queues, sent, n=2)

    stands = told(queues, "a", Stand) + told(queues, "b", Stand)
    assert len(stands) == 2 and stands[0] == stands[1]  # the same standing claim at a and b
    assert stands[0].worker.worker_id == worker_id and stands[0].count == 2
    assert stands[0].rank == (0, NOW)  # nothing active, parked just now
    assert len(claims(queues, "a")) == 1  # no claim is repeated while it stands
    assert not [reply for reply in sent if reply.get("rid") == 3]  # still held


def test_a_served_standing_claim_answers_the_fetch_and_the_other_queues_are_withdrawn():
    core, queues, sent = make_core()
    worker_id = _parked_worker(core, queues, sent)
    stand = told(queues, "b", Stand)[-1]
    job = _job("job-1", "b")
    core.store.add([job])

    core.claimed(NOW, Claimed(stand.token, worker_id, "b", [job], standing=True))

    assert [[j["id"] for j in reply["jobs"]] for reply in sent if reply.get("rid") == 3] == [
        ["job-1"]
    ]
    assert job.state == "active" and job.attempt == 1
    assert told(queues, "a", Withdraw) == [Withdraw(stand.token, worker_id)]
    assert told(queues, "b", Withdraw) == []  # b dropped the claim it served


def test_jobs_beyond_the_room_or_for_a_claim_no_longer_standing_go_back():
    core, queues, sent = make_core()
    worker_id = _parked_worker(core, queues, sent)  # room for one job
    stand = told(queues, "a", Stand)[-1]
    first, extra, late = _job("job-1"), _job("job-2"), _job("job-3", "b")

    core.claimed(NOW, Claimed(stand.token, worker_id, "a", [first, extra], standing=True))
    core.claimed(NOW, Claimed(stand.token, worker_id, "b", [late], standing=True))  # b served too

    held_back = told(queues, "a", Hold) + told(queues, "b", Hold)
    assert [j.id for message in held_back for j in message.jobs] == ["job-2", "job-3"]
    assert (extra.state, late.state) == ("available", "available")
    assert set(core.sessions.live[worker_id].active) == {"job-1"}


def test_a_standing_claim_is_renewed_with_more_room_when_a_slot_frees():
    core, queues, sent = make_core()
    worker_id, _ = _worker_holding(core, queues, sent, 2)
    core.handle(NOW, PEER, m.Fetch(4, worker_id, 2, None, 5.0))  # full: parks without standing
    assert told(queues, "a", Stand) == []

    core.handle(NOW, PEER, m.Ack(5, worker_id, "job-0", 1, None))  # one slot frees: claims again
    token = claims(queues, "a")[-1].token
    core.claimed(NOW, Claimed(token, worker_id, "a", []))
    first = told(queues, "a", Stand)[-1]
    assert first.count == 1 and first.rank[0] == 1

    core.handle(NOW, PEER, m.Ack(6, worker_id, "job-1", 1, None))  # renewed, not re-claimed
    renewed = told(queues, "a", Stand)[-1]
    assert renewed.count == 2 and renewed.rank[0] == 0 and renewed.token != first.token
    assert claims(queues, "a")[-1].token == token

    stale = _job("job-9")
    too_early = Claimed(first.token, worker_id, "a", [stale], standing=True)
    core.claimed(NOW, too_early)
    assert [j.id for message in told(queues, "a", Hold) for j in message.jobs] == ["job-9"]


def test_a_worker_told_to_go_quiet_withdraws_its_standing_claims():
    core, queues, sent = make_core()
    worker_id = _parked_worker(core, queues, sent)
    stand = told(queues, "a", Stand)[-1]
    core.handle(NOW, PEER, m.Direct(4, worker_id, "quiet"))
    core.handle(NOW, PEER, m.Beat(5, worker_id, "running", ()))

    assert told(queues, "a", Withdraw) == [Withdraw(stand.token, worker_id)]
    assert told(queues, "b", Withdraw) == [Withdraw(stand.token, worker_id)]
    job = _job("job-1")
    core.claimed(NOW, Claimed(stand.token, worker_id, "a", [job], standing=True))  # crossed paths
    assert job.state == "available" and not core.sessions.live[worker_id].active


def test_a_full_worker_parks_its_fetch_without_claiming_or_standing():
    core, queues, sent = make_core()
    core.handle(NOW, PEER, m.Hello(1, "worker", "host", 1))
    worker_id = sent[-1]["worker_id"]
    core.handle(NOW, PEER, register(worker_id, ("a",), 1))
    core.handle(NOW, PEER, m.Fetch(3, worker_id, 1, None, 0.0))
    job = Job.from_spec(jobspec.JobSpec(type="t", queue="a"), "job-1", 0.0, 1)
    core.claimed(NOW, Claimed(claims(queues, "a")[-1].token, worker_id, "a", [job]))

    core.handle(NOW, PEER, m.Fetch(4, worker_id, 1, None, 5.0))

    assert len(claims(queues, "a")) == 1
    assert told(queues, "a", Stand) == []
    assert not [reply for reply in sent if reply.get("rid") == 4]  # held until room or wait ends


def _worker_holding(core: SupervisorCore, queues: Port, sent: list[dict[str, Any]], n: int):
    """A registered worker (concurrency n) whose fetch was handed n jobs of queue a."""
    core.handle(NOW, PEER, m.Hello(1, "worker", "host", 1))
    worker_id = sent[-1]["worker_id"]
    core.handle(NOW, PEER, register(worker_id, ("a",), n))
    core.handle(NOW, PEER, m.Fetch(3, worker_id, n, None, 0.0))
    jobs = [Job.from_spec(jobspec.JobSpec(type="t"), f"job-{i}", 0.0, i) for i in range(n)]
    for job in jobs:
        core.store.add([job])
    core.claimed(NOW, Claimed(claims(queues, "a")[-1].token, worker_id, "a", jobs))
    return worker_id, jobs


def test_hello_announces_the_outcomes_extension_and_the_frame_limit():
    core, _, sent = make_core()
    core.handle(NOW, PEER, m.Hello(1, "worker", "host", 1))
    assert sent[-1]["extensions"] == ["outcomes"]
    assert sent[-1]["max_message_size"] == 1024 * 1024


def test_outcomes_settle_each_item_as_its_own_ack_or_fail_would_in_one_reply():
    core, queues, sent = make_core()
    worker_id, jobs = _worker_holding(core, queues, sent, 5)
    retry = m.ErrorInfo("Boom", "again")
    final = m.ErrorInfo("Fatal", "no", retryable=False)
    items = (
        m.JobOutcome("job-0", 1, result=42),
        m.JobOutcome("job-1", 1, error=retry),
        m.JobOutcome("job-2", 1, error=final),
        m.JobOutcome("job-3", 2, result=1),  # an older/other attempt: fenced
        m.JobOutcome("nope", 1, result=1),
        m.JobOutcome("job-4", 1, too_large=True),
        m.JobOutcome("job-0", 1, result=43),  # the same job twice: the second is not_owner
    )
    core.handle(NOW, PEER, m.Outcomes(9, worker_id, items))

    results = sent[-1]["results"]
    assert sent[-1]["rid"] == 9 and len(results) == len(items)
    assert results[0] == {"state": "completed"}
    assert results[1]["state"] == "retryable" and results[1]["next_attempt_at"] > 0
    assert results[2] == {"state": "discarded"}
    assert [r.get("code") for r in results[3:]] == [
        "not_owner",
        "unknown_job",
        "too_large",
        "not_owner",
    ]
    assert [job.state for job in jobs] == [
        "completed",
        "retryable",
        "discarded",
        "active",
        "active",
    ]
    assert jobs[0].result == 42
    assert set(core.sessions.live[worker_id].active) == {"job-3", "job-4"}


def test_a_refused_outcomes_frame_changes_nothing():
    core, queues, sent = make_core()
    worker_id, jobs = _worker_holding(core, queues, sent, 1)
    core.handle(NOW, b"another-connection", m.Outcomes(9, worker_id, (m.JobOutcome("job-0", 1),)))
    assert sent[-1]["code"] == "unknown_worker"
    assert jobs[0].state == "active"


def test_a_connection_is_forgotten_once_its_last_session_has_been_over_for_the_retention():
    core, port, sent = make_core()
    gone, replaced = b"gone-connection", b"replaced-connection"
    for peer in (gone, replaced):
        core.handle(NOW, peer, m.Hello(1, "worker", "host", 1))
    core.handle(NOW, gone, m.Deregister(2, sent[0]["worker_id"]))
    core.handle(NOW, replaced, m.Hello(3, "worker", "host", 1))  # ends its first session
    retention = core.settings.terminated_retention

    half = NOW + retention / 2
    core.touch(half, replaced)
    core.tick(half)
    assert port.forgotten == []  # ended, but not for long enough yet

    later = half + retention / 2 + 1
    core.touch(later, replaced)
    core.tick(later)
    assert port.forgotten == [gone]  # the other has a newer session live on the same connection


def test_a_claim_that_comes_back_after_the_worker_was_told_to_stop_goes_back_to_its_queue():
    core, queues, sent = make_core()
    core.handle(NOW, PEER, m.Hello(1, "worker", "host", 1))
    worker_id = sent[-1]["worker_id"]
    register = m.Register(2, worker_id, ("a", "b"), 1, frozenset(), {}, "host", 1, None, ())
    core.handle(NOW, PEER, register)
    core.handle(NOW, PEER, m.Fetch(3, worker_id, 1, None, 0.0))
    token = claims(queues, "a")[-1].token
    core.handle(NOW, PEER, m.Beat(4, worker_id, "terminate", ()))  # stopping, the claim still out

    job = Job.from_spec(jobspec.JobSpec(type="t", queue="a"), "job-1", 0.0, 1)
    core.claimed(NOW, Claimed(token, worker_id, "a", [job]))

    assert [j.id for message in told(queues, "a", Hold) for j in message.jobs] == ["job-1"]
    assert job.state == "available" and not core.sessions.live[worker_id].active
    assert claims(queues, "b") == []  # and no later queue is asked
    assert [reply["jobs"] for reply in sent if reply.get("rid") == 3] == [[]]


# -- limits: every way out of active gives the job's slot back (actors.limits) ------------------


def test_every_way_a_job_stops_being_active_gives_its_limit_slot_back():
    core, queues, sent = make_core()
    worker_id, jobs = _worker_holding(core, queues, sent, 4)
    core.handle(NOW, PEER, m.Ack(5, worker_id, "job-0", 1, None))
    core.handle(NOW, PEER, m.Fail(6, worker_id, "job-1", 1, m.ErrorInfo("Boom", "again")))
    queues.asked.add("job-2")
    core.cancel(NOW, "job-2")
    assert queues.freed == ["job-0", "job-1", "job-2"]
    core.tick(NOW + 31.0)  # silent past heartbeat_timeout: recovered as worker_lost
    assert queues.freed == ["job-0", "job-1", "job-2", "job-3"]
    assert jobs[3].state == "available"


def test_a_deregistered_workers_job_frees_its_slot_and_goes_back_to_its_queue():
    core, queues, sent = make_core()
    worker_id, _ = _worker_holding(core, queues, sent, 1)
    core.handle(NOW, PEER, m.Deregister(7, worker_id))
    assert queues.freed == ["job-0"]
    assert [j.id for message in told(queues, "default", Hold) for j in message.jobs] == ["job-0"]


def test_claimed_jobs_that_go_back_unused_give_their_slots_back():
    core, queues, sent = make_core()
    worker_id = _parked_worker(core, queues, sent)  # room for one job
    stand = told(queues, "a", Stand)[-1]
    first, extra = _job("job-1"), _job("job-2")
    core.claimed(NOW, Claimed(stand.token, worker_id, "a", [first, extra], standing=True))
    assert queues.freed == ["job-2"]  # job-1 went to the worker and keeps its slot
    core.claimed(NOW, Claimed(999, "w-gone", "a", [_job("job-3")]))  # nobody waits for it
    assert queues.freed == ["job-2", "job-3"]


def test_a_claimed_job_whose_cancel_was_asked_gives_its_slot_back():
    core, queues, sent = make_core()
    worker_id = _parked_worker(core, queues, sent)
    stand = told(queues, "a", Stand)[-1]
    queues.asked.add("job-1")
    core.claimed(NOW, Claimed(stand.token, worker_id, "a", [_job("job-1")], standing=True))
    assert queues.freed == ["job-1"] and [j.id for j in queues.settled] == ["job-1"]


def test_jobs_found_active_at_a_restart_take_their_slots_and_resumed_ones_keep_them():
    core, queues, _ = make_core()
    adopted = [_job(f"job-{n}") for n in range(3)]
    for job in adopted:
        job.state, job.worker_id, job.attempt = "active", "w-old", 1
    core.adopt(NOW, adopted)
    assert queues.taken == ["job-0", "job-1", "job-2"]
    core.tick(NOW + 31.0)  # never resumed: recovered, slots given back
    assert queues.freed == ["job-0", "job-1", "job-2"]
