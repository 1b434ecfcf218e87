"""Cancel (PROTOCOL.md section 4) while the job moves between its queue and the supervisor.

The real QueueActor and WorkerSupervisor (not started: driven message by message), so a test
chooses the order in which a cancel and the job's own hand-offs arrive. Whatever the order,
every cancel gets one answer: `cancelled`, or the state of a job that ended first; never an
error, never silence.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

from actors.base import Untracked
from actors.clock import ManualClock
from actors.context import CoordinatorContext
from actors.coordinator_settings import CoordinatorSettings
from actors.jobs import Job
from actors.mail import CancelJob, Claim, Claimed, Hold, Inbound, RoutingUpdate
from actors.queue_actor import QueueActor
from actors.store.memory import MemoryStore
from actors.worker_supervisor import WorkerSupervisor
from transport import codec, jobspec
from transport import messages as m

WORKER = b"worker-connection"
CLIENT = b"client-connection"


class Mail:
    """An actor's mailbox that holds what it was told until the test delivers it."""

    def __init__(self) -> None:
        self.queued: deque[Any] = deque()

    def tell(self, message: Any) -> None:
        self.queued.append(message)


class Queues:
    def __init__(self, mail: Mail) -> None:
        self.mail = mail

    def get(self, name: str) -> Mail:
        assert name == "a"
        return self.mail

    def publish(self, workers: Any) -> None:
        self.mail.tell(RoutingUpdate(workers))


class World:
    """One queue `a`, the supervisor, one worker (concurrency 1) and a client."""

    def __init__(self) -> None:
        self.replies: list[tuple[bytes, dict[str, Any]]] = []
        self.ctx = ctx = CoordinatorContext(
            CoordinatorSettings(),
            ManualClock(),
            MemoryStore(),
            lambda peer, frame: self.replies.append((peer, codec.decode(frame))),
            Untracked(),
            random.Random(1),
        )
        self.to_queue, self.to_supervisor = Mail(), Mail()
        ctx.queues = Queues(self.to_queue)  # type: ignore[assignment]
        ctx.supervisor = self.to_supervisor  # type: ignore[assignment]
        self.queue = QueueActor(ctx.activity, ctx, "a")
        self.supervisor = WorkerSupervisor(ctx.activity, ctx)
        self.rid = 0
        self.worker(m.Hello(self.next_rid(), "host", "host", 1))
        self.worker_id = self.replies[-1][1]["worker_id"]
        register = m.Register(
            self.next_rid(), self.worker_id, ("a",), 1, frozenset(), {}, "host", 1, None, ()
        )
        self.worker(register)
        self.deliver_queue()  # the routing update

    def next_rid(self) -> int:
        self.rid += 1
        return self.rid

    def worker(self, request: m.Request) -> None:
        self.supervisor.on_receive(Inbound(WORKER, request))

    def deliver_queue(self, only: type | None = None) -> None:
        for _ in range(len(self.to_queue.queued)):
            message = self.to_queue.queued.popleft()
            if only is None or isinstance(message, only):
                self.queue.on_receive(message)
            else:
                self.to_queue.queued.append(message)

    def deliver_supervisor(self, only: type | None = None) -> None:
        for _ in range(len(self.to_supervisor.queued)):
            message = self.to_supervisor.queued.popleft()
            if only is None or isinstance(message, only):
                self.supervisor.on_receive(message)
            else:
                self.to_supervisor.queued.append(message)

    def enqueue(self) -> str:
        job = Job.from_spec(jobspec.JobSpec(type="t", queue="a"), "job-1", self.ctx.clock.now(), 1)
        self.ctx.store.add([job])
        self.queue.on_receive(Hold([job]))
        return job.id

    def fetch(self) -> int:
        rid = self.next_rid()
        self.worker(m.Fetch(rid, self.worker_id, 1, None, 0.0))
        return rid

    def cancel(self, job_id: str) -> int:
        rid = self.next_rid()
        self.ctx.cancels.request(job_id, CLIENT, rid)  # what the dispatcher does
        return rid

    def answers(self, rid: int) -> list[dict[str, Any]]:
        return [body for peer, body in self.replies if peer == CLIENT and body.get("rid") == rid]

    def fetched(self, rid: int) -> list[str]:
        [reply] = [body for peer, body in self.replies if peer == WORKER and body["rid"] == rid]
        return [job["id"] for job in reply["jobs"]]

    def state(self, job_id: str) -> str:
        stored = self.ctx.store.get(job_id)
        assert stored is not None
        return stored["state"]


