"""SupervisorCore driven message by message, to pin down interleavings that a simulation (which
runs every actor to quiescence between frames) cannot produce."""

from __future__ import annotations

import random
from typing import Any

from actors.base import Activity
from actors.clock import ManualClock
from actors.context import CoordinatorContext, CoordinatorSettings
from actors.jobs import Job
from actors.mail import Claim, Claimed, JobsAvailable, Tick
from actors.store.memory import MemoryStore
from actors.worker_supervisor import SupervisorCore
from transport import codec
from transport import messages as m

PEER = b"worker-connection"


class Recorder:
    """Stands in for a queue actor's mailbox: keeps what it was told."""

    def __init__(self) -> None:
        self.told: list[Any] = []

    def tell(self, message: Any) -> None:
        self.told.append(message)


class Queues:
    def __init__(self) -> None:
        self.mailboxes: dict[str, Recorder] = {}

    def get(self, name: str) -> Recorder:
        return self.mailboxes.setdefault(name, Recorder())

    def names(self) -> list[str]:
        return sorted(self.mailboxes)

    def publish(self, workers: Any) -> None:
        pass


def make_core() -> tuple[SupervisorCore, Queues, list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []
    ctx = CoordinatorContext(
        CoordinatorSettings(),
        ManualClock(),
        MemoryStore(),
        lambda peer, frame: sent.append(codec.decode(frame)),
        Activity(),
        random.Random(1),
    )
    queues = Queues()
    ctx.queues = queues  # type: ignore[assignment]
    ctx.supervisor = Recorder()  # type: ignore[assignment]
    return SupervisorCore(ctx), queues, sent


def claims(queues: Queues, name: str) -> list[Claim]:
    return [message for message in queues.get(name).told if isinstance(message, Claim)]


def test_jobs_arriving_in_an_earlier_queue_while_later_queues_are_asked_are_not_missed():
    core, queues, sent = make_core()
    core.handle(PEER, m.Hello(1, "worker", "host", 1))
    worker_id = sent[-1]["worker_id"]
    register = m.Register(2, worker_id, ("a", "b"), 1, frozenset(), {}, "host", 1, None, ())
    core.handle(PEER, register)
    core.handle(PEER, m.Fetch(3, worker_id, 1, None, 5.0))

    token = claims(queues, "a")[-1].token
    core.claimed(Claimed(token, worker_id, "a", []))  # queue a was empty when asked
    assert len(claims(queues, "b")) == 1  # now asking b
    core.jobs_available(JobsAvailable("a"))  # a job lands in a meanwhile
    core.claimed(Claimed(token, worker_id, "b", []))  # b is empty too

    assert len(claims(queues, "a")) == 2, "the fetch must ask queue a again, not park past it"


def test_a_fetch_parks_when_no_news_arrived_while_it_asked_its_queues():
    core, queues, sent = make_core()
    core.handle(PEER, m.Hello(1, "worker", "host", 1))
    worker_id = sent[-1]["worker_id"]
    core.handle(PEER, m.Register(2, worker_id, ("a", "b"), 1, frozenset(), {}, "host", 1, None, ()))
    core.handle(PEER, m.Fetch(3, worker_id, 1, None, 5.0))
    token = claims(queues, "a")[-1].token
    core.claimed(Claimed(token, worker_id, "a", []))
    core.claimed(Claimed(token, worker_id, "b", []))

    assert len(claims(queues, "a")) == 1
    assert worker_id in core.parked["a"] and worker_id in core.parked["b"]
    assert not [reply for reply in sent if reply.get("rid") == 3]  # still held


def test_a_claim_for_a_fetch_that_was_replaced_goes_back_to_its_queue():
    core, queues, sent = make_core()
    core.handle(PEER, m.Hello(1, "worker", "host", 1))
    worker_id = sent[-1]["worker_id"]
    core.handle(PEER, m.Register(2, worker_id, ("a",), 2, frozenset(), {}, "host", 1, None, ()))
    core.handle(PEER, m.Fetch(3, worker_id, 1, None, 5.0))
    old_token = claims(queues, "a")[-1].token
    core.handle(PEER, m.Fetch(4, worker_id, 1, None, 5.0))  # answers fetch 3 with jobs: []

    job = Job.from_spec(m.JobSpec(type="t"), "job-1", 0.0, 1)
    core.claimed(Claimed(old_token, worker_id, "a", [job]))

    held_back = [message for message in queues.get("a").told if type(message).__name__ == "Hold"]
    assert [j.id for message in held_back for j in message.jobs] == ["job-1"]
    assert [reply["jobs"] for reply in sent if reply.get("rid") == 3] == [[]]
    assert job.state == "available" and job.attempt == 0


def test_a_full_worker_parks_its_fetch_even_when_its_queue_has_news_it_has_not_seen():
    core, queues, sent = make_core()
    core.handle(PEER, m.Hello(1, "worker", "host", 1))
    worker_id = sent[-1]["worker_id"]
    core.handle(PEER, m.Register(2, worker_id, ("a",), 1, frozenset(), {}, "host", 1, None, ()))
    core.handle(PEER, m.Fetch(3, worker_id, 1, None, 0.0))
    job = Job.from_spec(m.JobSpec(type="t", queue="a"), "job-1", 0.0, 1)
    core.claimed(Claimed(claims(queues, "a")[-1].token, worker_id, "a", [job]))
    core.jobs_available(JobsAvailable("a"))  # news the worker has no slot for

    core.handle(PEER, m.Fetch(4, worker_id, 1, None, 5.0))  # used to recurse without end

    assert worker_id in core.parked["a"]
    assert len(claims(queues, "a")) == 1


def _worker_holding(core: SupervisorCore, queues: Queues, sent: list[dict[str, Any]], n: int):
    """A registered worker (concurrency n) whose fetch was handed n jobs of queue a."""
    core.handle(PEER, m.Hello(1, "worker", "host", 1))
    worker_id = sent[-1]["worker_id"]
    core.handle(PEER, m.Register(2, worker_id, ("a",), n, frozenset(), {}, "host", 1, None, ()))
    core.handle(PEER, m.Fetch(3, worker_id, n, None, 0.0))
    jobs = [Job.from_spec(m.JobSpec(type="t"), f"job-{i}", 0.0, i) for i in range(n)]
    for job in jobs:
        core.ctx.store.add([job])
    core.claimed(Claimed(claims(queues, "a")[-1].token, worker_id, "a", jobs))
    return worker_id, jobs


def test_hello_announces_the_outcomes_extension_and_the_frame_limit():
    core, _, sent = make_core()
    core.handle(PEER, m.Hello(1, "worker", "host", 1))
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
    core.handle(PEER, m.Outcomes(9, worker_id, items))

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
    assert set(core.sessions[worker_id].active) == {"job-3", "job-4"}


def test_a_refused_outcomes_frame_changes_nothing():
    core, queues, sent = make_core()
    worker_id, jobs = _worker_holding(core, queues, sent, 1)
    core.handle(b"another-connection", m.Outcomes(9, worker_id, (m.JobOutcome("job-0", 1),)))
    assert sent[-1]["code"] == "unknown_worker"
    assert jobs[0].state == "active"


def test_a_connection_is_forgotten_once_its_last_session_has_been_over_for_the_retention():
    core, _, sent = make_core()
    clock, greeted = core.ctx.clock, core.ctx.greeted
    gone, replaced = b"gone-connection", b"replaced-connection"
    for peer in (gone, replaced):
        greeted.add(peer)  # the dispatcher's part when it routes a hello
        core.handle(peer, m.Hello(1, "worker", "host", 1))
    core.handle(gone, m.Deregister(2, sent[0]["worker_id"]))
    core.handle(replaced, m.Hello(3, "worker", "host", 1))  # ends its first session
    retention = core.ctx.settings.terminated_retention

    clock.advance(retention / 2)  # type: ignore[attr-defined]
    core.touch(replaced)
    core.tick(Tick(clock.now()))
    assert greeted == {gone, replaced}  # ended, but not for long enough yet

    clock.advance(retention / 2 + 1)  # type: ignore[attr-defined]
    core.touch(replaced)
    core.tick(Tick(clock.now()))
    assert greeted == {replaced}  # its newer session is live on the same connection
