"""Hostile and broken input against a real coordinator over TCP (PROTOCOL.md sections 1 and 2).

Every bad frame gets the documented `error` (its `rid` echoed unless the frame could not be
decoded or its rid is invalid), changes nothing, and the coordinator keeps serving. Peers are
`RawPeer`s: bare DEALERs sending msgpack (tests/conftest.py).
"""

from __future__ import annotations

import copy
import struct
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest

from nodes import Client, Coordinator, WorkerNode
from transport.validation.limits import Limits

MAX_MESSAGE_SIZE = 64 * 1024
MAX_JOB_SIZE = 16 * 1024
MAX_RESULT_SIZE = 16 * 1024
NEVER_ISSUED = "01890000-0000-7000-8000-000000000000"
JOB_STATES = (
    "scheduled",
    "available",
    "active",
    "retryable",
    "completed",
    "discarded",
    "cancelled",
)


def pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def error_of(answer: dict[str, Any], code: str) -> dict[str, Any]:
    assert answer.get("type") == "error", f"expected error {code}, got {answer}"
    assert answer.get("code") == code, f"expected {code}, got {answer}"
    assert isinstance(answer.get("message"), str)
    return answer


def node_options() -> dict[str, Any]:
    return {
        "heartbeat_timeout": 10.0,
        "reaper_interval": 0.05,
        "max_message_size": MAX_MESSAGE_SIZE,
        "limits": Limits(max_job_size=MAX_JOB_SIZE, max_result_size=MAX_RESULT_SIZE),
    }


@pytest.fixture(scope="module")
def shared_node() -> Iterator[Coordinator]:
    """One coordinator for the many table-driven cases of this module (each uses new peers)."""
    node = Coordinator(bind="tcp://127.0.0.1:*", **node_options()).start()
    yield node
    node.stop()


@pytest.fixture
def connect(shared_node, raw_peer):
    return lambda: raw_peer(shared_node.address)


@pytest.fixture
def greeted(connect):
    """A peer that said hello, and its worker_id (worker requests are validated past hello)."""
    peer = connect()
    answer = peer.request("hello", v=1, role="worker", hostname="h", pid=1)
    assert answer["type"] == "workerregistered", answer
    return peer, answer["worker_id"]


# -- frames that cannot be read: bad_request with no rid -------------------------------------------

UNDECODABLE = {
    "garbage": b"\xc1\xc1\xc1",
    "empty": b"",
    "truncated-map": b"\x82\xa4type\xa4ping\xa3ri",
    "trailing-bytes": pack({"type": "ping", "rid": 1}) + b"\x00",
    "bad-utf8": b"\x82\xa4type\xa4p\xffng\xa3rid\x01",
    "array": pack(["ping", 1]),
    "string": pack("ping"),
    "int": pack(7),
    "nil": pack(None),
    "int-keys": pack({1: "ping", 2: 1}),
    "int-key-beside-good-ones": pack({"type": "ping", "rid": 1, 3: 3}),
    "bin-keys": pack({b"type": "ping", b"rid": 1}),
    "ext-type": b"\x82\xa4type\xa4ping\xa3rid\xd4\x05\x01",
    "timestamp-ext": pack({"type": "ping", "rid": 1, "at": msgpack.Timestamp(1, 0)}),
    "huge-array-claim": b"\x81\xa4args\xdd" + struct.pack(">I", 2**32 - 1),
}


@pytest.mark.parametrize("frame", UNDECODABLE.values(), ids=UNDECODABLE.keys())
def test_an_undecodable_frame_gets_bad_request_without_a_rid(connect, frame):
    peer = connect()
    peer.send_frames(frame)
    answer = error_of(peer.receive(), "bad_request")
    assert "rid" not in answer


INVALID_RIDS = {
    "missing": {},
    "true": {"rid": True},
    "false": {"rid": False},
    "65-chars": {"rid": "r" * 65},
    "negative": {"rid": -1},
    "float": {"rid": 1.0},
    "nil": {"rid": None},
    "list": {"rid": [1]},
    "map": {"rid": {"n": 1}},
    "bin": {"rid": b"rid"},
}