def test_a_waiting_job_is_cancelled_by_its_queue():
    world = World()
    job_id = world.enqueue()

    rid = world.cancel(job_id)
    assert world.to_queue.queued[-1] == CancelJob(job_id)  # looked up: it waits in queue a
    world.deliver_queue()

    assert world.answers(rid) == [{"type": "reply", "rid": rid, "state": "cancelled"}]
    assert world.state(job_id) == "cancelled"
    fetch = world.fetch()
    world.deliver_queue()
    world.deliver_supervisor()
    assert world.fetched(fetch) == []


def test_a_cancel_that_meets_the_job_on_its_way_to_the_supervisor_is_settled_on_arrival():
    world = World()
    job_id = world.enqueue()
    fetch = world.fetch()
    world.deliver_queue(only=Claim)  # the claim: the job is now in flight
    assert [type(message) for message in world.to_supervisor.queued] == [Claimed]

    rid = world.cancel(job_id)  # the store still says available: the queue is nudged
    world.deliver_queue()
    assert world.answers(rid) == []  # the queue no longer holds it; no bounce, no error
    world.deliver_supervisor()  # the claim arrives: the activation is saved, then the cancel seen

    assert world.answers(rid) == [{"type": "reply", "rid": rid, "state": "cancelled"}]
    assert world.fetched(fetch) == [] and world.state(job_id) == "cancelled"
    assert not world.supervisor.core.sessions.live[world.worker_id].active


def _active_job(world: World) -> str:
    job_id = world.enqueue()
    world.fetch()
    world.deliver_queue()
    world.deliver_supervisor()
    assert world.state(job_id) == "active"
    return job_id


def test_an_active_job_is_cancelled_by_the_supervisor_and_later_results_are_not_owner():
    world = World()
    job_id = _active_job(world)

    rid = world.cancel(job_id)
    assert list(world.to_supervisor.queued) == [CancelJob(job_id)]
    world.deliver_supervisor()

    assert world.answers(rid) == [{"type": "reply", "rid": rid, "state": "cancelled"}]
    world.worker(m.Beat(50, world.worker_id, "running", (job_id,)))
    assert world.replies[-1][1]["cancel_job_ids"] == [job_id]
    world.worker(m.Ack(51, world.worker_id, job_id, 1, None))
    assert world.replies[-1][1]["code"] == "not_owner"


def test_a_cancel_that_crosses_a_failed_attempt_is_settled_by_the_queue_in_either_order():
    for hold_first in (False, True):
        world = World()
        job_id = _active_job(world)
        rid = world.cancel(job_id)  # the supervisor is nudged ...
        world.worker(m.Fail(52, world.worker_id, job_id, 1, m.ErrorInfo("Boom", "again")))
        assert [type(message) for message in world.to_queue.queued] == [Hold]  # ... the job left

        if hold_first:
            world.deliver_queue()
            world.deliver_supervisor()
        else:
            world.deliver_supervisor()
            assert world.answers(rid) == []  # on its way to the queue, which will see it
            world.deliver_queue()

        assert world.answers(rid) == [{"type": "reply", "rid": rid, "state": "cancelled"}]
        assert world.state(job_id) == "cancelled"


def test_a_cancel_that_loses_the_race_to_an_ack_answers_completed():
    world = World()
    job_id = _active_job(world)
    rid = world.cancel(job_id)
    world.worker(m.Ack(53, world.worker_id, job_id, 1, "done"))

    world.deliver_supervisor()

    assert world.answers(rid) == [{"type": "reply", "rid": rid, "state": "completed"}]


def test_two_cancels_of_one_job_are_each_answered_once():
    world = World()
    job_id = world.enqueue()
    first, second = world.cancel(job_id), world.cancel(job_id)
    world.deliver_queue()
    third = world.cancel(job_id)  # already cancelled: answered from the store at once

    for rid in (first, second, third):
        assert world.answers(rid) == [{"type": "reply", "rid": rid, "state": "cancelled"}]
