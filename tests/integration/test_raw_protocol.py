"""The coordinator over TCP, spoken to by a client written only from PROTOCOL.md.

The peers are `RawPeer`s (tests/conftest.py): a bare DEALER sending one msgpack map per frame.
Nothing from actors/transport/nodes is used on the peer side; only the coordinator under test
is `nodes.Coordinator`. Every wait is a socket poll with a deadline.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import pytest

from tests.conftest import wait_for

HEARTBEAT_INTERVAL_S = 1.0
HEARTBEAT_TIMEOUT_S = 10.0
VISIBILITY_TIMEOUT_S = 600.0
UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
NEVER_ISSUED = "01890000-0000-7000-8000-000000000000"
JOB_STATES = {
    "scheduled",
    "available",
    "active",
    "retryable",
    "completed",
    "discarded",
    "cancelled",
}
DEFAULT_RETRY = {
    "initial_interval": 1.0,
    "backoff_coefficient": 2.0,
    "max_interval": 300.0,
    "jitter": True,
}


def is_uuid7(text: Any) -> bool:
    return isinstance(text, str) and bool(UUID7.match(text)) and uuid.UUID(text).version == 7


def ok(answer: dict[str, Any], kind: str = "reply") -> dict[str, Any]:
    assert answer.get("type") == kind, f"expected {kind}, got {answer}"
    return answer


def refused(answer: dict[str, Any], code: str) -> dict[str, Any]:
    assert answer.get("type") == "error", f"expected error {code}, got {answer}"
    assert answer.get("code") == code, f"expected {code}, got {answer}"
    assert isinstance(answer.get("message"), str)
    return answer


@pytest.fixture
def node(coordinator):
    return coordinator(
        heartbeat_interval=HEARTBEAT_INTERVAL_S,
        heartbeat_timeout=HEARTBEAT_TIMEOUT_S,
        visibility_timeout=VISIBILITY_TIMEOUT_S,
    )


@pytest.fixture
def connect(node, raw_peer):
    return lambda: raw_peer(node.address)


def hello(peer) -> str:
    answer = ok(
        peer.request("hello", v=1, role="worker", hostname="test-host", pid=4242),
        "workerregistered",
    )
    return answer["worker_id"]


def worker(connect, queues=("q",), **fields: Any) -> tuple[Any, str]:
    """A peer that said hello and registered; returns (peer, worker_id)."""
    peer = connect()
    worker_id = hello(peer)
    body = {"queues": list(queues), "hostname": "test-host", "pid": 4242, **fields}
    ok(peer.request("register", worker_id=worker_id, **body))
    return peer, worker_id


def enqueue(client, **spec: Any) -> str:
    answer = ok(client.request("enqueue", job={"type": "t", "queue": "q", **spec}))
    return answer["job_id"]


def fetch_one(peer, worker_id: str, wait: float = 2.0) -> dict[str, Any]:
    answer = ok(peer.request("fetch", timeout=wait + 5, worker_id=worker_id, count=1, wait=wait))
    assert len(answer["jobs"]) == 1, answer
    return answer["jobs"][0]


def get_job(client, job_id: str) -> dict[str, Any]:
    return ok(client.request("get", job_id=job_id))["job"]


def handed_out_again(connect, job_id: str, attempt: int) -> None:
    """A recovered job is not lost (section 6): a fresh worker gets it as the next attempt."""
    peer, worker_id = worker(connect)
    job = fetch_one(peer, worker_id)
    assert (job["id"], job["attempt"]) == (job_id, attempt)


# -- section 3.8: ping ----------------------------------------------------------------------------


@pytest.mark.parametrize("rid", [0, 99, "", "a-string-rid", "r" * 64])
def test_ping_is_answered_with_pong_carrying_the_same_rid(connect, rid):
    peer = connect()
    peer.send({"type": "ping", "rid": rid})
    assert peer.receive() == {"type": "pong", "rid": rid}


def test_ping_with_identify_is_answered_with_the_coordinators_instance(connect):
    peer = connect()
    peer.send({"type": "ping", "rid": 1, "identify": True})
    first = peer.receive()
    peer.send({"type": "ping", "rid": 2, "identify": True})
    assert first["type"] == "pong" and first["rid"] == 1
    assert isinstance(first["instance"], str) and first["instance"]
    assert peer.receive() == {"type": "pong", "rid": 2, "instance": first["instance"]}


# -- sections 3.1 and 3.2: hello and register ----------------------------------------------------


def test_a_register_before_hello_is_refused_with_not_registered(connect):
    peer = connect()
    answer = peer.request("register", worker_id=NEVER_ISSUED, queues=["q"], hostname="h", pid=1)
    assert refused(answer, "not_registered")["rid"] == 1


@pytest.mark.parametrize("kind", ["register", "beat", "fetch", "ack", "fail", "deregister"])
def test_every_worker_request_before_hello_is_refused_with_not_registered(connect, kind):
    peer = connect()
    refused(peer.request(kind, worker_id=NEVER_ISSUED), "not_registered")


def test_not_registered_is_checked_before_the_fields_of_a_worker_request(connect):
    peer = connect()
    refused(peer.request("register", worker_id=5, queues="not-a-list"), "not_registered")
    refused(peer.request("fetch"), "not_registered")


def test_a_hello_on_one_connection_does_not_greet_another(connect):
    greeted, stranger = connect(), connect()
    worker_id = hello(greeted)
    refused(
        stranger.request("beat", worker_id=worker_id, state="running", active_job_ids=[]),
        "not_registered",
    )


def test_hello_yields_a_uuidv7_worker_id_and_the_three_timing_fields(connect):
    peer = connect()
    answer = ok(peer.request("hello", v=1, role="worker", hostname="h", pid=1), "workerregistered")
    assert answer["rid"] == 1
    assert is_uuid7(answer["worker_id"])
    assert answer["heartbeat_interval"] == HEARTBEAT_INTERVAL_S
    assert answer["heartbeat_timeout"] == HEARTBEAT_TIMEOUT_S
    assert answer["visibility_timeout"] == VISIBILITY_TIMEOUT_S


def test_every_hello_yields_a_new_worker_id(connect):
    peer, other = connect(), connect()
    ids = [hello(peer), hello(peer), hello(other)]
    assert len(set(ids)) == 3


def test_a_hello_with_another_version_is_refused_with_unsupported_version(connect):
    peer = connect()
    refused(peer.request("hello", v=2, role="worker", hostname="h", pid=1), "unsupported_version")


def test_register_replies_with_the_worker_id_and_no_resumed_jobs(connect):
    peer = connect()
    worker_id = hello(peer)
    answer = ok(peer.request("register", worker_id=worker_id, queues=["q"], hostname="h", pid=1))
    assert answer["worker_id"] == worker_id
    assert answer["resumed_job_ids"] == []


def test_a_second_hello_ends_the_previous_session_and_recovers_its_jobs(connect):
    peer, old_id = worker(connect)
    client = connect()
    job_id = enqueue(client)
    fetch_one(peer, old_id)
    new_id = hello(peer)
    assert new_id != old_id
    refused(
        peer.request("beat", worker_id=old_id, state="running", active_job_ids=[]), "unknown_worker"
    )
    job = get_job(client, job_id)
    assert job["state"] == "available"
    assert [(e["attempt"], e["type"]) for e in job["errors"]] == [(1, "worker_lost")]
    handed_out_again(connect, job_id, attempt=2)


def test_deregister_ends_the_session_and_returns_its_active_jobs(connect):
    peer, worker_id = worker(connect)
    client = connect()
    job_id = enqueue(client)
    fetch_one(peer, worker_id)
    assert ok(peer.request("deregister", worker_id=worker_id))["rid"] >= 1
    refused(peer.request("fetch", worker_id=worker_id, count=1), "unknown_worker")
    job = get_job(client, job_id)
    assert job["state"] == "available"
    assert job["errors"][0]["type"] == "worker_lost"
    handed_out_again(connect, job_id, attempt=2)


# -- a job from enqueue to completion (sections 3.4, 3.5, 4) -------------------------------------


def test_a_job_of_an_ended_session_on_its_last_attempt_is_discarded(connect):
    peer, worker_id = worker(connect)
    client = connect()
    job_id = enqueue(client, max_attempts=1)
    fetch_one(peer, worker_id)
    ok(peer.request("deregister", worker_id=worker_id))
    job = get_job(client, job_id)
    assert (job["state"], job["errors"][0]["type"]) == ("discarded", "worker_lost")


def test_a_job_enqueued_by_a_client_is_fetched_acked_and_read_back_completed_with_its_result(
    connect,
):
    peer, worker_id = worker(connect)
    client = connect()
    before = time.time()

    answer = ok(client.request("enqueue", job={"type": "resize", "queue": "q", "args": [1, "x"]}))
    assert is_uuid7(answer["job_id"])
    assert answer["state"] == "available"
    assert answer["duplicate"] is False
    job_id = answer["job_id"]

    job = fetch_one(peer, worker_id)
    assert job["id"] == job_id
    assert job["type"] == "resize"
    assert job["args"] == [1, "x"]
    assert job["queue"] == "q"
    assert job["priority"] == 0
    assert job["max_attempts"] == 3
    assert job["retry"] == DEFAULT_RETRY
    assert job["route"] == {}
    assert job["meta"] == {}
    assert job["state"] == "active"
    assert job["attempt"] == 1
    assert job["errors"] == []
    assert job["worker_id"] == worker_id
    assert before - 1 <= job["created_at"] <= time.time() + 1
    assert before - 1 <= job["started_at"] <= time.time() + 1

    result = {"width": 640, "tags": ["a", "b"], "ok": True}
    ack = ok(peer.request("ack", worker_id=worker_id, job_id=job_id, attempt=1, result=result))
    assert set(ack) == {"type", "rid"}

    done = get_job(client, job_id)
    assert done["state"] == "completed"
    assert done["result"] == result
    assert done["attempt"] == 1
    assert done["completed_at"] >= done["started_at"]


def test_a_fetched_job_carries_every_jobspec_field_that_was_given(connect):
    peer, worker_id = worker(connect)
    client = connect()
    spec = {
        "type": "t",
        "queue": "q",
        "args": [{"k": [1, 2]}],
        "priority": 4,
        "max_attempts": 5,
        "retry": {"initial_interval": 2.5},
        "timeout": 120.0,
        "route": {"zone": "eu"},
        "unique_key": "k-1",
        "meta": {"trace": "abc"},
    }
    job_id = ok(client.request("enqueue", job=spec))["job_id"]
    job = fetch_one(peer, worker_id)
    assert job["id"] == job_id
    for key, value in spec.items():
        if key != "retry":
            assert job[key] == value, key
    assert job["retry"] == {**DEFAULT_RETRY, "initial_interval": 2.5}


def test_a_batch_enqueue_replies_with_one_id_and_one_state_per_job_in_order(connect):
    client = connect()
    later = time.time() + 3600
    answer = ok(
        client.request(
            "enqueue",
            jobs=[
                {"type": "first", "queue": "q"},
                {"type": "second", "queue": "q", "scheduled_at": later},
                {"type": "third", "queue": "other"},
            ],
        )
    )
    assert set(answer) >= {"type", "rid", "job_ids", "states"}
    assert len(answer["job_ids"]) == 3
    assert all(is_uuid7(job_id) for job_id in answer["job_ids"])
    assert len(set(answer["job_ids"])) == 3
    assert answer["states"] == ["available", "scheduled", "available"]
    jobs = [get_job(client, job_id) for job_id in answer["job_ids"]]
    assert [job["type"] for job in jobs] == ["first", "second", "third"]
    assert [job["attempt"] for job in jobs] == [0, 0, 0]  # 0 until the first delivery
    assert [job["queue"] for job in jobs] == ["q", "q", "other"]


def test_a_unique_key_of_a_live_job_returns_that_job_as_a_duplicate(connect):
    client = connect()
    first = ok(client.request("enqueue", job={"type": "t", "queue": "q", "unique_key": "u"}))
    again = ok(client.request("enqueue", job={"type": "t", "queue": "q", "unique_key": "u"}))
    assert again["duplicate"] is True
    assert again["job_id"] == first["job_id"]
    assert again["state"] == "available"


def test_a_unique_key_is_free_again_once_its_job_is_terminal(connect):
    client = connect()
    first = ok(client.request("enqueue", job={"type": "t", "queue": "q", "unique_key": "u"}))
    ok(client.request("cancel", job_id=first["job_id"]))
    again = ok(client.request("enqueue", job={"type": "t", "queue": "q", "unique_key": "u"}))
    assert again["duplicate"] is False
    assert again["job_id"] != first["job_id"]


# -- fetch rules (section 3.4) ----------------------------------------------------------------


def test_a_fetch_before_register_is_refused_with_not_registered(connect):
    peer = connect()
    worker_id = hello(peer)
    refused(peer.request("fetch", worker_id=worker_id, count=1), "not_registered")


def test_a_fetch_hands_out_higher_priority_first_then_oldest(connect):
    peer, worker_id = worker(connect)
    client = connect()
    low = enqueue(client, priority=0)
    high_old = enqueue(client, priority=5)
    high_new = enqueue(client, priority=5)
    answer = ok(peer.request("fetch", worker_id=worker_id, count=3))
    assert [job["id"] for job in answer["jobs"]] == [high_old, high_new, low]


def test_a_fetch_consumes_the_given_queues_in_order(connect):
    peer, worker_id = worker(connect, queues=("a", "b"))
    client = connect()
    in_a = enqueue(client, queue="a")
    in_b = enqueue(client, queue="b", priority=9)
    answer = ok(peer.request("fetch", worker_id=worker_id, count=2, queues=["b", "a"]))
    assert [job["id"] for job in answer["jobs"]] == [in_b, in_a]


def test_a_fetch_never_claims_more_than_concurrency_minus_active(connect):
    peer, worker_id = worker(connect, concurrency=2)
    client = connect()
    for _ in range(4):
        enqueue(client)
    first = ok(peer.request("fetch", worker_id=worker_id, count=1))
    assert len(first["jobs"]) == 1
    second = ok(peer.request("fetch", worker_id=worker_id, count=4))
    assert len(second["jobs"]) == 1
    third = ok(peer.request("fetch", worker_id=worker_id, count=4))
    assert third["jobs"] == []


def test_a_fetch_for_a_queue_the_worker_did_not_register_is_refused_with_bad_request(connect):
    peer, worker_id = worker(connect)
    refused(
        peer.request("fetch", worker_id=worker_id, count=1, queues=["elsewhere"]), "bad_request"
    )


def test_a_fetch_with_wait_and_nothing_queued_answers_no_jobs_after_about_the_wait(connect):
    peer, worker_id = worker(connect)
    started = time.monotonic()
    answer = ok(peer.request("fetch", worker_id=worker_id, count=1, wait=0.5))
    elapsed = time.monotonic() - started
    assert answer["jobs"] == []
    assert 0.45 <= elapsed < 2.5, elapsed


def test_a_parked_fetch_is_answered_at_once_when_a_job_is_enqueued_during_the_wait(connect):
    peer, worker_id = worker(connect)
    client = connect()
    rid = peer.rid()
    started = time.monotonic()
    peer.send({"type": "fetch", "rid": rid, "worker_id": worker_id, "count": 1, "wait": 8.0})
    assert peer.nothing_within(0.3), "the fetch must be held while nothing is queued"
    job_id = enqueue(client)
    answer = ok(peer.reply_to(rid, timeout=5.0))
    assert [job["id"] for job in answer["jobs"]] == [job_id]
    assert time.monotonic() - started < 4.0


def test_a_new_fetch_first_answers_the_older_parked_one_with_no_jobs(connect):
    peer, worker_id = worker(connect)
    client = connect()
    old_rid = peer.rid()
    peer.send({"type": "fetch", "rid": old_rid, "worker_id": worker_id, "count": 1, "wait": 8.0})
    assert peer.nothing_within(0.2)
    new_rid = peer.rid()
    peer.send({"type": "fetch", "rid": new_rid, "worker_id": worker_id, "count": 1, "wait": 8.0})
    old = peer.receive(timeout=3.0)
    assert old["rid"] == old_rid
    assert ok(old)["jobs"] == []
    job_id = enqueue(client)
    assert [job["id"] for job in ok(peer.reply_to(new_rid))["jobs"]] == [job_id]


def test_a_fetch_wait_is_capped_at_the_heartbeat_timeout(coordinator, raw_peer):
    node = coordinator(heartbeat_timeout=1.0)
    peer, worker_id = worker(lambda: raw_peer(node.address))
    rid = peer.rid()
    started = time.monotonic()
    peer.send({"type": "fetch", "rid": rid, "worker_id": worker_id, "count": 1, "wait": 30.0})
    assert peer.nothing_within(0.5)
    ok(peer.request("beat", worker_id=worker_id, state="running", active_job_ids=[]))
    answer = ok(peer.reply_to(rid, timeout=5.0))
    assert answer["jobs"] == []
    assert time.monotonic() - started < 3.0


# -- ack and fail (sections 3.5, 3.6, 5) -------------------------------------------------------


def test_a_failed_attempt_becomes_retryable_then_discarded_when_attempts_run_out(connect):
    peer, worker_id = worker(connect)
    client = connect()
    job_id = enqueue(client, max_attempts=2, retry={"initial_interval": 0.3, "jitter": False})
    fetch_one(peer, worker_id)

    before = time.time()
    first = ok(
        peer.request(
            "fail",
            worker_id=worker_id,
            job_id=job_id,
            attempt=1,
            error={"type": "ValueError", "message": "boom"},
        )
    )
    after = time.time()
    assert first["state"] == "retryable"
    assert before + 0.3 - 0.05 <= first["next_attempt_at"] <= after + 0.3 + 0.05
    assert get_job(client, job_id)["state"] == "retryable"

    second = fetch_one(peer, worker_id, wait=5.0)
    assert time.time() >= first["next_attempt_at"] - 0.05, "handed out before its retry time"
    assert second["id"] == job_id
    assert second["attempt"] == 2

    last = ok(
        peer.request(
            "fail",
            worker_id=worker_id,
            job_id=job_id,
            attempt=2,
            error={"type": "ValueError", "message": "again", "backtrace": ["l"]},
        )
    )
    assert last["state"] == "discarded"
    assert "next_attempt_at" not in last

    job = get_job(client, job_id)
    assert job["state"] == "discarded"
    assert [(e["attempt"], e["type"], e["message"]) for e in job["errors"]] == [
        (1, "ValueError", "boom"),
        (2, "ValueError", "again"),
    ]
    assert all(isinstance(e["at"], float) for e in job["errors"])


def test_a_fail_that_is_not_retryable_discards_the_job_at_once(connect):
    peer, worker_id = worker(connect)
    client = connect()
    job_id = enqueue(client, max_attempts=5)
    fetch_one(peer, worker_id)
    answer = ok(
        peer.request(
            "fail",
            worker_id=worker_id,
            job_id=job_id,
            attempt=1,
            error={"type": "Fatal", "message": "no", "retryable": False},
        )
    )
    assert answer["state"] == "discarded"
    assert get_job(client, job_id)["state"] == "discarded"


def test_a_retry_delay_follows_the_backoff_with_jitter_between_half_and_all(connect):
    peer, worker_id = worker(connect)
    client = connect()
    job_id = enqueue(client, retry={"initial_interval": 100.0})
    fetch_one(peer, worker_id)
    before = time.time()
    answer = ok(
        peer.request(
            "fail",
            worker_id=worker_id,
            job_id=job_id,
            attempt=1,
            error={"type": "E", "message": "m"},
        )
    )
    after = time.time()
    assert before + 50.0 - 0.05 <= answer["next_attempt_at"] <= after + 100.0 + 0.05


def test_an_ack_for_a_wrong_attempt_is_refused_with_not_owner_and_changes_nothing(connect):
    peer, worker_id = worker(connect)
    client = connect()
    job_id = enqueue(client)
    fetch_one(peer, worker_id)
    for wrong in (2, 7):
        refused(
            peer.request("ack", worker_id=worker_id, job_id=job_id, attempt=wrong, result=1),
            "not_owner",
        )
        refused(
            peer.request(
                "fail",
                worker_id=worker_id,
                job_id=job_id,
                attempt=wrong,
                error={"type": "E", "message": "m"},
            ),
            "not_owner",
        )
    job = get_job(client, job_id)
    assert (job["state"], job["attempt"], job["errors"]) == ("active", 1, [])
    ok(peer.request("ack", worker_id=worker_id, job_id=job_id, attempt=1, result="r"))
    assert get_job(client, job_id)["result"] == "r"


def test_a_second_ack_of_a_completed_job_is_refused_with_not_owner(connect):
    peer, worker_id = worker(connect)
    client = connect()
    job_id = enqueue(client)
    fetch_one(peer, worker_id)
    ok(peer.request("ack", worker_id=worker_id, job_id=job_id, attempt=1, result="first"))
    refused(
        peer.request("ack", worker_id=worker_id, job_id=job_id, attempt=1, result="second"),
        "not_owner",
    )
    assert get_job(client, job_id)["result"] == "first"


def test_an_ack_for_an_unknown_job_is_refused_with_unknown_job(connect):
    peer, worker_id = worker(connect)
    refused(peer.request("ack", worker_id=worker_id, job_id=NEVER_ISSUED, attempt=1), "unknown_job")
    refused(
        peer.request(
            "fail",
            worker_id=worker_id,
            job_id=NEVER_ISSUED,
            attempt=1,
            error={"type": "E", "message": "m"},
        ),
        "unknown_job",
    )


def test_an_ack_for_a_job_reserved_to_another_worker_is_refused_with_not_owner(connect):
    owner, owner_id = worker(connect)
    thief, thief_id = worker(connect)
    client = connect()
    job_id = enqueue(client)
    fetch_one(owner, owner_id)
    refused(thief.request("ack", worker_id=thief_id, job_id=job_id, attempt=1), "not_owner")
    assert get_job(client, job_id)["state"] == "active"


def test_a_worker_id_of_another_connection_is_refused_with_unknown_worker(connect):
    owner, owner_id = worker(connect)
    other = connect()
    hello(other)
    client = connect()
    job_id = enqueue(client)
    fetch_one(owner, owner_id)
    requests = [
        ("beat", {"state": "running", "active_job_ids": []}),
        ("fetch", {"count": 1}),
        ("ack", {"job_id": job_id, "attempt": 1}),
        ("fail", {"job_id": job_id, "attempt": 1, "error": {"type": "E", "message": "m"}}),
        ("register", {"queues": ["q"], "hostname": "h", "pid": 1}),
        ("deregister", {}),
    ]
    for kind, fields in requests:
        refused(other.request(kind, worker_id=owner_id, **fields), "unknown_worker")
    assert get_job(client, job_id)["state"] == "active"
    ok(owner.request("beat", worker_id=owner_id, state="running", active_job_ids=[job_id]))


def test_a_worker_id_never_issued_is_refused_with_unknown_worker(connect):
    peer = connect()
    hello(peer)
    refused(
        peer.request("beat", worker_id=NEVER_ISSUED, state="running", active_job_ids=[]),
        "unknown_worker",
    )


# -- beat and direct (sections 3.3, 4) ------------------------------------------------------------


def test_a_beat_replies_with_the_state_the_visibility_timeout_and_jobs_to_abandon(connect):
    peer, worker_id = worker(connect)
    client = connect()
    job_id = enqueue(client)
    fetch_one(peer, worker_id)
    stranger = "01890000-0000-7000-8000-0000000000aa"
    answer = ok(
        peer.request(
            "beat", worker_id=worker_id, state="running", active_job_ids=[job_id, stranger]
        )
    )
    assert answer["state"] == "running"
    assert answer["visibility_timeout"] == VISIBILITY_TIMEOUT_S
    assert answer["cancel_job_ids"] == [stranger]


def test_a_beat_is_allowed_before_register(connect):
    peer = connect()
    worker_id = hello(peer)
    answer = ok(peer.request("beat", worker_id=worker_id, state="running", active_job_ids=[]))
    assert answer["state"] == "running"
    assert answer["cancel_job_ids"] == []


def test_a_beat_reply_echoes_the_reported_state_when_nothing_was_directed(connect):
    peer, worker_id = worker(connect)
    answer = ok(peer.request("beat", worker_id=worker_id, state="quiet", active_job_ids=[]))
    assert answer["state"] == "quiet"


def test_directing_a_worker_quiet_makes_its_next_beat_quiet_and_its_fetches_empty(connect):
    peer, worker_id = worker(connect)
    client = connect()
    job_id = enqueue(client)
    assert set(ok(client.request("direct", worker_id=worker_id, state="quiet"))) == {"type", "rid"}
    beat = ok(peer.request("beat", worker_id=worker_id, state="running", active_job_ids=[]))
    assert beat["state"] == "quiet"
    assert ok(peer.request("fetch", worker_id=worker_id, count=1))["jobs"] == []

    ok(client.request("direct", worker_id=worker_id, state="running"))
    beat = ok(peer.request("beat", worker_id=worker_id, state="quiet", active_job_ids=[]))
    assert beat["state"] == "running"
    assert fetch_one(peer, worker_id)["id"] == job_id


def test_nothing_undoes_a_directed_terminate(connect):
    peer, worker_id = worker(connect)
    client = connect()
    enqueue(client)
    ok(client.request("direct", worker_id=worker_id, state="terminate"))
    beat = ok(peer.request("beat", worker_id=worker_id, state="running", active_job_ids=[]))
    assert beat["state"] == "terminate"
    ok(client.request("direct", worker_id=worker_id, state="running"))
    beat = ok(peer.request("beat", worker_id=worker_id, state="running", active_job_ids=[]))
    assert beat["state"] == "terminate"
    assert ok(peer.request("fetch", worker_id=worker_id, count=1))["jobs"] == []


def test_a_terminate_reported_by_the_worker_itself_is_sticky_too(connect):
    peer, worker_id = worker(connect)
    beat = ok(peer.request("beat", worker_id=worker_id, state="terminate", active_job_ids=[]))
    assert beat["state"] == "terminate"
    beat = ok(peer.request("beat", worker_id=worker_id, state="running", active_job_ids=[]))
    assert beat["state"] == "terminate"


def test_a_direct_for_a_worker_that_is_not_live_is_refused_with_unknown_worker(connect):
    client = connect()
    refused(client.request("direct", worker_id=NEVER_ISSUED, state="quiet"), "unknown_worker")


# -- cancel, get, stats (section 4) ---------------------------------------------------------------


def test_cancelling_an_available_job_cancels_it_at_once(connect):
    peer, worker_id = worker(connect)
    client = connect()
    job_id = enqueue(client)
    assert ok(client.request("cancel", job_id=job_id))["state"] == "cancelled"
    assert get_job(client, job_id)["state"] == "cancelled"
    assert ok(peer.request("fetch", worker_id=worker_id, count=1))["jobs"] == []


def test_cancelling_a_scheduled_job_cancels_it_at_once(connect):
    client = connect()
    job_id = enqueue(client, scheduled_at=time.time() + 3600)
    assert get_job(client, job_id)["state"] == "scheduled"
    assert ok(client.request("cancel", job_id=job_id))["state"] == "cancelled"


def test_cancelling_an_active_job_tells_its_worker_and_refuses_its_later_ack(connect):
    peer, worker_id = worker(connect)
    client = connect()
    job_id = enqueue(client)
    fetch_one(peer, worker_id)
    assert ok(client.request("cancel", job_id=job_id))["state"] == "cancelled"
    beat = ok(peer.request("beat", worker_id=worker_id, state="running", active_job_ids=[job_id]))
    assert beat["cancel_job_ids"] == [job_id]
    refused(peer.request("ack", worker_id=worker_id, job_id=job_id, attempt=1), "not_owner")
    assert get_job(client, job_id)["state"] == "cancelled"


def test_cancelling_a_terminal_job_leaves_it_and_returns_its_state(connect):
    peer, worker_id = worker(connect)
    client = connect()
    job_id = enqueue(client)
    fetch_one(peer, worker_id)
    ok(peer.request("ack", worker_id=worker_id, job_id=job_id, attempt=1))
    assert ok(client.request("cancel", job_id=job_id))["state"] == "completed"
    assert get_job(client, job_id)["state"] == "completed"


def test_get_and_cancel_of_an_unknown_job_are_refused_with_unknown_job(connect):
    client = connect()
    refused(client.request("get", job_id=NEVER_ISSUED), "unknown_job")
    refused(client.request("cancel", job_id=NEVER_ISSUED), "unknown_job")


def test_a_get_with_wait_on_an_unfinished_job_is_answered_when_it_completes(connect):
    peer, worker_id = worker(connect)
    client = connect()
    job_id = enqueue(client)
    fetch_one(peer, worker_id)
    rid = client.rid()
    started = time.monotonic()
    client.send({"type": "get", "rid": rid, "job_id": job_id, "wait": 8.0})
    assert client.nothing_within(0.3), "get with wait must be held while the job is active"
    ok(peer.request("ack", worker_id=worker_id, job_id=job_id, attempt=1, result=[42]))
    job = ok(client.reply_to(rid, timeout=5.0))["job"]
    assert (job["state"], job["result"]) == ("completed", [42])
    assert time.monotonic() - started < 4.0


def test_a_get_with_wait_answers_the_job_as_it_is_when_the_wait_runs_out(connect):
    client = connect()
    job_id = enqueue(client)
    started = time.monotonic()
    job = ok(client.request("get", job_id=job_id, wait=0.4))["job"]
    assert job["state"] == "available"
    assert 0.35 <= time.monotonic() - started < 2.5


def test_a_get_with_wait_on_a_terminal_job_answers_at_once(connect):
    client = connect()
    job_id = enqueue(client)
    ok(client.request("cancel", job_id=job_id))
    started = time.monotonic()
    assert ok(client.request("get", job_id=job_id, wait=8.0))["job"]["state"] == "cancelled"
    assert time.monotonic() - started < 2.0


def test_stats_lists_counts_per_queue_and_state_and_every_worker(connect):
    peer, worker_id = worker(connect, functions=["t"], labels={"zone": ["eu"]}, concurrency=3)
    client = connect()
    enqueue(client, route={"zone": "eu"})
    enqueue(client, route={"zone": "eu"})
    fetch_one(peer, worker_id)
    answer = ok(client.request("stats"))
    assert set(answer["queues"]["q"]) == JOB_STATES | {"deferred"}  # extension: workflows
    assert answer["queues"]["q"]["available"] == 1
    assert answer["queues"]["q"]["active"] == 1
    assert all(isinstance(n, int) for n in answer["queues"]["q"].values())
    [entry] = answer["workers"]
    assert entry["worker_id"] == worker_id
    assert entry["hostname"] == "test-host"
    assert entry["pid"] == 4242
    assert entry["state"] == "running"
    assert entry["queues"] == ["q"]
    assert entry["functions"] == ["t"]
    assert entry["labels"] == {"zone": ["eu"]}
    assert entry["concurrency"] == 3
    assert entry["active"] == 1
    assert abs(entry["last_seen"] - time.time()) < 60


# -- section 6: death -----------------------------------------------------------------------------


def test_a_silent_worker_is_terminated_and_its_job_returns_available_as_worker_lost(
    coordinator, raw_peer,
):
    node = coordinator(heartbeat_timeout=0.5)
    peer, worker_id = worker(lambda: raw_peer(node.address))
    client = raw_peer(node.address)
    job_id = enqueue(client)
    fetch_one(peer, worker_id)
    wait_for(lambda: get_job(client, job_id)["state"] == "available", what="job recovered")
    job = get_job(client, job_id)
    assert job["errors"][0]["type"] == "worker_lost"
    [entry] = ok(client.request("stats"))["workers"]
    assert (entry["worker_id"], entry["state"]) == (worker_id, "terminated")
    refused(
        peer.request("beat", worker_id=worker_id, state="running", active_job_ids=[]),
        "unknown_worker",
    )
    handed_out_again(lambda: raw_peer(node.address), job_id, attempt=2)


def test_a_reservation_past_its_visibility_timeout_returns_the_job_as_a_timeout(connect):
    peer, worker_id = worker(connect)
    client = connect()
    job_id = enqueue(client, timeout=0.3)
    fetch_one(peer, worker_id)
    wait_for(lambda: get_job(client, job_id)["state"] == "available", what="reservation expired")
    job = get_job(client, job_id)
    assert [(e["attempt"], e["type"]) for e in job["errors"]] == [(1, "timeout")]
    refused(peer.request("ack", worker_id=worker_id, job_id=job_id, attempt=1), "not_owner")
    beat = ok(peer.request("beat", worker_id=worker_id, state="running", active_job_ids=[job_id]))
    assert beat["cancel_job_ids"] == [job_id]
    again = fetch_one(peer, worker_id)  # handed out again: the older attempt stays refused
    assert (again["id"], again["attempt"]) == (job_id, 2)
    refused(peer.request("ack", worker_id=worker_id, job_id=job_id, attempt=1), "not_owner")
    ok(peer.request("ack", worker_id=worker_id, job_id=job_id, attempt=2, result="late"))
    assert get_job(client, job_id)["result"] == "late"


def test_a_beat_listing_a_job_resets_its_reservation_deadline(connect):
    peer, worker_id = worker(connect)
    client = connect()
    job_id = enqueue(client, timeout=1.0)
    fetch_one(peer, worker_id)
    started = time.monotonic()
    while time.monotonic() - started < 2.0:  # twice the timeout, beating every 0.25 s
        assert peer.nothing_within(0.25)
        ok(peer.request("beat", worker_id=worker_id, state="running", active_job_ids=[job_id]))
    assert get_job(client, job_id)["state"] == "active"
    ok(peer.request("ack", worker_id=worker_id, job_id=job_id, attempt=1))


def test_a_reconnected_worker_resumes_the_jobs_it_lists_and_the_rest_are_recovered(connect):
    old_peer, old_id = worker(connect)
    client = connect()
    kept, dropped = enqueue(client), enqueue(client)
    ok(old_peer.request("fetch", worker_id=old_id, count=2))
    new_peer = connect()
    new_id = hello(new_peer)
    answer = ok(
        new_peer.request(
            "register",
            worker_id=new_id,
            queues=["q"],
            hostname="h",
            pid=1,
            previous_worker_id=old_id,
            active_job_ids=[kept],
        )
    )
    assert answer["resumed_job_ids"] == [kept]
    refused(
        old_peer.request("beat", worker_id=old_id, state="running", active_job_ids=[]),
        "unknown_worker",
    )
    assert get_job(client, kept)["worker_id"] == new_id
    lost = get_job(client, dropped)
    assert (lost["state"], lost["errors"][0]["type"]) == ("available", "worker_lost")
    ok(new_peer.request("ack", worker_id=new_id, job_id=kept, attempt=1))
    assert get_job(client, kept)["state"] == "completed"
    again = fetch_one(new_peer, new_id)
    assert (again["id"], again["attempt"]) == (dropped, 2)


def test_the_most_specific_eligible_worker_gets_a_routed_job_even_while_busy(connect):
    gpu_peer, gpu_id = worker(connect, labels={"gpu": ["a100"]}, concurrency=1)
    plain_peer, plain_id = worker(connect)
    client = connect()
    busy = enqueue(client, route={"gpu": "a100"})
    assert fetch_one(gpu_peer, gpu_id)["id"] == busy  # the gpu worker is now full
    waiting = enqueue(client, route={"gpu": "a100"})
    free = enqueue(client)
    answer = ok(plain_peer.request("fetch", worker_id=plain_id, count=5))
    assert [job["id"] for job in answer["jobs"]] == [free]
    assert get_job(client, waiting)["state"] == "available"


def test_a_fetch_without_queues_consumes_the_registered_queues_in_their_order(connect):
    peer, worker_id = worker(connect, queues=("b", "a"))
    client = connect()
    in_a = enqueue(client, queue="a", priority=9)
    in_b = enqueue(client, queue="b")
    answer = ok(peer.request("fetch", worker_id=worker_id, count=2))
    assert [job["id"] for job in answer["jobs"]] == [in_b, in_a]


def test_a_later_register_replaces_the_queues_functions_labels_and_concurrency(connect):
    peer, worker_id = worker(connect, queues=("a",), functions=["x"], labels={"k": ["v"]})
    ok(
        peer.request(
            "register",
            worker_id=worker_id,
            queues=["b"],
            hostname="test-host",
            pid=4242,
            concurrency=2,
        )
    )
    client = connect()
    [entry] = ok(client.request("stats"))["workers"]
    assert (entry["queues"], entry["functions"], entry["labels"], entry["concurrency"]) == (
        ["b"],
        [],
        {},
        2,
    )
    refused(peer.request("fetch", worker_id=worker_id, count=1, queues=["a"]), "bad_request")


def test_a_scheduled_job_is_handed_out_no_earlier_than_its_time(connect):
    peer, worker_id = worker(connect)
    client = connect()
    at = time.time() + 0.4
    job_id = enqueue(client, scheduled_at=at)
    assert get_job(client, job_id)["state"] == "scheduled"
    job = fetch_one(peer, worker_id, wait=5.0)
    assert job["id"] == job_id
    assert time.time() >= at - 0.05


def test_a_waiting_fetch_goes_to_the_worker_waiting_longest_among_equally_busy_ones(connect):
    first, first_id = worker(connect)
    second, second_id = worker(connect)
    client = connect()
    rids = {}
    for peer, worker_id in ((first, first_id), (second, second_id)):
        rids[worker_id] = peer.rid()
        peer.send(
            {
                "type": "fetch",
                "rid": rids[worker_id],
                "worker_id": worker_id,
                "count": 1,
                "wait": 8.0,
            }
        )
        assert peer.nothing_within(0.1)
    job_id = enqueue(client)
    assert [job["id"] for job in ok(first.reply_to(rids[first_id]))["jobs"]] == [job_id]
    assert second.nothing_within(0.2)


def test_a_waiting_fetch_goes_to_the_worker_with_the_fewest_active_jobs(connect):
    busy, busy_id = worker(connect)
    idle, idle_id = worker(connect)
    client = connect()
    enqueue(client)
    fetch_one(busy, busy_id)  # busy now holds one active job
    rids = {}
    for peer, worker_id in ((busy, busy_id), (idle, idle_id)):  # busy waits longest
        rids[worker_id] = peer.rid()
        peer.send(
            {
                "type": "fetch",
                "rid": rids[worker_id],
                "worker_id": worker_id,
                "count": 1,
                "wait": 8.0,
            }
        )
        assert peer.nothing_within(0.1)
    job_id = enqueue(client)
    assert [job["id"] for job in ok(idle.reply_to(rids[idle_id]))["jobs"]] == [job_id]
    assert busy.nothing_within(0.2)