@pytest.mark.parametrize("rid", INVALID_RIDS.values(), ids=INVALID_RIDS.keys())
@pytest.mark.parametrize("kind", ["ping", "enqueue", "fetch", "frobnicate"])
def test_a_request_with_an_invalid_rid_gets_bad_request_without_a_rid(connect, rid, kind):
    peer = connect()
    peer.send({"type": kind, **rid, "job": {"type": "t"}})
    answer = error_of(peer.receive(), "bad_request")
    assert "rid" not in answer


@pytest.mark.parametrize("rid", [0, 5, "", "r" * 64])
def test_the_longest_and_smallest_valid_rids_are_echoed(connect, rid):
    peer = connect()
    peer.send({"type": "ping", "rid": rid})
    assert peer.receive() == {"type": "pong", "rid": rid}


# -- readable frames that are wrong: bad_request with the rid echoed ----------------------------


@pytest.mark.parametrize(
    "kind", ["frobnicate", "", "PING", "reply", "pong", "workerregistered", 5, None, ["ping"]]
)
def test_an_unknown_or_mistyped_type_gets_bad_request_with_the_rid_echoed(connect, kind):
    peer = connect()
    peer.send({"type": kind, "rid": 77})
    assert error_of(peer.receive(), "bad_request").get("rid") == 77


def test_a_missing_type_gets_bad_request_with_the_rid_echoed(connect):
    peer = connect()
    peer.send({"rid": 78})
    assert error_of(peer.receive(), "bad_request").get("rid") == 78


WORKER_ID = "<greeted worker_id>"  # replaced by the greeted peer's id
BASE: dict[str, dict[str, Any]] = {
    "hello": {"v": 1, "role": "worker", "hostname": "h", "pid": 1},
    "register": {
        "worker_id": WORKER_ID,
        "queues": ["q"],
        "concurrency": 2,
        "functions": ["t"],
        "labels": {"gpu": ["a100"]},
        "hostname": "h",
        "pid": 1,
        "previous_worker_id": NEVER_ISSUED,
        "active_job_ids": [NEVER_ISSUED],
    },
    "beat": {"worker_id": WORKER_ID, "state": "running", "active_job_ids": []},
    "fetch": {"worker_id": WORKER_ID, "count": 1, "queues": ["q"], "wait": 0},
    "ack": {"worker_id": WORKER_ID, "job_id": NEVER_ISSUED, "attempt": 1, "result": 1},
    "fail": {
        "worker_id": WORKER_ID,
        "job_id": NEVER_ISSUED,
        "attempt": 1,
        "error": {"type": "E", "message": "m", "retryable": True, "backtrace": ["l"]},
    },
    "deregister": {"worker_id": WORKER_ID},
    "enqueue": {
        "job": {
            "type": "t",
            "args": [],
            "queue": "q",
            "priority": 0,
            "scheduled_at": 1.0,
            "max_attempts": 3,
            "retry": {
                "initial_interval": 1.0,
                "backoff_coefficient": 2.0,
                "max_interval": 300.0,
                "jitter": True,
            },
            "timeout": 10.0,
            "route": {"gpu": "a100"},
            "meta": {},
        }
    },
    "get": {"job_id": NEVER_ISSUED, "wait": 0},
    "cancel": {"job_id": NEVER_ISSUED},
    "direct": {"worker_id": NEVER_ISSUED, "state": "quiet"},
}

