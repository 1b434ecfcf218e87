"""The request-id part of the Store contract, held by every store (memory, SQLite, PostgreSQL):
a request id names the jobs its enqueue made for as long as the store holds any of them, so a
retried enqueue is answered with them (a Replay) instead of new jobs, across a close and reopen
too (the id is in each job's record); it is forgotten with its last job.
"""

from __future__ import annotations

from typing import Any

from actors import states
from actors.jobs import Job
from actors.store.base import Replay
from tests.unit.store_jobs import T0, end, make


def request(request_id: str, *numbers: int, **spec: Any) -> list[Job]:
    """The jobs of one enqueue carrying `request_id`, as the queue actor builds them."""
    jobs = [make(n, **spec) for n in numbers]
    for job in jobs:
        job.request_id = request_id
    return jobs


def ids(outcome: Any) -> list[str]:
    assert isinstance(outcome, Replay), outcome
    return [wire["id"] for wire in outcome.jobs]


def test_a_second_add_with_the_same_request_id_stores_nothing_and_replays_the_first(stores):
    store = stores.open()
    [job] = request("req-1", 1)
    assert store.add([job]) == [None]
    retry = request("req-1", 2)  # the same request again: new job objects, new ids
    replay = store.add(retry)
    assert replay == Replay([job.to_wire()])
    assert store.get(retry[0].id) is None
    assert store.counts()["default"][states.AVAILABLE] == 1


def test_a_replay_gives_the_jobs_current_states(stores):
    store = stores.open()
    [job] = request("req-1", 1)
    store.add([job])
    store.save(end(job, states.COMPLETED, T0 + 5, result=4))
    [replayed] = store.add(request("req-1", 2)).jobs
    assert replayed["state"] == states.COMPLETED and replayed["result"] == 4


def test_a_batch_replays_every_job_it_made_in_order_whatever_the_retry_holds(stores):
    store = stores.open()
    batch = request("req-b", 3, 1, 2)  # ids job-00003, job-00001, job-00002: order made
    assert store.add(batch) == [None, None, None]
    assert ids(store.add(request("req-b", 7, 8, 9))) == [job.id for job in batch]
    # the id names the request: a retry with another queue or count is answered the same
    assert ids(store.add(request("req-b", 10, queue="other"))) == [job.id for job in batch]
    assert "other" not in store.counts()


def test_requests_with_other_ids_or_none_are_not_replays(stores):
    store = stores.open()
    store.add(request("req-1", 1))
    assert store.add(request("req-2", 2)) == [None]
    assert store.add([make(3)]) == [None]
    assert store.add([make(4)]) == [None]
    assert store.counts()["default"][states.AVAILABLE] == 4


def test_a_request_that_made_no_job_has_nothing_to_replay_the_unique_rule_applies_again(stores):
    store = stores.open()
    [holder] = request("req-h", 1, unique_key="k")
    store.add([holder])
    [duplicate] = store.add(request("req-d", 2, unique_key="k"))
    assert duplicate["id"] == holder.id
    assert store.add(request("req-d", 3, unique_key="k"))[0]["id"] == holder.id  # not a replay
    store.save(end(holder, states.COMPLETED, T0 + 5))
    [fresh] = request("req-d", 4, unique_key="k")
    assert store.add([fresh]) == [None]  # the key is free now: the request makes its job
    assert ids(store.add(request("req-d", 5, unique_key="k"))) == [fresh.id]


def test_a_batch_with_a_duplicate_replays_only_the_jobs_it_made(stores):
    store = stores.open()
    [holder] = request("req-h", 1, unique_key="k")
    store.add([holder])
    batch = [*request("req-b", 2), *request("req-b", 3, unique_key="k"), *request("req-b", 4)]
    outcome = store.add(batch)
    assert isinstance(outcome, list) and outcome[1]["id"] == holder.id
    assert ids(store.add(request("req-b", 5, 6, 7))) == [batch[0].id, batch[2].id]


def test_a_request_id_lives_while_any_of_its_jobs_is_held_then_names_a_new_request(stores):
    store = stores.open(completed_retention_s=100.0, discarded_retention_s=1000.0)
    first, second = batch = request("req-b", 1, 2)
    store.add(batch)
    store.save(end(first, states.COMPLETED, T0 + 10))
    store.save(end(second, states.DISCARDED, T0 + 20))
    assert store.prune(T0 + 110) == 1
    assert ids(store.add(request("req-b", 3))) == [second.id]  # what is still held
    assert store.prune(T0 + 1020) == 1
    [again] = request("req-b", 4)
    assert store.add([again]) == [None]  # forgotten with its last job: a new request
    assert ids(store.add(request("req-b", 5))) == [again.id]


def test_a_request_id_is_kept_across_close_and_reopen_and_later_saves(durable):
    store = durable.open()
    [single] = request("req-1", 1)
    batch = request("req-b", 2, 3, 4)  # ids rise in the order made (UUIDv7), as a reload reads
    store.add([single])
    store.add(batch)
    store.close()

    reopened = durable.open()
    assert ids(reopened.add(request("req-1", 9))) == [single.id]
    assert ids(reopened.add(request("req-b", 10))) == [job.id for job in batch]
    # a job rebuilt at a restart keeps its request id, so its later saves keep it too
    rebuilt = {job.id: job for job in (entry.job(0) for entry in reopened.unfinished())}
    assert rebuilt[single.id].request_id == "req-1"
    reopened.save(end(rebuilt[single.id], states.COMPLETED, T0 + 5, result=1))
    reopened.close()

    again = durable.open()
    [replayed] = again.add(request("req-1", 11)).jobs
    assert (replayed["id"], replayed["state"]) == (single.id, states.COMPLETED)
    assert again.counts()["default"][states.AVAILABLE] == 3


def test_a_reopened_store_forgets_a_request_id_whose_jobs_were_pruned(durable):
    store = durable.open(completed_retention_s=100.0)
    [job] = request("req-1", 1)
    store.add([job])
    store.save(end(job, states.COMPLETED, T0 + 10))
    assert store.prune(T0 + 110) == 1
    store.close()
    reopened = durable.open(completed_retention_s=100.0)
    assert reopened.add(request("req-1", 2)) == [None]
