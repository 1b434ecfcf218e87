"""A queue restoring a million jobs after a restart or takeover (mail.Restore) holds them a
batch at a time and serves the fetches that arrive between batches, oldest job first."""

from __future__ import annotations

from typing import Any

import pytest

from actors import queue_actor
from actors.mail import Restore, Stand
from actors.store import record
from tests.unit.test_queue_standing import job, make_queue, served, worker


class Posted:
    """The queue's own mailbox: what it posts to itself."""

    def __init__(self) -> None:
        self.told: list[Any] = []

    def post(self, message: Any) -> None:
        self.told.append(message)


def test_a_restore_holds_a_batch_at_a_time_and_serves_fetches_between_batches(monkeypatch):
    monkeypatch.setattr(queue_actor, "RESTORE_BATCH_JOBS", 2)
    queue, supervisor = make_queue("w1")
    itself = Posted()
    monkeypatch.setattr(queue, "mailbox", lambda: itself)
    records = [record.pack(job(f"j{n}", 0)) for n in range(5)]

    queue.on_receive(Restore(records, 100))
    [rest] = itself.told
    assert (rest.start, rest.first_seq, rest.records) == (2, 100, records)
    queue.on_receive(Stand(7, worker("w1"), 1, (0, 0.0)))  # a fetch, before the rest is back
    assert served(supervisor) == [("w1", 7, ["j0"])]

    while itself.told:  # the queue's own messages, as its mailbox would deliver them
        queue.on_receive(itself.told.pop(0))
    held = [queue.core.claim(worker("w1"), 1)[0] for _ in range(4)]
    assert [(j.id, j.seq) for j in held] == [("j1", 101), ("j2", 102), ("j3", 103), ("j4", 104)]
    assert not queue.core.has_ready()


@pytest.mark.parametrize("jobs", [0, 1, 2, 3])
def test_a_restore_of_any_size_holds_every_job_once(monkeypatch, jobs):
    monkeypatch.setattr(queue_actor, "RESTORE_BATCH_JOBS", 2)
    queue, _ = make_queue("w1")
    itself = Posted()
    monkeypatch.setattr(queue, "mailbox", lambda: itself)
    itself.told.append(Restore([record.pack(job(f"j{n}", 0)) for n in range(jobs)], 1))
    while itself.told:
        queue.on_receive(itself.told.pop(0))
    assert [queue.core.claim(worker("w1"), 1)[0].id for _ in range(jobs)] == [
        f"j{n}" for n in range(jobs)
    ]
    assert not queue.core.has_ready()