NOT_STR = [5, 1.5, True, ["x"], {"x": 1}, b"bin"]
NOT_INT = ["1", 1.0, 1.5, True, False, [1], {"n": 1}, b"1"]
NOT_NUMBER = ["1", True, [1.0], {"n": 1}, b"1"]
NOT_BOOL = [1, 0, "true", 1.0, [True]]
NOT_STRS = ["q", [1], [["q"]], {"q": 1}, [b"q"], 5, True]
NOT_MAP = ["x", [1], 5, True, b"m"]
# (request type, path to the field, values of the wrong type), from PROTOCOL.md sections 3 and 4.
FIELDS: list[tuple[str, tuple[str, ...], list[Any]]] = [
    ("hello", ("role",), NOT_STR),
    ("hello", ("hostname",), NOT_STR),
    ("hello", ("pid",), NOT_INT),
    ("register", ("worker_id",), NOT_STR),
    ("register", ("queues",), NOT_STRS),
    ("register", ("concurrency",), NOT_INT),
    ("register", ("functions",), NOT_STRS),
    ("register", ("labels",), NOT_MAP),
    ("register", ("labels", "gpu"), NOT_STRS),
    ("register", ("hostname",), NOT_STR),
    ("register", ("pid",), NOT_INT),
    ("register", ("previous_worker_id",), NOT_STR),
    ("register", ("active_job_ids",), NOT_STRS),
    ("beat", ("worker_id",), NOT_STR),
    ("beat", ("state",), NOT_STR),
    ("beat", ("active_job_ids",), NOT_STRS),
    ("fetch", ("worker_id",), NOT_STR),
    ("fetch", ("count",), NOT_INT),
    ("fetch", ("queues",), NOT_STRS),
    ("fetch", ("wait",), NOT_NUMBER),
    ("ack", ("worker_id",), NOT_STR),
    ("ack", ("job_id",), NOT_STR),
    ("ack", ("attempt",), NOT_INT),
    ("fail", ("worker_id",), NOT_STR),
    ("fail", ("job_id",), NOT_STR),
    ("fail", ("attempt",), NOT_INT),
    ("fail", ("error",), NOT_MAP),
    ("fail", ("error", "type"), NOT_STR),
    ("fail", ("error", "message"), NOT_STR),
    ("fail", ("error", "retryable"), NOT_BOOL),
    ("fail", ("error", "backtrace"), NOT_STRS),
    ("deregister", ("worker_id",), NOT_STR),
    ("enqueue", ("job",), NOT_MAP),
    ("enqueue", ("job", "type"), NOT_STR),
    ("enqueue", ("job", "args"), ["x", 5, {"a": 1}, True]),
    ("enqueue", ("job", "queue"), NOT_STR),
    ("enqueue", ("job", "priority"), NOT_INT),
    ("enqueue", ("job", "scheduled_at"), NOT_NUMBER),
    ("enqueue", ("job", "max_attempts"), NOT_INT),
    ("enqueue", ("job", "retry"), NOT_MAP),
    ("enqueue", ("job", "retry", "initial_interval"), NOT_NUMBER),
    ("enqueue", ("job", "retry", "backoff_coefficient"), NOT_NUMBER),
    ("enqueue", ("job", "retry", "max_interval"), NOT_NUMBER),
    ("enqueue", ("job", "retry", "jitter"), NOT_BOOL),
    ("enqueue", ("job", "timeout"), NOT_NUMBER),
    ("enqueue", ("job", "route"), NOT_MAP),
    ("enqueue", ("job", "route", "gpu"), NOT_STR),
    ("enqueue", ("job", "unique_key"), NOT_STR),
    ("enqueue", ("job", "meta"), NOT_MAP),
    ("enqueue", ("jobs",), [*NOT_MAP[:1], [], 5, {"type": "t"}]),
    ("get", ("job_id",), NOT_STR),
    ("get", ("wait",), NOT_NUMBER),
    ("cancel", ("job_id",), NOT_STR),
    ("direct", ("worker_id",), NOT_STR),
    ("direct", ("state",), [*NOT_STR, "paused", "terminated"]),
    ("beat", ("state",), ["paused", "terminated", "Running"]),
]
# Keys the protocol types as str: a binary key is as wrong as a binary value.
BINARY_KEYS: list[tuple[str, tuple[str, ...], Any]] = [
    ("enqueue", ("job", "route"), {b"gpu": "a100"}),
    ("enqueue", ("job", "route"), {b"gpu": "a100", "zone": "eu"}),
    ("register", ("labels",), {b"gpu": ["a100"]}),
    ("register", ("labels",), {b"gpu": ["a100"], "zone": ["eu"]}),
]
CASES = [(kind, path, value) for kind, path, values in FIELDS for value in values] + BINARY_KEYS


