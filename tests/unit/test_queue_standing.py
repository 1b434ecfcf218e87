"""QueueActor's standing claims, driven message by message: a parked fetch is served the moment
jobs it may take arrive, fewest active first, then longest parked."""

from __future__ import annotations

import random
from typing import Any

from actors.base import Untracked
from actors.clock import ManualClock
from actors.context import CoordinatorContext
from actors.coordinator_settings import CoordinatorSettings
from actors.jobs import Job
from actors.mail import Claimed, Hold, RoutingUpdate, Stand, Withdraw
from actors.queue_actor import QueueActor
from actors.routing import WorkerProfile
from actors.store.memory import MemoryStore
from transport import jobspec


class Recorder:
    def __init__(self) -> None:
        self.told: list[Any] = []

    def tell(self, message: Any) -> None:
        self.told.append(message)


def make_queue(*workers: str) -> tuple[QueueActor, Recorder]:
    """A queue actor (not started: driven by calling on_receive) that knows these workers."""
    ctx = CoordinatorContext(
        CoordinatorSettings(),
        ManualClock(),
        MemoryStore(),
        lambda peer, frame: None,
        Untracked(),
        random.Random(1),
    )
    supervisor = Recorder()
    ctx.supervisor = supervisor  # type: ignore[assignment]
    queue = QueueActor(ctx.activity, ctx, "a")
    queue.on_receive(RoutingUpdate(tuple(worker(w) for w in workers)))
    return queue, supervisor


def job(job_id: str, seq: int, route: dict[str, str] | None = None) -> Job:
    return Job.from_spec(jobspec.JobSpec(type="t", queue="a", route=route or {}), job_id, 0.0, seq)


def worker(worker_id: str, **labels: str) -> WorkerProfile:
    return WorkerProfile.build(worker_id, ["a"], ["t"], {k: [v] for k, v in labels.items()})


def served(supervisor: Recorder) -> list[tuple[str, int, list[str]]]:
    return [
        (c.worker_id, c.token, [j.id for j in c.jobs])
        for c in supervisor.told
        if isinstance(c, Claimed) and c.standing
    ]


def test_a_standing_claim_waits_until_a_job_arrives_then_is_served_once():
    queue, supervisor = make_queue("w1")
    queue.on_receive(Stand(7, worker("w1"), 2, (0, 0.0)))
    assert served(supervisor) == []

    queue.on_receive(Hold([job("j1", 1)]))
    queue.on_receive(Hold([job("j2", 2)]))  # its claim was used up by j1

    assert served(supervisor) == [("w1", 7, ["j1"])]
    assert len(queue.core) == 1


def test_a_stand_is_served_at_once_when_jobs_already_wait():
    queue, supervisor = make_queue("w1")
    queue.on_receive(Hold([job("j1", 1), job("j2", 2), job("j3", 3)]))
    queue.on_receive(Stand(7, worker("w1"), 2, (0, 0.0)))
    assert served(supervisor) == [("w1", 7, ["j1", "j2"])]


def test_standing_claims_are_served_fewest_active_first_then_longest_parked():
    queue, supervisor = make_queue("busy", "late", "early")
    queue.on_receive(Stand(1, worker("busy"), 1, (3, 0.0)))
    queue.on_receive(Stand(2, worker("late"), 1, (0, 5.0)))
    queue.on_receive(Stand(3, worker("early"), 1, (0, 1.0)))

    queue.on_receive(Hold([job("j1", 1), job("j2", 2)]))

    assert served(supervisor) == [("early", 3, ["j1"]), ("late", 2, ["j2"])]


def test_a_withdrawn_claim_is_not_served_and_a_stale_withdraw_changes_nothing():
    queue, supervisor = make_queue("w1", "w2")
    queue.on_receive(Stand(1, worker("w1"), 1, (0, 0.0)))
    queue.on_receive(Stand(2, worker("w2"), 1, (0, 1.0)))
    queue.on_receive(Withdraw(1, "w1"))
    queue.on_receive(Withdraw(99, "w2"))  # an older claim of w2's: its newer one stands

    queue.on_receive(Hold([job("j1", 1)]))

    assert served(supervisor) == [("w2", 2, ["j1"])]


def test_a_renewed_stand_replaces_the_workers_earlier_one():
    queue, supervisor = make_queue("w1")
    queue.on_receive(Stand(1, worker("w1"), 1, (1, 0.0)))
    queue.on_receive(Stand(2, worker("w1"), 2, (0, 0.0)))
    queue.on_receive(Hold([job("j1", 1), job("j2", 2)]))
    assert served(supervisor) == [("w1", 2, ["j1", "j2"])]


def test_a_job_goes_to_the_most_specific_standing_worker_and_to_others_once_it_leaves():
    queue, supervisor = make_queue()
    plain, gpu = worker("plain"), worker("gpu", gpu="yes")
    queue.on_receive(RoutingUpdate((plain, gpu)))
    queue.on_receive(Stand(1, plain, 1, (0, 0.0)))  # parked longer, but less specific
    queue.on_receive(Stand(2, gpu, 1, (0, 1.0)))
    queue.on_receive(Hold([job("j1", 1, route={"gpu": "yes"}), job("j2", 2, route={"gpu": "yes"})]))
    assert served(supervisor) == [("gpu", 2, ["j1"])]

    queue.on_receive(RoutingUpdate((plain,)))  # the gpu worker left: j2 may go to plain now
    assert served(supervisor) == [("gpu", 2, ["j1"]), ("plain", 1, ["j2"])]
