"""Paused queues (actors/pauses.py): a paused queue keeps taking jobs and hands none out, a
fetch parked on it is served the moment it is resumed, the reply waits for the change to be
durable, and a queue started over a store that says it is paused starts paused."""

from __future__ import annotations

import random
from typing import Any

from actors import events, pauses
from actors.base import Untracked
from actors.clock import ManualClock
from actors.context import CoordinatorContext
from actors.coordinator_settings import CoordinatorSettings
from actors.mail import Claim, Hold, SetPaused, Stand
from actors.queue_actor import QueueActor
from actors.store.memory import MemoryStore
from tests.unit.test_queue_standing import Recorder, job, served, worker
from transport import codec


class Deferred(MemoryStore):
    """A store whose commits land when the test says (`land`)."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting: list[Any] = []

    def after_commit(self, callback: Any) -> None:
        self.waiting.append(callback)

    def land(self) -> None:
        while self.waiting:
            self.waiting.pop(0)()


def make(store: MemoryStore) -> tuple[QueueActor, Recorder, list[tuple[bytes, Any]], list[Any]]:
    sent: list[tuple[bytes, Any]] = []
    ctx = CoordinatorContext(
        CoordinatorSettings(),
        ManualClock(),
        store,
        lambda peer, frame: sent.append((peer, codec.decode(frame))),
        Untracked(),
        random.Random(1),
    )
    told: list[Any] = []
    ctx.events.subscribe(lambda name, payload: told.append((name, payload)))
    supervisor = Recorder()
    ctx.supervisor = supervisor  # type: ignore[assignment]
    queue = QueueActor(ctx.activity, ctx, "a", (worker("w1"),))
    return queue, supervisor, sent, told


def test_a_paused_queue_takes_jobs_hands_none_out_and_serves_a_parked_fetch_on_resume():
    store = Deferred()
    queue, supervisor, sent, told = make(store)
    queue.on_receive(SetPaused(True, b"admin", 1))
    assert sent == []  # not before the change is durable
    store.land()
    assert sent == [(b"admin", {"type": "reply", "rid": 1, "queue": "a", "paused": True})]
    assert store.settings() == {pauses.key("a"): pauses.PAUSED}
    assert told == [(events.QUEUE_PAUSED, {"queue": "a", "paused": True})]

    queue.on_receive(Hold([job("j1", 1)]))
    queue.on_receive(Stand(7, worker("w1"), 1, (0, 0.0)))  # a fetch parks: nothing to take
    queue.on_receive(Claim(8, worker("w1"), 1))
    assert served(supervisor) == []
    assert [c.jobs for c in supervisor.told if c.token == 8] == [[]]
    assert len(queue.core) == 1

    queue.on_receive(SetPaused(False, b"admin", 2))
    assert served(supervisor) == [("w1", 7, ["j1"])]  # at once, before the reply
    store.land()
    assert sent[-1] == (b"admin", {"type": "reply", "rid": 2, "queue": "a", "paused": False})
    assert store.settings() == {}


def test_pausing_twice_writes_and_tells_once_and_answers_both():
    store = Deferred()
    queue, _, sent, told = make(store)
    queue.on_receive(SetPaused(True, b"p", 1))
    queue.on_receive(SetPaused(True, b"p", 2))
    store.land()
    assert [body["rid"] for _, body in sent] == [1, 2]
    assert len(told) == 1


def test_a_queue_started_over_a_store_that_says_it_is_paused_starts_paused():
    store = MemoryStore()
    store.put_setting(pauses.key("a"), pauses.PAUSED)
    queue, supervisor, _, _ = make(store)
    queue.on_receive(Hold([job("j1", 1)]))
    queue.on_receive(Stand(7, worker("w1"), 1, (0, 0.0)))
    assert served(supervisor) == [] and not queue.core.has_ready()
    queue.on_receive(SetPaused(False, b"p", 1))
    assert served(supervisor) == [("w1", 7, ["j1"])]


def test_paused_queues_are_read_from_the_settings_by_name():
    settings = {pauses.key("b"): b"1", pauses.key("a"): b"1", "other": b"x"}
    assert pauses.paused_queues(settings) == ["a", "b"]
