"""SupervisorCore driven message by message, to pin down interleavings that a simulation (which
runs every actor to quiescence between frames) cannot produce."""

from __future__ import annotations

import random
from typing import Any

from actors.base import Activity
from actors.clock import ManualClock
from actors.context import CoordinatorContext, CoordinatorSettings
from actors.jobs import Job
from actors.mail import Claim, Claimed, JobsAvailable
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