def mistyped(kind: str, path: tuple[str, ...], value: Any, worker_id: str) -> dict[str, Any]:
    body = copy.deepcopy(BASE[kind])
    for key in ("worker_id",):
        if body.get(key) == WORKER_ID:
            body[key] = worker_id
    if path == ("jobs",):
        del body["job"]
    holder = body
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = value
    return body


@pytest.mark.parametrize(
    ("kind", "path", "value"),
    CASES,
    ids=[f"{kind}.{'.'.join(path)}={value!r}" for kind, path, value in CASES],
)
def test_a_mistyped_field_gets_bad_request_with_the_rid_echoed(greeted, kind, path, value):
    peer, worker_id = greeted
    answer = peer.request(kind, **mistyped(kind, path, value, worker_id))
    error_of(answer, "bad_request")


def test_every_base_request_of_the_table_is_itself_accepted_past_validation(greeted):
    """The table's bodies are right but for the one field: the right body gets no bad_request."""
    peer, worker_id = greeted
    expected = {
        "register": "reply",
        "beat": "reply",
        "fetch": "reply",
        "ack": "unknown_job",
        "fail": "unknown_job",
        "enqueue": "reply",
        "get": "unknown_job",
        "cancel": "unknown_job",
        "direct": "unknown_worker",
        "deregister": "reply",
    }
    for kind, outcome in expected.items():
        body = copy.deepcopy(BASE[kind])
        if body.get("worker_id") == WORKER_ID:
            body["worker_id"] = worker_id
        answer = peer.request(kind, **body)
        got = answer["type"] if answer["type"] == "reply" else answer.get("code")
        assert got == outcome, (kind, answer)


# Required fields: neither `?` nor a default in PROTOCOL.md.
REQUIRED = [
    ("hello", "v"),
    ("hello", "role"),
    ("hello", "hostname"),
    ("hello", "pid"),
    ("register", "worker_id"),
    ("register", "queues"),
    ("register", "hostname"),
    ("register", "pid"),
    ("beat", "worker_id"),
    ("beat", "state"),
    ("beat", "active_job_ids"),
    ("fetch", "worker_id"),
    ("fetch", "count"),
    ("ack", "worker_id"),
    ("ack", "job_id"),
    ("ack", "attempt"),
    ("fail", "worker_id"),
    ("fail", "job_id"),
    ("fail", "attempt"),
    ("fail", "error"),
    ("deregister", "worker_id"),
    ("enqueue", "job"),
    ("get", "job_id"),
    ("cancel", "job_id"),
    ("direct", "worker_id"),
    ("direct", "state"),
]


@pytest.mark.parametrize(("kind", "field"), REQUIRED, ids=[f"{k}.{f}" for k, f in REQUIRED])
def test_a_missing_required_field_gets_bad_request_with_the_rid_echoed(greeted, kind, field):
    peer, worker_id = greeted
    body = mistyped(kind, (field,), None, worker_id)
    del body[field]
    error_of(peer.request(kind, **body), "bad_request")


def test_an_enqueue_batch_with_one_bad_spec_is_refused_whole_naming_its_index(connect):
    client = connect()
    jobs = [{"type": "a", "queue": "batch-q"}] * 3 + [
        {"type": "b", "queue": "batch-q", "priority": "x"}
    ]
    answer = error_of(client.request("enqueue", jobs=jobs), "bad_request")
    assert "3" in answer["message"]
    stats = client.request("stats")
    assert all(n == 0 for n in stats["queues"].get("batch-q", {}).values())


