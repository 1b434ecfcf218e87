"""The wire extensions the OJS gateway needs of the coordinator (docs/PROTOCOL.md): a job id the
client names ("Job ids"), a failure that requeues at once ("Requeue") and a linear backoff
("Linear backoff"). Each is held by validation, the lifecycle and every store."""

from __future__ import annotations

import random

import pytest

from actors import lifecycle, states
from actors.jobs import Job, retry_delay
from actors.store.base import Replay
from tests.unit.store_jobs import make
from tests.unit.test_validation import parse, request
from transport import messages as m
from transport.errors import BadRequest, DuplicateJob, error_for_code
from transport.jobspec import JobSpec, RetryPolicy
from transport.messages import ErrorInfo

NOW = 1_700_000_000.0
JOB_ID = "019a0000-0000-7000-8000-00000000abcd"


def enqueue(*specs: dict, **fields) -> m.Enqueue:
    body = {"job": specs[0]} if len(specs) == 1 else {"jobs": list(specs)}
    message = parse({"type": "enqueue", "rid": 1, **body, **fields})
    assert isinstance(message, m.Enqueue)
    return message


# -- Job ids --------------------------------------------------------------------------------


def test_a_job_spec_may_name_its_own_id_in_canonical_lowercase_form():
    assert enqueue({"type": "t", "id": JOB_ID}).specs[0].id == JOB_ID
    assert enqueue({"type": "t"}).specs[0].id is None


@pytest.mark.parametrize(
    "bad", [JOB_ID.upper(), "job-1", JOB_ID + "0", 7, "", JOB_ID.replace("-", "")]
)
def test_an_id_that_is_not_a_canonical_uuid_is_refused(bad):
    with pytest.raises(BadRequest, match="'id'"):
        enqueue({"type": "t", "id": bad})


def test_a_batch_naming_one_id_twice_is_refused_whole():
    with pytest.raises(BadRequest, match="same 'id'"):
        enqueue({"type": "t", "id": JOB_ID}, {"type": "u", "id": JOB_ID})


def test_a_workflow_step_cannot_name_an_id():
    body = request("workflow", workflow={"chain": [{"type": "a"}, {"type": "t", "id": JOB_ID}]})
    with pytest.raises(BadRequest, match="'id'"):
        parse(body)


def named(n: int, job_id: str, request_id: str | None = None) -> Job:
    job = make(n)
    job.id = job_id
    job.request_id = request_id
    return job


def test_every_store_refuses_a_second_job_with_an_id_it_holds_and_stores_nothing(stores):
    store = stores.open()
    assert store.add([named(1, JOB_ID)]) == [None]
    other = "019a0000-0000-7000-8000-00000000beef"
    with pytest.raises(DuplicateJob, match=JOB_ID):
        store.add([named(2, other), named(3, JOB_ID)])
    assert store.get(other) is None  # the batch is refused whole
    assert store.get(JOB_ID)["type"] == "noop"
    assert sum(store.counts()["default"].values()) == 1


def test_a_resent_request_naming_its_ids_is_a_replay_not_a_clash(stores):
    store = stores.open()
    assert store.add([named(1, JOB_ID, "req-1")]) == [None]
    replay = store.add([named(2, JOB_ID, "req-1")])
    assert isinstance(replay, Replay) and [j["id"] for j in replay.jobs] == [JOB_ID]


def test_the_duplicate_job_code_maps_to_its_error():
    assert isinstance(error_for_code("duplicate_job", "x"), DuplicateJob)


# -- Requeue --------------------------------------------------------------------------------


def active(max_attempts: int = 3, attempt: int = 1) -> Job:
    job = Job.from_spec(JobSpec(type="t", max_attempts=max_attempts), JOB_ID, NOW, seq=1)
    job.state, job.attempt, job.worker_id, job.started_at = states.ACTIVE, attempt, "w", NOW
    job.deadline = NOW + 30
    return job


def test_a_requeued_failure_is_available_at_once_with_its_error_recorded():
    job = active()
    lifecycle.fail(job, NOW + 1, ErrorInfo("Shutdown", "bye", requeue=True), random.Random(0))
    assert job.state == states.AVAILABLE
    assert job.next_attempt_at is None and job.worker_id is None and job.deadline is None
    assert job.errors[-1]["type"] == "Shutdown" and job.attempt == 1


def test_a_requeue_of_the_last_attempt_discards_and_a_fatal_error_is_not_requeued():
    last = active(max_attempts=1)
    lifecycle.fail(last, NOW + 1, ErrorInfo("Shutdown", "bye", requeue=True), random.Random(0))
    assert last.state == states.DISCARDED
    fatal = active()
    error = ErrorInfo("Fatal", "no", retryable=False, requeue=True)
    lifecycle.fail(fatal, NOW + 1, error, random.Random(0))
    assert fatal.state == states.DISCARDED


def test_fail_parses_requeue_as_a_boolean():
    error = {"type": "T", "message": "m", "requeue": True}
    body = request("fail", error=error)
    assert parse(body).error.requeue is True
    with pytest.raises(BadRequest, match="requeue"):
        parse(request("fail", error={**error, "requeue": "yes"}))


# -- Linear backoff -------------------------------------------------------------------------


def test_a_linear_backoff_grows_by_the_initial_interval_up_to_the_cap():
    policy = RetryPolicy(initial_interval=2.0, max_interval=7.0, jitter=False, backoff="linear")
    delays = [retry_delay(policy, attempt, random.Random(0)) for attempt in (1, 2, 3, 4)]
    assert delays == [2.0, 4.0, 6.0, 7.0]


def test_the_backoff_travels_only_when_it_is_not_the_default_and_is_validated():
    assert "backoff" not in RetryPolicy().to_wire()
    assert RetryPolicy(backoff="linear").to_wire()["backoff"] == "linear"
    spec = enqueue({"type": "t", "retry": {"backoff": "linear"}}).specs[0]
    assert spec.retry.backoff == "linear"
    with pytest.raises(BadRequest, match="backoff"):
        enqueue({"type": "t", "retry": {"backoff": "cubic"}})