# -- transport-level oddities ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "frames",
    [
        [pack({"type": "ping", "rid": 5}), pack({"type": "ping", "rid": 6})],
        [b"", pack({"type": "ping", "rid": 5})],  # a REQ-style empty delimiter
        [pack({"type": "ping", "rid": 5}), b""],
    ],
    ids=["two-maps", "delimiter-first", "empty-last"],
)
def test_a_multi_frame_message_gets_bad_request(connect, frames):
    peer = connect()
    peer.send_frames(*frames)
    answer = error_of(peer.receive(timeout=1.0), "bad_request")
    assert answer.get("rid") in (None, 5)
    peer.send({"type": "ping", "rid": 9})
    assert peer.receive() == {"type": "pong", "rid": 9}


def _oversized(rid: int) -> bytes:
    return pack({"type": "ping", "rid": rid, "pad": "x" * (MAX_MESSAGE_SIZE * 3 // 2)})


def test_a_frame_between_one_and_two_times_the_limit_gets_too_large(connect):
    peer = connect()
    frame = _oversized(31)
    assert MAX_MESSAGE_SIZE < len(frame) < 2 * MAX_MESSAGE_SIZE
    peer.send_frames(frame)
    error_of(peer.receive(), "too_large")
    peer.send({"type": "ping", "rid": 32})
    assert peer.receive() == {"type": "pong", "rid": 32}


def test_a_too_large_reply_to_a_frame_with_a_readable_rid_echoes_it(connect):
    # Section 2: rid is left out only when the frame could not be decoded or the rid is invalid
    # (and then the code is bad_request); a client needs the rid to match the refusal.
    peer = connect()
    peer.send_frames(_oversized(33))
    assert error_of(peer.receive(), "too_large").get("rid") == 33


def test_a_frame_over_twice_the_limit_is_dropped_or_refused_and_others_are_still_served(connect):
    peer = connect()
    peer.send_frames(pack({"type": "ping", "rid": 41, "pad": b"x" * (3 * MAX_MESSAGE_SIZE)}))
    if not peer.nothing_within(0.5):
        error_of(peer.receive(), "too_large")
    other = connect()
    other.send({"type": "ping", "rid": 42})
    assert other.receive() == {"type": "pong", "rid": 42}


def test_a_job_over_max_job_size_gets_too_large_with_the_rid_and_is_not_created(connect):
    client = connect()
    spec = {"type": "t", "queue": "big-q", "args": ["x" * (MAX_JOB_SIZE + 10)]}
    error_of(client.request("enqueue", job=spec), "too_large")
    batch = [{"type": "t", "queue": "big-q"}, spec]
    answer = error_of(client.request("enqueue", jobs=batch), "too_large")
    assert "1" in answer["message"]
    stats = client.request("stats")
    assert all(n == 0 for n in stats["queues"].get("big-q", {}).values())


def test_an_ack_result_over_max_result_size_gets_too_large_and_the_job_stays_active(
    coordinator, raw_peer
):
    node = coordinator(**node_options())
    peer, client = raw_peer(node.address), raw_peer(node.address)
    worker_id = peer.request("hello", v=1, role="worker", hostname="h", pid=1)["worker_id"]
    peer.request("register", worker_id=worker_id, queues=["q"], hostname="h", pid=1)
    job_id = client.request("enqueue", job={"type": "t", "queue": "q"})["job_id"]
    [job] = peer.request("fetch", worker_id=worker_id, count=1)["jobs"]
    assert job["id"] == job_id
    huge = {"blob": "x" * (MAX_RESULT_SIZE + 10)}
    answer = peer.request("ack", worker_id=worker_id, job_id=job_id, attempt=1, result=huge)
    assert error_of(answer, "too_large")["rid"] >= 1
    assert client.request("get", job_id=job_id)["job"]["state"] == "active"
    assert (
        peer.request("ack", worker_id=worker_id, job_id=job_id, attempt=1, result=1)["type"]
        == "reply"
    )


# -- after all of it ------------------------------------------------------------------------------


def _all_bad_frames(worker_id: str) -> Iterator[tuple[str, list[bytes]]]:
    for name, frame in UNDECODABLE.items():
        yield f"undecodable {name}", [frame]
    for name, rid in INVALID_RIDS.items():
        yield f"rid {name}", [pack({"type": "enqueue", **rid, "job": {"type": "t", "queue": "q"}})]
    yield "unknown type", [pack({"type": "frobnicate", "rid": 1})]
    for kind, path, value in CASES:
        body = {"type": kind, "rid": 1, **mistyped(kind, path, value, worker_id)}
        yield f"{kind}.{'.'.join(path)}={value!r}", [pack(body)]
    yield "multi-frame", [pack({"type": "enqueue", "rid": 2, "job": {"type": "t"}}), b"x"]
    yield "too large", [_oversized(3)]
    yield (
        "job too large",
        [pack({"type": "enqueue", "rid": 4, "job": {"type": "t", "args": ["x" * MAX_JOB_SIZE]}})],
    )


def test_after_every_bad_request_the_coordinator_serves_end_to_end_and_created_nothing(
    coordinator, raw_peer
):
    node = coordinator(**node_options())
    bad = raw_peer(node.address)
    hello = bad.request("hello", v=1, role="worker", hostname="bad", pid=1)
    worker_id = hello["worker_id"]

    problems = []
    for name, frames in _all_bad_frames(worker_id):
        bad.send_frames(*frames)
        if bad.nothing_within(1.0):
            problems.append(f"{name}: no reply")
            continue
        answer = bad.receive()
        if answer.get("type") != "error":
            problems.append(f"{name}: accepted with {answer}")

    stats = bad.request("stats")
    for queue, counts in stats["queues"].items():
        if any(counts.get(state) for state in JOB_STATES):
            problems.append(f"jobs were created in queue {queue!r}: {counts}")
    workers = [(w["worker_id"], w["queues"], w["labels"]) for w in stats["workers"]]
    if workers != [(worker_id, [], {})]:
        problems.append(f"workers changed by bad requests: {workers}")

    # A well-behaved worker and client, from the public API, are served end to end.
    worker = WorkerNode(
        connect=node.address, queues=["default"], handlers={"add": lambda a, b: a + b}
    ).start()
    client = Client(node.address, timeout=10.0)
    try:
        handle = client.enqueue("add", [2, 3])
        assert handle.result(timeout=10.0) == 5
        assert client.stats()["queues"]["default"]["completed"] == 1
    finally:
        client.close()
        worker.stop(timeout=5.0)
    assert not problems, "\n".join(problems)


def test_a_route_mixing_binary_and_string_keys_is_refused_and_leaves_no_job_behind(
    coordinator, raw_peer
):
    node = coordinator(**node_options())
    client = raw_peer(node.address)
    job = {"type": "t", "queue": "q", "route": {b"gpu": "a100", "zone": "eu"}}
    answer = client.request("enqueue", job=job)
    counts = client.request("stats")["queues"].get("q", {})
    left = {state: n for state, n in counts.items() if n}
    assert (answer.get("code"), left) == ("bad_request", {}), f"answer {answer}; jobs left {left}"


def test_a_register_refused_for_its_labels_leaves_the_worker_unregistered(coordinator, raw_peer):
    node = coordinator(**node_options())
    peer = raw_peer(node.address)
    worker_id = peer.request("hello", v=1, role="worker", hostname="h", pid=1)["worker_id"]
    labels = {b"gpu": ["a100"], "zone": ["eu"]}
    answer = peer.request(
        "register", worker_id=worker_id, queues=["q"], hostname="h", pid=1, labels=labels
    )
    rid = peer.rid()
    peer.send({"type": "fetch", "rid": rid, "worker_id": worker_id, "count": 1, "wait": 0.2})
    fetch = None if peer.nothing_within(2.0) else peer.reply_to(rid)
    assert (answer.get("code"), fetch and fetch.get("code")) == ("bad_request", "not_registered"), (
        f"register answered {answer}; the fetch after it answered {fetch} (None: nothing in 2 s)"
    )
